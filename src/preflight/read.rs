//! The reads preflight makes, fleet-wide, within ARM's budget.
//!
//! ARM: nothing per cluster beyond the discovery poll except `listClusterUserCredential`
//! (to reach the API server); one Compute usage list per (subscription, region) and one
//! Network usage list per virtual network that holds a pool subnet, shared by every
//! cluster there. Kubernetes (the cluster's own API server, not ARM's budget): PDBs,
//! pods, nodes and `/metrics`, four reads per cluster. Clusters are read
//! [`CONCURRENCY`] at a time.

use super::facts::{
    ClusterFacts, FleetFacts, IntOrPercent, KubeFacts, LabelSelector, NodeFacts, PdbFacts, PodFacts, SubnetUse,
    cluster_facts, parse_deprecated_metric,
};
use crate::arm::AksClient;
use crate::arm::models::ManagedCluster;
use crate::domain::fleet::{ClusterId, ClusterState, normalize_location};
use crate::identity::TokenSource;
use crate::upgrades::SupportCalendar;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Clusters whose API servers are read at once.
pub const CONCURRENCY: usize = 32;

/// What a preflight run cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadCounts {
    /// ARM requests made by preflight (after discovery): credentials and usages.
    pub arm: u64,
    /// Kubernetes API requests (to the clusters' own API servers).
    pub kube: u64,
    pub clusters: u64,
}

/// Reads one cluster's API server: PDBs, pods, nodes, and the deprecated-API metric.
pub async fn kube_facts(client: kube::Client) -> Result<KubeFacts, String> {
    let lp = ListParams::default();
    let pdbs = Api::<PodDisruptionBudget>::all(client.clone());
    let pods = Api::<Pod>::all(client.clone());
    let nodes = Api::<Node>::all(client.clone());
    let (pdbs, pods, nodes) = tokio::try_join!(pdbs.list(&lp), pods.list(&lp), nodes.list(&lp))
        .map_err(|e| format!("listing PDBs, pods and nodes: {}", kube_error(e)))?;
    let metrics = http::Request::get("/metrics")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let deprecated = client
        .request_text(metrics)
        .await
        .map(|t| parse_deprecated_metric(&t))
        .map_err(kube_error);
    Ok(KubeFacts {
        pdbs: pdbs.items.iter().filter_map(pdb_facts).collect(),
        pods: pods.items.iter().filter_map(pod_facts).collect(),
        nodes: nodes
            .items
            .iter()
            .filter_map(crate::kube::snapshot::node_info)
            .map(|n| NodeFacts {
                name: n.name,
                pool: n.pool,
                ready: n.ready,
            })
            .collect(),
        deprecated,
    })
}

/// An API error as its HTTP code and message (kube's own text embeds the whole Status).
fn kube_error(e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("HTTP {} {}: {}", s.code, s.reason, s.message),
        e => e.to_string(),
    }
}

fn int_or_percent(v: &IntOrString) -> Option<IntOrPercent> {
    match v {
        IntOrString::Int(n) => Some(IntOrPercent::Int(i64::from(*n))),
        IntOrString::String(s) => IntOrPercent::parse(s),
    }
}

fn pdb_facts(p: &PodDisruptionBudget) -> Option<PdbFacts> {
    let spec = p.spec.as_ref();
    let status = p.status.as_ref();
    Some(PdbFacts {
        namespace: p.metadata.namespace.clone()?,
        name: p.metadata.name.clone()?,
        selector: spec.and_then(|s| s.selector.as_ref()).map(|s| LabelSelector {
            match_labels: s.match_labels.clone().unwrap_or_default(),
            match_expressions: s
                .match_expressions
                .iter()
                .flatten()
                .map(|e| (e.key.clone(), e.operator.clone(), e.values.clone().unwrap_or_default()))
                .collect(),
        }),
        min_available: spec.and_then(|s| s.min_available.as_ref()).and_then(int_or_percent),
        max_unavailable: spec.and_then(|s| s.max_unavailable.as_ref()).and_then(int_or_percent),
        disruptions_allowed: status.map_or(0, |s| i64::from(s.disruptions_allowed)),
        current_healthy: status.map_or(0, |s| i64::from(s.current_healthy)),
        desired_healthy: status.map_or(0, |s| i64::from(s.desired_healthy)),
        expected_pods: status.map_or(0, |s| i64::from(s.expected_pods)),
    })
}

fn pod_facts(p: &Pod) -> Option<PodFacts> {
    let info = crate::kube::snapshot::pod_info(p)?;
    Some(PodFacts {
        labels: p.metadata.labels.clone().unwrap_or_default(),
        finished: matches!(info.phase.as_str(), "Succeeded" | "Failed"),
        namespace: info.namespace,
        name: info.name,
        node: info.node,
        ready: info.ready,
    })
}

/// Reads one cluster's Kubernetes facts through ARM's user credential.
pub async fn cluster_kube(arm: &AksClient, tokens: Arc<dyn TokenSource>, id: &ClusterId) -> Result<KubeFacts, String> {
    let client = crate::kube::client_for(arm, tokens, id)
        .await
        .map_err(|e| e.to_string())?;
    kube_facts(client).await
}

/// Reads the usages the clusters' upgraded pools draw on: Compute usages per
/// (subscription, region), Network usages per virtual network of a pool subnet.
pub async fn usages(arm: &AksClient, clusters: &[&ClusterFacts], facts: &mut FleetFacts) {
    let regions: BTreeSet<(String, String)> = clusters
        .iter()
        .map(|c| (c.state.id.subscription.clone(), normalize_location(&c.state.location)))
        .filter(|k| !facts.quotas.contains_key(k))
        .collect();
    for (sub, loc) in regions {
        let got = arm.compute_usages(&sub, &loc).await.map_err(|e| e.to_string());
        facts.quotas.insert((sub, loc), got);
    }
    let vnets: BTreeSet<String> = clusters
        .iter()
        .flat_map(|c| c.pools.values())
        .filter_map(|p| p.subnet_id.as_deref())
        .filter_map(|s| s.to_ascii_lowercase().split("/subnets/").next().map(str::to_string))
        .collect();
    for vnet in vnets {
        match arm.vnet_usages(&vnet).await {
            Ok(list) => {
                for u in list {
                    if let Some(id) = u.id {
                        facts.subnets.insert(
                            id.to_ascii_lowercase(),
                            SubnetUse {
                                used: u.current_value,
                                limit: u.limit,
                            },
                        );
                    }
                }
            }
            Err(e) => {
                facts.vnet_errors.insert(vnet, e.to_string());
            }
        }
    }
}

/// Reads everything preflight needs for `ids` (clusters of the discovery poll, whose
/// ARM documents are in `raw`).
pub async fn read_fleet(
    arm: &AksClient,
    tokens: Arc<dyn TokenSource>,
    states: &[ClusterState],
    raw: &BTreeMap<ClusterId, ManagedCluster>,
    ids: &[ClusterId],
    support: SupportCalendar,
) -> (FleetFacts, ReadCounts) {
    let stats = &arm.http().stats;
    let arm_before = stats.calls.load(Ordering::Relaxed);
    let wanted: BTreeSet<&ClusterId> = ids.iter().collect();
    let jobs = states.iter().filter(|s| wanted.contains(&s.id)).filter_map(|s| {
        let mc = raw.get(&s.id)?;
        let tokens = tokens.clone();
        Some(async move {
            let kube = cluster_kube(arm, tokens, &s.id).await;
            cluster_facts(s.clone(), mc, kube)
        })
    });
    let clusters: Vec<ClusterFacts> = futures::stream::iter(jobs)
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut facts = FleetFacts {
        support,
        ..Default::default()
    };
    let refs: Vec<&ClusterFacts> = clusters.iter().collect();
    usages(arm, &refs, &mut facts).await;
    let kube_reads = clusters.iter().filter(|c| c.kube.is_ok()).count() as u64 * 4;
    let counts = ReadCounts {
        arm: stats.calls.load(Ordering::Relaxed) - arm_before,
        kube: kube_reads,
        clusters: clusters.len() as u64,
    };
    facts.clusters = clusters.into_iter().map(|c| (c.state.id.clone(), c)).collect();
    (facts, counts)
}
