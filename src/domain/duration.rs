//! Human durations as written in fleet files and policies: `90s`, `10m`, `1h30m`, `2d`,
//! and date arithmetic that cannot panic.
//!
//! chrono panics when a date plus a duration leaves its range (about 262,000 years) and
//! when `TimeDelta::days(n)` is given a huge `n`. Durations come from user input (policies,
//! fleet files) and from persisted rollouts, so a huge one must never reach `+`: every
//! instant computed from one goes through [`later`] / [`earlier`], which saturate at the
//! ends of time. [`NEVER`] ("not within the range of dates") is what a wait too long to
//! represent becomes: the engine simply never reaches it.

use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;

/// The last representable instant: "never" for a wait that would overflow.
pub const NEVER: DateTime<Utc> = DateTime::<Utc>::MAX_UTC;

/// `d` as a chrono delta, saturating at `TimeDelta::MAX` (which [`later`] turns into [`NEVER`]).
pub fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// `t + d`, or [`NEVER`] when that is past the range of dates.
pub fn later(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    later_by(t, delta(d))
}

/// `t + d` for a signed delta, saturating at both ends of the range of dates.
pub fn later_by(t: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(if d < TimeDelta::zero() {
        DateTime::<Utc>::MIN_UTC
    } else {
        NEVER
    })
}

/// `t - d`, saturating at the first representable instant.
pub fn earlier(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_sub_signed(delta(d)).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `TimeDelta::days(n)` without its panic: saturates at `TimeDelta::MAX` / `MIN`.
pub fn days(n: i64) -> TimeDelta {
    TimeDelta::try_days(n).unwrap_or(if n < 0 { TimeDelta::MIN } else { TimeDelta::MAX })
}

/// The longest duration a policy or a fleet file may give: 366 days. The reasons are
/// written where each compiler uses it ([`crate::policy::MAX_DURATION`],
/// [`crate::sim::fleet::MAX_DURATION`]); one constant, so that the two cannot drift.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// `text` as a duration of at most [`MAX_DURATION`]. A longer one is an error saying it is
/// longer than the longest duration `whose` may give (for example "a fleet file"), and
/// `why` follows (empty, or e.g. " (a longer wait is a typo)").
pub fn parse_bounded(text: &str, whose: &str, why: &str) -> Result<Duration, String> {
    match parse_duration(text) {
        Ok(d) if d > MAX_DURATION => Err(format!(
            "`{text}` is longer than {}, the longest duration {whose} may give{why}",
            format_duration(MAX_DURATION)
        )),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// A duration string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration (expected e.g. 30s, 10m, 1h30m, 2d)")]
pub struct DurationError(pub String);

/// Parses `[N d][N h][N m][N s][N ms]` in that order, at least one part.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(s.to_string());
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(err());
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total_ms: u64 = 0;
    let mut last_rank = 0u8;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let (unit_ms, rank, len) = if rest.starts_with("ms") {
            (1, 5, 2)
        } else if rest.starts_with('d') {
            (86_400_000, 1, 1)
        } else if rest.starts_with('h') {
            (3_600_000, 2, 1)
        } else if rest.starts_with('m') {
            (60_000, 3, 1)
        } else if rest.starts_with('s') {
            (1_000, 4, 1)
        } else {
            return Err(err());
        };
        if rank <= last_rank {
            return Err(err());
        }
        last_rank = rank;
        rest = &rest[len..];
        total_ms = n
            .checked_mul(unit_ms)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(err)?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration compactly (`1h30m`, `45s`, `250ms`), the inverse of [`parse_duration`].
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, name) in [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ] {
        if ms >= unit {
            out.push_str(&format!("{}{}", ms / unit, name));
            ms %= unit;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (s, secs) in [("30s", 30), ("10m", 600), ("1h30m", 5400), ("2d", 172_800), ("0", 0)] {
            assert_eq!(parse_duration(s).unwrap(), Duration::from_secs(secs), "{s}");
        }
        assert_eq!(parse_duration("1s500ms").unwrap(), Duration::from_millis(1500));
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        // Beyond u64 milliseconds: an error, not an overflow.
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("213503982335d").is_err());
        for bad in ["", "10", "m", "10x", "1m1h", "5s5s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod arithmetic {
    use super::*;

    fn t0() -> DateTime<Utc> {
        "2026-12-01T00:00:00Z".parse().unwrap()
    }

    /// `99999999d` parses (it fits in u64 milliseconds and in a `TimeDelta`), but a date
    /// plus it overflows chrono: this is what `soak: 99999999d` did to the engine.
    #[test]
    fn huge_durations_saturate_instead_of_panicking() {
        let huge = parse_duration("99999999d").unwrap();
        assert!(t0().checked_add_signed(TimeDelta::from_std(huge).unwrap()).is_none());
        assert_eq!(later(t0(), huge), NEVER);
        assert_eq!(later(t0(), Duration::MAX), NEVER);
        assert_eq!(later(NEVER, Duration::from_secs(1)), NEVER);
        assert_eq!(earlier(t0(), Duration::MAX), DateTime::<Utc>::MIN_UTC);
        assert_eq!(later_by(t0(), TimeDelta::MIN), DateTime::<Utc>::MIN_UTC);
        assert_eq!(days(i64::MAX), TimeDelta::MAX);
        assert_eq!(days(i64::MIN), TimeDelta::MIN);
        assert_eq!(later(t0(), Duration::from_secs(60)), t0() + TimeDelta::seconds(60));
    }

    /// "Never" is persisted in rollout states (a soak until NEVER): it must read back.
    #[test]
    fn never_survives_json() {
        let json = serde_json::to_string(&NEVER).unwrap();
        let back: DateTime<Utc> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, NEVER, "{json}");
    }
}
