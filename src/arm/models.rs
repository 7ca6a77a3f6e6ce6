//! Typed ARM models for api-version 2026-10-01, limited to what ringmaster reads and
//! writes. Every object keeps the fields it does not know in `extra`
//! (`#[serde(flatten)]`), so a GET-then-PUT never drops a property of the customer's
//! cluster.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub type Extra = Map<String, Value>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedCluster {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub location: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(rename = "eTag", default, skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
    #[serde(default)]
    pub properties: ManagedClusterProperties,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedClusterProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_state: Option<PowerState>,
    /// The requested version (`1.33` or `1.33.2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// The version the control plane runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_kubernetes_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_pool_profiles: Vec<AgentPoolProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_plan: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_upgrade_profile: Option<AutoUpgradeProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aad_profile: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_local_accounts: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_profile: Option<NetworkProfile>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `networkProfile`: preflight needs the plugin to know whether pods take subnet addresses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkProfile {
    /// azure | kubenet | none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_plugin: Option<String>,
    /// overlay (Azure CNI Overlay: pods take addresses from a private CIDR, not the subnet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_plugin_mode: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PowerState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoUpgradeProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_channel: Option<String>,
    #[serde(rename = "nodeOSUpgradeChannel", default, skip_serializing_if = "Option::is_none")]
    pub node_os_upgrade_channel: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A pool as listed inside a managed cluster (`agentPoolProfiles[]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentPoolProfile {
    pub name: String,
    #[serde(flatten)]
    pub properties: AgentPoolProperties,
}

/// An agent pool resource (`.../agentPools/{name}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentPool {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub properties: AgentPoolProperties,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentPoolProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_type: Option<String>,
    #[serde(rename = "osSKU", default, skip_serializing_if = "Option::is_none")]
    pub os_sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestrator_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_orchestrator_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_image_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_settings: Option<UpgradeSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pods: Option<u32>,
    #[serde(rename = "vnetSubnetID", default, skip_serializing_if = "Option::is_none")]
    pub vnet_subnet_id: Option<String>,
    #[serde(rename = "eTag", default, skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_timeout_in_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_soak_duration_in_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undrainable_node_behavior: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeOption {
    pub kubernetes_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_preview: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterUpgradeProfile {
    #[serde(default)]
    pub properties: ClusterUpgradeProfileProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterUpgradeProfileProperties {
    pub control_plane_profile: UpgradeProfileEntry,
    #[serde(default)]
    pub agent_pool_profiles: Vec<UpgradeProfileEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeProfileEntry {
    #[serde(default)]
    pub name: Option<String>,
    pub kubernetes_version: String,
    #[serde(default)]
    pub os_type: Option<String>,
    #[serde(default)]
    pub upgrades: Vec<UpgradeOption>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolUpgradeProfile {
    #[serde(default)]
    pub properties: PoolUpgradeProfileProperties,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolUpgradeProfileProperties {
    pub kubernetes_version: String,
    #[serde(default)]
    pub os_type: Option<String>,
    #[serde(default)]
    pub upgrades: Vec<UpgradeOption>,
    #[serde(default)]
    pub latest_node_image_version: Option<String>,
    /// What the pool may be rolled back to (api-version 2026-10-01; AKS keeps a pool's
    /// previous version and image for 7 days, and only versions it still supports).
    #[serde(default)]
    pub recently_used_versions: Vec<RecentlyUsedVersion>,
}

/// An entry of a pool's `recentlyUsedVersions`: a rollback target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentlyUsedVersion {
    #[serde(default)]
    pub orchestrator_version: Option<String>,
    #[serde(default)]
    pub node_image_version: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
}

/// `GET .../locations/{loc}/kubernetesVersions` (note the key `values`, no paging).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KubernetesVersionList {
    #[serde(default)]
    pub values: Vec<KubernetesVersion>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesVersion {
    pub version: String,
    #[serde(default)]
    pub is_default: Option<bool>,
    #[serde(default)]
    pub is_preview: Option<bool>,
    #[serde(default)]
    pub capabilities: Option<KubernetesVersionCapabilities>,
    #[serde(default)]
    pub patch_versions: BTreeMap<String, PatchVersion>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesVersionCapabilities {
    #[serde(default)]
    pub support_plan: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PatchVersion {
    #[serde(default)]
    pub upgrades: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceConfiguration {
    pub name: String,
    #[serde(default)]
    pub properties: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CredentialResults {
    #[serde(default)]
    pub kubeconfigs: Vec<CredentialResult>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CredentialResult {
    pub name: String,
    /// Base64 kubeconfig. Secret: never logged.
    pub value: String,
}

/// The status resource behind `Azure-AsyncOperation`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationStatus {
    #[serde(default)]
    pub name: Option<String>,
    pub status: String,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    #[serde(default)]
    pub error: Option<OperationError>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// One entry of a usage list: `Microsoft.Compute/locations/{l}/usages` (vCPUs per VM
/// family, `cores` for the region) or `Microsoft.Network/virtualNetworks/{v}/usages`
/// (addresses per subnet, `id` the subnet's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub current_value: i64,
    pub limit: i64,
    #[serde(default)]
    pub name: UsageName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageName {
    #[serde(default)]
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localized_value: Option<String>,
}

/// A page of a list answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(default)]
    pub next_link: Option<String>,
}

/// Whether a provisioning state is terminal.
pub fn is_terminal_state(s: &str) -> bool {
    matches!(s, "Succeeded" | "Failed" | "Canceled")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The official example answers parse, and writing them back loses nothing.
    #[test]
    fn official_examples_round_trip() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/azure/arm-examples");
        let read = |f: &str| -> Value {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap();
            v["responses"]["200"]["body"].clone()
        };
        let mc_json = read("ManagedClustersGet.json");
        let mc: ManagedCluster = serde_json::from_value(mc_json.clone()).unwrap();
        assert_eq!(mc.properties.current_kubernetes_version.as_deref(), Some("1.9.6"));
        assert_eq!(mc.properties.agent_pool_profiles[0].properties.count, Some(3));
        assert_eq!(
            serde_json::to_value(&mc).unwrap(),
            mc_json,
            "no field lost in a round trip"
        );
        let pool_json = read("AgentPoolsGet.json");
        let pool: AgentPool = serde_json::from_value(pool_json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&pool).unwrap(), pool_json);
        let up: ClusterUpgradeProfile = serde_json::from_value(read("ManagedClustersGetUpgradeProfile.json")).unwrap();
        assert_eq!(up.properties.control_plane_profile.upgrades.len(), 2);
        let pup: PoolUpgradeProfile = serde_json::from_value(read("AgentPoolsGetUpgradeProfile.json")).unwrap();
        assert_eq!(
            pup.properties.latest_node_image_version.as_deref(),
            Some("AKSUbuntu:1604:2020.03.11")
        );
        let kv: KubernetesVersionList = serde_json::from_value(read("KubernetesVersions_List.json")).unwrap();
        assert_eq!(kv.values.len(), 4);
        assert_eq!(kv.values[1].is_default, Some(true));
    }
}
