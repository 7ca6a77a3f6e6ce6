//! The compiled fleet: what a validated fleet file says Azure holds (catalogue, node
//! images, durations, ARM settings, clusters, pools, workloads). `compile` builds it from
//! the raw document; the world is built from it.

use super::faults::Fault;
use crate::conditions::ClusterConditions;
use crate::version::{KubeVersion, MinorVersion};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub(crate) const DEFAULT_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub(crate) const DEFAULT_CLIENT: &str = "00000000-0000-0000-0000-00000000c11e";

/// A validated fleet.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub start_time: Option<DateTime<Utc>>,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub subscriptions: Vec<String>,
    pub catalogue: Vec<CatalogueMinor>,
    pub images: Vec<ImageLine>,
    pub durations: Durations,
    pub arm: ArmSettings,
    pub clusters: Vec<ClusterDef>,
    pub faults: Vec<Fault>,
    pub quotas: Vec<crate::quota::QuotaDef>,
    pub virtual_networks: Vec<crate::network::VnetDef>,
}

#[derive(Debug, Clone)]
pub struct CatalogueMinor {
    pub minor: MinorVersion,
    pub patches: Vec<KubeVersion>,
    pub preview: bool,
    pub default: bool,
    pub support_plans: Vec<String>,
    pub end_of_support: Option<NaiveDate>,
    pub regions: Option<BTreeSet<String>>,
}

impl CatalogueMinor {
    pub fn offered_in(&self, region: &str) -> bool {
        self.regions.as_ref().is_none_or(|r| r.contains(region))
    }
}

#[derive(Debug, Clone)]
pub struct ImageLine {
    pub os_sku: String,
    pub family: String,
    pub releases: Vec<ImageRelease>,
}

#[derive(Debug, Clone)]
pub struct ImageRelease {
    pub version: String,
    pub available: Option<NaiveDate>,
    pub regions: BTreeMap<String, NaiveDate>,
}

impl ImageRelease {
    /// The day this release reaches `region`, if it does.
    pub fn day_in(&self, region: &str) -> Option<NaiveDate> {
        self.regions.get(region).copied().or(self.available)
    }
}

#[derive(Debug, Clone)]
pub struct Durations {
    pub control_plane_upgrade: Duration,
    pub node_provision: Duration,
    pub node_reimage: Duration,
    pub node_delete: Duration,
    pub pod_schedule: Duration,
    pub pod_start: Duration,
    pub eviction_retry: Duration,
    pub reconcile: Duration,
    pub abort: Duration,
    pub node_ready_timeout: Duration,
    pub crash_loop_restart: Duration,
    pub poll_interval: Duration,
}

impl Default for Durations {
    fn default() -> Self {
        Self {
            control_plane_upgrade: Duration::from_secs(8 * 60),
            node_provision: Duration::from_secs(3 * 60),
            node_reimage: Duration::from_secs(4 * 60),
            node_delete: Duration::from_secs(60),
            pod_schedule: Duration::from_secs(2),
            pod_start: Duration::from_secs(8),
            eviction_retry: Duration::from_secs(5),
            reconcile: Duration::from_secs(60),
            abort: Duration::from_secs(30),
            node_ready_timeout: Duration::from_secs(15 * 60),
            crash_loop_restart: Duration::from_secs(60),
            poll_interval: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ArmSettings {
    pub page_size: usize,
    pub reads: Bucket,
    pub writes: Bucket,
    pub token_lifetime: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    pub capacity: u32,
    pub per_second: f64,
}

impl Default for ArmSettings {
    fn default() -> Self {
        Self {
            page_size: 100,
            reads: Bucket {
                capacity: 250,
                per_second: 25.0,
            },
            writes: Bucket {
                capacity: 200,
                per_second: 10.0,
            },
            token_lifetime: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    System,
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OsType {
    Linux,
    Windows,
}

impl OsType {
    pub fn as_str(self) -> &'static str {
        match self {
            OsType::Linux => "Linux",
            OsType::Windows => "Windows",
        }
    }
}

impl PoolMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PoolMode::System => "System",
            PoolMode::User => "User",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undrainable {
    Schedule,
    Cordon,
}

#[derive(Debug, Clone)]
pub struct ClusterDef {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub tags: BTreeMap<String, String>,
    pub kubernetes_version: KubeVersion,
    pub auto_upgrade_channel: String,
    pub node_os_upgrade_channel: String,
    pub entra_id: bool,
    pub disable_local_accounts: bool,
    pub support_plan: String,
    pub maintenance: BTreeMap<String, serde_json::Value>,
    pub pools: Vec<PoolDef>,
    pub workloads: Vec<WorkloadDef>,
    pub conditions: ClusterConditions,
}

#[derive(Debug, Clone)]
pub struct PoolDef {
    pub name: String,
    pub mode: PoolMode,
    pub os_type: OsType,
    pub os_sku: String,
    pub count: u32,
    pub version: KubeVersion,
    pub node_image: Option<String>,
    pub vm_size: String,
    pub upgrade: UpgradeSettings,
    /// (virtual network, subnet) indices into `Fleet::virtual_networks`.
    pub subnet: Option<(usize, usize)>,
    /// `None`: the network plugin's default.
    pub max_pods: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct UpgradeSettings {
    pub max_surge: String,
    pub max_unavailable: String,
    pub drain_timeout_minutes: u32,
    pub node_soak_minutes: u32,
    pub undrainable: Undrainable,
}

#[derive(Debug, Clone)]
pub struct WorkloadDef {
    pub name: String,
    pub namespace: String,
    pub replicas: u32,
    pub readiness_delay: Duration,
    pub pdb: Option<Pdb>,
    pub os: OsType,
    pub pool: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pdb {
    MinAvailable(u32),
    MaxUnavailable(u32),
}
