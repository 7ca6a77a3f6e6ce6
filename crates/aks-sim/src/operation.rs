//! Long-running operations: control-plane upgrades, pool upgrades by AKS's surge
//! algorithm, node image upgrades, reconciles and aborts, each a state machine driven
//! by timed events. Their status is what ARM's `Azure-AsyncOperation` and `Location`
//! URLs report.
//!
//! A pool upgrade (aks-facts.md, "How AKS upgrades a pool"): add `maxSurge` nodes on
//! the target; cordon and drain as many old nodes (plus `maxUnavailable`) through
//! evictions that honour PDBs, each within `drainTimeoutInMinutes`; soak; reimage them
//! onto the target, where they become the buffer for the next batch; at the end drain
//! and delete the surge nodes.
//!
//! A rollback (`roll-back-node-pool-version.md`: it "replaces the nodes" like an
//! upgrade) is the same algorithm towards a pair the pool ran before ([`PoolGoal`]).
//! Each clean pool upgrade remembers the pair it left (`Pool::remember`), which the
//! pool's upgrade profile serves as `recentlyUsedVersions`; a rollback clears that
//! history ("Consecutive rollbacks to go back several versions are not possible").
//!
//! This file holds an operation's types; `lifecycle` starts, drives, ends and aborts
//! operations, `pool_upgrade` steps a pool upgrade, `drain` its batches and drains.

use super::clock::SimTime;
use super::fleet::OpKind;
use super::version::KubeVersion;
use super::world::World;
use std::collections::VecDeque;

mod drain;
mod lifecycle;
mod pool_upgrade;

pub use lifecycle::{abort, auto_upgrade, cancel, start, tick};
pub(crate) use lifecycle::{busy_message, wake_cluster};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpStatus {
    InProgress,
    Canceling,
    Succeeded,
    Failed,
    Canceled,
}

impl OpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OpStatus::InProgress => "InProgress",
            OpStatus::Canceling => "Canceling",
            OpStatus::Succeeded => "Succeeded",
            OpStatus::Failed => "Failed",
            OpStatus::Canceled => "Canceled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, OpStatus::Succeeded | OpStatus::Failed | OpStatus::Canceled)
    }
}

/// Which resource an operation acts on (its provisioningState, and the final result of
/// a `Location` poll).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Cluster,
    Pool(String),
}

/// One piece of work of an operation, done in order.
#[derive(Debug, Clone)]
pub enum Phase {
    ControlPlane(KubeVersion),
    PoolVersion {
        pool: String,
        version: KubeVersion,
    },
    NodeImage {
        pool: String,
    },
    /// Back to a pair of the pool's `recentlyUsedVersions` (a pool PUT whose
    /// `nodeImageVersion` names one): its nodes replaced as in a version upgrade.
    PoolRollback {
        pool: String,
        version: KubeVersion,
        image: String,
    },
    /// A PUT that changed nothing that needs nodes touched.
    Reconcile,
    /// Cancels operation `target` (an abort's own operation).
    Abort {
        target: String,
    },
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    pub cluster: usize,
    pub target: Target,
    pub status: OpStatus,
    pub start: SimTime,
    pub end: Option<SimTime>,
    pub error: Option<(String, String)>,
    pub phases: VecDeque<Phase>,
    /// Whether the current phase has begun (its first tick happened).
    pub phase_started: bool,
    pub job: Option<PoolJob>,
    /// Events carry the generation they were scheduled for; older ones are ignored.
    pub generation: u64,
    /// What kind of work the operation does (for faults and status).
    pub kind: OpKind,
    /// True for a Location-final operation whose result is the resource (node image).
    pub location_returns_resource: bool,
    /// Number of ticks (a progress figure).
    pub ticks: u64,
    /// For an abort's own operation: the operation it cancels.
    pub abort_of: Option<String>,
    /// What the operation was asked to do (its phases at the start), for inspection.
    pub work: Vec<String>,
}

/// Progress of one pool upgrade (version or node image).
#[derive(Debug, Clone)]
pub struct PoolJob {
    pub pool: String,
    pub version: KubeVersion,
    pub image: String,
    pub stage: Stage,
    pub surge_count: u32,
    pub unavailable: u32,
    pub surge: Vec<String>,
    pub batch: Vec<String>,
    pub quarantined: Vec<String>,
    pub deadline: SimTime,
    pub blocked_by: Option<String>,
    /// A rollback: at the end it clears the pool's history instead of adding to it.
    pub rollback: bool,
}

/// Where a pool phase moves the pool's nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolGoal {
    /// A Kubernetes version, on the region's latest node image (a version upgrade takes
    /// the latest image: `upgrade-node-pools.md`).
    Version(KubeVersion),
    /// The region's latest node image, on the pool's version.
    LatestImage,
    /// A (version, image) pair the pool ran before.
    Rollback { version: KubeVersion, image: String },
}

impl PoolGoal {
    /// The fault kind that matches it: a rollback replaces nodes as a version upgrade
    /// does, so `operation: pool` faults hit it.
    fn kind(&self) -> OpKind {
        match self {
            PoolGoal::LatestImage => OpKind::NodeImage,
            _ => OpKind::Pool,
        }
    }

    /// The pool's provisioningState while it runs. UNVERIFIED for a rollback: the
    /// article names no state; `Upgrading` is guessed from "like an upgrade".
    fn state(&self) -> &'static str {
        match self {
            PoolGoal::LatestImage => "UpgradingNodeImageVersion",
            _ => "Upgrading",
        }
    }

    /// The (version, image) the nodes end on.
    fn target(&self, w: &World, c: usize, p: &super::world::Pool) -> (KubeVersion, String) {
        let latest = || {
            w.latest_image(&w.clusters[c].location, &p.os_sku)
                .unwrap_or(p.node_image.clone())
        };
        match self {
            PoolGoal::Version(v) => (*v, latest()),
            PoolGoal::LatestImage => (p.current_version, latest()),
            PoolGoal::Rollback { version, image } => (*version, image.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    WaitSurgeReady,
    Draining,
    Soaking,
    Reimaging,
    DrainingSurge,
    DeletingSurge,
}

/// Why an operation could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy(pub String);
