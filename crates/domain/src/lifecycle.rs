//! The request and grant state machines. Every state change in writ goes through
//! `RequestState::transition` or `GrantState::transition`; illegal moves are errors.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Denied,
    PendingApproval,
    Approved,
    Rejected,
    Cancelled,
    /// Still pending approval when its approval window closed.
    Expired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GrantState {
    /// Recorded; not yet observed on the target.
    Pending,
    /// Observed on the target.
    Active,
    /// Revocation decided and recorded; the target is being changed.
    Revoking,
    /// The target was observed not to hold the access.
    Revoked,
    /// A revocation attempt failed; it is retried until it succeeds.
    Failed,
}

/// What happens to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestEvent {
    Approve,
    Reject,
    Cancel,
    Expire,
}

/// What happens to a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantEvent {
    /// The target was observed holding the access.
    Activate,
    /// Expiry or an explicit revoke: the lease ends.
    BeginRevoke,
    /// The target was observed not holding the access (or another grant keeps it).
    ConfirmRevoked,
    /// A revocation attempt failed.
    RevokeFailed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {event} a {kind} that is {from}")]
pub struct IllegalTransition {
    pub kind: &'static str,
    pub from: String,
    pub event: String,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Denied => "denied",
            Self::PendingApproval => "pending_approval",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Denied,
            Self::PendingApproval,
            Self::Approved,
            Self::Rejected,
            Self::Cancelled,
            Self::Expired,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }

    /// The state after `event`, or why `event` cannot happen now.
    pub fn transition(self, event: RequestEvent) -> Result<Self, IllegalTransition> {
        use RequestEvent as E;
        match (self, event) {
            (Self::PendingApproval, E::Approve) => Ok(Self::Approved),
            (Self::PendingApproval, E::Reject) => Ok(Self::Rejected),
            (Self::PendingApproval, E::Cancel) => Ok(Self::Cancelled),
            (Self::PendingApproval, E::Expire) => Ok(Self::Expired),
            (from, event) => Err(IllegalTransition {
                kind: "request",
                from: from.as_str().to_string(),
                event: format!("{event:?}").to_lowercase(),
            }),
        }
    }
}

impl GrantState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Revoking => "revoking",
            Self::Revoked => "revoked",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Active,
            Self::Revoking,
            Self::Revoked,
            Self::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }

    /// Whether this lease may still give access on the target.
    pub fn may_hold_access(self) -> bool {
        matches!(self, Self::Pending | Self::Active)
    }

    pub fn transition(self, event: GrantEvent) -> Result<Self, IllegalTransition> {
        use GrantEvent as E;
        match (self, event) {
            (Self::Pending, E::Activate) => Ok(Self::Active),
            (Self::Pending | Self::Active, E::BeginRevoke) => Ok(Self::Revoking),
            (Self::Revoking | Self::Failed, E::ConfirmRevoked) => Ok(Self::Revoked),
            (Self::Revoking | Self::Failed, E::RevokeFailed) => Ok(Self::Failed),
            (from, event) => Err(IllegalTransition {
                kind: "grant",
                from: from.as_str().to_string(),
                event: format!("{event:?}").to_lowercase(),
            }),
        }
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for GrantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pending_requests_move() {
        for state in [
            RequestState::Denied,
            RequestState::Approved,
            RequestState::Rejected,
            RequestState::Cancelled,
        ] {
            for event in [
                RequestEvent::Approve,
                RequestEvent::Reject,
                RequestEvent::Cancel,
                RequestEvent::Expire,
            ] {
                assert!(state.transition(event).is_err(), "{state} {event:?}");
            }
        }
        assert_eq!(
            RequestState::PendingApproval.transition(RequestEvent::Approve),
            Ok(RequestState::Approved)
        );
    }

    #[test]
    fn a_revoked_grant_never_comes_back() {
        for event in [
            GrantEvent::Activate,
            GrantEvent::BeginRevoke,
            GrantEvent::ConfirmRevoked,
            GrantEvent::RevokeFailed,
        ] {
            assert!(GrantState::Revoked.transition(event).is_err());
        }
        assert_eq!(
            GrantState::Failed.transition(GrantEvent::RevokeFailed),
            Ok(GrantState::Failed)
        );
        assert!(GrantState::Active.transition(GrantEvent::Activate).is_err());
    }

    #[test]
    fn states_round_trip_through_text() {
        for state in [
            GrantState::Pending,
            GrantState::Active,
            GrantState::Revoking,
            GrantState::Revoked,
            GrantState::Failed,
        ] {
            assert_eq!(GrantState::parse(state.as_str()), Some(state));
        }
        assert_eq!(
            RequestState::parse("pending_approval"),
            Some(RequestState::PendingApproval)
        );
    }
}
