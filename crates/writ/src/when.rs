//! Times for people: in the reader's own time zone (`TZ`, else the system's) with its
//! offset, to the second, and how far from now. `--json` keeps RFC 3339 UTC.

use writ_domain::{Clock, Timestamp};
use writ_engine::SystemClock;

/// `2026-12-01 17:03:12 +01:00 (in 42m)`.
pub fn local(at: Timestamp) -> String {
    local_at(at, SystemClock.now(), &jiff::tz::TimeZone::system())
}

fn local_at(at: Timestamp, now: Timestamp, zone: &jiff::tz::TimeZone) -> String {
    let Ok(instant) = jiff::Timestamp::from_microsecond(at.unix_micros()) else {
        return at.to_rfc3339();
    };
    let zoned = instant.to_zoned(zone.clone());
    format!(
        "{} ({})",
        zoned.strftime("%Y-%m-%d %H:%M:%S %:z"),
        relative(at, now)
    )
}

/// `in 42m`, `3h ago`, `now`: at most two units, rounded down.
pub fn relative(at: Timestamp, now: Timestamp) -> String {
    let seconds = at.millis_since(now) / 1000;
    if seconds == 0 {
        return "now".into();
    }
    let span = span(seconds.unsigned_abs());
    if seconds > 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

fn span(seconds: u64) -> String {
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut rest = seconds;
    let mut parts = Vec::new();
    for (name, length) in units {
        if rest >= length && parts.len() < 2 {
            parts.push(format!("{}{name}", rest / length));
            rest %= length;
        } else if !parts.is_empty() {
            // Two units at most, and never a gap (1d0h is just 1d).
            break;
        }
    }
    parts.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_micros(1_764_601_200_000_000);

    #[test]
    fn relative_in_at_most_two_units() {
        assert_eq!(relative(NOW.plus_seconds(42 * 60), NOW), "in 42m");
        assert_eq!(relative(NOW.plus_seconds(-3 * 3600), NOW), "3h ago");
        assert_eq!(relative(NOW.plus_seconds(3 * 3600 + 125), NOW), "in 3h2m");
        assert_eq!(relative(NOW.plus_seconds(86_400 + 30), NOW), "in 1d");
        assert_eq!(relative(NOW.plus_seconds(7), NOW), "in 7s");
        assert_eq!(relative(NOW, NOW), "now");
    }

    #[test]
    fn local_time_carries_its_offset() {
        let zone = jiff::tz::TimeZone::fixed(jiff::tz::offset(2));
        // 2025-12-01T15:00:00Z
        assert_eq!(
            local_at(NOW.plus_seconds(600), NOW, &zone),
            "2025-12-01 17:10:00 +02:00 (in 10m)"
        );
        assert_eq!(
            local_at(NOW, NOW, &jiff::tz::TimeZone::UTC),
            "2025-12-01 15:00:00 +00:00 (now)"
        );
    }
}
