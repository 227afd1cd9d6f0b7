//! An engine with a manual clock and a connector the test controls, on SQLite or on
//! a PostgreSQL database of its own.

#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use writ_config::Config;
use writ_connectors::{Access, Connector, ConnectorError, Connectors};
use writ_domain::{IdentityKind, ManualClock, Timestamp};
use writ_engine::{Caller, Engine, Scheduler};
use writ_policy::PolicyEngine;
use writ_store::Store;

pub const CONFIG: &str = r#"
[revocation]
retry_backoff_max = "8s"
escalate_after = "30s"

[requests]
pending_ttl = "1h"

[[target]]
name = "t"
kind = "noop"
circuit_cooldown = "5s"

[[entitlement]]
id = "t/low"
target = "t"
role = "low"
sensitivity = "low"
max_duration = "1h"

[[entitlement]]
id = "t/high"
target = "t"
role = "high"
sensitivity = "high"
max_duration = "1h"
on_unmanaged = "revoke"
on_missing = "report"

[[entitlement]]
id = "t/critical"
target = "t"
role = "critical"
sensitivity = "critical"
max_duration = "1h"
owners = "sec"

[[user]]
name = "erin"
groups = ["sec"]

[[user]]
name = "alice"
groups = ["engineers"]
manager = "dave"

[[user]]
name = "bob"
groups = ["engineers"]
manager = "dave"

[[user]]
name = "dave"
"#;

pub const POLICY: &str = r#"
@id("low-auto")
@max_duration("30m")
permit (principal in Group::"engineers", action == Action::"request", resource) when { resource.sensitivity == "low" };

@id("high-approval")
@approvals("1")
permit (principal in Group::"engineers", action == Action::"request", resource) when { resource.sensitivity == "high" };

@id("critical-two-approvals")
@approvals("2")
permit (principal in Group::"engineers", action == Action::"request", resource) when { resource.sensitivity == "critical" };

@id("owners-approve")
permit (principal, action == Action::"approve", resource) when { resource.entitlement has owners && principal in resource.entitlement.owners };

@id("manager-approves")
permit (principal, action == Action::"approve", resource) when { resource.subject has manager && principal == resource.subject.manager };
"#;

/// A target whose memberships the test can read and whose availability it can switch.
#[derive(Debug, Default)]
pub struct ControlledTarget {
    pub held: Mutex<HashSet<(String, String)>>,
    pub down: AtomicBool,
    /// Apply every change, then answer as if the connection dropped before the reply.
    pub lose_answers: AtomicBool,
    /// Calls that reached the target, failed or not.
    pub calls: std::sync::atomic::AtomicUsize,
    /// What every role gives here (`None`: the target cannot tell).
    pub effective: Mutex<Option<writ_domain::EffectiveAccess>>,
}

impl ControlledTarget {
    fn check(&self) -> Result<(), ConnectorError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            Err(ConnectorError::Failed("target unreachable (test)".into()))
        } else {
            Ok(())
        }
    }

    fn answer(&self) -> Result<(), ConnectorError> {
        if self.lose_answers.load(Ordering::SeqCst) {
            Err(ConnectorError::Unknown(
                "connection lost before the reply (test)".into(),
            ))
        } else {
            Ok(())
        }
    }

    /// Changes the target behind writ's back, as an administrator would.
    pub fn set_out_of_band(&self, role: &str, account: &str, held: bool) {
        if let Ok(mut set) = self.held.lock() {
            let key = (role.to_string(), account.to_string());
            if held {
                set.insert(key);
            } else {
                set.remove(&key);
            }
        }
    }

    pub fn holds_now(&self, role: &str, account: &str) -> bool {
        self.held
            .lock()
            .map(|h| h.contains(&(role.to_string(), account.to_string())))
            .unwrap_or(false)
    }
}

#[async_trait]
impl Connector for ControlledTarget {
    async fn grant(&self, access: Access<'_>) -> Result<(), ConnectorError> {
        self.check()?;
        self.held
            .lock()
            .map_err(|_| ConnectorError::Failed("poisoned".into()))?
            .insert((access.role.into(), access.account.into()));
        self.answer()
    }

    async fn revoke(&self, access: Access<'_>) -> Result<(), ConnectorError> {
        self.check()?;
        self.held
            .lock()
            .map_err(|_| ConnectorError::Failed("poisoned".into()))?
            .remove(&(access.role.into(), access.account.into()));
        self.answer()
    }

    async fn holds(&self, access: Access<'_>) -> Result<bool, ConnectorError> {
        self.check()?;
        Ok(self.holds_now(access.role, access.account))
    }

    async fn effective_access(
        &self,
        _role: &str,
    ) -> Result<Option<writ_domain::EffectiveAccess>, ConnectorError> {
        self.check()?;
        Ok(self
            .effective
            .lock()
            .map_err(|_| ConnectorError::Failed("poisoned".into()))?
            .clone())
    }

    async fn members(&self, role: &str) -> Result<Vec<String>, ConnectorError> {
        self.check()?;
        let held = self
            .held
            .lock()
            .map_err(|_| ConnectorError::Failed("poisoned".into()))?;
        Ok(held
            .iter()
            .filter(|(held_role, _)| held_role == role)
            .map(|(_, account)| account.clone())
            .collect())
    }
}

pub struct Harness {
    pub engine: Arc<Engine>,
    pub scheduler: Scheduler,
    pub clock: Arc<ManualClock>,
    pub target: Arc<ControlledTarget>,
    pub store: Store,
    _dir: tempfile::TempDir,
    pg_database: Option<writ_testkit::pg::TestDatabase>,
}

pub fn caller(name: &str) -> Caller {
    Caller::new(name.parse().expect("name"), IdentityKind::User)
}

pub use writ_testkit::Backend as Storage;

impl Harness {
    pub async fn new(storage: Storage) -> Self {
        Self::with(storage, CONFIG, POLICY).await
    }

    /// A harness on another configuration and policy (its target must be `t`).
    pub async fn with(storage: Storage, config: &str, policy: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("policies")).expect("mkdir");
        std::fs::write(dir.path().join("policies/p.cedar"), policy).expect("policy");
        let config = Config::from_toml(&dir.path().join("writ.toml"), config).expect("config");
        let policy =
            PolicyEngine::load(&dir.path().join("policies"), &config).expect("policy loads");
        let (url, pg_database) = match storage {
            Storage::Sqlite => (
                format!("sqlite://{}?mode=rwc", dir.path().join("writ.db").display()),
                None,
            ),
            Storage::Postgres => {
                let database = writ_testkit::pg::TestDatabase::create().await;
                (database.url.clone(), Some(database))
            }
        };
        let store = Store::open(&url).await.expect("store");
        let target = Arc::new(ControlledTarget::default());
        let mut connectors = Connectors::default();
        connectors.insert("t", target.clone());
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_micros(
            1_800_000_000_000_000,
        )));
        let tickets = writ_itsm::TicketSystems::from_config(&config).expect("ticketing systems");
        let engine = Arc::new(
            Engine::new(
                Arc::new(config),
                Arc::new(policy),
                store.clone(),
                connectors,
                clock.clone(),
            )
            .with_ticket_systems(tickets),
        );
        Self {
            scheduler: Scheduler::new(engine.clone()),
            engine,
            clock,
            target,
            store,
            _dir: dir,
            pg_database,
        }
    }

    /// Replaces the policy files (`Engine::reload_policy` puts them in force).
    pub fn write_policy(&self, policy: &str) {
        std::fs::write(self._dir.path().join("policies/p.cedar"), policy).expect("policy");
    }

    pub async fn advance(&self, seconds: i64) {
        self.clock.advance_seconds(seconds);
        self.scheduler.run_due().await.expect("scheduler pass");
    }

    pub async fn finish(self) {
        self.store.verify().await.expect("the ledger verifies");
        self.store.close().await;
        if let Some(database) = &self.pg_database {
            database.drop_now().await;
        }
    }
}
