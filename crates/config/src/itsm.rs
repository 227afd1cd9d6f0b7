//! `[[itsm]]`: the ticketing systems writ reads tickets from and writes evidence to.

use std::fmt;

use crate::ConfigError;
use crate::raw::RawItsm;
use crate::validate::Checker;

/// How long after it was sent a signed webhook is still accepted, by default.
/// Jira retries a failed delivery for about 30 minutes, with its original timestamp;
/// the default accepts those retries (a replay is still refused: each delivery id is
/// acted on once).
/// How often tickets are polled for by default: deliveries that never arrive are found
/// within this.
pub const DEFAULT_POLL_EVERY_SECONDS: i64 = 300;
pub const DEFAULT_WEBHOOK_MAX_AGE_SECONDS: i64 = 40 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItsmKind {
    /// Jira Cloud / Jira Service Management (REST v3).
    Jira,
    /// ServiceNow (Table API, `sc_req_item`).
    ServiceNow,
}

impl ItsmKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jira => "jira",
            Self::ServiceNow => "servicenow",
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub enum ItsmAuth {
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
    /// OAuth 2.0 client credentials: writ asks `token_url` for access tokens and
    /// refreshes them before they expire.
    OAuth {
        token_url: String,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
    },
}

impl fmt::Debug for ItsmAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets never reach logs.
        match self {
            Self::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
            Self::Bearer(_) => f.write_str("Bearer(***)"),
            Self::OAuth {
                token_url,
                client_id,
                ..
            } => write!(f, "OAuth({token_url}, {client_id}, ***)"),
        }
    }
}

/// How writ closes a ticket once the access it backed is verified gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closure {
    /// Close the ticket itself (Jira: the `close_state` transition; ServiceNow: the
    /// item's `state`).
    Ticket,
    /// ServiceNow: close the item's open catalog tasks (`sc_task`); the item's flow
    /// closes the item when its tasks are done.
    Tasks,
    /// Only add the evidence note; the ticketing system's own flow closes the ticket.
    Flow,
}

/// Which ticket fields carry what writ needs. Values are field ids as the ITSM's API
/// names them (`customfield_10050`, `summary`, `variables.duration`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFields {
    pub entitlement: String,
    /// A field naming the writ identity to be given access (e.g. a service); when not
    /// set, the ticket's beneficiary is.
    pub subject: Option<String>,
    /// The user field holding whom the ticket is for, as the ticketing system's user id
    /// (mapped through `accounts.<itsm>`). Defaults: ServiceNow `requested_for`; Jira
    /// the reporter (the requester).
    pub beneficiary: Option<String>,
    /// Seconds, or a duration such as "4h". Defaults to the entitlement's maximum.
    pub duration: Option<String>,
    /// Defaults to the ticket's summary / short description.
    pub justification: Option<String>,
    /// The end of the ticket's change window, when it has one.
    pub window_end: Option<String>,
}

impl TicketFields {
    /// Every mapped field id, to ask the ITSM's API for.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        [
            Some(&self.entitlement),
            self.subject.as_ref(),
            self.beneficiary.as_ref(),
            self.duration.as_ref(),
            self.justification.as_ref(),
            self.window_end.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
    }
}

#[derive(Clone, PartialEq)]
pub struct Itsm {
    pub name: String,
    pub kind: ItsmKind,
    /// Base URL without a trailing slash, e.g. `https://acme.atlassian.net`.
    pub url: String,
    pub auth: ItsmAuth,
    pub webhook_secret: String,
    pub webhook_max_age_seconds: i64,
    /// Ticket states (Jira status names, ServiceNow state values) in which a ticket may
    /// back a request.
    pub request_states: Vec<String>,
    /// A ticket backs a request only once its own approval status says `approved`
    /// (ServiceNow `approval`).
    pub approval_required: bool,
    /// How often writ asks the system for tickets in `request_states` it has not acted
    /// on (a delivery that never arrived); `None`: never.
    pub poll_every_seconds: Option<i64>,
    /// How writ closes a ticket once the access is verified gone: a Jira transition
    /// name (default "Done"), a ServiceNow state value (default "3", Closed Complete).
    pub close_state: String,
    /// Jira: fields set with the close transition, as the REST API takes them (e.g.
    /// `resolution = { name = "Done" }`); empty: none.
    pub close_fields: toml::Table,
    pub closure: Closure,
    pub fields: TicketFields,
}

impl fmt::Debug for Itsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Itsm")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("auth", &self.auth)
            .field("request_states", &self.request_states)
            .field("fields", &self.fields)
            .finish_non_exhaustive()
    }
}

/// A URL that receives every ledger event (or those named) as a CloudEvent.
#[derive(Clone, PartialEq, Eq)]
pub struct Notify {
    pub name: String,
    pub url: String,
    /// Signs each delivery (`X-Writ-Signature: sha256=<hex HMAC>`) when set.
    pub secret: Option<String>,
    /// Event kinds to send (`grant.revoked`, or `grant.*`); empty = all.
    pub events: Vec<String>,
    /// A new sink starts from the first event instead of from now.
    pub from_start: bool,
}

impl Notify {
    pub fn wants(&self, kind: &str) -> bool {
        self.events.is_empty()
            || self
                .events
                .iter()
                .any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => kind.starts_with(prefix),
                    None => kind == pattern,
                })
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notify")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("signed", &self.secret.is_some())
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

pub(crate) fn validate_notify(
    check: &Checker<'_>,
    index: usize,
    raw: crate::raw::RawNotify,
) -> Result<Notify, ConfigError> {
    let key = |field: &str| format!("notify[{index}].{field}");
    let name = check.system_name(&key("name"), raw.name.0)?;
    let url = raw.url.0;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(check.invalid(key("url"), format!("{url:?} is not an http(s) URL")));
    }
    if let Some(secret) = &raw.secret
        && secret.0.len() < 16
    {
        return Err(check.invalid(key("secret"), "must be at least 16 characters"));
    }
    let mut events = Vec::new();
    for (i, pattern) in raw.events.into_iter().enumerate() {
        let known = writ_domain::ledger::EventKind::ALL.iter().any(|kind| {
            let kind = kind.as_str();
            match pattern.0.strip_suffix('*') {
                Some(prefix) => kind.starts_with(prefix),
                None => kind == pattern.0,
            }
        });
        if !known {
            return Err(check.invalid(
                key(&format!("events[{i}]")),
                format!(
                    "{:?} matches no event kind (e.g. \"grant.revoked\" or \"grant.*\")",
                    pattern.0
                ),
            ));
        }
        events.push(pattern.0);
    }
    Ok(Notify {
        name,
        url,
        secret: raw.secret.map(|s| s.0),
        events,
        from_start: raw.from_start.unwrap_or(false),
    })
}

pub(crate) fn validate_itsm(
    check: &Checker<'_>,
    index: usize,
    raw: RawItsm,
) -> Result<Itsm, ConfigError> {
    let key = |field: &str| format!("itsm[{index}].{field}");
    let name = check.system_name(&key("name"), raw.name.0)?;
    let kind = match raw.kind.0.as_str() {
        "jira" => ItsmKind::Jira,
        "servicenow" => ItsmKind::ServiceNow,
        other => {
            return Err(check.invalid(
                key("kind"),
                format!("unknown kind {other:?}; expected jira or servicenow"),
            ));
        }
    };
    let url = raw.url.0.trim_end_matches('/').to_string();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(check.invalid(key("url"), format!("{url:?} is not an http(s) URL")));
    }
    let auth = match (raw.user, raw.password, raw.bearer, raw.oauth) {
        (Some(user), Some(password), None, None) => ItsmAuth::Basic {
            user: user.0,
            password: password.0,
        },
        (None, None, Some(token), None) => ItsmAuth::Bearer(token.0),
        (None, None, None, Some(oauth)) => {
            let token_url = oauth.token_url.0;
            if !(token_url.starts_with("https://") || token_url.starts_with("http://")) {
                return Err(check.invalid(
                    key("oauth.token_url"),
                    format!("{token_url:?} is not an http(s) URL"),
                ));
            }
            if oauth.client_id.0.is_empty() || oauth.client_secret.0.is_empty() {
                return Err(check.invalid(
                    key("oauth"),
                    "client_id and client_secret must not be empty",
                ));
            }
            ItsmAuth::OAuth {
                token_url,
                client_id: oauth.client_id.0,
                client_secret: oauth.client_secret.0,
                scope: oauth.scope.map(|s| s.0).filter(|s| !s.is_empty()),
            }
        }
        _ => {
            return Err(check.invalid(
                key("user"),
                "give one way to sign in: user and password (basic auth; for Jira Cloud an email and an API token), bearer (a fixed token) or oauth (client credentials)",
            ));
        }
    };
    if raw.webhook_secret.0.len() < 16 {
        return Err(check.invalid(
            key("webhook_secret"),
            "must be at least 16 characters (it authenticates webhooks)",
        ));
    }
    let webhook_max_age_seconds = match raw.webhook_max_age {
        Some(text) => check.duration(&key("webhook_max_age"), &text.0)?,
        None => DEFAULT_WEBHOOK_MAX_AGE_SECONDS,
    };
    if raw.request_states.is_empty() {
        return Err(check.invalid(
            key("request_states"),
            "name the ticket states in which a ticket may back a request, e.g. [\"Approved\"]",
        ));
    }
    let field =
        |text: Option<crate::env::EnvString>, name: &str| -> Result<Option<String>, ConfigError> {
            match text {
                Some(value) if value.0.is_empty() => {
                    Err(check.invalid(key(&format!("fields.{name}")), "must not be empty"))
                }
                other => Ok(other.map(|v| v.0)),
            }
        };
    let fields = TicketFields {
        entitlement: field(Some(raw.fields.entitlement), "entitlement")?.unwrap_or_default(),
        subject: field(raw.fields.subject, "subject")?,
        beneficiary: field(raw.fields.beneficiary, "beneficiary")?,
        duration: field(raw.fields.duration, "duration")?,
        justification: field(raw.fields.justification, "justification")?,
        window_end: field(raw.fields.window_end, "window_end")?,
    };
    Ok(Itsm {
        name,
        kind,
        url,
        auth,
        webhook_secret: raw.webhook_secret.0,
        webhook_max_age_seconds,
        request_states: raw.request_states.into_iter().map(|s| s.0).collect(),
        approval_required: raw.approval_required.unwrap_or(false),
        poll_every_seconds: match raw.poll_every.as_ref().map(|t| t.0.as_str()) {
            None => Some(DEFAULT_POLL_EVERY_SECONDS),
            Some("off") => None,
            Some(text) => Some(check.duration(&key("poll_every"), text)?),
        },
        close_state: raw.close_state.map_or_else(
            || match kind {
                ItsmKind::Jira => "Done".to_string(),
                ItsmKind::ServiceNow => "3".to_string(),
            },
            |state| state.0,
        ),
        close_fields: raw.close_fields.unwrap_or_default(),
        closure: match (raw.closure.as_ref().map(|c| c.0.as_str()), kind) {
            (None | Some("ticket"), _) => Closure::Ticket,
            (Some("tasks"), ItsmKind::ServiceNow) => Closure::Tasks,
            (Some("flow"), _) => Closure::Flow,
            (Some(other), _) => {
                return Err(check.invalid(
                    key("closure"),
                    format!(
                        "{other:?} is not a closure for {}; expected \"ticket\"{} or \"flow\"",
                        kind.as_str(),
                        if kind == ItsmKind::ServiceNow {
                            ", \"tasks\""
                        } else {
                            ""
                        }
                    ),
                ));
            }
        },
        fields,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::{Closure, Config, ItsmAuth, ItsmKind};

    const BASE: &str = r#"
[[target]]
name = "pg"
kind = "noop"

[[entitlement]]
id = "pg/read"
target = "pg"
role = "read"
sensitivity = "low"
max_duration = "8h"
ticket_required = true

[[user]]
name = "alice"
accounts = { pg = "alice_db", jira = "5b10ac8d82e05b22cc7d4ef5" }
"#;

    const JIRA: &str = r#"
[[itsm]]
name = "jira"
kind = "jira"
url = "https://acme.atlassian.net/"
user = "writ@acme.example"
password = "api-token"
webhook_secret = "0123456789abcdef0123"
request_states = ["Approved"]
fields = { entitlement = "customfield_10050", duration = "customfield_10052", window_end = "customfield_10053" }
"#;

    fn load(text: &str) -> Result<Config, String> {
        Config::from_toml(Path::new("/etc/writ/writ.toml"), text).map_err(|e| e.to_string())
    }

    /// One ticketing-system user is one identity: a second mapping is an error naming both.
    #[test]
    fn an_itsm_account_maps_to_one_identity_only() {
        let twice = format!(
            "{BASE}{JIRA}\n[[user]]\nname = \"mallory\"\naccounts = {{ jira = \"5b10ac8d82e05b22cc7d4ef5\" }}\n"
        );
        let error = load(&twice).expect_err("the same Jira user twice");
        assert!(
            error.contains("user \"mallory\".accounts.jira")
                && error.contains("also alice's account on jira"),
            "{error}"
        );
        // Targets are not ticketing systems: two identities may share a target account.
        let shared_target =
            format!("{BASE}{JIRA}\n[[user]]\nname = \"bob\"\naccounts = {{ pg = \"alice_db\" }}\n");
        assert!(load(&shared_target).is_ok());
    }

    #[test]
    fn an_itsm_validates_and_identities_map_to_its_users() {
        let config = load(&format!("{BASE}{JIRA}")).expect("valid");
        let jira = &config.itsms["jira"];
        assert_eq!(jira.kind, ItsmKind::Jira);
        assert_eq!(jira.url, "https://acme.atlassian.net", "no trailing slash");
        assert!(matches!(&jira.auth, ItsmAuth::Basic { user, .. } if user == "writ@acme.example"));
        assert_eq!(jira.webhook_max_age_seconds, 40 * 60);
        assert_eq!(jira.close_state, "Done");
        assert_eq!(jira.fields.window_end.as_deref(), Some("customfield_10053"));
        assert!(
            !format!("{jira:?}").contains("api-token"),
            "secrets stay out of Debug"
        );
        assert!(
            config
                .entitlement("pg/read")
                .is_some_and(|e| e.ticket_required)
        );
        let alice = config.identity_by_account("jira", "5b10ac8d82e05b22cc7d4ef5");
        assert_eq!(alice.map(|i| i.name.as_str()), Some("alice"));
    }

    #[test]
    fn an_itsm_may_sign_in_with_oauth_client_credentials_and_choose_its_closure() {
        let snow = JIRA
            .replace("kind = \"jira\"", "kind = \"servicenow\"")
            .replace(
                "user = \"writ@acme.example\"\npassword = \"api-token\"",
                "oauth = { token_url = \"https://acme.service-now.com/oauth_token.do\", client_id = \"writ\", client_secret = \"client-secret\" }\nclosure = \"tasks\"",
            );
        let config = load(&format!("{BASE}{snow}")).expect("valid");
        let itsm = &config.itsms["jira"];
        assert_eq!(itsm.closure, Closure::Tasks);
        assert!(
            matches!(&itsm.auth, ItsmAuth::OAuth { client_id, scope: None, .. } if client_id == "writ")
        );
        assert!(
            !format!("{itsm:?}").contains("client-secret"),
            "secrets stay out of Debug"
        );
        let jira = load(&format!("{BASE}{JIRA}")).expect("valid");
        assert_eq!(jira.itsms["jira"].closure, Closure::Ticket, "the default");
    }

    #[test]
    fn notification_sinks_validate_and_filter_kinds() {
        let sink = "\n[[notify]]\nname = \"siem\"\nurl = \"https://hooks.example/writ\"\nsecret = \"0123456789abcdef\"\nevents = [\"grant.*\", \"request.created\"]\n";
        let config = load(&format!("{BASE}{JIRA}{sink}")).expect("valid");
        let siem = &config.notify["siem"];
        assert!(siem.wants("grant.revoked") && siem.wants("request.created"));
        assert!(!siem.wants("request.approved") && !siem.from_start);
        let error = load(&format!(
            "{BASE}{JIRA}{}",
            sink.replace("grant.*", "grnt.*")
        ))
        .expect_err("unknown kind");
        assert!(
            error.contains("notify[0].events[0]: \"grnt.*\" matches no event kind"),
            "{error}"
        );
        let error = load(&format!(
            "{BASE}{JIRA}{}",
            sink.replace("0123456789abcdef", "short")
        ))
        .expect_err("short secret");
        assert!(error.contains("notify[0].secret"), "{error}");
    }

    #[test]
    fn itsm_errors_name_the_key() {
        let cases = [
            (
                JIRA.replace("kind = \"jira\"", "kind = \"remedy\""),
                "itsm[0].kind: unknown kind \"remedy\"",
            ),
            (
                JIRA.replace("https://acme.atlassian.net/", "acme"),
                "itsm[0].url",
            ),
            (
                JIRA.replace("password = \"api-token\"", "bearer = \"t\""),
                "itsm[0].user: give one way to sign in",
            ),
            (
                JIRA.replace(
                    "password = \"api-token\"",
                    "password = \"p\"\noauth = { token_url = \"https://auth.atlassian.com/oauth/token\", client_id = \"c\", client_secret = \"s\" }",
                ),
                "itsm[0].user: give one way to sign in",
            ),
            (
                JIRA.replace(
                    "user = \"writ@acme.example\"\npassword = \"api-token\"",
                    "oauth = { token_url = \"auth.atlassian.com\", client_id = \"c\", client_secret = \"s\" }",
                ),
                "itsm[0].oauth.token_url",
            ),
            (
                JIRA.replace("request_states", "closure = \"tasks\"\nrequest_states"),
                "itsm[0].closure: \"tasks\" is not a closure for jira; expected \"ticket\" or \"flow\"",
            ),
            (
                JIRA.replace("0123456789abcdef0123", "short"),
                "itsm[0].webhook_secret: must be at least 16",
            ),
            (
                JIRA.replace("[\"Approved\"]", "[]"),
                "itsm[0].request_states",
            ),
            (
                JIRA.replace("name = \"jira\"", "name = \"pg\""),
                "itsm[0].name: \"pg\" is already the name",
            ),
            (
                JIRA.replace("fields = {", "fields = { colour = \"x\","),
                "unknown field `colour`",
            ),
        ];
        for (itsm, expected) in cases {
            let error = load(&format!("{BASE}{itsm}")).expect_err(expected);
            assert!(
                error.contains(expected),
                "{error} should contain {expected}"
            );
        }
        let error = load(BASE).expect_err("accounts on an unknown system");
        assert!(
            error.contains("user[0].accounts.jira: unknown target or ITSM"),
            "{error}"
        );
    }
}
