//! Requests: decide, approve, reject, cancel, expire; and the grant that follows.

use serde_json::json;
use writ_domain::ledger::{Actor, EventKind, SystemActor};
use writ_domain::lifecycle::{GrantState, RequestEvent, RequestState};
use writ_domain::{
    Approval, DecisionOutcome, Grant, GrantId, IdentityName, Request, RequestId, Ticket, Timestamp,
};
use writ_policy::{ApproveFacts, RequestFacts};
use writ_store::{GrantFilter, JobKind, Page, RequestFilter, WriteTx};

use crate::credentials::{IssuedCredential, credential_username};
use crate::intake::{Created, Intake};
use crate::{
    COMMENT_LENGTH_MAX, Caller, Engine, EngineError, ErrorCode, INLINE_APPLY_GRACE_SECONDS,
    JUSTIFICATION_LENGTH_MAX, metrics_names,
};

/// A request decided and not yet recorded, with what caps its grant besides policy (to
/// decide it again if what its subject holds changes before it is recorded).
pub(crate) struct Decided {
    pub request: Request,
    pub cap_seconds: i64,
}

/// A request as a caller submits it.
#[derive(Debug, Clone, Default)]
pub struct NewRequest {
    pub entitlement: String,
    /// Defaults to the caller.
    pub subject: Option<String>,
    /// Defaults to the entitlement's maximum.
    pub duration_seconds: Option<i64>,
    pub justification: String,
    pub ticket: Option<Ticket>,
    /// Agents only (and then required): the user the agent acts for.
    pub on_behalf_of: Option<String>,
    /// More time on this live grant (`Engine::extend_grant`), rather than a new one.
    pub extends: Option<GrantId>,
}

fn check_comment(comment: &str) -> Result<(), EngineError> {
    if comment.len() > COMMENT_LENGTH_MAX {
        return Err(EngineError::new(
            ErrorCode::CommentTooLong,
            format!("comments are at most {COMMENT_LENGTH_MAX} bytes"),
        ));
    }
    Ok(())
}

impl Engine {
    /// Checks a new request. `beneficiary`: whom the cited ticket is for, by its
    /// ticketing system's word; the requester may ask for them without owning them.
    pub(crate) fn validate_new(
        &self,
        caller: &Caller,
        new: &NewRequest,
        beneficiary: Option<&IdentityName>,
    ) -> Result<(IdentityName, i64, i64), EngineError> {
        let entitlement = self
            .config
            .entitlement(&new.entitlement)
            .ok_or_else(|| self.unknown_entitlement(&new.entitlement))?;
        let subject_name = new
            .subject
            .clone()
            .unwrap_or_else(|| caller.name.to_string());
        let subject = self.identity(&subject_name).ok_or_else(|| {
            EngineError::new(
                ErrorCode::UnknownIdentity,
                format!("no identity {subject_name:?} is configured"),
            )
        })?;
        // Nobody disabled asks, or is given access; nor a service or agent whose owner
        // is (nobody answers for it). Tokens of disabled identities are refused already;
        // this also covers requesters mapped from a ticketing system.
        let now = self.clock.now();
        if self
            .identity(caller.name.as_str())
            .is_none_or(|requester| self.has_left(&requester, now))
        {
            return Err(EngineError::new(
                ErrorCode::IdentityDisabled,
                format!(
                    "{} is disabled (or not configured) and cannot ask for access",
                    caller.name
                ),
            ));
        }
        if self.has_left(&subject, now) {
            return Err(EngineError::new(
                ErrorCode::SubjectDisabled,
                format!(
                    "{} is disabled (or past its valid_until) and cannot be given access",
                    subject.name
                ),
            ));
        }
        if let Some(owner) = &subject.owner
            && self.is_orphaned(&subject, now)
        {
            return Err(EngineError::new(
                ErrorCode::SubjectOrphaned,
                format!(
                    "{}'s owner {owner} is disabled: nobody answers for it, so it is given nothing",
                    subject.name
                ),
            ));
        }
        let requested = new
            .duration_seconds
            .unwrap_or(entitlement.max_duration_seconds);
        if requested <= 0 {
            return Err(EngineError::new(
                ErrorCode::InvalidDuration,
                "duration_seconds must be a positive number of seconds",
            ));
        }
        // Access without an end: not capped by the entitlement, and granted only where
        // a `@permanent` policy permits it. Never a login of its own, nor more time on a
        // lease that has an end.
        let permanent = requested >= writ_domain::PERMANENT_SECONDS;
        if permanent && (entitlement.credential || new.extends.is_some()) {
            return Err(EngineError::new(
                ErrorCode::InvalidDuration,
                if entitlement.credential {
                    "a credential is short-lived by design: ask for a duration"
                } else {
                    "an extension adds time to a lease: ask for a duration"
                },
            ));
        }
        if new.justification.trim().is_empty() {
            return Err(EngineError::new(
                ErrorCode::MissingJustification,
                "a justification is required",
            ));
        }
        if new.justification.len() > JUSTIFICATION_LENGTH_MAX {
            return Err(EngineError::new(
                ErrorCode::JustificationTooLong,
                format!("justifications are at most {JUSTIFICATION_LENGTH_MAX} bytes"),
            ));
        }
        if let Some(ticket) = &new.ticket
            && (ticket.system.trim().is_empty() || ticket.key.trim().is_empty())
        {
            return Err(EngineError::new(
                ErrorCode::InvalidTicket,
                "a ticket needs a system and a key",
            ));
        }
        // Built in: you ask for yourself, for a service/agent you own, or for whom the
        // ticket you submitted is for.
        if subject.name != caller.name
            && subject.owner.as_ref() != Some(&caller.name)
            && beneficiary != Some(&subject.name)
        {
            return Err(EngineError::new(
                ErrorCode::NotSubjectOwner,
                format!(
                    "{} may request access only for itself or for an identity it owns, not for {}",
                    caller.name, subject.name
                ),
            ));
        }
        Ok((
            subject.name.clone(),
            requested.min(writ_domain::PERMANENT_SECONDS),
            if permanent {
                writ_domain::PERMANENT_SECONDS
            } else {
                entitlement.max_duration_seconds
            },
        ))
    }

    /// Records a request with its decision, and the grant when policy grants it outright.
    pub async fn create_request(
        &self,
        caller: &Caller,
        new: NewRequest,
    ) -> Result<Request, EngineError> {
        self.create_request_issuing(caller, new)
            .await
            .map(|(request, _)| request)
    }

    /// As `create_request`, and the credential issued at once when the request was
    /// granted on the spot for a credential entitlement (its only chance to be shown).
    pub async fn create_request_issuing(
        &self,
        caller: &Caller,
        new: NewRequest,
    ) -> Result<(Request, Option<IssuedCredential>), EngineError> {
        match self
            .create_request_with(caller, new, Intake::default())
            .await?
        {
            Created::Request(request, credential) => Ok((*request, credential)),
            Created::TicketTaken(_) | Created::DeliverySeen | Created::TaskSeen(_) => {
                Err(EngineError::new(
                    ErrorCode::IntakeOutcome,
                    "a direct request came back as a webhook outcome",
                ))
            }
        }
    }

    /// The request `new` would be, decided under the policy in force, and not recorded:
    /// every check a request meets (the ticket read from its system included), then the
    /// decision and the duration it would be granted for. Nothing is written and no
    /// target is called.
    pub(crate) async fn decide_new(
        &self,
        caller: &Caller,
        new: NewRequest,
        beneficiary: Option<&IdentityName>,
        prefetched: Option<writ_itsm::TicketInfo>,
    ) -> Result<Decided, EngineError> {
        let (subject, requested, entitlement_max) = self.validate_new(caller, &new, beneficiary)?;
        let now = self.clock.now();
        let entitlement = self
            .config
            .entitlement(&new.entitlement)
            .ok_or_else(|| self.unknown_entitlement(&new.entitlement))?;
        self.check_credential_subject(entitlement, subject.as_str())?;
        let on_behalf_of = self.check_on_behalf_of(caller, new.on_behalf_of.as_deref())?;
        let checked = self
            .check_ticket(
                &caller.name,
                &subject,
                entitlement,
                new.ticket,
                prefetched,
                now,
            )
            .await?;
        // A change window caps the grant: it ends no later than the window does.
        let window_seconds = checked
            .ends_by
            .map(|end| end.millis_since(now).div_euclid(1000));
        // And it ends no later than its subject does (`valid_until`).
        let subject_ends_seconds = self
            .identity(subject.as_str())
            .and_then(|identity| identity.valid_until)
            .map(|end| end.millis_since(now).div_euclid(1000));
        // One checked ticket backs at most `requests.ticket_max_total`.
        let ticket_cap_seconds = checked
            .ticket
            .as_ref()
            .filter(|t| t.verified.is_some())
            .and(self.config.ticket_max_total_seconds);
        // What the subject holds or has asked for: policy refuses toxic combinations;
        // and what the user an agent acts for does, for what they would get themselves.
        let holds = self.store.held_entitlements(subject.as_str()).await?;
        let on_behalf_of_holds = match &on_behalf_of {
            Some(user) => self.store.held_entitlements(user.as_str()).await?,
            None => Vec::new(),
        };
        // Everything that caps the grant but policy.
        let cap_seconds = [
            Some(requested),
            Some(entitlement_max),
            window_seconds,
            subject_ends_seconds,
            checked.lasts_at_most_seconds,
            ticket_cap_seconds,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(0);
        let mut request = Request {
            id: RequestId::generate_at(now),
            state: RequestState::Denied,
            requester: caller.name.clone(),
            subject,
            entitlement: new
                .entitlement
                .parse()
                .map_err(|e: writ_domain::InvalidId| {
                    EngineError::new(ErrorCode::UnknownEntitlement, e.to_string())
                })?,
            justification: new.justification,
            ticket: checked.ticket,
            on_behalf_of,
            actors: caller.actor_chain(),
            on_behalf_of_holds,
            requested_duration_seconds: requested,
            duration_seconds: 0,
            // Decided just below.
            decision: writ_domain::Decision {
                outcome: DecisionOutcome::Deny,
                approvals_required: 0,
                policies: Vec::new(),
                reasons: Vec::new(),
                max_duration_seconds: None,
                policy_hash: String::new(),
            },
            approvals: Vec::new(),
            grant_id: None,
            created_at: now,
            pending_expires_at: None,
            closed_by: None,
            close_comment: None,
            holds,
            extends: new.extends,
            break_glass: None,
            authzen: None,
            effective: self.observe_effective(entitlement).await,
            entitlement_facts: Some(entitlement.facts()),
        };
        self.decide_on(&mut request, cap_seconds);
        Ok(Decided {
            request,
            cap_seconds,
        })
    }

    /// Decides `request` under the policy in force with its facts as they stand (what
    /// its subject holds included), and sets its state, duration and approval deadline.
    /// `cap_seconds`: what caps the grant besides policy.
    fn decide_on(&self, request: &mut Request, cap_seconds: i64) {
        let evaluation = self.policy().decide_request(&RequestFacts::of_request(
            request,
            request.requested_duration_seconds,
            request.created_at,
        ));
        self.report_policy_errors("request", &evaluation.errors);
        let decision = evaluation.value;
        request.duration_seconds = decision
            .max_duration_seconds
            .map_or(cap_seconds, |max| max.min(cap_seconds));
        request.state = match decision.outcome {
            DecisionOutcome::Deny => RequestState::Denied,
            DecisionOutcome::Auto => RequestState::Approved,
            DecisionOutcome::Approval => RequestState::PendingApproval,
        };
        request.pending_expires_at = (request.state == RequestState::PendingApproval).then(|| {
            request
                .created_at
                .plus_seconds(self.config.pending_ttl_seconds)
        });
        request.decision = decision;
    }

    /// What `POST /v1/requests` would decide now, with no ledger write and no change on
    /// any target (it reads what the role gives, as the decision does): the request as it would be recorded, with who could approve it or what
    /// would change a denial.
    pub async fn preview_request(
        &self,
        caller: &Caller,
        new: NewRequest,
    ) -> Result<Request, EngineError> {
        Ok(self.decide_new(caller, new, None, None).await?.request)
    }

    /// As `create_request`, for a request that a webhook delivery brought in.
    pub(crate) async fn create_request_with(
        &self,
        caller: &Caller,
        new: NewRequest,
        intake: Intake,
    ) -> Result<Created, EngineError> {
        let Decided {
            mut request,
            cap_seconds,
        } = self
            .decide_new(caller, new, intake.beneficiary.as_ref(), intake.prefetched)
            .await?;
        // Reads first: a writer that returns before sending anything leaves the shared
        // transaction untouched.
        let mut tx = self.store.begin().await?;
        // The decision must stand on what the subject holds as of the write: two requests
        // made at once for the two sides of a toxic combination are decided one after
        // the other, never each without the other.
        let holds = tx.held_entitlements(request.subject.as_str()).await?;
        let on_behalf_of_holds = match &request.on_behalf_of {
            Some(user) => tx.held_entitlements(user.as_str()).await?,
            None => Vec::new(),
        };
        if holds != request.holds || on_behalf_of_holds != request.on_behalf_of_holds {
            request.holds = holds;
            request.on_behalf_of_holds = on_behalf_of_holds;
            self.decide_on(&mut request, cap_seconds);
        }
        let now = request.created_at;
        let state = request.state;
        let grant = (state == RequestState::Approved && request.extends.is_none())
            .then(|| self.new_grant(&request, now));
        request.grant_id = grant.as_ref().map(|g| g.id);

        // An extension cites the ticket of the grant it extends, which already backs it.
        let cited = request
            .ticket
            .as_ref()
            .filter(|t| t.verified.is_some() && request.extends.is_none());
        // One ticket backs one request: its approvals, its closing and the evidence on
        // it then speak of that request alone.
        if let Some(ticket) = cited
            && let Some(existing) = tx.ticket_request(&ticket.system, &ticket.key).await?
        {
            if intake.delivery.is_some() {
                return Ok(Created::TicketTaken(existing));
            }
            return Err(EngineError::new(
                ErrorCode::TicketTaken,
                format!(
                    "{} {} already backs request {existing}; a ticket backs one request, so raise a new ticket for this one",
                    ticket.system, ticket.key
                ),
            ));
        }
        if let Some((system, delivery)) = &intake.delivery
            && !tx.record_delivery(system, delivery, now).await?
        {
            return Ok(Created::DeliverySeen);
        }
        if let Some((origin, task)) = intake.authzen {
            if let Some(seen) = tx
                .claim_authzen_task(&task.jti, &task.requester, task.idempotency_key.as_deref())
                .await?
            {
                return Ok(Created::TaskSeen(seen));
            }
            tx.insert_authzen_task(&writ_store::AuthzenTask {
                request: request.id,
                ..task
            });
            request.authzen = Some(origin);
        }
        if let Some(ticket) = cited {
            tx.link_ticket(&ticket.system, &ticket.key, request.id)
                .await?;
        }
        let extended = match request.extends {
            Some(_) if state == RequestState::Approved => {
                Some(self.extended_grant(&mut tx, &mut request).await?)
            }
            _ => None,
        };
        tx.insert_request(&request).await?;
        self.append_request_event(
            &mut tx,
            now,
            &caller.actor(),
            EventKind::RequestCreated,
            &request,
        )
        .await?;
        if let Some(grant) = &extended {
            self.record_extension(&mut tx, &caller.actor(), grant, &request, now)
                .await?;
        }
        if let Some(grant) = &grant {
            self.record_new_grant(&mut tx, &caller.actor(), grant, now)
                .await?;
        }
        if let Some(expires_at) = request.pending_expires_at {
            tx.set_job(&request.id.to_string(), JobKind::ExpireRequest, expires_at)
                .await?;
        }
        tx.commit().await?;
        self.evidence_committed();
        metrics::counter!(metrics_names::REQUESTS, "outcome" => request.state.as_str())
            .increment(1);
        tracing::info!(request = %request.id, requester = %request.requester, subject = %request.subject, entitlement = %request.entitlement, state = %request.state, "request recorded");

        if let Some(expires_at) = request.pending_expires_at {
            self.hint_due(expires_at);
        }
        let mut credential = None;
        match grant {
            // A webhook has nobody to hand a secret to: it waits to be collected.
            Some(grant) if grant.credential => {
                self.hint_due(grant.expires_at);
                if intake.delivery.is_none() {
                    match self.issue_now(&grant).await {
                        Ok((_, issued)) => credential = Some(issued),
                        Err(error) => {
                            tracing::warn!(grant = %grant.id, %error, "credential not issued; it can be collected later");
                        }
                    }
                }
            }
            Some(grant) => {
                self.hint_due(now.plus_seconds(INLINE_APPLY_GRACE_SECONDS));
                self.apply_grant_known(grant.id, Some(grant)).await;
            }
            None => {}
        }
        Ok(Created::Request(Box::new(request), credential))
    }

    pub(crate) fn new_grant(&self, request: &Request, now: Timestamp) -> Grant {
        let id = GrantId::generate_at(now);
        let entitlement = self.config.entitlement(request.entitlement.as_str());
        let credential = entitlement.is_some_and(|e| e.credential);
        let target = request.entitlement.target();
        let account = if credential {
            credential_username(id)
        } else {
            self.identity(request.subject.as_str()).map_or_else(
                || request.subject.to_string(),
                |i| i.account_on(target).to_string(),
            )
        };
        Grant {
            id,
            request_id: request.id,
            subject: request.subject.clone(),
            entitlement: request.entitlement.clone(),
            account,
            state: GrantState::Pending,
            granted_at: None,
            // No grant runs past its subject's end date (`valid_until`).
            expires_at: self
                .identity(request.subject.as_str())
                .and_then(|subject| subject.valid_until)
                .map_or(now.plus_seconds(request.duration_seconds), |end| {
                    end.min(now.plus_seconds(request.duration_seconds))
                }),
            revoke_reason: None,
            revoked_by: None,
            revoked_at: None,
            verified_at: None,
            retained_by: None,
            credential,
            effective: request.effective.clone(),
            max_uses: entitlement
                .and_then(|e| e.pep.as_ref())
                .and_then(|pep| pep.max_uses),
            // Nothing capped it below a century: a change window, a ticket's total or
            // the subject's end date would have.
            permanent: request.duration_seconds >= writ_domain::PERMANENT_SECONDS
                && self
                    .identity(request.subject.as_str())
                    .is_none_or(|subject| subject.valid_until.is_none()),
        }
    }

    pub(crate) async fn record_new_grant(
        &self,
        tx: &mut WriteTx<'_>,
        actor: &Actor,
        grant: &Grant,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        // A lease ends after it starts, and a new one holds nothing yet.
        debug_assert!(
            grant.expires_at > now,
            "grant {} ends before it starts",
            grant.id
        );
        debug_assert_eq!(grant.state, writ_domain::lifecycle::GrantState::Pending);
        tx.insert_grant(grant).await?;
        self.lookahead.note_new_lease(grant);
        tx.append(
            now,
            actor,
            EventKind::GrantCreated,
            &json!({ "grant": grant, "scheduled_revocation_at": grant.expires_at }),
        )
        .await?;
        // A credential is applied only when someone collects it; until then the only
        // work owed is ending it at expiry.
        let (kind, due) = if grant.credential {
            (JobKind::RevokeGrant, grant.expires_at)
        } else {
            (
                JobKind::ApplyGrant,
                now.plus_seconds(INLINE_APPLY_GRACE_SECONDS),
            )
        };
        tx.set_job(&grant.id.to_string(), kind, due).await?;
        Ok(())
    }

    async fn pending_request(tx: &mut WriteTx<'_>, id: RequestId) -> Result<Request, EngineError> {
        let request = tx
            .request(id)
            .await?
            .ok_or_else(|| EngineError::not_found("request", id))?;
        if request.state != RequestState::PendingApproval {
            return Err(EngineError::new(
                ErrorCode::NotPending,
                format!("request {id} is {}, not pending approval", request.state),
            ));
        }
        Ok(request)
    }

    /// Segregation of duties, then policy: may `caller` approve or reject `request`?
    /// An agent says which user it acts for; nobody else may.
    pub(crate) fn check_on_behalf_of(
        &self,
        caller: &Caller,
        on_behalf_of: Option<&str>,
    ) -> Result<Option<IdentityName>, EngineError> {
        // A token's act chain already says whom the agent acts for, and was checked
        // when the token was.
        if let Some(delegation) = &caller.delegation {
            return match on_behalf_of {
                Some(user) if user != delegation.principal.as_str() => Err(EngineError::new(
                    ErrorCode::NotADelegate,
                    format!(
                        "{} acts for {} under its token's act chain, not for {user}",
                        caller.name, delegation.principal
                    ),
                )),
                _ => Ok(Some(delegation.principal.clone())),
            };
        }
        match (caller.kind, on_behalf_of) {
            (writ_domain::IdentityKind::Agent, None) => Err(EngineError::new(
                ErrorCode::OnBehalfOfRequired,
                format!(
                    "{} is an agent: say which user it acts for (on_behalf_of)",
                    caller.name
                ),
            )),
            (writ_domain::IdentityKind::Agent, Some(user)) => match self.identity(user) {
                Some(identity) if identity.kind == writ_domain::IdentityKind::User => {
                    if identity.disabled {
                        return Err(EngineError::new(
                            ErrorCode::IdentityDisabled,
                            format!("on_behalf_of: {user} is disabled; nobody acts for them"),
                        ));
                    }
                    // An agent acts for its owner, or for users it names as delegates.
                    let agent = self.identity(caller.name.as_str());
                    let may = agent.is_some_and(|agent| {
                        agent.owner.as_ref() == Some(&identity.name)
                            || agent.delegates.contains(&identity.name)
                    });
                    if !may {
                        return Err(EngineError::new(
                            ErrorCode::NotADelegate,
                            format!(
                                "{} may act only for its owner or its delegates, not for {user}",
                                caller.name
                            ),
                        ));
                    }
                    Ok(Some(identity.name.clone()))
                }
                _ => Err(EngineError::new(
                    ErrorCode::UnknownIdentity,
                    format!("on_behalf_of: no user {user:?} is configured"),
                )),
            },
            (_, Some(_)) => Err(EngineError::new(
                ErrorCode::OnBehalfOfNotAgent,
                "only agents say on whose behalf they act",
            )),
            (_, None) => Ok(None),
        }
    }

    pub(crate) fn check_approver(
        &self,
        caller: &Caller,
        request: &Request,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        match self.identity(caller.name.as_str()) {
            Some(identity) if identity.disabled => {
                return Err(EngineError::new(
                    ErrorCode::IdentityDisabled,
                    format!("{} is disabled and cannot approve or reject", caller.name),
                ));
            }
            Some(identity) if !self.config.approver_kinds.contains(&identity.kind) => {
                return Err(EngineError::new(
                    ErrorCode::ApproverKind,
                    format!(
                        "{} is a {}; only {} may approve or reject (requests.approver_kinds)",
                        caller.name,
                        identity.kind.as_str(),
                        self.config
                            .approver_kinds
                            .iter()
                            .map(|k| format!("{}s", k.as_str()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            Some(_) => {}
            None => {
                // A caller whose identity was removed from the configuration
                // since its token was checked: it approves nothing.
                return Err(EngineError::new(
                    ErrorCode::NotAnApprover,
                    format!("{} is not a configured identity", caller.name),
                ));
            }
        }
        // An agent approving under a token's act chain approves for its user: neither the
        // user nor any agent of the chain may be a party either.
        let mut deciders = std::iter::once(&caller.name).chain(
            caller
                .delegation
                .iter()
                .flat_map(|d| std::iter::once(&d.principal).chain(&d.actors)),
        );
        if deciders.any(|decider| self.is_party(decider, request)) {
            return Err(EngineError::new(
                ErrorCode::SelfApproval,
                "the requester, the subject, the user an agent acts for and the owner of a service or agent that asks or is asked for can never approve or reject a request",
            ));
        }
        let evaluation = self.policy().may_approve(&ApproveFacts {
            actor: caller.name.as_str(),
            request,
            now,
        });
        self.report_policy_errors("approve", &evaluation.errors);
        if !evaluation.value {
            return Err(EngineError::new(
                ErrorCode::NotAnApprover,
                format!(
                    "no approve policy permits {} to approve this request",
                    caller.name
                ),
            ));
        }
        Ok(())
    }

    /// The common start of approving and rejecting: a transaction holding the request,
    /// which must be pending, and a caller who may decide on it.
    async fn open_for_decision(
        &self,
        caller: &Caller,
        id: RequestId,
        comment: &str,
    ) -> Result<(WriteTx<'_>, Request, Timestamp), EngineError> {
        check_comment(comment)?;
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let request = Self::pending_request(&mut tx, id).await?;
        self.check_approver(caller, &request, now)?;
        Ok((tx, request, now))
    }

    /// An approval given through the HTTP API (or the CLI, which uses it).
    pub async fn approve(
        &self,
        caller: &Caller,
        id: RequestId,
        comment: String,
    ) -> Result<Request, EngineError> {
        self.approve_via(caller, id, comment, ApprovedVia::Api)
            .await
    }

    /// An approval, recorded with where it was given.
    pub async fn approve_via(
        &self,
        caller: &Caller,
        id: RequestId,
        comment: String,
        via: ApprovedVia<'_>,
    ) -> Result<Request, EngineError> {
        let (mut tx, mut request, now) = self.open_for_decision(caller, id, &comment).await?;
        // Past its deadline a request is dead, whether or not the scheduler has got to
        // recording that yet: an approval now would grant what nobody approved in time.
        if let Some(deadline) = request.pending_expires_at
            && now >= deadline
        {
            return Err(EngineError::new(
                ErrorCode::Expired,
                format!("request {id} expired unapproved at {deadline}; ask again"),
            ));
        }
        if request.has_approved(&caller.name) {
            return Err(EngineError::new(
                ErrorCode::AlreadyApproved,
                format!("{} has already approved request {id}", caller.name),
            ));
        }
        request.approvals.push(Approval {
            approver: caller.name.clone(),
            comment,
            at: now,
            via: Some(via.to_string()),
        });
        let actor = &caller.actor();
        let mut grant = None;
        if request.approvals_missing() == 0 {
            request.state = request
                .state
                .transition(RequestEvent::Approve)
                .map_err(|e| EngineError::new(ErrorCode::NotPending, e.to_string()))?;
            request.pending_expires_at = None;
            if request.extends.is_some() {
                // More time on the live grant, not a new one.
                let extended = self.extended_grant(&mut tx, &mut request).await?;
                tx.update_request(&request).await?;
                self.append_request_event(
                    &mut tx,
                    now,
                    actor,
                    EventKind::RequestApproved,
                    &request,
                )
                .await?;
                tx.delete_job(&request.id.to_string()).await?;
                self.record_extension(&mut tx, actor, &extended, &request, now)
                    .await?;
            } else {
                let new = self.new_grant(&request, now);
                request.grant_id = Some(new.id);
                tx.update_request(&request).await?;
                self.append_request_event(
                    &mut tx,
                    now,
                    actor,
                    EventKind::RequestApproved,
                    &request,
                )
                .await?;
                tx.delete_job(&request.id.to_string()).await?;
                self.record_new_grant(&mut tx, actor, &new, now).await?;
                grant = Some(new.id);
            }
        } else {
            tx.update_request(&request).await?;
            self.append_request_event(
                &mut tx,
                now,
                actor,
                EventKind::RequestApprovalRecorded,
                &request,
            )
            .await?;
        }
        tx.commit().await?;
        self.evidence_committed();
        tracing::info!(request = %id, approver = %caller.name, missing = request.approvals_missing(), "approval recorded");
        if let Some(grant) = grant {
            // A credential grant waits for its requester to collect it.
            self.hint_due(now.plus_seconds(INLINE_APPLY_GRACE_SECONDS));
            self.apply_grant(grant).await;
        }
        Ok(request)
    }

    pub async fn reject(
        &self,
        caller: &Caller,
        id: RequestId,
        comment: String,
    ) -> Result<Request, EngineError> {
        let (mut tx, mut request, now) = self.open_for_decision(caller, id, &comment).await?;
        self.close_request(
            &mut tx,
            &mut request,
            RequestEvent::Reject,
            &caller.actor(),
            comment,
            now,
        )
        .await?;
        tx.commit().await?;
        self.evidence_committed();
        Ok(request)
    }

    pub async fn cancel(&self, caller: &Caller, id: RequestId) -> Result<Request, EngineError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let mut request = tx
            .request(id)
            .await?
            .ok_or_else(|| EngineError::not_found("request", id))?;
        if request.requester != caller.name {
            return Err(EngineError::new(
                ErrorCode::NotTheRequester,
                "only the requester can cancel a request",
            ));
        }
        if request.state != RequestState::PendingApproval {
            return Err(EngineError::new(
                ErrorCode::NotPending,
                format!("request {id} is {}, not pending approval", request.state),
            ));
        }
        self.close_request(
            &mut tx,
            &mut request,
            RequestEvent::Cancel,
            &caller.actor(),
            String::new(),
            now,
        )
        .await?;
        tx.commit().await?;
        self.evidence_committed();
        Ok(request)
    }

    async fn close_request(
        &self,
        tx: &mut WriteTx<'_>,
        request: &mut Request,
        event: RequestEvent,
        actor: &Actor,
        comment: String,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        request.state = request
            .state
            .transition(event)
            .map_err(|e| EngineError::new(ErrorCode::NotPending, e.to_string()))?;
        request.closed_by = actor.identity().cloned();
        request.close_comment = Some(comment).filter(|c| !c.is_empty());
        request.pending_expires_at = None;
        let kind = match event {
            RequestEvent::Reject => EventKind::RequestRejected,
            RequestEvent::Cancel => EventKind::RequestCancelled,
            RequestEvent::Expire => EventKind::RequestExpired,
            RequestEvent::Approve => EventKind::RequestApproved,
        };
        tx.update_request(request).await?;
        self.append_request_event(tx, now, actor, kind, request)
            .await?;
        tx.delete_job(&request.id.to_string()).await?;
        tracing::info!(request = %request.id, state = %request.state, by = %actor, "request closed");
        Ok(())
    }

    /// Cancels a request still pending approval on writ's own account (`actor`): the
    /// ticket behind it was closed, or its requester or subject left. Returns whether it
    /// was cancelled.
    pub(crate) async fn cancel_pending(
        &self,
        id: RequestId,
        actor: &Actor,
        reason: String,
    ) -> Result<bool, EngineError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let Some(mut request) = tx
            .request(id)
            .await?
            .filter(|r| r.state == RequestState::PendingApproval)
        else {
            return Ok(false);
        };
        self.close_request(
            &mut tx,
            &mut request,
            RequestEvent::Cancel,
            actor,
            reason,
            now,
        )
        .await?;
        tx.commit().await?;
        self.evidence_committed();
        Ok(true)
    }

    /// Expires a request still pending when its approval window closed.
    pub(crate) async fn expire_request(&self, id: RequestId) -> Result<(), EngineError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let Some(mut request) = tx.request(id).await? else {
            tx.delete_job(&id.to_string()).await?;
            return tx.commit().await.map_err(Into::into);
        };
        if request.state == RequestState::PendingApproval
            && request.pending_expires_at.is_some_and(|at| at <= now)
        {
            self.close_request(
                &mut tx,
                &mut request,
                RequestEvent::Expire,
                &SystemActor::Scheduler.into(),
                String::new(),
                now,
            )
            .await?;
        } else if request.state != RequestState::PendingApproval {
            tx.delete_job(&id.to_string()).await?;
        }
        tx.commit().await?;
        self.evidence_committed();
        Ok(())
    }

    pub async fn request(&self, id: RequestId) -> Result<Request, EngineError> {
        self.store
            .request(id)
            .await?
            .ok_or_else(|| EngineError::not_found("request", id))
    }

    /// Lists requests; `approvable_by_me` keeps those `caller` could approve now.
    pub async fn requests(
        &self,
        caller: &Caller,
        filter: RequestFilter,
        approvable_by_me: bool,
    ) -> Result<Page<Request>, EngineError> {
        let mut filter = filter;
        if !approvable_by_me {
            // What the caller may read: approvers find the rest with `approvable_by_me`.
            filter.involving = self.narrow_to_own(caller);
            return Ok(self.store.requests(&filter).await?);
        }
        // A page of the store's, narrowed: it may hold fewer than `limit`, and `next`
        // still continues after the last request looked at.
        let mut page = self.store.requests(&filter).await?;
        let now = self.clock.now();
        page.items.retain(|r| {
            r.state == RequestState::PendingApproval
                && !r.has_approved(&caller.name)
                && self.check_approver(caller, r, now).is_ok()
        });
        Ok(page)
    }

    pub async fn grant(&self, id: GrantId) -> Result<Grant, EngineError> {
        self.store
            .grant(id)
            .await?
            .ok_or_else(|| EngineError::not_found("grant", id))
    }

    pub async fn grants(&self, filter: GrantFilter) -> Result<Page<Grant>, EngineError> {
        Ok(self.store.grants(&filter).await?)
    }

    /// Grants the caller may read (see `access`) that match `filter`.
    pub async fn visible_grants(
        &self,
        caller: &Caller,
        mut filter: GrantFilter,
    ) -> Result<Page<Grant>, EngineError> {
        filter.involving = self.narrow_to_own(caller);
        self.grants(filter).await
    }

    /// The scheduler's bookkeeping for a grant: attempts and the last error, if failing.
    pub async fn grant_job(&self, id: GrantId) -> Result<Option<writ_store::Job>, EngineError> {
        Ok(self.store.job(&id.to_string()).await?)
    }
}

/// Where an approval was given, as the request records it (`Approval::via`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovedVia<'a> {
    /// The HTTP API, and the CLI, which calls it.
    Api,
    /// The web UI.
    Ui,
    /// The ticket, in this ticketing system.
    Itsm(&'a str),
}

impl std::fmt::Display for ApprovedVia<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Api => f.write_str("api"),
            Self::Ui => f.write_str("ui"),
            Self::Itsm(system) => write!(f, "itsm:{system}"),
        }
    }
}
