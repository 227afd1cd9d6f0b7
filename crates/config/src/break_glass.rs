//! `[[break_glass]]`: emergency access defined in advance. A profile names the
//! entitlements it grants at once, how long at most, who is told, and how soon someone
//! else must review each use.

use std::collections::BTreeMap;

use writ_domain::EntitlementId;

use crate::raw::RawBreakGlass;
use crate::validate::Checker;
use crate::{ConfigError, Entitlement, Itsm, ItsmKind, Notify};

/// The longest a break-glass grant may last: emergency access is short by definition.
pub const BREAK_GLASS_MAX_DURATION_SECONDS: i64 = 24 * 3600;
/// How long after an activation its review is due, unless the profile says otherwise.
pub const DEFAULT_REVIEW_WITHIN_SECONDS: i64 = 24 * 3600;
/// The event kinds a profile's sinks always receive.
const BREAK_GLASS_EVENTS: &str = "break_glass.*";
/// Names the API routes under `/v1/break-glass/` already use.
const RESERVED_NAMES: [&str; 1] = ["activations"];

/// One break-glass profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassProfile {
    pub name: String,
    /// What one activation grants, each as its own lease.
    pub entitlements: Vec<EntitlementId>,
    /// The longest each lease lasts (policy may cap it further).
    pub max_duration_seconds: i64,
    /// The `[[notify]]` sinks told of every activation and overdue review.
    pub notify: Vec<String>,
    /// How long after activation its review must be signed off.
    pub review_within_seconds: i64,
    /// Whether someone whose earlier activation's review is overdue may activate again.
    pub allow_with_overdue_review: bool,
    /// Where an incident ticket is opened for every activation.
    pub incident: Option<IncidentTicket>,
}

/// An incident ticket's system, and for Jira its project and issue type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentTicket {
    pub system: String,
    pub project: Option<String>,
    pub issue_type: Option<String>,
}

/// Jira's issue type for a break-glass incident unless the profile names another.
pub const DEFAULT_INCIDENT_ISSUE_TYPE: &str = "Incident";

pub(crate) fn validate_break_glass(
    check: &Checker<'_>,
    raw: Vec<RawBreakGlass>,
    entitlements: &BTreeMap<EntitlementId, Entitlement>,
    notify: &mut BTreeMap<String, Notify>,
    itsms: &BTreeMap<String, Itsm>,
) -> Result<BTreeMap<String, BreakGlassProfile>, ConfigError> {
    let mut profiles = BTreeMap::new();
    for (index, raw) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("break_glass[{index}].{field}");
        let name = raw.name.0;
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'))
        {
            return Err(check.invalid(
                key("name"),
                format!("{name:?} must be 1 to 64 of a-z, 0-9, - and _ (it is part of a URL)"),
            ));
        }
        if RESERVED_NAMES.contains(&name.as_str()) {
            return Err(check.invalid(key("name"), format!("{name:?} is reserved")));
        }
        if profiles.contains_key(&name) {
            return Err(check.invalid(
                key("name"),
                format!("break_glass {name:?} is defined twice"),
            ));
        }
        if raw.entitlements.is_empty() {
            return Err(check.invalid(key("entitlements"), "name at least one entitlement"));
        }
        let mut granted: Vec<EntitlementId> = Vec::new();
        for (i, text) in raw.entitlements.into_iter().enumerate() {
            let entitlement_key = key(&format!("entitlements[{i}]"));
            let id: EntitlementId = text
                .0
                .parse()
                .ok()
                .filter(|id| entitlements.contains_key(id))
                .ok_or_else(|| {
                    check.invalid(
                        &entitlement_key,
                        format!("unknown entitlement {:?}", text.0),
                    )
                })?;
            if entitlements.get(&id).is_some_and(|e| e.credential) {
                return Err(check.invalid(
                    &entitlement_key,
                    format!(
                        "{id} issues a short-lived credential, which is collected once; break-glass grants a role to the activator's own account"
                    ),
                ));
            }
            if granted.contains(&id) {
                return Err(check.invalid(&entitlement_key, format!("{id} is named twice")));
            }
            granted.push(id);
        }
        let max_duration_seconds = check.duration(&key("max_duration"), &raw.max_duration.0)?;
        if max_duration_seconds <= 0 || max_duration_seconds > BREAK_GLASS_MAX_DURATION_SECONDS {
            return Err(check.invalid(
                key("max_duration"),
                "break-glass access lasts more than nothing and at most 24h",
            ));
        }
        let review_within_seconds = match raw.review_within {
            Some(text) => check.duration(&key("review_within"), &text.0)?,
            None => DEFAULT_REVIEW_WITHIN_SECONDS,
        };
        if review_within_seconds <= 0 {
            return Err(check.invalid(key("review_within"), "must be longer than nothing"));
        }
        let mut sinks = Vec::new();
        for (i, sink) in raw.notify.into_iter().enumerate() {
            let Some(config) = notify.get_mut(&sink.0) else {
                return Err(check.invalid(
                    key(&format!("notify[{i}]")),
                    format!(
                        "unknown notify sink {:?} (define it in a [[notify]] table)",
                        sink.0
                    ),
                ));
            };
            // Told means told: a sink named here receives break-glass events whatever
            // else its `events` filter chooses.
            if !config.wants("break_glass.activated") {
                config.events.push(BREAK_GLASS_EVENTS.to_string());
            }
            sinks.push(sink.0);
        }
        let incident = match raw.incident {
            None => None,
            Some(raw) => {
                let system = raw.system.0;
                let kind = itsms.get(&system).map(|itsm| itsm.kind).ok_or_else(|| {
                    check.invalid(
                        key("incident.system"),
                        format!(
                            "unknown ticketing system {system:?} (define it in an [[itsm]] table)"
                        ),
                    )
                })?;
                let project = raw.project.map(|p| p.0);
                let issue_type = raw.issue_type.map(|t| t.0);
                match kind {
                    ItsmKind::Jira if project.as_deref().is_none_or(str::is_empty) => {
                        return Err(check.invalid(
                            key("incident.project"),
                            "a Jira incident needs the project key to open it in (e.g. \"OPS\")",
                        ));
                    }
                    ItsmKind::ServiceNow if project.is_some() || issue_type.is_some() => {
                        return Err(check.invalid(
                            key("incident"),
                            "ServiceNow incidents go to its incident table: project and issue_type are Jira's",
                        ));
                    }
                    _ => {}
                }
                Some(IncidentTicket {
                    system,
                    project,
                    issue_type: match kind {
                        ItsmKind::Jira => Some(
                            issue_type.unwrap_or_else(|| DEFAULT_INCIDENT_ISSUE_TYPE.to_string()),
                        ),
                        ItsmKind::ServiceNow => None,
                    },
                })
            }
        };
        profiles.insert(
            name.clone(),
            BreakGlassProfile {
                name,
                entitlements: granted,
                max_duration_seconds,
                notify: sinks,
                review_within_seconds,
                allow_with_overdue_review: raw.allow_with_overdue_review.unwrap_or(false),
                incident,
            },
        );
    }
    Ok(profiles)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::Config;

    const BASE: &str = r#"
[[target]]
name = "pg"
kind = "noop"

[[entitlement]]
id = "pg/admin"
target = "pg"
role = "admin"
sensitivity = "critical"
max_duration = "8h"

[[target]]
name = "db"
kind = "postgres"
url = "postgres://writ@db.example/app"

[[entitlement]]
id = "db/login"
target = "db"
role = "login"
sensitivity = "low"
max_duration = "8h"
credential = true

[[notify]]
name = "oncall"
url = "https://hooks.example/oncall"
events = ["grant.*"]

[[notify]]
name = "siem"
url = "https://hooks.example/siem"
"#;

    fn load(profiles: &str) -> Result<Config, String> {
        Config::from_toml(
            Path::new("/etc/writ/writ.toml"),
            &format!("{BASE}{profiles}"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn a_profile_reads_with_its_defaults_and_its_sinks_always_hear_of_it() {
        let config = load(
            r#"
[[break_glass]]
name = "db-outage"
entitlements = ["pg/admin"]
max_duration = "1h"
notify = ["oncall", "siem"]
"#,
        )
        .expect("loads");
        let profile = &config.break_glass["db-outage"];
        assert_eq!(profile.entitlements[0].as_str(), "pg/admin");
        assert_eq!(profile.max_duration_seconds, 3600);
        assert_eq!(profile.review_within_seconds, 24 * 3600);
        assert!(!profile.allow_with_overdue_review);
        // A filtered sink gets break-glass events added; an unfiltered one has them.
        assert!(config.notify["oncall"].wants("break_glass.activated"));
        assert!(config.notify["oncall"].wants("grant.created"));
        assert!(!config.notify["oncall"].wants("request.created"));
        assert!(config.notify["siem"].events.is_empty());
    }

    #[test]
    fn every_mistake_names_its_key() {
        let cases = [
            (
                "name = \"DB Outage\"\nentitlements = [\"pg/admin\"]\nmax_duration = \"1h\"",
                "break_glass[0].name",
            ),
            (
                "name = \"activations\"\nentitlements = [\"pg/admin\"]\nmax_duration = \"1h\"",
                "reserved",
            ),
            (
                "name = \"x\"\nentitlements = []\nmax_duration = \"1h\"",
                "break_glass[0].entitlements",
            ),
            (
                "name = \"x\"\nentitlements = [\"pg/nope\"]\nmax_duration = \"1h\"",
                "break_glass[0].entitlements[0]: unknown entitlement",
            ),
            (
                "name = \"x\"\nentitlements = [\"db/login\"]\nmax_duration = \"1h\"",
                "short-lived credential",
            ),
            (
                "name = \"x\"\nentitlements = [\"pg/admin\", \"pg/admin\"]\nmax_duration = \"1h\"",
                "break_glass[0].entitlements[1]",
            ),
            (
                "name = \"x\"\nentitlements = [\"pg/admin\"]\nmax_duration = \"25h\"",
                "break_glass[0].max_duration",
            ),
            (
                "name = \"x\"\nentitlements = [\"pg/admin\"]\nmax_duration = \"1h\"\nnotify = [\"pager\"]",
                "break_glass[0].notify[0]: unknown notify sink",
            ),
            (
                "name = \"x\"\nentitlements = [\"pg/admin\"]\nmax_duration = \"1h\"\nreview_within = \"soon\"",
                "break_glass[0].review_within",
            ),
            (
                "name = \"x\"\nentitlements = [\"pg/admin\"]\nmax_duration = \"1h\"\nreviewer = \"bob\"",
                "reviewer",
            ),
        ];
        for (profile, expected) in cases {
            let error = load(&format!("[[break_glass]]\n{profile}\n")).expect_err("refused");
            assert!(error.contains(expected), "{profile}: {error}");
        }
        let twice =
            "[[break_glass]]\nname = \"x\"\nentitlements = [\"pg/admin\"]\nmax_duration = \"1h\"\n";
        let error = load(&format!("{twice}{twice}")).expect_err("refused");
        assert!(error.contains("break_glass[1].name"), "{error}");
    }

    const JIRA: &str = r#"
[[itsm]]
name = "jira"
kind = "jira"
url = "https://acme.atlassian.net"
user = "writ@acme.example"
password = "api-token"
webhook_secret = "0123456789abcdef0123"
request_states = ["Approved"]
fields = { entitlement = "customfield_10050" }
"#;

    #[test]
    fn an_incident_names_a_configured_system_and_for_jira_its_project() {
        let profile = |incident: &str| {
            format!(
                "{JIRA}[[break_glass]]\nname = \"x\"\nentitlements = [\"pg/admin\"]\nmax_duration = \"1h\"\nincident = {incident}\n"
            )
        };
        let config = load(&profile(r#"{ system = "jira", project = "OPS" }"#)).expect("loads");
        let incident = config.break_glass["x"].incident.clone().expect("incident");
        assert_eq!(incident.project.as_deref(), Some("OPS"));
        assert_eq!(incident.issue_type.as_deref(), Some("Incident"));
        for (incident, expected) in [
            (
                r#"{ system = "snow" }"#,
                "break_glass[0].incident.system: unknown ticketing system",
            ),
            (r#"{ system = "jira" }"#, "break_glass[0].incident.project"),
            (
                r#"{ system = "jira", project = "OPS", queue = "x" }"#,
                "queue",
            ),
        ] {
            let error = load(&profile(incident)).expect_err("refused");
            assert!(error.contains(expected), "{incident}: {error}");
        }
    }
}
