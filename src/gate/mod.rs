//! Health gates: after each step of a cluster's upgrade, is the cluster healthy enough to
//! go on? Pure functions over a [`KubeSnapshot`] (what the watches saw), the policy's
//! [`GateSpec`], the [`Baseline`] taken before the step and what the step should have
//! left behind ([`NodeExpectation`]). No I/O, no clock: the runtime calls [`evaluate`] on
//! every watch change and hands the verdict to the engine, whose `check_gate`
//! (`engine::drive`) alone decides pass, wait or time out from the settle and timeout.
//!
//! **Fail closed.** A gate passes only on positive evidence: an unreadable API, watches
//! that have not listed yet, or a baseline that cannot be trusted are [`Blocked`], never
//! [`Healthy`]. Every [`Reason`] names what is wrong (namespace/owner and pods, node,
//! numbers found vs required) for the terminal, the status API and the audit log.
//!
//! What is checked (see [`pods`] and [`nodes`] for the details and why):
//! - every selected owner has at least `min_ready_ratio` of its *desired* replicas Ready
//!   (per owner, not over the cluster: one workload going down must not hide behind
//!   many healthy ones);
//! - no owner has more crash-looping pods than in the baseline;
//! - with `no_regression`, no owner's Ready ratio fell below its baseline by more than
//!   `regression_tolerance`;
//! - the nodes the step touched are Ready and on the expected kubelet version and node
//!   image; other nodes are Ready (`nodes_ready`).
//!
//! A pre-flight check before a cluster's first step is `evaluate(snap, spec,
//! Some(&Baseline::from_snapshot(snap, spec)), &NodeExpectation::default())`: the
//! cluster compared with itself, so only the absolute checks can block.

mod baseline;
pub mod nodes;
pub mod pods;
mod reason;
pub mod snapshot;
#[cfg(test)]
mod tests;

pub use baseline::{Baseline, NodeBaseline, OwnerBaseline};
pub use reason::{Blocked, MAX_PODS_LISTED, OwnerRef, Reason};
pub use snapshot::{KubeSnapshot, NodeInfo, OwnerKey, OwnerPods};

use serde::{Deserialize, Serialize};
use std::fmt;

/// The policy's gate settings, used as they are (`policy.gates`).
pub type GateSpec = crate::policy::Gates;

/// What a step should have left behind on the nodes.
///
/// After a pool step: `pool` and the pool's new kubelet version and/or node image. After
/// a control-plane step: nothing (nodes are only checked for readiness). For a final
/// gate over the whole cluster: `pool: None` with a version or image (every node).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeExpectation {
    /// The agent pool the step upgraded; `None`: the expectations apply to every node.
    pub pool: Option<String>,
    /// As the kubelet reports it (`v1.33.3`); a leading `v` is optional on both sides.
    pub kubelet_version: Option<String>,
    /// As the `kubernetes.azure.com/node-image-version` label says
    /// (`AKSUbuntu-2204gen2containerd-202507.21.0`); compared exactly.
    pub node_image: Option<String>,
}

impl NodeExpectation {
    /// Whether the expectation is about some nodes at all (else only readiness counts).
    pub fn targets_nodes(&self) -> bool {
        self.pool.is_some() || self.kubelet_version.is_some() || self.node_image.is_some()
    }
}

/// What a passing evaluation saw, for the status line and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthy {
    /// Owners whose readiness was checked (selected namespaces, Jobs left out).
    pub owners: u32,
    /// Ready pods, counting at most the desired number per owner.
    pub pods_ready: u32,
    /// Desired pods over the same owners.
    pub pods_desired: u32,
    /// Nodes checked.
    pub nodes: u32,
}

impl fmt::Display for Healthy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "healthy: {}/{} pods Ready over {} owners, {} nodes",
            self.pods_ready, self.pods_desired, self.owners, self.nodes
        )
    }
}

/// The result of one evaluation.
pub type Verdict = Result<Healthy, Blocked>;

/// Whether the gate counts `namespace`: in `include_namespaces` when that list is not
/// empty, and not in `exclude_namespaces`. `kube-system` is counted unless excluded:
/// a broken CoreDNS or CNI after an upgrade is exactly what a gate should catch.
pub fn selects_namespace(spec: &GateSpec, namespace: &str) -> bool {
    let pr = &spec.pod_readiness;
    (pr.include_namespaces.is_empty() || pr.include_namespaces.iter().any(|n| n == namespace))
        && !pr.exclude_namespaces.iter().any(|n| n == namespace)
}

/// Judges one snapshot. Every reason found is returned, in a stable order (API and
/// baseline first, then nodes by name, then owners by namespace/kind/name), so two
/// evaluations of the same facts give the same result.
pub fn evaluate(
    snap: &KubeSnapshot,
    spec: &GateSpec,
    baseline: Option<&Baseline>,
    expect: &NodeExpectation,
) -> Verdict {
    let mut reasons = Vec::new();
    if let Some(error) = &snap.api_error {
        reasons.push(Reason::ApiError { error: error.clone() });
    }
    if !snap.synced {
        reasons.push(Reason::WatchesNotSynced);
    }
    if !reasons.is_empty() {
        // What the snapshot holds may be stale or partial: judging it would only add
        // misleading reasons.
        return Err(Blocked { reasons });
    }
    let baseline = match baseline {
        Some(b) => match b.unreadable() {
            Some(r) => {
                reasons.push(r);
                None
            }
            None => Some(b),
        },
        None => {
            if spec.no_regression {
                reasons.push(Reason::BaselineMissing);
            }
            None
        }
    };
    let nodes = nodes::check(snap, spec, baseline, expect, &mut reasons);
    let pods = pods::check(snap, spec, baseline, &mut reasons);
    if reasons.is_empty() {
        Ok(Healthy {
            owners: pods.owners,
            pods_ready: pods.ready,
            pods_desired: pods.desired,
            nodes,
        })
    } else {
        Err(Blocked { reasons })
    }
}
