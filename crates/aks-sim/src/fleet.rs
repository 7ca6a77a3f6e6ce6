//! The fleet file: what the simulator pretends Azure holds. YAML, documented in
//! `docs/fleet.md`; parsed strictly (unknown fields are errors) and then compiled,
//! reporting every problem at once as `file:line:col: message`.

use super::version::{KubeVersion, MinorVersion};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_saphyr::Location;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;
use yaml_spans::{Diagnostics, SourceErrors, Spanned};

// ---------------------------------------------------------------- raw (serde) shape

/// The document as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetFile {
    /// Simulated time when the simulator starts (RFC 3339). Default: the wall clock.
    pub start_time: Option<Spanned<String>>,
    /// Entra tenant the token endpoint serves. Default: a fixed demo tenant.
    pub tenant_id: Option<String>,
    /// The service principal allowed to get tokens. Default: a fixed demo client.
    pub client_id: Option<String>,
    /// Its secret. Default: random at each start (printed in the ready line).
    pub client_secret: Option<String>,
    /// Subscription ids. Clusters name theirs; with one subscription they may omit it.
    #[serde(default)]
    pub subscriptions: Vec<Spanned<String>>,
    /// The Kubernetes version catalogue (what `kubernetesVersions` answers per region).
    #[serde(default)]
    pub versions: Vec<Spanned<RawMinor>>,
    /// Node image releases per OS SKU, and the day each reaches each region.
    #[serde(default)]
    pub node_images: Vec<Spanned<RawImageLine>>,
    /// How long simulated things take.
    #[serde(default)]
    pub durations: RawDurations,
    /// ARM behaviour: paging, throttling, tokens.
    #[serde(default)]
    pub arm: RawArm,
    /// The clusters, one by one.
    #[serde(default)]
    pub clusters: Vec<Spanned<RawCluster>>,
    /// Many clusters from one template (large fleets).
    pub generate: Option<Spanned<RawGenerate>>,
    /// Faults to inject, deterministic by seed.
    #[serde(default)]
    pub faults: Vec<Spanned<RawFault>>,
    /// vCPU quotas per subscription, region and VM family (`quota.rs`).
    #[serde(default)]
    pub quotas: Vec<Spanned<super::quota::RawQuota>>,
    /// Virtual networks whose subnets pools may use (`network.rs`).
    #[serde(default)]
    pub virtual_networks: Vec<Spanned<super::network::RawVnet>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMinor {
    pub minor: Spanned<String>,
    pub patches: Vec<Spanned<String>>,
    #[serde(default)]
    pub preview: bool,
    #[serde(default)]
    pub default: bool,
    /// Default: [KubernetesOfficial].
    pub support_plans: Option<Vec<String>>,
    /// Day this minor leaves AKS support (YYYY-MM-DD).
    pub end_of_support: Option<Spanned<String>>,
    /// Regions that offer it. Default: every region.
    pub regions: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImageLine {
    /// The pool `osSKU` this line serves: Ubuntu, AzureLinux, Windows2022, ...
    pub os_sku: Spanned<String>,
    /// The image family, e.g. AKSUbuntu-2204gen2containerd.
    pub family: Spanned<String>,
    pub releases: Vec<Spanned<RawImageRelease>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImageRelease {
    /// The version part, e.g. 202411.12.0.
    pub version: Spanned<String>,
    /// Day it reaches every region not listed in `regions`.
    pub available: Option<Spanned<String>>,
    /// Day it reaches each listed region.
    #[serde(default)]
    pub regions: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDurations {
    pub control_plane_upgrade: Option<Spanned<String>>,
    pub node_provision: Option<Spanned<String>>,
    pub node_reimage: Option<Spanned<String>>,
    pub node_delete: Option<Spanned<String>>,
    pub pod_schedule: Option<Spanned<String>>,
    pub pod_start: Option<Spanned<String>>,
    pub eviction_retry: Option<Spanned<String>>,
    pub reconcile: Option<Spanned<String>>,
    pub abort: Option<Spanned<String>>,
    pub node_ready_timeout: Option<Spanned<String>>,
    pub crash_loop_restart: Option<Spanned<String>>,
    pub poll_interval: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArm {
    /// Items per page of list answers (nextLink beyond). Default 100.
    pub page_size: Option<Spanned<u32>>,
    pub reads: Option<RawBucket>,
    pub writes: Option<RawBucket>,
    /// Lifetime of issued tokens, in wall-clock time. Default 1h.
    pub token_lifetime: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBucket {
    pub bucket: u32,
    pub per_second: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub name: Spanned<String>,
    pub subscription: Option<Spanned<String>>,
    pub resource_group: Spanned<String>,
    pub location: Spanned<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub kubernetes_version: Spanned<String>,
    /// none | patch | stable | rapid | node-image. Default none.
    pub auto_upgrade_channel: Option<Spanned<String>>,
    /// None | Unmanaged | NodeImage | SecurityPatch. Default NodeImage.
    pub node_os_upgrade_channel: Option<Spanned<String>>,
    #[serde(default)]
    pub entra_id: bool,
    #[serde(default)]
    pub disable_local_accounts: bool,
    /// KubernetesOfficial | AKSLongTermSupport. Default KubernetesOfficial.
    pub support_plan: Option<Spanned<String>>,
    /// Maintenance configurations by name (default, aksManagedAutoUpgradeSchedule,
    /// aksManagedNodeOSUpgradeSchedule): their `properties`, in ARM's own shape.
    #[serde(default)]
    pub maintenance: BTreeMap<String, Spanned<serde_json::Value>>,
    pub pools: Vec<Spanned<RawPool>>,
    #[serde(default)]
    pub workloads: Vec<Spanned<RawWorkload>>,
    /// Deprecated APIs its clients call (served in `/metrics`; block minor upgrades).
    #[serde(default)]
    pub deprecated_api_calls: Vec<Spanned<super::metrics::RawDeprecatedCall>>,
    /// Running | Stopped. Default Running.
    pub power_state: Option<Spanned<String>>,
    /// Succeeded | Failed: the state the cluster starts in. Default Succeeded.
    pub provisioning_state: Option<Spanned<String>>,
    /// azure | kubenet | none. Default azure.
    pub network_plugin: Option<Spanned<String>>,
    /// overlay | none (classic Azure CNI). Default overlay with azure.
    pub network_plugin_mode: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    pub name: Spanned<String>,
    /// System | User. Default User.
    pub mode: Option<Spanned<String>>,
    /// Linux | Windows. Default Linux.
    pub os_type: Option<Spanned<String>>,
    /// Default Ubuntu (Linux) or Windows2022 (Windows).
    pub os_sku: Option<Spanned<String>>,
    pub count: Spanned<u32>,
    /// Default: the cluster's version.
    pub version: Option<Spanned<String>>,
    /// Version part of the node image. Default: the latest in the region at start.
    pub node_image: Option<Spanned<String>>,
    /// One of the simulator's VM sizes (`quota::VM_SIZES`).
    pub vm_size: Option<Spanned<String>>,
    /// `vnet/subnet` of `virtual_networks` (ARM `vnetSubnetID`). Default: none (a
    /// managed network the simulator does not account).
    pub subnet: Option<Spanned<String>>,
    /// Pods per node (ARM `maxPods`), 10..250. Default by network plugin.
    pub max_pods: Option<Spanned<u32>>,
    #[serde(default)]
    pub upgrade_settings: RawUpgradeSettings,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpgradeSettings {
    /// Count or percentage. Default "10%".
    pub max_surge: Option<Spanned<String>>,
    /// Count or percentage. Default "0".
    pub max_unavailable: Option<Spanned<String>>,
    /// Default 30.
    pub drain_timeout_minutes: Option<Spanned<u32>>,
    /// 0..30. Default 0.
    pub node_soak_minutes: Option<Spanned<u32>>,
    /// Schedule | Cordon. Default Schedule.
    pub undrainable_node_behavior: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    pub name: Spanned<String>,
    pub namespace: Spanned<String>,
    pub replicas: Spanned<u32>,
    /// Time from container start to Ready. Default 10s.
    pub readiness_delay: Option<Spanned<String>>,
    pub pdb: Option<Spanned<RawPdb>>,
    /// Linux | Windows: which nodes it runs on. Default Linux.
    pub os: Option<Spanned<String>>,
    /// Pin to one pool (nodeSelector agentpool=...).
    pub pool: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPdb {
    pub min_available: Option<u32>,
    pub max_unavailable: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGenerate {
    pub count: Spanned<u32>,
    #[serde(default = "default_prefix")]
    pub name_prefix: String,
    pub locations: Vec<String>,
    /// Ring tag values and their share of clusters, in order.
    pub rings: Vec<RawRingShare>,
    pub kubernetes_version: Spanned<String>,
    pub pools: Vec<Spanned<RawPool>>,
    #[serde(default)]
    pub workloads: Vec<Spanned<RawWorkload>>,
}

fn default_prefix() -> String {
    "aks".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRingShare {
    pub ring: String,
    pub share: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    /// operation_fails | pods_never_ready | nodes_not_ready | pdb_blocks_drain |
    /// throttle_storm | server_errors | api_unreachable | auto_upgrade
    pub kind: Spanned<String>,
    pub cluster: Option<Spanned<String>>,
    pub pool: Option<String>,
    pub subscription: Option<String>,
    /// Version (minor or patch) that triggers the fault.
    pub version: Option<Spanned<String>>,
    /// control_plane | pool | node_image (operation_fails).
    pub operation: Option<Spanned<String>>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub workload: Option<String>,
    /// Limits `pods_never_ready` to one namespace.
    pub namespace: Option<String>,
    /// Share of requests hit (server_errors), 0..1.
    pub rate: Option<Spanned<f64>>,
    /// 500 | 503 | drop (server_errors). Default 500.
    pub status: Option<Spanned<String>>,
    /// Simulated time after start when the fault begins / ends.
    pub from: Option<Spanned<String>>,
    pub to: Option<Spanned<String>>,
    /// Upgrade channel target (auto_upgrade).
    pub channel: Option<String>,
}

// ---------------------------------------------------------------- compiled shape

pub use super::conditions::ClusterConditions;

pub const DEFAULT_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const DEFAULT_CLIENT: &str = "00000000-0000-0000-0000-00000000c11e";

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
    pub quotas: Vec<super::quota::QuotaDef>,
    pub virtual_networks: Vec<super::network::VnetDef>,
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

/// Which operation an `operation_fails` fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    ControlPlane,
    Pool,
    NodeImage,
}

/// A fault, with the simulated window (offsets from start) in which it is active.
#[derive(Debug, Clone)]
pub struct Fault {
    pub what: FaultKind,
    pub from: Duration,
    pub to: Option<Duration>,
}

#[derive(Debug, Clone)]
pub enum FaultKind {
    OperationFails {
        cluster: String,
        operation: OpKind,
        pool: Option<String>,
        code: String,
        message: String,
    },
    PodsNeverReady {
        cluster: String,
        version: super::version::VersionSpec,
        /// Only pods of this namespace (default: every namespace).
        namespace: Option<String>,
    },
    NodesNotReady {
        cluster: String,
        pool: Option<String>,
        version: Option<super::version::VersionSpec>,
    },
    PdbBlocksDrain {
        cluster: String,
        workload: String,
    },
    ThrottleStorm {
        subscription: Option<String>,
    },
    ServerErrors {
        rate: f64,
        status: ServerErrorKind,
    },
    ApiUnreachable {
        cluster: String,
    },
    AutoUpgrade {
        cluster: String,
        channel: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerErrorKind {
    Status500,
    Status503,
    Drop,
}

impl Fault {
    pub fn active_at(&self, since_start: Duration) -> bool {
        since_start >= self.from && self.to.is_none_or(|to| since_start < to)
    }
}

// ---------------------------------------------------------------- compile

/// Reads, parses and validates a fleet file.
pub fn load(path: &Path) -> Result<Fleet, SourceErrors> {
    let (file, text) = yaml_spans::read(path)?;
    parse(&file, &text)
}

/// Parses and validates fleet YAML from a string (`file` names it in errors). Unknown
/// fields are errors, and checking goes on without them, so one run shows every problem.
pub fn parse(file: &str, text: &str) -> Result<Fleet, SourceErrors> {
    let (raw, unknown) = yaml_spans::parse_reporting_unknown::<FleetFile>(file, text)?;
    yaml_spans::with_unknown(compile(file, raw), unknown)
}

/// The longest duration a fleet file may give: 366 days, as for policies. Simulated time
/// is milliseconds in an `i64` and every duration is added to it (`SimTime::plus`): a
/// duration near `u64::MAX` milliseconds overflowed that sum (a panic in debug builds,
/// time running backwards in release).
pub use yaml_spans::duration::MAX_DURATION;

const CLUSTER_NAME_RULE: &str = "^[a-zA-Z0-9][-_a-zA-Z0-9]{0,61}[a-zA-Z0-9]$";
const POOL_NAME_RULE: &str = "^[a-z][a-z0-9]{0,11}$";

pub fn valid_cluster_name(s: &str) -> bool {
    let b = s.as_bytes();
    let ok_inner = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_';
    (1..=63).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(ok_inner)
}

pub fn valid_pool_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=12).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// `"33%"` or `"3"`; `None` when neither.
pub fn parse_count_or_percent(s: &str) -> Option<(u32, bool)> {
    match s.strip_suffix('%') {
        Some(p) => p.parse().ok().filter(|v| (0..=100).contains(v)).map(|v| (v, true)),
        None => s.parse().ok().map(|v| (v, false)),
    }
}

pub(super) struct Compiler {
    pub(super) d: Diagnostics,
}

impl Compiler {
    /// A duration of at most [`MAX_DURATION`]; an invalid one is reported and `default`
    /// stands in for it.
    fn duration(&mut self, s: &Option<Spanned<String>>, default: Duration) -> Duration {
        let Some(s) = s else { return default };
        yaml_spans::duration::parse_bounded(&s.value, "a fleet file", "").unwrap_or_else(|e| {
            self.d.at(s, e);
            default
        })
    }

    fn date(&mut self, s: &Spanned<String>) -> Option<NaiveDate> {
        match NaiveDate::parse_from_str(&s.value, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                self.d
                    .at(s, format!("`{}` is not a date (expected YYYY-MM-DD)", s.value));
                None
            }
        }
    }

    pub(super) fn version(&mut self, s: &Spanned<String>) -> Option<KubeVersion> {
        match s.value.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.d.at(s, format!("{e}"));
                None
            }
        }
    }

    pub(super) fn one_of(
        &mut self,
        s: &Option<Spanned<String>>,
        allowed: &[&str],
        default: &str,
        field: &str,
    ) -> String {
        match s {
            None => default.to_string(),
            Some(v) => match allowed.iter().find(|a| a.eq_ignore_ascii_case(&v.value)) {
                Some(a) => a.to_string(),
                None => {
                    self.d.at(
                        v,
                        format!("{field} `{}` is not one of: {}", v.value, allowed.join(", ")),
                    );
                    default.to_string()
                }
            },
        }
    }
}

/// Validates the raw document into a [`Fleet`], reporting every error found.
pub fn compile(file: &str, raw: FleetFile) -> Result<Fleet, SourceErrors> {
    let mut c = Compiler {
        d: Diagnostics::new(file),
    };
    let start_time = raw
        .start_time
        .as_ref()
        .and_then(|s| match DateTime::parse_from_rfc3339(&s.value) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                c.d.at(
                    s,
                    format!("`{}` is not an RFC 3339 time (e.g. 2026-11-30T08:00:00Z)", s.value),
                );
                None
            }
        });

    let mut subscriptions = Vec::new();
    for s in &raw.subscriptions {
        if subscriptions.contains(&s.value) {
            c.d.at(s, format!("subscription `{}` is listed twice", s.value));
        } else if s.value.is_empty() || !s.value.chars().all(|ch| ch.is_ascii_hexdigit() || ch == '-') {
            c.d.at(
                s,
                format!("subscription `{}` is not a subscription id (a GUID)", s.value),
            );
        } else {
            subscriptions.push(s.value.clone());
        }
    }
    if raw.subscriptions.is_empty() {
        c.d.at_location(
            Location::UNKNOWN,
            "`subscriptions` must list at least one subscription id",
        );
    }

    let catalogue = compile_catalogue(&mut c, &raw.versions);
    let images = compile_images(&mut c, &raw.node_images);
    let durations = compile_durations(&mut c, &raw.durations);
    let arm = compile_arm(&mut c, &raw.arm);
    let quotas = super::quota::compile(&mut c, &raw.quotas, &subscriptions);
    let virtual_networks = super::network::compile(&mut c, &raw.virtual_networks, &subscriptions);

    // Each compiled cluster keeps the position it came from, so later checks point at
    // the right line even when an earlier cluster failed to compile.
    let mut clusters: Vec<(Location, ClusterDef)> = Vec::new();
    for rc in &raw.clusters {
        if let Some(cl) = compile_cluster(&mut c, rc, &subscriptions, &virtual_networks) {
            check_cluster_version(&mut c, rc.value.kubernetes_version.referenced, &cl, &catalogue);
            clusters.push((rc.value.name.referenced, cl));
        }
    }
    if let Some(g) = &raw.generate {
        let generated = super::generate::expand(&mut c, g, &subscriptions);
        if let Some(first) = generated.first() {
            check_cluster_version(&mut c, g.value.kubernetes_version.referenced, first, &catalogue);
        }
        clusters.extend(generated.into_iter().map(|cl| (g.referenced, cl)));
    }
    if catalogue.is_empty() {
        c.d.at_location(Location::UNKNOWN, "`versions` must list at least one minor version");
    }
    let mut seen = BTreeSet::new();
    for (at, cl) in &clusters {
        let key = (
            cl.subscription.clone(),
            cl.resource_group.to_ascii_lowercase(),
            cl.name.to_ascii_lowercase(),
        );
        if !seen.insert(key) {
            let msg = format!(
                "cluster `{}` is defined twice in resource group `{}`",
                cl.name, cl.resource_group
            );
            c.d.at_location(*at, msg);
        }
    }
    let clusters: Vec<ClusterDef> = clusters.into_iter().map(|(_, cl)| cl).collect();

    let names: BTreeSet<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
    let mut faults = Vec::new();
    for f in &raw.faults {
        if let Some(f) = compile_fault(&mut c, f, &names) {
            faults.push(f);
        }
    }
    let fleet = Fleet {
        start_time,
        tenant_id: raw.tenant_id.unwrap_or_else(|| DEFAULT_TENANT.into()),
        client_id: raw.client_id.unwrap_or_else(|| DEFAULT_CLIENT.into()),
        client_secret: raw.client_secret,
        subscriptions,
        catalogue,
        images,
        durations,
        arm,
        clusters,
        faults,
        quotas,
        virtual_networks,
    };
    c.d.finish(fleet)
}

fn compile_catalogue(c: &mut Compiler, raw: &[Spanned<RawMinor>]) -> Vec<CatalogueMinor> {
    let mut out: Vec<CatalogueMinor> = Vec::new();
    for m in raw {
        let Ok(minor) = m.value.minor.value.parse::<MinorVersion>() else {
            c.d.at(
                &m.value.minor,
                format!("`{}` is not a minor version (e.g. 1.33)", m.value.minor.value),
            );
            continue;
        };
        if out
            .iter()
            .any(|o| o.minor == minor && o.regions.is_none() && m.value.regions.is_none())
        {
            c.d.at(&m.value.minor, format!("minor {minor} is listed twice"));
        }
        let mut patches = Vec::new();
        for p in &m.value.patches {
            if let Some(v) = c.version(p) {
                if v.minor_version() != minor {
                    c.d.at(p, format!("patch {v} does not belong to minor {minor}"));
                } else {
                    patches.push(v);
                }
            }
        }
        if m.value.patches.is_empty() {
            c.d.at(&m.value.minor, format!("minor {minor} lists no patches"));
        }
        patches.sort();
        patches.dedup();
        let end_of_support = m.value.end_of_support.as_ref().and_then(|s| c.date(s));
        out.push(CatalogueMinor {
            minor,
            patches,
            preview: m.value.preview,
            default: m.value.default,
            support_plans: m
                .value
                .support_plans
                .clone()
                .unwrap_or_else(|| vec!["KubernetesOfficial".into()]),
            end_of_support,
            regions: m.value.regions.as_ref().map(|r| r.iter().cloned().collect()),
        });
    }
    out.sort_by_key(|m| m.minor);
    out
}

fn compile_images(c: &mut Compiler, raw: &[Spanned<RawImageLine>]) -> Vec<ImageLine> {
    let mut out: Vec<ImageLine> = Vec::new();
    for l in raw {
        if out.iter().any(|o| o.os_sku.eq_ignore_ascii_case(&l.value.os_sku.value)) {
            c.d.at(
                &l.value.os_sku,
                format!("node images for os_sku `{}` are listed twice", l.value.os_sku.value),
            );
        }
        if l.value.family.value.is_empty() {
            c.d.at(&l.value.family, "family must not be empty");
        }
        let mut releases = Vec::new();
        for r in &l.value.releases {
            if super::version::compare_image_versions(&r.value.version.value, "0") == std::cmp::Ordering::Equal
                || !r.value.version.value.split('.').all(|p| p.parse::<u64>().is_ok())
            {
                c.d.at(
                    &r.value.version,
                    format!(
                        "`{}` is not a node image version (e.g. 202411.12.0)",
                        r.value.version.value
                    ),
                );
            }
            let available = r.value.available.as_ref().and_then(|s| c.date(s));
            let mut regions = BTreeMap::new();
            for (region, day) in &r.value.regions {
                if let Some(d) = c.date(day) {
                    regions.insert(region.clone(), d);
                }
            }
            if r.value.available.is_none() && r.value.regions.is_empty() {
                c.d.at(
                    &r.value.version,
                    "a release needs `available` or `regions` (the day it reaches a region)",
                );
            }
            releases.push(ImageRelease {
                version: r.value.version.value.clone(),
                available,
                regions,
            });
        }
        releases.sort_by(|a, b| super::version::compare_image_versions(&a.version, &b.version));
        out.push(ImageLine {
            os_sku: l.value.os_sku.value.clone(),
            family: l.value.family.value.clone(),
            releases,
        });
    }
    out
}

fn compile_durations(c: &mut Compiler, r: &RawDurations) -> Durations {
    let d = Durations::default();
    Durations {
        control_plane_upgrade: c.duration(&r.control_plane_upgrade, d.control_plane_upgrade),
        node_provision: c.duration(&r.node_provision, d.node_provision),
        node_reimage: c.duration(&r.node_reimage, d.node_reimage),
        node_delete: c.duration(&r.node_delete, d.node_delete),
        pod_schedule: c.duration(&r.pod_schedule, d.pod_schedule),
        pod_start: c.duration(&r.pod_start, d.pod_start),
        eviction_retry: c.duration(&r.eviction_retry, d.eviction_retry),
        reconcile: c.duration(&r.reconcile, d.reconcile),
        abort: c.duration(&r.abort, d.abort),
        node_ready_timeout: c.duration(&r.node_ready_timeout, d.node_ready_timeout),
        crash_loop_restart: c.duration(&r.crash_loop_restart, d.crash_loop_restart),
        poll_interval: c.duration(&r.poll_interval, d.poll_interval),
    }
}

fn compile_arm(c: &mut Compiler, r: &RawArm) -> ArmSettings {
    let d = ArmSettings::default();
    let page_size = match &r.page_size {
        Some(p) if p.value == 0 => {
            c.d.at(p, "page_size must be at least 1");
            d.page_size
        }
        Some(p) => p.value as usize,
        None => d.page_size,
    };
    let bucket = |b: &Option<RawBucket>, def: Bucket| {
        b.as_ref().map_or(def, |b| Bucket {
            capacity: b.bucket.max(1),
            per_second: if b.per_second > 0.0 {
                b.per_second
            } else {
                def.per_second
            },
        })
    };
    ArmSettings {
        page_size,
        reads: bucket(&r.reads, d.reads),
        writes: bucket(&r.writes, d.writes),
        token_lifetime: c.duration(&r.token_lifetime, d.token_lifetime),
    }
}

fn compile_cluster(
    c: &mut Compiler,
    rc: &Spanned<RawCluster>,
    subs: &[String],
    nets: &[super::network::VnetDef],
) -> Option<ClusterDef> {
    let r = &rc.value;
    if !valid_cluster_name(&r.name.value) {
        c.d.at(
            &r.name,
            format!("cluster name `{}` does not match {CLUSTER_NAME_RULE}", r.name.value),
        );
    }
    let subscription = match &r.subscription {
        Some(s) if subs.contains(&s.value) => s.value.clone(),
        Some(s) => {
            c.d.at(s, format!("subscription `{}` is not in `subscriptions`", s.value));
            s.value.clone()
        }
        None if subs.len() == 1 => subs[0].clone(),
        None => {
            c.d.at(
                &r.name,
                "`subscription` is required when the fleet has several subscriptions",
            );
            String::new()
        }
    };
    let version = c.version(&r.kubernetes_version);
    let auto_upgrade_channel = c.one_of(
        &r.auto_upgrade_channel,
        &["none", "patch", "stable", "rapid", "node-image"],
        "none",
        "auto_upgrade_channel",
    );
    let node_os_upgrade_channel = c.one_of(
        &r.node_os_upgrade_channel,
        &["None", "Unmanaged", "NodeImage", "SecurityPatch"],
        "NodeImage",
        "node_os_upgrade_channel",
    );
    let support_plan = c.one_of(
        &r.support_plan,
        &["KubernetesOfficial", "AKSLongTermSupport"],
        "KubernetesOfficial",
        "support_plan",
    );
    let mut maintenance = BTreeMap::new();
    for (name, props) in &r.maintenance {
        for problem in super::maintenance::check(name, &props.value).err().unwrap_or_default() {
            c.d.at(props, problem);
        }
        maintenance.insert(name.clone(), props.value.clone());
    }
    let conditions = super::conditions::compile(c, r);
    let cv = version?;
    super::conditions::check_removed_releases(c, r, cv);
    let mut pools: Vec<PoolDef> = Vec::new();
    for p in &r.pools {
        if let Some(mut pool) = compile_pool(c, p, cv) {
            if let Some(s) = &p.value.subnet {
                pool.subnet = super::conditions::resolve_subnet(c, s, nets, &subscription, &r.location.value);
            }
            if pools.iter().any(|q| q.name == pool.name) {
                c.d.at(&p.value.name, format!("pool `{}` is defined twice", pool.name));
            }
            pools.push(pool);
        }
    }
    if r.pools.is_empty() {
        c.d.at(&r.name, "a cluster needs at least one pool");
    } else if !pools
        .iter()
        .any(|p| p.mode == PoolMode::System && p.os_type == OsType::Linux)
        && pools.len() == r.pools.len()
    {
        c.d.at(&r.name, "a cluster needs a Linux pool with mode System");
    }
    let mut workloads: Vec<WorkloadDef> = Vec::new();
    for w in &r.workloads {
        if let Some(wl) = compile_workload(c, w) {
            if workloads
                .iter()
                .any(|o| o.name == wl.name && o.namespace == wl.namespace)
            {
                c.d.at(
                    &w.value.name,
                    format!("workload `{}/{}` is defined twice", wl.namespace, wl.name),
                );
            }
            if let Some(p) = &wl.pool
                && !pools.iter().any(|q| &q.name == p)
            {
                c.d.at(
                    &w.value.name,
                    format!(
                        "workload `{}` is pinned to pool `{p}`, which the cluster does not have",
                        wl.name
                    ),
                );
            }
            if !pools.iter().any(|q| q.os_type == wl.os) && !pools.is_empty() {
                c.d.at(
                    &w.value.name,
                    format!(
                        "workload `{}` needs {} nodes and the cluster has none",
                        wl.name,
                        wl.os.as_str()
                    ),
                );
            }
            workloads.push(wl);
        }
    }
    Some(ClusterDef {
        subscription,
        resource_group: r.resource_group.value.clone(),
        name: r.name.value.clone(),
        location: r.location.value.clone(),
        tags: r.tags.clone(),
        kubernetes_version: cv,
        auto_upgrade_channel,
        node_os_upgrade_channel,
        entra_id: r.entra_id,
        disable_local_accounts: r.disable_local_accounts,
        support_plan,
        maintenance,
        pools,
        workloads,
        conditions,
    })
}

pub(super) fn compile_pool(c: &mut Compiler, p: &Spanned<RawPool>, cluster_version: KubeVersion) -> Option<PoolDef> {
    let r = &p.value;
    if !valid_pool_name(&r.name.value) {
        c.d.at(
            &r.name,
            format!("pool name `{}` does not match {POOL_NAME_RULE}", r.name.value),
        );
    }
    let mode = match c.one_of(&r.mode, &["System", "User"], "User", "mode").as_str() {
        "System" => PoolMode::System,
        _ => PoolMode::User,
    };
    let os_type = match c.one_of(&r.os_type, &["Linux", "Windows"], "Linux", "os_type").as_str() {
        "Windows" => OsType::Windows,
        _ => OsType::Linux,
    };
    if os_type == OsType::Windows && mode == PoolMode::System {
        c.d.at(&r.name, "a Windows pool cannot have mode System");
    }
    let os_sku = r.os_sku.as_ref().map_or_else(
        || {
            if os_type == OsType::Windows {
                "Windows2022"
            } else {
                "Ubuntu"
            }
            .to_string()
        },
        |s| s.value.clone(),
    );
    if r.count.value == 0 || r.count.value > 1000 {
        c.d.at(&r.count, format!("count {} is outside 1..1000", r.count.value));
    }
    let version = match &r.version {
        Some(v) => c.version(v)?,
        None => cluster_version,
    };
    if let Some(v) = &r.version
        && let Err(e) = super::rules::check_skew(version, cluster_version)
    {
        c.d.at(v, e.message);
    }
    let u = &r.upgrade_settings;
    let mut count_or_percent = |s: &Option<Spanned<String>>, default: &str, field: &str| match s {
        None => default.to_string(),
        Some(v) => {
            if parse_count_or_percent(&v.value).is_none() {
                c.d.at(
                    v,
                    format!("{field} `{}` is not a count or a percentage (e.g. 1 or 33%)", v.value),
                );
            }
            v.value.clone()
        }
    };
    let max_surge = count_or_percent(&u.max_surge, "10%", "max_surge");
    let max_unavailable = count_or_percent(&u.max_unavailable, "0", "max_unavailable");
    if parse_count_or_percent(&max_surge).is_some_and(|(v, _)| v == 0)
        && parse_count_or_percent(&max_unavailable).is_some_and(|(v, _)| v == 0)
    {
        c.d.at(&r.name, "max_surge and max_unavailable cannot both be 0");
    }
    if let Some(s) = &u.node_soak_minutes
        && s.value > 30
    {
        c.d.at(s, format!("node_soak_minutes {} is outside 0..30", s.value));
    }
    if let Some(s) = &u.drain_timeout_minutes
        && !(1..=1440).contains(&s.value)
    {
        c.d.at(s, format!("drain_timeout_minutes {} is outside 1..1440", s.value));
    }
    let undrainable = match c
        .one_of(
            &u.undrainable_node_behavior,
            &["Schedule", "Cordon"],
            "Schedule",
            "undrainable_node_behavior",
        )
        .as_str()
    {
        "Cordon" => Undrainable::Cordon,
        _ => Undrainable::Schedule,
    };
    let vm_size = match &r.vm_size {
        None if os_type == OsType::Windows => "Standard_D4s_v5".to_string(),
        None => "Standard_D2s_v5".to_string(),
        Some(v) => match super::quota::vm_size(&v.value) {
            Some(known) => known.name.to_string(),
            None => {
                c.d.at(
                    v,
                    format!(
                        "vm_size `{}` is not one the simulator knows ({})",
                        v.value,
                        super::quota::known_sizes()
                    ),
                );
                v.value.clone()
            }
        },
    };
    if let Some(m) = &r.max_pods
        && !(10..=250).contains(&m.value)
    {
        c.d.at(m, format!("max_pods {} is outside 10..250", m.value));
    }
    let max_pods = r.max_pods.as_ref().map(|m| m.value);
    Some(PoolDef {
        name: r.name.value.clone(),
        mode,
        os_type,
        os_sku,
        count: r.count.value,
        version,
        node_image: r.node_image.as_ref().map(|s| s.value.clone()),
        vm_size,
        subnet: None,
        max_pods,
        upgrade: UpgradeSettings {
            max_surge,
            max_unavailable,
            drain_timeout_minutes: u.drain_timeout_minutes.as_ref().map_or(30, |s| s.value),
            node_soak_minutes: u.node_soak_minutes.as_ref().map_or(0, |s| s.value),
            undrainable,
        },
    })
}

pub(super) fn compile_workload(c: &mut Compiler, w: &Spanned<RawWorkload>) -> Option<WorkloadDef> {
    let r = &w.value;
    let dns_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    if !dns_ok(&r.name.value) {
        c.d.at(&r.name, format!("workload name `{}` is not a DNS label", r.name.value));
    }
    if !dns_ok(&r.namespace.value) {
        c.d.at(
            &r.namespace,
            format!("namespace `{}` is not a DNS label", r.namespace.value),
        );
    }
    let os = match c.one_of(&r.os, &["Linux", "Windows"], "Linux", "os").as_str() {
        "Windows" => OsType::Windows,
        _ => OsType::Linux,
    };
    let pdb = match &r.pdb {
        None => None,
        Some(p) => match (p.value.min_available, p.value.max_unavailable) {
            (Some(m), None) => {
                if m > r.replicas.value {
                    c.d.at(
                        p,
                        format!("pdb.min_available {m} is more than replicas {}", r.replicas.value),
                    );
                }
                Some(Pdb::MinAvailable(m))
            }
            (None, Some(m)) => Some(Pdb::MaxUnavailable(m)),
            _ => {
                c.d.at(p, "pdb needs exactly one of min_available and max_unavailable");
                None
            }
        },
    };
    Some(WorkloadDef {
        name: r.name.value.clone(),
        namespace: r.namespace.value.clone(),
        replicas: r.replicas.value,
        readiness_delay: c.duration(&r.readiness_delay, Duration::from_secs(10)),
        pdb,
        os,
        pool: r.pool.as_ref().map(|p| p.value.clone()),
    })
}

/// Checks each cluster's versions against the catalogue of its region.
/// Checks a cluster's version against the catalogue of its region.
fn check_cluster_version(c: &mut Compiler, at: Location, cl: &ClusterDef, cat: &[CatalogueMinor]) {
    let known = cat
        .iter()
        .any(|m| m.offered_in(&cl.location) && m.patches.contains(&cl.kubernetes_version));
    if !known && !cat.is_empty() {
        let msg = format!(
            "version {} is not in the catalogue for region {}",
            cl.kubernetes_version, cl.location
        );
        c.d.at_location(at, msg);
    }
}

fn compile_fault(c: &mut Compiler, f: &Spanned<RawFault>, clusters: &BTreeSet<&str>) -> Option<Fault> {
    let r = &f.value;
    let from = c.duration(&r.from, Duration::ZERO);
    let to = r.to.as_ref().map(|_| c.duration(&r.to, Duration::ZERO));
    let cluster = |c: &mut Compiler| -> Option<String> {
        match &r.cluster {
            None => {
                c.d.at(&r.kind, format!("fault `{}` needs `cluster`", r.kind.value));
                None
            }
            Some(name) if !clusters.contains(name.value.as_str()) => {
                c.d.at(
                    name,
                    format!("fault names cluster `{}`, which the fleet does not have", name.value),
                );
                None
            }
            Some(name) => Some(name.value.clone()),
        }
    };
    let spec = |c: &mut Compiler, v: &Option<Spanned<String>>| -> Option<super::version::VersionSpec> {
        let v = v.as_ref()?;
        match v.value.parse() {
            Ok(s) => Some(s),
            Err(e) => {
                c.d.at(v, format!("{e}"));
                None
            }
        }
    };
    let what = match r.kind.value.as_str() {
        "operation_fails" => {
            let operation = match c
                .one_of(
                    &r.operation,
                    &["control_plane", "pool", "node_image"],
                    "pool",
                    "operation",
                )
                .as_str()
            {
                "control_plane" => OpKind::ControlPlane,
                "node_image" => OpKind::NodeImage,
                _ => OpKind::Pool,
            };
            FaultKind::OperationFails {
                cluster: cluster(c)?,
                operation,
                pool: r.pool.clone(),
                code: r.code.clone().unwrap_or_else(|| "UpgradeFailed".into()),
                message: r
                    .message
                    .clone()
                    .unwrap_or_else(|| "The operation failed (injected fault).".into()),
            }
        }
        "pods_never_ready" => {
            let cl = cluster(c)?;
            let Some(version) = spec(c, &r.version) else {
                c.d.at(&r.kind, "fault `pods_never_ready` needs `version`");
                return None;
            };
            FaultKind::PodsNeverReady {
                cluster: cl,
                version,
                namespace: r.namespace.clone(),
            }
        }
        "nodes_not_ready" => FaultKind::NodesNotReady {
            cluster: cluster(c)?,
            pool: r.pool.clone(),
            version: spec(c, &r.version),
        },
        "pdb_blocks_drain" => {
            let cl = cluster(c)?;
            let Some(workload) = r.workload.clone() else {
                c.d.at(&r.kind, "fault `pdb_blocks_drain` needs `workload`");
                return None;
            };
            FaultKind::PdbBlocksDrain { cluster: cl, workload }
        }
        "throttle_storm" => FaultKind::ThrottleStorm {
            subscription: r.subscription.clone(),
        },
        "server_errors" => {
            let rate = r.rate.as_ref().map_or(0.05, |r| r.value);
            if let Some(rs) = &r.rate
                && !(0.0..=1.0).contains(&rs.value)
            {
                c.d.at(rs, format!("rate {} is outside 0..1", rs.value));
            }
            let status = match c.one_of(&r.status, &["500", "503", "drop"], "500", "status").as_str() {
                "503" => ServerErrorKind::Status503,
                "drop" => ServerErrorKind::Drop,
                _ => ServerErrorKind::Status500,
            };
            FaultKind::ServerErrors { rate, status }
        }
        "api_unreachable" => FaultKind::ApiUnreachable { cluster: cluster(c)? },
        "auto_upgrade" => FaultKind::AutoUpgrade {
            cluster: cluster(c)?,
            channel: r.channel.clone().unwrap_or_else(|| "patch".into()),
        },
        other => {
            c.d.at(
                &r.kind,
                format!("unknown fault kind `{other}` (operation_fails, pods_never_ready, nodes_not_ready, pdb_blocks_drain, throttle_storm, server_errors, api_unreachable, auto_upgrade)"),
            );
            return None;
        }
    };
    Some(Fault { what, from, to })
}
