//! The cluster as it was before a step, so the gate after it can tell what the step
//! broke from what was already so (crash loops, readiness per owner, nodes Ready).
//! Serializable both ways: the engine persists it with the run, so a restarted daemon
//! compares with the same baseline instead of a post-step one.

use super::reason::{OwnerRef, Reason};
use super::snapshot::KubeSnapshot;
use super::{GateSpec, selects_namespace};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One owner before the step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerBaseline {
    pub owner: OwnerRef,
    pub desired: u32,
    pub existing: u32,
    pub ready: u32,
    pub crash_looping: u32,
    pub restarts: u32,
}

/// One node before the step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeBaseline {
    pub name: String,
    pub pool: Option<String>,
    pub ready: bool,
}

/// The cluster before a step: owners of the selected namespaces and every node.
///
/// The engine keeps it with the cluster's run (`engine::ClusterRun::baseline`), typed:
/// a stored one that does not decode fails the state's load instead of becoming "no
/// baseline". The default is an empty baseline of unsynced watches, which
/// [`unreadable`](Baseline::unreadable) refuses to compare with (fail closed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub taken_at: DateTime<Utc>,
    /// Copied from the snapshot: a baseline of unsynced watches or an unreadable API is
    /// kept (the signature promises a baseline) but refuses to be compared with.
    pub synced: bool,
    pub api_error: Option<String>,
    /// Sorted by owner; only namespaces the spec selects.
    pub owners: Vec<OwnerBaseline>,
    /// Sorted by name.
    pub nodes: Vec<NodeBaseline>,
}

impl Baseline {
    /// Takes the baseline from the snapshot before a step. Namespaces the spec does not
    /// select are left out (the gate never compares them), which keeps persisted runs small.
    pub fn from_snapshot(snap: &KubeSnapshot, spec: &GateSpec) -> Baseline {
        let mut owners: Vec<OwnerBaseline> = snap
            .owners
            .iter()
            .filter(|o| selects_namespace(spec, &o.owner.namespace))
            .map(|o| OwnerBaseline {
                owner: OwnerRef::from(&o.owner),
                desired: o.desired,
                existing: o.existing,
                ready: o.ready,
                crash_looping: o.crash_looping,
                restarts: o.restarts,
            })
            .collect();
        owners.sort_by(|a, b| a.owner.cmp(&b.owner));
        let mut nodes: Vec<NodeBaseline> = snap
            .nodes
            .iter()
            .map(|n| NodeBaseline {
                name: n.name.clone(),
                pool: n.pool.clone(),
                ready: n.ready,
            })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Baseline {
            taken_at: snap.taken_at,
            synced: snap.synced,
            api_error: snap.api_error.clone(),
            owners,
            nodes,
        }
    }

    /// Why this baseline cannot be compared with, if it cannot: taken while the API was
    /// unreadable or before the watches synced, it may miss owners and nodes, and a
    /// missing owner can hide a regression. The engine should not start a step on such
    /// a baseline; take another on the next watch change.
    pub fn unreadable(&self) -> Option<Reason> {
        if self.api_error.is_some() || !self.synced {
            Some(Reason::BaselineUnreadable {
                error: self.api_error.clone(),
            })
        } else {
            None
        }
    }
}
