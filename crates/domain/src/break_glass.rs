//! Break-glass: emergency access granted at once, without approval, and reviewed after
//! the fact. An `Activation` is one use of a profile: the requests and grants it made,
//! and its mandatory review.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::lifecycle::IllegalTransition;
use crate::{ActivationId, IdentityName, RequestId, Timestamp};

/// Marks a request made by a break-glass activation (on the request, so on its ledger
/// events and in every read of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BreakGlassMark {
    pub profile: String,
    pub activation: ActivationId,
}

/// Where an activation's after-the-fact review stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    /// Waiting for a reviewer, within its deadline.
    Open,
    /// Past its deadline without a sign-off.
    Overdue,
    /// Someone other than the activator looked at it and signed it off.
    SignedOff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewEvent {
    /// The deadline passed.
    Lapse,
    SignOff,
}

impl ReviewState {
    pub const ALL: [Self; 3] = [Self::Open, Self::Overdue, Self::SignedOff];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Overdue => "overdue",
            Self::SignedOff => "signed_off",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }

    /// Whether the review still waits for a sign-off.
    pub fn is_pending(self) -> bool {
        self != Self::SignedOff
    }

    pub fn transition(self, event: ReviewEvent) -> Result<Self, IllegalTransition> {
        match (self, event) {
            (Self::Open, ReviewEvent::Lapse) => Ok(Self::Overdue),
            (Self::Open | Self::Overdue, ReviewEvent::SignOff) => Ok(Self::SignedOff),
            (from, event) => Err(IllegalTransition {
                kind: "break-glass review",
                from: from.as_str().to_string(),
                event: format!("{event:?}").to_lowercase(),
            }),
        }
    }
}

impl fmt::Display for ReviewState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One use of a break-glass profile, as the API shows it and the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Activation {
    pub id: ActivationId,
    pub profile: String,
    /// Who broke the glass; also the subject of every grant it made.
    pub activator: IdentityName,
    /// For an agent: the user it acted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<IdentityName>,
    pub justification: String,
    /// The requests it made, one per entitlement of the profile, each granted at once.
    pub requests: Vec<RequestId>,
    pub activated_at: Timestamp,
    /// The review must be signed off by then.
    pub review_due_at: Timestamp,
    pub review_state: ReviewState,
    /// When the review was recorded as overdue.
    pub overdue_at: Option<Timestamp>,
    pub reviewer: Option<IdentityName>,
    pub reviewed_at: Option<Timestamp>,
    pub review_comment: Option<String>,
}

impl Activation {
    /// Whether `next` is this activation after a legal step of its review: only the
    /// review moves, and only as its state machine allows.
    pub fn may_become(&self, next: &Activation) -> bool {
        let event = match next.review_state {
            ReviewState::Overdue => ReviewEvent::Lapse,
            ReviewState::SignedOff => ReviewEvent::SignOff,
            ReviewState::Open => return false,
        };
        self.review_state.transition(event) == Ok(next.review_state)
            && self.id == next.id
            && self.profile == next.profile
            && self.activator == next.activator
            && self.on_behalf_of == next.on_behalf_of
            && self.justification == next.justification
            && self.requests == next.requests
            && self.activated_at == next.activated_at
            && self.review_due_at == next.review_due_at
    }

    /// Whether this is a well-formed new activation: its review open and untouched, due
    /// after it began, with at least one request.
    pub fn is_new(&self) -> bool {
        self.review_state == ReviewState::Open
            && self.overdue_at.is_none()
            && self.reviewer.is_none()
            && self.reviewed_at.is_none()
            && self.review_comment.is_none()
            && self.review_due_at > self.activated_at
            && !self.requests.is_empty()
    }

    /// Whether the review is past its deadline without a sign-off at `now` (whether or
    /// not writ has recorded that yet).
    pub fn overdue(&self, now: Timestamp) -> bool {
        self.review_state == ReviewState::Overdue
            || (self.review_state == ReviewState::Open && now >= self.review_due_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn activation(state: ReviewState) -> Activation {
        let at = Timestamp::from_unix_micros(1_800_000_000_000_000);
        Activation {
            id: "01a22634-7402-70a7-8637-000000000001".parse().expect("id"),
            profile: "db-outage".into(),
            activator: "alice".parse().expect("name"),
            on_behalf_of: None,
            justification: "primary is down".into(),
            requests: vec!["01a22634-7402-70a7-8637-000000000002".parse().expect("id")],
            activated_at: at,
            review_due_at: at.plus_seconds(3600),
            review_state: state,
            overdue_at: None,
            reviewer: None,
            reviewed_at: None,
            review_comment: None,
        }
    }

    #[test]
    fn a_signed_off_review_never_moves_and_nothing_reopens_one() {
        for event in [ReviewEvent::Lapse, ReviewEvent::SignOff] {
            assert!(ReviewState::SignedOff.transition(event).is_err());
        }
        assert!(ReviewState::Overdue.transition(ReviewEvent::Lapse).is_err());
        let open = activation(ReviewState::Open);
        assert!(!open.may_become(&activation(ReviewState::Open)));
        assert!(open.is_new());
    }

    #[test]
    fn a_review_step_may_not_change_what_was_activated() {
        let open = activation(ReviewState::Open);
        let mut signed = activation(ReviewState::SignedOff);
        assert!(open.may_become(&signed));
        signed.requests.clear();
        assert!(!open.may_become(&signed));
        let mut later = activation(ReviewState::Overdue);
        later.review_due_at = later.review_due_at.plus_seconds(1);
        assert!(!open.may_become(&later));
    }

    #[test]
    fn overdue_counts_from_the_deadline_even_before_it_is_recorded() {
        let open = activation(ReviewState::Open);
        assert!(!open.overdue(open.activated_at));
        assert!(open.overdue(open.review_due_at));
        assert!(!activation(ReviewState::SignedOff).overdue(open.review_due_at));
    }

    fn request_made_by(activation: &Activation) -> crate::Request {
        crate::Request {
            id: activation.requests[0],
            state: crate::lifecycle::RequestState::Approved,
            requester: activation.activator.clone(),
            subject: activation.activator.clone(),
            entitlement: "pg/admin".parse().expect("entitlement"),
            justification: activation.justification.clone(),
            ticket: None,
            on_behalf_of: None,
            actors: Vec::new(),
            on_behalf_of_holds: Vec::new(),
            requested_duration_seconds: 3600,
            duration_seconds: 3600,
            decision: crate::Decision {
                outcome: crate::DecisionOutcome::Auto,
                approvals_required: 0,
                policies: vec!["oncall".into()],
                reasons: Vec::new(),
                max_duration_seconds: None,
                policy_hash: "0".repeat(64),
            },
            approvals: Vec::new(),
            grant_id: None,
            created_at: activation.activated_at,
            pending_expires_at: None,
            closed_by: None,
            close_comment: None,
            extends: None,
            holds: Vec::new(),
            break_glass: Some(BreakGlassMark {
                profile: activation.profile.clone(),
                activation: activation.id,
            }),
            effective: None,
            authzen: None,
            entitlement_facts: None,
        }
    }

    fn event_kind(event: ReviewEvent) -> crate::ledger::EventKind {
        match event {
            ReviewEvent::Lapse => crate::ledger::EventKind::BreakGlassReviewOverdue,
            ReviewEvent::SignOff => crate::ledger::EventKind::BreakGlassReviewSignedOff,
        }
    }

    #[test]
    fn an_activation_replays_only_after_the_requests_it_made() {
        use crate::ledger::{Actor, ChainVerifier, EventKind, GENESIS_HASH, seal};
        let open = activation(ReviewState::Open);
        let actor: Actor = "alice".parse().expect("actor");
        let activated = |prev: (i64, &str)| {
            seal(
                prev.0,
                prev.1,
                open.activated_at,
                &actor,
                EventKind::BreakGlassActivated,
                &serde_json::json!({ "activation": open }),
            )
        };
        // Alone, it names requests nobody made.
        let mut verifier = ChainVerifier::default();
        let error = verifier
            .push(activated((0, GENESIS_HASH)).fields())
            .expect_err("refused");
        assert!(error.to_string().contains("is not one it made"), "{error}");
        // After them, it replays; a second activation event for it does not.
        let mut verifier = ChainVerifier::default();
        let made = seal(
            0,
            GENESIS_HASH,
            open.activated_at,
            &actor,
            EventKind::RequestCreated,
            &serde_json::json!({ "request": request_made_by(&open) }),
        );
        verifier.push(made.fields()).expect("request");
        let event = activated((made.seq, &made.hash));
        verifier.push(event.fields()).expect("activation");
        assert!(
            verifier
                .push(activated((event.seq, &event.hash)).fields())
                .is_err()
        );
    }

    #[test]
    fn a_break_glass_request_is_born_granted() {
        use crate::ledger::{Actor, ChainVerifier, EventKind, GENESIS_HASH, seal};
        let open = activation(ReviewState::Open);
        let mut pending = request_made_by(&open);
        pending.state = crate::lifecycle::RequestState::PendingApproval;
        let actor: Actor = "alice".parse().expect("actor");
        let event = seal(
            0,
            GENESIS_HASH,
            open.activated_at,
            &actor,
            EventKind::RequestCreated,
            &serde_json::json!({ "request": pending }),
        );
        assert!(ChainVerifier::default().push(event.fields()).is_err());
    }

    proptest::proptest! {
        /// Any sequence of review steps: the state machine and the ledger replay agree
        /// on every one, and an illegal step on the ledger is caught at its event.
        #[test]
        fn the_ledger_replays_exactly_the_legal_review_steps(
            events in proptest::collection::vec(0..2u8, 0..8)
        ) {
            use crate::ledger::{Actor, ChainVerifier, EventKind, GENESIS_HASH, seal};
            let mut record = activation(ReviewState::Open);
            let actor: Actor = "bob".parse().expect("actor");
            let at = record.activated_at;
            let mut verifier = ChainVerifier::default();
            let made = seal(0, GENESIS_HASH, at, &actor, EventKind::RequestCreated,
                &serde_json::json!({ "request": request_made_by(&record) }));
            proptest::prop_assert!(verifier.push(made.fields()).is_ok());
            let activated = seal(made.seq, &made.hash, at, &actor, EventKind::BreakGlassActivated,
                &serde_json::json!({ "activation": record }));
            proptest::prop_assert!(verifier.push(activated.fields()).is_ok());
            let mut prev = (activated.seq, activated.hash.clone());
            for code in events {
                let event = [ReviewEvent::Lapse, ReviewEvent::SignOff][usize::from(code)];
                let next = record.review_state.transition(event);
                let mut claimed = record.clone();
                claimed.review_state = next.clone().unwrap_or(match event {
                    ReviewEvent::Lapse => ReviewState::Overdue,
                    ReviewEvent::SignOff => ReviewState::SignedOff,
                });
                let sealed = seal(prev.0, &prev.1, at, &actor, event_kind(event),
                    &serde_json::json!({ "activation": claimed }));
                let replayed = verifier.push(sealed.fields());
                proptest::prop_assert_eq!(replayed.is_ok(), next.is_ok(), "{:?} from {:?}", event, record.review_state);
                if next.is_err() {
                    proptest::prop_assert_eq!(replayed.err().and_then(|e| e.seq()), Some(sealed.seq));
                    break;
                }
                record = claimed;
                prev = (sealed.seq, sealed.hash.clone());
            }
        }
    }
}
