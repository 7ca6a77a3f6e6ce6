//! The runtime's side of claims (`store::claims`): asking for a cluster when the engine
//! prepares it, and the claim changes each save carries, derived from the clusters it
//! writes.

use super::{Shared, send};
use crate::engine::{ClusterRef, ClusterRun, ClusterStatus, Input, Rollout, StepStatus};
use crate::plan::StepKind;
use crate::store::{ClaimChanges, ClaimOutcome, Claimant};
use std::sync::Arc;
use tracing::warn;

/// Takes `id` for this rollout and tells the engine (`Claimed` or `ClusterBusy`). A
/// store that fails to answer is "busy" too: nothing acts on a cluster it could not
/// claim.
pub(super) async fn claim(sh: &Shared, cluster: ClusterRef, id: &crate::domain::fleet::ClusterId) {
    let Some(store) = sh.store.clone() else {
        // No store (a dry run): nothing else of this process can hold the cluster.
        return send(sh, Input::Claimed { cluster });
    };
    let (key, rollout, policy, priority, now) = (
        id.to_string(),
        sh.rollout_id.clone(),
        sh.policy.name.clone(),
        sh.policy.priority,
        sh.clock.now(),
    );
    let asked = store
        .run(move |s| {
            let who = Claimant {
                rollout_id: &rollout,
                policy: &policy,
                priority,
            };
            s.claim(&key, &who, "preparing (preflight, baseline)", now)
        })
        .await;
    let input = match asked {
        Ok(Ok(ClaimOutcome::Held)) => Input::Claimed { cluster },
        Ok(Ok(o)) => Input::ClusterBusy {
            cluster,
            reason: o.reason().unwrap_or_default(),
        },
        Ok(Err(e)) => {
            warn!(cluster = %id.name, error = %e, "claiming the cluster failed; asking again");
            Input::ClusterBusy {
                cluster,
                reason: format!("the claim could not be saved: {e}"),
            }
        }
        Err(e) => Input::ClusterBusy {
            cluster,
            reason: format!("the claim could not be saved: {e}"),
        },
    };
    send(sh, input)
}

/// The claims a save of `now` changes: every cluster it writes (those that changed
/// since `saved`; all of them without it) is released when finished and checked as
/// held when it works on it.
pub fn changes(now: &Rollout, saved: Option<&Rollout>) -> ClaimChanges {
    if now.status.is_terminal() {
        return ClaimChanges {
            release_all: true,
            ..Default::default()
        };
    }
    let mut out = ClaimChanges::default();
    let before: Option<Vec<&Arc<ClusterRun>>> = saved.filter(|s| s.id == now.id).map(|s| {
        s.rings
            .iter()
            .flat_map(|r| r.waves.iter().flat_map(|w| w.clusters.iter()))
            .collect()
    });
    let mut i = 0;
    for ring in &now.rings {
        for wave in &ring.waves {
            for c in &wave.clusters {
                let unchanged = before
                    .as_ref()
                    .and_then(|b| b.get(i))
                    .is_some_and(|b| Arc::ptr_eq(b, c));
                i += 1;
                if unchanged {
                    continue;
                }
                if c.status.is_finished() {
                    out.release.push(c.id.to_string());
                } else if c.status == ClusterStatus::Running || (c.status == ClusterStatus::Preparing && c.claimed) {
                    out.hold.push((c.id.to_string(), doing(c)));
                }
            }
        }
    }
    out
}

/// What the holder does on the cluster, for those who wait for it.
fn doing(c: &ClusterRun) -> String {
    if c.status == ClusterStatus::Preparing {
        return "preparing (preflight, baseline)".into();
    }
    let n = c.steps.len();
    match c.steps.iter().enumerate().find(|(_, s)| s.status != StepStatus::Done) {
        Some((i, s)) => {
            let what = match &s.kind {
                StepKind::ControlPlane { to, .. } => format!("control plane to {to}"),
                StepKind::PoolVersion { pool, to, .. } => format!("pool {pool} to {to}"),
                StepKind::NodeImage { pool, .. } => format!("node image of pool {pool}"),
                StepKind::PoolRollback { pool, to, .. } => format!("rollback of pool {pool} to {to}"),
            };
            format!("step {}/{n}, {what} ({})", i + 1, s.status.label())
        }
        None => format!("all {n} steps done, finishing"),
    }
}
