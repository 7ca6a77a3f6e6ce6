//! The rollout's state: everything the engine knows, serializable as one JSON document
//! (the store keeps it; a restart reloads it). No behaviour here: see `drive.rs`.

use crate::domain::OperationRef;
use crate::domain::fleet::ClusterId;
use crate::gate::Baseline;
use crate::plan::{Plan, StepKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    pub id: String,
    /// The policy text the rollout started with: a rollout keeps its policy even when the
    /// file changes (it is compiled again from here after a restart).
    pub policy_file: String,
    pub policy_text: String,
    /// Shared, never changed after creation: a clone of the rollout (for the API, for
    /// the last-saved copy) shares it instead of copying 5,000 clusters' plans.
    pub plan: Arc<Plan>,
    pub status: RolloutStatus,
    pub rings: Vec<RingRun>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Transitions so far (monotonic: the store and the API use it).
    pub seq: u64,
    /// The forecast made when the rollout was created: what "late" is measured against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<Arc<ForecastRecord>>,
}

/// When the rollout was forecast, at its creation, to finish (`docs/forecast.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForecastRecord {
    pub made_at: DateTime<Utc>,
    /// `None`: not within the forecast's horizon.
    pub finish: Option<DateTime<Utc>>,
    /// The approval delay the forecast assumed.
    pub approval_after_secs: u64,
    /// Ring name -> its forecast finish.
    pub rings: std::collections::BTreeMap<String, DateTime<Utc>>,
    /// Cluster (`subscription/resourceGroup/name`) -> its forecast finish.
    pub clusters: std::collections::BTreeMap<String, DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum RolloutStatus {
    Running,
    Paused { by: String, reason: String },
    Succeeded,
    Halted { reason: String },
    Aborted { by: String, reason: String },
}

impl RolloutStatus {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            RolloutStatus::Succeeded | RolloutStatus::Halted { .. } | RolloutStatus::Aborted { .. }
        )
    }

    pub fn label(&self) -> &'static str {
        match self {
            RolloutStatus::Running => "running",
            RolloutStatus::Paused { .. } => "paused",
            RolloutStatus::Succeeded => "succeeded",
            RolloutStatus::Halted { .. } => "halted",
            RolloutStatus::Aborted { .. } => "aborted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RingRun {
    pub name: String,
    pub status: RingStatus,
    pub waves: Vec<WaveRun>,
    pub approval: Option<ApprovalRecord>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub paused: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum RingStatus {
    Pending,
    /// Waiting for a person to approve promoting the target into this ring.
    AwaitingApproval {
        since: DateTime<Utc>,
    },
    Running,
    Soaking {
        until: DateTime<Utc>,
    },
    Passed,
    Failed {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRecord {
    pub by: String,
    pub at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaveRun {
    pub name: String,
    /// Clusters of this wave that may run at once.
    pub max_parallel: usize,
    /// Copy-on-write: a clone of the rollout shares every cluster, and the engine's
    /// `Arc::make_mut` copies only the ones it changes. So publishing a state costs a
    /// pointer per cluster, and the runtime finds what changed since its last save by
    /// comparing pointers (`engine::stored`).
    pub clusters: Vec<Arc<ClusterRun>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRun {
    pub id: ClusterId,
    pub status: ClusterStatus,
    pub steps: Vec<StepRun>,
    /// The gate baseline taken before the first step: the engine keeps it and hands it to
    /// the gate, never looks inside. Stored as the gate serializes it; one that does not
    /// decode is an error of the state's load, not a missing baseline.
    #[serde(default, deserialize_with = "baseline_or_error")]
    pub baseline: Option<Baseline>,
    pub paused: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When to try the baseline again after the cluster could not be read.
    #[serde(default)]
    pub retry_at: Option<DateTime<Utc>>,
    /// Watches started ahead of the cluster's turn (the previous wave has started all
    /// its clusters), so that listing them is not on the rollout's critical path.
    #[serde(default)]
    pub warm: bool,
    /// An operator's skip that waits for the operation running on the cluster: (by,
    /// reason). Until it ends the cluster holds its wave slot and starts nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_requested: Option<(String, String)>,
    /// The cluster's last preflight (run before its first step when the policy enables it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight: Option<PreflightRecord>,
    /// Each node pool's version and image as known now: read with the baseline, then
    /// kept up to date as pool steps pass. A pool step's rollback target is copied from
    /// here when its intent is recorded.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub pools: std::collections::BTreeMap<String, PoolVersions>,
    /// The rollout holds the cluster (`store::claims`): nothing else of this daemon
    /// acts on it until this rollout ends with it. Taken before preflight and baseline.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub claimed: bool,
    /// Why the cluster waits to be prepared: another rollout holds it (naming the
    /// holder and what it does there). Cleared once claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
}

/// A stored baseline (`null` or absent: none). One that is there but does not decode is an
/// error naming it: the state does not load, rather than gating without the baseline.
fn baseline_or_error<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Baseline>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("the gate baseline does not decode: {e}"))),
    }
}

/// A node pool's Kubernetes version and node image: what a rollback goes back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolVersions {
    pub version: crate::domain::KubeVersion,
    /// `None` after a version step (AKS picked the region's image): a rollback then
    /// takes the newest image AKS lists for `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// What the preflight right before a cluster's first step found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreflightRecord {
    pub at: DateTime<Utc>,
    /// Nothing blocked: the cluster went on to its baseline.
    pub passed: bool,
    /// Blocking findings first.
    pub findings: Vec<crate::preflight::Finding>,
}

impl PreflightRecord {
    pub fn blocking(&self) -> impl Iterator<Item = &crate::preflight::Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == crate::preflight::Severity::Blocks)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum ClusterStatus {
    Pending,
    /// Watches started, baseline being taken.
    Preparing,
    Running,
    Done,
    Failed {
        reason: String,
    },
    Skipped {
        by: String,
        reason: String,
    },
    /// A pool step's gate failed and the pool was rolled back to what it had; its
    /// workloads passed the gate again. Counts against the ring's failure budget.
    RolledBack {
        reason: String,
    },
}

impl ClusterStatus {
    /// Every label [`ClusterStatus::label`] gives, in the order a cluster meets them.
    pub const LABELS: [&'static str; 7] = [
        "pending",
        "preparing",
        "running",
        "done",
        "failed",
        "skipped",
        "rolledBack",
    ];

    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            ClusterStatus::Done
                | ClusterStatus::Failed { .. }
                | ClusterStatus::Skipped { .. }
                | ClusterStatus::RolledBack { .. }
        )
    }

    /// Counts against the ring's failure budget: the target did not land.
    pub fn is_failure(&self) -> bool {
        matches!(self, ClusterStatus::Failed { .. } | ClusterStatus::RolledBack { .. })
    }

    /// Occupies one of the wave's parallel slots.
    pub fn is_active(&self) -> bool {
        matches!(self, ClusterStatus::Preparing | ClusterStatus::Running)
    }

    /// The state's name as the API spells it (`rolledBack`, ...): also a metric label.
    pub fn label(&self) -> &'static str {
        Self::LABELS[self.index()]
    }

    /// The state's place in [`ClusterStatus::LABELS`].
    pub fn index(&self) -> usize {
        match self {
            ClusterStatus::Pending => 0,
            ClusterStatus::Preparing => 1,
            ClusterStatus::Running => 2,
            ClusterStatus::Done => 3,
            ClusterStatus::Failed { .. } => 4,
            ClusterStatus::Skipped { .. } => 5,
            ClusterStatus::RolledBack { .. } => 6,
        }
    }

    /// How many of `statuses` are in each state, in [`ClusterStatus::LABELS`]' order
    /// (the API's counts and the `ringmaster_clusters` gauge: every state, 0 included).
    pub fn count<'a>(statuses: impl IntoIterator<Item = &'a ClusterStatus>) -> [usize; 7] {
        let mut n = [0; 7];
        for s in statuses {
            n[s.index()] += 1;
        }
        n
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRun {
    pub kind: StepKind,
    pub earliest_start: DateTime<Utc>,
    pub status: StepStatus,
    /// Start attempts refused by ARM with a retryable error.
    pub attempts: u32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// A pool step: the pool's version and image before it, recorded with the step's
    /// intent (before the call), so a restart knows what a rollback goes back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<PoolVersions>,
    /// How long its AKS operation is expected to take (the forecast's model, set when
    /// the rollout is created): the live ETA's input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_secs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum StepStatus {
    Pending,
    /// Retry the start after this time (ARM refused with a retryable error).
    Backoff {
        until: DateTime<Utc>,
    },
    /// Intent recorded: the mutating call is being (or was) sent. After a restart the
    /// executor reads the resource before sending anything again.
    Starting {
        since: DateTime<Utc>,
    },
    /// AKS accepted; `op` is where to follow it (None: follow the resource's state).
    InFlight {
        op: Option<OperationRef>,
    },
    Gating {
        since: DateTime<Utc>,
        passing_since: Option<DateTime<Utc>>,
        last: Option<String>,
    },
    Soaking {
        until: DateTime<Utc>,
    },
    Done,
    Failed {
        reason: String,
    },
}

impl StepStatus {
    pub fn label(&self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Backoff { .. } => "backoff",
            StepStatus::Starting { .. } => "starting",
            StepStatus::InFlight { .. } => "in-flight",
            StepStatus::Gating { .. } => "gating",
            StepStatus::Soaking { .. } => "soaking",
            StepStatus::Done => "done",
            StepStatus::Failed { .. } => "failed",
        }
    }

    /// An operation may be running on the cluster because of this step.
    pub fn may_have_operation(&self) -> bool {
        matches!(self, StepStatus::Starting { .. } | StepStatus::InFlight { .. })
    }
}

/// Where a step sits: (ring, wave, cluster, step) indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StepRef {
    pub ring: usize,
    pub wave: usize,
    pub cluster: usize,
    pub step: usize,
}

/// Where a cluster sits: (ring, wave, cluster) indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClusterRef {
    pub ring: usize,
    pub wave: usize,
    pub cluster: usize,
}

impl StepRef {
    pub fn cluster_ref(self) -> ClusterRef {
        ClusterRef {
            ring: self.ring,
            wave: self.wave,
            cluster: self.cluster,
        }
    }
}

impl Rollout {
    pub fn cluster(&self, c: ClusterRef) -> &ClusterRun {
        &self.rings[c.ring].waves[c.wave].clusters[c.cluster]
    }

    /// The cluster, to change: copied first if a published or saved state shares it.
    pub fn cluster_mut(&mut self, c: ClusterRef) -> &mut ClusterRun {
        Arc::make_mut(&mut self.rings[c.ring].waves[c.wave].clusters[c.cluster])
    }

    pub fn step(&self, s: StepRef) -> &StepRun {
        &self.cluster(s.cluster_ref()).steps[s.step]
    }

    pub fn step_mut(&mut self, s: StepRef) -> &mut StepRun {
        &mut self.cluster_mut(s.cluster_ref()).steps[s.step]
    }

    /// Every cluster with its place, in plan order.
    pub fn clusters(&self) -> impl Iterator<Item = (ClusterRef, &ClusterRun)> {
        self.rings.iter().enumerate().flat_map(|(ri, r)| {
            r.waves.iter().enumerate().flat_map(move |(wi, w)| {
                w.clusters.iter().enumerate().map(move |(ci, c)| {
                    (
                        ClusterRef {
                            ring: ri,
                            wave: wi,
                            cluster: ci,
                        },
                        &**c,
                    )
                })
            })
        })
    }

    /// Finds a cluster by id.
    pub fn find(&self, id: &ClusterId) -> Option<ClusterRef> {
        self.clusters().find(|(_, c)| &c.id == id).map(|(r, _)| r)
    }

    /// Builds the initial state from a plan.
    pub fn new(id: String, policy_file: String, policy_text: String, plan: Plan, now: DateTime<Utc>) -> Self {
        let rings = plan
            .rings
            .iter()
            .map(|r| RingRun {
                name: r.name.clone(),
                status: RingStatus::Pending,
                waves: r
                    .waves
                    .iter()
                    .map(|w| WaveRun {
                        name: w.name.clone(),
                        max_parallel: w.clusters.len().max(1),
                        clusters: w
                            .clusters
                            .iter()
                            .map(|c| {
                                Arc::new(ClusterRun {
                                    id: c.id.clone(),
                                    status: ClusterStatus::Pending,
                                    steps: c
                                        .steps
                                        .iter()
                                        .map(|s| StepRun {
                                            kind: s.kind.clone(),
                                            earliest_start: s.earliest_start,
                                            status: StepStatus::Pending,
                                            attempts: 0,
                                            started_at: None,
                                            finished_at: None,
                                            rollback_to: None,
                                            expected_secs: None,
                                        })
                                        .collect(),
                                    baseline: None,
                                    paused: false,
                                    started_at: None,
                                    finished_at: None,
                                    retry_at: None,
                                    warm: false,
                                    skip_requested: None,
                                    claimed: false,
                                    waiting: None,
                                    preflight: None,
                                    pools: Default::default(),
                                })
                            })
                            .collect(),
                    })
                    .collect(),
                approval: None,
                started_at: None,
                finished_at: None,
                paused: false,
            })
            .collect();
        Rollout {
            id,
            policy_file,
            policy_text,
            plan: Arc::new(plan),
            status: RolloutStatus::Running,
            rings,
            created_at: now,
            updated_at: now,
            seq: 0,
            forecast: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ClusterStatus;

    fn every_state() -> [ClusterStatus; 7] {
        [
            ClusterStatus::Pending,
            ClusterStatus::Preparing,
            ClusterStatus::Running,
            ClusterStatus::Done,
            ClusterStatus::Failed { reason: "x".into() },
            ClusterStatus::Skipped {
                by: "ops".into(),
                reason: "x".into(),
            },
            ClusterStatus::RolledBack { reason: "x".into() },
        ]
    }

    #[test]
    fn each_state_has_its_own_label_in_order() {
        let labels: Vec<&str> = every_state().iter().map(ClusterStatus::label).collect();
        assert_eq!(labels, ClusterStatus::LABELS);
        // The label is what serde writes as the state's tag, so the API's counts and
        // filters name states as its documents do.
        for s in every_state() {
            let v = serde_json::to_value(&s).unwrap();
            assert_eq!(v["state"], s.label());
        }
    }

    #[test]
    fn counts_every_state_zeros_included() {
        let all = every_state();
        let some = [&all[0], &all[0], &all[4], &all[6]];
        assert_eq!(ClusterStatus::count(some), [2, 0, 0, 0, 1, 0, 1]);
        assert_eq!(ClusterStatus::count(&all), [1; 7]);
    }
}
