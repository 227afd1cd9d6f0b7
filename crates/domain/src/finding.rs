//! Findings: differences reconciliation found between a target and writ's grants.
//!
//! A finding is `open` while the difference stands and nobody has accepted it,
//! `accepted` while an exception (with an owner and an expiry) covers it, and
//! `resolved` once the difference is gone, by writ's action or otherwise. An expired
//! exception puts the finding back to `open`. Every change is ledgered like a grant's.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::lifecycle::IllegalTransition;
use crate::{EntitlementId, FindingId, GrantId, IdentityName, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The target holds the access and no grant explains it (a manual or out-of-band grant).
    Unmanaged,
    /// The access outlived its grant: the grant was revoked, yet the target holds it.
    Lingering,
    /// An active grant's access is not on the target.
    Missing,
    /// A live grant that policy, decided again, no longer permits, on an entitlement
    /// whose owners review such grants (`on_policy_change = "review"`) instead of writ
    /// revoking them. Not drift: reconciliation leaves it alone.
    NotPermitted,
    /// What the entitlement's role gives on the target changed since the active grant
    /// was approved (another role nested in it, privileges added, superuser reached):
    /// the finding carries the difference. Reported; the access itself is untouched.
    EntitlementChanged,
}

/// What reconciliation does about a kind of finding on an entitlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DriftAction {
    /// Record the finding; change nothing on the target.
    Report,
    /// Remove the access from the target (unmanaged, lingering).
    Revoke,
    /// Put the grant's access back on the target (missing).
    Reapply,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FindingState {
    Open,
    /// Covered by an exception until it expires.
    Accepted,
    Resolved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingEvent {
    Accept,
    /// The exception expired while the difference still stands.
    Reopen,
    /// The difference is gone.
    Resolve,
}

/// An accepted finding: who answers for it, why, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Exception {
    pub owner: IdentityName,
    pub reason: String,
    pub expires_at: Timestamp,
    pub accepted_by: IdentityName,
    pub accepted_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Finding {
    pub id: FindingId,
    pub target: String,
    pub entitlement: EntitlementId,
    pub account: String,
    pub kind: FindingKind,
    pub state: FindingState,
    /// What reconciliation does about it (from the entitlement's configuration).
    pub action: DriftAction,
    /// The grant involved: the revoked one (lingering) or the active one (missing).
    pub grant_id: Option<GrantId>,
    pub first_seen_at: Timestamp,
    /// The current exception, or the last one once it expired.
    pub exception: Option<Exception>,
    pub resolved_at: Option<Timestamp>,
    /// How it was resolved: `revoked`, `reapplied` or `gone` (the target changed by itself).
    pub resolution: Option<String>,
    /// For `entitlement_changed`: what the role gives now that it did not when the
    /// grant was approved, and what it no longer gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<crate::EffectiveChange>,
}

/// A finding as the API shows it: the ledgered record plus what the latest passes saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FindingReport {
    #[serde(flatten)]
    pub finding: Finding,
    /// The last reconciliation pass that saw the difference.
    pub last_seen_at: Timestamp,
    /// Why writ's action on it (revoke, reapply) last failed, while it keeps trying.
    pub last_error: Option<String>,
}

impl FindingKind {
    pub const ALL: [Self; 5] = [
        Self::Unmanaged,
        Self::Lingering,
        Self::Missing,
        Self::NotPermitted,
        Self::EntitlementChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unmanaged => "unmanaged",
            Self::Lingering => "lingering",
            Self::Missing => "missing",
            Self::NotPermitted => "not_permitted",
            Self::EntitlementChanged => "entitlement_changed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// Whether it is a difference in who holds the access on a target (what
    /// reconciliation compares account by account).
    pub fn is_drift(self) -> bool {
        matches!(self, Self::Unmanaged | Self::Lingering | Self::Missing)
    }

    /// Whether `action` makes sense for this kind: access that should not be there can
    /// only be revoked, access that should be there only reapplied.
    pub fn allows(self, action: DriftAction) -> bool {
        match action {
            DriftAction::Report => true,
            DriftAction::Revoke => matches!(self, Self::Unmanaged | Self::Lingering),
            DriftAction::Reapply => self == Self::Missing,
        }
    }

    /// The default: report unmanaged, revoke lingering, reapply missing.
    pub fn default_action(self) -> DriftAction {
        match self {
            Self::Unmanaged => DriftAction::Report,
            Self::Lingering => DriftAction::Revoke,
            Self::Missing => DriftAction::Reapply,
            Self::NotPermitted | Self::EntitlementChanged => DriftAction::Report,
        }
    }
}

impl DriftAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Report => "report",
            Self::Revoke => "revoke",
            Self::Reapply => "reapply",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Report, Self::Revoke, Self::Reapply]
            .into_iter()
            .find(|action| action.as_str() == text)
    }
}

impl FindingState {
    pub const ALL: [Self; 3] = [Self::Open, Self::Accepted, Self::Resolved];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Accepted => "accepted",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }

    pub fn transition(self, event: FindingEvent) -> Result<Self, IllegalTransition> {
        use FindingEvent as E;
        match (self, event) {
            (Self::Open, E::Accept) => Ok(Self::Accepted),
            (Self::Accepted, E::Reopen) => Ok(Self::Open),
            (Self::Open | Self::Accepted, E::Resolve) => Ok(Self::Resolved),
            (from, event) => Err(IllegalTransition {
                kind: "finding",
                from: from.as_str().to_string(),
                event: format!("{event:?}").to_lowercase(),
            }),
        }
    }
}

macro_rules! display_as_str {
    ($($name:ty),*) => {$(
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(FindingKind, FindingState, DriftAction);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resolved_finding_stays_resolved() {
        for event in [
            FindingEvent::Accept,
            FindingEvent::Reopen,
            FindingEvent::Resolve,
        ] {
            assert!(FindingState::Resolved.transition(event).is_err());
        }
        assert!(FindingState::Open.transition(FindingEvent::Reopen).is_err());
        assert!(
            FindingState::Accepted
                .transition(FindingEvent::Accept)
                .is_err()
        );
        assert_eq!(
            FindingState::Accepted.transition(FindingEvent::Reopen),
            Ok(FindingState::Open)
        );
    }

    #[test]
    fn actions_fit_their_kinds() {
        for kind in FindingKind::ALL {
            assert!(kind.allows(kind.default_action()));
            assert!(kind.allows(DriftAction::Report));
            assert_eq!(FindingKind::parse(kind.as_str()), Some(kind));
        }
        assert!(!FindingKind::Missing.allows(DriftAction::Revoke));
        assert!(!FindingKind::Unmanaged.allows(DriftAction::Reapply));
    }

    fn finding(state: FindingState) -> Finding {
        Finding {
            id: "01a22634-7402-70a7-8637-000000000001".parse().expect("id"),
            target: "pg".into(),
            entitlement: "pg/read".parse().expect("entitlement"),
            account: "mallory".into(),
            kind: FindingKind::Unmanaged,
            state,
            action: DriftAction::Report,
            grant_id: None,
            first_seen_at: Timestamp::from_unix_micros(1_800_000_000_000_000),
            exception: None,
            resolved_at: None,
            resolution: None,
            change: None,
        }
    }

    fn event_kind(event: FindingEvent) -> crate::ledger::EventKind {
        use crate::ledger::EventKind as K;
        match event {
            FindingEvent::Accept => K::FindingAccepted,
            FindingEvent::Reopen => K::FindingReopened,
            FindingEvent::Resolve => K::FindingResolved,
        }
    }

    proptest::proptest! {
        /// Any sequence of events: the state machine and the ledger replay agree on
        /// every step, a resolved finding never moves again, and a ledger that records
        /// an illegal step is caught at that event.
        #[test]
        fn the_ledger_replays_exactly_the_legal_finding_changes(
            events in proptest::collection::vec(0..3u8, 0..20)
        ) {
            use crate::ledger::{ChainVerifier, EventKind, GENESIS_HASH, SystemActor, seal};
            let at = Timestamp::from_unix_micros(1_800_000_000_000_000);
            let mut verifier = ChainVerifier::default();
            let mut state = FindingState::Open;
            let mut prev = (0, GENESIS_HASH.to_string());
            let opened = seal(prev.0, &prev.1, at, &SystemActor::Reconciler.into(), EventKind::FindingOpened,
                &serde_json::json!({ "finding": finding(state) }));
            proptest::prop_assert!(verifier.push(opened.fields()).is_ok());
            prev = (opened.seq, opened.hash.clone());
            for code in events {
                let event = [FindingEvent::Accept, FindingEvent::Reopen, FindingEvent::Resolve][usize::from(code)];
                let next = state.transition(event);
                // Record the step the ledger would carry: the legal next state, or (for an
                // illegal step) the state a forger would claim.
                let claimed = next.clone().unwrap_or(match event {
                    FindingEvent::Accept => FindingState::Accepted,
                    FindingEvent::Reopen => FindingState::Open,
                    FindingEvent::Resolve => FindingState::Resolved,
                });
                let sealed = seal(prev.0, &prev.1, at, &SystemActor::Reconciler.into(), event_kind(event),
                    &serde_json::json!({ "finding": finding(claimed) }));
                let replayed = verifier.push(sealed.fields());
                proptest::prop_assert_eq!(replayed.is_ok(), next.is_ok(), "{:?} from {:?}", event, state);
                if next.is_err() {
                    proptest::prop_assert_eq!(replayed.err().and_then(|e| e.seq()), Some(sealed.seq));
                    break;
                }
                proptest::prop_assert!(state != FindingState::Resolved);
                state = claimed;
                prev = (sealed.seq, sealed.hash.clone());
            }
        }
    }
}
