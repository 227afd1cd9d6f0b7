//! Access review campaigns: a set of live access (active grants, accepted exceptions)
//! put in front of reviewers who decide, item by item, to keep it or revoke it. What
//! nobody decides by the deadline takes the campaign's default.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::lifecycle::IllegalTransition;
use crate::{
    CampaignId, EntitlementId, FindingId, GrantId, IdentityName, RequestId, ReviewItemId,
    Sensitivity, Timestamp,
};

/// Who reviews an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Assignment {
    /// The members of the entitlement's `owners` group.
    Owners,
    /// The subject's manager (for a service or agent: its owner's manager; for an
    /// exception: the manager of the user who answers for it).
    Manager,
    /// Whoever an `approve` policy permits to approve the grant's request now (an
    /// exception: its entitlement's owners).
    Approvers,
}

/// What a reviewer decides about an item, and what a campaign does with the items
/// nobody decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    Keep,
    Revoke,
}

/// What a campaign covers. Every condition that is set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignScope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitlement: Option<EntitlementId>,
    /// Entitlements of at least this sensitivity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub sensitivity: Option<Sensitivity>,
    /// Standing access only: held for at least this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than_days: Option<u32>,
    /// Active grants are reviewed.
    pub grants: bool,
    /// Accepted exceptions (findings covered by an exception) are reviewed.
    pub exceptions: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    Open,
    /// Past its deadline: every item decided, by a reviewer or by the default.
    Closed,
}

impl CampaignState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Open, Self::Closed]
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

impl fmt::Display for CampaignState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A review campaign as the API shows it and the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Campaign {
    pub id: CampaignId,
    pub name: String,
    pub scope: CampaignScope,
    pub assignment: Assignment,
    /// What an item nobody decided by `due_at` becomes.
    pub default_decision: ReviewDecision,
    /// Reviewers with items still pending are reminded this often (never when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_every_seconds: Option<i64>,
    pub created_by: IdentityName,
    pub created_at: Timestamp,
    pub due_at: Timestamp,
    pub state: CampaignState,
    /// How many items it opened.
    pub items: u64,
    pub closed_at: Option<Timestamp>,
}

impl Campaign {
    /// Whether this is a well-formed new campaign.
    pub fn is_new(&self) -> bool {
        self.state == CampaignState::Open
            && self.closed_at.is_none()
            && self.due_at > self.created_at
            && (self.scope.grants || self.scope.exceptions)
            && self.remind_every_seconds.is_none_or(|every| every > 0)
    }

    /// Whether `next` is this campaign closed, nothing else changed.
    pub fn may_close_as(&self, next: &Campaign) -> bool {
        self.state == CampaignState::Open
            && next.state == CampaignState::Closed
            && next.closed_at.is_some()
            && Campaign {
                state: CampaignState::Open,
                closed_at: None,
                ..next.clone()
            } == *self
    }
}

/// The access an item is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReviewedAccess {
    /// An active grant (revoked through the normal, verified revocation).
    Grant { grant: GrantId, request: RequestId },
    /// An accepted exception (revoking withdraws it and removes the access).
    Exception {
        finding: FindingId,
        /// The user who answers for the exception.
        owner: IdentityName,
        expires_at: Timestamp,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    Pending,
    Kept,
    Revoked,
}

impl ItemState {
    pub const ALL: [Self; 3] = [Self::Pending, Self::Kept, Self::Revoked];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Kept => "kept",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }

    /// Only a pending item is decided, and only once.
    pub fn transition(self, decision: ReviewDecision) -> Result<Self, IllegalTransition> {
        match (self, decision) {
            (Self::Pending, ReviewDecision::Keep) => Ok(Self::Kept),
            (Self::Pending, ReviewDecision::Revoke) => Ok(Self::Revoked),
            (from, decision) => Err(IllegalTransition {
                kind: "review item",
                from: from.as_str().to_string(),
                event: format!("{decision:?}").to_lowercase(),
            }),
        }
    }
}

impl fmt::Display for ItemState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piece of access under review and its decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewItem {
    pub id: ReviewItemId,
    pub campaign: CampaignId,
    pub access: ReviewedAccess,
    pub entitlement: EntitlementId,
    pub target: String,
    pub account: String,
    /// Whose access it is: the grant's subject; none for an exception (an account
    /// writ did not grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<IdentityName>,
    /// Since when it is held (granted, or accepted as an exception).
    pub since: Timestamp,
    /// The rule that assigned it (an exception under `approvers` is its owners').
    pub assignment: Assignment,
    /// Who may decide it. Empty under the `approvers` rule (whoever an `approve`
    /// policy permits when they decide), or when the rule found nobody but those it
    /// concerns: then only the campaign's default decides it.
    pub reviewers: Vec<IdentityName>,
    /// Whose own access it is, or who benefits from it (the subject, an agent's owner
    /// or the user it acts for, an exception's owner): never its reviewer.
    pub excluded: Vec<IdentityName>,
    pub state: ItemState,
    pub decided_by: Option<IdentityName>,
    pub decided_at: Option<Timestamp>,
    pub comment: Option<String>,
    /// Decided by the campaign's default at its deadline, not by a reviewer.
    pub by_default: bool,
}

impl ReviewItem {
    /// Whether this is a well-formed new item: pending, untouched, and nobody both
    /// its reviewer and one of those it concerns.
    pub fn is_new(&self) -> bool {
        self.state == ItemState::Pending
            && self.decided_by.is_none()
            && self.decided_at.is_none()
            && self.comment.is_none()
            && !self.by_default
            && !self.reviewers.iter().any(|r| self.excluded.contains(r))
            && (self.assignment != Assignment::Approvers || self.reviewers.is_empty())
    }

    /// Whether `next` is this item decided legally: once, by one of its reviewers (under
    /// the `approvers` rule, anyone the policy permitted) who is not excluded, or by the default with
    /// no reviewer; nothing else changed.
    pub fn may_become(&self, next: &ReviewItem) -> bool {
        let decision = match next.state {
            ItemState::Kept => ReviewDecision::Keep,
            ItemState::Revoked => ReviewDecision::Revoke,
            ItemState::Pending => return false,
        };
        let by_whom = match (&next.decided_by, next.by_default) {
            (Some(reviewer), false) => {
                !self.excluded.contains(reviewer)
                    && (self.assignment == Assignment::Approvers
                        || self.reviewers.contains(reviewer))
            }
            (None, true) => true,
            _ => false,
        };
        self.state.transition(decision) == Ok(next.state)
            && by_whom
            && next.decided_at.is_some()
            && ReviewItem {
                state: ItemState::Pending,
                decided_by: None,
                decided_at: None,
                comment: None,
                by_default: false,
                ..next.clone()
            } == *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn item() -> ReviewItem {
        let at = Timestamp::from_unix_micros(1_800_000_000_000_000);
        ReviewItem {
            id: "01a22634-7402-70a7-8637-000000000011".parse().expect("id"),
            campaign: "01a22634-7402-70a7-8637-000000000010".parse().expect("id"),
            access: ReviewedAccess::Grant {
                grant: "01a22634-7402-70a7-8637-000000000012".parse().expect("id"),
                request: "01a22634-7402-70a7-8637-000000000013".parse().expect("id"),
            },
            entitlement: "pg/admin".parse().expect("entitlement"),
            target: "pg".into(),
            account: "alice".into(),
            subject: Some("alice".parse().expect("name")),
            since: at,
            assignment: Assignment::Owners,
            reviewers: vec!["bob".parse().expect("name")],
            excluded: vec!["alice".parse().expect("name")],
            state: ItemState::Pending,
            decided_by: None,
            decided_at: None,
            comment: None,
            by_default: false,
        }
    }

    fn decided(by: Option<&str>, state: ItemState) -> ReviewItem {
        let mut next = item();
        next.state = state;
        next.decided_by = by.map(|name| name.parse().expect("name"));
        next.by_default = by.is_none();
        next.decided_at = Some(next.since.plus_seconds(60));
        next.comment = Some("looked".into());
        next
    }

    #[test]
    fn an_item_is_decided_once_by_its_reviewer_or_the_default() {
        let pending = item();
        assert!(pending.is_new());
        assert!(pending.may_become(&decided(Some("bob"), ItemState::Kept)));
        assert!(pending.may_become(&decided(None, ItemState::Revoked)));
        // Not by someone else, not by whose access it is, never twice.
        assert!(!pending.may_become(&decided(Some("carol"), ItemState::Kept)));
        assert!(!pending.may_become(&decided(Some("alice"), ItemState::Kept)));
        let kept = decided(Some("bob"), ItemState::Kept);
        assert!(!kept.may_become(&decided(Some("bob"), ItemState::Revoked)));
        assert!(ItemState::Kept.transition(ReviewDecision::Revoke).is_err());
    }

    #[test]
    fn the_approvers_rule_still_excludes_whose_access_it_is() {
        let by_policy = |mut item: ReviewItem| {
            item.assignment = Assignment::Approvers;
            item.reviewers.clear();
            item
        };
        let pending = by_policy(item());
        assert!(pending.is_new());
        assert!(pending.may_become(&by_policy(decided(Some("carol"), ItemState::Kept))));
        assert!(!pending.may_become(&by_policy(decided(Some("alice"), ItemState::Kept))));
        // Under a rule that names reviewers, an item nobody was found for is decided
        // by the default only.
        let mut unassigned = item();
        unassigned.reviewers.clear();
        let mut next = decided(Some("carol"), ItemState::Kept);
        next.reviewers.clear();
        assert!(!unassigned.may_become(&next));
    }

    #[test]
    fn a_decision_may_not_change_what_was_reviewed_or_who_reviews() {
        let pending = item();
        let mut next = decided(Some("bob"), ItemState::Revoked);
        next.account = "mallory".into();
        assert!(!pending.may_become(&next));
        let mut next = decided(Some("bob"), ItemState::Revoked);
        next.excluded.clear();
        assert!(!pending.may_become(&next));
        let mut reviewer_is_subject = item();
        reviewer_is_subject
            .reviewers
            .push("alice".parse().expect("name"));
        assert!(!reviewer_is_subject.is_new());
    }

    fn campaign_of(item: &ReviewItem) -> crate::Campaign {
        crate::Campaign {
            id: item.campaign,
            name: "q1".into(),
            scope: CampaignScope {
                grants: true,
                ..CampaignScope::default()
            },
            assignment: Assignment::Owners,
            default_decision: ReviewDecision::Revoke,
            remind_every_seconds: None,
            created_by: "ada".parse().expect("name"),
            created_at: item.since,
            due_at: item.since.plus_seconds(3600),
            state: CampaignState::Open,
            items: 1,
            closed_at: None,
        }
    }

    #[test]
    fn a_campaign_closes_only_with_every_item_decided() {
        use crate::ledger::{Actor, ChainVerifier, EventKind, GENESIS_HASH, seal};
        let item = item();
        let campaign = campaign_of(&item);
        let actor: Actor = "ada".parse().expect("actor");
        let at = item.since;
        let mut verifier = ChainVerifier::default();
        let mut prev = (0, GENESIS_HASH.to_string());
        let mut push = |kind, data: serde_json::Value| {
            let event = seal(prev.0, &prev.1, at, &actor, kind, &data);
            prev = (event.seq, event.hash.clone());
            verifier.push(event.fields())
        };
        push(
            EventKind::ReviewCampaignStarted,
            serde_json::json!({ "campaign": campaign }),
        )
        .expect("started");
        push(
            EventKind::ReviewItemOpened,
            serde_json::json!({ "review_item": item }),
        )
        .expect("opened");
        let mut closed = campaign.clone();
        closed.state = CampaignState::Closed;
        closed.closed_at = Some(at.plus_seconds(3600));
        let early = push(
            EventKind::ReviewCampaignClosed,
            serde_json::json!({ "campaign": closed }),
        )
        .expect_err("an item is pending");
        assert!(early.to_string().contains("1 item(s) undecided"), "{early}");
    }

    proptest::proptest! {
        /// Any sequence of decisions by anyone: the ledger replay accepts exactly the
        /// first one made by a named reviewer or by the default, and nothing after it.
        #[test]
        fn the_ledger_replays_exactly_the_legal_decisions(
            steps in proptest::collection::vec((0..4usize, proptest::bool::ANY), 1..6)
        ) {
            use crate::ledger::{Actor, ChainVerifier, EventKind, GENESIS_HASH, seal};
            let opened = item();
            let campaign = campaign_of(&opened);
            let actor: Actor = "ada".parse().expect("actor");
            let at = opened.since;
            let mut verifier = ChainVerifier::default();
            let started = seal(0, GENESIS_HASH, at, &actor, EventKind::ReviewCampaignStarted,
                &serde_json::json!({ "campaign": campaign }));
            proptest::prop_assert!(verifier.push(started.fields()).is_ok());
            let event = seal(started.seq, &started.hash, at, &actor, EventKind::ReviewItemOpened,
                &serde_json::json!({ "review_item": opened }));
            proptest::prop_assert!(verifier.push(event.fields()).is_ok());
            let mut prev = (event.seq, event.hash.clone());
            let mut done = false;
            // bob is the reviewer, alice whose access it is, carol nobody; None the default.
            let deciders = [Some("bob"), Some("alice"), Some("carol"), None];
            for (who, keep) in steps {
                let state = if keep { ItemState::Kept } else { ItemState::Revoked };
                let next = decided(deciders[who], state);
                let legal = !done && matches!(deciders[who], Some("bob") | None);
                let sealed = seal(prev.0, &prev.1, at, &actor, EventKind::ReviewItemDecided,
                    &serde_json::json!({ "review_item": next }));
                let replayed = verifier.push(sealed.fields());
                proptest::prop_assert_eq!(replayed.is_ok(), legal, "{:?} by {:?}", state, deciders[who]);
                if !legal {
                    proptest::prop_assert_eq!(replayed.err().and_then(|e| e.seq()), Some(sealed.seq));
                    break;
                }
                done = true;
                prev = (sealed.seq, sealed.hash.clone());
            }
        }
    }
}
