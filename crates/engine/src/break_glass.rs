//! Break-glass: a profile's entitlements granted at once, without approval, to whoever
//! a `break_glass` policy permits; loud (metric, CloudEvent to the profile's sinks, the
//! ledger) and reviewed after the fact by someone else within a deadline. Someone whose
//! review is overdue does not break the glass again (unless the profile allows it).

use serde_json::json;
use writ_config::{BreakGlassProfile, IncidentTicket};
use writ_domain::ledger::{EventKind, StoredEvent};
use writ_domain::lifecycle::RequestState;
use writ_domain::{
    Activation, ActivationId, BreakGlassMark, DecisionOutcome, IdentityName, Request, RequestId,
    ReviewEvent, ReviewState, Timestamp,
};
use writ_itsm::NewIncident;
use writ_policy::RequestFacts;
use writ_store::{ActivationFilter, JobKind, NewOutboxEntry, OutboxAction, Page};

use crate::lifecycle::NewRequest;
use crate::revocation::SCHEDULER_ACTOR;
use crate::{
    COMMENT_LENGTH_MAX, Caller, Engine, EngineError, ErrorCode, INLINE_APPLY_GRACE_SECONDS,
    metrics_names,
};

/// A break-glass activation as a caller asks for it.
#[derive(Debug, Clone, Default)]
pub struct BreakGlass {
    pub justification: String,
    /// Defaults to the profile's maximum.
    pub duration_seconds: Option<i64>,
    /// Agents only (and then required): the user the agent acts for.
    pub on_behalf_of: Option<String>,
}

/// What an activation made: the activation, and one approved request (with its grant)
/// per entitlement of the profile.
#[derive(Debug, Clone)]
pub struct Activated {
    pub activation: Activation,
    pub requests: Vec<Request>,
}

/// The incident a break-glass activation opens: who, which profile, why, what was
/// granted until when, the review's deadline, and the ledger event to check it against.
fn incident_for(
    activation: &Activation,
    requests: &[Request],
    ticket: &IncidentTicket,
    event: &StoredEvent,
) -> NewIncident {
    let mut description = format!(
        "{} broke the glass of writ profile {} at {}{}.\nJustification: {}\n\nGranted without approval:\n",
        activation.activator,
        activation.profile,
        activation.activated_at,
        activation
            .on_behalf_of
            .as_ref()
            .map(|user| format!(" (an agent acting for {user})"))
            .unwrap_or_default(),
        activation.justification
    );
    for request in requests {
        description.push_str(&format!(
            "- {} for {} s (request {}, grant {})\n",
            request.entitlement,
            request.duration_seconds,
            request.id,
            request.grant_id.map(|g| g.to_string()).unwrap_or_default()
        ));
    }
    description.push_str(&format!(
        "\nSomeone else must review it by {}: writ activations sign-off {}\nActivation {}; ledger event {} ({})",
        activation.review_due_at,
        activation.id.short(),
        activation.id,
        event.seq,
        event.hash
    ));
    NewIncident {
        summary: format!(
            "BREAK-GLASS: {} activated {}",
            activation.activator, activation.profile
        ),
        description,
        project: ticket.project.clone(),
        issue_type: ticket.issue_type.clone(),
    }
}

/// The most manager links followed when looking for the activator above a reviewer (a
/// cycle in the directory must not loop).
const MANAGER_CHAIN_MAX: usize = 64;

impl Engine {
    fn break_glass_profile(&self, name: &str) -> Result<&BreakGlassProfile, EngineError> {
        self.config.break_glass.get(name).ok_or_else(|| {
            EngineError::new(
                ErrorCode::NotFound,
                format!("no break-glass profile {name:?} is configured"),
            )
        })
    }

    /// Breaks the glass: decides every entitlement of the profile under the
    /// `break_glass` action, and grants them all at once or none.
    pub async fn break_glass(
        &self,
        caller: &Caller,
        profile_name: &str,
        asked: BreakGlass,
    ) -> Result<Activated, EngineError> {
        let profile = self.break_glass_profile(profile_name)?;
        let duration = asked
            .duration_seconds
            .unwrap_or(profile.max_duration_seconds);
        let on_behalf_of = self.check_on_behalf_of(caller, asked.on_behalf_of.as_deref())?;
        let actors = caller.actor_chain();
        let on_behalf_of_holds = match &on_behalf_of {
            Some(user) => self.store.held_entitlements(user.as_str()).await?,
            None => Vec::new(),
        };
        let now = self.clock.now();
        let id = ActivationId::generate_at(now);
        let mut requests = Vec::with_capacity(profile.entitlements.len());
        let mut denials = Vec::new();
        // What the activator holds or has asked for (every request is for the caller).
        let holds = self.store.held_entitlements(caller.name.as_str()).await?;
        for entitlement in &profile.entitlements {
            let new = NewRequest {
                entitlement: entitlement.to_string(),
                subject: None,
                duration_seconds: Some(duration),
                justification: asked.justification.clone(),
                ticket: None,
                on_behalf_of: None,
                extends: None,
            };
            // The same checks as any request: known and enabled, a positive duration, a
            // justification within bounds, and only ever for the caller.
            let (subject, requested, entitlement_max) = self.validate_new(caller, &new, None)?;
            let evaluation = self.policy().decide_break_glass(&RequestFacts {
                requester: caller.name.as_str(),
                subject: subject.as_str(),
                entitlement: entitlement.as_str(),
                duration_seconds: requested,
                justification: &asked.justification,
                ticket: None,
                on_behalf_of: on_behalf_of.as_ref().map(|u| u.as_str()),
                actors: writ_domain::acting_agents(&caller.name, on_behalf_of.as_ref(), &actors),
                holds: &holds,
                on_behalf_of_holds: &on_behalf_of_holds,
                effective: None,
                now,
            });
            self.report_policy_errors("break_glass", &evaluation.errors);
            let decision = evaluation.value;
            if decision.outcome == DecisionOutcome::Deny {
                denials.push(format!("{entitlement}: {}", decision.reasons.join("; ")));
                continue;
            }
            let subject_ends_seconds = self
                .identity(subject.as_str())
                .and_then(|identity| identity.valid_until)
                .map(|end| end.millis_since(now).div_euclid(1000));
            let duration_seconds = [
                Some(requested),
                Some(entitlement_max),
                Some(profile.max_duration_seconds),
                decision.max_duration_seconds,
                subject_ends_seconds,
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(0);
            requests.push(Request {
                id: RequestId::generate_at(now),
                state: RequestState::Approved,
                requester: caller.name.clone(),
                subject,
                entitlement: entitlement.clone(),
                justification: asked.justification.clone(),
                ticket: None,
                on_behalf_of: on_behalf_of.clone(),
                actors: actors.clone(),
                on_behalf_of_holds: on_behalf_of_holds.clone(),
                requested_duration_seconds: requested,
                duration_seconds,
                decision,
                approvals: Vec::new(),
                grant_id: None,
                created_at: now,
                pending_expires_at: None,
                closed_by: None,
                close_comment: None,
                holds: holds.clone(),
                extends: None,
                break_glass: Some(BreakGlassMark {
                    profile: profile.name.clone(),
                    activation: id,
                }),
                effective: None,
                authzen: None,
                entitlement_facts: self
                    .config
                    .entitlement(entitlement.as_str())
                    .map(writ_config::Entitlement::facts),
            });
        }
        if !denials.is_empty() {
            tracing::warn!(profile = %profile.name, activator = %caller.name, denials = ?denials, "break-glass refused by policy");
            return Err(EngineError::new(
                ErrorCode::BreakGlassDenied,
                format!(
                    "{} may not break the glass of {}: {}",
                    caller.name,
                    profile.name,
                    denials.join(" | ")
                ),
            ));
        }
        let grants: Vec<_> = requests
            .iter_mut()
            .map(|request| {
                let grant = self.new_grant(request, now);
                request.grant_id = Some(grant.id);
                grant
            })
            .collect();
        let activation = Activation {
            id,
            profile: profile.name.clone(),
            activator: caller.name.clone(),
            on_behalf_of,
            justification: asked.justification,
            requests: requests.iter().map(|r| r.id).collect(),
            activated_at: now,
            review_due_at: now.plus_seconds(profile.review_within_seconds),
            review_state: ReviewState::Open,
            overdue_at: None,
            reviewer: None,
            reviewed_at: None,
            review_comment: None,
        };

        let mut tx = self.store.begin().await?;
        // Read inside the writer, so two activations at once cannot both pass.
        if !profile.allow_with_overdue_review {
            let mut people = vec![activation.activator.as_str()];
            people.extend(activation.on_behalf_of.as_ref().map(|u| u.as_str()));
            for person in people {
                let pending = tx.pending_activations_of(person).await?;
                if let Some(overdue) = pending.iter().find(|a| a.overdue(now)) {
                    return Err(EngineError::new(
                        ErrorCode::BreakGlassReviewOverdue,
                        format!(
                            "the review of {person}'s break-glass activation {} ({}) was due at {} and is not signed off; have it reviewed before breaking the glass again",
                            overdue.id, overdue.profile, overdue.review_due_at
                        ),
                    ));
                }
            }
        }
        let actor = caller.actor();
        for (request, grant) in requests.iter().zip(&grants) {
            tx.insert_request(request).await?;
            self.append_request_event(&mut tx, now, &actor, EventKind::RequestCreated, request)
                .await?;
            self.record_new_grant(&mut tx, &actor, grant, now).await?;
        }
        tx.insert_activation(&activation).await?;
        let event = tx
            .append(
                now,
                &actor,
                EventKind::BreakGlassActivated,
                &json!({
                    "activation": activation,
                    "grants": grants.iter().map(|g| g.id).collect::<Vec<_>>(),
                    "notify": profile.notify,
                }),
            )
            .await?;
        if let Some(ticket) = &profile.incident {
            // Opened by the courier, retried until the ticketing system takes it; queued
            // here, so an activation never goes without its incident.
            let incident = incident_for(&activation, &requests, ticket, &event);
            let body = serde_json::to_string(&incident)
                .map_err(|e| EngineError::new(ErrorCode::DataCorrupt, format!("incident: {e}")))?;
            let key = activation.id.to_string();
            tx.queue_outbox(
                NewOutboxEntry {
                    seq: event.seq,
                    system: &ticket.system,
                    ticket_key: &key,
                    ticket_id: "",
                    action: OutboxAction::OpenIncident,
                    body: &body,
                },
                now,
            )
            .await?;
        }
        tx.set_job(
            &activation.id.to_string(),
            JobKind::BreakGlassReviewDue,
            activation.review_due_at,
        )
        .await?;
        tx.commit().await?;
        self.evidence_committed();
        metrics::counter!(metrics_names::BREAK_GLASS_ACTIVATIONS, "profile" => profile.name.clone())
            .increment(1);
        metrics::counter!(metrics_names::REQUESTS, "outcome" => RequestState::Approved.as_str())
            .increment(u64::try_from(requests.len()).unwrap_or(u64::MAX));
        tracing::warn!(activation = %activation.id, profile = %profile.name, activator = %caller.name, review_due_at = %activation.review_due_at, "BREAK-GLASS activated: access granted without approval");
        self.hint_due(now.plus_seconds(INLINE_APPLY_GRACE_SECONDS));
        self.hint_due(activation.review_due_at);
        for grant in grants {
            self.apply_grant_known(grant.id, Some(grant)).await;
        }
        Ok(Activated {
            activation,
            requests,
        })
    }

    /// Whether `reviewer` is below `activator` in the manager chain.
    fn reports_to(&self, reviewer: &IdentityName, activator: &IdentityName) -> bool {
        let mut current = self.identity(reviewer.as_str());
        for _ in 0..MANAGER_CHAIN_MAX {
            let Some(manager) = current.as_ref().and_then(|i| i.manager.clone()) else {
                return false;
            };
            if &manager == activator {
                return true;
            }
            current = self.identity(manager.as_str());
        }
        false
    }

    /// Whether `caller` may sign off the review of `activation`, whose requests are
    /// `requests`: not the activator nor the user an agent acted for, not their
    /// subordinate, and someone an `approve` policy permits to approve every request
    /// the activation made (with the same segregation of duties as an approval).
    fn check_reviewer(
        &self,
        caller: &Caller,
        activation: &Activation,
        requests: &[Request],
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let parties = std::iter::once(&activation.activator).chain(&activation.on_behalf_of);
        for party in parties {
            if &caller.name == party {
                return Err(EngineError::new(
                    ErrorCode::SelfReview,
                    "nobody reviews their own break-glass activation (nor one an agent made for them)",
                ));
            }
            if self.reports_to(&caller.name, party) {
                return Err(EngineError::new(
                    ErrorCode::SubordinateReview,
                    format!(
                        "{} reports to {party}: a subordinate does not review their manager's break-glass activation",
                        caller.name
                    ),
                ));
            }
        }
        for request in requests {
            self.check_approver(caller, request, now)?;
        }
        Ok(())
    }

    async fn activation_requests(
        &self,
        activation: &Activation,
    ) -> Result<Vec<Request>, EngineError> {
        let mut requests = Vec::with_capacity(activation.requests.len());
        for id in &activation.requests {
            requests.push(self.request(*id).await?);
        }
        Ok(requests)
    }

    fn may_review(&self, caller: &Caller, activation: &Activation, requests: &[Request]) -> bool {
        activation.review_state.is_pending()
            && self
                .check_reviewer(caller, activation, requests, self.clock.now())
                .is_ok()
    }

    /// Whether the caller may read an activation: auditors, the activator and whom it
    /// concerns, its reviewer, and anyone who may review it now.
    async fn may_see_activation(
        &self,
        caller: &Caller,
        activation: &Activation,
    ) -> Result<bool, EngineError> {
        let own = self.own_names(caller);
        let concerns = |name: &IdentityName| own.iter().any(|own| own == name.as_str());
        if self.is_auditor(caller)
            || concerns(&activation.activator)
            || activation.on_behalf_of.as_ref() == Some(&caller.name)
            || activation.reviewer.as_ref() == Some(&caller.name)
        {
            return Ok(true);
        }
        let requests = self.activation_requests(activation).await?;
        Ok(self.may_review(caller, activation, &requests))
    }

    /// An activation the caller may read (404 otherwise, as for one that does not exist).
    pub async fn visible_activation(
        &self,
        caller: &Caller,
        id: ActivationId,
    ) -> Result<Activation, EngineError> {
        let activation = self
            .store
            .activation(id)
            .await?
            .ok_or_else(|| EngineError::not_found("break-glass activation", id))?;
        if self.may_see_activation(caller, &activation).await? {
            Ok(activation)
        } else {
            Err(EngineError::not_found("break-glass activation", id))
        }
    }

    /// Activations the caller may read; `reviewable_by_me` keeps those pending that the
    /// caller may sign off now.
    pub async fn visible_activations(
        &self,
        caller: &Caller,
        mut filter: ActivationFilter,
        reviewable_by_me: bool,
    ) -> Result<Page<Activation>, EngineError> {
        if !reviewable_by_me {
            filter.activators = self.narrow_to_own(caller);
            return Ok(self.store.activations(&filter).await?);
        }
        // A page of the store's, narrowed: it may hold fewer than `limit`, and `next`
        // still continues after the last activation looked at.
        let mut page = self.store.activations(&filter).await?;
        let mut kept = Vec::with_capacity(page.items.len());
        for activation in page.items {
            if !activation.review_state.is_pending() {
                continue;
            }
            let requests = self.activation_requests(&activation).await?;
            if self.may_review(caller, &activation, &requests) {
                kept.push(activation);
            }
        }
        page.items = kept;
        Ok(page)
    }

    /// Signs off the review of an activation: someone else looked at what was done.
    pub async fn sign_off_activation(
        &self,
        caller: &Caller,
        id: ActivationId,
        comment: String,
    ) -> Result<Activation, EngineError> {
        if comment.trim().is_empty() {
            return Err(EngineError::new(
                ErrorCode::MissingComment,
                "say what was reviewed: a sign-off needs a comment",
            ));
        }
        if comment.len() > COMMENT_LENGTH_MAX {
            return Err(EngineError::new(
                ErrorCode::CommentTooLong,
                format!("comments are at most {COMMENT_LENGTH_MAX} bytes"),
            ));
        }
        // As for an approval, whoever may not sign off is told why (ids are not
        // guessable; the reason is what a reviewer needs).
        let seen = self
            .store
            .activation(id)
            .await?
            .ok_or_else(|| EngineError::not_found("break-glass activation", id))?;
        let requests = self.activation_requests(&seen).await?;
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let mut activation = tx
            .activation(id)
            .await?
            .ok_or_else(|| EngineError::not_found("break-glass activation", id))?;
        if activation.review_state == ReviewState::SignedOff {
            return Err(EngineError::new(
                ErrorCode::AlreadySignedOff,
                format!(
                    "the review of {id} was signed off by {} at {}",
                    activation.reviewer.as_ref().map_or("?", |r| r.as_str()),
                    activation
                        .reviewed_at
                        .map_or_else(String::new, |t| t.to_string())
                ),
            ));
        }
        self.check_reviewer(caller, &activation, &requests, now)?;
        activation.review_state = activation
            .review_state
            .transition(ReviewEvent::SignOff)
            .map_err(|e| EngineError::new(ErrorCode::IllegalTransition, e.to_string()))?;
        activation.reviewer = Some(caller.name.clone());
        activation.reviewed_at = Some(now);
        activation.review_comment = Some(comment);
        tx.update_activation(&activation).await?;
        tx.delete_job(&id.to_string()).await?;
        tx.append(
            now,
            &caller.actor(),
            EventKind::BreakGlassReviewSignedOff,
            &json!({ "activation": activation }),
        )
        .await?;
        tx.commit().await?;
        self.evidence_committed();
        tracing::info!(activation = %id, reviewer = %caller.name, "break-glass review signed off");
        Ok(activation)
    }

    /// The scheduler's: records a review overdue once its deadline passed unsigned.
    pub(crate) async fn review_due(&self, id: ActivationId) -> Result<(), EngineError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let Some(mut activation) = tx.activation(id).await? else {
            tx.delete_job(&id.to_string()).await?;
            return Ok(tx.commit().await?);
        };
        if activation.review_state != ReviewState::Open {
            tx.delete_job(&id.to_string()).await?;
            return Ok(tx.commit().await?);
        }
        if now < activation.review_due_at {
            // Early (a clock behind another node's): look again at the deadline.
            tx.set_job(
                &id.to_string(),
                JobKind::BreakGlassReviewDue,
                activation.review_due_at,
            )
            .await?;
            return Ok(tx.commit().await?);
        }
        activation.review_state = activation
            .review_state
            .transition(ReviewEvent::Lapse)
            .map_err(|e| EngineError::new(ErrorCode::IllegalTransition, e.to_string()))?;
        activation.overdue_at = Some(now);
        tx.update_activation(&activation).await?;
        tx.delete_job(&id.to_string()).await?;
        let notify = self
            .config
            .break_glass
            .get(&activation.profile)
            .map(|profile| profile.notify.clone())
            .unwrap_or_default();
        tx.append(
            now,
            &SCHEDULER_ACTOR,
            EventKind::BreakGlassReviewOverdue,
            &json!({ "activation": activation, "notify": notify }),
        )
        .await?;
        tx.commit().await?;
        self.evidence_committed();
        metrics::counter!(metrics_names::BREAK_GLASS_REVIEWS_OVERDUE, "profile" => activation.profile.clone())
            .increment(1);
        tracing::warn!(activation = %id, profile = %activation.profile, activator = %activation.activator, "break-glass review OVERDUE");
        Ok(())
    }
}
