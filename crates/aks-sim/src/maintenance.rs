//! Maintenance configurations (`managedClusters/{name}/maintenanceConfigurations/{config}`)
//! as ARM accepts them: the names AKS knows and the shape of `properties` in the
//! 2026-10-01 OpenAPI (`MaintenanceConfigurationProperties`, `MaintenanceWindow`,
//! `Schedule`, ...). One check for the fleet file and for a PUT through the API.
//!
//! Only the shape and `durationHours` (4..24) are checked, not what a window means: a
//! window that can never open is for ringmaster's planner to handle (it skips the cluster,
//! fail closed), and a scenario a fleet file may want to rehearse.

use serde::Deserialize;
use serde_json::Value;

/// The configuration names AKS accepts (`planned-maintenance.md`): `default` for AKS's
/// own weekly releases, the two `aksManaged*` for the auto-upgrade channels.
pub const NAMES: [&str; 3] = [
    "default",
    "aksManagedAutoUpgradeSchedule",
    "aksManagedNodeOSUpgradeSchedule",
];

/// The name as AKS spells it, when `name` is one of [`NAMES`] (ARM names compare
/// case-insensitively).
pub fn known_name(name: &str) -> Option<&'static str> {
    NAMES.iter().copied().find(|n| n.eq_ignore_ascii_case(name))
}

// The OpenAPI's types, read only to check the shape: every field keeps the type the spec
// gives it (a string where an integer belongs is refused, as ARM refuses it).
#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Properties {
    #[serde(default)]
    time_in_week: Option<Vec<TimeInWeek>>,
    #[serde(default)]
    not_allowed_time: Option<Vec<TimeSpan>>,
    #[serde(default)]
    maintenance_window: Option<Window>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimeInWeek {
    day: Option<WeekDay>,
    #[serde(default)]
    hour_slots: Option<Vec<u8>>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct TimeSpan {
    start: Option<chrono::DateTime<chrono::FixedOffset>>,
    end: Option<chrono::DateTime<chrono::FixedOffset>>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Window {
    schedule: Schedule,
    duration_hours: Option<i32>,
    utc_offset: Option<String>,
    start_date: Option<chrono::NaiveDate>,
    start_time: String,
    #[serde(default)]
    not_allowed_dates: Option<Vec<DateSpan>>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Schedule {
    daily: Option<Daily>,
    weekly: Option<Weekly>,
    absolute_monthly: Option<AbsoluteMonthly>,
    relative_monthly: Option<RelativeMonthly>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Daily {
    interval_days: i32,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Weekly {
    interval_weeks: i32,
    day_of_week: WeekDay,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AbsoluteMonthly {
    interval_months: i32,
    day_of_month: i32,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RelativeMonthly {
    interval_months: i32,
    week_index: WeekIndex,
    day_of_week: WeekDay,
}

#[derive(Deserialize)]
enum WeekDay {
    Sunday,
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
}

#[derive(Deserialize)]
enum WeekIndex {
    First,
    Second,
    Third,
    Fourth,
    Last,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct DateSpan {
    start: chrono::NaiveDate,
    end: chrono::NaiveDate,
}

/// Every reason ARM would refuse `properties` of maintenance configuration `name`.
pub fn check(name: &str, properties: &Value) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    if known_name(name).is_none() {
        problems.push(format!(
            "maintenance configuration `{name}` is not one of: {}",
            NAMES.join(", ")
        ));
    }
    // `"durationHours": {"minimum": 4, "maximum": 24}` in the OpenAPI.
    if let Some(h) = properties
        .pointer("/maintenanceWindow/durationHours")
        .and_then(Value::as_i64)
        && !(4..=24).contains(&h)
    {
        problems.push(format!("maintenanceWindow.durationHours {h} is outside 4..24"));
    }
    if let Err(e) = Properties::deserialize(properties) {
        problems.push(format!("maintenance configuration `{name}` is not ARM's shape: {e}"));
    }
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_the_openapi_example_shapes_and_refuses_others() {
        let weekly = json!({ "maintenanceWindow": {
            "schedule": { "weekly": { "intervalWeeks": 1, "dayOfWeek": "Monday" } },
            "durationHours": 8, "utcOffset": "+05:30", "startTime": "06:00",
            "notAllowedDates": [{ "start": "2026-12-23", "end": "2027-01-05" }] } });
        assert_eq!(check("aksManagedAutoUpgradeSchedule", &weekly), Ok(()));
        let legacy = json!({ "timeInWeek": [{ "day": "Tuesday", "hourSlots": [1, 2] }],
            "notAllowedTime": [{ "start": "2026-11-26T03:00:00Z", "end": "2026-11-30T12:00:00Z" }] });
        assert_eq!(check("default", &legacy), Ok(()));
        assert!(check("weekends", &legacy).unwrap_err()[0].contains("is not one of"));
        let wrong_type = json!({ "maintenanceWindow": {
            "schedule": { "weekly": { "intervalWeeks": "1", "dayOfWeek": "Monday" } }, "startTime": "06:00" } });
        assert!(check("default", &wrong_type).unwrap_err()[0].contains("not ARM's shape"));
        let short = json!({ "maintenanceWindow": {
            "schedule": { "daily": { "intervalDays": 1 } }, "durationHours": 2, "startTime": "06:00" } });
        assert!(check("default", &short).unwrap_err()[0].contains("outside 4..24"));
    }
}
