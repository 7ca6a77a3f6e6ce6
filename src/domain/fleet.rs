//! The fleet as the planner sees it: a snapshot that discovery fills from ARM (or the
//! simulator) and the planner consumes. Plain data, no behaviour beyond look-ups, so that
//! a plan is a pure function of (snapshot, policy, now) and tests can build snapshots by hand.
//!
//! Serde uses camelCase like ARM. [`MaintenanceConfig`] has exactly ARM's shape (a
//! `maintenanceConfigurations` resource), so discovery deserializes ARM's JSON into it
//! directly; unknown ARM fields (`id`, `type`, `systemData`) are ignored.

use super::version::{KubeVersion, MinorVersion};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Name of the maintenance configuration that governs AKS's Kubernetes version upgrades.
pub const AUTO_UPGRADE_SCHEDULE: &str = "aksManagedAutoUpgradeSchedule";
/// Name of the maintenance configuration that governs node OS (node image) upgrades.
pub const NODE_OS_UPGRADE_SCHEDULE: &str = "aksManagedNodeOSUpgradeSchedule";
/// Name of the legacy maintenance configuration (`timeInWeek` / `notAllowedTime`).
pub const DEFAULT_MAINTENANCE: &str = "default";

/// What discovery saw at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetSnapshot {
    pub taken_at: DateTime<Utc>,
    pub clusters: Vec<ClusterState>,
    pub catalogue: Catalogue,
}

/// A cluster's ARM identity. Ordered by subscription, resource group, name: the order
/// every plan lists clusters in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterId {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
}

impl ClusterId {
    pub fn new(subscription: impl Into<String>, resource_group: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            subscription: subscription.into(),
            resource_group: resource_group.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.subscription, self.resource_group, self.name)
    }
}

/// One managed cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterState {
    pub id: ClusterId,
    /// ARM location, e.g. `westeurope`.
    pub location: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// `currentKubernetesVersion` of the control plane.
    pub control_plane: KubeVersion,
    /// Succeeded, Updating, Upgrading, Failed, ...
    pub provisioning_state: String,
    /// none | patch | stable | rapid | node-image (AKS's own upgrader).
    pub auto_upgrade_channel: String,
    /// None | Unmanaged | NodeImage | SecurityPatch.
    pub node_os_upgrade_channel: String,
    pub pools: Vec<PoolState>,
    #[serde(default)]
    pub maintenance: Vec<MaintenanceConfig>,
}

impl ClusterState {
    /// The maintenance configuration named `name` (ARM names are case-insensitive).
    pub fn maintenance_config(&self, name: &str) -> Option<&MaintenanceConfig> {
        self.maintenance.iter().find(|m| m.name.eq_ignore_ascii_case(name))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PoolMode {
    System,
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OsType {
    Linux,
    Windows,
}

/// One agent pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolState {
    pub name: String,
    pub mode: PoolMode,
    pub os_type: OsType,
    /// Ubuntu, AzureLinux, Windows2022, ...: selects the node image line.
    pub os_sku: String,
    /// `currentOrchestratorVersion`.
    pub version: KubeVersion,
    /// Full node image version, `family-version`, e.g. `AKSUbuntu-2204gen2containerd-202411.12.0`.
    pub node_image: String,
    pub provisioning_state: String,
}

/// What AKS offers, per region (keys are ARM locations, lower case without spaces).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalogue {
    pub regions: BTreeMap<String, RegionCatalogue>,
}

impl Catalogue {
    /// The region's catalogue; `West Europe` and `westeurope` name the same region.
    pub fn region(&self, location: &str) -> Option<&RegionCatalogue> {
        self.regions.get(&normalize_location(location))
    }
}

/// ARM writes locations both as `westeurope` and `West Europe`.
pub fn normalize_location(location: &str) -> String {
    location
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// One region's `kubernetesVersions` answer and its latest node images.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionCatalogue {
    pub minors: Vec<MinorRelease>,
    /// Latest node image (full `family-version`) per pool `osSKU`.
    #[serde(default)]
    pub node_images: BTreeMap<String, String>,
}

/// One minor version line in a region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MinorRelease {
    pub minor: MinorVersion,
    pub patches: Vec<KubeVersion>,
    #[serde(default)]
    pub is_preview: bool,
    #[serde(default)]
    pub is_default: bool,
    /// KubernetesOfficial, AKSLongTermSupport. Empty means KubernetesOfficial.
    #[serde(default)]
    pub support_plans: Vec<String>,
    #[serde(default)]
    pub end_of_support: Option<NaiveDate>,
}

// ------------------------------------------------------------ maintenance (ARM shape)

/// A `maintenanceConfigurations` resource as ARM returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceConfig {
    /// `default`, `aksManagedAutoUpgradeSchedule` or `aksManagedNodeOSUpgradeSchedule`.
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub properties: MaintenanceProperties,
}

/// `properties` of a maintenance configuration: the typed window and/or the legacy shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_window: Option<MaintenanceWindow>,
    /// Legacy: hour slots per weekday (UTC) when maintenance may run.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub time_in_week: Vec<TimeInWeek>,
    /// Legacy: time spans when maintenance may not run.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub not_allowed_time: Vec<TimeSpan>,
}

/// `maintenanceWindow`: a recurring window of `durationHours` starting at `startTime`
/// (in `utcOffset`) on the days `schedule` names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindow {
    pub schedule: MaintenanceSchedule,
    #[serde(default = "default_duration_hours")]
    pub duration_hours: i64,
    /// `+HH:MM` / `-HH:MM`; absent means `+00:00`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_offset: Option<String>,
    /// The window is inactive before this day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<NaiveDate>,
    /// `HH:MM` in `utcOffset`.
    pub start_time: String,
    /// Day ranges (inclusive, in `utcOffset`) when the window does not open.
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub not_allowed_dates: Vec<DateSpan>,
}

fn default_duration_hours() -> i64 {
    24
}

/// Exactly one of the four should be set (ARM's rule; checked when the window is used).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceSchedule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<DailySchedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<WeeklySchedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absolute_monthly: Option<AbsoluteMonthlySchedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_monthly: Option<RelativeMonthlySchedule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DailySchedule {
    pub interval_days: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeeklySchedule {
    pub interval_weeks: i64,
    pub day_of_week: WeekDay,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbsoluteMonthlySchedule {
    pub interval_months: i64,
    pub day_of_month: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelativeMonthlySchedule {
    pub interval_months: i64,
    pub week_index: WeekIndex,
    pub day_of_week: WeekDay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WeekDay {
    Sunday,
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
}

impl WeekDay {
    pub fn to_chrono(self) -> chrono::Weekday {
        use chrono::Weekday as W;
        match self {
            WeekDay::Sunday => W::Sun,
            WeekDay::Monday => W::Mon,
            WeekDay::Tuesday => W::Tue,
            WeekDay::Wednesday => W::Wed,
            WeekDay::Thursday => W::Thu,
            WeekDay::Friday => W::Fri,
            WeekDay::Saturday => W::Sat,
        }
    }
}

/// Which week of the month a relative-monthly window falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WeekIndex {
    First,
    Second,
    Third,
    Fourth,
    Last,
}

/// A day range, both ends inclusive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DateSpan {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// Legacy `timeInWeek` entry: one-hour slots (UTC) on a weekday.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeInWeek {
    pub day: WeekDay,
    #[serde(default, deserialize_with = "null_default")]
    pub hour_slots: Vec<u32>,
}

/// Legacy `notAllowedTime` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeSpan {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// ARM sometimes writes `null` where it means "none": read that as the default.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_config_reads_arm_json() {
        let json = serde_json::json!({
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c/maintenanceConfigurations/aksManagedAutoUpgradeSchedule",
            "name": "aksManagedAutoUpgradeSchedule",
            "type": "Microsoft.ContainerService/managedClusters/maintenanceConfigurations",
            "properties": {
                "maintenanceWindow": {
                    "schedule": { "relativeMonthly": { "intervalMonths": 1, "weekIndex": "Last", "dayOfWeek": "Friday" } },
                    "durationHours": 6,
                    "utcOffset": "+05:30",
                    "startDate": "2026-01-01",
                    "startTime": "22:00",
                    "notAllowedDates": [{ "start": "2026-12-20", "end": "2027-01-02" }]
                },
                "timeInWeek": null,
                "notAllowedTime": null
            }
        });
        let m: MaintenanceConfig = serde_json::from_value(json).unwrap();
        let w = m.properties.maintenance_window.unwrap();
        assert_eq!(w.duration_hours, 6);
        assert_eq!(w.schedule.relative_monthly.unwrap().week_index, WeekIndex::Last);
        assert_eq!(w.not_allowed_dates.len(), 1);

        let legacy: MaintenanceConfig = serde_json::from_value(serde_json::json!({
            "name": "default",
            "properties": {
                "timeInWeek": [{ "day": "Monday", "hourSlots": [1, 2] }],
                "notAllowedTime": [{ "start": "2026-12-24T00:00:00Z", "end": "2026-12-27T00:00:00+01:00" }]
            }
        }))
        .unwrap();
        assert_eq!(legacy.properties.time_in_week[0].hour_slots, [1, 2]);
        assert!(legacy.properties.maintenance_window.is_none());
    }

    #[test]
    fn locations_normalize() {
        assert_eq!(normalize_location("West Europe"), "westeurope");
        let mut c = Catalogue::default();
        c.regions.insert("westeurope".into(), RegionCatalogue::default());
        assert!(c.region("West Europe").is_some());
    }
}
