//! `writ policy lint`: policies that are valid but probably not what their author meant.
//! Two kinds of check: on each policy's text (a permit without `@max_duration`, a forbid
//! without `@reason`), and on a dry run over every configured identity × entitlement,
//! with and without a checked ticket, at the shortest and longest duration (automatic
//! access to high or critical entitlements; request policies that applied to none).
//! A policy silences a rule it means to break with `@lint_allow("rule, ...")`.

use std::collections::{BTreeMap, BTreeSet};

use cedar_policy::{
    ActionConstraint, Authorizer, Effect, EntityUid, Policy, PolicySet, Request, Response,
};
use writ_config::Config;
use writ_domain::{DecisionOutcome, Sensitivity, Ticket, Timestamp};

use crate::decide::RequestFacts;
use crate::entities::uid;
use crate::load::PolicyEngine;

/// What a lint finding is about; its text is what `@lint_allow` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LintRule {
    /// A permit gives high or critical access without any approval.
    AutoHighSensitivity,
    /// A permit for `request` or `break_glass` without `@max_duration`: only the
    /// entitlement's maximum bounds what it grants.
    NoMaxDuration,
    /// A `request` or `break_glass` policy that applied to no request of the dry run.
    NeverApplies,
    /// A forbid without `@reason`: the requester is told only its id.
    ForbidWithoutReason,
}

impl LintRule {
    pub const ALL: [Self; 4] = [
        Self::AutoHighSensitivity,
        Self::NoMaxDuration,
        Self::NeverApplies,
        Self::ForbidWithoutReason,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AutoHighSensitivity => "auto_high_sensitivity",
            Self::NoMaxDuration => "no_max_duration",
            Self::NeverApplies => "never_applies",
            Self::ForbidWithoutReason => "forbid_without_reason",
        }
    }
}

/// One finding: the policy, the rule, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LintFinding {
    pub policy: String,
    pub rule: LintRule,
    pub message: String,
}

/// The actions whose resource is an entitlement: what the dry run evaluates.
const ENTITLEMENT_ACTIONS: [&str; 2] = ["request", "break_glass"];

/// Whether a policy's scope can only match `request` or `break_glass` (and so whether
/// the dry run sees every request it could apply to).
fn only_entitlement_actions(policy: &Policy) -> bool {
    let is_entitlement_action = |uid: &EntityUid| {
        ENTITLEMENT_ACTIONS
            .iter()
            .any(|action| uid == &crate::entities::uid("Action", action))
    };
    match policy.action_constraint() {
        ActionConstraint::Any => false,
        ActionConstraint::Eq(action) => is_entitlement_action(&action),
        ActionConstraint::In(actions) => {
            !actions.is_empty() && actions.iter().all(is_entitlement_action)
        }
    }
}

/// Whether a policy's scope can match `request` or `break_glass`: a permit that grants
/// access.
fn may_grant_access(policy: &Policy) -> bool {
    let grants = |uid: &EntityUid| {
        ENTITLEMENT_ACTIONS
            .iter()
            .any(|action| uid == &crate::entities::uid("Action", action))
    };
    match policy.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(action) => grants(&action),
        ActionConstraint::In(actions) => actions.iter().any(grants),
    }
}

/// The rules a policy says it breaks on purpose.
fn allowed(policy: &Policy) -> BTreeSet<String> {
    policy
        .annotation("lint_allow")
        .map(|text| {
            text.split(',')
                .map(|rule| rule.trim().to_string())
                .filter(|rule| !rule.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The set's policies of one effect, under their writ ids.
fn of_effect(set: &PolicySet, effect: Effect) -> PolicySet {
    let mut chosen = PolicySet::new();
    for policy in set.policies().filter(|p| p.effect() == effect) {
        // Ids are unique in the set they come from.
        let _ = chosen.add(policy.clone());
    }
    chosen
}

/// The ids of the policies a response says were satisfied.
fn satisfied(response: &Response) -> impl Iterator<Item = String> + '_ {
    response.diagnostics().reason().map(ToString::to_string)
}

impl PolicyEngine {
    /// Lints the policy set against `config`'s identities and entitlements, evaluating
    /// at most `evaluations_max` requests in the dry run.
    pub fn lint(
        &self,
        config: &Config,
        now: Timestamp,
        evaluations_max: usize,
    ) -> Vec<LintFinding> {
        let whole = self.set.whole();
        let mut findings = BTreeSet::new();
        for policy in whole.policies() {
            let id = policy.id().to_string();
            let meta = self.meta.get(policy.id()).cloned().unwrap_or_default();
            if meta.forbid && meta.reason.is_none() {
                findings.insert(LintFinding {
                    policy: id.clone(),
                    rule: LintRule::ForbidWithoutReason,
                    message: "forbid without @reason: a refused requester is told only \"forbidden by policy\" and its id".into(),
                });
            }
            if !meta.forbid && may_grant_access(policy) && meta.max_duration_seconds.is_none() {
                findings.insert(LintFinding {
                    policy: id.clone(),
                    rule: LintRule::NoMaxDuration,
                    message: "permit without @max_duration: what it grants lasts as long as the entitlement's max_duration allows".into(),
                });
            }
        }

        let ticket = Ticket {
            system: "lint".into(),
            key: "LINT-1".into(),
            verified: Some(writ_domain::TicketCheck {
                id: "10001".into(),
                state: "Approved".into(),
                ticket_type: "Service Request".into(),
                window_end: Some(now.plus_seconds(3600)),
                approval: Some("approved".into()),
                checked_at: now,
            }),
        };
        let permits = of_effect(whole, Effect::Permit);
        let forbids = of_effect(whole, Effect::Forbid);
        let authorizer = Authorizer::new();
        let mut applied: BTreeSet<String> = BTreeSet::new();
        // Per policy: the high or critical entitlements it made automatic, with an example.
        let mut automatic: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut evaluated = 0usize;
        'outer: for identity in config.identities.values() {
            let requester = identity.owner.as_ref().unwrap_or(&identity.name);
            for entitlement in config.entitlements.values() {
                for action in ENTITLEMENT_ACTIONS {
                    for ticket in [None, Some(&ticket)] {
                        for duration in [1, entitlement.max_duration_seconds] {
                            if evaluated >= evaluations_max {
                                break 'outer;
                            }
                            evaluated += 1;
                            let facts = RequestFacts {
                                requester: requester.as_str(),
                                subject: identity.name.as_str(),
                                entitlement: entitlement.id.as_str(),
                                duration_seconds: duration,
                                justification: "writ policy lint",
                                ticket,
                                on_behalf_of: identity.owner.as_ref().map(|o| o.as_str()),
                                actors: crate::decide::agent_alone(identity),
                                holds: &[],
                                on_behalf_of_holds: &[],
                                effective: None,
                                now,
                            };
                            let Ok((principal, entities, kind)) =
                                self.entities_for(facts.requester, &facts, None)
                            else {
                                continue;
                            };
                            let Ok(context) = crate::decide::context(&facts, kind) else {
                                continue;
                            };
                            let Ok(request) = Request::new(
                                principal,
                                uid("Action", action),
                                uid("Entitlement", facts.entitlement),
                                context,
                                None,
                            ) else {
                                continue;
                            };
                            for set in [&permits, &forbids] {
                                let response = authorizer.is_authorized(&request, set, &entities);
                                applied.extend(satisfied(&response));
                            }
                            let high = matches!(
                                entitlement.sensitivity,
                                Sensitivity::High | Sensitivity::Critical
                            );
                            if action == "request" && high {
                                let decision = self.decide_request(&facts).value;
                                if decision.outcome == DecisionOutcome::Auto {
                                    for policy in decision.policies {
                                        automatic
                                            .entry(policy)
                                            .or_default()
                                            .entry(entitlement.id.to_string())
                                            .or_insert_with(|| identity.name.to_string());
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for (policy, entitlements) in automatic {
            let list: Vec<String> = entitlements
                .iter()
                .map(|(entitlement, who)| format!("{entitlement} (e.g. for {who})"))
                .collect();
            findings.insert(LintFinding {
                policy,
                rule: LintRule::AutoHighSensitivity,
                message: format!(
                    "grants high or critical access automatically, without approval: {}",
                    list.join(", ")
                ),
            });
        }
        for policy in whole.policies() {
            let id = policy.id().to_string();
            if only_entitlement_actions(policy) && !applied.contains(&id) {
                findings.insert(LintFinding {
                    policy: id,
                    rule: LintRule::NeverApplies,
                    message: format!(
                        "applied to none of {evaluated} requests of a dry run (every identity × entitlement, with and without a checked ticket, shortest and longest duration): check its scope and conditions"
                    ),
                });
            }
        }
        findings
            .into_iter()
            .filter(|finding| {
                whole
                    .policy(&cedar_policy::PolicyId::new(&finding.policy))
                    .is_none_or(|policy| !allowed(policy).contains(finding.rule.as_str()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const CONFIG: &str = r#"
[[target]]
name = "pg"
kind = "noop"

[[entitlement]]
id = "pg/read"
target = "pg"
role = "read"
sensitivity = "low"
max_duration = "8h"

[[entitlement]]
id = "pg/root"
target = "pg"
role = "root"
sensitivity = "critical"
max_duration = "1h"

[[user]]
name = "alice"
groups = ["engineers"]
"#;

    fn lint(policies: &str) -> Vec<(String, &'static str)> {
        let config = Config::from_toml(Path::new("/etc/writ/writ.toml"), CONFIG).expect("config");
        let engine = PolicyEngine::from_sources(&[("p.cedar".into(), policies.into())], &config)
            .expect("policies load");
        engine
            .lint(
                &config,
                Timestamp::from_unix_micros(1_800_000_000_000_000),
                10_000,
            )
            .into_iter()
            .map(|f| (f.policy, f.rule.as_str()))
            .collect()
    }

    #[test]
    fn each_rule_finds_what_it_names_and_nothing_else() {
        let found = lint(
            r#"
@id("read-auto") @max_duration("1h")
permit (principal in Group::"engineers", action == Action::"request", resource)
when { resource.sensitivity == "low" };

@id("root-auto") @max_duration("15m")
permit (principal in Group::"engineers", action == Action::"request", resource == Entitlement::"pg/root");

@id("unbounded") @approvals("1")
permit (principal, action == Action::"request", resource == Entitlement::"pg/read");

@id("ghosts") @max_duration("1h")
permit (principal in Group::"nobody-is-in-this", action == Action::"request", resource);

@id("no-reason")
forbid (principal, action == Action::"request", resource) when { context.duration_seconds > 86400 * 30 };

@id("explained") @reason("never on weekends")
forbid (principal, action == Action::"request", resource == Entitlement::"pg/root")
when { context.justification == "weekend" };

@id("approve") permit (principal, action == Action::"approve", resource);
"#,
        );
        let found: BTreeSet<(String, &str)> = found.into_iter().collect();
        let expected: BTreeSet<(String, &str)> = [
            ("ghosts", "never_applies"),
            ("no-reason", "never_applies"),
            ("no-reason", "forbid_without_reason"),
            ("root-auto", "auto_high_sensitivity"),
            ("unbounded", "no_max_duration"),
            // A dry run cannot guess a justification: a condition on one looks unused.
            ("explained", "never_applies"),
        ]
        .into_iter()
        .map(|(policy, rule)| (policy.to_string(), rule))
        .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn a_policy_that_means_it_says_so() {
        let found = lint(
            r#"
@id("root-auto") @max_duration("15m") @lint_allow("auto_high_sensitivity")
permit (principal in Group::"engineers", action == Action::"request", resource == Entitlement::"pg/root");

@id("break-glass") @lint_allow("no_max_duration, never_applies")
permit (principal in Group::"oncall", action == Action::"break_glass", resource);
"#,
        );
        assert!(found.is_empty(), "{found:?}");
    }
}
