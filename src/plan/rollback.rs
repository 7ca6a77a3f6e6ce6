//! Whether AKS could roll back each pool a plan drains, should the pool's gate fail,
//! for rings whose `on_gate_failure` is `rollback`. Said before anything starts (plan
//! notes, preflight warnings), because the engine can only find out after the failure:
//! then the cluster is held as it is instead.
//!
//! AKS's article on rolling back a node pool (`roll-back-node-pool-version.md`): the
//! pool's previous version is a rollback target only while "the recorded Kubernetes
//! version [is] still supported by AKS". (It also says that with the node OS upgrade
//! channel on "the previous node image might not be restored": the version still rolls
//! back, and that channel is AKS's default, so it is documented, not warned about.)

use super::{ClusterPlan, StepKind};
use crate::domain::fleet::{ClusterState, RegionCatalogue};

/// A pool whose rollback AKS would refuse (or do only in part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRollbackable {
    pub pool: String,
    /// What was seen, for the humans.
    pub seen: String,
    pub why: &'static str,
}

/// The pools of `plan` that AKS could not roll back to what they run now.
pub fn not_rollbackable(
    c: &ClusterState,
    plan: &ClusterPlan,
    region: Option<&RegionCatalogue>,
) -> Vec<NotRollbackable> {
    let drained = |name: &str| {
        plan.steps.iter().any(|s| {
            matches!(&s.kind, StepKind::PoolVersion { pool, .. } | StepKind::NodeImage { pool, .. } if pool == name)
        })
    };
    let supported = |v| region.is_some_and(|r: &RegionCatalogue| r.minors.iter().any(|m| m.patches.contains(&v)));
    c.pools
        .iter()
        .filter(|p| drained(&p.name) && !supported(p.version))
        .map(|p| NotRollbackable {
            pool: p.name.clone(),
            seen: format!("{} is no longer supported in {}", p.version, c.location),
            why: "AKS lists a pool's previous version as a rollback target only while it supports that version",
        })
        .collect()
}
