//! AKS planned maintenance as a [`Calendar`]: the typed `maintenanceWindow` (daily,
//! weekly, absoluteMonthly, relativeMonthly; `utcOffset`, `startDate`, `notAllowedDates`)
//! and the legacy `default` configuration (`timeInWeek` hour slots in UTC, `notAllowedTime`).
//!
//! Rules taken from the 2026-10-01 API specification, and choices where it is silent
//! (marked *unverified*; each errs towards starting later, never outside a real window):
//! - `notAllowedDates` spans are whole days in `utcOffset`, both ends inclusive (the
//!   specification's own example); a window that overlaps one loses the overlapping part.
//! - Recurrence intervals greater than 1 count from `startDate`; without one, from
//!   1970-01-01 (*unverified*: AKS does not say where it counts from).
//! - `absoluteMonthly` on a day the month lacks (31 in April) does not occur that month
//!   (*unverified*).
//! - Legacy `timeInWeek`: no entries means any time; an entry with no hour slots means the
//!   whole day (*unverified*).

use super::{Calendar, ScheduleError, Window, first_open, merge};
use crate::domain::duration::later_by;
use crate::domain::fleet::{MaintenanceConfig, MaintenanceSchedule, MaintenanceWindow, TimeInWeek, WeekIndex};
use chrono::{DateTime, Datelike, Days, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Timelike, Utc, Weekday};

/// How an AKS window recurs, validated.
#[derive(Debug, Clone, PartialEq)]
enum Recurrence {
    Daily { every: i64 },
    Weekly { every: i64, day: Weekday },
    AbsoluteMonthly { every: i64, day: u32 },
    RelativeMonthly { every: i64, week: WeekIndex, day: Weekday },
}

/// A validated `maintenanceWindow`.
#[derive(Debug, Clone, PartialEq)]
pub struct AksWindow {
    recurrence: Recurrence,
    duration: Duration,
    offset: FixedOffset,
    start_date: Option<NaiveDate>,
    start_time: NaiveTime,
    not_allowed: Vec<Window>,
}

fn bad(msg: impl Into<String>) -> ScheduleError {
    ScheduleError::ReadMaintenanceWindow(msg.into())
}

fn in_range(what: &str, v: i64, lo: i64, hi: i64) -> Result<i64, ScheduleError> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(bad(format!("{what} {v} is outside {lo}..{hi}")))
    }
}

/// `+HH:MM` / `-HH:MM`.
fn parse_offset(s: &str) -> Result<FixedOffset, ScheduleError> {
    let err = || bad(format!("utcOffset `{s}` is not +HH:MM or -HH:MM"));
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(err()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(err)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(err());
    }
    let (h, m): (i32, i32) = (h.parse().map_err(|_| err())?, m.parse().map_err(|_| err())?);
    if h > 14 || m > 59 {
        return Err(err());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(err)
}

impl AksWindow {
    /// Validates ARM's `maintenanceWindow`.
    pub fn from_arm(w: &MaintenanceWindow) -> Result<Self, ScheduleError> {
        let recurrence = recurrence(&w.schedule)?;
        let hours = in_range("durationHours", w.duration_hours, 4, 24)?;
        let offset = parse_offset(w.utc_offset.as_deref().unwrap_or("+00:00"))?;
        let start_time = NaiveTime::parse_from_str(&w.start_time, "%H:%M")
            .map_err(|_| bad(format!("startTime `{}` is not HH:MM", w.start_time)))?;
        let mut not_allowed = Vec::new();
        for span in &w.not_allowed_dates {
            if span.end < span.start {
                return Err(bad(format!(
                    "notAllowedDates span {} .. {} ends before it starts",
                    span.start, span.end
                )));
            }
            let start = at(offset, span.start, NaiveTime::MIN);
            let end = span
                .end
                .checked_add_days(Days::new(1))
                .map_or(DateTime::<Utc>::MAX_UTC, |d| at(offset, d, NaiveTime::MIN));
            not_allowed.push(Window::new(start, end));
        }
        Ok(Self {
            recurrence,
            duration: Duration::hours(hours),
            offset,
            start_date: w.start_date,
            start_time,
            not_allowed: merge(not_allowed),
        })
    }

    /// Whether the window opens on local day `d`.
    fn occurs_on(&self, d: NaiveDate) -> bool {
        if self.start_date.is_some_and(|s| d < s) {
            return false;
        }
        let anchor = self
            .start_date
            .unwrap_or(NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date"));
        let months_since = |d: NaiveDate| {
            let m = |x: NaiveDate| i64::from(x.year()) * 12 + i64::from(x.month0());
            m(d) - m(anchor)
        };
        match self.recurrence {
            Recurrence::Daily { every } => (d - anchor).num_days().rem_euclid(every) == 0,
            Recurrence::Weekly { every, day } => {
                // Weeks start on Monday; count them between the anchor's week and d's.
                let week =
                    |x: NaiveDate| i64::from(x.num_days_from_ce()) - i64::from(x.weekday().num_days_from_monday());
                d.weekday() == day && ((week(d) - week(anchor)) / 7).rem_euclid(every) == 0
            }
            Recurrence::AbsoluteMonthly { every, day } => d.day() == day && months_since(d).rem_euclid(every) == 0,
            Recurrence::RelativeMonthly { every, week, day } => {
                let in_week = match week {
                    WeekIndex::First => d.day() <= 7,
                    WeekIndex::Second => (8..=14).contains(&d.day()),
                    WeekIndex::Third => (15..=21).contains(&d.day()),
                    WeekIndex::Fourth => (22..=28).contains(&d.day()),
                    WeekIndex::Last => d.checked_add_days(Days::new(7)).is_none_or(|n| n.month() != d.month()),
                };
                d.weekday() == day && in_week && months_since(d).rem_euclid(every) == 0
            }
        }
    }
}

/// Local `d t` at a fixed offset, in UTC. A fixed offset maps every local time once,
/// except at the very ends of the range of dates (a `notAllowedDates` of year 262143):
/// those saturate instead of panicking.
fn at(offset: FixedOffset, d: NaiveDate, t: NaiveTime) -> DateTime<Utc> {
    let local = d.and_time(t);
    match offset.from_local_datetime(&local).single() {
        Some(x) => x.with_timezone(&Utc),
        None if local.date() > NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date") => DateTime::<Utc>::MAX_UTC,
        None => DateTime::<Utc>::MIN_UTC,
    }
}

fn recurrence(s: &MaintenanceSchedule) -> Result<Recurrence, ScheduleError> {
    let set = [
        s.daily.is_some(),
        s.weekly.is_some(),
        s.absolute_monthly.is_some(),
        s.relative_monthly.is_some(),
    ];
    if set.iter().filter(|b| **b).count() != 1 {
        return Err(bad(
            "schedule must set exactly one of daily, weekly, absoluteMonthly, relativeMonthly",
        ));
    }
    if let Some(d) = &s.daily {
        return Ok(Recurrence::Daily {
            every: in_range("intervalDays", d.interval_days, 1, 7)?,
        });
    }
    if let Some(w) = &s.weekly {
        return Ok(Recurrence::Weekly {
            every: in_range("intervalWeeks", w.interval_weeks, 1, 4)?,
            day: w.day_of_week.to_chrono(),
        });
    }
    if let Some(m) = &s.absolute_monthly {
        return Ok(Recurrence::AbsoluteMonthly {
            every: in_range("intervalMonths", m.interval_months, 1, 6)?,
            day: in_range("dayOfMonth", i64::from(m.day_of_month), 1, 31)? as u32,
        });
    }
    let m = s.relative_monthly.as_ref().expect("exactly one schedule is set");
    Ok(Recurrence::RelativeMonthly {
        every: in_range("intervalMonths", m.interval_months, 1, 6)?,
        week: m.week_index,
        day: m.day_of_week.to_chrono(),
    })
}

impl Calendar for AksWindow {
    fn next_open(&self, t: DateTime<Utc>, until: DateTime<Utc>) -> Option<Window> {
        // Windows last at most 24h, so one that is open at `t` started at most a day before.
        let first_day = super::wall_time(&self.offset, t)
            .date()
            .checked_sub_days(Days::new(2))
            .unwrap_or(NaiveDate::MIN);
        // Days after `until` are not looked at: with a `startDate` far ahead (or a
        // schedule that never matches) the filter below would otherwise walk every day
        // to the end of the range of dates (about 95 million of them).
        let last_day = super::wall_time(&self.offset, until).date();
        let occurrences = first_day
            .iter_days()
            .take_while(move |d| *d <= last_day)
            .filter(|d| self.occurs_on(*d))
            .map(|d| {
                let start = at(self.offset, d, self.start_time);
                Window::new(start, later_by(start, self.duration))
            })
            .take_while(move |w| w.start < until);
        first_open(t, until, occurrences, &self.not_allowed)
    }
}

/// A validated legacy `default` configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyWindow {
    /// Allowed hours (UTC) per weekday, Monday first; `None` = any time.
    slots: Option<[[bool; 24]; 7]>,
    not_allowed: Vec<Window>,
}

impl LegacyWindow {
    pub fn from_arm(
        time_in_week: &[TimeInWeek],
        not_allowed_time: &[crate::domain::fleet::TimeSpan],
    ) -> Result<Self, ScheduleError> {
        let slots = if time_in_week.is_empty() {
            None
        } else {
            let mut s = [[false; 24]; 7];
            for entry in time_in_week {
                let day = &mut s[entry.day.to_chrono().num_days_from_monday() as usize];
                if entry.hour_slots.is_empty() {
                    *day = [true; 24];
                }
                for &h in &entry.hour_slots {
                    *day.get_mut(h as usize)
                        .ok_or_else(|| bad(format!("hour slot {h} is outside 0..23")))? = true;
                }
            }
            Some(s)
        };
        let not_allowed = not_allowed_time
            .iter()
            .map(|s| Window::new(s.start, s.end))
            .filter(|w| w.end > w.start)
            .collect();
        Ok(Self {
            slots,
            not_allowed: merge(not_allowed),
        })
    }
}

impl Calendar for LegacyWindow {
    fn next_open(&self, t: DateTime<Utc>, until: DateTime<Utc>) -> Option<Window> {
        let Some(slots) = self.slots else {
            return first_open(t, until, [Window::from(t)], &self.not_allowed);
        };
        // From the previous midnight, so that a run of slots open at `t` is reported whole.
        let day_before = t.date_naive().checked_sub_days(Days::new(1)).unwrap_or(NaiveDate::MIN);
        let start = Utc.from_utc_datetime(&day_before.and_time(NaiveTime::MIN));
        let hours = (0..)
            .map_while(move |h| start.checked_add_signed(Duration::hours(h)))
            .take_while(move |h| *h < until)
            .filter(move |h| {
                let day = h.weekday().num_days_from_monday() as usize;
                slots[day][h.hour() as usize]
            })
            .map(|h| Window::new(h, later_by(h, Duration::hours(1))));
        first_open(t, until, hours, &self.not_allowed)
    }
}

/// The calendar of one ARM maintenance configuration: its `maintenanceWindow` when it has
/// one, else its legacy `timeInWeek` / `notAllowedTime`.
pub fn maintenance_calendar(config: &MaintenanceConfig) -> Result<Box<dyn Calendar + Send + Sync>, ScheduleError> {
    let p = &config.properties;
    match &p.maintenance_window {
        Some(w) => Ok(Box::new(AksWindow::from_arm(w)?)),
        None => Ok(Box::new(LegacyWindow::from_arm(&p.time_in_week, &p.not_allowed_time)?)),
    }
}
