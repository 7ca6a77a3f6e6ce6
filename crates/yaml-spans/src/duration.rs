//! Human durations as written in input files (fleet files, policies, configuration):
//! `90s`, `10m`, `1h30m`, `2d`. Generic input parsing like the rest of `yaml`, used by the
//! simulator's fleet compiler and by ringmaster's policy compiler alike.

use std::time::Duration;

/// The longest duration a policy or a fleet file may give: 366 days. The reasons are
/// written where each compiler uses it (`ringmaster::policy::MAX_DURATION`,
/// `aks_sim::fleet::MAX_DURATION`); one constant, so that the two cannot drift.
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
