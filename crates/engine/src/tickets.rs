//! Tickets as evidence: a request that cites a ticket in a configured ticketing system
//! is checked against what that system's API says, before any decision.

use writ_config::Entitlement;
use writ_domain::{IdentityName, Ticket, TicketCheck, Timestamp};
use writ_itsm::{ItsmError, TicketInfo, ticket::parse_time};

use crate::{Engine, EngineError, ErrorCode};

/// Why a ticket that must be approved in its system (`approval_required`) is not yet.
pub(crate) fn unapproved(info: &TicketInfo, config: &writ_config::Itsm) -> Option<String> {
    (config.approval_required && info.approval.as_deref() != Some("approved")).then(|| {
        format!(
            "ticket {} is not approved in {} (approval: {:?})",
            info.key,
            config.name,
            info.approval.as_deref().unwrap_or("none")
        )
    })
}

pub(crate) fn itsm_error(error: ItsmError) -> EngineError {
    match error {
        ItsmError::NotFound { .. } => EngineError::new(ErrorCode::UnknownTicket, error.to_string()),
        ItsmError::BadKey(_) => EngineError::new(ErrorCode::BadTicketKey, error.to_string()),
        ItsmError::Unreachable { .. }
        | ItsmError::Refused { .. }
        | ItsmError::RateLimited { .. }
        | ItsmError::Malformed { .. }
        | ItsmError::WriteIgnored { .. } => EngineError::new(
            ErrorCode::ItsmUnavailable,
            format!("{error}; nothing was recorded, try again"),
        ),
    }
}

/// A cited ticket, checked.
pub(crate) struct CheckedTicket {
    pub ticket: Option<Ticket>,
    /// The grant must end by then (the ticket's change window).
    pub ends_by: Option<Timestamp>,
    /// The grant lasts at most this long (the duration the ticket asks for).
    pub lasts_at_most_seconds: Option<i64>,
}

impl Engine {
    /// Reads the ticket from its system and checks it may back a request by `requester`:
    /// it exists, is in an allowed state, `requester` is its requester or assignee, and
    /// its change window (if any) has not ended. A ticket from a system writ does not
    /// know is kept as a reference, unverified, unless the entitlement requires a ticket.
    pub(crate) async fn check_ticket(
        &self,
        requester: &IdentityName,
        subject: &IdentityName,
        entitlement: &Entitlement,
        ticket: Option<Ticket>,
        prefetched: Option<TicketInfo>,
        now: Timestamp,
    ) -> Result<CheckedTicket, EngineError> {
        let Some(mut ticket) = ticket else {
            if entitlement.ticket_required {
                return Err(EngineError::new(
                    ErrorCode::TicketRequired,
                    format!(
                        "{} requires a ticket from a configured ticketing system",
                        entitlement.id
                    ),
                ));
            }
            return Ok(CheckedTicket {
                ticket: None,
                ends_by: None,
                lasts_at_most_seconds: None,
            });
        };
        // Whatever a caller claims about the ticket, only writ's own reading counts.
        ticket.verified = None;
        let Some((config, system)) = self.itsm.systems.get(&ticket.system) else {
            if entitlement.ticket_required {
                return Err(EngineError::new(
                    ErrorCode::TicketRequired,
                    format!(
                        "{} requires a ticket from a configured ticketing system; {:?} is not one",
                        entitlement.id, ticket.system
                    ),
                ));
            }
            return Ok(CheckedTicket {
                ticket: Some(ticket),
                ends_by: None,
                lasts_at_most_seconds: None,
            });
        };
        let info = match prefetched.filter(|info| info.key == ticket.key) {
            Some(info) => info,
            None => system.ticket(&ticket.key).await.map_err(itsm_error)?,
        };
        let account = self
            .identity(requester.as_str())
            .and_then(|identity| identity.accounts.get(&ticket.system).cloned());
        Self::check_ticket_facts(&info, config, now)?;
        let named = |field: &Option<String>| account.is_some() && *field == account;
        if !(named(&info.requester) || named(&info.assignee)) {
            return Err(EngineError::new(
                ErrorCode::TicketMismatch,
                format!(
                    "{requester} is neither the requester nor the assignee of {} {}{}",
                    ticket.system,
                    info.key,
                    if account.is_none() {
                        format!(
                            " (no account on {} is configured for {requester}: set accounts.{} on the identity)",
                            ticket.system, ticket.system
                        )
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        // A ticket backs the request it describes: where the ticketing system's fields
        // say which entitlement and for whom, the request must say the same; the
        // duration it asks for caps the grant.
        let mismatch = |what: &str, ticket_says: &str, request_says: &str| {
            let what = if what.is_empty() {
                String::new()
            } else {
                format!("{what} ")
            };
            EngineError::new(
                ErrorCode::TicketMismatch,
                format!(
                    "{} {} is for {what}{ticket_says:?}, not {request_says:?}",
                    ticket.system, info.key
                ),
            )
        };
        if let Some(named) = info
            .entitlement
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            && named != entitlement.id.as_str()
        {
            return Err(mismatch("entitlement", named, entitlement.id.as_str()));
        }
        if let Some(named) = info
            .subject
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            && named != subject.as_str()
        {
            return Err(mismatch("subject", named, subject.as_str()));
        }
        // Without a mapped subject, the ticket is for its beneficiary: it backs access for
        // them, or a service or agent they own, and for nobody else.
        if info.subject.is_none()
            && let Some(account) = &info.beneficiary
        {
            let for_whom = self.config.identity_by_account(&ticket.system, account);
            let backs = for_whom.is_some_and(|beneficiary| {
                beneficiary.name == *subject
                    || self
                        .identity(subject.as_str())
                        .and_then(|s| s.owner.clone())
                        .as_ref()
                        == Some(&beneficiary.name)
            });
            if !backs {
                let whom = for_whom.map_or_else(
                    || format!("{} user {account:?}", ticket.system),
                    |b| b.name.to_string(),
                );
                return Err(mismatch("", &whom, subject.as_str()));
            }
        }
        let lasts_at_most_seconds = info
            .duration
            .as_deref()
            .map(|text| crate::intake::ticket_duration(&info.key, text))
            .transpose()?;
        let window_end = Self::window_end(&info)?;
        ticket.key = info.key.clone();
        ticket.verified = Some(TicketCheck {
            id: info.id.clone(),
            state: info.state.clone(),
            ticket_type: info.ticket_type.clone(),
            window_end,
            approval: info.approval.clone(),
            checked_at: now,
        });
        Ok(CheckedTicket {
            ticket: Some(ticket),
            ends_by: window_end,
            lasts_at_most_seconds,
        })
    }

    /// State, approval and change window: the checks that do not depend on who asks.
    pub(crate) fn check_ticket_facts(
        info: &TicketInfo,
        config: &writ_config::Itsm,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        if !config
            .request_states
            .iter()
            .any(|state| state == &info.state)
        {
            return Err(EngineError::new(
                ErrorCode::TicketState,
                format!(
                    "ticket {} is {:?}; a request needs it to be one of {:?}",
                    info.key, info.state, config.request_states
                ),
            ));
        }
        if let Some(problem) = unapproved(info, config) {
            return Err(EngineError::new(ErrorCode::TicketNotApproved, problem));
        }
        if let Some(end) = Self::window_end(info)?
            && end <= now
        {
            return Err(EngineError::new(
                ErrorCode::ChangeWindowEnded,
                format!("the change window of ticket {} ended at {end}", info.key),
            ));
        }
        Ok(())
    }

    fn window_end(info: &TicketInfo) -> Result<Option<Timestamp>, EngineError> {
        info.window_end
            .as_deref()
            .map(|text| {
                parse_time(text).ok_or_else(|| {
                    EngineError::new(
                        ErrorCode::BadChangeWindow,
                        format!(
                            "ticket {} has a change window end writ cannot read: {text:?}",
                            info.key
                        ),
                    )
                })
            })
            .transpose()
    }
}
