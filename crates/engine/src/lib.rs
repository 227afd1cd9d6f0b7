//! writ's use cases. The API and the CLI call these; they never touch the store,
//! the policy engine or a connector directly.
//!
//! Architecture invariants:
//! - every state change is written with its ledger event in one transaction;
//! - the event announcing a change on a target is committed before the target is
//!   touched, so a failure to record means no access is granted (fail closed);
//! - `now` comes from the injected [`Clock`], never from the system directly.

mod access;
pub mod arap;
mod break_glass;
pub mod checkpoint;
mod cluster;
mod controls;
mod credentials;
mod directory;
mod dispatch;
pub mod effective;
mod error;
mod evidence;
pub mod evidence_doc;
mod exceptions;
mod extend;
mod guidance;
pub mod health;
mod insights;
mod intake;
mod itsm_side;
pub mod keys;
mod leavers;
mod lifecycle;
mod lookup;
pub mod metrics_names;
mod orphans;
mod outage;
pub mod pdp;
mod policy_reload;
pub mod polling;
mod preflight;
mod provisioning;
mod reads;
mod reconcile;
mod redecide;
mod rejections;
pub mod replay;
pub mod reports;
pub mod reviews;
mod revocation;
mod scheduler;
pub mod sessions;
mod signals;
mod system_clock;
mod target_guard;
mod targets;
mod tickets;
mod tokens;

use std::sync::Arc;

use writ_config::{Config, Identity};
use writ_connectors::Connectors;
use writ_domain::Timestamp;
use writ_domain::{Clock, IdentityKind, IdentityName};
use writ_itsm::TicketSystems;
use writ_policy::PolicyEngine;
use writ_store::Store;

pub use break_glass::{Activated, BreakGlass};
pub use credentials::IssuedCredential;
pub use effective::EntitlementDetail;
pub use error::{EngineError, ErrorCode, ErrorKind};
pub use evidence::{COURIER_TASK_NAME, COURIER_TICK_DEADLINE, EvidenceCourier};
pub use exceptions::{EXCEPTION_DURATION_MAX_SECONDS, NewException};
pub use extend::ExtendGrant;
pub use guidance::{EntitlementView, Preview};
pub use insights::{Insights, LedgerStatus};
pub use intake::{WebhookAction, WebhookOutcome};
pub use lifecycle::ApprovedVia;
pub use lifecycle::NewRequest;
pub use policy_reload::PolicyReloaded;
pub use preflight::{TargetCheck, check_targets};
pub use provisioning::{GroupChange, UserChange};
pub use reads::{LedgerVerdict, OutboxStatus};
pub use reconcile::{ReconcileReport, Reconciler};
pub use redecide::{Occasion, Redecided};
pub use reviews::{CampaignProgress, NewCampaign};
pub use scheduler::Scheduler;
pub use scheduler::{TASK_NAME as SCHEDULER_TASK_NAME, TICK_DEADLINE as SCHEDULER_TICK_DEADLINE};
pub use system_clock::SystemClock;
pub use tokens::{DEFAULT_TOKEN_TTL_SECONDS, TOKEN_TTL_MAX_SECONDS, issue_token};

/// Who is calling: an identity from the configuration, authenticated by a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: IdentityName,
    pub kind: IdentityKind,
    /// Set when the token names a user in `sub` and the caller in its RFC 8693 `act`
    /// chain: the caller is then an agent acting for that user.
    pub delegation: Option<Delegation>,
}

/// Agents acting for a user, as a token's `act` chain proved it: every actor a known
/// agent that may act for the user (its owner or one of its `delegates`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    /// The user the token names (`sub`): whom the chain acts for.
    pub principal: IdentityName,
    /// The agents of the chain, the current actor (the caller) first, then each prior
    /// actor in the order the token nests them.
    pub actors: Vec<IdentityName>,
}

impl Caller {
    /// An identity calling for itself.
    pub fn new(name: IdentityName, kind: IdentityKind) -> Self {
        Self {
            name,
            kind,
            delegation: None,
        }
    }

    /// The agents of the token's act chain, the caller first; empty without one.
    pub fn actor_chain(&self) -> Vec<IdentityName> {
        self.delegation
            .as_ref()
            .map(|d| d.actors.clone())
            .unwrap_or_default()
    }

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

/// writ's scheduler as the actor of what it starts on its own (leavers, orphans,
/// a counted lease's last use).
pub(crate) const SCHEDULER: writ_domain::ledger::Actor =
    writ_domain::ledger::Actor::System(writ_domain::ledger::SystemActor::Scheduler);

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
    pub(crate) policy: policy_reload::PolicySlot,
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    /// The targets: connectors, their guards, the per-account locks.
    pub(crate) targets: targets::Targets,
    /// The ticketing systems, their polling, refused webhook deliveries.
    pub(crate) itsm: itsm_side::ItsmSide,
    /// What authenticates bearer tokens.
    pub(crate) tokens: tokens::TokenAuth,
    /// Wake-ups for the scheduler and the evidence courier.
    pub(crate) signals: signals::Signals,
    /// Revocations due soon, kept at hand for when the ledger cannot be written.
    pub(crate) lookahead: outage::Lookahead,
    /// Liveness of the long-lived tasks, for `/healthz`.
    pub(crate) health: Arc<health::Health>,
    /// Signs ledger checkpoints; without one `writ serve` takes none.
    pub(crate) ledger_key: Option<Arc<checkpoint::LedgerKey>>,
    /// Signs AuthZEN binding tokens; none where no entitlement is enforced by PEPs.
    pub(crate) binding_key: Option<Arc<arap::BindingKey>>,
    /// Services and agents disabled because their owner left and nobody took them on.
    pub(crate) disabled_orphans: orphans::DisabledOrphans,
    /// The once-for-all background tasks this node runs now (`cluster`).
    pub(crate) leadership: cluster::Leadership,
    /// Who writ knows: `writ.toml`'s identities and the directory pushed over SCIM.
    pub(crate) directory: directory::Directory,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config.path)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Now, by the engine's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn new(
        config: Arc<Config>,
        policy: Arc<PolicyEngine>,
        store: Store,
        connectors: Connectors,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let directory = directory::Directory::new(directory::DirectoryView::build(
            &config,
            Default::default(),
            Default::default(),
        ));
        Self {
            directory,
            targets: targets::Targets::new(&config, connectors),
            config,
            policy: policy_reload::PolicySlot::new(policy),
            store,
            clock,
            itsm: itsm_side::ItsmSide::default(),
            tokens: tokens::TokenAuth::default(),
            signals: signals::Signals::default(),
            lookahead: outage::Lookahead::default(),
            health: Arc::new(health::Health::default()),
            ledger_key: None,
            binding_key: None,
            disabled_orphans: orphans::DisabledOrphans::default(),
            leadership: cluster::Leadership::default(),
        }
    }

    /// Accepts bearer tokens hashed under this key (see `keys`).
    #[must_use]
    pub fn with_token_key(mut self, key: keys::TokenKey) -> Self {
        self.tokens.key = Some(key);
        self
    }

    /// Accepts bearer tokens from these OpenID Connect providers too.
    #[must_use]
    pub fn with_oidc(mut self, verifier: writ_oidc::OidcVerifier) -> Self {
        self.tokens.oidc = Some(verifier).filter(|v| !v.is_empty());
        self
    }

    /// Uses these ticketing systems to check cited tickets and take in webhooks.
    #[must_use]
    pub fn with_ticket_systems(mut self, tickets: TicketSystems) -> Self {
        self.itsm.systems = tickets;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn health(&self) -> &Arc<health::Health> {
        &self.health
    }

    /// The identity named `name`: configured in `writ.toml`, or pushed by an identity
    /// provider over SCIM.
    pub fn identity(&self, name: &str) -> Option<Arc<Identity>> {
        let name: IdentityName = name.parse().ok()?;
        self.directory.view().identities.get(&name).cloned()
    }

    /// Every identity writ knows, by name.
    pub fn identities(&self) -> Vec<Arc<Identity>> {
        let mut all: Vec<Arc<Identity>> =
            self.directory.view().identities.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Tells the scheduler about a job due at `due`, waking it only if that is earlier
    /// than it planned to look.
    pub(crate) fn hint_due(&self, due: writ_domain::Timestamp) {
        self.signals.hint_due(due);
    }

    /// Tells the evidence courier that a transaction that may have queued notes committed.
    pub(crate) fn evidence_committed(&self) {
        if !self.itsm.systems.is_empty() || !self.itsm.systems.notifiers().is_empty() {
            self.signals.evidence_queued.notify_one();
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
