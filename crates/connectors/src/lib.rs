//! Connectors: grant, revoke and read back one entitlement for one account on a target.
//!
//! Every call is idempotent (granting what is held, or revoking what is not, succeeds),
//! so the engine may repeat any call whose outcome it does not know.

mod command;
mod ldap;
mod mariadb;
mod noop;
mod pep;
mod postgres;
mod scim;
mod sessions;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use writ_config::{Config, ConnectorConfig};
use writ_domain::{EffectiveAccess, Timestamp};

pub use command::CommandConnector;
pub use ldap::{LdapConnector, LdapSettings};
pub use mariadb::{
    Account as MariadbAccount, MariadbConnector, native_password_hash, quote_mariadb_identifier,
};
pub use noop::NoopConnector;
pub use pep::PepEnforced;
pub use postgres::{PostgresConnector, quote_identifier, scram_sha256_verifier};
pub use scim::{ScimConnector, ScimSettings};

/// One entitlement for one account: what a connector changes or reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access<'a> {
    /// The role or group, as configured on the entitlement.
    pub role: &'a str,
    /// The account on the target.
    pub account: &'a str,
}

/// A login made for one grant: an account that can sign in until `valid_until`, holding
/// `role`. The password is the caller's to hand over once; connectors never log it.
#[derive(Clone, Copy)]
pub struct Credential<'a> {
    pub role: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    pub valid_until: Timestamp,
    /// Where it came from (grant, subject, ticket), kept on the target next to the login.
    pub comment: &'a str,
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("role", &self.role)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("valid_until", &self.valid_until)
            .finish()
    }
}

fn no_credentials() -> ConnectorError {
    ConnectorError::Failed("this kind of target cannot issue credentials".into())
}

/// What a failed SQL call to a database target means for the engine.
pub(crate) fn classify_sql(error: sqlx::Error) -> ConnectorError {
    match error {
        // The statement reached the server and was refused: nothing happened.
        sqlx::Error::Database(db) => ConnectorError::Failed(db.to_string()),
        // Could not connect: nothing happened either.
        sqlx::Error::PoolTimedOut | sqlx::Error::Configuration(_) => {
            ConnectorError::Failed(format!("cannot reach the target: {error}"))
        }
        // Lost mid-call: it may have been applied.
        other => ConnectorError::Unknown(other.to_string()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// The target refused or failed; nothing was changed.
    #[error("{0}")]
    Failed(String),
    /// The call may or may not have taken effect (timeout, crash, lost connection):
    /// the engine re-checks before believing either way.
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

/// What `writ check` asks a target about: the roles writ will grant, the accounts it
/// will grant them to, and whether it must issue credentials there.
#[derive(Debug, Clone, Default)]
pub struct CheckPlan {
    pub roles: Vec<String>,
    pub accounts: Vec<String>,
    pub credentials: bool,
}

/// One thing `writ check` found on a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckItem {
    /// `false`: a grant or revocation will fail (or is at risk) because of this.
    pub ok: bool,
    /// What was checked: `connection`, `role reports_read`, `account alice`, `privilege …`.
    pub subject: String,
    pub detail: String,
}

impl CheckItem {
    pub fn ok(subject: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            ok: true,
            subject: subject.into(),
            detail: detail.into(),
        }
    }

    pub fn problem(subject: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            ok: false,
            subject: subject.into(),
            detail: detail.into(),
        }
    }
}

#[async_trait]
pub trait Connector: Send + Sync + std::fmt::Debug {
    async fn grant(&self, access: Access<'_>) -> Result<(), ConnectorError>;
    async fn revoke(&self, access: Access<'_>) -> Result<(), ConnectorError>;
    /// Whether the target holds the access right now.
    async fn holds(&self, access: Access<'_>) -> Result<bool, ConnectorError>;
    /// Every account that holds `role` on the target right now (reconciliation).
    async fn members(&self, role: &str) -> Result<Vec<String>, ConnectorError>;

    /// Creates the login (or, if it already exists, resets its password and expiry) and
    /// gives it the role. Idempotent like every other call.
    async fn issue_credential(&self, credential: Credential<'_>) -> Result<(), ConnectorError> {
        let _ = credential;
        Err(no_credentials())
    }
    /// Ends the login's sessions and removes it; nothing to do if it is gone.
    async fn drop_credential(&self, username: &str) -> Result<(), ConnectorError> {
        let _ = username;
        Err(no_credentials())
    }
    /// Whether the login exists on the target.
    async fn credential_exists(&self, username: &str) -> Result<bool, ConnectorError> {
        let _ = username;
        Err(no_credentials())
    }

    /// What `role` really gives on the target (the roles it reaches, superuser,
    /// powers, privileges); `None` where this kind of target cannot tell.
    async fn effective_access(
        &self,
        role: &str,
    ) -> Result<Option<EffectiveAccess>, ConnectorError> {
        let _ = role;
        Ok(None)
    }

    /// Looks, without changing anything, for what would make grants fail. By default:
    /// each role's members can be read (the target answers and knows the role).
    async fn check(&self, plan: &CheckPlan) -> Vec<CheckItem> {
        let mut items = Vec::new();
        for role in &plan.roles {
            items.push(match self.members(role).await {
                Ok(members) => CheckItem::ok(
                    format!("role {role}"),
                    format!("readable, {} members", members.len()),
                ),
                Err(error) => CheckItem::problem(format!("role {role}"), error.to_string()),
            });
        }
        if plan.credentials {
            items.push(CheckItem::problem(
                "credentials",
                "this kind of target cannot issue credentials",
            ));
        }
        items
    }
}

/// The connector of each configured target.
#[derive(Debug, Clone, Default)]
pub struct Connectors {
    by_target: HashMap<String, Arc<dyn Connector>>,
}

impl Connectors {
    /// Builds one connector per target. Nothing connects yet: a target that is down
    /// must not stop writ from starting (its grants wait and retry).
    pub fn from_config(config: &Config) -> Result<Self, ConnectorError> {
        let mut by_target: HashMap<String, Arc<dyn Connector>> = HashMap::new();
        for target in config.targets.values() {
            let timeout = std::time::Duration::from_secs(
                u64::try_from(target.call_timeout_seconds).unwrap_or(0),
            );
            let connector: Arc<dyn Connector> = match &target.connector {
                ConnectorConfig::Postgres { url, orphan_owner } => Arc::new(
                    PostgresConnector::with_statement_timeout(url, timeout)?
                        .with_orphan_owner(orphan_owner),
                ),
                ConnectorConfig::Mariadb {
                    url,
                    account_host,
                    default_role,
                } => Arc::new(
                    MariadbConnector::new(url, account_host, timeout)?
                        .with_default_role(*default_role),
                ),
                ConnectorConfig::Ldap(ldap) => Arc::new(LdapConnector::new(LdapSettings {
                    url: ldap.url.clone(),
                    starttls: ldap.starttls,
                    ca_file: ldap.ca_file.clone(),
                    bind_dn: ldap.bind_dn.clone(),
                    bind_password: ldap.bind_password.clone(),
                    group_base: ldap.group_base.clone(),
                    group_attribute: ldap.group_attribute.clone(),
                    member_attribute: ldap.member_attribute.clone(),
                    account_base: ldap.account_base.clone(),
                    account_attribute: ldap.account_attribute.clone(),
                    account_filter: ldap.account_filter.clone(),
                    placeholder_member: ldap.placeholder_member.clone(),
                    timeout,
                })?),
                ConnectorConfig::Scim(scim) => Arc::new(ScimConnector::new(ScimSettings {
                    url: scim.url.clone(),
                    bearer_token: scim.bearer_token.clone(),
                    ca_file: scim.ca_file.clone(),
                    timeout,
                })?),
                ConnectorConfig::Command {
                    program,
                    args,
                    timeout_seconds,
                    env,
                } => Arc::new(
                    CommandConnector::new(
                        &target.name,
                        program.clone(),
                        args.clone(),
                        *timeout_seconds,
                    )
                    .with_env(env.clone()),
                ),
                ConnectorConfig::Noop => Arc::new(NoopConnector::default()),
                ConnectorConfig::Authzen => Arc::new(PepEnforced),
            };
            by_target.insert(target.name.clone(), connector);
        }
        Ok(Self { by_target })
    }

    pub fn insert(&mut self, target: &str, connector: Arc<dyn Connector>) {
        self.by_target.insert(target.to_string(), connector);
    }

    pub fn get(&self, target: &str) -> Option<&Arc<dyn Connector>> {
        self.by_target.get(target)
    }
}
