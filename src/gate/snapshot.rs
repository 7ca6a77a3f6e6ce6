//! What the health gates read of a cluster: compact facts about pods (by owner), their
//! owners' desired replicas, and nodes. Plain data: the Kubernetes watches (`kube`) build
//! it from their events, the gates judge it; nothing else of the objects is kept.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A pod's owner: (namespace, kind, name); pods without an owner are their own owner.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct OwnerKey {
    pub namespace: String,
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeInfo {
    pub name: String,
    pub pool: Option<String>,
    pub ready: bool,
    pub unschedulable: bool,
    pub kubelet_version: String,
    pub node_image: Option<String>,
}

/// Pods of one owner, against what the owner wants.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnerPods {
    pub owner: OwnerKey,
    /// The owner's desired replicas, when the owner is known (ReplicaSets); else the
    /// number of pods that exist.
    pub desired: u32,
    pub existing: u32,
    pub ready: u32,
    pub restarts: u32,
    pub crash_looping: u32,
    pub not_ready_pods: Vec<String>,
}

/// The gates' view of one cluster at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KubeSnapshot {
    pub taken_at: DateTime<Utc>,
    /// Every watch has listed once since it (re)started.
    pub synced: bool,
    /// The last watch error, if the API could not be read since (gates fail closed).
    pub api_error: Option<String>,
    pub owners: Vec<OwnerPods>,
    pub nodes: Vec<NodeInfo>,
}
