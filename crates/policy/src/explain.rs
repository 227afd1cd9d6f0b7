//! Why a decision came out as it did: every policy of the set, evaluated alone on the
//! decision's facts, with what it did — set the outcome, applied, or did not apply
//! because its scope does not match, its conditions were false, or it errored — and the
//! annotations that made the outcome (`@approvals`, `@max_duration`, `@reason`).

use cedar_policy::{Authorizer, Decision as CedarDecision, Effect, Policy, PolicySet, Request};
use writ_domain::Decision;

use crate::decide::RequestFacts;
use crate::entities::uid;
use crate::load::PolicyEngine;

/// What one policy did for one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyVerdict {
    /// It applied and is among the policies that made the outcome.
    Determined,
    /// It applied, but did not make the outcome (a permit under a forbid that denied).
    Applied,
    /// Its scope (principal, action or resource) does not match this request.
    ScopeDoesNotMatch,
    /// Its scope matches, but its `when`/`unless` conditions were not met.
    ConditionsFalse,
    /// Its evaluation errored: it counted as not satisfied (a forbid: as denying).
    Errored(String),
}

/// One policy's part in a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyPart {
    pub id: String,
    /// `permit` or `forbid`.
    pub effect: &'static str,
    /// The annotations writ reads (`approvals`, `max_duration`, `reason`), as written.
    pub annotations: Vec<(String, String)>,
    pub verdict: PolicyVerdict,
}

/// A decision explained: the decision as this policy set makes it now, and each policy's
/// part in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub decision: Decision,
    pub parts: Vec<PolicyPart>,
}

const ANNOTATIONS: [&str; 3] = ["approvals", "max_duration", "reason"];

/// The same policy with its conditions removed: whether its scope alone matches.
fn scope_only(policy: &Policy) -> Option<Policy> {
    let mut json = policy.to_json().ok()?;
    json.as_object_mut()?
        .insert("conditions".into(), serde_json::json!([]));
    Policy::from_json(Some(policy.id().clone()), json).ok()
}

impl PolicyEngine {
    /// Explains the decision on `facts` for `action` (`request` or `break_glass`).
    pub fn explain(&self, action: &str, facts: &RequestFacts<'_>) -> Result<Explanation, String> {
        let decision = match action {
            "break_glass" => self.decide_break_glass(facts).value,
            _ => self.decide_request(facts).value,
        };
        let (principal, entities, kind) = self.entities_for(facts.requester, facts, None)?;
        let context = crate::decide::context(facts, kind)?;
        let request = Request::new(
            principal,
            uid("Action", action),
            uid("Entitlement", facts.entitlement),
            context,
            None,
        )
        .map_err(|e| e.to_string())?;
        let authorizer = Authorizer::new();
        let alone = |policy: &Policy| {
            let mut set = PolicySet::new();
            set.add(policy.clone()).map_err(|e| e.to_string())?;
            Ok::<_, String>(authorizer.is_authorized(&request, &set, &entities))
        };
        let mut parts = Vec::new();
        for policy in self.set.whole().policies() {
            let id = policy.id().to_string();
            let response = alone(policy)?;
            let errors: Vec<String> = response
                .diagnostics()
                .errors()
                .map(ToString::to_string)
                .collect();
            let applied = response.diagnostics().reason().next().is_some();
            let verdict = if !errors.is_empty() {
                PolicyVerdict::Errored(errors.join("; "))
            } else if applied && decision.policies.contains(&id) {
                PolicyVerdict::Determined
            } else if applied {
                PolicyVerdict::Applied
            } else {
                let scope_matches = scope_only(policy)
                    .map(|scoped| alone(&scoped))
                    .transpose()?
                    .is_some_and(|response| {
                        response.diagnostics().reason().next().is_some()
                            || response.decision() == CedarDecision::Allow
                    });
                if scope_matches {
                    PolicyVerdict::ConditionsFalse
                } else {
                    PolicyVerdict::ScopeDoesNotMatch
                }
            };
            parts.push(PolicyPart {
                id,
                effect: if policy.effect() == Effect::Forbid {
                    "forbid"
                } else {
                    "permit"
                },
                annotations: ANNOTATIONS
                    .iter()
                    .filter_map(|key| {
                        policy
                            .annotation(key)
                            .map(|value| ((*key).to_string(), value.to_string()))
                    })
                    .collect(),
                verdict,
            });
        }
        parts.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Explanation { decision, parts })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use writ_config::Config;
    use writ_domain::Timestamp;

    use super::*;

    const CONFIG: &str = r#"
[[target]]
name = "pg"
kind = "noop"

[[entitlement]]
id = "pg/admin"
target = "pg"
role = "admin"
sensitivity = "high"
max_duration = "8h"

[[user]]
name = "alice"
groups = ["engineers"]
"#;

    const POLICIES: &str = r#"
@id("engineers-one-approval") @approvals("1") @max_duration("2h")
permit (principal in Group::"engineers", action == Action::"request", resource);

@id("short-two-approvals") @approvals("2")
permit (principal, action == Action::"request", resource) when { context.duration_seconds < 600 };

@id("dba-only")
permit (principal in Group::"dba", action == Action::"request", resource);

@id("friday") @reason("no changes on Friday")
forbid (principal, action == Action::"request", resource) when { context.justification == "friday" };

@id("approve") permit (principal, action == Action::"approve", resource);
"#;

    fn explain(justification: &str) -> Explanation {
        let config = Config::from_toml(Path::new("/etc/writ/writ.toml"), CONFIG).expect("config");
        let engine = PolicyEngine::from_sources(&[("p.cedar".into(), POLICIES.into())], &config)
            .expect("policies");
        engine
            .explain(
                "request",
                &RequestFacts {
                    requester: "alice",
                    subject: "alice",
                    entitlement: "pg/admin",
                    duration_seconds: 3600,
                    justification,
                    ticket: None,
                    on_behalf_of: None,
                    actors: &[],
                    holds: &[],
                    on_behalf_of_holds: &[],
                    effective: None,
                    now: Timestamp::from_unix_micros(1_800_000_000_000_000),
                },
            )
            .expect("explained")
    }

    fn verdicts(explanation: &Explanation) -> Vec<(&str, &PolicyVerdict)> {
        explanation
            .parts
            .iter()
            .map(|p| (p.id.as_str(), &p.verdict))
            .collect()
    }

    #[test]
    fn every_policy_says_what_it_did_and_why_not() {
        let explained = explain("migration");
        assert_eq!(explained.decision.approvals_required, 1);
        assert_eq!(
            verdicts(&explained),
            [
                ("approve", &PolicyVerdict::ScopeDoesNotMatch),
                ("dba-only", &PolicyVerdict::ScopeDoesNotMatch),
                ("engineers-one-approval", &PolicyVerdict::Determined),
                ("friday", &PolicyVerdict::ConditionsFalse),
                ("short-two-approvals", &PolicyVerdict::ConditionsFalse),
            ]
        );
        let annotations = &explained.parts[2].annotations;
        assert!(annotations.contains(&("approvals".into(), "1".into())));
        assert!(annotations.contains(&("max_duration".into(), "2h".into())));
    }

    #[test]
    fn a_permit_under_a_forbid_applied_but_did_not_decide() {
        let explained = explain("friday");
        assert_eq!(explained.decision.reasons, ["no changes on Friday"]);
        let verdicts = verdicts(&explained);
        assert!(verdicts.contains(&("friday", &PolicyVerdict::Determined)));
        assert!(verdicts.contains(&("engineers-one-approval", &PolicyVerdict::Applied)));
    }
}
