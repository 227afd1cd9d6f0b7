//! The request and grant records, exactly as the API shows them and the ledger keeps them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::lifecycle::{GrantState, RequestState};
use crate::{EntitlementId, GrantId, IdentityName, RequestId, Timestamp};

/// The ticket a request cites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ticket {
    pub system: String,
    pub key: String,
    /// What writ read from the ticketing system when `system` is one configured in
    /// writ; absent for a ticket writ cannot check (then it is only a reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<TicketCheck>,
}

/// A ticket as writ found it in its ticketing system when the request was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TicketCheck {
    /// The id the system's API uses for the ticket (Jira issue id, ServiceNow sys_id).
    #[serde(default)]
    pub id: String,
    /// The ticket's state (Jira status name, ServiceNow state value).
    pub state: String,
    /// Jira issue type, ServiceNow table.
    pub ticket_type: String,
    /// The end of the ticket's change window; the grant ends no later.
    pub window_end: Option<Timestamp>,
    /// The ticket's own approval status, where the system keeps one (ServiceNow
    /// `approval`: `approved`, `requested`, `rejected`, `not requested`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    pub checked_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DecisionOutcome {
    Deny,
    Auto,
    Approval,
}

/// What policy said about a request, with everything needed to explain it later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decision {
    pub outcome: DecisionOutcome,
    pub approvals_required: u32,
    /// Ids of the determining policies.
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
    /// The longest duration policy allows, when a policy caps it.
    pub max_duration_seconds: Option<i64>,
    /// SHA-256 of the policy set that decided.
    pub policy_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Approval {
    pub approver: IdentityName,
    pub comment: String,
    pub at: Timestamp,
    /// Where it was given: `api` (the HTTP API, the CLI), `ui` (the web UI), or
    /// `itsm:<system>` (an approval taken from the ticket). Absent on approvals recorded
    /// before writ kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// What an entitlement was when a request for it was decided, from the configuration
/// in force: kept on the request so evidence does not depend on today's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntitlementFacts {
    pub target: String,
    /// The role or group the target grants.
    pub role: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub sensitivity: crate::Sensitivity,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Request {
    pub id: RequestId,
    pub state: RequestState,
    pub requester: IdentityName,
    pub subject: IdentityName,
    pub entitlement: EntitlementId,
    pub justification: String,
    pub ticket: Option<Ticket>,
    /// For a request made by an agent: the user it acts for. Never an approver of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<IdentityName>,
    /// For a request made under a token's RFC 8693 `act` chain: the agents of the chain,
    /// the requester (the current actor) first, then each prior actor. Empty when an
    /// agent named the user it acts for itself (`on_behalf_of`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<IdentityName>,
    pub requested_duration_seconds: i64,
    pub duration_seconds: i64,
    pub decision: Decision,
    pub approvals: Vec<Approval>,
    pub grant_id: Option<GrantId>,
    pub created_at: Timestamp,
    /// A request still pending approval at this time expires.
    pub pending_expires_at: Option<Timestamp>,
    /// Who rejected or cancelled it, and why.
    pub closed_by: Option<IdentityName>,
    pub close_comment: Option<String>,
    /// For a request to extend a live grant: that grant. Granted, it moves the grant's
    /// end later (`grant_id` is that grant) rather than making a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<GrantId>,
    /// What the subject held or had asked for when this was decided (policy's
    /// `context.holds`): kept so the decision can be explained and replayed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<EntitlementId>,
    /// For an agent's request: what the user it acts for held or had asked for when
    /// it was decided (their `context.holds` when policy is asked what they would get
    /// themselves).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_behalf_of_holds: Vec<EntitlementId>,
    /// Set when a break-glass activation made it (granted without approval, reviewed
    /// after the fact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<crate::BreakGlassMark>,
    /// What the entitlement's role really gave on its target when this was decided
    /// (policy's `context.effective`); absent where the target cannot tell or did not
    /// answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<crate::EffectiveAccess>,
    /// Set when an OpenID AuthZEN access request made it: the enforcement point's task
    /// and the denied evaluation it remedies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authzen: Option<AuthzenOrigin>,
    /// The entitlement's target, role and sensitivity when this was decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitlement_facts: Option<EntitlementFacts>,
}

/// Where an AuthZEN access request came from: its task handle, the evaluation whose
/// requestable denial it was bound to, and the resource and action asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthzenOrigin {
    pub task: String,
    pub evaluation_id: String,
    pub resource_type: String,
    pub resource_id: String,
    pub action: String,
}

/// The agents that acted for `on_behalf_of` in a request `requester` made under the
/// token chain `actors` (see [`Request::acting_agents`]).
pub fn acting_agents<'a>(
    requester: &'a IdentityName,
    on_behalf_of: Option<&IdentityName>,
    actors: &'a [IdentityName],
) -> &'a [IdentityName] {
    match (on_behalf_of, actors.is_empty()) {
        (None, _) => &[],
        (Some(_), true) => std::slice::from_ref(requester),
        (Some(_), false) => actors,
    }
}

impl Request {
    /// The agents that acted for `on_behalf_of` in making this request, the requester
    /// first: the token's chain, or the requesting agent alone; empty when nobody acted
    /// for anyone.
    pub fn acting_agents(&self) -> &[IdentityName] {
        acting_agents(&self.requester, self.on_behalf_of.as_ref(), &self.actors)
    }

    /// Whether it asked for access without an end.
    pub fn asks_permanent(&self) -> bool {
        self.requested_duration_seconds >= crate::PERMANENT_SECONDS
    }

    pub fn has_approved(&self, who: &IdentityName) -> bool {
        self.approvals
            .iter()
            .any(|approval| &approval.approver == who)
    }

    /// Approvals still needed before a grant is made.
    pub fn approvals_missing(&self) -> u32 {
        let have = u32::try_from(self.approvals.len()).unwrap_or(u32::MAX);
        self.decision.approvals_required.saturating_sub(have)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Grant {
    pub id: GrantId,
    pub request_id: RequestId,
    pub subject: IdentityName,
    pub entitlement: EntitlementId,
    /// The account on the target that receives the access.
    pub account: String,
    pub state: GrantState,
    /// When the target was observed to hold the access.
    pub granted_at: Option<Timestamp>,
    pub expires_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub revoke_reason: Option<RevokeReason>,
    pub revoked_by: Option<IdentityName>,
    /// When revocation was durably decided (the grant entered `revoking`).
    pub revoked_at: Option<Timestamp>,
    /// When the target was observed not to hold this grant's access any more.
    pub verified_at: Option<Timestamp>,
    /// Set when the target keeps the access because another active grant covers it.
    pub retained_by: Option<GrantId>,
    /// The grant is a login of its own (`account`), issued once to the caller and
    /// dropped at expiry, rather than the role given to the subject's account.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub credential: bool,
    /// What the entitlement's role really gave when the grant was decided: what was
    /// approved. Reconciliation reports `entitlement_changed` when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<crate::EffectiveAccess>,
    /// On a PEP-enforced entitlement with `max_uses`: the lease ends after this many
    /// allowed evaluations (as the entitlement said when it was granted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
    /// Granted without an end (`permanent`, where a `@permanent` policy permitted it):
    /// `expires_at` is a century away. It still ends early like any lease, and reports
    /// flag it (`writ report permanent-access`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub permanent: bool,
}

/// Why a lease ended. On the ledger and in the API as its text: `expired`, `expired
/// before it was observed on the target`, or what a person or writ (for a ticket) said.
/// A person cannot state a text writ reserves (`RevokeReason::is_reserved`), so an
/// early revocation never reads as an expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum RevokeReason {
    /// The lease ran its term.
    Expired,
    /// The lease ran out before the target was seen to hold the access.
    ExpiredUnobserved,
    /// The subject left: disabled, or no longer in the identity store.
    Leaver,
    /// Decided again under the policy in force (after a policy change, or the
    /// subject's groups or manager changed), the grant is no longer permitted.
    NoLongerPermitted,
    /// A lease with `max_uses` was used that many times (allowed evaluations).
    UsedUp,
    /// What was said when the lease was ended early.
    Stated(String),
}

impl RevokeReason {
    const EXPIRED: &str = "expired";
    const EXPIRED_UNOBSERVED: &str = "expired before it was observed on the target";
    const LEAVER: &str = "leaver";
    const NO_LONGER_PERMITTED: &str = "no_longer_permitted";
    const USED_UP: &str = "used_up";

    pub fn as_str(&self) -> &str {
        match self {
            Self::Expired => Self::EXPIRED,
            Self::ExpiredUnobserved => Self::EXPIRED_UNOBSERVED,
            Self::Leaver => Self::LEAVER,
            Self::NoLongerPermitted => Self::NO_LONGER_PERMITTED,
            Self::UsedUp => Self::USED_UP,
            Self::Stated(text) => text,
        }
    }

    /// Whether `text` is one writ records for itself, which nobody may state.
    pub fn is_reserved(text: &str) -> bool {
        !matches!(Self::from(text.trim().to_string()), Self::Stated(_))
    }

    /// Whether the lease ended because its term ran out.
    pub fn is_expiry(&self) -> bool {
        matches!(self, Self::Expired | Self::ExpiredUnobserved)
    }
}

impl From<String> for RevokeReason {
    fn from(text: String) -> Self {
        match text.as_str() {
            Self::EXPIRED => Self::Expired,
            Self::EXPIRED_UNOBSERVED => Self::ExpiredUnobserved,
            Self::LEAVER => Self::Leaver,
            Self::NO_LONGER_PERMITTED => Self::NoLongerPermitted,
            Self::USED_UP => Self::UsedUp,
            _ => Self::Stated(text),
        }
    }
}

impl From<RevokeReason> for String {
    fn from(reason: RevokeReason) -> String {
        match reason {
            RevokeReason::Stated(text) => text,
            other => other.as_str().to_string(),
        }
    }
}

impl fmt::Display for RevokeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_revoke_reason_reads_back_as_itself(text in ".{0,60}") {
            let reason = RevokeReason::from(text.clone());
            let json = serde_json::to_string(&reason).expect("serialises");
            prop_assert_eq!(serde_json::from_str::<RevokeReason>(&json).expect("parses"), reason.clone());
            prop_assert_eq!(reason.as_str(), text.as_str(), "its text is what was stored");
        }
    }

    #[test]
    fn only_writs_own_texts_are_reserved() {
        assert!(RevokeReason::is_reserved("expired"));
        assert!(RevokeReason::is_reserved(
            RevokeReason::ExpiredUnobserved.as_str()
        ));
        assert!(!RevokeReason::is_reserved("no longer needed"));
        assert!(!RevokeReason::is_reserved("Expired?"));
        assert!(RevokeReason::Expired.is_expiry());
        assert!(!RevokeReason::Stated("expired".into()).is_expiry());
    }
}
