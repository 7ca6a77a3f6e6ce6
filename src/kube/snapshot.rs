//! What the health gates read of a cluster (`gate::snapshot`: pods by owner, the owners'
//! desired replicas, nodes), built from watch events; nothing else of the objects is
//! kept.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde::Serialize;
use std::collections::BTreeMap;

/// The gates' view of a cluster is plain data of the core (`gate::snapshot`); the watches
/// fill it in here.
pub use crate::gate::snapshot::{KubeSnapshot, NodeInfo, OwnerKey, OwnerPods};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub owner: OwnerKey,
    pub node: Option<String>,
    pub phase: String,
    pub ready: bool,
    pub restarts: u32,
    /// A container waits in CrashLoopBackOff.
    pub crash_looping: bool,
}

pub(crate) fn pod_info(p: &Pod) -> Option<PodInfo> {
    let meta = &p.metadata;
    let namespace = meta.namespace.clone()?;
    let name = meta.name.clone()?;
    let owner = meta
        .owner_references
        .as_ref()
        .and_then(|o| o.iter().find(|r| r.controller == Some(true)).or(o.first()))
        .map(|r| OwnerKey {
            namespace: namespace.clone(),
            kind: r.kind.clone(),
            name: r.name.clone(),
        })
        .unwrap_or_else(|| OwnerKey {
            namespace: namespace.clone(),
            kind: "Pod".into(),
            name: name.clone(),
        });
    let status = p.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let containers = status.and_then(|s| s.container_statuses.as_ref());
    let restarts = containers.map_or(0, |cs| cs.iter().map(|c| c.restart_count.max(0) as u32).sum());
    let crash_looping = containers.is_some_and(|cs| {
        cs.iter().any(|c| {
            c.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref())
                == Some("CrashLoopBackOff")
        })
    });
    Some(PodInfo {
        namespace,
        name,
        owner,
        node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
        phase: status.and_then(|s| s.phase.clone()).unwrap_or_else(|| "Unknown".into()),
        ready,
        restarts,
        crash_looping,
    })
}

pub(crate) fn node_info(n: &Node) -> Option<NodeInfo> {
    let name = n.metadata.name.clone()?;
    let labels = n.metadata.labels.clone().unwrap_or_default();
    let status = n.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    Some(NodeInfo {
        name,
        pool: labels
            .get("kubernetes.azure.com/agentpool")
            .or(labels.get("agentpool"))
            .cloned(),
        ready,
        unschedulable: n.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false),
        kubelet_version: status
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.kubelet_version.clone())
            .unwrap_or_default(),
        node_image: labels.get("kubernetes.azure.com/node-image-version").cloned(),
    })
}

pub(super) fn replicaset_desired(rs: &ReplicaSet) -> Option<(OwnerKey, u32)> {
    let key = OwnerKey {
        namespace: rs.metadata.namespace.clone()?,
        kind: "ReplicaSet".into(),
        name: rs.metadata.name.clone()?,
    };
    Some((
        key,
        rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as u32,
    ))
}

/// Folds pods and owners into per-owner health, in deterministic order.
pub(super) fn owners(pods: &BTreeMap<(String, String), PodInfo>, desired: &BTreeMap<OwnerKey, u32>) -> Vec<OwnerPods> {
    let mut out: BTreeMap<OwnerKey, OwnerPods> = BTreeMap::new();
    for (key, d) in desired {
        out.insert(
            key.clone(),
            OwnerPods {
                owner: key.clone(),
                desired: *d,
                existing: 0,
                ready: 0,
                restarts: 0,
                crash_looping: 0,
                not_ready_pods: Vec::new(),
            },
        );
    }
    for p in pods.values() {
        let e = out.entry(p.owner.clone()).or_insert_with(|| OwnerPods {
            owner: p.owner.clone(),
            desired: 0,
            existing: 0,
            ready: 0,
            restarts: 0,
            crash_looping: 0,
            not_ready_pods: Vec::new(),
        });
        e.existing += 1;
        e.restarts += p.restarts;
        if p.ready {
            e.ready += 1;
        } else {
            e.not_ready_pods.push(p.name.clone());
        }
        if p.crash_looping {
            e.crash_looping += 1;
        }
    }
    for o in out.values_mut() {
        if !desired.contains_key(&o.owner) {
            o.desired = o.existing;
        }
    }
    out.into_values().collect()
}
