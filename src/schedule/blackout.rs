//! Blackout dates: whole days, in the policy's time zone, when no step may start
//! (a change freeze over the holidays, a product launch).

use super::{Calendar, Window, first_open, local_to_utc, merge};
use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

/// Open except during the blocked intervals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Blackouts {
    blocked: Vec<Window>,
}

impl Blackouts {
    pub fn new(blocked: Vec<Window>) -> Self {
        Self {
            blocked: merge(blocked),
        }
    }

    /// Day ranges `from..=to` in `tz`: from `from`'s local midnight to the local midnight
    /// after `to` (DST-aware, so a blackout day may be 23 or 25 hours long).
    pub fn from_dates(tz: Tz, days: &[(NaiveDate, NaiveDate)]) -> Self {
        Self::new(days.iter().map(|(from, to)| day_span(tz, *from, *to)).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.blocked.is_empty()
    }
}

/// The UTC interval covering local days `from..=to` in `tz`.
pub fn day_span(tz: Tz, from: NaiveDate, to: NaiveDate) -> Window {
    let end_day = to.checked_add_days(Days::new(1)).unwrap_or(to);
    Window::new(local_midnight(tz, from), local_midnight(tz, end_day))
}

/// The instant a local day starts in `tz` (the end of the gap, in zones whose clocks
/// jump over midnight).
pub fn local_midnight(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    local_to_utc(tz, day.and_time(NaiveTime::MIN))
}

impl Calendar for Blackouts {
    fn next_open(&self, t: DateTime<Utc>, until: DateTime<Utc>) -> Option<Window> {
        first_open(t, until, [Window::from(t)], &self.blocked)
    }
}
