//! One evaluation, one whole decision: deny with reasons, automatic, or N approvals,
//! with the duration cap, the determining policies and the policy-set hash.

use std::borrow::Cow;
use std::collections::HashMap;

use cedar_policy::{
    Context, Decision as CedarDecision, Entities, Entity, EntityUid, Request, Response,
    RestrictedExpression,
};
use writ_domain::{
    Decision, DecisionOutcome, EffectiveAccess, EntitlementId, IdentityName,
    Request as WritRequest, Ticket, Timestamp,
};

use crate::cedar_values::{self, Field};
use crate::entities::uid;
use crate::load::PolicyEngine;

/// The facts of a request, as policy sees them.
#[derive(Debug, Clone)]
pub struct RequestFacts<'a> {
    pub requester: &'a str,
    pub subject: &'a str,
    pub entitlement: &'a str,
    pub duration_seconds: i64,
    pub justification: &'a str,
    pub ticket: Option<&'a Ticket>,
    /// The user an agent acts for.
    pub on_behalf_of: Option<&'a str>,
    /// The agents acting for `on_behalf_of`, the requester first
    /// ([`WritRequest::acting_agents`]); empty when nobody acts for anyone.
    pub actors: &'a [IdentityName],
    /// The entitlements the subject holds or has asked for (`context.holds`).
    pub holds: &'a [EntitlementId],
    /// What the user an agent acts for holds or has asked for: their `context.holds`
    /// when policy is asked what they would get themselves.
    pub on_behalf_of_holds: &'a [EntitlementId],
    /// What the entitlement's role really gives on its target (`context.effective`).
    pub effective: Option<&'a EffectiveAccess>,
    pub now: Timestamp,
}

impl<'a> RequestFacts<'a> {
    /// The facts of a recorded request, for `duration_seconds` at `now`.
    pub fn of_request(request: &'a WritRequest, duration_seconds: i64, now: Timestamp) -> Self {
        Self {
            requester: request.requester.as_str(),
            subject: request.subject.as_str(),
            entitlement: request.entitlement.as_str(),
            duration_seconds,
            justification: &request.justification,
            ticket: request.ticket.as_ref(),
            on_behalf_of: request.on_behalf_of.as_ref().map(|u| u.as_str()),
            actors: request.acting_agents(),
            holds: &request.holds,
            on_behalf_of_holds: &request.on_behalf_of_holds,
            effective: request.effective.as_ref(),
            now,
        }
    }
}

/// Who wants to approve (or revoke) which request.
#[derive(Debug, Clone)]
pub struct ApproveFacts<'a> {
    pub actor: &'a str,
    pub request: &'a WritRequest,
    pub now: Timestamp,
}

/// A policy answer and any evaluation errors met on the way. An erroring policy is
/// treated as not satisfied; the errors are for the caller to log and count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation<T> {
    pub value: T,
    pub errors: Vec<String>,
}

const NO_PERMIT_REASON: &str = "no policy permits this request";
const NOT_PERMANENT_REASON: &str = "access without an end is refused unless a policy marked @permanent(\"true\") permits it: ask for a duration";

/// Granted at once without approvals, else once they are in.
fn granted_with(approvals_required: u32) -> DecisionOutcome {
    if approvals_required == 0 {
        DecisionOutcome::Auto
    } else {
        DecisionOutcome::Approval
    }
}

/// An agent's decision held to what the user it acts for would get themselves (their
/// `own` decision): denied if either is, the most approvals, the shortest cap, and the
/// policies of both.
fn attenuated(agent: Decision, own: Decision, user: &str) -> Decision {
    if agent.outcome == DecisionOutcome::Deny {
        return agent;
    }
    if own.outcome == DecisionOutcome::Deny {
        return Decision {
            reasons: own
                .reasons
                .iter()
                .map(|reason| format!("{user} could not get this themselves: {reason}"))
                .collect(),
            ..own
        };
    }
    let approvals_required = agent.approvals_required.max(own.approvals_required);
    let mut policies = agent.policies;
    policies.extend(own.policies);
    policies.sort();
    policies.dedup();
    Decision {
        outcome: granted_with(approvals_required),
        approvals_required,
        policies,
        reasons: Vec::new(),
        max_duration_seconds: [agent.max_duration_seconds, own.max_duration_seconds]
            .into_iter()
            .flatten()
            .min(),
        policy_hash: agent.policy_hash,
    }
}

/// The context's fields, as `writ.cedarschema` declares them.
fn context_fields(facts: &RequestFacts<'_>, subject_kind: &str) -> Vec<(&'static str, Field)> {
    let check = facts.ticket.and_then(|ticket| ticket.verified.as_ref());
    let mut fields = Vec::with_capacity(15);
    if let Some(end) = check.and_then(|check| check.window_end) {
        fields.push(("window_end", Field::Datetime(end.to_cedar_datetime())));
    }
    if let Some(user) = facts.on_behalf_of {
        fields.push(("on_behalf_of", Field::Entity(uid("User", user))));
    }
    fields.push((
        "actors",
        Field::EntitySet(
            facts
                .actors
                .iter()
                .map(|agent| uid("Agent", agent.as_str()))
                .collect(),
        ),
    ));
    fields.push((
        "delegation_depth",
        Field::Long(i64::try_from(facts.actors.len()).unwrap_or(i64::MAX)),
    ));
    if let Some(effective) = facts.effective {
        let texts = |items: &std::collections::BTreeSet<String>| {
            Field::TextSet(items.iter().cloned().collect())
        };
        fields.push((
            "effective",
            Field::Record(vec![
                ("superuser", Field::Bool(effective.superuser)),
                ("roles", texts(&effective.roles)),
                ("powers", texts(&effective.powers)),
                ("privileges", texts(&effective.privileges)),
            ]),
        ));
    }
    let text = |value: Option<&String>| Field::Text(value.cloned().unwrap_or_default());
    fields.extend([
        ("ticket_verified", Field::Bool(check.is_some())),
        ("ticket_state", text(check.map(|c| &c.state))),
        ("ticket_type", text(check.map(|c| &c.ticket_type))),
        (
            "ticket_approval",
            text(check.and_then(|c| c.approval.as_ref())),
        ),
        ("now", Field::Datetime(facts.now.to_cedar_datetime())),
        ("subject", Field::Entity(uid("Subject", facts.subject))),
        ("subject_kind", Field::Text(subject_kind.to_string())),
        ("duration_seconds", Field::Long(facts.duration_seconds)),
        (
            "permanent",
            Field::Bool(facts.duration_seconds >= writ_domain::PERMANENT_SECONDS),
        ),
        (
            "justification",
            Field::Text(facts.justification.to_string()),
        ),
        ("has_ticket", Field::Bool(facts.ticket.is_some())),
        (
            "holds",
            Field::EntitySet(
                facts
                    .holds
                    .iter()
                    .map(|held| uid("Entitlement", held.as_str()))
                    .collect(),
            ),
        ),
        ("ticket_system", text(facts.ticket.map(|t| &t.system))),
        ("ticket_key", text(facts.ticket.map(|t| &t.key))),
    ]);
    fields
}

pub(crate) fn context(facts: &RequestFacts<'_>, subject_kind: &str) -> Result<Context, String> {
    cedar_values::context(context_fields(facts, subject_kind))
}

/// The ids of the policies whose evaluation errored.
fn erroring_ids(response: &Response) -> Vec<String> {
    response
        .diagnostics()
        .errors()
        .map(|error| match error {
            cedar_policy::AuthorizationError::PolicyEvaluationError(e) => e.policy_id().to_string(),
        })
        .collect()
}

fn error_strings(response: &Response) -> Vec<String> {
    response
        .diagnostics()
        .errors()
        .map(ToString::to_string)
        .collect()
}

impl PolicyEngine {
    fn denial(&self, reason: String) -> Decision {
        Decision {
            outcome: DecisionOutcome::Deny,
            approvals_required: 0,
            policies: Vec::new(),
            reasons: vec![reason],
            max_duration_seconds: None,
            policy_hash: self.policy_hash().to_string(),
        }
    }

    /// The entities a decision about `facts` can look at, and the principal's uid. Without
    /// an extra entity that is the catalog's prebuilt store; with one (the `Request` of an
    /// approval), a small store of just the entities involved.
    pub(crate) fn entities_for(
        &self,
        actor: &str,
        facts: &RequestFacts<'_>,
        extra: Option<Entity>,
    ) -> Result<(EntityUid, Cow<'_, Entities>, &str), String> {
        let catalog = &self.catalog;
        let unknown_identity = |name: &str| format!("unknown identity {name:?}");
        let actor_entities = catalog
            .identities
            .get(actor)
            .ok_or_else(|| unknown_identity(actor))?;
        let requester = catalog
            .identities
            .get(facts.requester)
            .ok_or_else(|| unknown_identity(facts.requester))?;
        let subject = catalog
            .identities
            .get(facts.subject)
            .ok_or_else(|| unknown_identity(facts.subject))?;
        let entitlement = catalog
            .entitlements
            .get(facts.entitlement)
            .ok_or_else(|| format!("unknown entitlement {:?}", facts.entitlement))?;
        let Some(extra) = extra else {
            return Ok((
                actor_entities.principal.uid(),
                Cow::Borrowed(&catalog.all),
                subject.kind.as_str(),
            ));
        };
        let mut chosen: HashMap<EntityUid, Entity> = HashMap::with_capacity(8);
        for entity in [
            &actor_entities.principal,
            &actor_entities.subject,
            &requester.principal,
            &requester.subject,
            &subject.principal,
            &subject.subject,
            entitlement,
        ] {
            chosen.entry(entity.uid()).or_insert_with(|| entity.clone());
        }
        chosen.insert(extra.uid(), extra);
        let entities =
            Entities::from_entities(chosen.into_values(), None).map_err(|e| e.to_string())?;
        Ok((
            actor_entities.principal.uid(),
            Cow::Owned(entities),
            subject.kind.as_str(),
        ))
    }

    fn evaluate(
        &self,
        actor: &str,
        action: &str,
        resource: EntityUid,
        facts: &RequestFacts<'_>,
        extra: Option<Entity>,
    ) -> Result<Response, String> {
        let (principal, entities, subject_kind) = self.entities_for(actor, facts, extra)?;
        let context = context(facts, subject_kind)?;
        let request = Request::new(principal, uid("Action", action), resource, context, None)
            .map_err(|e| e.to_string())?;
        Ok(self.set.is_authorized(&request, &entities))
    }

    /// Decides a new request: deny (with reasons), automatic, or N approvals, and the cap.
    pub fn decide_request(&self, facts: &RequestFacts<'_>) -> Evaluation<Decision> {
        self.decide("request", facts)
    }

    /// Decides a break-glass activation of one entitlement: permitted (automatic: it is
    /// granted at once and reviewed afterwards, so `@approvals` counts for nothing), or
    /// denied with reasons, and the cap `@max_duration` sets.
    pub fn decide_break_glass(&self, facts: &RequestFacts<'_>) -> Evaluation<Decision> {
        let mut evaluation = self.decide("break_glass", facts);
        let decision = &mut evaluation.value;
        if decision.outcome == DecisionOutcome::Approval {
            decision.outcome = DecisionOutcome::Auto;
            decision.approvals_required = 0;
        }
        evaluation
    }

    /// The decision on `facts`; for an agent acting for a user, never more than that
    /// user would get asking for the same access for themselves: denied if they would
    /// be, with at least their approvals and at most their duration.
    fn decide(&self, action: &str, facts: &RequestFacts<'_>) -> Evaluation<Decision> {
        let mut evaluation = self.decide_alone(action, facts);
        let Some(user) = facts.on_behalf_of else {
            return evaluation;
        };
        // What the user would get asking for the same access for themselves, on what
        // they hold: an agent is no way around their limits or their toxic combinations.
        let own = self.decide_alone(
            action,
            &RequestFacts {
                requester: user,
                subject: user,
                on_behalf_of: None,
                actors: &[],
                holds: facts.on_behalf_of_holds,
                on_behalf_of_holds: &[],
                ..facts.clone()
            },
        );
        evaluation.errors.extend(own.errors);
        evaluation.value = attenuated(evaluation.value, own.value, user);
        evaluation
    }

    fn decide_alone(&self, action: &str, facts: &RequestFacts<'_>) -> Evaluation<Decision> {
        let response = match self.evaluate(
            facts.requester,
            action,
            uid("Entitlement", facts.entitlement),
            facts,
            None,
        ) {
            Ok(response) => response,
            Err(problem) => {
                return Evaluation {
                    value: self.denial(problem.clone()),
                    errors: vec![problem],
                };
            }
        };
        let errors = error_strings(&response);
        // Fail closed on policies that could not be evaluated: Cedar skips them, so a
        // forbid that errors would otherwise let the request through, and a permit
        // demanding approvals that errors would let another permit make it automatic.
        let erroring: Vec<(String, &crate::load::PolicyMeta)> = erroring_ids(&response)
            .into_iter()
            .filter_map(|id| {
                let meta = self.meta.get(&cedar_policy::PolicyId::new(&id))?;
                Some((id, meta))
            })
            .collect();
        let erroring_forbids: Vec<&String> = erroring
            .iter()
            .filter(|(_, meta)| meta.forbid)
            .map(|(id, _)| id)
            .collect();
        if !erroring_forbids.is_empty() {
            let mut reasons: Vec<String> = erroring_forbids
                .iter()
                .map(|id| format!("forbid policy {id} could not be evaluated, so it denies"))
                .collect();
            reasons.sort();
            let mut policies: Vec<String> = erroring_forbids.into_iter().cloned().collect();
            policies.sort();
            return Evaluation {
                value: Decision {
                    outcome: DecisionOutcome::Deny,
                    approvals_required: 0,
                    policies,
                    reasons,
                    max_duration_seconds: None,
                    policy_hash: self.policy_hash().to_string(),
                },
                errors,
            };
        }
        let erroring_approvals: Vec<(&String, u32)> = erroring
            .iter()
            .filter(|(_, meta)| meta.approvals > 0)
            .map(|(id, meta)| (id, meta.approvals))
            .collect();
        let mut determining: Vec<String> = response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        determining.sort();
        let metas = || {
            response
                .diagnostics()
                .reason()
                .filter_map(|id| self.meta.get(id))
        };
        let decision = if response.decision() == CedarDecision::Allow {
            let approvals_required = metas()
                .map(|m| m.approvals)
                .chain(erroring_approvals.iter().map(|(_, n)| *n))
                .max()
                .unwrap_or(0);
            // An erroring permit that raised the bar is part of why.
            for (id, _) in &erroring_approvals {
                if !determining.contains(id) {
                    determining.push((*id).clone());
                }
            }
            determining.sort();
            // Without an end only where a determining permit says so, and then
            // uncapped by the others.
            let permanent = facts.duration_seconds >= writ_domain::PERMANENT_SECONDS;
            if permanent && !metas().any(|m| m.permanent) {
                Decision {
                    outcome: DecisionOutcome::Deny,
                    approvals_required: 0,
                    policies: determining,
                    reasons: vec![NOT_PERMANENT_REASON.to_string()],
                    max_duration_seconds: None,
                    policy_hash: self.policy_hash().to_string(),
                }
            } else {
                Decision {
                    outcome: granted_with(approvals_required),
                    approvals_required,
                    policies: determining,
                    reasons: Vec::new(),
                    max_duration_seconds: if permanent {
                        None
                    } else {
                        metas().filter_map(|m| m.max_duration_seconds).min()
                    },
                    policy_hash: self.policy_hash().to_string(),
                }
            }
        } else {
            let mut reasons: Vec<String> = response
                .diagnostics()
                .reason()
                .map(|id| {
                    self.meta
                        .get(id)
                        .and_then(|m| m.reason.clone())
                        .unwrap_or_else(|| format!("forbidden by policy {id}"))
                })
                .collect();
            reasons.sort();
            if reasons.is_empty() {
                reasons.push(NO_PERMIT_REASON.to_string());
            }
            Decision {
                outcome: DecisionOutcome::Deny,
                approvals_required: 0,
                policies: determining,
                reasons,
                max_duration_seconds: None,
                policy_hash: self.policy_hash().to_string(),
            }
        };
        Evaluation {
            value: decision,
            errors,
        }
    }

    /// The request as a Cedar entity. Its attributes failing to build is an error (a
    /// decision without them would be taken on less than the policy reads).
    fn request_entity(&self, request: &WritRequest) -> Result<Entity, String> {
        let this = uid("Request", &request.id.to_string());
        let attrs = HashMap::from([
            (
                "requester".to_string(),
                RestrictedExpression::new_entity_uid(uid("Subject", request.requester.as_str())),
            ),
            (
                "subject".to_string(),
                RestrictedExpression::new_entity_uid(uid("Subject", request.subject.as_str())),
            ),
            (
                "entitlement".to_string(),
                RestrictedExpression::new_entity_uid(uid(
                    "Entitlement",
                    request.entitlement.as_str(),
                )),
            ),
            (
                "duration_seconds".to_string(),
                RestrictedExpression::new_long(request.duration_seconds),
            ),
        ]);
        Entity::new(this, attrs, Default::default())
            .map_err(|e| format!("request {}: {e}", request.id))
    }

    fn permits_on_request(&self, action: &str, facts: &ApproveFacts<'_>) -> Evaluation<bool> {
        let request = facts.request;
        let request_facts = RequestFacts::of_request(request, request.duration_seconds, facts.now);
        let resource = uid("Request", &request.id.to_string());
        let evaluated = self.request_entity(request).and_then(|entity| {
            self.evaluate(facts.actor, action, resource, &request_facts, Some(entity))
        });
        match evaluated {
            Ok(response) => {
                // A forbid that could not be evaluated denies (fail closed).
                let forbid_errored = erroring_ids(&response).iter().any(|id| {
                    self.meta
                        .get(&cedar_policy::PolicyId::new(id))
                        .is_some_and(|meta| meta.forbid)
                });
                Evaluation {
                    value: response.decision() == CedarDecision::Allow && !forbid_errored,
                    errors: error_strings(&response),
                }
            }
            Err(problem) => Evaluation {
                value: false,
                errors: vec![problem],
            },
        }
    }

    /// Whether an `approve` policy permits `facts.actor` to approve the request.
    /// Segregation of duties is the caller's to enforce first; this is policy only.
    pub fn may_approve(&self, facts: &ApproveFacts<'_>) -> Evaluation<bool> {
        self.permits_on_request("approve", facts)
    }

    /// Whether a `revoke` policy permits `facts.actor` to revoke the request's grant.
    pub fn may_revoke(&self, facts: &ApproveFacts<'_>) -> Evaluation<bool> {
        self.permits_on_request("revoke", facts)
    }
}

/// What a dry run over the configuration found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DryRun {
    pub evaluated: usize,
    /// Each distinct evaluation error, with one request that met it.
    pub errors: std::collections::BTreeMap<String, String>,
}

/// The acting agents of a request the policy check and lint simulate for `identity`:
/// an agent acting for its owner is alone in its chain.
pub(crate) fn agent_alone(identity: &writ_config::Identity) -> &[IdentityName] {
    if identity.kind == writ_domain::IdentityKind::Agent && identity.owner.is_some() {
        std::slice::from_ref(&identity.name)
    } else {
        &[]
    }
}

impl PolicyEngine {
    /// Evaluates a request for every identity and entitlement in `config` (with and
    /// without a ticket, for the longest duration), so `writ policy check` can show
    /// evaluation errors before a real request meets them.
    pub fn dry_run(
        &self,
        config: &writ_config::Config,
        now: Timestamp,
        evaluations_max: usize,
    ) -> DryRun {
        let ticket = Ticket {
            system: "dry-run".into(),
            key: "CHECK-1".into(),
            verified: Some(writ_domain::TicketCheck {
                id: "10001".into(),
                state: "Approved".into(),
                ticket_type: "Service Request".into(),
                window_end: Some(now.plus_seconds(3600)),
                approval: Some("approved".into()),
                checked_at: now,
            }),
        };
        let mut run = DryRun::default();
        'outer: for identity in config.identities.values() {
            let requester = identity.owner.as_ref().unwrap_or(&identity.name);
            for entitlement in config.entitlements.values() {
                for ticket in [None, Some(&ticket)] {
                    if run.evaluated >= evaluations_max {
                        break 'outer;
                    }
                    let facts = RequestFacts {
                        requester: requester.as_str(),
                        subject: identity.name.as_str(),
                        entitlement: entitlement.id.as_str(),
                        duration_seconds: entitlement.max_duration_seconds,
                        justification: "writ policy check",
                        ticket,
                        on_behalf_of: identity.owner.as_ref().map(|o| o.as_str()),
                        actors: agent_alone(identity),
                        holds: &[],
                        on_behalf_of_holds: &[],
                        effective: None,
                        now,
                    };
                    run.evaluated += 1;
                    for error in self.decide_request(&facts).errors {
                        run.errors.entry(error).or_insert_with(|| {
                            format!("{} for {} on {}", requester, identity.name, entitlement.id)
                        });
                    }
                }
            }
        }
        run
    }
}

#[cfg(test)]
mod tests {
    use writ_domain::{Ticket, TicketCheck, Timestamp};

    use super::*;
    use crate::cedar_values::tests::public_context;

    #[test]
    fn every_context_field_as_cedars_constructors_make_it() {
        let ticket = Ticket {
            system: "jira".into(),
            key: "OPS-1".into(),
            verified: Some(TicketCheck {
                state: "In Progress".into(),
                ticket_type: "Access".into(),
                approval: Some("approved".into()),
                window_end: Some(Timestamp::from_unix_micros(1_795_000_123_456_789)),
                id: "10001".into(),
                checked_at: Timestamp::from_unix_micros(1_795_000_000_000_000),
            }),
        };
        let held: Vec<EntitlementId> = vec!["pg/admin".parse().expect("id")];
        let chain: Vec<IdentityName> = vec![
            "bot".parse().expect("name"),
            "planner".parse().expect("name"),
        ];
        let full = RequestFacts {
            requester: "bot",
            subject: "alice",
            entitlement: "pg/read",
            duration_seconds: 900,
            justification: "incident",
            ticket: Some(&ticket),
            on_behalf_of: Some("alice"),
            actors: &chain,
            holds: &held,
            on_behalf_of_holds: &held,
            effective: None,
            now: Timestamp::from_unix_micros(1_795_000_000_000_001),
        };
        let bare = RequestFacts {
            ticket: None,
            on_behalf_of: None,
            actors: &[],
            holds: &[],
            on_behalf_of_holds: &[],
            ..full.clone()
        };
        for facts in [full, bare] {
            assert_eq!(
                context(&facts, "agent"),
                public_context(context_fields(&facts, "agent"))
            );
        }
    }
}
