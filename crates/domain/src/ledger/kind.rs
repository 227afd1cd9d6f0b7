use std::fmt;

/// Every kind of event writ records. A closed set: adding one is a code change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    RequestCreated,
    RequestApprovalRecorded,
    /// An approval taken back from a request still pending (its approver left).
    RequestApprovalVoided,
    RequestApproved,
    RequestRejected,
    RequestCancelled,
    RequestExpired,
    GrantCreated,
    GrantActivated,
    GrantRevokeStarted,
    GrantRevokeFailed,
    GrantRevoked,
    /// A revocation still failing `revocation.escalate_after` after it started.
    GrantRevokeEscalated,
    TokenIssued,
    /// A bearer token revoked before its expiry.
    TokenRevoked,
    /// A signed checkpoint of the ledger up to the event before it.
    LedgerCheckpoint,
    /// A webhook delivery that failed authentication (bad or missing signature, stale).
    ItsmWebhookRejected,
    /// Reconciliation found a difference between a target and the grants.
    FindingOpened,
    FindingAccepted,
    /// A finding's exception expired.
    FindingReopened,
    FindingResolved,
    /// A new policy set was loaded into a running writ (`writ policy reload`, SIGHUP).
    PolicyReloaded,
    /// Live grants decided again under the policy in force: one event per batch,
    /// each grant's outcome with the determining policies.
    GrantsRedecided,
    /// A live grant's end moved (sooner: the policy in force allows less time).
    GrantRescheduled,
    /// One use of a lease with `max_uses`: an evaluation it allowed, by which
    /// enforcement point, and how many uses are left.
    GrantUsed,
    /// A service or agent whose owner left (whom to tell, when it will be disabled).
    IdentityOrphaned,
    /// An orphan disabled: no new owner within `identities.orphan_grace`.
    IdentityOrphanDisabled,
    /// An orphan has an owner again.
    IdentityAdopted,
    /// A person or group pushed over SCIM: made, changed, deleted (the full record).
    DirectoryUserCreated,
    DirectoryUserUpdated,
    DirectoryUserDeleted,
    DirectoryGroupCreated,
    DirectoryGroupUpdated,
    DirectoryGroupDeleted,
    /// A break-glass profile used: its requests and grants were made in the same
    /// transaction, without approval; the record carries its review and deadline.
    BreakGlassActivated,
    /// A break-glass review passed its deadline without a sign-off.
    BreakGlassReviewOverdue,
    BreakGlassReviewSignedOff,
    /// The incident ticket a break-glass activation opened in a ticketing system.
    BreakGlassIncidentOpened,
    /// An access review campaign started (its scope, rule, default and deadline); its
    /// items follow in the same transaction.
    ReviewCampaignStarted,
    /// One piece of access put under review, with its reviewers.
    ReviewItemOpened,
    /// An item kept or revoked, by a reviewer or by the campaign's default.
    ReviewItemDecided,
    /// A reviewer reminded of the items still waiting for them.
    ReviewReminder,
    /// A campaign past its deadline, every item decided.
    ReviewCampaignClosed,
}

impl EventKind {
    pub const ALL: [EventKind; 43] = [
        Self::RequestCreated,
        Self::RequestApprovalRecorded,
        Self::RequestApprovalVoided,
        Self::RequestApproved,
        Self::RequestRejected,
        Self::RequestCancelled,
        Self::RequestExpired,
        Self::GrantCreated,
        Self::GrantActivated,
        Self::GrantRevokeStarted,
        Self::GrantRevokeFailed,
        Self::GrantRevoked,
        Self::GrantRevokeEscalated,
        Self::TokenIssued,
        Self::TokenRevoked,
        Self::LedgerCheckpoint,
        Self::ItsmWebhookRejected,
        Self::FindingOpened,
        Self::FindingAccepted,
        Self::FindingReopened,
        Self::FindingResolved,
        Self::PolicyReloaded,
        Self::GrantsRedecided,
        Self::GrantRescheduled,
        Self::GrantUsed,
        Self::IdentityOrphaned,
        Self::IdentityOrphanDisabled,
        Self::IdentityAdopted,
        Self::DirectoryUserCreated,
        Self::DirectoryUserUpdated,
        Self::DirectoryUserDeleted,
        Self::DirectoryGroupCreated,
        Self::DirectoryGroupUpdated,
        Self::DirectoryGroupDeleted,
        Self::BreakGlassActivated,
        Self::BreakGlassReviewOverdue,
        Self::BreakGlassReviewSignedOff,
        Self::BreakGlassIncidentOpened,
        Self::ReviewCampaignStarted,
        Self::ReviewItemOpened,
        Self::ReviewItemDecided,
        Self::ReviewReminder,
        Self::ReviewCampaignClosed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestCreated => "request.created",
            Self::RequestApprovalRecorded => "request.approval_recorded",
            Self::RequestApprovalVoided => "request.approval_voided",
            Self::RequestApproved => "request.approved",
            Self::RequestRejected => "request.rejected",
            Self::RequestCancelled => "request.cancelled",
            Self::RequestExpired => "request.expired",
            Self::GrantCreated => "grant.created",
            Self::GrantActivated => "grant.activated",
            Self::GrantRevokeStarted => "grant.revoke_started",
            Self::GrantRevokeFailed => "grant.revoke_failed",
            Self::GrantRevoked => "grant.revoked",
            Self::GrantRevokeEscalated => "grant.revoke_escalated",
            Self::TokenIssued => "token.issued",
            Self::TokenRevoked => "token.revoked",
            Self::LedgerCheckpoint => "ledger.checkpoint",
            Self::ItsmWebhookRejected => "itsm.webhook_rejected",
            Self::FindingOpened => "finding.opened",
            Self::FindingAccepted => "finding.accepted",
            Self::FindingReopened => "finding.reopened",
            Self::FindingResolved => "finding.resolved",
            Self::PolicyReloaded => "policy.reloaded",
            Self::GrantsRedecided => "grants.redecided",
            Self::GrantRescheduled => "grant.rescheduled",
            Self::GrantUsed => "grant.used",
            Self::IdentityOrphaned => "identity.orphaned",
            Self::IdentityOrphanDisabled => "identity.orphan_disabled",
            Self::IdentityAdopted => "identity.adopted",
            Self::DirectoryUserCreated => "directory.user_created",
            Self::DirectoryUserUpdated => "directory.user_updated",
            Self::DirectoryUserDeleted => "directory.user_deleted",
            Self::DirectoryGroupCreated => "directory.group_created",
            Self::DirectoryGroupUpdated => "directory.group_updated",
            Self::DirectoryGroupDeleted => "directory.group_deleted",
            Self::BreakGlassActivated => "break_glass.activated",
            Self::BreakGlassReviewOverdue => "break_glass.review_overdue",
            Self::BreakGlassReviewSignedOff => "break_glass.review_signed_off",
            Self::BreakGlassIncidentOpened => "break_glass.incident_opened",
            Self::ReviewCampaignStarted => "review.campaign_started",
            Self::ReviewItemOpened => "review.item_opened",
            Self::ReviewItemDecided => "review.item_decided",
            Self::ReviewReminder => "review.reminder",
            Self::ReviewCampaignClosed => "review.campaign_closed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// On the wire as its text (`request.created`).
impl serde::Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event kind {text:?}")))
    }
}
