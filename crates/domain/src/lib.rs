//! writ's domain: the vocabulary every other crate speaks.
//!
//! Architecture invariant: this crate does no I/O and knows nothing of SQL, HTTP,
//! Cedar or connectors. Time comes in as a parameter (see [`Clock`]).

mod clock;
mod duration;
pub mod finding;
mod ids;
pub mod ledger;
pub mod lifecycle;
mod records;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use duration::{DURATION_HELP, format_duration_seconds, parse_duration_seconds};
pub use finding::{
    DriftAction, Exception, Finding, FindingEvent, FindingKind, FindingReport, FindingState,
};
pub use ids::{
    EntitlementId, FindingId, GrantId, ID_FRAGMENT_LEN_MIN, IdRef, IdentityKind, IdentityName,
    InvalidId, RequestId, SHORT_ID_HEX_LEN, Sensitivity,
};
pub use records::{Approval, Decision, DecisionOutcome, Grant, Request, Ticket, TicketCheck};
