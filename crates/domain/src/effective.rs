//! What an entitlement really gives on its target: the roles or groups its role
//! reaches (transitively), whether it reaches superuser, the superuser-like powers and
//! the object privileges it holds. Read from the target by its connector; recorded on
//! each grant, shown to Cedar as `resource.effective`, and compared by reconciliation
//! with what was approved.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EffectiveAccess {
    /// Roles or groups the entitlement's role is a member of, directly or through
    /// others (not the role itself).
    pub roles: BTreeSet<String>,
    /// It reaches a superuser (PostgreSQL `rolsuper`, MariaDB `ALL PRIVILEGES ON *.*`
    /// or `SUPER`).
    pub superuser: bool,
    /// Powers beyond object privileges: `createrole`, `createdb`, `bypassrls`,
    /// `replication`, and the predefined roles such as `pg_read_all_data` and
    /// `pg_write_all_data` it reaches.
    pub powers: BTreeSet<String>,
    /// Object privileges, as `PRIVILEGE ON object` (`SELECT ON TABLE public.orders`).
    pub privileges: BTreeSet<String>,
}

/// Powers that make an entitlement critical whatever else it holds.
pub const CRITICAL_POWERS: [&str; 2] = ["pg_read_all_data", "pg_write_all_data"];

/// How effective access changed between two observations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EffectiveChange {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles_added: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles_removed: Vec<String>,
    /// `Some(now)` when superuser changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superuser: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub powers_added: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub powers_removed: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileges_added: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileges_removed: Vec<String>,
}

fn added(from: &BTreeSet<String>, to: &BTreeSet<String>) -> Vec<String> {
    to.difference(from).cloned().collect()
}

impl EffectiveAccess {
    /// Whether it reaches superuser or a power that reads or writes all data.
    pub fn is_critical(&self) -> bool {
        self.superuser || CRITICAL_POWERS.iter().any(|p| self.powers.contains(*p))
    }

    /// What changed from `self` (approved) to `now`; `None` when nothing did.
    pub fn change_to(&self, now: &Self) -> Option<EffectiveChange> {
        let change = EffectiveChange {
            roles_added: added(&self.roles, &now.roles),
            roles_removed: added(&now.roles, &self.roles),
            superuser: (self.superuser != now.superuser).then_some(now.superuser),
            powers_added: added(&self.powers, &now.powers),
            powers_removed: added(&now.powers, &self.powers),
            privileges_added: added(&self.privileges, &now.privileges),
            privileges_removed: added(&now.privileges, &self.privileges),
        };
        (change != EffectiveChange::default()).then_some(change)
    }
}

impl EffectiveChange {
    /// One line for people: `+role admins, superuser now, +SELECT ON TABLE x`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        let mut list = |sign: &str, what: &str, items: &[String]| {
            for item in items {
                parts.push(format!("{sign}{what} {item}"));
            }
        };
        list("+", "role", &self.roles_added);
        list("-", "role", &self.roles_removed);
        list("+", "power", &self.powers_added);
        list("-", "power", &self.powers_removed);
        list("+", "privilege", &self.privileges_added);
        list("-", "privilege", &self.privileges_removed);
        if let Some(now) = self.superuser {
            parts.push(if now {
                "now reaches superuser".to_string()
            } else {
                "no longer reaches superuser".to_string()
            });
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn changes_name_what_was_added_and_removed() {
        let approved = EffectiveAccess {
            roles: set(&["readers"]),
            privileges: set(&["SELECT ON TABLE public.orders"]),
            ..EffectiveAccess::default()
        };
        assert_eq!(approved.change_to(&approved.clone()), None);
        let now = EffectiveAccess {
            roles: set(&["readers", "admins"]),
            superuser: true,
            powers: set(&["pg_write_all_data"]),
            privileges: set(&[]),
        };
        let change = approved.change_to(&now).expect("changed");
        assert_eq!(change.roles_added, ["admins"]);
        assert_eq!(change.privileges_removed, ["SELECT ON TABLE public.orders"]);
        assert_eq!(change.superuser, Some(true));
        assert!(now.is_critical() && !approved.is_critical());
        assert_eq!(
            change.summary(),
            "+role admins, +power pg_write_all_data, -privilege SELECT ON TABLE public.orders, now reaches superuser"
        );
    }
}
