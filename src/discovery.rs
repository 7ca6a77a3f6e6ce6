//! One poll of the fleet, within ARM's budget: the managed-cluster list of each
//! subscription (paged), `kubernetesVersions` once per region, and one pool upgrade
//! profile per (region, OS SKU) for the latest node image, instead of a call per
//! cluster and per pool. The per-cluster upgrade profile is read only right before
//! acting on a cluster (by the engine), not here.

use crate::arm::models::{AgentPoolProfile, KubernetesVersionList, ManagedCluster};
use crate::arm::{AksClient, ArmError, ClusterId};
use crate::domain::fleet::{
    Catalogue, ClusterState, FleetSnapshot, MinorRelease, OsType, PoolMode, PoolState, RegionCatalogue,
    normalize_location,
};
use crate::domain::{KubeVersion, MinorVersion};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Something discovery could not use, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub subject: String,
    pub reason: String,
}

/// A snapshot and what did not fit in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Discovery {
    pub snapshot: FleetSnapshot,
    pub problems: Vec<Problem>,
    /// The listed ARM documents, for what the snapshot leaves out (preflight reads the
    /// pools' sizes, subnets and surge settings from here instead of reading again).
    #[serde(skip)]
    pub raw: BTreeMap<ClusterId, ManagedCluster>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("listing the clusters of subscription {subscription}: {source}")]
    List {
        subscription: String,
        #[source]
        source: ArmError,
    },
    #[error("reading the Kubernetes versions of {location}: {source}")]
    Versions {
        location: String,
        #[source]
        source: ArmError,
    },
}

/// Polls the fleet once.
pub async fn discover(
    client: &AksClient,
    subscriptions: &[String],
    now: DateTime<Utc>,
) -> Result<Discovery, DiscoveryError> {
    let mut problems = Vec::new();
    let mut clusters = Vec::new();
    let mut raw = BTreeMap::new();
    // (location, os sku) -> a pool to ask for the latest image.
    let mut image_probe: BTreeMap<(String, String), (ClusterId, String)> = BTreeMap::new();
    let mut region_sub: BTreeMap<String, String> = BTreeMap::new();
    for sub in subscriptions {
        let listed = client.list_clusters(sub).await.map_err(|source| DiscoveryError::List {
            subscription: sub.clone(),
            source,
        })?;
        for mc in listed {
            match cluster_state(sub, &mc) {
                Ok(state) => {
                    let loc = normalize_location(&state.location);
                    region_sub.entry(loc.clone()).or_insert_with(|| sub.clone());
                    for p in &state.pools {
                        image_probe
                            .entry((loc.clone(), p.os_sku.clone()))
                            .or_insert_with(|| (state.id.clone(), p.name.clone()));
                    }
                    raw.insert(state.id.clone(), mc);
                    clusters.push(state);
                }
                Err(reason) => problems.push(Problem {
                    subject: mc.id.clone().or(mc.name.clone()).unwrap_or_default(),
                    reason,
                }),
            }
        }
    }
    clusters.sort_by(|a, b| a.id.cmp(&b.id));
    let mut catalogue = Catalogue::default();
    for (loc, sub) in &region_sub {
        let list = client
            .kubernetes_versions(sub, loc)
            .await
            .map_err(|source| DiscoveryError::Versions {
                location: loc.clone(),
                source,
            })?;
        catalogue
            .regions
            .insert(loc.clone(), region_catalogue(&list, &mut problems, loc));
    }
    for ((loc, sku), (id, pool)) in &image_probe {
        match client.pool_upgrade_profile(id, pool).await {
            Ok(p) => {
                if let (Some(latest), Some(region)) =
                    (p.properties.latest_node_image_version, catalogue.regions.get_mut(loc))
                {
                    region.node_images.insert(sku.clone(), latest);
                }
            }
            Err(e) => problems.push(Problem {
                subject: format!("{loc}/{sku}"),
                reason: format!("latest node image unknown: {e}"),
            }),
        }
    }
    Ok(Discovery {
        snapshot: FleetSnapshot {
            taken_at: now,
            clusters,
            catalogue,
        },
        problems,
        raw,
    })
}

fn parse_version(s: Option<&str>, what: &str) -> Result<KubeVersion, String> {
    let s = s.ok_or_else(|| format!("{what} is missing"))?;
    s.parse()
        .map_err(|_| format!("{what} `{s}` is not a Kubernetes version"))
}

/// What the planner needs of a managed cluster.
pub fn cluster_state(sub: &str, mc: &ManagedCluster) -> Result<ClusterState, String> {
    let id = mc
        .id
        .as_deref()
        .and_then(ClusterId::from_arm_id)
        .or_else(|| mc.name.clone().map(|n| ClusterId::new(sub, "", n)))
        .ok_or("the cluster has no id")?;
    let p = &mc.properties;
    let control_plane = parse_version(
        p.current_kubernetes_version
            .as_deref()
            .or(p.kubernetes_version.as_deref()),
        "currentKubernetesVersion",
    )?;
    let pools = p
        .agent_pool_profiles
        .iter()
        .map(pool_state)
        .collect::<Result<Vec<_>, _>>()?;
    let channel = p.auto_upgrade_profile.as_ref();
    Ok(ClusterState {
        id,
        location: mc.location.clone(),
        tags: mc.tags.clone(),
        control_plane,
        provisioning_state: p.provisioning_state.clone().unwrap_or_else(|| "Unknown".into()),
        auto_upgrade_channel: channel
            .and_then(|c| c.upgrade_channel.clone())
            .unwrap_or_else(|| "none".into()),
        node_os_upgrade_channel: channel
            .and_then(|c| c.node_os_upgrade_channel.clone())
            .unwrap_or_else(|| "NodeImage".into()),
        pools,
        maintenance: Vec::new(),
    })
}

fn pool_state(p: &AgentPoolProfile) -> Result<PoolState, String> {
    let q = &p.properties;
    let version = parse_version(
        q.current_orchestrator_version
            .as_deref()
            .or(q.orchestrator_version.as_deref()),
        &format!("pool {} currentOrchestratorVersion", p.name),
    )?;
    let windows = q.os_type.as_deref().is_some_and(|o| o.eq_ignore_ascii_case("Windows"));
    Ok(PoolState {
        name: p.name.clone(),
        mode: if q.mode.as_deref().is_some_and(|m| m.eq_ignore_ascii_case("System")) {
            PoolMode::System
        } else {
            PoolMode::User
        },
        os_type: if windows { OsType::Windows } else { OsType::Linux },
        os_sku: q
            .os_sku
            .clone()
            .unwrap_or_else(|| if windows { "Windows2022".into() } else { "Ubuntu".into() }),
        version,
        node_image: q.node_image_version.clone().unwrap_or_default(),
        provisioning_state: q.provisioning_state.clone().unwrap_or_else(|| "Unknown".into()),
    })
}

fn region_catalogue(list: &KubernetesVersionList, problems: &mut Vec<Problem>, loc: &str) -> RegionCatalogue {
    let mut minors = Vec::new();
    for v in &list.values {
        let Ok(minor) = v.version.parse::<MinorVersion>() else {
            problems.push(Problem {
                subject: loc.into(),
                reason: format!("kubernetesVersions lists `{}`, not a minor version", v.version),
            });
            continue;
        };
        let mut patches: Vec<KubeVersion> = v.patch_versions.keys().filter_map(|p| p.parse().ok()).collect();
        patches.sort();
        minors.push(MinorRelease {
            minor,
            patches,
            is_preview: v.is_preview.unwrap_or(false),
            is_default: v.is_default.unwrap_or(false),
            support_plans: v
                .capabilities
                .as_ref()
                .map(|c| c.support_plan.clone())
                .unwrap_or_default(),
            end_of_support: None,
        });
    }
    minors.sort_by_key(|m| m.minor);
    RegionCatalogue {
        minors,
        node_images: BTreeMap::new(),
    }
}

/// Every patch a region offers with its preview flag, ascending (what the shared rules take).
pub fn region_patches(region: &RegionCatalogue) -> Vec<(KubeVersion, bool)> {
    let mut v: Vec<(KubeVersion, bool)> = region
        .minors
        .iter()
        .flat_map(|m| m.patches.iter().map(move |p| (*p, m.is_preview)))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The subscriptions a principal can see (`GET /subscriptions`).
pub async fn list_subscriptions(client: &AksClient) -> Result<Vec<String>, ArmError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Sub {
        subscription_id: String,
    }
    #[derive(serde::Deserialize)]
    struct Page {
        #[serde(default)]
        value: Vec<Sub>,
    }
    let url = client
        .http()
        .url("/subscriptions")
        .replace(crate::arm::API_VERSION, "2022-12-01");
    let page: Page = client.http().get_json(&url).await?;
    let set: BTreeSet<String> = page.value.into_iter().map(|s| s.subscription_id).collect();
    Ok(set.into_iter().collect())
}

/// Reads every cluster's maintenance configurations into the snapshot (one read per
/// cluster: for on-demand planning, and for the clusters about to be acted on).
/// A cluster whose configurations cannot be read keeps none and gets a problem.
pub async fn fetch_maintenance(client: &AksClient, d: &mut Discovery) {
    use futures::StreamExt;
    let ids: Vec<ClusterId> = d.snapshot.clusters.iter().map(|c| c.id.clone()).collect();
    // One GET per cluster (ARM has no fleet-wide list of them): a few in flight at once,
    // answers kept in fleet order; the client's ARM budget still paces them.
    let answers: Vec<_> = futures::stream::iter(ids)
        .map(|id| async move { client.maintenance_configurations(&id).await })
        .buffered(MAINTENANCE_READS_IN_FLIGHT)
        .collect()
        .await;
    for (c, answer) in d.snapshot.clusters.iter_mut().zip(answers) {
        match answer {
            Ok(list) => {
                c.maintenance = list
                    .into_iter()
                    .filter_map(|m| {
                        let v = serde_json::json!({ "name": m.name, "properties": m.properties });
                        match serde_json::from_value(v) {
                            Ok(mc) => Some(mc),
                            Err(e) => {
                                d.problems.push(Problem {
                                    subject: format!("{}/{}", c.id, m.name),
                                    reason: format!("maintenance configuration not understood: {e}"),
                                });
                                None
                            }
                        }
                    })
                    .collect();
            }
            Err(e) => d.problems.push(Problem {
                subject: c.id.to_string(),
                reason: format!("maintenance configurations unreadable: {e}"),
            }),
        }
    }
}

/// Maintenance-configuration reads in flight at once during discovery.
const MAINTENANCE_READS_IN_FLIGHT: usize = 16;
