//! writ's domain: the vocabulary every other crate speaks.
//!
//! Architecture invariant: this crate does no I/O and knows nothing of SQL, HTTP,
//! Cedar or connectors. Time comes in as a parameter (see [`Clock`]).

pub mod break_glass;
mod clock;
pub mod directory;
mod duration;
pub mod effective;
pub mod finding;
mod ids;
pub mod ledger;
pub mod lifecycle;
mod records;
mod redact;
pub mod review;

pub use break_glass::{Activation, BreakGlassMark, ReviewEvent, ReviewState};
pub use clock::{Clock, ManualClock, Timestamp};
pub use directory::{DirectoryGroup, DirectoryMeta, DirectoryUser};
pub use duration::{
    DURATION_HELP, PERMANENT_SECONDS, format_duration_seconds, parse_duration_seconds,
};
pub use effective::{EffectiveAccess, EffectiveChange};
pub use finding::{
    DriftAction, Exception, Finding, FindingEvent, FindingKind, FindingReport, FindingState,
};
pub use ids::{
    ActivationId, CampaignId, DirectoryId, EntitlementId, FindingId, GrantId, ID_FRAGMENT_LEN_MIN,
    IdRef, IdentityKind, IdentityName, InvalidId, RequestId, ReviewItemId, SHORT_ID_HEX_LEN,
    Sensitivity,
};
pub use records::{
    Approval, AuthzenOrigin, Decision, DecisionOutcome, EntitlementFacts, Grant, Request,
    RevokeReason, Ticket, TicketCheck, acting_agents,
};
pub use redact::redact_credentials;
pub use review::{
    Assignment, Campaign, CampaignScope, CampaignState, ItemState, ReviewDecision, ReviewItem,
    ReviewedAccess,
};

/// `text` cut to at most `bytes_max` bytes, never inside a character (cutting a
/// `String` mid-character panics; outside text such as a program's stderr can be
/// anything).
pub fn truncate_on_char_boundary(text: &mut String, bytes_max: usize) {
    if text.len() <= bytes_max {
        return;
    }
    let mut end = bytes_max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}

#[cfg(test)]
mod truncate_tests {
    use proptest::prelude::*;

    use super::truncate_on_char_boundary;

    #[test]
    fn cuts_before_a_character_that_would_be_split() {
        let mut text = "€".repeat(200);
        truncate_on_char_boundary(&mut text, 500);
        assert_eq!(text, "€".repeat(166));
    }

    proptest! {
        #[test]
        fn never_panics_and_keeps_a_prefix(text in ".{0,64}", max in 0usize..80) {
            let mut cut = text.clone();
            truncate_on_char_boundary(&mut cut, max);
            prop_assert!(cut.len() <= max);
            prop_assert!(text.starts_with(&cut));
            prop_assert!(text.len() <= max || max - cut.len() < 4);
        }
    }
}
