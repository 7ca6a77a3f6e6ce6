//! A cluster as the world holds it (ARM's view plus its Kubernetes state) and its node
//! pools, with each pool's memory of the versions it left (the rollback targets).

use crate::clock::SimTime;
use crate::fleet::{ClusterConditions, OsType, PoolMode, UpgradeSettings};
use crate::kube_model::KubeState;
use crate::version::KubeVersion;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// ARM's view of a cluster plus its Kubernetes state.
#[derive(Debug)]
pub struct Cluster {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub tags: BTreeMap<String, String>,
    /// `kubernetesVersion` as last sent (`1.33` or `1.33.2`).
    pub kubernetes_version: String,
    pub current_version: KubeVersion,
    pub provisioning_state: &'static str,
    pub etag: String,
    pub auto_upgrade_channel: String,
    pub node_os_upgrade_channel: String,
    pub support_plan: String,
    pub entra_id: bool,
    pub disable_local_accounts: bool,
    pub maintenance: BTreeMap<String, Value>,
    pub dns_prefix: String,
    pub fqdn: String,
    /// Bearer token of the local `clusterUser` account (in the user kubeconfig).
    pub user_token: String,
    pub admin_token: String,
    pub pools: Vec<Pool>,
    /// `properties` fields the simulator does not model: kept verbatim across PUTs.
    pub extra_properties: Map<String, Value>,
    /// Top-level fields the simulator does not model (identity, sku, ...).
    pub extra_top: Map<String, Value>,
    /// The operation running on this cluster or one of its pools.
    pub operation: Option<String>,
    pub kube: KubeState,
    /// Power state, network, deprecated API calls (from the fleet file).
    pub conditions: ClusterConditions,
    /// `properties.upgradeSettings` as last sent (its `overrideSettings` bypass upgrade
    /// protections): kept and served back, so a GET-then-PUT sends it again unchanged.
    pub upgrade_settings: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct Pool {
    pub name: String,
    pub mode: PoolMode,
    pub os_type: OsType,
    pub os_sku: String,
    pub count: u32,
    /// `orchestratorVersion` as last sent.
    pub orchestrator_version: String,
    pub current_version: KubeVersion,
    /// Full node image version (`family-version`).
    pub node_image: String,
    pub vm_size: String,
    pub upgrade: UpgradeSettings,
    pub provisioning_state: &'static str,
    pub etag: String,
    pub extra: Map<String, Value>,
    pub vmss: String,
    pub next_index: u32,
    /// (virtual network, subnet) indices into `Fleet::virtual_networks`.
    pub subnet: Option<(usize, usize)>,
    /// Its full id (`vnetSubnetID`).
    pub vnet_subnet_id: Option<String>,
    pub max_pods: u32,
    /// The (version, node image) pairs this pool ran before its last upgrades, newest
    /// first: what a rollback may return to (see [`World::rollback_targets`]).
    pub recent: Vec<RecentVersion>,
}

/// A (Kubernetes version, node image) pair a pool left at `left`: an entry of its upgrade
/// profile's `recentlyUsedVersions` ("List of historical good versions for rollback
/// operations"; `timestamp` is "when this version was last used", api-version 2026-10-01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentVersion {
    pub version: KubeVersion,
    pub image: String,
    pub left: SimTime,
}

/// How long after an upgrade its rollback is offered: "available only for 7 days after
/// the upgrade completed" (`roll-back-node-pool-version.md`).
pub(crate) const ROLLBACK_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

impl Pool {
    /// Remembers the pair the pool ran before an upgrade that just completed: newest
    /// first, one entry per pair, nothing kept past [`ROLLBACK_WINDOW`].
    pub fn remember(&mut self, version: KubeVersion, image: String, now: SimTime) {
        self.recent
            .retain(|r| !(r.version == version && r.image == image) && now.since(r.left) <= ROLLBACK_WINDOW);
        self.recent.insert(
            0,
            RecentVersion {
                version,
                image,
                left: now,
            },
        );
    }
}

impl Cluster {
    pub fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerService/managedClusters/{}",
            self.subscription, self.resource_group, self.name
        )
    }

    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    pub fn pool_mut(&mut self, name: &str) -> Option<&mut Pool> {
        self.pools.iter_mut().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// Stopped (`powerState.code: Stopped`): its VMs are deallocated, its API server down.
    pub fn stopped(&self) -> bool {
        self.conditions.stopped
    }

    pub fn classic_azure_cni(&self) -> bool {
        self.conditions.classic_azure_cni()
    }
}
