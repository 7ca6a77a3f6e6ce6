//! Table tests: cron across daylight-saving changes in several zones, AKS maintenance
//! windows of every schedule type (with utcOffset, startDate, notAllowedDates), the legacy
//! `default` configuration, blackouts, and intersections of them.

use super::*;
use crate::domain::fleet::{MaintenanceConfig, MaintenanceWindow};
use chrono::NaiveDate;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn tz(name: &str) -> Tz {
    parse_time_zone(name).unwrap()
}

fn far(t: DateTime<Utc>) -> DateTime<Utc> {
    t + Duration::days(DEFAULT_HORIZON_DAYS)
}

fn fires(expr: &str, zone: &str, from: &str, n: usize) -> Vec<DateTime<Utc>> {
    let c = CronSchedule::parse(expr, tz(zone)).unwrap();
    c.fires(utc(from), far(utc(from))).take(n).collect()
}

#[test]
fn cron_across_dst_changes() {
    // (expression, zone, search from, the next fire times in UTC)
    let table: &[(&str, &str, &str, &[&str])] = &[
        // Berlin, spring (2026-03-29 02:00 CET -> 03:00 CEST): 02:30 does not exist that
        // day and fires at the gap's end, 03:00 CEST.
        (
            "30 2 * * *",
            "Europe/Berlin",
            "2026-03-28T00:00:00Z",
            &["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"],
        ),
        // Berlin, autumn (2026-10-25 03:00 CEST -> 02:00 CET): 02:30 happens twice, fires once.
        (
            "30 2 * * *",
            "Europe/Berlin",
            "2026-10-24T00:00:00Z",
            &["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
        ),
        // New York, spring (2026-03-08): office hours keep their wall time.
        (
            "0 9 * * MON-FRI",
            "America/New_York",
            "2026-03-06T00:00:00Z",
            &["2026-03-06T14:00:00Z", "2026-03-09T13:00:00Z"],
        ),
        (
            "30 2 * * *",
            "America/New_York",
            "2026-03-08T00:00:00Z",
            &["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"],
        ),
        // New York, autumn (2026-11-01 02:00 EDT -> 01:00 EST): 01:30 fires once, in EDT.
        (
            "30 1 * * *",
            "America/New_York",
            "2026-11-01T00:00:00Z",
            &["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
        ),
        // Sydney, autumn (2026-04-05 03:00 AEDT -> 02:00 AEST), six fields with seconds.
        (
            "0 0 8 * * *",
            "Australia/Sydney",
            "2026-04-03T12:00:00Z",
            &["2026-04-03T21:00:00Z", "2026-04-04T22:00:00Z", "2026-04-05T22:00:00Z"],
        ),
        // Sydney, spring (2026-10-04 02:00 AEST -> 03:00 AEDT).
        (
            "30 2 * * *",
            "Australia/Sydney",
            "2026-10-02T00:00:00Z",
            &["2026-10-02T16:30:00Z", "2026-10-03T16:00:00Z", "2026-10-04T15:30:00Z"],
        ),
        // Seven fields: a year.
        (
            "0 0 12 1 JAN * 2027",
            "UTC",
            "2026-06-01T00:00:00Z",
            &["2027-01-01T12:00:00Z"],
        ),
    ];
    for (expr, zone, from, want) in table {
        let want: Vec<_> = want.iter().map(|s| utc(s)).collect();
        assert_eq!(
            fires(expr, zone, from, want.len()),
            want,
            "{expr} in {zone} from {from}"
        );
    }
}

#[test]
fn hourly_cron_fires_once_per_wall_hour_on_a_25_hour_day() {
    let c = CronSchedule::parse("0 * * * *", tz("Europe/Berlin")).unwrap();
    // 2026-10-25 in Berlin: from 2026-10-24T22:00Z to 2026-10-25T23:00Z (25 real hours).
    let n = c
        .fires(utc("2026-10-24T22:00:00Z"), utc("2026-10-25T23:00:00Z"))
        .count();
    assert_eq!(n, 24);
    // ... and 23 real hours on the spring day, 23 fires (02:00 maps onto 03:00).
    let n = c
        .fires(utc("2026-03-28T23:00:00Z"), utc("2026-03-29T22:00:00Z"))
        .count();
    assert_eq!(n, 23);
    // A fire exactly at `t` counts.
    assert_eq!(
        c.next_fire(utc("2026-06-01T10:00:00Z"), far(utc("2026-06-01T10:00:00Z"))),
        Some(utc("2026-06-01T10:00:00Z"))
    );
}

#[test]
fn cron_refuses_ambiguous_or_malformed_expressions() {
    for (expr, needle) in [
        ("* * * *", "4 fields"),
        ("0 9 * * 1-5", "day names"),
        ("0 9 1 * MON", "both day-of-month"),
        ("61 * * * *", "minute `61` is not valid"),
        ("0 25 * * *", "hour `25` is not valid"),
        ("not a cron", "3 fields"),
    ] {
        let e = CronSchedule::parse(expr, chrono_tz::UTC).unwrap_err().to_string();
        assert!(e.contains(needle), "{expr}: {e}");
    }
    assert!(parse_time_zone("Mars/Olympus").is_err());
    assert!(parse_time_zone("Australia/Sydney").is_ok());
}

fn window(json: serde_json::Value) -> AksWindow {
    let w: MaintenanceWindow = serde_json::from_value(json).unwrap();
    AksWindow::from_arm(&w).unwrap()
}

fn open(c: &dyn Calendar, t: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let t = utc(t);
    c.next_open(t, far(t)).map(|w| (w.start, w.end))
}

fn pair(a: &str, b: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    Some((utc(a), utc(b)))
}

#[test]
fn aks_maintenance_windows_of_every_schedule_type() {
    use serde_json::json;
    // Weekly, the demo fleet's: Mondays 06:00 UTC for 12h.
    let weekly = window(
        json!({"schedule": {"weekly": {"intervalWeeks": 1, "dayOfWeek": "Monday"}},
        "durationHours": 12, "utcOffset": "+00:00", "startTime": "06:00"}),
    );
    assert_eq!(
        open(&weekly, "2026-11-30T07:00:00Z"),
        pair("2026-11-30T06:00:00Z", "2026-11-30T18:00:00Z")
    );
    assert_eq!(
        open(&weekly, "2026-11-30T19:00:00Z"),
        pair("2026-12-07T06:00:00Z", "2026-12-07T18:00:00Z")
    );

    // Every second week, counted from startDate.
    let fortnightly = window(
        json!({"schedule": {"weekly": {"intervalWeeks": 2, "dayOfWeek": "Monday"}},
        "durationHours": 4, "startDate": "2026-11-30", "startTime": "06:00"}),
    );
    assert_eq!(
        open(&fortnightly, "2026-12-01T00:00:00Z"),
        pair("2026-12-14T06:00:00Z", "2026-12-14T10:00:00Z")
    );
    assert_eq!(
        open(&fortnightly, "2026-11-01T00:00:00Z"),
        pair("2026-11-30T06:00:00Z", "2026-11-30T10:00:00Z")
    );

    // Daily every 3 days at 22:00 India time (+05:30) for 6h.
    let daily = window(json!({"schedule": {"daily": {"intervalDays": 3}}, "durationHours": 6,
        "utcOffset": "+05:30", "startDate": "2026-12-01", "startTime": "22:00"}));
    assert_eq!(
        open(&daily, "2026-12-01T00:00:00Z"),
        pair("2026-12-01T16:30:00Z", "2026-12-01T22:30:00Z")
    );
    assert_eq!(
        open(&daily, "2026-12-01T23:00:00Z"),
        pair("2026-12-04T16:30:00Z", "2026-12-04T22:30:00Z")
    );

    // Absolute monthly on the 31st: November has none.
    let abs = window(
        json!({"schedule": {"absoluteMonthly": {"intervalMonths": 1, "dayOfMonth": 31}},
        "durationHours": 8, "startTime": "01:00"}),
    );
    assert_eq!(
        open(&abs, "2026-11-01T00:00:00Z"),
        pair("2026-12-31T01:00:00Z", "2026-12-31T09:00:00Z")
    );

    // Relative monthly: last Friday, 21:00 at -07:00 (the next UTC day).
    let last_friday = window(
        json!({"schedule": {"relativeMonthly": {"intervalMonths": 1, "weekIndex": "Last",
        "dayOfWeek": "Friday"}}, "durationHours": 4, "utcOffset": "-07:00", "startTime": "21:00"}),
    );
    assert_eq!(
        open(&last_friday, "2026-11-01T00:00:00Z"),
        pair("2026-11-28T04:00:00Z", "2026-11-28T08:00:00Z")
    );

    // Relative monthly: first Monday every second month from January (Jan, Mar, May...).
    let first_monday = window(
        json!({"schedule": {"relativeMonthly": {"intervalMonths": 2, "weekIndex": "First",
        "dayOfWeek": "Monday"}}, "durationHours": 4, "startDate": "2026-01-01", "startTime": "02:00"}),
    );
    assert_eq!(
        open(&first_monday, "2026-02-10T00:00:00Z"),
        pair("2026-03-02T02:00:00Z", "2026-03-02T06:00:00Z")
    );
    for (week, want) in [
        ("Second", "2026-03-09"),
        ("Third", "2026-03-16"),
        ("Fourth", "2026-03-23"),
        ("Last", "2026-03-30"),
    ] {
        let w = window(
            json!({"schedule": {"relativeMonthly": {"intervalMonths": 1, "weekIndex": week,
            "dayOfWeek": "Monday"}}, "durationHours": 4, "startTime": "00:00"}),
        );
        assert_eq!(
            open(&w, "2026-03-01T00:00:00Z").unwrap().0,
            utc(&format!("{want}T00:00:00Z")),
            "{week}"
        );
    }
}

#[test]
fn not_allowed_dates_follow_utc_offset_and_clip_windows() {
    use serde_json::json;
    // Mondays 06:00 at +02:00 (04:00 UTC); 2026-12-07 is not allowed.
    let w = window(
        json!({"schedule": {"weekly": {"intervalWeeks": 1, "dayOfWeek": "Monday"}},
        "durationHours": 12, "utcOffset": "+02:00", "startTime": "06:00",
        "notAllowedDates": [{"start": "2026-12-07", "end": "2026-12-07"}]}),
    );
    assert_eq!(
        open(&w, "2026-12-05T00:00:00Z"),
        pair("2026-12-14T04:00:00Z", "2026-12-14T16:00:00Z")
    );

    // The specification's example: +02:00, 2022-12-23..2023-01-03 blocks
    // 2022-12-22T22:00Z .. 2023-01-03T22:00Z.
    let daily = window(json!({"schedule": {"daily": {"intervalDays": 1}}, "durationHours": 4,
        "utcOffset": "+02:00", "startTime": "23:00",
        "notAllowedDates": [{"start": "2022-12-23", "end": "2023-01-03"}]}));
    // 2022-12-22 23:00+02 = 21:00Z, clipped at 22:00Z; next is 2023-01-03 23:00+02 = 21:00Z,
    // clipped to start at 22:00Z.
    assert_eq!(
        open(&daily, "2022-12-22T20:00:00Z"),
        pair("2022-12-22T21:00:00Z", "2022-12-22T22:00:00Z")
    );
    assert_eq!(
        open(&daily, "2022-12-22T22:30:00Z"),
        pair("2023-01-03T22:00:00Z", "2023-01-04T01:00:00Z")
    );
}

#[test]
fn invalid_aks_windows_are_refused() {
    use serde_json::json;
    for (j, needle) in [
        (
            json!({"schedule": {"daily": {"intervalDays": 1}}, "durationHours": 2, "startTime": "01:00"}),
            "durationHours",
        ),
        (
            json!({"schedule": {}, "durationHours": 4, "startTime": "01:00"}),
            "exactly one",
        ),
        (
            json!({"schedule": {"daily": {"intervalDays": 9}}, "durationHours": 4, "startTime": "01:00"}),
            "intervalDays",
        ),
        (
            json!({"schedule": {"daily": {"intervalDays": 1}}, "durationHours": 4, "startTime": "1am"}),
            "startTime",
        ),
        (
            json!({"schedule": {"daily": {"intervalDays": 1}}, "durationHours": 4, "startTime": "01:00", "utcOffset": "+5"}),
            "utcOffset",
        ),
    ] {
        let w: MaintenanceWindow = serde_json::from_value(j).unwrap();
        let e = AksWindow::from_arm(&w).unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    }
}

#[test]
fn legacy_default_configuration() {
    use serde_json::json;
    // The demo fleet's prod cluster: Mondays 06-18 and Saturdays 01-04 (UTC).
    let cfg: MaintenanceConfig = serde_json::from_value(json!({"name": "default", "properties": {
        "timeInWeek": [
            {"day": "Monday", "hourSlots": [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]},
            {"day": "Saturday", "hourSlots": [1, 2, 3]}],
        "notAllowedTime": [{"start": "2026-12-07T00:00:00Z", "end": "2026-12-07T12:00:00Z"}]}}))
    .unwrap();
    let cal = maintenance_calendar(&cfg).unwrap();
    assert_eq!(
        open(cal.as_ref(), "2026-11-30T07:00:00Z"),
        pair("2026-11-30T06:00:00Z", "2026-11-30T18:00:00Z")
    );
    assert_eq!(
        open(cal.as_ref(), "2026-11-30T18:00:00Z"),
        pair("2026-12-05T01:00:00Z", "2026-12-05T04:00:00Z")
    );
    // Monday 2026-12-07 morning is not allowed: opens at noon.
    assert_eq!(
        open(cal.as_ref(), "2026-12-06T00:00:00Z"),
        pair("2026-12-07T12:00:00Z", "2026-12-07T18:00:00Z")
    );

    let empty: MaintenanceConfig = serde_json::from_value(json!({"name": "default", "properties": {}})).unwrap();
    let cal = maintenance_calendar(&empty).unwrap();
    assert_eq!(
        open(cal.as_ref(), "2026-11-30T07:00:00Z").unwrap().0,
        utc("2026-11-30T07:00:00Z")
    );
}

#[test]
fn blackouts_are_local_days() {
    let berlin = tz("Europe/Berlin");
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let b = Blackouts::from_dates(berlin, &[(d("2026-12-24"), d("2026-12-26"))]);
    assert_eq!(
        open(&b, "2026-12-23T12:00:00Z"),
        Some((utc("2026-12-23T12:00:00Z"), utc("2026-12-23T23:00:00Z")))
    );
    assert_eq!(open(&b, "2026-12-25T12:00:00Z").unwrap().0, utc("2026-12-26T23:00:00Z"));
    // A blackout day across the spring change is 23 hours long.
    let span = day_span(berlin, d("2026-03-29"), d("2026-03-29"));
    assert_eq!(
        (span.start, span.end),
        (utc("2026-03-28T23:00:00Z"), utc("2026-03-29T22:00:00Z"))
    );
    // Sydney: a blackout on the autumn day is 25 hours long.
    let span = day_span(tz("Australia/Sydney"), d("2026-04-05"), d("2026-04-05"));
    assert_eq!(span.end - span.start, Duration::hours(25));
}

#[test]
fn earliest_start_intersects_calendars() {
    use serde_json::json;
    let berlin = tz("Europe/Berlin");
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    // Own window: 22:00 Berlin for 4 hours, every day; Christmas blackout.
    let own = CronWindow {
        cron: CronSchedule::parse("0 22 * * *", berlin).unwrap(),
        duration: std::time::Duration::from_secs(4 * 3600),
    };
    let blackout = Blackouts::from_dates(berlin, &[(d("2026-12-24"), d("2026-12-26"))]);
    let cals: [&dyn Calendar; 2] = [&own, &blackout];
    let h = Duration::days(DEFAULT_HORIZON_DAYS);
    let w = earliest_start(utc("2026-12-23T12:00:00Z"), &cals, h).unwrap();
    assert_eq!(
        (w.start, w.end),
        (utc("2026-12-23T21:00:00Z"), utc("2026-12-23T23:00:00Z"))
    );
    let w = earliest_start(utc("2026-12-24T00:00:00Z"), &cals, h).unwrap();
    assert_eq!(
        (w.start, w.end),
        (utc("2026-12-26T23:00:00Z"), utc("2026-12-27T01:00:00Z"))
    );

    // With an AKS window on Mondays 06:00 UTC for 4h, the own window never overlaps it.
    let aks = window(
        json!({"schedule": {"weekly": {"intervalWeeks": 1, "dayOfWeek": "Monday"}},
        "durationHours": 4, "startTime": "06:00"}),
    );
    let cals: [&dyn Calendar; 2] = [&own, &aks];
    assert_eq!(
        earliest_start(utc("2026-12-01T00:00:00Z"), &cals, Duration::days(60)),
        None
    );

    // Union: open in either of two own windows, which touch and so merge.
    let morning = CronWindow {
        cron: CronSchedule::parse("0 2 * * *", berlin).unwrap(),
        duration: std::time::Duration::from_secs(4 * 3600),
    };
    let any = AnyOf(vec![&own, &morning]);
    // 22:00 CET (21:00Z) + 4h = 01:00Z = 02:00 CET, where the morning window opens till 06:00 CET.
    assert_eq!(
        open(&any, "2026-12-01T22:00:00Z"),
        pair("2026-12-01T21:00:00Z", "2026-12-02T05:00:00Z")
    );
    // Nothing at all: open now, no end.
    let w = earliest_start(utc("2026-12-01T00:00:00Z"), &[&Always], h).unwrap();
    assert_eq!(w.bounded_end(), None);
}

/// Dates at the ends of chrono's range in an AKS window (ARM's JSON or a fleet file may
/// say `+262142-12-31`) used to panic: `end + 1 day` past `NaiveDate::MAX`, and a local
/// time at a negative offset past the last UTC instant. Now they saturate: the window
/// is never open again after such a `notAllowedDates` starts, and nothing panics. A
/// `startDate` at the end of time also no longer walks ~95 million days per question.
#[test]
fn aks_windows_at_the_ends_of_the_range_of_dates_do_not_panic() {
    use serde_json::json;
    let max = NaiveDate::MAX.format("%Y-%m-%d").to_string();
    let min = NaiveDate::MIN.format("%Y-%m-%d").to_string();
    for offset in ["+14:00", "-12:00", "+00:00"] {
        let w = window(
            json!({"schedule": {"weekly": {"intervalWeeks": 1, "dayOfWeek": "Monday"}},
            "durationHours": 24, "utcOffset": offset, "startTime": "23:59",
            "startDate": max,
            "notAllowedDates": [{"start": min, "end": max}]}),
        );
        assert_eq!(open(&w, "2026-12-05T00:00:00Z"), None, "{offset}");
        let until = DateTime::<Utc>::MAX_UTC;
        let _ = w.next_open(DateTime::<Utc>::MAX_UTC, until);
        let _ = w.next_open(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MIN_UTC + Duration::days(10));
    }
}
