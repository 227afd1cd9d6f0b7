//! writ's use cases. The API and the CLI call these; they never touch the store,
//! the policy engine or a connector directly.
//!
//! Architecture invariants:
//! - every state change is written with its ledger event in one transaction;
//! - the event announcing a change on a target is committed before the target is
//!   touched, so a failure to record means no access is granted (fail closed);
//! - `now` comes from the injected [`Clock`], never from the system directly.

mod access;
pub mod checkpoint;
mod credentials;
mod dispatch;
mod error;
mod evidence;
mod exceptions;
mod guidance;
pub mod health;
mod intake;
pub mod keys;
mod lifecycle;
mod lookup;
pub mod metrics_names;
mod outage;
pub mod polling;
mod preflight;
mod reads;
mod reconcile;
mod rejections;
mod revocation;
mod scheduler;
mod system_clock;
mod target_guard;
mod tickets;
mod tokens;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};

use tokio::sync::{Mutex, Notify};
use writ_config::{Config, Identity};
use writ_connectors::Connectors;
use writ_domain::{Clock, IdentityKind, IdentityName};
use writ_itsm::TicketSystems;
use writ_policy::PolicyEngine;
use writ_store::Store;

pub use credentials::IssuedCredential;
pub use error::{EngineError, ErrorCode, ErrorKind};
pub use evidence::{COURIER_TASK_NAME, COURIER_TICK_DEADLINE, EvidenceCourier};
pub use exceptions::{EXCEPTION_DURATION_MAX_SECONDS, NewException};
pub use guidance::{EntitlementView, Preview};
pub use intake::{WebhookAction, WebhookOutcome};
pub use lifecycle::NewRequest;
pub use preflight::{TargetCheck, check_targets};
pub use reads::{LedgerVerdict, OutboxStatus};
pub use reconcile::{ReconcileReport, Reconciler};
pub use scheduler::Scheduler;
pub use scheduler::{TASK_NAME as SCHEDULER_TASK_NAME, TICK_DEADLINE as SCHEDULER_TICK_DEADLINE};
pub use system_clock::SystemClock;
pub use tokens::{DEFAULT_TOKEN_TTL_SECONDS, TOKEN_TTL_MAX_SECONDS, issue_token};

/// Who is calling: an identity from the configuration, authenticated by a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: IdentityName,
    pub kind: IdentityKind,
}

impl Caller {
    /// The caller as the actor of what it changes on the ledger.
    pub fn actor(&self) -> writ_domain::ledger::Actor {
        self.name.clone().into()
    }
}

/// The key of the lock that serialises changes to one account's access to one
/// entitlement (applying, revoking, reconciling).
pub(crate) fn holder_key(entitlement: &str, account: &str) -> String {
    format!("{entitlement}\u{0}{account}")
}

/// A grant is applied inline right after it is recorded; its apply job becomes due
/// this much later, so the scheduler takes over only if the inline attempt did not
/// finish (a crash, a very slow target).
pub const INLINE_APPLY_GRACE_SECONDS: i64 = 10;

/// The longest justification writ stores.
pub const JUSTIFICATION_LENGTH_MAX: usize = 4096;
/// The longest approval, rejection or revocation comment writ stores.
pub const COMMENT_LENGTH_MAX: usize = 4096;

pub struct Engine {
    pub(crate) config: Arc<Config>,
    pub(crate) policy: Arc<PolicyEngine>,
    pub(crate) store: Store,
    pub(crate) connectors: Connectors,
    /// Per target: concurrency and rate limits and the circuit breaker.
    pub(crate) guards: HashMap<String, Arc<target_guard::TargetGuard>>,
    /// Revocations due soon, kept at hand for when the ledger cannot be written.
    pub(crate) lookahead: outage::Lookahead,
    /// Configured ticketing systems (empty unless `[[itsm]]` is set).
    pub(crate) tickets: TicketSystems,
    pub(crate) clock: Arc<dyn Clock>,
    /// Wakes the evidence courier when notes for tickets were committed.
    pub(crate) evidence_queued: Arc<Notify>,
    /// Wakes the scheduler when a new deadline may be earlier than the one it sleeps for.
    pub(crate) wake: Arc<Notify>,
    /// When the scheduler will next look at its jobs (µs since the epoch; `i64::MAX`
    /// while it is working). Only a job due earlier needs to wake it.
    pub(crate) next_wake_at_us: AtomicI64,
    /// One target change at a time per (target, role, account), so that revoking one
    /// lease and applying an overlapping one cannot interleave.
    holder_locks: StdMutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Liveness of the long-lived tasks, for `/healthz`.
    pub(crate) health: Arc<health::Health>,
    /// Rejected webhook deliveries not yet on the ledger (bounded writes).
    pub(crate) rejections: rejections::Rejections,
    /// Token hash → (record, cached until); see `TOKEN_CACHE_SECONDS`.
    pub(crate) token_cache:
        StdMutex<HashMap<String, (writ_store::TokenRecord, writ_domain::Timestamp)>>,
    /// Keys token hashes; without one no token authenticates.
    pub(crate) token_key: Option<keys::TokenKey>,
    /// Signs ledger checkpoints; without one `writ serve` takes none.
    pub(crate) ledger_key: Option<Arc<checkpoint::LedgerKey>>,
    /// When each ticketing system was last polled.
    pub(crate) polls: polling::PollState,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config.path)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(
        config: Arc<Config>,
        policy: Arc<PolicyEngine>,
        store: Store,
        connectors: Connectors,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let guards = config
            .targets
            .values()
            .map(|target| {
                (
                    target.name.clone(),
                    Arc::new(target_guard::TargetGuard::new(target)),
                )
            })
            .collect();
        Self {
            config,
            policy,
            store,
            connectors,
            guards,
            lookahead: outage::Lookahead::default(),
            tickets: TicketSystems::default(),
            clock,
            wake: Arc::new(Notify::new()),
            evidence_queued: Arc::new(Notify::new()),
            next_wake_at_us: AtomicI64::new(i64::MAX),
            holder_locks: StdMutex::new(HashMap::new()),
            health: Arc::new(health::Health::default()),
            rejections: rejections::Rejections::default(),
            token_cache: StdMutex::new(HashMap::new()),
            token_key: None,
            ledger_key: None,
            polls: polling::PollState::default(),
        }
    }

    /// Accepts bearer tokens hashed under this key (see `keys`).
    #[must_use]
    pub fn with_token_key(mut self, key: keys::TokenKey) -> Self {
        self.token_key = Some(key);
        self
    }

    /// Uses these ticketing systems to check cited tickets and take in webhooks.
    #[must_use]
    pub fn with_ticket_systems(mut self, tickets: TicketSystems) -> Self {
        self.tickets = tickets;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn health(&self) -> &Arc<health::Health> {
        &self.health
    }

    pub(crate) fn identity(&self, name: &str) -> Option<&Identity> {
        self.config.identity(name)
    }

    pub(crate) fn holder_lock(&self, key: String) -> Arc<Mutex<()>> {
        let mut locks = self
            .holder_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded: drop locks nobody holds once the map grows.
        if locks.len() > 10_000 {
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks.entry(key).or_default().clone()
    }

    /// The limits and breaker of a target (a default one for a target not configured,
    /// which only tests build).
    pub(crate) fn guard(&self, target: &str) -> Arc<target_guard::TargetGuard> {
        self.guards
            .get(target)
            .cloned()
            .unwrap_or_else(|| Arc::new(target_guard::TargetGuard::unconfigured()))
    }

    /// Tells the scheduler about a job due at `due`, waking it only if that is earlier
    /// than it planned to look.
    pub(crate) fn hint_due(&self, due: writ_domain::Timestamp) {
        if due.unix_micros() < self.next_wake_at_us.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    /// Tells the evidence courier that a transaction that may have queued notes committed.
    pub(crate) fn evidence_committed(&self) {
        if !self.tickets.is_empty() || !self.tickets.notifiers().is_empty() {
            self.evidence_queued.notify_one();
        }
    }

    /// Records policy evaluation errors: logged and counted, never silently ignored.
    pub(crate) fn report_policy_errors(&self, action: &str, errors: &[String]) {
        for error in errors {
            tracing::warn!(action, error = %error, "policy evaluation error; the policy was treated as not satisfied");
            metrics::counter!(metrics_names::POLICY_ERRORS, "action" => action.to_string())
                .increment(1);
        }
    }
}
