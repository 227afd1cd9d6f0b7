//! Durations the way people write them: `90s`, `15m`, `8h`, `3d`, `2w`, `1h30m`.
//!
//! One strict grammar for the command line, `writ.toml`, policy annotations and
//! tickets, so the same text means the same everywhere; anything else (`1hour`,
//! `abc`, `-5m`) gets the same error that shows how to write one.

/// The units writ reads, largest first, with their length in seconds.
const UNITS: [(char, i64); 5] = [
    ('w', 7 * 86_400),
    ('d', 86_400),
    ('h', 3_600),
    ('m', 60),
    ('s', 1),
];

/// A request for access without an end asks for this long (a century), and a grant
/// without an end lasts it: writ's representation of "permanent". Such a request is
/// granted only where a policy marked `@permanent("true")` permits it.
pub const PERMANENT_SECONDS: i64 = 100 * 365 * 86_400;

/// What every unreadable duration is told.
pub const DURATION_HELP: &str =
    "write a number and a unit (s, m, h, d, w), e.g. 90s, 15m, 8h, 3d, or 1h30m";

/// Reads a duration into whole seconds (at least one).
pub fn parse_duration_seconds(text: &str) -> Result<i64, String> {
    let unreadable = || format!("{text:?} is not a duration: {DURATION_HELP}");
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(unreadable());
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in compact.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = UNITS
            .iter()
            .find(|(name, _)| *name == c)
            .map(|(_, seconds)| *seconds)
            .ok_or_else(unreadable)?;
        if digits.is_empty() {
            return Err(unreadable());
        }
        let part = digits
            .parse::<i64>()
            .ok()
            .and_then(|n| n.checked_mul(unit))
            .ok_or_else(|| format!("{text:?} is too long a duration"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("{text:?} is too long a duration"))?;
        digits.clear();
    }
    if !digits.is_empty() {
        // A bare number: say which unit is missing rather than guess one.
        return Err(unreadable());
    }
    if total <= 0 {
        return Err(format!("{text:?}: a duration must be at least one second"));
    }
    Ok(total)
}

/// Formats whole seconds as `parse_duration_seconds` reads them, in days, hours,
/// minutes and seconds: `8h`, `1h30m`, `100d`.
pub fn format_duration_seconds(seconds: i64) -> String {
    if seconds <= 0 {
        return "0s".into();
    }
    let mut rest = seconds;
    let mut out = String::new();
    for (name, length) in UNITS.iter().skip(1) {
        let count = rest / length;
        if count > 0 {
            out.push_str(&format!("{count}{name}"));
            rest -= count * length;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reads_what_people_write() {
        for (text, seconds) in [
            ("8h", 8 * 3600),
            ("15m", 900),
            ("3d", 3 * 86_400),
            ("2w", 14 * 86_400),
            ("90s", 90),
            ("1h30m", 5400),
            ("1h 30m", 5400),
            (" 45m ", 2700),
        ] {
            assert_eq!(parse_duration_seconds(text), Ok(seconds), "{text}");
        }
    }

    #[test]
    fn everything_else_gets_the_same_help() {
        for text in [
            "1hour", "abc", "", "5", "h", "-5m", "1.5h", "1H", "0s", "1y",
        ] {
            let error = parse_duration_seconds(text).expect_err(text);
            assert!(
                error.contains(DURATION_HELP) || error.contains("at least one second"),
                "{text}: {error}"
            );
        }
        assert!(parse_duration_seconds("99999999999999999999w").is_err());
    }

    #[test]
    fn prints_the_way_it_reads() {
        assert_eq!(format_duration_seconds(8 * 3600), "8h");
        assert_eq!(format_duration_seconds(5400), "1h30m");
        assert_eq!(format_duration_seconds(100 * 86_400), "100d");
        assert_eq!(format_duration_seconds(90_061), "1d1h1m1s");
    }

    proptest! {
        #[test]
        fn format_then_parse_is_the_identity(seconds in 1i64..10_000_000_000) {
            prop_assert_eq!(parse_duration_seconds(&format_duration_seconds(seconds)), Ok(seconds));
        }

        #[test]
        fn parsing_never_panics(text in ".{0,24}") {
            let _ = parse_duration_seconds(&text);
        }
    }
}
