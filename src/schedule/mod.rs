//! When steps may start: cron expressions in IANA time zones, AKS maintenance windows
//! (every schedule type, `utcOffset`, `notAllowedDates`, and the legacy `default`
//! configuration), the policy's own windows and its blackout dates.
//!
//! Everything here is pure: time is always a parameter, never read from a clock, so the
//! planner and the engine can ask "when could this start, given it is now `t`?" in tests
//! and in replays alike.
//!
//! The model: each constraint is a [`Calendar`], a set of half-open UTC intervals during
//! which a step may *start*. [`earliest_start`] intersects calendars and returns the first
//! interval at or after `t`: its start is the earliest start, its end the time by which the
//! step must have started (a step that runs past the end is not interrupted: AKS itself
//! lets an upgrade that began inside a window finish).

mod aks;
mod blackout;
mod cron;
#[cfg(test)]
mod tests;

pub use aks::{AksWindow, LegacyWindow, maintenance_calendar};
pub use blackout::{Blackouts, day_span, local_midnight};
pub use cron::{CronSchedule, CronWindow};

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// How far ahead a search looks before it gives up ("never opens").
pub const DEFAULT_HORIZON_DAYS: i64 = 400;

/// Why a schedule could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid cron expression `{expr}`: {reason}")]
    ParseCron { expr: String, reason: String },
    #[error("unknown time zone `{0}` (expected an IANA name such as Europe/Berlin or UTC)")]
    UnknownTimeZone(String),
    #[error("invalid maintenance window: {0}")]
    ReadMaintenanceWindow(String),
}

/// A half-open UTC interval `[start, end)`. `end == DateTime::<Utc>::MAX_UTC` means "no end".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self { start, end }
    }

    /// Open from `start` on, with no end.
    pub fn from(start: DateTime<Utc>) -> Self {
        Self::new(start, DateTime::<Utc>::MAX_UTC)
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// `None` for an open-ended window.
    pub fn bounded_end(&self) -> Option<DateTime<Utc>> {
        (self.end != DateTime::<Utc>::MAX_UTC).then_some(self.end)
    }
}

/// A set of intervals during which something may start.
pub trait Calendar {
    /// The first maximal interval whose end is after `t` (its start may be at or before
    /// `t`, meaning "open now"), considering only intervals that start before `until`.
    fn next_open(&self, t: DateTime<Utc>, until: DateTime<Utc>) -> Option<Window>;
}

/// Always open (used when nothing constrains a step).
#[derive(Debug, Clone, Copy, Default)]
pub struct Always;

impl Calendar for Always {
    fn next_open(&self, t: DateTime<Utc>, _until: DateTime<Utc>) -> Option<Window> {
        Some(Window::from(t))
    }
}

/// The union of calendars: open when any member is.
pub struct AnyOf<'a>(pub Vec<&'a dyn Calendar>);

impl Calendar for AnyOf<'_> {
    fn next_open(&self, t: DateTime<Utc>, until: DateTime<Utc>) -> Option<Window> {
        let mut best = self.0.iter().filter_map(|c| c.next_open(t, until)).min()?;
        // Windows of different members may touch or overlap: extend until none does.
        loop {
            if best.end == DateTime::<Utc>::MAX_UTC || best.end >= until {
                return Some(best);
            }
            let extended = self
                .0
                .iter()
                .filter_map(|c| c.next_open(best.end, until))
                .filter(|w| w.start <= best.end)
                .map(|w| w.end)
                .max();
            match extended {
                Some(end) if end > best.end => best.end = end,
                _ => return Some(best),
            }
        }
    }
}

/// The earliest instant `>= t` at which every calendar is open, with the end of that
/// common window. `None` when they never all open within `horizon` of `t`.
pub fn earliest_start(t: DateTime<Utc>, calendars: &[&dyn Calendar], horizon: Duration) -> Option<Window> {
    let until = t.checked_add_signed(horizon).unwrap_or(DateTime::<Utc>::MAX_UTC);
    let mut at = t;
    while at < until {
        let mut latest_start = at;
        let mut end = DateTime::<Utc>::MAX_UTC;
        for c in calendars {
            let w = c.next_open(at, until)?;
            latest_start = latest_start.max(w.start);
            end = end.min(w.end);
        }
        if latest_start == at {
            return Some(Window::new(at, end));
        }
        // Some calendar opens later: every window seen so far may have closed by then,
        // so ask all of them again from there.
        at = latest_start;
    }
    None
}

/// Merges sorted occurrences (overlapping or touching ones become one), removes the
/// `blocked` intervals (sorted, merged) and returns the first piece that ends after `t`.
/// Occurrences starting at or after `until` are not looked at.
pub(crate) fn first_open(
    t: DateTime<Utc>,
    until: DateTime<Utc>,
    occurrences: impl IntoIterator<Item = Window>,
    blocked: &[Window],
) -> Option<Window> {
    let mut current: Option<Window> = None;
    for occ in occurrences {
        if occ.start >= until {
            break;
        }
        if occ.end <= occ.start {
            continue;
        }
        match &mut current {
            Some(cur) if occ.start <= cur.end => cur.end = cur.end.max(occ.end),
            _ => {
                if let Some(done) = current.take()
                    && let Some(w) = first_piece(done, t, blocked)
                {
                    return Some(w);
                }
                current = Some(occ);
            }
        }
    }
    current.and_then(|w| first_piece(w, t, blocked))
}

/// The first part of `w` outside `blocked` that ends after `t`.
fn first_piece(w: Window, t: DateTime<Utc>, blocked: &[Window]) -> Option<Window> {
    if w.end <= t {
        return None;
    }
    let mut start = w.start;
    for b in blocked {
        if b.end <= start {
            continue;
        }
        if b.start >= w.end {
            break;
        }
        if b.start > start {
            let piece = Window::new(start, b.start);
            if piece.end > t {
                return Some(piece);
            }
        }
        start = start.max(b.end);
        if start >= w.end {
            return None;
        }
    }
    (w.end > t).then_some(Window::new(start, w.end))
}

/// Sorts and merges intervals (for `blocked` lists).
pub(crate) fn merge(mut spans: Vec<Window>) -> Vec<Window> {
    spans.sort();
    let mut out: Vec<Window> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
            _ => out.push(s),
        }
    }
    out
}

/// The first instant whose wall-clock time in `tz` is at or after `local`:
/// the instant itself when `local` exists once, the earlier one when it exists twice
/// (autumn), and the end of the gap when it does not exist (spring).
pub fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    use chrono::LocalResult;
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => {
            // In a gap: binary-search the transition, the first instant whose local time
            // is past `local`. Offsets are within ±26h, so the answer is in this range.
            let base = Utc.from_utc_datetime(&local).timestamp();
            let (mut lo, mut hi) = (base - 26 * 3600, base + 26 * 3600);
            let local_at = |secs: i64| DateTime::from_timestamp(secs, 0).map(|u| wall_time(&tz, u));
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if local_at(mid).is_some_and(|l| l >= local) {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            DateTime::from_timestamp(hi, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
        }
    }
}

/// `t` as wall-clock time in `tz`. chrono's `naive_local` panics when the offset pushes
/// the last (first) instant past the range of dates; this saturates there instead.
pub fn wall_time<Z: TimeZone>(tz: &Z, t: DateTime<Utc>) -> NaiveDateTime {
    use chrono::Offset;
    let offset = tz.offset_from_utc_datetime(&t.naive_utc()).fix();
    t.naive_utc()
        .checked_add_offset(offset)
        .unwrap_or(if offset.local_minus_utc() > 0 {
            NaiveDateTime::MAX
        } else {
            NaiveDateTime::MIN
        })
}

/// Parses an IANA zone name.
pub fn parse_time_zone(name: &str) -> Result<Tz, ScheduleError> {
    name.parse::<Tz>()
        .map_err(|_| ScheduleError::UnknownTimeZone(name.to_string()))
}
