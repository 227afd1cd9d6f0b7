//! `writ check`: asks every target, through its connector, about what the
//! configuration will need from it — the roles of its entitlements, the accounts of
//! the configured identities, writ's own privileges — before a grant meets a problem
//! and sits in `pending`. Reads only; nothing is changed anywhere.

use writ_config::Config;
use writ_connectors::{CheckItem, CheckPlan, Connectors};

/// What one target answered.
#[derive(Debug, Clone)]
pub struct TargetCheck {
    pub target: String,
    pub items: Vec<CheckItem>,
}

impl TargetCheck {
    pub fn problems(&self) -> impl Iterator<Item = &CheckItem> {
        self.items.iter().filter(|item| !item.ok)
    }
}

/// What each target needs to be able to do for this configuration.
pub fn plans(config: &Config) -> Vec<(String, CheckPlan)> {
    config
        .targets
        .values()
        .map(|target| {
            let entitlements: Vec<_> = config
                .entitlements
                .values()
                .filter(|e| e.target == target.name)
                .collect();
            let mut roles: Vec<String> = entitlements.iter().map(|e| e.role.clone()).collect();
            roles.sort();
            roles.dedup();
            let credentials = entitlements.iter().any(|e| e.credential);
            // Every enabled identity may be granted a role here, unless every
            // entitlement on this target issues a login of its own instead.
            let role_grants = entitlements.iter().any(|e| !e.credential);
            let mut accounts: Vec<String> = if role_grants {
                config
                    .identities
                    .values()
                    .filter(|i| !i.disabled)
                    .map(|i| i.account_on(&target.name).to_string())
                    .collect()
            } else {
                Vec::new()
            };
            accounts.sort();
            accounts.dedup();
            (
                target.name.clone(),
                CheckPlan {
                    roles,
                    accounts,
                    credentials,
                },
            )
        })
        .collect()
}

/// Runs every target's check, one target after another (order of the configuration).
pub async fn check_targets(config: &Config, connectors: &Connectors) -> Vec<TargetCheck> {
    let mut checks = Vec::new();
    for (target, plan) in plans(config) {
        let items = match connectors.get(&target) {
            Some(connector) => connector.check(&plan).await,
            None => vec![CheckItem::problem(
                "connector",
                "no connector is configured",
            )],
        };
        checks.push(TargetCheck { target, items });
    }
    checks
}
