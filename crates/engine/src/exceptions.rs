//! The exception registry: a finding accepted by an entitlement owner, with an
//! accountable owner, a reason and an expiry. When the exception runs out the finding
//! reopens (a scheduled job, so it happens on time whether or not a pass runs).

use writ_domain::finding::FindingEvent;
use writ_domain::ledger::EventKind;
use writ_domain::{
    Exception, FindingId, FindingReport, FindingState, IdentityKind, IdentityName, Timestamp,
};
use writ_store::JobKind;

use crate::reconcile::transition;
use crate::revocation::SCHEDULER_ACTOR;
use crate::{COMMENT_LENGTH_MAX, Caller, Engine, EngineError, ErrorCode};

/// The longest an exception may run before someone must accept it again.
pub const EXCEPTION_DURATION_MAX_SECONDS: i64 = 366 * 24 * 3600;

/// What accepting a finding needs.
#[derive(Debug, Clone)]
pub struct NewException {
    /// The user who answers for the exception.
    pub owner: String,
    pub reason: String,
    pub expires_at: Timestamp,
}

impl Engine {
    /// Accepts an open finding as an exception. Only a user in the entitlement's
    /// `owners` group may; an entitlement without owners takes no exceptions.
    pub async fn accept_finding(
        &self,
        caller: &Caller,
        id: FindingId,
        exception: NewException,
    ) -> Result<FindingReport, EngineError> {
        let now = self.clock.now();
        let report = self
            .store
            .finding(id)
            .await?
            .ok_or_else(|| EngineError::not_found("finding", id))?;
        let entitlement = self
            .config
            .entitlement(report.finding.entitlement.as_str())
            .ok_or_else(|| {
                EngineError::new(
                    ErrorCode::EntitlementRemoved,
                    format!(
                        "entitlement {} is no longer configured",
                        report.finding.entitlement
                    ),
                )
            })?;
        let may_accept = caller.kind == IdentityKind::User
            && entitlement.owners.as_deref().is_some_and(|group| {
                self.identity(caller.name.as_str())
                    .is_some_and(|identity| identity.groups.iter().any(|g| g == group))
            });
        if !may_accept {
            return Err(EngineError::new(
                ErrorCode::NotAnOwner,
                match &entitlement.owners {
                    Some(group) => format!(
                        "only members of {group:?}, the owners of {}, may accept its findings",
                        entitlement.id
                    ),
                    None => format!(
                        "{} has no owners group, so nobody may accept its findings",
                        entitlement.id
                    ),
                },
            ));
        }
        // Nobody excuses their own access: not the accepter's account on the target, nor
        // that of a service or agent they own, nor the exception owner's.
        let holds_it = |name: &IdentityName| {
            self.config.identities.values().any(|identity| {
                (identity.name == *name || identity.owner.as_ref() == Some(name))
                    && identity.account_on(&report.finding.target) == report.finding.account
            })
        };
        if holds_it(&caller.name)
            || exception
                .owner
                .parse::<IdentityName>()
                .is_ok_and(|owner| holds_it(&owner))
        {
            return Err(EngineError::new(
                ErrorCode::OwnAccount,
                format!(
                    "account {} on {} is {}'s own (or of an identity they own or answer for); someone else must accept it",
                    report.finding.account, report.finding.target, caller.name
                ),
            ));
        }
        let owner: IdentityName =
            exception
                .owner
                .parse()
                .map_err(|e: writ_domain::InvalidId| {
                    EngineError::new(ErrorCode::InvalidOwner, e.to_string())
                })?;
        match self.identity(owner.as_str()) {
            Some(identity) if identity.kind == IdentityKind::User && !identity.disabled => {}
            _ => {
                return Err(EngineError::new(
                    ErrorCode::InvalidOwner,
                    format!("the owner of an exception must be an enabled user; {owner} is not"),
                ));
            }
        }
        let reason = exception.reason.trim();
        if reason.is_empty() || reason.len() > COMMENT_LENGTH_MAX {
            return Err(EngineError::new(
                ErrorCode::InvalidReason,
                format!("an exception needs a reason of 1 to {COMMENT_LENGTH_MAX} bytes"),
            ));
        }
        let runs_for = exception.expires_at.millis_since(now) / 1000;
        if runs_for <= 0 || runs_for > EXCEPTION_DURATION_MAX_SECONDS {
            return Err(EngineError::new(
                ErrorCode::InvalidExpiry,
                format!(
                    "expires_at must be in the future and at most {} days away",
                    EXCEPTION_DURATION_MAX_SECONDS / 86_400
                ),
            ));
        }

        let mut finding = report.finding;
        if finding.state != FindingState::Open {
            return Err(EngineError::new(
                ErrorCode::FindingNotOpen,
                format!(
                    "finding {id} is {}; only open findings can be accepted",
                    finding.state
                ),
            ));
        }
        finding.state = transition(finding.state, FindingEvent::Accept)?;
        finding.exception = Some(Exception {
            owner,
            reason: reason.to_string(),
            expires_at: exception.expires_at,
            accepted_by: caller.name.clone(),
            accepted_at: now,
        });
        let mut tx = self.store.begin().await?;
        // Read again inside the writer: a pass may have resolved it meanwhile.
        if tx.finding(id).await?.map(|f| f.state) != Some(FindingState::Open) {
            return Err(EngineError::new(
                ErrorCode::FindingNotOpen,
                format!("finding {id} changed while it was being accepted"),
            ));
        }
        tx.update_finding(&finding).await?;
        tx.set_job(
            &id.to_string(),
            JobKind::ExpireException,
            exception.expires_at,
        )
        .await?;
        tx.append(
            now,
            &caller.actor(),
            EventKind::FindingAccepted,
            &serde_json::json!({ "finding": finding }),
        )
        .await?;
        tx.commit().await?;
        self.hint_due(exception.expires_at);
        Ok(FindingReport {
            finding,
            last_seen_at: report.last_seen_at,
            last_error: None,
        })
    }

    /// The scheduler's entry for an exception that ran out: the finding reopens.
    pub(crate) async fn expire_exception(&self, id: FindingId) -> Result<(), EngineError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let Some(mut finding) = tx.finding(id).await? else {
            tx.delete_job(&id.to_string()).await?;
            return Ok(tx.commit().await?);
        };
        let expired = finding
            .exception
            .as_ref()
            .is_some_and(|exception| exception.expires_at <= now);
        if finding.state != FindingState::Accepted || !expired {
            // Resolved meanwhile, or accepted again with a later expiry (which moved the job).
            if finding.state != FindingState::Accepted {
                tx.delete_job(&id.to_string()).await?;
            }
            return Ok(tx.commit().await?);
        }
        finding.state = transition(finding.state, FindingEvent::Reopen)?;
        tx.update_finding(&finding).await?;
        tx.delete_job(&id.to_string()).await?;
        tx.append(
            now,
            &SCHEDULER_ACTOR,
            EventKind::FindingReopened,
            &serde_json::json!({ "finding": finding }),
        )
        .await?;
        tx.commit().await?;
        tracing::warn!(finding = %id, "exception expired; the finding is open again");
        Ok(())
    }
}
