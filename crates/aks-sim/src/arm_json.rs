//! ARM's JSON shapes (api-version 2026-10-01) for what the simulator serves:
//! managed clusters, agent pools, upgrade profiles, Kubernetes versions, maintenance
//! configurations, operation status. Checked against `tests/fixtures/azure/arm-examples/` and the
//! OpenAPI document by the tests.

use super::operation::{OpStatus, Operation};
use super::version::KubeVersion;
use super::world::{Cluster, Pool, World};
use serde_json::{Map, Value, json};

/// Fields of a managed cluster's `properties` that the simulator models; everything
/// else a client sends is kept verbatim in `extra_properties`.
pub const MODELED_CLUSTER_PROPS: &[&str] = &[
    "provisioningState",
    "powerState",
    "kubernetesVersion",
    "currentKubernetesVersion",
    "fqdn",
    "azurePortalFQDN",
    "agentPoolProfiles",
    "supportPlan",
    "autoUpgradeProfile",
    "aadProfile",
    "disableLocalAccounts",
    "maxAgentPools",
    "upgradeSettings",
];

/// Top-level fields of a managed cluster the simulator models.
pub const MODELED_CLUSTER_TOP: &[&str] = &[
    "id",
    "name",
    "type",
    "location",
    "tags",
    "eTag",
    "properties",
    "systemData",
];

/// Fields of an agent pool's properties that the simulator models.
pub const MODELED_POOL_PROPS: &[&str] = &[
    "name",
    "count",
    "vmSize",
    "osType",
    "osSKU",
    "mode",
    "orchestratorVersion",
    "currentOrchestratorVersion",
    "nodeImageVersion",
    "provisioningState",
    "powerState",
    "upgradeSettings",
    "eTag",
    "type",
    "maxPods",
    "vnetSubnetID",
];

fn merge(into: &mut Map<String, Value>, extra: &Map<String, Value>) {
    for (k, v) in extra {
        into.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

pub fn pool_properties(c: &Cluster, p: &Pool, with_name: bool) -> Value {
    let mut m = Map::new();
    if with_name {
        m.insert("name".into(), json!(p.name));
    }
    let u = &p.upgrade;
    let props = json!({
        "count": p.count,
        "vmSize": p.vm_size,
        "maxPods": p.max_pods,
        "type": "VirtualMachineScaleSets",
        "osType": p.os_type.as_str(),
        "osSKU": p.os_sku,
        "mode": p.mode.as_str(),
        "orchestratorVersion": p.orchestrator_version,
        "currentOrchestratorVersion": p.current_version.to_string(),
        "nodeImageVersion": p.node_image,
        "provisioningState": p.provisioning_state,
        "powerState": { "code": if c.stopped() { "Stopped" } else { "Running" } },
        "eTag": p.etag,
        "upgradeSettings": {
            "maxSurge": u.max_surge,
            "maxUnavailable": u.max_unavailable,
            "drainTimeoutInMinutes": u.drain_timeout_minutes,
            "nodeSoakDurationInMinutes": u.node_soak_minutes,
            "undrainableNodeBehavior": match u.undrainable {
                super::fleet::Undrainable::Schedule => "Schedule",
                super::fleet::Undrainable::Cordon => "Cordon",
            },
        },
    });
    if let Value::Object(o) = props {
        m.extend(o);
    }
    if let Some(id) = &p.vnet_subnet_id {
        m.insert("vnetSubnetID".into(), json!(id));
    }
    merge(&mut m, &p.extra);
    Value::Object(m)
}

pub fn agent_pool(c: &Cluster, p: &Pool) -> Value {
    json!({
        "id": format!("{}/agentPools/{}", c.id(), p.name),
        "name": p.name,
        "type": "Microsoft.ContainerService/managedClusters/agentPools",
        "properties": pool_properties(c, p, false),
    })
}

pub fn managed_cluster(c: &Cluster) -> Value {
    let mut props = Map::new();
    let base = json!({
        "provisioningState": c.provisioning_state,
        "powerState": { "code": if c.stopped() { "Stopped" } else { "Running" } },
        "kubernetesVersion": c.kubernetes_version,
        "currentKubernetesVersion": c.current_version.to_string(),
        "fqdn": c.fqdn,
        "azurePortalFQDN": c.fqdn.replace(".hcp.", ".portal.hcp."),
        "agentPoolProfiles": c.pools.iter().map(|p| pool_properties(c, p, true)).collect::<Vec<_>>(),
        "supportPlan": c.support_plan,
        "autoUpgradeProfile": {
            "upgradeChannel": c.auto_upgrade_channel,
            "nodeOSUpgradeChannel": c.node_os_upgrade_channel,
        },
        "disableLocalAccounts": c.disable_local_accounts,
        "maxAgentPools": 100,
    });
    if let Value::Object(o) = base {
        props.extend(o);
    }
    if c.entra_id {
        props.insert(
            "aadProfile".into(),
            json!({ "managed": true, "enableAzureRBAC": true, "tenantID": "" }),
        );
    }
    if let Some(u) = &c.upgrade_settings {
        props.insert("upgradeSettings".into(), u.clone());
    }
    merge(&mut props, &c.extra_properties);
    let mut top = Map::new();
    let base = json!({
        "id": c.id(),
        "name": c.name,
        "type": "Microsoft.ContainerService/ManagedClusters",
        "location": c.location,
        "tags": c.tags,
        "eTag": c.etag,
    });
    if let Value::Object(o) = base {
        top.extend(o);
    }
    merge(&mut top, &c.extra_top);
    top.insert("properties".into(), Value::Object(props));
    Value::Object(top)
}

fn upgrade_list(v: &[(KubeVersion, bool)]) -> Value {
    Value::Array(
        v.iter()
            .map(|(k, pre)| {
                if *pre {
                    json!({ "kubernetesVersion": k.to_string(), "isPreview": true })
                } else {
                    json!({ "kubernetesVersion": k.to_string() })
                }
            })
            .collect(),
    )
}

pub fn cluster_upgrade_profile(w: &World, c: &Cluster) -> Value {
    let cp = w.control_plane_upgrades(&c.location, c.current_version);
    let pools: Vec<Value> = c
        .pools
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "kubernetesVersion": p.current_version.to_string(),
                "osType": p.os_type.as_str(),
                "upgrades": upgrade_list(&w.pool_upgrades(&c.location, p.current_version, c.current_version)),
            })
        })
        .collect();
    json!({
        "id": format!("{}/upgradeprofiles/default", c.id()),
        "name": "default",
        "type": "Microsoft.ContainerService/managedClusters/upgradeprofiles",
        "properties": {
            "controlPlaneProfile": {
                "name": "master",
                "kubernetesVersion": c.current_version.to_string(),
                "osType": "Linux",
                "upgrades": upgrade_list(&cp),
            },
            "agentPoolProfiles": pools,
        },
    })
}

pub fn pool_upgrade_profile(w: &World, c: &Cluster, p: &Pool) -> Value {
    let latest = w
        .latest_image(&c.location, &p.os_sku)
        .unwrap_or_else(|| p.node_image.clone());
    json!({
        "id": format!("{}/agentPools/{}/upgradeProfiles/default", c.id(), p.name),
        "name": "default",
        "type": "Microsoft.ContainerService/managedClusters/agentPools/upgradeProfiles",
        "properties": {
            "kubernetesVersion": p.current_version.to_string(),
            "osType": p.os_type.as_str(),
            "upgrades": upgrade_list(&w.pool_upgrades(&c.location, p.current_version, c.current_version)),
            "latestNodeImageVersion": latest,
            "recentlyUsedVersions": recently_used_versions(w, c, p),
        },
    })
}

/// `properties.recentlyUsedVersions` of a pool's upgrade profile: "List of historical good
/// versions for rollback operations", each `{orchestratorVersion, nodeImageVersion,
/// timestamp}` (`timestamp`: "when this version was last used"), newest first; `[]` when
/// the pool has nothing to roll back to (`World::rollback_targets`).
fn recently_used_versions(w: &World, c: &Cluster, p: &Pool) -> Value {
    w.rollback_targets(&c.location, p)
        .iter()
        .map(|r| {
            json!({
                "orchestratorVersion": r.version.to_string(),
                "nodeImageVersion": r.image,
                "timestamp": r.left.rfc3339(),
            })
        })
        .collect()
}

/// `GET .../managedClusters/{name}/availableAgentPoolVersions`: what a new pool of this
/// cluster may run; the region's default minor's newest GA patch is the `default`.
pub fn available_agent_pool_versions(w: &World, c: &Cluster) -> Value {
    let patches = w.region_patches(&c.location);
    let default = w
        .fleet
        .catalogue
        .iter()
        .find(|m| m.default && m.offered_in(&c.location))
        .and_then(|m| w.latest_patch(&c.location, m.minor));
    let versions: Vec<Value> = super::rules::new_pool_versions(c.current_version, &patches)
        .iter()
        .map(|(v, pre)| {
            let mut o = json!({ "kubernetesVersion": v.to_string() });
            if *pre {
                o["isPreview"] = json!(true);
            }
            if Some(*v) == default {
                o["default"] = json!(true);
            }
            o
        })
        .collect();
    json!({
        "id": format!("{}/availableagentpoolversions", c.id()),
        "name": "default",
        "type": "Microsoft.ContainerService/managedClusters/availableAgentpoolVersions",
        "properties": { "agentPoolVersions": versions },
    })
}

/// `GET .../locations/{loc}/kubernetesVersions`: every minor offered in the region with
/// its patches and where each patch may go.
pub fn kubernetes_versions(w: &World, region: &str) -> Value {
    let patches = w.region_patches(region);
    let values: Vec<Value> = w
        .fleet
        .catalogue
        .iter()
        .filter(|m| m.offered_in(region))
        .map(|m| {
            let mut pv = Map::new();
            for p in &m.patches {
                let ups: Vec<String> = super::rules::control_plane_offers(*p, &patches)
                    .iter()
                    .map(|(q, _)| q.to_string())
                    .collect();
                pv.insert(p.to_string(), json!({ "upgrades": ups }));
            }
            let mut o = json!({
                "version": m.minor.to_string(),
                "capabilities": { "supportPlan": m.support_plans },
                "patchVersions": pv,
            });
            if m.default {
                o["isDefault"] = json!(true);
            }
            if m.preview {
                o["isPreview"] = json!(true);
            }
            o
        })
        .collect();
    json!({ "values": values })
}

pub fn maintenance_configuration(c: &Cluster, name: &str, props: &Value) -> Value {
    json!({
        "id": format!("{}/maintenanceConfigurations/{name}", c.id()),
        "name": name,
        "type": "Microsoft.ContainerService/managedClusters/maintenanceConfigurations",
        "properties": props,
    })
}

/// The `Azure-AsyncOperation` status resource.
pub fn operation_status(op: &Operation) -> Value {
    // Canceling is not an async-operation status; clients see InProgress until Canceled.
    let status = match op.status {
        OpStatus::Canceling => OpStatus::InProgress,
        s => s,
    };
    let mut v = json!({
        "name": op.id,
        "status": status.as_str(),
        "startTime": op.start.rfc3339_millis(),
    });
    if let Some(end) = op.end {
        v["endTime"] = json!(end.rfc3339_millis());
    }
    if let (Some((code, message)), true) = (&op.error, op.status.is_terminal()) {
        v["error"] = json!({ "code": code, "message": message });
    }
    v
}
