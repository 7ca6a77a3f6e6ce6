//! Applies a plan to a snapshot, as AKS would, checking every step against AKS's rules
//! (`domain::rules`) on the way. A dry run for the CLI and the engine, and the oracle of
//! the planner's property tests: a plan that does not apply cleanly is a planner bug.

use super::{Plan, StepKind};
use crate::domain::KubeVersion;
use crate::domain::fleet::{ClusterId, ClusterState, FleetSnapshot, PoolState};
use crate::domain::rules::{RuleViolation, check_control_plane_upgrade, check_pool_upgrade};

/// Why a plan does not apply to a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("the plan names cluster {0}, which the snapshot does not hold")]
    FindCluster(ClusterId),
    #[error("cluster {cluster}: the plan names pool {pool}, which the cluster does not have")]
    FindPool { cluster: ClusterId, pool: String },
    #[error("cluster {cluster}: a step starts from {expected}, but {what} runs {actual}")]
    StartStep {
        cluster: ClusterId,
        what: String,
        expected: String,
        actual: String,
    },
    #[error("cluster {cluster}: AKS would refuse a step: {source}")]
    CheckRule {
        cluster: ClusterId,
        #[source]
        source: RuleViolation,
    },
}

/// The snapshot after every step of `plan`, in order. A pool version upgrade installs the
/// region's latest node image for the pool's OS SKU, as AKS does.
pub fn apply(snapshot: &FleetSnapshot, plan: &Plan) -> Result<FleetSnapshot, Box<ApplyError>> {
    let mut out = snapshot.clone();
    for (cp_plan, step) in plan.steps() {
        let id = &cp_plan.id;
        let c = out
            .clusters
            .iter_mut()
            .find(|c| &c.id == id)
            .ok_or_else(|| ApplyError::FindCluster(id.clone()))?;
        let rule = |source| ApplyError::CheckRule {
            cluster: id.clone(),
            source,
        };
        let mismatch = |what: String, expected: String, actual: String| {
            Box::new(ApplyError::StartStep {
                cluster: id.clone(),
                what,
                expected,
                actual,
            })
        };
        match &step.kind {
            StepKind::ControlPlane { from, to } => {
                if *from != c.control_plane {
                    return Err(mismatch(
                        "the control plane".into(),
                        from.to_string(),
                        c.control_plane.to_string(),
                    ));
                }
                let pools: Vec<(&str, KubeVersion)> = c.pools.iter().map(|p| (p.name.as_str(), p.version)).collect();
                check_control_plane_upgrade(*from, *to, pools).map_err(rule)?;
                c.control_plane = *to;
            }
            StepKind::PoolVersion { pool, from, to } => {
                let cp = c.control_plane;
                let latest = snapshot
                    .catalogue
                    .region(&c.location)
                    .map(|r| r.node_images.clone())
                    .unwrap_or_default();
                let p = pool_mut(c, id, pool)?;
                if *from != p.version {
                    return Err(mismatch(
                        format!("pool {pool}"),
                        from.to_string(),
                        p.version.to_string(),
                    ));
                }
                check_pool_upgrade(*from, *to, cp).map_err(rule)?;
                p.version = *to;
                if let Some(image) = latest.get(&p.os_sku) {
                    p.node_image = image.clone();
                }
            }
            StepKind::NodeImage { pool, from, to } => {
                let p = pool_mut(c, id, pool)?;
                if *from != p.node_image {
                    return Err(mismatch(
                        format!("pool {pool}'s node image"),
                        from.clone(),
                        p.node_image.clone(),
                    ));
                }
                p.node_image = to.clone();
            }
            // Never planned; applied as AKS would (no version rule: AKS checks those).
            StepKind::PoolRollback { pool, to, image, .. } => {
                let p = pool_mut(c, id, pool)?;
                p.version = *to;
                if let Some(image) = image {
                    p.node_image = image.clone();
                }
            }
        }
    }
    Ok(out)
}

/// The pool `pool` of `c`, or why not.
fn pool_mut<'a>(c: &'a mut ClusterState, id: &ClusterId, pool: &str) -> Result<&'a mut PoolState, Box<ApplyError>> {
    c.pools.iter_mut().find(|p| p.name == pool).ok_or_else(|| {
        Box::new(ApplyError::FindPool {
            cluster: id.clone(),
            pool: pool.to_string(),
        })
    })
}
