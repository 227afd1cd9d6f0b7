//! Extensions: more time on a live grant is a new request, decided under the policy in
//! force now (with its own approvals), never a silent prolongation. Granted, it moves
//! the grant's end later on the ledger (`grant.rescheduled`, naming the request); the
//! lease, its account and its ticket stay the same.

use serde_json::json;
use writ_domain::ledger::{Actor, EventKind};
use writ_domain::lifecycle::GrantState;
use writ_domain::{Grant, GrantId, Request, Ticket, Timestamp};
use writ_store::{JobKind, WriteTx};

use crate::intake::{Created, Intake};
use crate::lifecycle::NewRequest;
use crate::{Caller, Engine, EngineError, ErrorCode};

/// An extension as a caller asks for it.
#[derive(Debug, Clone, Default)]
pub struct ExtendGrant {
    /// How much longer; defaults to the entitlement's maximum (capped like any request).
    pub duration_seconds: Option<i64>,
    pub justification: String,
    /// Agents only (and then required): the user the agent acts for.
    pub on_behalf_of: Option<String>,
}

fn not_extendable(message: impl Into<String>) -> EngineError {
    EngineError::new(ErrorCode::NotExtendable, message)
}

impl Engine {
    /// Asks for more time on an active grant: a request for the same subject and
    /// entitlement, citing the same ticket (checked again), decided now.
    pub async fn extend_grant(
        &self,
        caller: &Caller,
        id: GrantId,
        asked: ExtendGrant,
    ) -> Result<Request, EngineError> {
        let grant = self.grant(id).await?;
        let original = self.request(grant.request_id).await?;
        if grant.state != GrantState::Active {
            return Err(not_extendable(format!(
                "grant {id} is {}: only an active grant is extended; ask for new access",
                grant.state
            )));
        }
        if grant.credential {
            return Err(not_extendable(
                "a short-lived credential is issued once for its term; ask for a new one",
            ));
        }
        if original.break_glass.is_some() {
            return Err(not_extendable(
                "break-glass access is not extended: break the glass again (and be reviewed again)",
            ));
        }
        let new = NewRequest {
            entitlement: grant.entitlement.to_string(),
            subject: Some(grant.subject.to_string()),
            duration_seconds: asked.duration_seconds,
            justification: asked.justification,
            ticket: original.ticket.map(|ticket| Ticket {
                verified: None,
                ..ticket
            }),
            on_behalf_of: asked.on_behalf_of,
            extends: Some(id),
        };
        // Whoever made the original request for someone its ticket named may extend it.
        let intake = Intake {
            beneficiary: (caller.name == original.requester).then(|| grant.subject.clone()),
            ..Intake::default()
        };
        match self.create_request_with(caller, new, intake).await? {
            Created::Request(request, _) => Ok(*request),
            Created::TicketTaken(_) | Created::DeliverySeen | Created::TaskSeen(_) => {
                Err(EngineError::new(
                    ErrorCode::IntakeOutcome,
                    "an extension came back as a webhook outcome",
                ))
            }
        }
    }

    /// The grant `request` extends as it will be once the extension is recorded, read
    /// in `tx`: still active, its end moved later by the granted duration and capped by
    /// its subject's end date, its ticket's change window and `requests.ticket_max_total`.
    /// Sets the request's `grant_id` (and its `duration_seconds` to what was added).
    pub(crate) async fn extended_grant(
        &self,
        tx: &mut WriteTx<'_>,
        request: &mut Request,
    ) -> Result<Grant, EngineError> {
        let id = request
            .extends
            .ok_or_else(|| not_extendable("the request extends no grant"))?;
        let mut grant = tx
            .grant(id)
            .await?
            .ok_or_else(|| EngineError::not_found("grant", id))?;
        if grant.state != GrantState::Active {
            return Err(not_extendable(format!(
                "grant {id} is {} now: it cannot be extended any more; ask for new access",
                grant.state
            )));
        }
        let started = grant.granted_at.unwrap_or(request.created_at);
        let check = request.ticket.as_ref().and_then(|t| t.verified.as_ref());
        let caps = [
            self.identity(grant.subject.as_str())
                .and_then(|subject| subject.valid_until),
            check.and_then(|check| check.window_end),
            check
                .and(self.config.ticket_max_total_seconds)
                .map(|cap| started.plus_seconds(cap)),
        ];
        let wanted = grant.expires_at.plus_seconds(request.duration_seconds);
        let end = caps.into_iter().flatten().fold(wanted, Timestamp::min);
        // Less than a second more is nothing more.
        if end.millis_since(grant.expires_at) < 1000 {
            return Err(not_extendable(format!(
                "grant {id} already runs to the latest it may: its subject's end date, its ticket's change window or requests.ticket_max_total"
            )));
        }
        request.duration_seconds = end.millis_since(grant.expires_at).div_euclid(1000);
        request.grant_id = Some(id);
        grant.expires_at = end;
        Ok(grant)
    }

    /// Records an extended grant's new end, naming the request that granted it.
    pub(crate) async fn record_extension(
        &self,
        tx: &mut WriteTx<'_>,
        actor: &Actor,
        grant: &Grant,
        request: &Request,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        tx.update_grant(grant).await?;
        tx.append(
            now,
            actor,
            EventKind::GrantRescheduled,
            &json!({
                "grant": grant,
                "scheduled_revocation_at": grant.expires_at,
                "extended_by": request.id,
            }),
        )
        .await?;
        tx.set_job(
            &grant.id.to_string(),
            JobKind::RevokeGrant,
            grant.expires_at,
        )
        .await?;
        self.lookahead.note_new_lease(grant);
        Ok(())
    }
}
