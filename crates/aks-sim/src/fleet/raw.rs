//! The fleet file as written: the serde shape of the YAML document, every field with
//! its span, read strictly (unknown fields are errors). Nothing here is checked; that is
//! `compile`'s job, so the document's shape and its rules can be read apart.

use serde::Deserialize;
use std::collections::BTreeMap;
use yaml_spans::Spanned;

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
    pub quotas: Vec<Spanned<crate::quota::RawQuota>>,
    /// Virtual networks whose subnets pools may use (`network.rs`).
    #[serde(default)]
    pub virtual_networks: Vec<Spanned<crate::network::RawVnet>>,
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
    pub deprecated_api_calls: Vec<Spanned<crate::metrics::RawDeprecatedCall>>,
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
    /// Every generated cluster's node OS upgrade channel (default NodeImage, AKS's).
    pub node_os_upgrade_channel: Option<Spanned<String>>,
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
