//! writ's domain: the vocabulary every other crate speaks.
//!
//! Architecture invariant: this crate does no I/O and knows nothing of SQL, HTTP,
//! Cedar or connectors. Time comes in as a parameter (see [`Clock`]).

mod clock;
pub mod finding;
mod ids;
pub mod ledger;
pub mod lifecycle;
mod records;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use finding::{
    DriftAction, Exception, Finding, FindingEvent, FindingKind, FindingReport, FindingState,
};
pub use ids::{
    EntitlementId, FindingId, GrantId, IdentityKind, IdentityName, InvalidId, RequestId,
    Sensitivity,
};
pub use records::{Approval, Decision, DecisionOutcome, Grant, Request, Ticket, TicketCheck};

/// Parses a human duration such as `"8h"` or `"90m"` into whole seconds.
pub fn parse_duration_seconds(text: &str) -> Result<i64, String> {
    let duration = humantime::parse_duration(text.trim()).map_err(|e| e.to_string())?;
    let seconds =
        i64::try_from(duration.as_secs()).map_err(|_| "duration is too long".to_string())?;
    if seconds <= 0 {
        return Err("duration must be at least one second".into());
    }
    Ok(seconds)
}

/// Formats whole seconds the way `parse_duration_seconds` reads them.
pub fn format_duration_seconds(seconds: i64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(
        seconds.max(0).unsigned_abs(),
    ))
    .to_string()
}
