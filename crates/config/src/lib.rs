//! writ's configuration, in two stages: `raw` mirrors the TOML file (unknown keys are
//! errors, `${ENV}` is replaced while parsing), then `validate` checks every reference
//! and produces the typed [`Config`] the rest of writ uses. Nothing reads the file twice.

mod authzen;
mod break_glass;
mod env;
mod itsm;
mod keys;
mod oidc;
mod raw;
mod scim;
mod targets;
mod tls;
mod validate;
mod workload;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use writ_domain::{
    DriftAction, EntitlementId, FindingKind, IdentityKind, IdentityName, Sensitivity,
};

pub use authzen::{Authzen, PepResource};
pub use break_glass::{
    BREAK_GLASS_MAX_DURATION_SECONDS, BreakGlassProfile, DEFAULT_INCIDENT_ISSUE_TYPE,
    DEFAULT_REVIEW_WITHIN_SECONDS, IncidentTicket,
};
pub use itsm::{
    Closure, DEFAULT_WEBHOOK_MAX_AGE_SECONDS, Itsm, ItsmAuth, ItsmKind, Notify, TicketFields,
};
pub use keys::{Access, KeySource, Keys, SecretKey};
pub use oidc::{DEFAULT_USERNAME_CLAIM, OidcProvider, SecretString};
pub use scim::{SCIM_TOKEN_LENGTH_MIN, ScimClient};
pub use tls::{ClientCa, Tls};
pub use validate::DEFAULT_PENDING_TTL_SECONDS;
pub use workload::{
    DEFAULT_MAX_TOKEN_LIFETIME_SECONDS, JwksSource, WorkloadBinding, WorkloadIssuer,
};

/// A configuration error: which file, where, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {key}: {problem}")]
    Invalid {
        path: PathBuf,
        key: String,
        problem: String,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from.
    pub path: PathBuf,
    pub listen: SocketAddr,
    /// Serves only `/metrics`, without a token (for a scraper on a private network).
    pub metrics_listen: Option<SocketAddr>,
    /// TLS for the API listener; `None`: plaintext HTTP.
    pub tls: Option<Tls>,
    /// Plaintext on a non-loopback address was asked for explicitly.
    pub allow_plaintext: bool,
    /// Where browsers reach writ (`https://writ.acme.example`), without a trailing
    /// slash; needed for browser sign-in.
    pub public_url: Option<String>,
    /// How long a browser sign-in session lasts.
    pub session_lifetime_seconds: i64,
    /// What one client may ask of the HTTP server (docs/configuration.md).
    pub http: HttpLimits,
    /// A sqlx database URL; SQLite paths are already resolved against the config folder.
    pub storage_url: String,
    pub policy_dir: PathBuf,
    /// How long a request may wait for approvals before it expires.
    pub pending_ttl_seconds: i64,
    /// The longest one checked ticket backs access, extensions of its grant included
    /// (`None`: no cap beyond the entitlement's and the ticket's own window).
    pub ticket_max_total_seconds: Option<i64>,
    /// The kinds of identity that may approve requests (default: users only).
    pub approver_kinds: Vec<IdentityKind>,
    /// The longest pause between two attempts to revoke the same grant.
    pub retry_backoff_max_seconds: i64,
    /// A revocation still failing this long after it started is escalated (once).
    pub escalate_after_seconds: i64,
    /// A service or agent whose owner left is disabled after this without a new owner.
    pub orphan_grace_seconds: i64,
    pub targets: BTreeMap<String, Target>,
    /// Ticketing systems, by name.
    pub itsms: BTreeMap<String, Itsm>,
    /// Where ledger events are sent as CloudEvents, by sink name.
    pub notify: BTreeMap<String, Notify>,
    pub entitlements: BTreeMap<EntitlementId, Entitlement>,
    pub identities: BTreeMap<IdentityName, Identity>,
    /// The keys writ keeps outside its database.
    pub keys: Keys,
    /// Which groups see everything.
    pub access: Access,
    /// Signed checkpoints of the ledger.
    pub checkpoints: Checkpoints,
    /// OpenID Connect providers whose tokens are accepted as bearer tokens.
    pub oidc: Vec<OidcProvider>,
    /// Platforms whose tokens prove services and agents (`workload` bindings).
    pub workload_issuers: Vec<WorkloadIssuer>,
    /// Identity providers that push people and groups over SCIM.
    pub scim_clients: Vec<ScimClient>,
    /// Emergency access profiles, by name.
    pub break_glass: BTreeMap<String, BreakGlassProfile>,
    /// writ as an AuthZEN policy decision point.
    pub authzen: Authzen,
}

/// Where signed ledger checkpoints go, and how often `writ serve` takes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoints {
    /// Each checkpoint is appended to this file as a JSON line.
    pub file: PathBuf,
    /// `None`: only on `writ audit checkpoint`.
    pub every_seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub connector: ConnectorConfig,
    /// How often `writ serve` reconciles the target with the grants; `None`: never
    /// on its own (`writ reconcile` still does).
    pub reconcile_every_seconds: Option<i64>,
    /// The most calls writ makes to the target at once.
    pub max_concurrency: usize,
    /// The most calls per second, when limited.
    pub max_rate_per_second: Option<u32>,
    /// Calls failing in a row that open the circuit breaker ...
    pub circuit_failures: u32,
    /// ... for this long.
    pub circuit_cooldown_seconds: i64,
    /// The longest writ waits for one call to the target; then its outcome is
    /// unknown and checked again (and a PostgreSQL statement or lock wait gives up).
    pub call_timeout_seconds: i64,
}

/// Bounds on what HTTP clients can make writ do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// A client must send a request's line and headers within this.
    pub header_read_timeout_seconds: i64,
    /// A request (reading its body and answering) must finish within this: 408.
    pub request_timeout_seconds: i64,
    /// Requests handled at once; more are refused at once with 503.
    pub concurrency_limit: usize,
    /// Requests per second one identity may make (burst: twice as many); `None`: off.
    pub rate_limit_per_identity: Option<u32>,
    /// Webhook deliveries per second from one source address; `None`: off.
    pub webhook_rate_limit_per_source: Option<u32>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout_seconds: 10,
            request_timeout_seconds: 30,
            concurrency_limit: 512,
            rate_limit_per_identity: Some(50),
            webhook_rate_limit_per_source: Some(20),
        }
    }
}

/// How long one call to a target may take unless its `call_timeout` says otherwise.
pub const DEFAULT_CALL_TIMEOUT_SECONDS: i64 = 30;

/// How often a target is reconciled unless its `reconcile_every` says otherwise.
pub const DEFAULT_RECONCILE_EVERY_SECONDS: i64 = 3600;

/// What reconciliation does about each kind of finding on an entitlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriftPolicy {
    pub unmanaged: DriftAction,
    pub lingering: DriftAction,
    pub missing: DriftAction,
}

impl Default for DriftPolicy {
    fn default() -> Self {
        Self {
            unmanaged: FindingKind::Unmanaged.default_action(),
            lingering: FindingKind::Lingering.default_action(),
            missing: FindingKind::Missing.default_action(),
        }
    }
}

impl DriftPolicy {
    pub fn action(&self, kind: FindingKind) -> DriftAction {
        match kind {
            FindingKind::Unmanaged => self.unmanaged,
            FindingKind::Lingering => self.lingering,
            FindingKind::Missing => self.missing,
            FindingKind::NotPermitted | FindingKind::EntitlementChanged => DriftAction::Report,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorConfig {
    /// GRANT / REVOKE a role on a PostgreSQL server.
    Postgres {
        url: String,
        /// The role that takes over what a short-lived credential's login created
        /// before the login is dropped: `NOLOGIN`, no privileges, created if missing.
        orphan_owner: String,
    },
    /// GRANT / REVOKE a role on a MariaDB or MySQL server.
    Mariadb {
        url: String,
        /// The host part of accounts written without one (`alice` is `'alice'@'%'`).
        account_host: String,
        /// Make granted roles the account's default role (`SET DEFAULT ROLE`).
        default_role: bool,
    },
    /// Add and remove accounts in directory groups over LDAP.
    Ldap(LdapTarget),
    /// Add and remove users in an application's groups over SCIM 2.0.
    Scim(ScimTarget),
    /// Run a program with a JSON document on stdin for grant / revoke / check.
    Command {
        program: PathBuf,
        args: Vec<String>,
        timeout_seconds: u64,
        /// writ's environment variables the program also gets (its environment is
        /// otherwise cleared but for `PATH` and the call's `WRIT_*`).
        env: Vec<String>,
    },
    /// Keeps memberships in memory; for benchmarks and trials.
    Noop,
    /// Enforced by policy enforcement points that ask writ (the AuthZEN API): a lease
    /// is the access, so writ is the target's source of truth and nothing is called.
    Authzen,
}

impl ConnectorConfig {
    /// Whether writ's own leases are the access (PEPs ask writ), so there is no
    /// target to change, read back or reconcile.
    pub fn enforced_by_writ(&self) -> bool {
        matches!(self, Self::Authzen)
    }
}

/// A directory: where groups and accounts are, and how writ binds.
#[derive(Clone, PartialEq, Eq)]
pub struct LdapTarget {
    /// `ldap://` (with StartTLS unless `starttls = false`) or `ldaps://`.
    pub url: String,
    pub starttls: bool,
    /// PEM roots trusted for the directory's certificate; `None`: the system's.
    pub ca_file: Option<PathBuf>,
    pub bind_dn: String,
    pub bind_password: String,
    pub group_base: String,
    pub group_attribute: String,
    /// `member` or `uniqueMember`.
    pub member_attribute: String,
    pub account_base: String,
    pub account_attribute: String,
    pub account_filter: Option<String>,
    pub placeholder_member: Option<String>,
}

impl std::fmt::Debug for LdapTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapTarget")
            .field("url", &self.url)
            .field("starttls", &self.starttls)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password", &"<redacted>")
            .field("group_base", &self.group_base)
            .field("member_attribute", &self.member_attribute)
            .field("account_base", &self.account_base)
            .finish_non_exhaustive()
    }
}

/// An application that accepts SCIM 2.0: its base URL and writ's bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct ScimTarget {
    pub url: String,
    pub bearer_token: String,
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for ScimTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimTarget")
            .field("url", &self.url)
            .field("bearer_token", &"<redacted>")
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    pub id: EntitlementId,
    pub target: String,
    /// Connector-specific: the role or group granted.
    pub role: String,
    pub sensitivity: Sensitivity,
    pub max_duration_seconds: i64,
    pub owners: Option<String>,
    /// Requests must carry a ticket from a configured ITSM, which writ checks.
    pub ticket_required: bool,
    /// What reconciliation does about differences on the target.
    pub drift: DriftPolicy,
    /// Grants issue a short-lived login of their own (PostgreSQL targets; services and
    /// agents only) instead of giving the role to the subject's account.
    pub credential: bool,
    /// What happens to a live grant that policy, decided again, no longer permits.
    pub on_policy_change: PolicyChangeAction,
    /// On a target of kind `authzen`: the AuthZEN resource and actions a lease allows.
    pub pep: Option<PepResource>,
}

impl Entitlement {
    /// What a request records of it.
    pub fn facts(&self) -> writ_domain::EntitlementFacts {
        writ_domain::EntitlementFacts {
            target: self.target.clone(),
            role: self.role.clone(),
            sensitivity: self.sensitivity,
        }
    }
}

/// What happens to a live grant that the policy in force no longer permits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PolicyChangeAction {
    /// Revoke it (reason `no_longer_permitted`).
    #[default]
    Revoke,
    /// Keep it, and open a `not_permitted` finding for the entitlement's owners.
    Review,
}

impl PolicyChangeAction {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "revoke" => Some(Self::Revoke),
            "review" => Some(Self::Review),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: IdentityName,
    pub kind: IdentityKind,
    pub groups: Vec<String>,
    pub manager: Option<IdentityName>,
    /// Services and agents: the accountable user.
    pub owner: Option<IdentityName>,
    /// A disabled identity cannot authenticate; services and agents it owns are orphaned.
    pub disabled: bool,
    /// Target or ITSM name → this identity's account there (on an ITSM: the user id
    /// its API reports, e.g. a Jira accountId or a ServiceNow sys_user sys_id).
    pub accounts: BTreeMap<String, String>,
    /// Agents: the users besides its owner it may act for (`on_behalf_of`).
    pub delegates: Vec<IdentityName>,
    /// Services and agents: the platform tokens and client certificates that prove
    /// a caller is this identity.
    pub workloads: Vec<WorkloadBinding>,
    /// When the identity ends: from then on it is a leaver, and no grant of it runs
    /// past this.
    pub valid_until: Option<writ_domain::Timestamp>,
}

impl Identity {
    /// A user in one of `[access].auditors` (or an admin): reads everything and may
    /// verify the ledger. Services and agents never are.
    pub fn is_auditor(&self, access: &Access) -> bool {
        self.is_admin(access) || self.in_any(&access.auditor_groups)
    }

    /// A user in one of `[access].admins`: as an auditor, and may reconcile and manage
    /// anyone's tokens.
    pub fn is_admin(&self, access: &Access) -> bool {
        self.in_any(&access.admin_groups)
    }

    fn in_any(&self, groups: &[String]) -> bool {
        self.kind == IdentityKind::User
            && !self.disabled
            && self.groups.iter().any(|group| groups.contains(group))
    }

    /// A leaver at `now`: disabled, or past its `valid_until`.
    pub fn has_left(&self, now: writ_domain::Timestamp) -> bool {
        self.disabled || self.valid_until.is_some_and(|end| end <= now)
    }

    /// The account this identity has on `target` (its own name unless configured).
    pub fn account_on(&self, target: &str) -> &str {
        self.accounts
            .get(target)
            .map_or(self.name.as_str(), String::as_str)
    }
}

/// Where and what, without the offending line: TOML's own message quotes it, and the
/// line may hold a password in any form (`password = "…"`, a URL, an inline table).
fn parse_error_message(text: &str, error: &toml::de::Error) -> String {
    let message = writ_domain::redact_credentials(error.message().trim_end());
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

impl Config {
    /// Reads, interpolates and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(path, &text)
    }

    /// Parses and validates `text` as if it had been read from `path`.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw: raw::RawConfig = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            message: parse_error_message(text, &error),
        })?;
        validate::validate(path, raw)
    }

    pub fn identity(&self, name: &str) -> Option<&Identity> {
        name.parse::<IdentityName>()
            .ok()
            .and_then(|name| self.identities.get(&name))
    }

    /// The identity whose account on `system` (a target or ITSM) is `account`.
    pub fn identity_by_account(&self, system: &str, account: &str) -> Option<&Identity> {
        self.identities
            .values()
            .find(|identity| identity.accounts.get(system).is_some_and(|a| a == account))
    }

    pub fn entitlement(&self, id: &str) -> Option<&Entitlement> {
        id.parse::<EntitlementId>()
            .ok()
            .and_then(|id| self.entitlements.get(&id))
    }
}
