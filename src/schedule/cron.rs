//! Cron expressions evaluated in an IANA time zone.
//!
//! Accepted forms (the `cron` crate's syntax):
//! - 5 fields, classic cron: `minute hour day-of-month month day-of-week` (seconds = 0);
//! - 6 fields: `second minute hour day-of-month month day-of-week`;
//! - 7 fields: the 6 above plus `year`.
//!
//! Two things are refused because dialects disagree and a misread schedule upgrades
//! production at the wrong hour: numeric days of the week (the `cron` crate counts
//! 1 = Sunday, classic cron 0 = Sunday, some tools 1 = Monday; write `MON-FRI`), and
//! restricting both day-of-month and day-of-week (classic cron fires when *either*
//! matches, the `cron` crate when *both* do).
//!
//! Daylight saving: the expression is matched against wall-clock time in the zone. A
//! wall time that happens twice (autumn) fires once, at its first occurrence; a wall time
//! that does not exist (spring) fires at the end of the gap (02:30 on the day clocks jump
//! from 02:00 to 03:00 fires at 03:00). So "every day at 02:30" fires every day.

use super::{Calendar, ScheduleError, Window, first_open, local_to_utc};
use crate::domain::duration::{earlier, later};
use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use std::str::FromStr;

/// A validated cron expression and the zone it is read in.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expr: String,
    schedule: cron::Schedule,
    tz: Tz,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr && self.tz == other.tz
    }
}

impl CronSchedule {
    /// Parses `expr` (5, 6 or 7 fields, see the module docs) to be read in `tz`.
    pub fn parse(expr: &str, tz: Tz) -> Result<Self, ScheduleError> {
        let err = |reason: String| ScheduleError::ParseCron {
            expr: expr.to_string(),
            reason,
        };
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let full: Vec<&str> = match fields.len() {
            5 => std::iter::once("0").chain(fields.iter().copied()).collect(),
            6 | 7 => fields.clone(),
            n => {
                return Err(err(format!(
                    "{n} fields; expected 5 (minute hour day-of-month month day-of-week), \
                     6 (seconds first) or 7 (seconds first, year last)"
                )));
            }
        };
        let (dom, dow) = (full[3], full[5]);
        if dow.bytes().any(|b| b.is_ascii_digit()) {
            return Err(err(format!(
                "day-of-week `{dow}` uses numbers; write day names (e.g. MON-FRI), \
                 since cron dialects number the days differently"
            )));
        }
        let unrestricted = |f: &str| f == "*" || f == "?";
        if !unrestricted(dom) && !unrestricted(dow) {
            return Err(err(format!(
                "restricts both day-of-month (`{dom}`) and day-of-week (`{dow}`); \
                 cron dialects disagree on what that means, so restrict one and write `*` for the other"
            )));
        }
        let schedule = cron::Schedule::from_str(&full.join(" ")).map_err(|_| err(bad_field(&full)))?;
        Ok(Self {
            expr: expr.to_string(),
            schedule,
            tz,
        })
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// Fire times `>= t` and `< until`, ascending, each once.
    pub fn fires(&self, t: DateTime<Utc>, until: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        // Start a few hours of wall time early: a wall time before `t`'s may map to an
        // instant at or after `t` (a fire in a spring gap moves to the gap's end). The
        // `cron` crate's `after` is exclusive, hence the extra second.
        let local = super::wall_time(&self.tz, t)
            .checked_sub_signed(Duration::hours(3) + Duration::seconds(1))
            .unwrap_or(chrono::NaiveDateTime::MIN);
        let tz = self.tz;
        let mut last: Option<DateTime<Utc>> = None;
        self.schedule
            .after(&Utc.from_utc_datetime(&local))
            .map(move |naive| local_to_utc(tz, naive.naive_utc()))
            .skip_while(move |u| *u < t)
            .take_while(move |u| *u < until)
            .filter(move |u| {
                let fresh = last != Some(*u);
                last = Some(*u);
                fresh
            })
    }

    /// The first fire time `>= t`, if one comes before `until`.
    pub fn next_fire(&self, t: DateTime<Utc>, until: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.fires(t, until).next()
    }
}

/// Names the first field that does not parse on its own (the `cron` crate's own error
/// only repeats the expression).
fn bad_field(full: &[&str]) -> String {
    const FIELDS: [(&str, &str); 7] = [
        ("second", "0-59"),
        ("minute", "0-59"),
        ("hour", "0-23"),
        ("day-of-month", "1-31"),
        ("month", "1-12 or JAN-DEC"),
        ("day-of-week", "SUN-SAT"),
        ("year", "e.g. 2027"),
    ];
    for (i, (name, range)) in FIELDS.iter().enumerate().take(full.len()) {
        let mut probe: Vec<&str> = vec!["*"; full.len()];
        probe[i] = full[i];
        if cron::Schedule::from_str(&probe.join(" ")).is_err() {
            return format!("{name} `{}` is not valid ({range})", full[i]);
        }
    }
    "the fields do not combine into a schedule".into()
}

/// A window that opens at each fire time of a cron expression and stays open for `duration`.
#[derive(Debug, Clone, PartialEq)]
pub struct CronWindow {
    pub cron: CronSchedule,
    pub duration: std::time::Duration,
}

impl Calendar for CronWindow {
    fn next_open(&self, t: DateTime<Utc>, until: DateTime<Utc>) -> Option<Window> {
        let occurrences = self
            .cron
            .fires(earlier(t, self.duration), until)
            .map(|f| Window::new(f, later(f, self.duration)));
        first_open(t, until, occurrences, &[])
    }
}
