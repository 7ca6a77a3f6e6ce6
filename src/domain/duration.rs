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

pub use crate::yaml::duration::{DurationError, MAX_DURATION, format_duration, parse_bounded, parse_duration};

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
