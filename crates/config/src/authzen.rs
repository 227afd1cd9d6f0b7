//! writ as an OpenID AuthZEN policy decision point: `[authzen]` (who may ask about
//! others) and an entitlement's `authzen` table (which resource and actions a lease on
//! it allows, on a target of kind `authzen`).

use std::collections::BTreeMap;

use writ_domain::IdentityName;

use crate::raw::{RawAuthzen, RawPepResource};
use crate::validate::Checker;
use crate::{ConfigError, Identity};

/// `[authzen]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authzen {
    /// The enforcement points that may ask about any subject; everyone else asks only
    /// about themselves (auditors and admins about anyone).
    pub clients: Vec<IdentityName>,
    /// How long after a requestable denial its access request may be submitted.
    pub request_window_seconds: i64,
}

impl Default for Authzen {
    fn default() -> Self {
        Self {
            clients: Vec::new(),
            request_window_seconds: DEFAULT_REQUEST_WINDOW_SECONDS,
        }
    }
}

/// Ten minutes: long enough for a person to fill in why, short enough that the
/// denial still describes the present.
pub const DEFAULT_REQUEST_WINDOW_SECONDS: i64 = 600;
/// A day: a requestable denial is about now, not next week.
const REQUEST_WINDOW_MAX_SECONDS: i64 = 86_400;

/// What an entitlement enforced by PEPs covers: evaluations of one of `actions` on a
/// resource of `resource_type` (with `resource_id`, or any id when it is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PepResource {
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub actions: Vec<String>,
    /// A lease ends after this many allowed evaluations (single-use with 1).
    pub max_uses: Option<u32>,
}

/// The most uses a `max_uses` lease may be given: beyond it, a lease is not about uses.
pub const MAX_USES_MAX: i64 = 1_000_000;

impl PepResource {
    /// Whether an evaluation of `action` on `(resource_type, resource_id)` is about this.
    pub fn covers(&self, resource_type: &str, resource_id: &str, action: &str) -> bool {
        self.resource_type == resource_type
            && self
                .resource_id
                .as_deref()
                .is_none_or(|id| id == resource_id)
            && self.actions.iter().any(|a| a == action)
    }
}

pub(crate) fn validate_pep_resource(
    check: &Checker<'_>,
    key: &str,
    raw: RawPepResource,
) -> Result<PepResource, ConfigError> {
    let field = |name: &str| format!("{key}.{name}");
    let text = |name: &str, value: String| {
        if value.trim().is_empty() {
            Err(check.invalid(field(name), "must not be empty"))
        } else {
            Ok(value)
        }
    };
    let resource_type = text("resource_type", raw.resource_type.0)?;
    let resource_id = raw
        .resource_id
        .map(|id| text("resource_id", id.0))
        .transpose()?;
    if raw.actions.is_empty() {
        return Err(check.invalid(
            field("actions"),
            "name at least one action (the AuthZEN action.name a lease allows)",
        ));
    }
    let mut actions: Vec<String> = Vec::new();
    for (i, action) in raw.actions.into_iter().enumerate() {
        let action = text(&format!("actions[{i}]"), action.0)?;
        if actions.contains(&action) {
            return Err(check.invalid(
                field(&format!("actions[{i}]")),
                format!("{action:?} is listed twice"),
            ));
        }
        actions.push(action);
    }
    let max_uses = match raw.max_uses {
        None => None,
        Some(n) if (1..=MAX_USES_MAX).contains(&n) => u32::try_from(n).ok(),
        Some(n) => {
            return Err(check.invalid(
                field("max_uses"),
                format!("{n} is not a number of uses from 1 to {MAX_USES_MAX}"),
            ));
        }
    };
    Ok(PepResource {
        resource_type,
        resource_id,
        actions,
        max_uses,
    })
}

pub(crate) fn validate_authzen(
    check: &Checker<'_>,
    raw: RawAuthzen,
    identities: &BTreeMap<IdentityName, Identity>,
) -> Result<Authzen, ConfigError> {
    let mut clients: Vec<IdentityName> = Vec::new();
    for (i, name) in raw.clients.into_iter().enumerate() {
        let key = format!("authzen.clients[{i}]");
        let name: IdentityName = name
            .0
            .parse()
            .map_err(|error: writ_domain::InvalidId| check.invalid(&key, error.to_string()))?;
        if !identities.contains_key(&name) {
            return Err(check.invalid(
                &key,
                format!("unknown identity {name} (define it as a [[service]] or [[agent]])"),
            ));
        }
        if !clients.contains(&name) {
            clients.push(name);
        }
    }
    let request_window_seconds = match raw.request_window {
        None => DEFAULT_REQUEST_WINDOW_SECONDS,
        Some(text) => {
            let seconds = check.duration("authzen.request_window", &text.0)?;
            if !(1..=REQUEST_WINDOW_MAX_SECONDS).contains(&seconds) {
                return Err(check.invalid("authzen.request_window", "must be between 1s and 1d"));
            }
            seconds
        }
    };
    Ok(Authzen {
        clients,
        request_window_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEP_TARGET: &str = r#"
[authzen]
clients = ["gateway"]

[[target]]
name = "api"
kind = "authzen"

[[entitlement]]
id = "api/refund"
target = "api"
role = "refund"
sensitivity = "high"
max_duration = "1h"
authzen = { resource_type = "api", resource_id = "orders", actions = ["refund"] }

[[target]]
name = "pg"
kind = "postgres"
url = "postgres://postgres@127.0.0.1:5432/test"

[[service]]
name = "gateway"
owner = "alice"

[[user]]
name = "alice"
"#;

    fn load(text: &str) -> Result<crate::Config, String> {
        crate::Config::from_toml(std::path::Path::new("/etc/writ/writ.toml"), text)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_authzen_target_is_writs_own_and_never_reconciled() {
        let config = load(PEP_TARGET).expect("valid");
        assert_eq!(config.authzen.clients, ["gateway".parse().expect("name")]);
        assert_eq!(
            config.authzen.request_window_seconds,
            DEFAULT_REQUEST_WINDOW_SECONDS
        );
        let windowed =
            load(&PEP_TARGET.replace("[authzen]\n", "[authzen]\nrequest_window = \"90s\"\n"))
                .expect("valid");
        assert_eq!(windowed.authzen.request_window_seconds, 90);
        let target = &config.targets["api"];
        assert!(target.connector.enforced_by_writ());
        assert_eq!(target.reconcile_every_seconds, None);
        let pep = config.entitlements[&"api/refund".parse().expect("id")]
            .pep
            .clone()
            .expect("authzen table");
        assert!(pep.covers("api", "orders", "refund"));
        assert_eq!(pep.max_uses, None);
        assert!(!config.targets["pg"].connector.enforced_by_writ());
        let single = load(&PEP_TARGET.replace(
            "actions = [\"refund\"]",
            "actions = [\"refund\"], max_uses = 1",
        ))
        .expect("valid");
        assert_eq!(
            single.entitlements[&"api/refund".parse().expect("id")]
                .pep
                .as_ref()
                .and_then(|pep| pep.max_uses),
            Some(1)
        );
    }

    #[test]
    fn authzen_mistakes_are_named() {
        let entitlement_on_pg = "\n[[entitlement]]\nid = \"pg/read\"\ntarget = \"pg\"\nrole = \"read\"\nsensitivity = \"low\"\nmax_duration = \"1h\"\n";
        let cases = [
            (
                PEP_TARGET.replace(
                    "authzen = { resource_type = \"api\", resource_id = \"orders\", actions = [\"refund\"] }\n",
                    "",
                ),
                "entitlement[0].authzen: api/refund is on authzen target api",
            ),
            (
                PEP_TARGET.replace("actions = [\"refund\"]", "actions = []"),
                "entitlement[0].authzen.actions: name at least one action",
            ),
            (
                PEP_TARGET.replace("actions = [\"refund\"]", "actions = [\"refund\", \"refund\"]"),
                "entitlement[0].authzen.actions[1]: \"refund\" is listed twice",
            ),
            (
                PEP_TARGET.replace("resource_type = \"api\"", "resource_type = \" \""),
                "entitlement[0].authzen.resource_type: must not be empty",
            ),
            (
                PEP_TARGET.replace("actions = [\"refund\"]", "actions = [\"refund\"], max_uses = 0"),
                "entitlement[0].authzen.max_uses: 0 is not a number of uses from 1 to 1000000",
            ),
            (
                format!(
                    "{PEP_TARGET}{}authzen = {{ resource_type = \"t\", actions = [\"a\"] }}\n",
                    entitlement_on_pg
                ),
                "only entitlements on a target of kind \"authzen\"",
            ),
            (
                PEP_TARGET.replace("kind = \"authzen\"", "kind = \"authzen\"\nreconcile_every = \"1h\""),
                "an authzen target has nothing to reconcile",
            ),
            (
                PEP_TARGET.replace("clients = [\"gateway\"]", "clients = [\"gateway2\"]"),
                "authzen.clients[0]: unknown identity gateway2",
            ),
            (
                PEP_TARGET.replace("[authzen]\n", "[authzen]\nrequest_window = \"2d\"\n"),
                "authzen.request_window: must be between 1s and 1d",
            ),
            (
                PEP_TARGET.replace("[authzen]\n", "[authzen]\nrequest_window = \"soon\"\n"),
                "authzen.request_window: \"soon\" is not a duration",
            ),
            (
                PEP_TARGET.replace("sensitivity = \"high\"", "sensitivity = \"high\"\ncredential = true"),
                "short-lived credentials can only be issued on postgres and mariadb targets",
            ),
        ];
        for (text, expected) in cases {
            let error = load(&text).expect_err(expected);
            assert!(
                error.contains(expected),
                "{error:?} should contain {expected:?}"
            );
        }
    }

    fn resource(id: Option<&str>) -> PepResource {
        PepResource {
            resource_type: "api".into(),
            resource_id: id.map(str::to_string),
            actions: vec!["refund".into(), "read".into()],
            max_uses: None,
        }
    }

    #[test]
    fn a_resource_covers_its_type_id_and_actions_only() {
        let orders = resource(Some("orders"));
        assert!(orders.covers("api", "orders", "refund"));
        assert!(orders.covers("api", "orders", "read"));
        assert!(!orders.covers("api", "orders", "delete"));
        assert!(!orders.covers("api", "payments", "refund"));
        assert!(!orders.covers("document", "orders", "refund"));
        let any = resource(None);
        assert!(any.covers("api", "payments", "read"));
        assert!(!any.covers("apis", "payments", "read"));
    }
}
