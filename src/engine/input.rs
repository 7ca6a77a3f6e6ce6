//! What goes into the engine and what comes out.

use super::model::{ClusterRef, StepRef};
use crate::domain::OperationRef;
use crate::domain::fleet::ClusterId;
use crate::plan::StepKind;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An observation, a decision, or the passing of time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "camelCase")]
pub enum Input {
    /// Time passed (a wake-up the engine asked for, or a periodic tick).
    Tick,
    /// The daemon (re)started on this state: re-issue what is in flight.
    Resumed,
    /// The daemon could not commit from `since` until now (its saves failed, so it took
    /// no input): what its gates saw meanwhile never counted, so every gate observes
    /// again for its whole timeout, as after a restart. Time in which nothing could be
    /// recorded is not time in which the workload was seen unhealthy.
    Unrecorded {
        since: DateTime<Utc>,
    },
    BaselineTaken {
        cluster: ClusterRef,
        baseline: crate::gate::Baseline,
        /// The node pools' versions and images.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        pools: std::collections::BTreeMap<String, super::model::PoolVersions>,
    },
    /// The cluster's preflight ran (findings sorted, blocking first).
    PreflightDone {
        cluster: ClusterRef,
        findings: Vec<crate::preflight::Finding>,
    },
    /// The rollout now holds the cluster (`store::claims`): it may be prepared.
    Claimed {
        cluster: ClusterRef,
    },
    /// Another rollout holds the cluster (or has precedence for it): `reason` names it
    /// and what it does there. The policy's `on_busy` says wait or skip.
    ClusterBusy {
        cluster: ClusterRef,
        reason: String,
    },
    /// The cluster could not be read for a baseline (fail closed: retried, then failed).
    BaselineFailed {
        cluster: ClusterRef,
        reason: String,
    },
    /// AKS accepted the step's call; follow `op` (None: follow the resource's state).
    StepAccepted {
        step: StepRef,
        op: Option<OperationRef>,
    },
    /// The cluster already was where the step leads (after a restart, or drift).
    StepAlreadyDone {
        step: StepRef,
    },
    /// ARM refused the call; `retryable` (409 another operation, 429, 5xx) or not.
    StepRefused {
        step: StepRef,
        reason: String,
        retryable: bool,
    },
    OperationFinished {
        step: StepRef,
        result: Result<(), String>,
    },
    /// A gate evaluation (the executor sends one per watch change while gating).
    /// `at` is when the watches showed it: under a backlog the engine may see it later,
    /// and health seen before a gate's deadline must count before that deadline.
    GateObserved {
        step: StepRef,
        healthy: bool,
        reasons: Vec<String>,
        at: DateTime<Utc>,
    },
    Approve {
        ring: String,
        by: String,
        comment: String,
        expires_at: Option<DateTime<Utc>>,
    },
    Reject {
        ring: String,
        by: String,
        comment: String,
    },
    /// End a ring's soak now.
    PromoteNow {
        ring: String,
        by: String,
        reason: String,
    },
    Pause {
        scope: Scope,
        by: String,
        reason: String,
    },
    Resume {
        scope: Scope,
        by: String,
    },
    Abort {
        by: String,
        reason: String,
    },
    Skip {
        cluster: ClusterId,
        by: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", content = "name", rename_all = "camelCase")]
pub enum Scope {
    Rollout,
    Ring(String),
    Cluster(ClusterId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NotifyEvent {
    ApprovalNeeded,
    GateFailed,
    RingDone,
    RolloutFinished,
    RolloutHalted,
    /// A pool step's gate failed and ringmaster is rolling the pool back.
    RollbackStarted,
    /// A rollback ended: the cluster is `rolledBack`, or failed when the rollback did.
    RollbackFinished,
    /// A cluster's preflight found something blocking (it is skipped, waits, or halts
    /// the rollout, as the policy says).
    PreflightBlocked,
    /// The daemon cannot save the rollout's state (disk full, I/O error): the rollout
    /// waits and retries. Sent by the runtime, not the engine.
    StateNotSaved,
    /// Saving works again after [`NotifyEvent::StateNotSaved`]; the rollout goes on.
    StateSaved,
}

/// What the executor is asked to do. The state that asks is persisted before any
/// command runs, so a `StartStep` always follows its recorded intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "camelCase")]
pub enum Command {
    StartWatch {
        cluster: ClusterId,
    },
    StopWatch {
        cluster: ClusterId,
    },
    /// Run the cluster's preflight against its plan; `others` are the wave's clusters
    /// started before it and not finished (their surges share quota and subnets).
    RunPreflight {
        cluster: ClusterRef,
        plan: crate::plan::ClusterPlan,
        wave: String,
        others: Vec<crate::plan::ClusterPlan>,
    },
    /// Take the cluster for this rollout (`store::claims`), before anything else reads
    /// or changes it; answered with `Claimed` or `ClusterBusy`.
    Claim {
        cluster: ClusterRef,
        id: ClusterId,
    },
    /// Also reads the node pools' versions and images: a pool step's rollback goes
    /// back to what its pool had before.
    TakeBaseline {
        cluster: ClusterRef,
        id: ClusterId,
    },
    /// Send the step's mutating call (its intent is in the persisted state).
    StartStep {
        step: StepRef,
        cluster: ClusterId,
        kind: StepKind,
    },
    /// After a restart: the intent exists but the outcome is unknown. Read the resource;
    /// send the call only if it did not take.
    Reconcile {
        step: StepRef,
        cluster: ClusterId,
        kind: StepKind,
    },
    FollowOperation {
        step: StepRef,
        cluster: ClusterId,
        kind: StepKind,
        op: Option<OperationRef>,
    },
    /// Evaluate the gate now and on every watch change until `StopGate`.
    Gate {
        step: StepRef,
        cluster: ClusterId,
        kind: StepKind,
    },
    StopGate {
        step: StepRef,
    },
    /// Abort AKS's operation for this step (rollout abort).
    AbortOperation {
        step: StepRef,
        cluster: ClusterId,
        kind: StepKind,
    },
    WakeAt {
        at: DateTime<Utc>,
    },
    Notify {
        event: NotifyEvent,
        ring: Option<String>,
        cluster: Option<ClusterId>,
        message: String,
    },
    Audit {
        actor: String,
        action: String,
        subject: String,
        reason: String,
    },
}
