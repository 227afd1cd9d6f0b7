//! Tickets that become requests: a signed webhook names a ticket, writ re-reads the
//! ticket from the ticketing system, checks it, and makes the request its requester
//! would have made — once per ticket, whatever the number of deliveries.

use crate::IssuedCredential;
use std::collections::HashMap;

use serde::Serialize;
use writ_domain::{Request, RequestId, Ticket, parse_duration_seconds};
use writ_itsm::TicketInfo;
use writ_itsm::webhook;

use crate::tickets::itsm_error;
use crate::{Caller, Engine, EngineError, ErrorCode, ErrorKind, NewRequest};

/// How a request is being made, beyond what its caller asked.
#[derive(Debug, Default)]
pub(crate) struct Intake {
    /// The ticket as just read from its system, so it is not read twice.
    pub prefetched: Option<TicketInfo>,
    /// (system, delivery id): recorded with the request, so a replay changes nothing.
    pub delivery: Option<(String, String)>,
    /// The subject is whom the ticket is for, as its ticketing system says: the
    /// requester may ask for them without owning them.
    pub beneficiary: Option<writ_domain::IdentityName>,
    /// An AuthZEN access request: where it came from, and its task, recorded with the
    /// request (the task's `request` is set to the request's id there).
    pub authzen: Option<(writ_domain::AuthzenOrigin, writ_store::AuthzenTask)>,
}

pub(crate) enum Created {
    /// The request, and the credential issued for it there and then, if any.
    Request(Box<Request>, Option<IssuedCredential>),
    /// The ticket already backs this request.
    TicketTaken(RequestId),
    /// This delivery was acted on before.
    DeliverySeen,
    /// This AuthZEN denial, or Idempotency-Key, made this task before.
    TaskSeen(writ_store::AuthzenTask),
}

/// What writ did with an authentic delivery.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WebhookAction {
    /// A request was made from the ticket (`request` shows its decision).
    Created,
    /// The delivery was seen before, or the ticket already backs a request.
    Duplicate,
    /// The ticket is not (yet) in a state that may back a request.
    Ignored,
    /// The ticket was closed while its access was active: the access was revoked.
    Revoked,
    /// The ticket was closed while its request was pending approval: the request was
    /// cancelled.
    Cancelled,
    /// Approvals recorded in the ticketing system were taken as approvals of the
    /// request (`reason` says which counted and which did not, and why).
    Approvals,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookOutcome {
    pub action: WebhookAction,
    pub ticket: String,
    /// The request the ticket backs, when there is one.
    pub request_id: Option<RequestId>,
    pub request: Option<Request>,
    pub reason: Option<String>,
}

/// Seconds, or a duration such as "4h". Jira's Number fields come back as decimals
/// (`600.0`): a whole number of seconds written so is accepted too.
pub(crate) fn ticket_duration(key: &str, text: &str) -> Result<i64, EngineError> {
    let whole_decimal = || {
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && n.fract() == 0.0 && *n >= 1.0 && *n <= 1e15)
            // Checked just above: finite, whole and in range.
            .map(|n| n as i64)
            .ok_or(())
    };
    text.trim()
        .parse::<i64>()
        .map_err(|_| ())
        .and_then(|n| if n > 0 { Ok(n) } else { Err(()) })
        .or_else(|_| whole_decimal())
        .or_else(|_| parse_duration_seconds(text).map_err(|_| ()))
        .map_err(|_| {
            EngineError::new(
                ErrorCode::BadTicketDuration,
                format!("ticket {key} asks for a duration writ cannot read: {text:?}"),
            )
        })
}

impl Engine {
    /// Takes a webhook delivery from the ticketing system `system`. `headers` are keyed
    /// by lower-case name; `body` is the raw body the signature covers.
    pub async fn take_webhook(
        &self,
        system: &str,
        headers: &HashMap<String, String>,
        body: &[u8],
    ) -> Result<WebhookOutcome, EngineError> {
        let Some((config, _)) = self.itsm.systems.get(system) else {
            return Err(EngineError::not_found("ticketing system", system));
        };
        let now = self.clock.now();
        let delivery = match webhook::verify(
            config.kind,
            &config.webhook_secret,
            config.webhook_max_age_seconds,
            headers,
            body,
            now,
        ) {
            Ok(delivery) => delivery,
            Err(error) => {
                let claimed = webhook::claimed_delivery(config.kind, headers, body);
                self.record_rejected_delivery(system, &claimed, &error.to_string())
                    .await?;
                tracing::warn!(system, %error, "webhook rejected");
                return Err(EngineError::new(ErrorCode::BadWebhook, error.to_string()));
            }
        };
        self.take_ticket(system, &delivery.id, &delivery.ticket_key)
            .await
    }

    /// Acts on ticket `ticket_key` of `system` as a delivery `delivery_id` about it asks
    /// (a webhook, or the poller finding it): once per delivery id, and at most one
    /// request per ticket.
    pub(crate) async fn take_ticket(
        &self,
        system: &str,
        delivery_id: &str,
        ticket_key: &str,
    ) -> Result<WebhookOutcome, EngineError> {
        let Some((config, tickets)) = self.itsm.systems.get(system) else {
            return Err(EngineError::not_found("ticketing system", system));
        };
        let outcome = |action, request_id, reason: Option<String>| WebhookOutcome {
            action,
            ticket: ticket_key.to_string(),
            request_id,
            request: None,
            reason,
        };
        if self.store.delivery_seen(system, delivery_id).await? {
            return Ok(outcome(
                WebhookAction::Duplicate,
                None,
                Some(format!("delivery {delivery_id} was taken before")),
            ));
        }
        // The delivery only named the ticket; what counts is what the system says now.
        let info = tickets.ticket(ticket_key).await.map_err(itsm_error)?;
        if let Some(existing) = self.store.ticket_request(system, &info.key).await? {
            if info.closed
                && let Some((action, reason)) = self.close_early(system, &info, existing).await?
            {
                return Ok(outcome(action, Some(existing), Some(reason)));
            }
            if !info.closed
                && let Some(reason) = self.take_itsm_approvals(system, &info, existing).await?
            {
                return Ok(outcome(
                    WebhookAction::Approvals,
                    Some(existing),
                    Some(reason),
                ));
            }
            return Ok(outcome(
                WebhookAction::Duplicate,
                Some(existing),
                Some(format!(
                    "ticket {} already backs request {existing}",
                    info.key
                )),
            ));
        }
        if let Some(problem) = crate::tickets::unapproved(&info, config) {
            return Ok(outcome(
                WebhookAction::Ignored,
                None,
                Some(format!("{problem}; a request is made once it is")),
            ));
        }
        if !config.request_states.contains(&info.state) {
            return Ok(outcome(
                WebhookAction::Ignored,
                None,
                Some(format!(
                    "ticket {} is {:?}; requests are made from tickets in {:?}",
                    info.key, info.state, config.request_states
                )),
            ));
        }
        let requester_id = info.requester.clone().unwrap_or_default();
        let requester = self
            .config
            .identity_by_account(system, &requester_id)
            .ok_or_else(|| {
                EngineError::new(ErrorCode::UnknownRequester,
                    format!(
                        "the requester of ticket {} ({system} user {requester_id:?}) is not a writ identity; set accounts.{system} on the identity",
                        info.key
                    ),
                )
            })?;
        // Access goes to whom the ticket is for (its beneficiary, mapped like the
        // requester), unless a mapped field names the identity outright.
        let beneficiary = match (&info.subject, &info.beneficiary) {
            (Some(_), _) | (None, None) => None,
            (None, Some(account)) => Some(
                self.config
                    .identity_by_account(system, account)
                    .ok_or_else(|| {
                        EngineError::new(ErrorCode::UnknownSubject,
                            format!(
                                "ticket {} is for {system} user {account:?}, who is not a writ identity; set accounts.{system} on the identity",
                                info.key
                            ),
                        )
                    })?
                    .name
                    .clone(),
            ),
        };
        let entitlement = info.entitlement.clone().ok_or_else(|| {
            EngineError::new(
                ErrorCode::MissingEntitlement,
                format!(
                    "ticket {} does not name an entitlement (field {})",
                    info.key, config.fields.entitlement
                ),
            )
        })?;
        let duration_seconds = info
            .duration
            .as_deref()
            .map(|text| ticket_duration(&info.key, text))
            .transpose()?;
        let justification = info
            .justification
            .clone()
            .filter(|j| !j.trim().is_empty())
            .unwrap_or_else(|| format!("{}: {}", info.key, info.summary));
        let caller = Caller::new(requester.name.clone(), requester.kind);
        let new = NewRequest {
            entitlement,
            subject: info
                .subject
                .clone()
                .or_else(|| beneficiary.as_ref().map(ToString::to_string)),
            duration_seconds,
            justification,
            ticket: Some(Ticket {
                system: system.to_string(),
                key: info.key.clone(),
                verified: None,
            }),
            on_behalf_of: None,
            extends: None,
        };
        // Approvals are often given in the ticketing system before the ticket reaches a
        // requesting state (and no later delivery comes): they count from the start.
        let approvals_of = info.clone();
        let intake = Intake {
            prefetched: Some(info),
            delivery: Some((system.to_string(), delivery_id.to_string())),
            beneficiary,
            authzen: None,
        };
        Ok(
            match self.create_request_with(&caller, new, intake).await? {
                Created::Request(request, _) => {
                    let (request, reason) = self
                        .count_earlier_approvals(system, &approvals_of, *request)
                        .await?;
                    WebhookOutcome {
                        action: WebhookAction::Created,
                        ticket: ticket_key.to_string(),
                        request_id: Some(request.id),
                        request: Some(request),
                        reason,
                    }
                }
                Created::TicketTaken(existing) => outcome(
                    WebhookAction::Duplicate,
                    Some(existing),
                    Some("the ticket already backs a request".into()),
                ),
                Created::DeliverySeen => outcome(
                    WebhookAction::Duplicate,
                    None,
                    Some(format!("delivery {delivery_id} was taken before")),
                ),
                Created::TaskSeen(_) => {
                    return Err(EngineError::new(
                        ErrorCode::IntakeOutcome,
                        "a webhook came back as an AuthZEN task",
                    ));
                }
            },
        )
    }

    /// A request just made from a ticket that waits for approval: the approvals the
    /// ticketing system already holds count now. The request is recorded either way;
    /// approvals that cannot be read now are read on the ticket's next delivery.
    async fn count_earlier_approvals(
        &self,
        system: &str,
        info: &TicketInfo,
        request: Request,
    ) -> Result<(Request, Option<String>), EngineError> {
        if request.state != writ_domain::lifecycle::RequestState::PendingApproval {
            return Ok((request, None));
        }
        let counted = match self.take_itsm_approvals(system, info, request.id).await {
            Ok(counted) => counted,
            Err(error) => {
                tracing::warn!(ticket = %info.key, %error, "approvals not read yet");
                Some(format!("approvals not read yet: {}", error.message))
            }
        };
        Ok((self.request(request.id).await?, counted))
    }

    /// A ticket closed in its system before the request it backs has ended: a request
    /// still pending approval is cancelled, active access is revoked. Returns what was
    /// done and why, or `None` when there was nothing left to end.
    async fn close_early(
        &self,
        system: &str,
        info: &TicketInfo,
        request_id: RequestId,
    ) -> Result<Option<(WebhookAction, String)>, EngineError> {
        let Some(request) = self.store.request(request_id).await? else {
            return Ok(None);
        };
        if request.state == writ_domain::lifecycle::RequestState::PendingApproval {
            let reason = format!(
                "ticket {} was closed in {system} ({}) before the request was approved",
                info.key, info.state
            );
            let cancelled = self
                .cancel_pending(request_id, &crate::revocation::TICKET_ACTOR, reason.clone())
                .await?;
            return Ok(cancelled.then_some((WebhookAction::Cancelled, reason)));
        }
        let Some(grant_id) = request.grant_id else {
            return Ok(None);
        };
        let reason = format!(
            "ticket {} was closed in {system} ({}) while the access was active",
            info.key, info.state
        );
        let revoked = self
            .revoke_for_closed_ticket(grant_id, reason.clone())
            .await?;
        if revoked.is_some() {
            tracing::info!(ticket = %info.key, grant = %grant_id, "ticket closed early; access revoked");
        }
        Ok(revoked.map(|_| (WebhookAction::Revoked, reason)))
    }

    /// Approvals given in the ticketing system, for a request still pending approval.
    /// Each approver counts only as writ's own approval would: a writ identity that an
    /// approve policy permits, neither requester nor subject, once. Returns a summary,
    /// or `None` when the request is not pending.
    async fn take_itsm_approvals(
        &self,
        system: &str,
        info: &TicketInfo,
        request_id: RequestId,
    ) -> Result<Option<String>, EngineError> {
        let Some(request) = self.store.request(request_id).await? else {
            return Ok(None);
        };
        if request.state != writ_domain::lifecycle::RequestState::PendingApproval {
            return Ok(None);
        }
        let Some((_, tickets)) = self.itsm.systems.get(system) else {
            return Ok(None);
        };
        let approvers = tickets
            .approvers(&info.key, &info.id)
            .await
            .map_err(itsm_error)?;
        let mut counted = Vec::new();
        let mut refused = Vec::new();
        for account in approvers {
            let Some(identity) = self.config.identity_by_account(system, &account) else {
                refused.push(format!("{account} (not a writ identity)"));
                continue;
            };
            if request.has_approved(&identity.name) {
                continue;
            }
            let caller = Caller::new(identity.name.clone(), identity.kind);
            let comment = format!("approved in {system} on ticket {}", info.key);
            match self
                .approve_via(
                    &caller,
                    request_id,
                    comment,
                    crate::lifecycle::ApprovedVia::Itsm(system),
                )
                .await
            {
                Ok(_) => counted.push(identity.name.to_string()),
                Err(error)
                    if matches!(error.kind(), ErrorKind::Forbidden | ErrorKind::Conflict) =>
                {
                    tracing::warn!(ticket = %info.key, approver = %identity.name, %error, "ITSM approval not counted");
                    refused.push(format!("{} ({})", identity.name, error.code));
                }
                Err(error) => return Err(error),
            }
        }
        Ok(Some(format!(
            "counted: [{}]; not counted: [{}]",
            counted.join(", "),
            refused.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::ticket_duration;

    #[test]
    fn ticket_durations_as_ticketing_systems_send_them() {
        assert_eq!(ticket_duration("T-1", "600"), Ok(600));
        assert_eq!(
            ticket_duration("T-1", "600.0"),
            Ok(600),
            "a Jira Number field"
        );
        assert_eq!(ticket_duration("T-1", "4h"), Ok(14_400));
        for bad in ["600.5", "-5", "0.0", "NaN", "inf", "4 hours"] {
            assert!(ticket_duration("T-1", bad).is_err(), "{bad}");
        }
    }
}
