//! The planner: `(fleet snapshot, policy, now) -> Plan`, pure and deterministic.
//!
//! A plan says, ring by ring and wave by wave, which steps each cluster needs to reach
//! the rollout's one target, why each step is there, and when it may start at the
//! earliest; and which clusters are skipped, and why. The engine executes plans; the CLI
//! prints them (`ringmaster plan`, [`render::table`] / [`render::json`]). JSON field names
//! are camelCase, like the fleet snapshot's and ARM's.
//!
//! Order of steps in one cluster, and why (AKS's rules are in `domain::rules`; the
//! simulator checks them against its own reading of AKS's docs):
//! 1. The control plane moves one minor at a time towards the target.
//! 2. Before each control-plane move, only the pools that the move would leave more than
//!    `pool_max_minor_lag` minors behind (three from 1.28) are upgraded, straight to the
//!    control plane's current version: AKS lets one pool upgrade cross several minors, so
//!    every drain moves a pool as far as the rules permit and none lands on a version it
//!    must leave again sooner than necessary.
//! 3. With the control plane on the target, the pools follow, system pools first (or the
//!    policy's `pool_order`), each in one upgrade to the target.
//! 4. Node images last, and only for pools without a version step: a version upgrade
//!    already installs the region's latest image.
//!
//! Pool steps (2-4) are only for the pools the policy's `pools` filter selects. The
//! control plane's steps do not change with it, but every control-plane move is still
//! checked against every pool: one that would leave a pool the filter excludes beyond
//! AKS's skew makes the cluster skipped, with the reason, rather than planned into a
//! refusal.

mod apply;
mod cluster;
pub mod render;
pub mod rollback;
mod target;
#[cfg(test)]
mod tests;
mod timing;

pub use apply::{ApplyError, apply};

use crate::domain::fleet::{ClusterId, ClusterState, FleetSnapshot};
use crate::domain::{KubeVersion, MinorVersion};
use crate::policy::{Membership, Policy, WaveMembers};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub policy: String,
    /// The `now` the plan was made for.
    pub generated_at: DateTime<Utc>,
    /// The first start time the policy's `schedule.start` allows (`now` without one);
    /// `None` when it never fires within the search horizon.
    pub rollout_start: Option<DateTime<Utc>>,
    pub target: ResolvedTarget,
    pub rings: Vec<RingPlan>,
    pub skipped: Vec<Skipped>,
}

impl Plan {
    /// Every step in the plan, in order.
    pub fn steps(&self) -> impl Iterator<Item = (&ClusterPlan, &Step)> {
        self.rings
            .iter()
            .flat_map(|r| &r.waves)
            .flat_map(|w| &w.clusters)
            .flat_map(|c| c.steps.iter().map(move |s| (c, s)))
    }
}

/// The rollout's target, the same for every ring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedTarget {
    /// The policy's channel (`stable`, `pinned 1.33`, ...).
    pub channel: String,
    /// The version every cluster moves to (not for `patch` and `node-image`).
    pub version: Option<KubeVersion>,
    /// Channel `patch`: the latest patch per minor, each cluster staying on its minor.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub patch_versions: BTreeMap<MinorVersion, KubeVersion>,
    /// `latest` or `consistent`.
    pub node_image: String,
    /// With `consistent`: per OS SKU, the image the first ring runs, carried to every ring.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub consistent_images: BTreeMap<String, String>,
    /// Regions the target had to be offered in.
    pub regions: Vec<String>,
    /// Why no version could be chosen (every cluster that needs one is then skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RingPlan {
    pub name: String,
    /// Groups that may approve the ring's start; empty: no approval needed.
    pub approvers: Vec<String>,
    /// Lower bound for the ring's steps: the rollout start plus the earlier rings' soaks.
    pub not_before: Option<DateTime<Utc>>,
    pub waves: Vec<WavePlan>,
    /// Clusters of the ring with nothing to do.
    pub up_to_date: Vec<ClusterId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WavePlan {
    pub name: String,
    pub clusters: Vec<ClusterPlan>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPlan {
    pub id: ClusterId,
    pub location: String,
    pub steps: Vec<Step>,
    /// Things worth knowing that are not steps (e.g. AKS manages node images itself).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    #[serde(flatten)]
    pub kind: StepKind,
    /// Why the step is needed, for humans.
    pub reason: String,
    /// The earliest instant the step may start (a lower bound: it also waits for the
    /// steps before it, approvals and soaks).
    pub earliest_start: DateTime<Utc>,
    /// The step must start before this (end of the window it starts in); `None`: no limit.
    pub window_end: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum StepKind {
    ControlPlane {
        from: KubeVersion,
        to: KubeVersion,
    },
    PoolVersion {
        pool: String,
        from: KubeVersion,
        to: KubeVersion,
    },
    NodeImage {
        pool: String,
        from: String,
        to: String,
    },
    /// Never planned: the engine adds it when a pool step's gate fails and the ring's
    /// `on_gate_failure` is `rollback`. AKS's node pool rollback to the version (and
    /// image, when known) the pool had before the step.
    PoolRollback {
        pool: String,
        /// The version the failed step left the pool on.
        from: KubeVersion,
        to: KubeVersion,
        /// The node image to go back to (`None`: the newest AKS lists for `to`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
    },
}

impl StepKind {
    /// The kind's name as the state and the API spell it (`controlPlane`, ...): also a
    /// metric label, one of four.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::ControlPlane { .. } => "controlPlane",
            StepKind::PoolVersion { .. } => "poolVersion",
            StepKind::NodeImage { .. } => "nodeImage",
            StepKind::PoolRollback { .. } => "poolRollback",
        }
    }

    /// The node pool the step changes (`None`: the control plane).
    pub fn pool(&self) -> Option<&str> {
        match self {
            StepKind::ControlPlane { .. } => None,
            StepKind::PoolVersion { pool, .. }
            | StepKind::NodeImage { pool, .. }
            | StepKind::PoolRollback { pool, .. } => Some(pool),
        }
    }
}

/// A cluster the plan leaves alone, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub id: ClusterId,
    /// The ring it belongs to, when it belongs to one.
    pub ring: Option<String>,
    pub reason: String,
}

/// Plans the rollout of `policy` over `snapshot` as of `now`.
pub fn plan(snapshot: &FleetSnapshot, policy: &Policy, now: DateTime<Utc>) -> Plan {
    let mut clusters: Vec<&ClusterState> = snapshot.clusters.iter().collect();
    clusters.sort_by(|a, b| a.id.cmp(&b.id));
    let mut skipped = Vec::new();
    let mut by_ring: Vec<Vec<&ClusterState>> = vec![Vec::new(); policy.rings.len()];
    for c in clusters {
        match policy.fleet.membership(c) {
            Membership::Out => continue,
            Membership::Excluded => {
                skipped.push(skip(c, None, "excluded by the policy's fleet.exclude".into()));
                continue;
            }
            Membership::In => {}
        }
        let matched: Vec<usize> = (0..policy.rings.len())
            .filter(|&i| policy.rings[i].selector.matches(c))
            .collect();
        match matched[..] {
            [] => skipped.push(skip(c, None, "matches no ring's selector".into())),
            [i] => by_ring[i].push(c),
            _ => {
                let names: Vec<&str> = matched.iter().map(|&i| policy.rings[i].name.as_str()).collect();
                skipped.push(skip(
                    c,
                    None,
                    format!(
                        "matched by rings {}; a cluster belongs to one ring",
                        names.join(" and ")
                    ),
                ));
            }
        }
    }

    let target = target::resolve(snapshot, policy, &by_ring, now);
    let rollout_start = timing::rollout_start(policy, now);
    let mut rings = Vec::new();
    let mut not_before = rollout_start;
    for (ring, members) in policy.rings.iter().zip(&by_ring) {
        let mut planned = Vec::new();
        let mut up_to_date = Vec::new();
        for c in members {
            let outcome = match not_before {
                None => Err("the policy's schedule.start never fires within the search horizon".to_string()),
                Some(t) => cluster::plan_cluster(
                    c,
                    &cluster::Ctx {
                        policy,
                        catalogue: &snapshot.catalogue,
                        target: &target,
                        ring,
                        not_before: t,
                        now,
                    },
                ),
            };
            match outcome {
                Ok(p) if p.steps.is_empty() => up_to_date.push(p.id),
                Ok(p) => planned.push(p),
                Err(reason) => skipped.push(skip(c, Some(&ring.name), reason)),
            }
        }
        let waves = assign_waves(ring, planned, &mut skipped);
        rings.push(RingPlan {
            name: ring.name.clone(),
            approvers: ring.approval.as_ref().map(|a| a.approvers.clone()).unwrap_or_default(),
            not_before,
            waves,
            up_to_date,
        });
        not_before = not_before.and_then(|t| {
            chrono::Duration::from_std(ring.soak)
                .ok()
                .and_then(|s| t.checked_add_signed(s))
        });
    }
    Plan {
        policy: policy.name.clone(),
        generated_at: now,
        rollout_start,
        target,
        rings,
        skipped,
    }
}

fn skip(c: &ClusterState, ring: Option<&str>, reason: String) -> Skipped {
    Skipped {
        id: c.id.clone(),
        ring: ring.map(str::to_string),
        reason,
    }
}

/// Puts the ring's clusters with steps into its waves: explicit waves take their named
/// clusters (in the order named), a `max_parallel` wave takes the rest in id order, split
/// into waves of at most that many (`rest-1`, `rest-2`, ...).
fn assign_waves(ring: &crate::policy::Ring, planned: Vec<ClusterPlan>, skipped: &mut Vec<Skipped>) -> Vec<WavePlan> {
    let mut remaining: Vec<Option<ClusterPlan>> = planned.into_iter().map(Some).collect();
    let mut waves = Vec::new();
    for wave in &ring.waves {
        match &wave.members {
            WaveMembers::Clusters(names) => {
                let mut clusters = Vec::new();
                for n in names {
                    for slot in remaining.iter_mut() {
                        if slot.as_ref().is_some_and(|c| c.id.name.eq_ignore_ascii_case(n)) {
                            clusters.extend(slot.take());
                        }
                    }
                }
                if !clusters.is_empty() {
                    waves.push(WavePlan {
                        name: wave.name.clone(),
                        clusters,
                    });
                }
            }
            WaveMembers::MaxParallel(n) => {
                let rest: Vec<ClusterPlan> = remaining.iter_mut().filter_map(Option::take).collect();
                let chunks: Vec<&[ClusterPlan]> = rest.chunks(*n as usize).collect();
                let count = chunks.len();
                for (i, chunk) in chunks.into_iter().enumerate() {
                    waves.push(WavePlan {
                        name: if count == 1 {
                            wave.name.clone()
                        } else {
                            format!("{}-{}", wave.name, i + 1)
                        },
                        clusters: chunk.to_vec(),
                    });
                }
            }
        }
    }
    for c in remaining.into_iter().flatten() {
        skipped.push(Skipped {
            id: c.id,
            ring: Some(ring.name.clone()),
            reason: format!("in ring `{}` but in none of its waves", ring.name),
        });
    }
    waves
}
