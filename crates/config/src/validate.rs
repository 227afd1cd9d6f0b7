//! Raw → typed. Every reference is checked here, once, with the key that holds it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use writ_domain::{
    DriftAction, EntitlementId, FindingKind, IdentityKind, IdentityName, Sensitivity,
    parse_duration_seconds,
};

use crate::env::EnvString;
use crate::raw::{RawConfig, RawIdentity, RawTarget};
use crate::{
    Config, ConfigError, ConnectorConfig, DEFAULT_RECONCILE_EVERY_SECONDS, DriftPolicy,
    Entitlement, Identity, PolicyChangeAction, Target,
};

pub const DEFAULT_PENDING_TTL_SECONDS: i64 = 24 * 3600;
/// How long a service or agent whose owner left may go without a new one.
pub const DEFAULT_ORPHAN_GRACE_SECONDS: i64 = 7 * 24 * 3600;
const DEFAULT_LISTEN: &str = "127.0.0.1:7070";
const DEFAULT_SESSION_LIFETIME_SECONDS: i64 = 8 * 3600;
const DEFAULT_STORAGE_URL: &str = "sqlite://writ.db";
const DEFAULT_CHECKPOINT_FILE: &str = "ledger-checkpoints.jsonl";
const DEFAULT_CHECKPOINT_EVERY_SECONDS: i64 = 60;
/// Who owns what short-lived credentials created, once they are gone.
pub const DEFAULT_ORPHAN_OWNER: &str = "writ_orphaned";
/// The host part of a MariaDB account written without one.
pub const DEFAULT_ACCOUNT_HOST: &str = "%";
const DEFAULT_POLICY_DIR: &str = "policies";
const DEFAULT_COMMAND_TIMEOUT_SECONDS: u64 = 10;
const DEFAULT_ESCALATE_AFTER_SECONDS: i64 = 15 * 60;
const DEFAULT_MAX_CONCURRENCY: usize = 16;
const DEFAULT_CIRCUIT_FAILURES: u32 = 5;
const DEFAULT_CIRCUIT_COOLDOWN_SECONDS: i64 = 10;
const DEFAULT_RETRY_BACKOFF_MAX_SECONDS: i64 = 300;

pub(crate) struct Checker<'a> {
    path: &'a Path,
    base: PathBuf,
}

impl Checker<'_> {
    pub(crate) fn invalid(
        &self,
        key: impl Into<String>,
        problem: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            key: key.into(),
            // Problems quote values, and a value may be a URL with a password in it.
            problem: writ_domain::redact_credentials(&problem.into()),
        }
    }

    pub(crate) fn duration(&self, key: &str, text: &str) -> Result<i64, ConfigError> {
        parse_duration_seconds(text).map_err(|problem| {
            self.invalid(
                key,
                format!("{text:?} is not a duration ({problem}); write e.g. \"8h\" or \"30m\""),
            )
        })
    }

    pub(crate) fn relative(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base.join(path)
        }
    }

    /// A target or ITSM name: letters, digits, `_ - .`.
    pub(crate) fn system_name(&self, key: &str, name: String) -> Result<String, ConfigError> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(self.invalid(key, format!("{name:?} must be letters, digits, _ - . only")));
        }
        Ok(name)
    }

    pub(crate) fn identity_kind(&self, key: &str, text: &str) -> Result<IdentityKind, ConfigError> {
        match text {
            "user" => Ok(IdentityKind::User),
            "service" => Ok(IdentityKind::Service),
            "agent" => Ok(IdentityKind::Agent),
            other => Err(self.invalid(
                key,
                format!("{other:?} is not an identity kind (user, service, agent)"),
            )),
        }
    }

    fn identity_name(&self, key: &str, text: &str) -> Result<IdentityName, ConfigError> {
        text.parse()
            .map_err(|error: writ_domain::InvalidId| self.invalid(key, error.to_string()))
    }
}

pub fn validate(path: &Path, raw: RawConfig) -> Result<Config, ConfigError> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    let check = Checker { path, base };

    let listen_text = raw
        .server
        .listen
        .as_ref()
        .map_or(DEFAULT_LISTEN.to_string(), |s| s.0.clone());
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        check.invalid(
            "server.listen",
            format!("{listen_text:?} is not an address like \"127.0.0.1:7070\""),
        )
    })?;

    let metrics_listen = raw
        .server
        .metrics_listen
        .as_ref()
        .map(|text| {
            text.0.parse::<SocketAddr>().map_err(|_| {
                check.invalid(
                    "server.metrics_listen",
                    format!("{:?} is not an address like \"127.0.0.1:9464\"", text.0),
                )
            })
        })
        .transpose()?;
    if metrics_listen == Some(listen) {
        return Err(check.invalid(
            "server.metrics_listen",
            "must differ from server.listen (it serves /metrics without a token)",
        ));
    }

    let (tls, allow_plaintext) = crate::tls::validate_tls(&check, &raw.server, listen)?;
    let public_url = raw
        .server
        .public_url
        .as_ref()
        .map(|u| {
            crate::oidc::checked_url(
                &check,
                "server.public_url",
                u.0.trim_end_matches('/').to_string(),
            )
        })
        .transpose()?;
    let session_lifetime_seconds = match &raw.server.session_lifetime {
        Some(text) => check.duration("server.session_lifetime", &text.0)?,
        None => DEFAULT_SESSION_LIFETIME_SECONDS,
    };
    let http = http_limits(&check, &raw.server)?;
    let keys = crate::keys::validate_keys(&check, raw.keys)?;
    let access = crate::keys::validate_access(&check, raw.access)?;
    let checkpoints = crate::Checkpoints {
        file: check.relative(
            raw.audit
                .checkpoint_file
                .as_ref()
                .map_or(DEFAULT_CHECKPOINT_FILE, |f| f.0.as_str()),
        ),
        every_seconds: match raw.audit.checkpoint_every.as_ref().map(|t| t.0.as_str()) {
            None => Some(DEFAULT_CHECKPOINT_EVERY_SECONDS),
            Some("off") => None,
            Some(text) => Some(check.duration("audit.checkpoint_every", text)?),
        },
    };
    let storage_url = storage_url(
        &check,
        raw.storage
            .url
            .map_or(DEFAULT_STORAGE_URL.to_string(), |s| s.0),
    )?;
    let policy_dir = check.relative(
        &raw.policy
            .dir
            .map_or(DEFAULT_POLICY_DIR.to_string(), |s| s.0),
    );
    let approver_kinds = match raw.requests.approver_kinds {
        None => vec![IdentityKind::User],
        Some(kinds) => {
            let mut parsed = Vec::new();
            for (i, kind) in kinds.iter().enumerate() {
                parsed
                    .push(check.identity_kind(&format!("requests.approver_kinds[{i}]"), &kind.0)?);
            }
            parsed
        }
    };
    let pending_ttl_seconds = match raw.requests.pending_ttl {
        Some(text) => check.duration("requests.pending_ttl", &text.0)?,
        None => DEFAULT_PENDING_TTL_SECONDS,
    };
    let ticket_max_total_seconds = match raw.requests.ticket_max_total {
        Some(text) if text.0 == "off" => None,
        Some(text) => {
            let seconds = check.duration("requests.ticket_max_total", &text.0)?;
            if seconds <= 0 {
                return Err(check.invalid(
                    "requests.ticket_max_total",
                    "must be longer than nothing, or \"off\"",
                ));
            }
            Some(seconds)
        }
        None => None,
    };
    let retry_backoff_max_seconds = match raw.revocation.retry_backoff_max {
        Some(text) => check.duration("revocation.retry_backoff_max", &text.0)?,
        None => DEFAULT_RETRY_BACKOFF_MAX_SECONDS,
    };
    let orphan_grace_seconds = match raw.identities.orphan_grace {
        Some(text) => check.duration("identities.orphan_grace", &text.0)?,
        None => DEFAULT_ORPHAN_GRACE_SECONDS,
    };
    let escalate_after_seconds = match raw.revocation.escalate_after {
        Some(text) => check.duration("revocation.escalate_after", &text.0)?,
        None => DEFAULT_ESCALATE_AFTER_SECONDS,
    };

    let mut targets = BTreeMap::new();
    for (index, target) in raw.targets.into_iter().enumerate() {
        let target = validate_target(&check, index, target)?;
        if targets.contains_key(&target.name) {
            return Err(check.invalid(
                format!("target[{index}].name"),
                format!("target {:?} is defined twice", target.name),
            ));
        }
        targets.insert(target.name.clone(), target);
    }

    let oidc = crate::oidc::validate_oidc(&check, raw.oidc)?;
    if public_url.is_none()
        && let Some(index) = oidc.iter().position(|p| p.web_client_id.is_some())
    {
        return Err(check.invalid(
            format!("oidc[{index}].web_client_id"),
            "browser sign-in needs server.public_url (where the provider sends browsers back to)",
        ));
    }
    let workload_issuers = crate::workload::validate_workload_issuers(
        &check,
        raw.workload_issuers,
        &oidc.iter().map(|p| p.issuer.as_str()).collect::<Vec<_>>(),
    )?;
    let scim_clients = crate::scim::validate_scim(&check, raw.scim_clients)?;
    let mut itsms = BTreeMap::new();
    for (index, raw) in raw.itsms.into_iter().enumerate() {
        let itsm = crate::itsm::validate_itsm(&check, index, raw)?;
        if targets.contains_key(&itsm.name) || itsms.contains_key(&itsm.name) {
            return Err(check.invalid(
                format!("itsm[{index}].name"),
                format!("{:?} is already the name of a target or ITSM; names are unique across both (identities' accounts are keyed by them)", itsm.name),
            ));
        }
        itsms.insert(itsm.name.clone(), itsm);
    }

    let mut notify: BTreeMap<String, crate::Notify> = BTreeMap::new();
    for (index, raw) in raw.notify.into_iter().enumerate() {
        let sink = crate::itsm::validate_notify(&check, index, raw)?;
        if notify.contains_key(&sink.name) {
            return Err(check.invalid(
                format!("notify[{index}].name"),
                format!("notify {:?} is defined twice", sink.name),
            ));
        }
        notify.insert(sink.name.clone(), sink);
    }

    let mut entitlements = BTreeMap::new();
    let mut shared_roles: BTreeSet<EntitlementId> = BTreeSet::new();
    for (index, raw) in raw.entitlements.into_iter().enumerate() {
        let key = |field: &str| format!("entitlement[{index}].{field}");
        let id: EntitlementId =
            raw.id.0.parse().map_err(|error: writ_domain::InvalidId| {
                check.invalid(key("id"), error.to_string())
            })?;
        if !targets.contains_key(&raw.target.0) {
            return Err(check.invalid(
                key("target"),
                format!(
                    "unknown target {:?} (define it in a [[target]] table)",
                    raw.target.0
                ),
            ));
        }
        if id.target() != raw.target.0 {
            return Err(check.invalid(
                key("id"),
                format!(
                    "{id} must start with its target's name: \"{}/...\"",
                    raw.target.0
                ),
            ));
        }
        if raw.role.0.is_empty() {
            return Err(check.invalid(key("role"), "must not be empty"));
        }
        let sensitivity: Sensitivity =
            raw.sensitivity
                .0
                .parse()
                .map_err(|error: writ_domain::InvalidId| {
                    check.invalid(key("sensitivity"), error.to_string())
                })?;
        let max_duration_seconds = check.duration(&key("max_duration"), &raw.max_duration.0)?;
        let owners = raw.owners.map(|owners| owners.0);
        let drift_action = |field: &str, kind: FindingKind, value: Option<EnvString>| {
            let Some(text) = value else {
                return Ok(kind.default_action());
            };
            match DriftAction::parse(&text.0) {
                Some(action) if kind.allows(action) => Ok(action),
                _ => {
                    let allowed = if kind == FindingKind::Missing {
                        "report or reapply"
                    } else {
                        "report or revoke"
                    };
                    Err(check.invalid(
                        key(field),
                        format!(
                            "{:?} is not an action for {} access; expected {allowed}",
                            text.0, kind
                        ),
                    ))
                }
            }
        };
        let credential = raw.credential.unwrap_or(false);
        if credential
            && !matches!(
                targets.get(&raw.target.0).map(|t| &t.connector),
                Some(ConnectorConfig::Postgres { .. } | ConnectorConfig::Mariadb { .. })
            )
        {
            return Err(check.invalid(
                key("credential"),
                "short-lived credentials can only be issued on postgres and mariadb targets",
            ));
        }
        // A credential's secret is handed over once; writ cannot put a lost one back.
        let missing = match (credential, raw.on_missing) {
            (true, Some(text)) if text.0 != "report" => {
                return Err(check.invalid(
                    key("on_missing"),
                    "a credential cannot be reapplied (its secret was handed over once); use \"report\"",
                ));
            }
            (true, _) => DriftAction::Report,
            (false, value) => drift_action("on_missing", FindingKind::Missing, value)?,
        };
        let drift = DriftPolicy {
            unmanaged: drift_action("on_unmanaged", FindingKind::Unmanaged, raw.on_unmanaged)?,
            lingering: drift_action("on_lingering", FindingKind::Lingering, raw.on_lingering)?,
            missing,
        };
        let on_policy_change = match raw.on_policy_change {
            None => PolicyChangeAction::default(),
            Some(text) => PolicyChangeAction::parse(&text.0).ok_or_else(|| {
                check.invalid(
                    key("on_policy_change"),
                    format!("{:?} is not an action; expected revoke or review", text.0),
                )
            })?,
        };
        if entitlements.contains_key(&id) {
            return Err(check.invalid(key("id"), format!("entitlement {id} is defined twice")));
        }
        // Two entitlements granting one role on one target would revoke each other's
        // access; only entitlements that say so may share it.
        let shared = raw.shared_role.unwrap_or(false);
        if let Some((other, _)) =
            entitlements
                .iter()
                .find(|(_, e): &(&EntitlementId, &Entitlement)| {
                    e.target == raw.target.0 && e.role == raw.role.0
                })
            && !(shared && shared_roles.contains(other))
        {
            return Err(check.invalid(
                key("role"),
                format!(
                    "{id} grants role {:?} on {}, as {other} does; mark both shared_role = true if that is meant",
                    raw.role.0, raw.target.0
                ),
            ));
        }
        if shared {
            shared_roles.insert(id.clone());
        }
        let enforced_by_writ = targets
            .get(&raw.target.0)
            .is_some_and(|t| t.connector.enforced_by_writ());
        let pep = match (enforced_by_writ, raw.authzen) {
            (true, Some(resource)) => Some(crate::authzen::validate_pep_resource(
                &check,
                &key("authzen"),
                resource,
            )?),
            (true, None) => {
                return Err(check.invalid(
                    key("authzen"),
                    format!(
                        "{id} is on authzen target {}: say which AuthZEN resource and actions a lease allows, e.g. authzen = {{ resource_type = \"api\", resource_id = \"orders\", actions = [\"refund\"] }}",
                        raw.target.0
                    ),
                ));
            }
            (false, Some(_)) => {
                return Err(check.invalid(
                    key("authzen"),
                    format!(
                        "only entitlements on a target of kind \"authzen\" are enforced by AuthZEN clients; {} is not one",
                        raw.target.0
                    ),
                ));
            }
            (false, None) => None,
        };
        entitlements.insert(
            id.clone(),
            Entitlement {
                id,
                target: raw.target.0,
                role: raw.role.0,
                sensitivity,
                max_duration_seconds,
                owners,
                ticket_required: raw.ticket_required.unwrap_or(false),
                drift,
                credential,
                on_policy_change,
                pep,
            },
        );
    }

    let break_glass = crate::break_glass::validate_break_glass(
        &check,
        raw.break_glass,
        &entitlements,
        &mut notify,
        &itsms,
    )?;

    let systems: BTreeSet<&str> = targets
        .keys()
        .chain(itsms.keys())
        .map(String::as_str)
        .collect();
    let itsm_names: BTreeSet<&str> = itsms.keys().map(String::as_str).collect();
    let identities = validate_identities(
        &check,
        &systems,
        &itsm_names,
        raw.users,
        raw.services,
        raw.agents,
    )?;

    let authzen = crate::authzen::validate_authzen(&check, raw.authzen, &identities)?;

    crate::workload::check_bindings(
        &check,
        &identities,
        &workload_issuers,
        tls.as_ref().is_some_and(|tls| tls.client_ca.is_some()),
    )?;

    Ok(Config {
        path: path.to_path_buf(),
        listen,
        metrics_listen,
        tls,
        allow_plaintext,
        public_url,
        session_lifetime_seconds,
        http,
        storage_url,
        policy_dir,
        pending_ttl_seconds,
        ticket_max_total_seconds,
        approver_kinds,
        retry_backoff_max_seconds,
        escalate_after_seconds,
        orphan_grace_seconds,
        targets,
        itsms,
        notify,
        entitlements,
        identities,
        keys,
        access,
        checkpoints,
        oidc,
        workload_issuers,
        scim_clients,
        break_glass,
        authzen,
    })
}

fn http_limits(
    check: &Checker<'_>,
    raw: &crate::raw::RawServer,
) -> Result<crate::HttpLimits, ConfigError> {
    let defaults = crate::HttpLimits::default();
    let seconds = |key: &str, value: &Option<crate::env::EnvString>, default: i64| match value {
        Some(text) => check.duration(key, &text.0),
        None => Ok(default),
    };
    // A per-second rate: a positive number, or "off".
    let rate = |key: &str, value: &Option<toml::Value>, default: Option<u32>| match value {
        None => Ok(default),
        Some(toml::Value::String(off)) if off == "off" => Ok(None),
        Some(toml::Value::Integer(n)) if *n >= 1 => u32::try_from(*n)
            .map(Some)
            .map_err(|_| check.invalid(key, "is too large")),
        Some(other) => Err(check.invalid(
            key,
            format!("{other} is not a number of requests per second (at least 1) or \"off\""),
        )),
    };
    let concurrency_limit = match raw.concurrency_limit {
        Some(0) => return Err(check.invalid("server.concurrency_limit", "must be at least 1")),
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None => defaults.concurrency_limit,
    };
    Ok(crate::HttpLimits {
        header_read_timeout_seconds: seconds(
            "server.header_read_timeout",
            &raw.header_read_timeout,
            defaults.header_read_timeout_seconds,
        )?,
        request_timeout_seconds: seconds(
            "server.request_timeout",
            &raw.request_timeout,
            defaults.request_timeout_seconds,
        )?,
        concurrency_limit,
        rate_limit_per_identity: rate(
            "server.rate_limit",
            &raw.rate_limit,
            defaults.rate_limit_per_identity,
        )?,
        webhook_rate_limit_per_source: rate(
            "server.webhook_rate_limit",
            &raw.webhook_rate_limit,
            defaults.webhook_rate_limit_per_source,
        )?,
    })
}

fn storage_url(check: &Checker<'_>, url: String) -> Result<String, ConfigError> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        let (file, query) = path.split_once('?').unwrap_or((path, ""));
        if file.is_empty() {
            return Err(check.invalid(
                "storage.url",
                "a SQLite URL needs a file, e.g. \"sqlite://writ.db\"",
            ));
        }
        if file == ":memory:" {
            return Ok(url);
        }
        let file = check.relative(file);
        let query = if query.is_empty() {
            "mode=rwc".to_string()
        } else {
            query.to_string()
        };
        return Ok(format!("sqlite://{}?{query}", file.display()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url);
    }
    Err(check.invalid(
        "storage.url",
        format!("{url:?} is neither a sqlite:// nor a postgres:// URL"),
    ))
}

/// Keys of the database and command targets, which directory and SCIM targets do not take.
fn database_and_command_keys(raw: &RawTarget) -> [(&'static str, bool); 7] {
    [
        ("command", raw.command.is_some()),
        ("args", !raw.args.is_empty()),
        ("timeout", raw.timeout.is_some()),
        ("env", !raw.env.is_empty()),
        ("orphan_owner", raw.orphan_owner.is_some()),
        ("account_host", raw.account_host.is_some()),
        ("default_role", raw.default_role.is_some()),
    ]
}

fn validate_target(
    check: &Checker<'_>,
    index: usize,
    mut raw: RawTarget,
) -> Result<Target, ConfigError> {
    let key = |field: &str| format!("target[{index}].{field}");
    let name = check.system_name(&key("name"), std::mem::take(&mut raw.name.0))?;
    let kind = raw.kind.0.clone();
    let unused = |field: &str, value: bool| -> Result<(), ConfigError> {
        if value {
            Err(check.invalid(
                key(field),
                format!("is not used by targets of kind {kind:?}"),
            ))
        } else {
            Ok(())
        }
    };
    if raw.kind.0 != "ldap"
        && let Some(field) = raw.ldap_key()
    {
        unused(field, true)?;
    }
    if raw.kind.0 != "scim" {
        unused("bearer_token", raw.bearer_token.is_some())?;
    }
    if !matches!(raw.kind.0.as_str(), "ldap" | "scim") {
        unused("ca_file", raw.ca_file.is_some())?;
    }
    // Kinds with no system of their own to reach take none of the settings for one.
    let nothing_to_reach = || -> Result<(), ConfigError> {
        unused("url", raw.url.is_some())?;
        unused("command", raw.command.is_some())?;
        unused("orphan_owner", raw.orphan_owner.is_some())?;
        unused("account_host", raw.account_host.is_some())?;
        unused("default_role", raw.default_role.is_some())?;
        unused("env", !raw.env.is_empty())
    };
    let connector = match raw.kind.0.as_str() {
        "ldap" => {
            for (field, present) in database_and_command_keys(&raw) {
                unused(field, present)?;
            }
            ConnectorConfig::Ldap(crate::targets::ldap(check, &key, &mut raw)?)
        }
        "scim" => {
            for (field, present) in database_and_command_keys(&raw) {
                unused(field, present)?;
            }
            ConnectorConfig::Scim(crate::targets::scim(check, &key, &mut raw)?)
        }
        "postgres" => {
            unused("command", raw.command.is_some())?;
            unused("args", !raw.args.is_empty())?;
            unused("timeout", raw.timeout.is_some())?;
            unused("env", !raw.env.is_empty())?;
            let url = raw
                .url
                .ok_or_else(|| check.invalid(key("url"), "a postgres target needs a url"))?
                .0;
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(check.invalid(key("url"), format!("{url:?} is not a postgres:// URL")));
            }
            let orphan_owner = match raw.orphan_owner {
                Some(name) => check.system_name(&key("orphan_owner"), name.0)?,
                None => DEFAULT_ORPHAN_OWNER.to_string(),
            };
            unused("account_host", raw.account_host.is_some())?;
            unused("default_role", raw.default_role.is_some())?;
            ConnectorConfig::Postgres { url, orphan_owner }
        }
        "mariadb" | "mysql" => {
            unused("command", raw.command.is_some())?;
            unused("args", !raw.args.is_empty())?;
            unused("timeout", raw.timeout.is_some())?;
            unused("env", !raw.env.is_empty())?;
            unused("orphan_owner", raw.orphan_owner.is_some())?;
            let url = raw
                .url
                .ok_or_else(|| check.invalid(key("url"), "a mariadb target needs a url"))?
                .0;
            if !(url.starts_with("mysql://") || url.starts_with("mariadb://")) {
                return Err(check.invalid(
                    key("url"),
                    format!("{url:?} is not a mysql:// or mariadb:// URL"),
                ));
            }
            let account_host = match raw.account_host {
                Some(host) if host.0.is_empty() || host.0.contains('\0') => {
                    return Err(check.invalid(
                        key("account_host"),
                        "must be a host name or pattern such as % or 10.0.%",
                    ));
                }
                Some(host) => host.0,
                None => DEFAULT_ACCOUNT_HOST.to_string(),
            };
            ConnectorConfig::Mariadb {
                url,
                account_host,
                default_role: raw.default_role.unwrap_or(false),
            }
        }
        "command" => {
            unused("url", raw.url.is_some())?;
            unused("orphan_owner", raw.orphan_owner.is_some())?;
            unused("account_host", raw.account_host.is_some())?;
            unused("default_role", raw.default_role.is_some())?;
            let command = raw
                .command
                .ok_or_else(|| check.invalid(key("command"), "a command target needs a command"))?
                .0;
            // A bare program name is looked up on PATH; anything with a slash is a path
            // relative to the config folder.
            let program = if command.contains('/') {
                check.relative(&command)
            } else {
                PathBuf::from(command)
            };
            let timeout_seconds = match raw.timeout {
                Some(text) => u64::try_from(check.duration(&key("timeout"), &text.0)?)
                    .unwrap_or(DEFAULT_COMMAND_TIMEOUT_SECONDS),
                None => DEFAULT_COMMAND_TIMEOUT_SECONDS,
            };
            for (i, name) in raw.env.iter().enumerate() {
                let valid = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(check.invalid(
                        key(&format!("env[{i}]")),
                        format!("{name:?} is not an environment variable name"),
                    ));
                }
            }
            ConnectorConfig::Command {
                program,
                args: raw.args.into_iter().map(|a| a.0).collect(),
                timeout_seconds,
                env: raw.env,
            }
        }
        "noop" => {
            nothing_to_reach()?;
            ConnectorConfig::Noop
        }
        "authzen" => {
            nothing_to_reach()?;
            if raw.reconcile_every.is_some() {
                return Err(check.invalid(
                    key("reconcile_every"),
                    "an authzen target has nothing to reconcile: its enforcement points ask writ, whose leases are the access",
                ));
            }
            ConnectorConfig::Authzen
        }
        other => {
            return Err(check.invalid(
                key("kind"),
                format!(
                    "unknown kind {other:?}; expected postgres, mariadb, ldap, scim, command, authzen or noop"
                ),
            ));
        }
    };
    let reconcile_every_seconds = match raw.reconcile_every {
        None if connector.enforced_by_writ() => None,
        None => Some(DEFAULT_RECONCILE_EVERY_SECONDS),
        Some(text) if text.0 == "off" => None,
        Some(text) => Some(check.duration(&key("reconcile_every"), &text.0)?),
    };
    let max_concurrency = match raw.max_concurrency {
        None => DEFAULT_MAX_CONCURRENCY,
        Some(0) => return Err(check.invalid(key("max_concurrency"), "must be at least 1")),
        Some(n) => usize::try_from(n).unwrap_or(DEFAULT_MAX_CONCURRENCY),
    };
    let max_rate_per_second = match raw.max_rate {
        Some(0) => {
            return Err(check.invalid(
                key("max_rate"),
                "must be at least 1 (calls per second); leave it out for no limit",
            ));
        }
        other => other,
    };
    let circuit_failures = match raw.circuit_failures {
        Some(0) => return Err(check.invalid(key("circuit_failures"), "must be at least 1")),
        other => other.unwrap_or(DEFAULT_CIRCUIT_FAILURES),
    };
    let circuit_cooldown_seconds = match raw.circuit_cooldown {
        Some(text) => check.duration(&key("circuit_cooldown"), &text.0)?,
        None => DEFAULT_CIRCUIT_COOLDOWN_SECONDS,
    };
    let call_timeout_seconds = match raw.call_timeout {
        Some(text) => check.duration(&key("call_timeout"), &text.0)?,
        None => crate::DEFAULT_CALL_TIMEOUT_SECONDS,
    };
    Ok(Target {
        name,
        connector,
        reconcile_every_seconds,
        max_concurrency,
        max_rate_per_second,
        circuit_failures,
        circuit_cooldown_seconds,
        call_timeout_seconds,
    })
}

fn validate_identities(
    check: &Checker<'_>,
    systems: &BTreeSet<&str>,
    itsms: &BTreeSet<&str>,
    users: Vec<RawIdentity>,
    services: Vec<RawIdentity>,
    agents: Vec<RawIdentity>,
) -> Result<BTreeMap<IdentityName, Identity>, ConfigError> {
    let mut identities = BTreeMap::new();
    let all = users
        .into_iter()
        .enumerate()
        .map(|(i, r)| (IdentityKind::User, i, r))
        .chain(
            services
                .into_iter()
                .enumerate()
                .map(|(i, r)| (IdentityKind::Service, i, r)),
        )
        .chain(
            agents
                .into_iter()
                .enumerate()
                .map(|(i, r)| (IdentityKind::Agent, i, r)),
        );
    for (kind, index, raw) in all {
        let key = |field: &str| format!("{}[{index}].{field}", kind.as_str());
        let name = check.identity_name(&key("name"), &raw.name.0)?;
        let mut groups = Vec::new();
        for (g, group) in raw.groups.into_iter().enumerate() {
            check.identity_name(&key(&format!("groups[{g}]")), &group.0)?;
            groups.push(group.0);
        }
        let manager = raw
            .manager
            .map(|m| check.identity_name(&key("manager"), &m.0))
            .transpose()?;
        let owner = raw
            .owner
            .map(|o| check.identity_name(&key("owner"), &o.0))
            .transpose()?;
        match kind {
            IdentityKind::User if owner.is_some() => {
                return Err(check.invalid(
                    key("owner"),
                    "users have no owner; only services and agents do",
                ));
            }
            IdentityKind::Service | IdentityKind::Agent if owner.is_none() => {
                return Err(check.invalid(
                    key("owner"),
                    format!(
                        "every {} needs an accountable owner (a user)",
                        kind.as_str()
                    ),
                ));
            }
            _ => {}
        }
        if kind == IdentityKind::User && !raw.workload.is_empty() {
            return Err(check.invalid(
                key("workload"),
                "people sign in through an [[oidc]] provider; workload identity is for services and agents",
            ));
        }
        let workloads = crate::workload::validate_bindings(check, &key, raw.workload)?;
        let valid_until = raw
            .valid_until
            .map(|text| {
                writ_domain::Timestamp::parse_rfc3339(&text.0).map_err(|_| {
                    check.invalid(
                        key("valid_until"),
                        format!(
                            "{:?} is not an RFC 3339 time like \"2027-03-31T23:59:59Z\"",
                            text.0
                        ),
                    )
                })
            })
            .transpose()?;
        if kind != IdentityKind::Agent && !raw.delegates.is_empty() {
            return Err(check.invalid(
                key("delegates"),
                "only agents have delegates (the users they may act for)",
            ));
        }
        let mut delegates = Vec::new();
        for (d, delegate) in raw.delegates.iter().enumerate() {
            delegates.push(check.identity_name(&key(&format!("delegates[{d}]")), &delegate.0)?);
        }
        let mut accounts = BTreeMap::new();
        for (target, account) in raw.accounts {
            if !systems.contains(target.as_str()) {
                return Err(check.invalid(
                    key(&format!("accounts.{target}")),
                    format!("unknown target or ITSM {target:?}"),
                ));
            }
            if account.0.is_empty() {
                return Err(check.invalid(key(&format!("accounts.{target}")), "must not be empty"));
            }
            accounts.insert(target, account.0);
        }
        if identities.contains_key(&name) {
            return Err(check.invalid(key("name"), format!("{name:?} is already defined; identity names are unique across users, services and agents")));
        }
        identities.insert(
            name.clone(),
            Identity {
                name,
                kind,
                groups,
                manager,
                owner,
                accounts,
                disabled: raw.disabled.unwrap_or(false),
                delegates,
                workloads,
                valid_until,
            },
        );
    }
    // References to other identities are checked once all are known.
    let users: BTreeSet<&IdentityName> = identities
        .values()
        .filter(|i| i.kind == IdentityKind::User)
        .map(|i| &i.name)
        .collect();
    for identity in identities.values() {
        for delegate in &identity.delegates {
            if !users.contains(delegate) {
                return Err(check.invalid(
                    format!("agent {:?}.delegates", identity.name.as_str()),
                    format!("\"{delegate}\" is not a configured user"),
                ));
            }
        }
        for (field, reference) in [("manager", &identity.manager), ("owner", &identity.owner)] {
            if let Some(reference) = reference
                && !users.contains(reference)
            {
                return Err(check.invalid(
                    format!(
                        "{} {:?}.{field}",
                        identity.kind.as_str(),
                        identity.name.as_str()
                    ),
                    format!("\"{reference}\" is not a configured user"),
                ));
            }
        }
    }
    // A ticketing system's user maps to one identity, or who asked would be a guess.
    let mut seen: BTreeMap<(&str, &str), &IdentityName> = BTreeMap::new();
    for identity in identities.values() {
        for (system, account) in &identity.accounts {
            if !itsms.contains(system.as_str()) {
                continue;
            }
            if let Some(first) = seen.insert((system, account), &identity.name) {
                return Err(check.invalid(
                    format!("{} {:?}.accounts.{system}", identity.kind.as_str(), identity.name.as_str()),
                    format!("{account:?} is also {first}'s account on {system}; each ticketing-system user maps to one identity"),
                ));
            }
        }
    }
    Ok(identities)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
listen = "127.0.0.1:7171"

[storage]
url = "sqlite://data/writ.db"

[[target]]
name = "pg"
kind = "postgres"
url = "postgres://postgres@127.0.0.1:5432/test"

[[entitlement]]
id = "pg/analytics_read"
target = "pg"
role = "analytics_read"
sensitivity = "low"
max_duration = "8h"
owners = "data-owners"

[[user]]
name = "alice"
groups = ["engineers"]
manager = "dave"
accounts = { pg = "alice_db" }

[[user]]
name = "dave"

[[service]]
name = "svc-report"
owner = "alice"
"#;

    fn load(text: &str) -> Result<Config, String> {
        crate::Config::from_toml(Path::new("/etc/writ/writ.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_ticket_backs_at_most_ticket_max_total_or_off() {
        let with = |value: &str| load(&format!("[requests]\nticket_max_total = {value}\n{GOOD}"));
        assert_eq!(
            with("\"7d\"").expect("7d").ticket_max_total_seconds,
            Some(7 * 86_400)
        );
        assert_eq!(with("\"off\"").expect("off").ticket_max_total_seconds, None);
        assert_eq!(load(GOOD).expect("default").ticket_max_total_seconds, None);
        for bad in ["\"0s\"", "\"soon\""] {
            let error = with(bad).expect_err(bad);
            assert!(error.contains("requests.ticket_max_total"), "{error}");
        }
    }

    /// Segregation of duties starts in the configuration.
    #[test]
    fn segregation_mistakes_are_configuration_errors() {
        let with = |extra: &str| load(&format!("{GOOD}{extra}"));
        let error =
            with("\n[[agent]]\nname = \"bot\"\nowner = \"alice\"\ndelegates = [\"svc-report\"]\n")
                .expect_err("a service as a delegate");
        assert!(
            error.contains("agent \"bot\".delegates") && error.contains("not a configured user"),
            "{error}"
        );
        let error = GOOD.replace(
            "manager = \"dave\"",
            "manager = \"dave\"\ndelegates = [\"dave\"]",
        );
        let error = load(&error).expect_err("a user with delegates");
        assert!(error.contains("user[0].delegates"), "{error}");
        assert!(
            with("\n[[agent]]\nname = \"bot\"\nowner = \"alice\"\ndelegates = [\"dave\"]\n")
                .is_ok()
        );

        let same_role = "\n[[entitlement]]\nid = \"pg/analytics_again\"\ntarget = \"pg\"\nrole = \"analytics_read\"\nsensitivity = \"low\"\nmax_duration = \"1h\"\n";
        let error = with(same_role).expect_err("one role, two entitlements");
        assert!(
            error.contains("entitlement[1].role") && error.contains("as pg/analytics_read does"),
            "{error}"
        );
        let both_shared = GOOD.replace(
            "owners = \"data-owners\"",
            "owners = \"data-owners\"\nshared_role = true",
        );
        let marked = format!(
            "{both_shared}{}",
            same_role.replace(
                "max_duration = \"1h\"",
                "max_duration = \"1h\"\nshared_role = true"
            )
        );
        assert!(load(&marked).is_ok(), "{:?}", load(&marked).err());
        let error = with("\n[requests]\napprover_kinds = [\"robot\"]\n").expect_err("kind");
        assert!(error.contains("requests.approver_kinds[0]"), "{error}");
    }

    /// No configuration error shows a password, whichever check finds the problem.
    #[test]
    fn config_errors_never_echo_a_password() {
        let secret = "hunter2-s3cret";
        for broken in [
            // a storage URL of the wrong scheme
            GOOD.replace(
                "sqlite://data/writ.db",
                &format!("mysql://writ:{secret}@db/writ"),
            ),
            // a target URL of the wrong scheme
            GOOD.replace(
                "postgres://postgres@127.0.0.1:5432/test",
                &format!("pgsql://writ:{secret}@db/x"),
            ),
            // a TOML syntax error on the line holding the password
            GOOD.replace(
                "url = \"postgres://postgres@127.0.0.1:5432/test\"",
                &format!("url = \"postgres://writ:{secret}@db/x"),
            ),
            // an unclosed ${ in a value holding the password
            GOOD.replace(
                "postgres://postgres@127.0.0.1:5432/test",
                &format!("postgres://writ:{secret}@db/${{DB"),
            ),
            // a password in a query string
            GOOD.replace(
                "sqlite://data/writ.db",
                &format!("mysql://db/writ?password={secret}"),
            ),
        ] {
            let error = load(&broken).expect_err("invalid");
            assert!(!error.contains(secret), "{error}");
            // Redacted where a value is shown; a TOML syntax error shows no line at all,
            // only where it is.
            assert!(
                error.contains("***") || error.contains("line 11, column"),
                "{error}"
            );
        }
    }

    #[test]
    fn mariadb_targets_take_a_mysql_url_an_account_host_and_default_roles() {
        let mariadb = |extra: &str| {
            GOOD.replace(
                "kind = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:5432/test\"",
                &format!("kind = \"mariadb\"\nurl = \"mysql://root@127.0.0.1:3306/\"\n{extra}"),
            )
        };
        let config = load(&mariadb("")).expect("valid");
        assert_eq!(
            config.targets["pg"].connector,
            ConnectorConfig::Mariadb {
                url: "mysql://root@127.0.0.1:3306/".into(),
                account_host: "%".into(),
                default_role: false,
            }
        );
        let config =
            load(&mariadb("account_host = \"10.0.%\"\ndefault_role = true")).expect("valid");
        assert_eq!(
            config.targets["pg"].connector,
            ConnectorConfig::Mariadb {
                url: "mysql://root@127.0.0.1:3306/".into(),
                account_host: "10.0.%".into(),
                default_role: true,
            }
        );
        for (text, error) in [
            (
                mariadb("").replace("mysql://root@", "postgres://root@"),
                "target[0].url: \"postgres://root@127.0.0.1:3306/\" is not a mysql:// or mariadb:// URL",
            ),
            (
                mariadb("orphan_owner = \"x\""),
                "target[0].orphan_owner: is not used by targets of kind \"mariadb\"",
            ),
            (
                mariadb("account_host = \"\""),
                "target[0].account_host: must be a host name",
            ),
            (
                GOOD.replace(
                    "kind = \"postgres\"",
                    "kind = \"postgres\"\ndefault_role = true",
                ),
                "target[0].default_role: is not used by targets of kind \"postgres\"",
            ),
        ] {
            let message = load(&text).expect_err(error);
            assert!(message.contains(error), "{message}");
        }
    }

    #[test]
    fn ldap_and_scim_targets_refuse_clear_text_secrets_and_stray_keys() {
        let target = |body: &str| {
            GOOD.replace(
                "kind = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:5432/test\"",
                body,
            )
        };
        let ldap = "kind = \"ldap\"\nurl = \"ldap://dir.example.org\"\nbind_dn = \"cn=writ,dc=example,dc=org\"\nbind_password = \"s\"\ngroup_base = \"ou=groups,dc=example,dc=org\"\naccount_base = \"ou=people,dc=example,dc=org\"";
        let config = load(&target(ldap)).expect("valid");
        let ConnectorConfig::Ldap(directory) = &config.targets["pg"].connector else {
            panic!("an ldap target");
        };
        assert!(directory.starttls, "StartTLS unless told otherwise");
        assert_eq!(
            (
                directory.member_attribute.as_str(),
                directory.account_attribute.as_str()
            ),
            ("member", "uid")
        );
        assert!(!format!("{directory:?}").contains("bind_password: \"s\""));
        let scim =
            "kind = \"scim\"\nurl = \"https://app.example.com/scim/v2\"\nbearer_token = \"t\"";
        assert!(matches!(
            load(&target(scim)).expect("valid").targets["pg"].connector,
            ConnectorConfig::Scim(_)
        ));
        for (text, error) in [
            (
                target(
                    &ldap
                        .replace("ldap://", "ldaps://")
                        .replace("bind_password", "starttls = true\nbind_password"),
                ),
                "target[0].starttls: an ldaps:// URL is already TLS",
            ),
            (
                target(&ldap.replace("group_base", "member_attribute = \"memberUid\"\ngroup_base")),
                "target[0].member_attribute",
            ),
            (
                target(&ldap.replace("bind_dn = \"cn=writ,dc=example,dc=org\"\n", "")),
                "target[0].bind_dn: an ldap target needs it",
            ),
            (
                target(&ldap.replace(
                    "bind_password",
                    "account_filter = \"objectClass=person\"\nbind_password",
                )),
                "target[0].account_filter",
            ),
            (
                target(&scim.replace("https://app", "http://app")),
                "would send writ's token in clear",
            ),
            (
                target(&scim.replace("bearer_token = \"t\"", "")),
                "target[0].bearer_token",
            ),
            (
                GOOD.replace(
                    "kind = \"postgres\"",
                    "kind = \"postgres\"\nbearer_token = \"t\"",
                ),
                "target[0].bearer_token: is not used by targets of kind \"postgres\"",
            ),
            (
                GOOD.replace(
                    "kind = \"postgres\"",
                    "kind = \"postgres\"\ngroup_base = \"x\"",
                ),
                "target[0].group_base: is not used by targets of kind \"postgres\"",
            ),
        ] {
            let message = load(&text).expect_err(error);
            assert!(message.contains(error), "{error} in {message}");
        }
    }

    #[test]
    fn a_complete_config_validates() {
        let config = load(GOOD).expect("valid");
        assert_eq!(config.listen.port(), 7171);
        assert_eq!(
            config.storage_url,
            "sqlite:///etc/writ/data/writ.db?mode=rwc"
        );
        assert_eq!(config.policy_dir, PathBuf::from("/etc/writ/policies"));
        assert_eq!(
            config
                .entitlement("pg/analytics_read")
                .map(|e| e.max_duration_seconds),
            Some(8 * 3600)
        );
        let alice = config.identity("alice").expect("alice");
        assert_eq!(alice.account_on("pg"), "alice_db");
        assert_eq!(
            config.identity("svc-report").map(|s| s.account_on("pg")),
            Some("svc-report")
        );
        assert_eq!(config.pending_ttl_seconds, DEFAULT_PENDING_TTL_SECONDS);
    }

    #[test]
    fn errors_name_the_file_the_key_and_the_problem() {
        let cases = [
            (
                GOOD.replace("owners = \"data-owners\"", "owner = \"x\""),
                "unknown field `owner`",
            ),
            (
                GOOD.replace("target = \"pg\"", "target = \"pgx\""),
                "entitlement[0].target: unknown target \"pgx\"",
            ),
            (
                GOOD.replace("\"8h\"", "\"eight hours\""),
                "entitlement[0].max_duration",
            ),
            (
                GOOD.replace("\"low\"", "\"extreme\""),
                "entitlement[0].sensitivity",
            ),
            (
                GOOD.replace("owner = \"alice\"", ""),
                "service[0].owner: every service needs an accountable owner",
            ),
            (
                GOOD.replace("manager = \"dave\"", "manager = \"nobody\""),
                "user \"alice\".manager: \"nobody\" is not a configured user",
            ),
            (
                GOOD.replace("kind = \"postgres\"", "kind = \"oracle\""),
                "target[0].kind: unknown kind \"oracle\"",
            ),
            (
                GOOD.replace("name = \"dave\"", "name = \"svc-report\""),
                "already defined",
            ),
            (GOOD.replace("127.0.0.1:7171", "localhost"), "server.listen"),
            (
                GOOD.replace(
                    "listen = \"127.0.0.1:7171\"",
                    "listen = \"127.0.0.1:7171\"\nmetrics_listen = \"127.0.0.1:7171\"",
                ),
                "server.metrics_listen: must differ from server.listen",
            ),
            (
                GOOD.replace(
                    "listen = \"127.0.0.1:7171\"",
                    "listen = \"127.0.0.1:7171\"\nmetrics_listen = \"9464\"",
                ),
                "server.metrics_listen: \"9464\" is not an address",
            ),
            (
                GOOD.replace("127.0.0.1:7171", "0.0.0.0:7171"),
                "server.listen: 0.0.0.0:7171 is reachable from other machines",
            ),
            (
                GOOD.replace(
                    "listen = \"127.0.0.1:7171\"",
                    "listen = \"127.0.0.1:7171\"\ntls_cert = \"a.pem\"",
                ),
                "server.tls_key: is missing",
            ),
            (
                GOOD.replace(
                    "listen = \"127.0.0.1:7171\"",
                    "listen = \"127.0.0.1:7171\"\nclient_ca = \"ca.pem\"",
                ),
                "server.client_ca: needs server.tls_cert and server.tls_key",
            ),
            (
                GOOD.replace(
                    "listen = \"127.0.0.1:7171\"",
                    "listen = \"127.0.0.1:7171\"\ntls_cert = \"a.pem\"\ntls_key = \"k.pem\"\n\
                     client_ca = \"ca.pem\"\nclient_cert = \"sometimes\"",
                ),
                "server.client_cert: \"sometimes\" is not \"required\" or \"optional\"",
            ),
            (
                GOOD.replace(
                    "postgres://postgres@127.0.0.1:5432/test",
                    "${WRIT_SURELY_UNSET_VAR}",
                ),
                "environment variable WRIT_SURELY_UNSET_VAR is not set",
            ),
        ];
        for (text, expected) in cases {
            let error = load(&text).expect_err(expected);
            assert!(error.starts_with("/etc/writ/writ.toml: "), "{error}");
            assert!(
                error.contains(expected),
                "{error:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn tls_files_are_relative_to_the_config_and_client_certificates_required_by_default() {
        let config = load(&GOOD.replace(
            "listen = \"127.0.0.1:7171\"",
            "listen = \"0.0.0.0:7171\"\ntls_cert = \"tls/writ.pem\"\ntls_key = \"/keys/writ.key\"\n\
             client_ca = \"tls/clients.pem\"",
        ))
        .expect("valid");
        let tls = config.tls.expect("tls");
        assert_eq!(tls.cert, PathBuf::from("/etc/writ/tls/writ.pem"));
        assert_eq!(tls.key, PathBuf::from("/keys/writ.key"));
        let client_ca = tls.client_ca.expect("client_ca");
        assert_eq!(client_ca.file, PathBuf::from("/etc/writ/tls/clients.pem"));
        assert!(client_ca.required);
        let plain = load(&GOOD.replace(
            "listen = \"127.0.0.1:7171\"",
            "listen = \"0.0.0.0:7171\"\nallow_plaintext = true",
        ))
        .expect("plaintext, explicitly");
        assert!(plain.tls.is_none() && plain.allow_plaintext);
    }

    #[test]
    fn parse_errors_point_at_the_line() {
        let error = load("[server]\nlisten = 7070\n").expect_err("wrong type");
        assert!(error.contains("line 2"), "{error}");
    }
}
