//! Node checks.
//!
//! The nodes a step targeted ([`NodeExpectation`]: the upgraded pool, or every node when
//! the expectation names no pool but a version or image) must be Ready and on the
//! expected kubelet version and node image, whatever `nodes_ready` says: a pool step
//! whose nodes are NotReady or on the old version did not succeed. Every other node must
//! be Ready when `nodes_ready` is on; when it is off, `no_regression` still requires the
//! nodes that were Ready in the baseline to be Ready now.

use super::baseline::{Baseline, NodeBaseline};
use super::reason::Reason;
use super::snapshot::{KubeSnapshot, NodeInfo};
use super::{GateSpec, NodeExpectation};
use std::collections::BTreeMap;

/// Kubelets report `v1.33.3`, ARM says `1.33.3`: both are accepted on either side.
fn same_version(found: &str, expected: &str) -> bool {
    found.trim_start_matches('v') == expected.trim_start_matches('v')
}

/// Whether the expectation is about this node.
fn targeted(expect: &NodeExpectation, node: &NodeInfo) -> bool {
    match &expect.pool {
        Some(pool) => node.pool.as_deref() == Some(pool.as_str()),
        None => expect.kubelet_version.is_some() || expect.node_image.is_some(),
    }
}

/// Appends a reason per node that is wrong (nodes by name) and returns how many nodes
/// were looked at.
pub(super) fn check(
    snap: &KubeSnapshot,
    spec: &GateSpec,
    baseline: Option<&Baseline>,
    expect: &NodeExpectation,
    reasons: &mut Vec<Reason>,
) -> u32 {
    let before: BTreeMap<&str, &NodeBaseline> = baseline
        .map_or(&[][..], |b| &b.nodes[..])
        .iter()
        .map(|n| (n.name.as_str(), n))
        .collect();
    let mut nodes: Vec<&NodeInfo> = snap.nodes.iter().collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let mut in_pool = 0u32;
    for node in &nodes {
        let target = targeted(expect, node);
        in_pool += u32::from(target && expect.pool.is_some());
        let was_ready = before.get(node.name.as_str()).is_some_and(|b| b.ready);
        let must_be_ready = target || spec.nodes_ready || (spec.no_regression && was_ready);
        if must_be_ready && !node.ready {
            reasons.push(Reason::NodeNotReady {
                node: node.name.clone(),
                pool: node.pool.clone(),
            });
        }
        if !target {
            continue;
        }
        if let Some(expected) = &expect.kubelet_version
            && !same_version(&node.kubelet_version, expected)
        {
            reasons.push(Reason::NodeWrongVersion {
                node: node.name.clone(),
                pool: node.pool.clone(),
                found: node.kubelet_version.clone(),
                expected: expected.clone(),
            });
        }
        if let Some(expected) = &expect.node_image
            && node.node_image.as_deref() != Some(expected.as_str())
        {
            reasons.push(Reason::NodeWrongImage {
                node: node.name.clone(),
                pool: node.pool.clone(),
                found: node.node_image.clone(),
                expected: expected.clone(),
            });
        }
    }
    if let Some(pool) = &expect.pool
        && in_pool == 0
    {
        // Fail closed: an upgraded pool without nodes proves nothing. (A pool scaled to
        // zero has nothing to gate: the engine passes no pool for it.)
        reasons.push(Reason::PoolHasNoNodes { pool: pool.clone() });
    }
    nodes.len() as u32
}
