//! Why a gate is blocked, as data: each [`Reason`] names exactly what is wrong (which
//! owner and pods, which node, which numbers), prints as one terminal line and serializes
//! (tagged by `reason`) for the audit log and the API.

use super::snapshot::OwnerKey;
use serde::{Deserialize, Serialize};
use std::fmt;

/// At most this many pod names are kept per reason: enough to find the culprits, bounded
/// so a 1,000-replica workload does not bloat the audit log (the counts stay exact).
pub const MAX_PODS_LISTED: usize = 10;

/// At most this many pod names are printed on a reason's terminal line.
const PODS_SHOWN: usize = 3;

/// A pod owner as the gate reports and remembers it (`namespace/Kind/name`).
///
/// Its own type rather than [`OwnerKey`] because baselines are persisted and read back,
/// and `OwnerKey` only serializes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OwnerRef {
    pub namespace: String,
    pub kind: String,
    pub name: String,
}

impl From<&OwnerKey> for OwnerRef {
    fn from(k: &OwnerKey) -> Self {
        Self {
            namespace: k.namespace.clone(),
            kind: k.kind.clone(),
            name: k.name.clone(),
        }
    }
}

impl fmt::Display for OwnerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.kind, self.name)
    }
}

/// One thing that keeps a gate from passing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// The cluster's API could not be read (a watch or the liveness probe failed): what
    /// the gate would read may be stale, so nothing else is judged.
    ApiError { error: String },
    /// Not every watch has listed once yet: absent pods or nodes may just be unseen.
    WatchesNotSynced,
    /// The policy asks for no regression but there is no baseline to compare with.
    BaselineMissing,
    /// The baseline was taken while the API was unreadable or the watches unsynced, so
    /// comparing with it could hide a regression.
    BaselineUnreadable { error: Option<String> },
    /// An owner has fewer Ready pods than the minimum ratio of its desired replicas.
    PodsNotReady {
        owner: OwnerRef,
        ready: u32,
        desired: u32,
        existing: u32,
        /// `ready / desired`.
        ratio: f64,
        required: f64,
        /// Pods that exist but are not Ready (at most [`MAX_PODS_LISTED`]).
        not_ready_pods: Vec<String>,
        /// How many pods exist but are not Ready (exact).
        not_ready: u32,
    },
    /// An owner has more crash-looping pods than in the baseline.
    NewCrashLoop {
        owner: OwnerRef,
        crash_looping: u32,
        baseline_crash_looping: u32,
        restarts: u32,
        baseline_restarts: u32,
    },
    /// An owner's Ready ratio fell below its baseline by more than the tolerance.
    ReadinessRegression {
        owner: OwnerRef,
        ready: u32,
        desired: u32,
        ratio: f64,
        baseline_ready: u32,
        baseline_desired: u32,
        baseline_ratio: f64,
        tolerance: f64,
    },
    /// A node that must be Ready is not.
    NodeNotReady { node: String, pool: Option<String> },
    /// A node of the upgraded pool runs another kubelet version.
    NodeWrongVersion {
        node: String,
        pool: Option<String>,
        found: String,
        expected: String,
    },
    /// A node of the upgraded pool runs another node image.
    NodeWrongImage {
        node: String,
        pool: Option<String>,
        found: Option<String>,
        expected: String,
    },
    /// The upgraded pool has no node at all (a missing pool label, or every node gone).
    PoolHasNoNodes { pool: String },
}

fn pool_suffix(pool: &Option<String>) -> String {
    pool.as_ref().map_or(String::new(), |p| format!(" (pool {p})"))
}

fn pod_list(pods: &[String], total: u32) -> String {
    let shown: Vec<&str> = pods.iter().take(PODS_SHOWN).map(String::as_str).collect();
    let more = (total as usize).saturating_sub(shown.len());
    let mut s = shown.join(", ");
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    s
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ApiError { error } => write!(f, "API unreadable: {error}"),
            Reason::WatchesNotSynced => write!(f, "watches not synced yet"),
            Reason::BaselineMissing => write!(f, "no baseline to check for regressions"),
            Reason::BaselineUnreadable { error } => match error {
                Some(e) => write!(f, "baseline taken while the API was unreadable: {e}"),
                None => write!(f, "baseline taken before the watches synced"),
            },
            Reason::PodsNotReady {
                owner,
                ready,
                desired,
                existing,
                ratio,
                required,
                not_ready_pods,
                not_ready,
            } => {
                write!(f, "{owner}: {ready}/{desired} pods Ready ({ratio:.2} < {required:.2})")?;
                let missing = desired.saturating_sub(*existing);
                if missing > 0 {
                    write!(f, "; {missing} missing")?;
                }
                if *not_ready > 0 {
                    write!(f, "; not Ready: {}", pod_list(not_ready_pods, *not_ready))?;
                }
                Ok(())
            }
            Reason::NewCrashLoop {
                owner,
                crash_looping,
                baseline_crash_looping,
                restarts,
                baseline_restarts,
            } => write!(
                f,
                "{owner}: {crash_looping} pods in CrashLoopBackOff (baseline {baseline_crash_looping}); \
                 restarts {restarts} (baseline {baseline_restarts})"
            ),
            Reason::ReadinessRegression {
                owner,
                ready,
                desired,
                ratio,
                baseline_ready,
                baseline_desired,
                baseline_ratio,
                tolerance,
            } => write!(
                f,
                "{owner}: Ready {ready}/{desired} ({ratio:.2}) regressed from {baseline_ready}/{baseline_desired} \
                 ({baseline_ratio:.2}), tolerance {tolerance:.2}"
            ),
            Reason::NodeNotReady { node, pool } => write!(f, "node {node}{}: NotReady", pool_suffix(pool)),
            Reason::NodeWrongVersion {
                node,
                pool,
                found,
                expected,
            } => write!(
                f,
                "node {node}{}: kubelet {found}, expected {expected}",
                pool_suffix(pool)
            ),
            Reason::NodeWrongImage {
                node,
                pool,
                found,
                expected,
            } => write!(
                f,
                "node {node}{}: node image {}, expected {expected}",
                pool_suffix(pool),
                found.as_deref().unwrap_or("unknown")
            ),
            Reason::PoolHasNoNodes { pool } => write!(f, "pool {pool}: no nodes found"),
        }
    }
}

/// A gate that does not pass, with every reason found (never empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blocked {
    pub reasons: Vec<Reason>,
}

/// One reason per line.
impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.reasons.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Blocked {}
