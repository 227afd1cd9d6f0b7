//! What a person needs to know to get on: what they can ask for and what policy would
//! say now, who can approve a pending request, what would change a denial, and the
//! nearest entitlement ids to one that does not exist. Read-only: nothing here is a
//! decision of record; each answer is policy evaluated the same way a request is.

use serde::Serialize;
use writ_domain::lifecycle::RequestState;
use writ_domain::{Decision, DecisionOutcome, IdentityName, Request, Ticket, Timestamp};
use writ_policy::{ApproveFacts, RequestFacts};

use crate::{Caller, Engine, EngineError, ErrorCode};

/// How many nearest entitlement ids an unknown one suggests.
const SUGGESTIONS_MAX: usize = 3;
/// How many eligible approvers a pending request names; the search stops there.
pub const APPROVERS_SHOWN_MAX: usize = 20;
/// How many identities are asked about when looking for approvers: each is one policy
/// evaluation, and this runs on every read of a pending request.
pub const APPROVER_EVALUATIONS_MAX: usize = 2_000;

/// An entitlement as a caller sees it: its terms, and what policy would decide for
/// the caller asking for themselves now, without and with a checked ticket.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntitlementView {
    pub id: String,
    pub target: String,
    /// `low`, `medium`, `high` or `critical`.
    pub sensitivity: String,
    pub max_duration_seconds: i64,
    /// Requests must cite a ticket in a configured ticketing system.
    pub ticket_required: bool,
    /// The group that owns it, if any.
    pub owners: Option<String>,
    pub credential: bool,
    /// Policy's answer for the caller now, for the longest duration, without a ticket.
    pub without_ticket: Preview,
    /// The same with a ticket that checked out.
    pub with_ticket: Preview,
}

/// A decision as a preview: what it would be, not a record of one.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Preview {
    /// `deny`, `auto` or `approval`.
    pub outcome: String,
    pub approvals_required: u32,
    pub max_duration_seconds: Option<i64>,
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
}

impl From<Decision> for Preview {
    fn from(decision: Decision) -> Self {
        Self {
            outcome: match decision.outcome {
                DecisionOutcome::Deny => "deny",
                DecisionOutcome::Auto => "auto",
                DecisionOutcome::Approval => "approval",
            }
            .to_string(),
            approvals_required: decision.approvals_required,
            max_duration_seconds: decision.max_duration_seconds,
            policies: decision.policies,
            reasons: decision.reasons,
        }
    }
}

/// A ticket that passed every check, for previews ("what if I cite one?"), in the
/// first configured ticketing system (policies may name it).
fn checked_ticket(system: Option<&String>, now: Timestamp) -> Ticket {
    Ticket {
        system: system.cloned().unwrap_or_else(|| "preview".into()),
        key: "PREVIEW-1".into(),
        verified: Some(writ_domain::TicketCheck {
            id: "preview".into(),
            state: "Approved".into(),
            ticket_type: "Service Request".into(),
            window_end: None,
            approval: Some("approved".into()),
            checked_at: now,
        }),
    }
}

impl Engine {
    /// Every configured entitlement, with policy's answer for `caller` now (what the
    /// caller holds counted, as a request would count it).
    pub async fn entitlements_for(
        &self,
        caller: &Caller,
    ) -> Result<Vec<EntitlementView>, EngineError> {
        let now = self.clock.now();
        let holds = self.store.held_entitlements(caller.name.as_str()).await?;
        let ticket = checked_ticket(self.config.itsms.keys().next(), now);
        let mut views: Vec<EntitlementView> = self
            .config
            .entitlements
            .values()
            .map(|entitlement| {
                let preview = |ticket: Option<&Ticket>| {
                    let evaluation = self.policy().decide_request(&RequestFacts {
                        requester: caller.name.as_str(),
                        subject: caller.name.as_str(),
                        entitlement: entitlement.id.as_str(),
                        duration_seconds: entitlement.max_duration_seconds,
                        justification: "preview",
                        ticket,
                        on_behalf_of: None,
                        actors: &[],
                        holds: &holds,
                        on_behalf_of_holds: &[],
                        effective: None,
                        now,
                    });
                    Preview::from(evaluation.value)
                };
                EntitlementView {
                    id: entitlement.id.to_string(),
                    target: entitlement.target.clone(),
                    sensitivity: entitlement.sensitivity.as_str().to_string(),
                    max_duration_seconds: entitlement.max_duration_seconds,
                    ticket_required: entitlement.ticket_required,
                    owners: entitlement.owners.clone(),
                    credential: entitlement.credential,
                    without_ticket: preview(None),
                    with_ticket: preview(Some(&ticket)),
                }
            })
            .collect();
        views.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(views)
    }

    /// The error for an entitlement id that is not configured, naming the nearest ids.
    pub(crate) fn unknown_entitlement(&self, asked: &str) -> EngineError {
        let mut scored: Vec<(f64, &str)> = self
            .config
            .entitlements
            .keys()
            .map(|id| {
                let id = id.as_str();
                let name = id.rsplit('/').next().unwrap_or(id);
                let score = strsim::normalized_damerau_levenshtein(asked, id)
                    .max(strsim::normalized_damerau_levenshtein(asked, name))
                    .max(if id.contains(asked) && asked.len() >= 3 {
                        0.9
                    } else {
                        0.0
                    });
                (score, id)
            })
            .filter(|(score, _)| *score >= 0.5)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        let nearest: Vec<&str> = scored
            .iter()
            .take(SUGGESTIONS_MAX)
            .map(|(_, id)| *id)
            .collect();
        let hint = if nearest.is_empty() {
            "; `writ entitlements` lists them".to_string()
        } else {
            format!("; did you mean {}?", nearest.join(", "))
        };
        EngineError::new(
            ErrorCode::UnknownEntitlement,
            format!("no entitlement {asked:?} is configured{hint}"),
        )
    }

    /// Whether `name` is a party to the request, who never approves or rejects it: the
    /// requester, the subject, the user an agent acts for, every agent of a token's act
    /// chain, and the owner of a service or agent that is the requester, the subject or
    /// in that chain (its owner is who answers for it).
    pub(crate) fn is_party(&self, name: &IdentityName, request: &Request) -> bool {
        let owner_of = |identity: &IdentityName| {
            self.config
                .identity(identity.as_str())
                .and_then(|i| i.owner.as_ref())
                == Some(name)
        };
        *name == request.requester
            || *name == request.subject
            || request.on_behalf_of.as_ref() == Some(name)
            || request.actors.contains(name)
            || owner_of(&request.requester)
            || owner_of(&request.subject)
            || request.actors.iter().any(owner_of)
    }

    /// The users who could approve a pending request now: an `approve` policy permits
    /// them, they are not a party to it, and they have not approved it already. At most
    /// `APPROVERS_SHOWN_MAX`, found among the first `APPROVER_EVALUATIONS_MAX` users.
    pub fn approvers(&self, request: &Request) -> Vec<IdentityName> {
        if request.state != RequestState::PendingApproval {
            return Vec::new();
        }
        let now = self.clock.now();
        let mut approvers: Vec<IdentityName> = self
            .config
            .identities
            .values()
            .filter(|identity| {
                self.config.approver_kinds.contains(&identity.kind) && !identity.disabled
            })
            .filter(|identity| !self.is_party(&identity.name, request))
            .filter(|identity| !request.has_approved(&identity.name))
            .take(APPROVER_EVALUATIONS_MAX)
            .filter(|identity| {
                self.policy()
                    .may_approve(&ApproveFacts {
                        actor: identity.name.as_str(),
                        request,
                        now,
                    })
                    .value
            })
            .map(|identity| identity.name.clone())
            .take(APPROVERS_SHOWN_MAX)
            .collect();
        approvers.sort();
        approvers
    }

    /// For a denied request: what would change the answer, where policy can tell.
    pub fn denial_hints(&self, request: &Request) -> Vec<String> {
        if request.state != RequestState::Denied {
            return Vec::new();
        }
        let mut hints = Vec::new();
        let now = self.clock.now();
        let with_ticket = |ticket: &Ticket| {
            self.policy()
                .decide_request(&RequestFacts {
                    requester: request.requester.as_str(),
                    subject: request.subject.as_str(),
                    entitlement: request.entitlement.as_str(),
                    duration_seconds: request.requested_duration_seconds,
                    justification: &request.justification,
                    ticket: Some(ticket),
                    on_behalf_of: request.on_behalf_of.as_ref().map(|u| u.as_str()),
                    actors: request.acting_agents(),
                    holds: &request.holds,
                    on_behalf_of_holds: &request.on_behalf_of_holds,
                    effective: None,
                    now,
                })
                .value
        };
        if request.ticket.as_ref().is_none_or(|t| t.verified.is_none()) {
            let decision = with_ticket(&checked_ticket(self.config.itsms.keys().next(), now));
            if decision.outcome != DecisionOutcome::Deny {
                hints.push(format!(
                    "a ticket would change this: with a checked ticket ({}), policy {} would {}",
                    if request.ticket.is_some() {
                        "the one cited is not in a ticketing system writ can check"
                    } else {
                        "--ticket SYSTEM:KEY"
                    },
                    decision.policies.join(", "),
                    describe(&decision)
                ));
            }
        }
        if request.decision.policies.is_empty() && hints.is_empty() {
            // An agent gets only what the user it acts for could get themselves.
            let who = match &request.on_behalf_of {
                Some(user) => format!("both {} and {user}, whom it acts for,", request.requester),
                None => request.requester.to_string(),
            };
            hints.push(format!(
                "no policy permits {who} to ask for {} for {}{}",
                request.entitlement,
                request.subject,
                self.config
                    .entitlement(request.entitlement.as_str())
                    .and_then(|e| e.owners.as_ref())
                    .map(|owners| format!("; its owners are the group {owners}"))
                    .unwrap_or_default()
            ));
        }
        hints
    }
}

/// "grant it at once" / "ask for 2 approvals" / "deny it".
fn describe(decision: &Decision) -> String {
    match decision.outcome {
        DecisionOutcome::Deny => "deny it".into(),
        DecisionOutcome::Auto => "grant it at once".into(),
        DecisionOutcome::Approval if decision.approvals_required == 1 => {
            "ask for 1 approval".into()
        }
        DecisionOutcome::Approval => format!("ask for {} approvals", decision.approvals_required),
    }
}
