//! Leases on the target: apply a grant, end it (expiry or revoke), verify it is gone.

use serde_json::json;
use writ_connectors::{Access, Connector, ConnectorError};
use writ_domain::ledger::{Actor, EventKind, SystemActor};
use writ_domain::lifecycle::{GrantEvent, GrantState};
use writ_domain::{Grant, GrantId, RevokeReason, Timestamp};
use writ_policy::ApproveFacts;
use writ_store::{Job, JobKind, WriteTx};

use crate::{COMMENT_LENGTH_MAX, Caller, Engine, EngineError, ErrorCode, metrics_names};

/// The actor name the ledger shows for work writ does on its own.
pub(crate) const SCHEDULER_ACTOR: Actor = Actor::System(SystemActor::Scheduler);
/// The actor of revocations caused by a ticket closed in its ticketing system.
pub(crate) const TICKET_ACTOR: Actor = Actor::System(SystemActor::Itsm);

/// What a revocation attempt on the target came to.
pub(crate) enum RevokeOutcome {
    /// Another live lease on the same account keeps the access; nothing was changed.
    Retained(GrantId),
    /// Read back as gone.
    Removed,
    Failed(String),
}

/// A failed attempt as recorded: when it is retried, and whether it was escalated.
pub(crate) struct RecordedFailure {
    due: Timestamp,
    escalated: bool,
}

fn illegal(error: writ_domain::lifecycle::IllegalTransition) -> EngineError {
    EngineError::new(ErrorCode::WrongState, error.to_string())
}

/// The most jobless grants one sweep restores (the next sweep takes the rest).
const JOBLESS_SWEEP_BATCH_MAX: i64 = 512;

impl Engine {
    /// Seconds to wait before attempt `attempts + 1`: 1, 2, 4, ... capped by config.
    pub(crate) fn backoff_seconds(&self, attempts: i64) -> i64 {
        let exponent = u32::try_from(attempts.clamp(0, 30)).unwrap_or(30);
        2_i64
            .saturating_pow(exponent)
            .min(self.config.retry_backoff_max_seconds)
            .max(1)
    }

    pub(crate) fn target_of(
        &self,
        grant: &Grant,
    ) -> Result<(String, std::sync::Arc<dyn Connector>), EngineError> {
        let entitlement = self
            .config
            .entitlement(grant.entitlement.as_str())
            .ok_or_else(|| {
                EngineError::new(
                    ErrorCode::EntitlementRemoved,
                    format!("entitlement {} is no longer configured", grant.entitlement),
                )
            })?;
        let connector = self.targets.connector(&entitlement.target).ok_or_else(|| {
            EngineError::new(
                ErrorCode::TargetRemoved,
                format!("target {} is no longer configured", entitlement.target),
            )
        })?;
        Ok((entitlement.role.clone(), connector.clone()))
    }

    /// Whether the grant's target is enforced by PEPs asking writ (`kind = "authzen"`):
    /// its lease recorded active is the access, and recorded ending is its removal.
    pub(crate) fn enforced_by_writ(&self, grant: &Grant) -> bool {
        self.config
            .targets
            .get(grant.entitlement.target())
            .is_some_and(|target| target.connector.enforced_by_writ())
    }

    pub(crate) fn holder_key(grant: &Grant) -> String {
        crate::holder_key(grant.entitlement.as_str(), &grant.account)
    }

    async fn record_attempt_failure(
        &self,
        grant: &Grant,
        kind: JobKind,
        error: &str,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let job = self.store.job(&grant.id.to_string()).await?.unwrap_or(Job {
            object_id: grant.id.to_string(),
            kind,
            due_at: now,
            attempts: 0,
            last_error: None,
            escalated_at: None,
        });
        let mut tx = self.store.begin().await?;
        // Read again in the writer: an attempt that another path (or node) overtook is
        // not recorded as failed.
        let expected = |state: GrantState| match kind {
            JobKind::RevokeGrant => matches!(state, GrantState::Revoking | GrantState::Failed),
            _ => state == GrantState::Pending,
        };
        let Some(grant) = tx.grant(grant.id).await?.filter(|g| expected(g.state)) else {
            tx.commit().await?;
            return Ok(());
        };
        let failure = self
            .record_failure_in(&mut tx, &grant, &job, error, now)
            .await?;
        tx.commit().await?;
        self.failure_committed(&grant, &failure, error);
        Ok(())
    }

    /// Records a failed attempt in `tx`: `failed` (for a revocation), the retry with
    /// backoff, and the escalation if the revocation has failed for too long.
    pub(crate) async fn record_failure_in(
        &self,
        tx: &mut WriteTx<'_>,
        grant: &Grant,
        job: &Job,
        error: &str,
        now: Timestamp,
    ) -> Result<RecordedFailure, EngineError> {
        let due = now.plus_seconds(self.backoff_seconds(job.attempts));
        let failing_since = grant.revoked_at.unwrap_or(grant.expires_at);
        let escalated = job.kind == JobKind::RevokeGrant
            && job.escalated_at.is_none()
            && now.millis_since(failing_since) >= self.config.escalate_after_seconds * 1000;
        if escalated {
            tx.append(
                now,
                &SCHEDULER_ACTOR,
                EventKind::GrantRevokeEscalated,
                &json!({
                    "grant_id": grant.id, "subject": grant.subject, "entitlement": grant.entitlement,
                    "account": grant.account, "failing_since": failing_since,
                    "attempts": job.attempts + 1, "error": error,
                }),
            )
            .await?;
        }
        if job.kind == JobKind::RevokeGrant && grant.state == GrantState::Revoking {
            let mut failed = grant.clone();
            failed.state = failed
                .state
                .transition(GrantEvent::RevokeFailed)
                .map_err(illegal)?;
            tx.update_grant(&failed).await?;
            let event = tx
                .append(
                    now,
                    &SCHEDULER_ACTOR,
                    EventKind::GrantRevokeFailed,
                    &json!({ "grant": failed, "error": error }),
                )
                .await?;
            self.grant_evidence(tx, &failed, &event).await?;
        }
        tx.retry_job(job, due, error, escalated.then_some(now))
            .await?;
        Ok(RecordedFailure { due, escalated })
    }

    /// What follows a committed failure: the escalation's metric and log, the wake-ups.
    pub(crate) fn failure_committed(&self, grant: &Grant, failure: &RecordedFailure, error: &str) {
        if failure.escalated {
            metrics::counter!(metrics_names::REVOCATIONS_ESCALATED).increment(1);
            tracing::error!(grant = %grant.id, account = %grant.account, entitlement = %grant.entitlement, %error, "revocation still failing after revocation.escalate_after; escalated");
        }
        self.evidence_committed();
        self.hint_due(failure.due);
    }

    /// Applies a pending grant on its target and activates it once it is observed there.
    /// Failures are recorded and retried by the scheduler; nothing is returned to a caller.
    pub(crate) async fn apply_grant(&self, id: GrantId) {
        self.apply_grant_known(id, None).await;
    }

    /// As `apply_grant`, for a caller that has just recorded the grant and so need not read it.
    pub(crate) async fn apply_grant_known(&self, id: GrantId, known: Option<Grant>) {
        if let Err(error) = self.try_apply_grant(id, known).await {
            tracing::error!(grant = %id, %error, "could not apply grant");
        }
    }

    async fn try_apply_grant(&self, id: GrantId, known: Option<Grant>) -> Result<(), EngineError> {
        let grant = match known {
            Some(grant) => grant,
            None => match self.store.grant(id).await? {
                Some(grant) => grant,
                None => return Ok(()),
            },
        };
        // A credential is issued only to a caller there to receive its secret
        // (`issue_credential`); its revocation job at expiry covers one never collected.
        if grant.state != GrantState::Pending || grant.credential {
            return Ok(());
        }
        let now = self.clock.now();
        if grant.expires_at <= now {
            // It expired before it could be applied; a call may have landed, so revoke and verify.
            self.begin_revoke(
                &grant,
                &SCHEDULER_ACTOR,
                RevokeReason::ExpiredUnobserved,
                now,
            )
            .await?;
            return self.execute_revoke(id).await;
        }
        if self.enforced_by_writ(&grant) {
            // Nothing to call: the PDP allows exactly what is recorded active.
            self.record_activated(id, now).await?;
            return Ok(());
        }
        let (role, connector) = self.target_of(&grant)?;
        let _held = self.lock_account(Self::holder_key(&grant)).await?;
        let Some(grant) = self
            .store
            .grant(id)
            .await?
            .filter(|g| g.state == GrantState::Pending)
        else {
            return Ok(());
        };
        let access = Access {
            role: &role,
            account: &grant.account,
        };
        // Whatever the grant call returned, the read-back decides (an unknown outcome may have applied).
        let guard = self.targets.guard(grant.entitlement.target());
        let granted = guard.call(now, connector.grant(access)).await;
        let observed = guard.call(now, connector.holds(access)).await;
        let now = self.clock.now();
        match (granted, observed) {
            (_, Ok(true)) => {
                self.record_activated(id, now).await?;
                Ok(())
            }
            (granted, observed) => {
                let error = match (granted, observed) {
                    (Err(e), _) | (Ok(()), Err(e)) => e.to_string(),
                    (Ok(()), Ok(_)) => {
                        "the target does not show the access after granting it".to_string()
                    }
                };
                metrics::counter!(metrics_names::GRANT_APPLY_FAILURES).increment(1);
                tracing::warn!(grant = %id, %error, "grant not applied; will retry");
                self.record_attempt_failure(&grant, JobKind::ApplyGrant, &error, now)
                    .await
            }
        }
    }

    /// Records that the target was observed holding a pending grant's access: `active`,
    /// with its revocation scheduled at expiry. `None` if it was no longer pending.
    pub(crate) async fn record_activated(
        &self,
        id: GrantId,
        now: Timestamp,
    ) -> Result<Option<Grant>, EngineError> {
        let mut tx = self.store.begin().await?;
        let Some(mut current) = tx.grant(id).await? else {
            return Ok(None);
        };
        if current.state != GrantState::Pending {
            return Ok(None);
        }
        current.state = current
            .state
            .transition(GrantEvent::Activate)
            .map_err(illegal)?;
        current.granted_at = Some(now);
        tx.update_grant(&current).await?;
        let event = tx
            .append(
                now,
                &SCHEDULER_ACTOR,
                EventKind::GrantActivated,
                &json!({ "grant": current }),
            )
            .await?;
        self.grant_evidence(&mut tx, &current, &event).await?;
        tx.set_job(&id.to_string(), JobKind::RevokeGrant, current.expires_at)
            .await?;
        tx.commit().await?;
        // Its revocation is scheduled now: the lookahead must learn of it. Noted once
        // committed, so a lookahead load that starts after this sees the job.
        self.lookahead.note_new_lease(&current);
        self.evidence_committed();
        self.hint_due(current.expires_at);
        tracing::info!(grant = %id, subject = %current.subject, entitlement = %current.entitlement, expires_at = %current.expires_at, "grant active");
        Ok(Some(current))
    }

    /// Records that a lease is ending: `revoking`, with who and why. The target is
    /// touched only after this commits.
    async fn begin_revoke(
        &self,
        grant: &Grant,
        actor: &Actor,
        reason: RevokeReason,
        now: Timestamp,
    ) -> Result<Grant, EngineError> {
        let mut tx = self.store.begin().await?;
        // As of the writer: another path may have begun revoking it since `grant` was read.
        let current = tx
            .grant(grant.id)
            .await?
            .filter(|g| g.state.may_hold_access())
            .ok_or_else(|| {
                EngineError::new(
                    ErrorCode::NotActive,
                    format!("grant {} is already ending or ended", grant.id),
                )
            })?;
        let updated = self
            .begin_revoke_in(&mut tx, &current, actor, reason, now)
            .await?;
        tx.commit().await?;
        self.evidence_committed();
        Ok(updated)
    }

    pub(crate) async fn begin_revoke_in(
        &self,
        tx: &mut WriteTx<'_>,
        grant: &Grant,
        actor: &Actor,
        reason: RevokeReason,
        now: Timestamp,
    ) -> Result<Grant, EngineError> {
        let mut grant = grant.clone();
        grant.state = grant
            .state
            .transition(GrantEvent::BeginRevoke)
            .map_err(illegal)?;
        grant.revoked_at = Some(now);
        grant.revoke_reason = Some(reason);
        grant.revoked_by = actor.identity().cloned();
        tx.update_grant(&grant).await?;
        let event = tx
            .append(
                now,
                actor,
                EventKind::GrantRevokeStarted,
                &json!({ "grant": grant }),
            )
            .await?;
        self.grant_evidence(tx, &grant, &event).await?;
        tx.set_job(&grant.id.to_string(), JobKind::RevokeGrant, now)
            .await?;
        Ok(grant)
    }

    /// Removes the access from the target (unless another live lease covers it) and
    /// records `revoked` only once the target is observed not to hold it.
    pub(crate) async fn execute_revoke(&self, id: GrantId) -> Result<(), EngineError> {
        let Some(grant) = self.store.grant(id).await? else {
            return Ok(());
        };
        let (role, connector) = self.target_of(&grant)?;
        let _held = self.lock_account(Self::holder_key(&grant)).await?;
        let Some(grant) = self
            .store
            .grant(id)
            .await?
            .filter(|g| matches!(g.state, GrantState::Revoking | GrantState::Failed))
        else {
            return Ok(());
        };
        let outcome = self
            .revoke_on_target(&grant, &role, connector.as_ref())
            .await?;
        let now = self.clock.now();
        match outcome {
            RevokeOutcome::Retained(other) => {
                let tx = self.store.begin().await?;
                self.record_revoked(tx, &grant, Some(other), now).await?;
                tracing::info!(grant = %id, retained_by = %other, "lease ended; an overlapping grant keeps the access");
                Ok(())
            }
            RevokeOutcome::Removed => {
                let tx = self.store.begin().await?;
                let done = self.record_revoked(tx, &grant, None, now).await?;
                tracing::info!(grant = %id, subject = %done.subject, entitlement = %done.entitlement, "revoked and verified");
                Ok(())
            }
            RevokeOutcome::Failed(error) => {
                self.record_attempt_failure(&grant, JobKind::RevokeGrant, &error, now)
                    .await
            }
        }
    }

    /// Ends the grant's access on its target, within the target's limits, and reads it
    /// back. The caller holds the account's lock, so the check for an overlapping live
    /// grant and the change on the target cannot interleave with applying one.
    pub(crate) async fn revoke_on_target(
        &self,
        grant: &Grant,
        role: &str,
        connector: &dyn Connector,
    ) -> Result<RevokeOutcome, EngineError> {
        if !grant.credential
            && let Some(other) = self.store.other_live_grant(grant).await?
        {
            return Ok(RevokeOutcome::Retained(other));
        }
        Ok(self.remove_on_target(grant, role, connector).await)
    }

    /// Takes the access (or the credential's login) off the target, within the
    /// target's limits, and reads it back.
    pub(crate) async fn remove_on_target(
        &self,
        grant: &Grant,
        role: &str,
        connector: &dyn Connector,
    ) -> RevokeOutcome {
        if self.enforced_by_writ(grant) {
            // The PDP has denied it since `grant.revoke_started` was committed.
            return RevokeOutcome::Removed;
        }
        let guard = self.targets.guard(grant.entitlement.target());
        let now = self.clock.now();
        let access = Access {
            role,
            account: &grant.account,
        };
        let (revoked, observed) = if grant.credential {
            (
                guard
                    .call(now, connector.drop_credential(&grant.account))
                    .await,
                guard
                    .call(now, connector.credential_exists(&grant.account))
                    .await,
            )
        } else {
            (
                guard.call(now, connector.revoke(access)).await,
                guard.call(now, connector.holds(access)).await,
            )
        };
        match (revoked, observed) {
            (_, Ok(false)) => RevokeOutcome::Removed,
            (revoked, observed) => {
                let error = match (revoked, observed) {
                    (Err(e), _) | (Ok(()), Err(e)) => e.to_string(),
                    (Ok(()), Ok(_)) => ConnectorError::Failed(
                        "the target still shows the access after revoking it".into(),
                    )
                    .to_string(),
                };
                metrics::counter!(metrics_names::REVOCATION_FAILURES).increment(1);
                tracing::warn!(grant = %grant.id, %error, "revocation failed; will retry");
                RevokeOutcome::Failed(error)
            }
        }
    }

    /// Records a revocation as done: verified gone from the target, or kept there by
    /// the overlapping live grant `retained_by`.
    async fn record_revoked(
        &self,
        mut tx: WriteTx<'_>,
        grant: &Grant,
        retained_by: Option<GrantId>,
        now: Timestamp,
    ) -> Result<Grant, EngineError> {
        // Read again in the writer: recorded once, whoever else finished it meanwhile.
        let Some(current) = tx
            .grant(grant.id)
            .await?
            .filter(|g| matches!(g.state, GrantState::Revoking | GrantState::Failed))
        else {
            tx.commit().await?;
            return Ok(grant.clone());
        };
        let done = self
            .record_revoked_in(&mut tx, &current, retained_by, now)
            .await?;
        tx.commit().await?;
        self.revoked_committed(&done, now);
        Ok(done)
    }

    pub(crate) async fn record_revoked_in(
        &self,
        tx: &mut WriteTx<'_>,
        grant: &Grant,
        retained_by: Option<GrantId>,
        now: Timestamp,
    ) -> Result<Grant, EngineError> {
        let mut done = grant.clone();
        done.state = done
            .state
            .transition(GrantEvent::ConfirmRevoked)
            .map_err(illegal)?;
        done.verified_at = Some(now);
        done.retained_by = retained_by;
        let target_access = if retained_by.is_some() {
            "retained_by_overlapping_grant"
        } else {
            "removed"
        };
        let mut data = json!({ "grant": done, "target_access": target_access });
        if let Some(at) = self.lookahead.removed_at(grant.id) {
            data["removed_while_ledger_unavailable_at"] = json!(at);
        }
        tx.update_grant(&done).await?;
        let event = tx
            .append(now, &SCHEDULER_ACTOR, EventKind::GrantRevoked, &data)
            .await?;
        self.grant_evidence(tx, &done, &event).await?;
        tx.delete_job(&grant.id.to_string()).await?;
        Ok(done)
    }

    /// What follows a committed revocation: the lag metric (for expiries), the courier.
    pub(crate) fn revoked_committed(&self, done: &Grant, now: Timestamp) {
        self.lookahead.forget_removed(done.id);
        if done.revoke_reason == Some(RevokeReason::Expired) {
            let lag_seconds = now.millis_since(done.expires_at) as f64 / 1000.0;
            metrics::histogram!(metrics_names::REVOCATION_LAG).record(lag_seconds.max(0.0));
        }
        self.evidence_committed();
    }

    /// Ends a lease early at a caller's request.
    pub async fn revoke_grant(
        &self,
        caller: &Caller,
        id: GrantId,
        reason: String,
    ) -> Result<Grant, EngineError> {
        if reason.len() > COMMENT_LENGTH_MAX {
            return Err(EngineError::new(
                ErrorCode::ReasonTooLong,
                format!("reasons are at most {COMMENT_LENGTH_MAX} bytes"),
            ));
        }
        if RevokeReason::is_reserved(&reason) {
            // Else an early revocation would read as an expiry on the ledger.
            return Err(EngineError::new(
                ErrorCode::InvalidReason,
                format!(
                    "{:?} is what writ records when a lease runs out; say why you end it now",
                    reason.trim()
                ),
            ));
        }
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let grant = tx
            .grant(id)
            .await?
            .ok_or_else(|| EngineError::not_found("grant", id))?;
        if !grant.state.may_hold_access() {
            return Err(EngineError::new(
                ErrorCode::NotActive,
                format!("grant {id} is {}, already ending or ended", grant.state),
            ));
        }
        let request = tx
            .request(grant.request_id)
            .await?
            .ok_or_else(|| EngineError::not_found("request", grant.request_id))?;
        // Giving up access is always allowed to those it concerns; others need a revoke policy.
        let concerned = caller.name == grant.subject
            || caller.name == request.requester
            || self
                .identity(grant.subject.as_str())
                .and_then(|s| s.owner.clone())
                .as_ref()
                == Some(&caller.name);
        if !concerned {
            let evaluation = self.policy().may_revoke(&ApproveFacts {
                actor: caller.name.as_str(),
                request: &request,
                now,
            });
            self.report_policy_errors("revoke", &evaluation.errors);
            if !evaluation.value {
                // Someone who may not even read the grant learns no more than GET
                // /v1/grants/{id} would tell them: that there is none.
                if !self.may_see_request(caller, &request) {
                    return Err(EngineError::not_found("grant", id));
                }
                return Err(EngineError::new(
                    ErrorCode::NotARevoker,
                    format!(
                        "no revoke policy permits {} to revoke this grant",
                        caller.name
                    ),
                ));
            }
        }
        let reason = RevokeReason::Stated(if reason.trim().is_empty() {
            format!("revoked by {}", caller.name)
        } else {
            reason
        });
        self.begin_revoke_in(&mut tx, &grant, &caller.actor(), reason, now)
            .await?;
        tx.commit().await?;
        self.evidence_committed();
        if let Err(error) = self.execute_revoke(id).await {
            tracing::error!(grant = %id, %error, "revocation will be retried");
        }

        self.grant(id).await
    }

    /// Ends a lease because the ticket behind it was closed in its ticketing system.
    /// Returns the grant, or `None` if it was not holding access any more.
    pub(crate) async fn revoke_for_closed_ticket(
        &self,
        id: GrantId,
        reason: String,
    ) -> Result<Option<Grant>, EngineError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let Some(grant) = tx.grant(id).await?.filter(|g| g.state.may_hold_access()) else {
            return Ok(None);
        };
        self.begin_revoke_in(
            &mut tx,
            &grant,
            &TICKET_ACTOR,
            RevokeReason::Stated(reason),
            now,
        )
        .await?;
        tx.commit().await?;
        self.evidence_committed();
        if let Err(error) = self.execute_revoke(id).await {
            tracing::error!(grant = %id, %error, "revocation will be retried");
        }
        self.grant(id).await.map(Some)
    }

    /// Puts off a due job that made no progress (see `Scheduler::run_due`).
    /// A grant past its expiry that may still hold access but has no job would never be
    /// revoked (its job row was deleted: an accident, or someone with database
    /// access). Gives each one a revocation job due now, so the usual path takes it
    /// off its target; logged and counted, since it should never happen.
    pub async fn sweep_jobless_grants(&self) -> usize {
        let now = self.clock.now();
        let found = match self
            .store
            .expired_grants_without_job(now, JOBLESS_SWEEP_BATCH_MAX)
            .await
        {
            Ok(found) => found,
            Err(error) => {
                tracing::error!(%error, "cannot look for grants without a job");
                return 0;
            }
        };
        if found.is_empty() {
            return 0;
        }
        let restored = async {
            let mut tx = self.store.begin().await?;
            for id in &found {
                tx.set_job(&id.to_string(), JobKind::RevokeGrant, now)
                    .await?;
            }
            tx.commit().await
        };
        if let Err(error) = restored.await {
            tracing::error!(%error, "cannot restore the revocation jobs of expired grants");
            return 0;
        }
        for id in &found {
            tracing::error!(grant = %id, "an expired grant had no revocation job; revoking it now");
        }
        metrics::counter!(crate::metrics_names::JOBLESS_GRANTS).increment(found.len() as u64);
        self.hint_due(now);
        found.len()
    }

    /// A job row writ did not write: said and counted, never acted on by a guess. The
    /// caller puts it off like any job that made no progress.
    pub(crate) fn unreadable_job(&self, unreadable: &writ_store::UnreadableJob) {
        tracing::error!(%unreadable, "a scheduled job names no record writ can read; put off");
        metrics::counter!(crate::metrics_names::JOBS_UNREADABLE).increment(1);
    }

    pub(crate) async fn defer_job(&self, job: &Job) {
        let due = self
            .clock
            .now()
            .plus_seconds(self.backoff_seconds(job.attempts));
        let deferred = async {
            let mut tx = self.store.begin().await?;
            tx.retry_job(job, due, "the job made no progress; deferred", None)
                .await?;
            tx.commit().await
        };
        if let Err(error) = deferred.await {
            tracing::error!(job = %job.object_id, %error, "cannot defer a job");
        }
    }
}
