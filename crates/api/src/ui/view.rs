//! How pages write things: times, durations, states, ids.

use writ_domain::Timestamp;
use writ_domain::lifecycle::{GrantState, RequestState};

/// A time as people read it, in UTC (the `datetime` attribute carries the exact one).
pub fn when(at: Timestamp) -> String {
    let text = at.to_rfc3339();
    // 2026-12-06T06:30:12.123456Z → 2026-12-06 06:30:12 UTC
    match (text.get(..10), text.get(11..19)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => text,
    }
}

pub fn duration(seconds: i64) -> String {
    if seconds >= writ_domain::PERMANENT_SECONDS {
        return "without an end".into();
    }
    writ_domain::format_duration_seconds(seconds)
}

/// Time left until `end` as of `now`, as the countdown first shows it.
pub fn left(now: Timestamp, end: Timestamp) -> String {
    let seconds = end.millis_since(now) / 1000;
    if seconds <= 0 {
        return "ended".into();
    }
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    if d > 0 {
        format!("{d}d {h}h left")
    } else if h > 0 {
        format!("{h}h {m:02}m {s:02}s left")
    } else if m > 0 {
        format!("{m}m {s:02}s left")
    } else {
        format!("{s}s left")
    }
}

/// The badge class of a state: done well, waiting, or gone wrong.
pub fn request_tone(state: RequestState) -> &'static str {
    match state {
        RequestState::Approved => "good",
        RequestState::PendingApproval => "wait",
        _ => "bad",
    }
}

pub fn grant_tone(state: GrantState) -> &'static str {
    match state {
        GrantState::Active => "good",
        GrantState::Pending | GrantState::Revoking => "wait",
        GrantState::Revoked => "",
        GrantState::Failed => "bad",
    }
}

/// `text` as one value of a URL's query.
pub fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_countdowns_read_plainly() {
        let at = Timestamp::from_unix_micros(1_795_000_000_123_456);
        assert_eq!(when(at), "2026-11-18 11:06:40 UTC");
        assert_eq!(left(at, at.plus_seconds(3 * 3600 + 120)), "3h 02m 00s left");
        assert_eq!(left(at, at.plus_seconds(65)), "1m 05s left");
        assert_eq!(left(at, at.plus_seconds(-5)), "ended");
        assert_eq!(left(at, at.plus_seconds(2 * 86_400 + 3600)), "2d 1h left");
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(
            query_escape("/ui/grants/a b?x=1&y"),
            "/ui/grants/a%20b%3Fx%3D1%26y"
        );
    }
}
