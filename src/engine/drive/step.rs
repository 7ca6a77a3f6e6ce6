//! The step level: a step's start, its operation's answers, its gate (observed, passed,
//! failed), and the rollback a failed pool step may start. Apart because this is the
//! part of the machine that talks to AKS one operation at a time.

use super::{
    ENGINE, audit,
    cluster::{fail_cluster, finish_cluster},
    dur, step_subject,
};
use crate::domain::OperationRef;
use crate::domain::duration::later;
use crate::engine::input::{Command, NotifyEvent};
use crate::engine::model::*;
use crate::engine::settings::Settings;
use crate::plan::StepKind;
use chrono::{DateTime, Utc};

/// AKS accepted a step's call: follow its operation.
pub(super) fn accepted(r: &mut Rollout, step: StepRef, op: Option<OperationRef>, out: &mut Vec<Command>) {
    if matches!(r.step(step).status, StepStatus::Starting { .. }) {
        r.step_mut(step).status = StepStatus::InFlight { op: op.clone() };
        let (cluster, kind) = (r.cluster(step.cluster_ref()).id.clone(), r.step(step).kind.clone());
        audit(
            out,
            ENGINE,
            "step.accepted",
            step_subject(r, step),
            if op.is_some() {
                "AKS accepted the operation"
            } else {
                "AKS accepted the operation (followed by provisioning state)"
            },
        );
        out.push(Command::FollowOperation {
            step,
            cluster,
            kind,
            op,
        });
    }
}

/// The cluster already is where the step leads: on to its gate.
pub(super) fn already_done(r: &mut Rollout, step: StepRef, now: DateTime<Utc>, out: &mut Vec<Command>) {
    if matches!(
        r.step(step).status,
        StepStatus::Starting { .. } | StepStatus::InFlight { .. }
    ) {
        start_gate(r, step, now, out, "the cluster already is where the step leads");
    }
}

/// AKS refused a step's call: try again later while attempts remain, else fail it.
pub(super) fn refused(
    r: &mut Rollout,
    s: &Settings,
    step: StepRef,
    reason: String,
    retryable: bool,
    now: DateTime<Utc>,
    out: &mut Vec<Command>,
) {
    if matches!(r.step(step).status, StepStatus::Starting { .. }) {
        let st = r.step_mut(step);
        st.attempts += 1;
        if retryable && st.attempts < s.max_start_attempts {
            st.status = StepStatus::Backoff {
                until: later(now, s.retry_after),
            };
            audit(out, ENGINE, "step.retry", step_subject(r, step), reason);
        } else {
            fail_step(r, step, "step.failed", reason.clone(), now, out);
            fail_cluster(r, step.cluster_ref(), reason, now, out);
        }
    }
}

/// A step's operation ended: on to its gate, or the step and its cluster fail.
pub(super) fn operation_finished(
    r: &mut Rollout,
    step: StepRef,
    result: Result<(), String>,
    now: DateTime<Utc>,
    out: &mut Vec<Command>,
) {
    if matches!(
        r.step(step).status,
        StepStatus::InFlight { .. } | StepStatus::Starting { .. }
    ) {
        match result {
            Ok(()) => start_gate(r, step, now, out, "operation succeeded"),
            Err(e) => {
                fail_step(r, step, "step.failed", e.clone(), now, out);
                fail_cluster(r, step.cluster_ref(), format!("operation failed: {e}"), now, out);
            }
        }
    }
}

/// What a gate's watches saw: recorded, then the gate checked.
#[allow(clippy::too_many_arguments)]
pub(super) fn gate_observed(
    r: &mut Rollout,
    s: &Settings,
    step: StepRef,
    healthy: bool,
    reasons: Vec<String>,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    out: &mut Vec<Command>,
) {
    if let StepStatus::Gating {
        since, passing_since, ..
    } = r.step(step).status.clone()
    {
        // Healthy since the watches said so (never before this gate began).
        let seen = at.clamp(since, now.max(since));
        let passing_since = if healthy { passing_since.or(Some(seen)) } else { None };
        let last = (!reasons.is_empty()).then(|| reasons.join("; "));
        r.step_mut(step).status = StepStatus::Gating {
            since,
            passing_since,
            last,
        };
        check_gate(r, s, step, now, out);
    }
}

pub(super) fn drive_cluster(
    r: &mut Rollout,
    cref: ClusterRef,
    ring_paused: bool,
    now: DateTime<Utc>,
    out: &mut Vec<Command>,
) {
    let c = r.cluster(cref);
    // A rollback, once added, is the cluster's only remaining step: the steps after the
    // failed one never run.
    let rollback = c.steps.iter().position(|s| is_rollback(&s.kind));
    let next = match rollback {
        Some(j) if c.steps[j].status == StepStatus::Done => None,
        Some(j) => Some(j),
        None => c.steps.iter().position(|s| s.status != StepStatus::Done),
    };
    let Some(i) = next else {
        finish_cluster(r, cref, rollback, now, out);
        return;
    };
    let step = StepRef {
        ring: cref.ring,
        wave: cref.wave,
        cluster: cref.cluster,
        step: i,
    };
    // One step at a time per cluster: only the first unfinished step may start, and
    // only when nothing before it may still have an operation running.
    let busy = c.steps[..i].iter().any(|s| s.status.may_have_operation());
    if c.steps[i].status != StepStatus::Pending || busy || ring_paused || c.paused || c.steps[i].earliest_start > now {
        return;
    }
    let (id, kind) = (c.id.clone(), c.steps[i].kind.clone());
    // What a rollback of this step (automatic, or an operator's) would go back to,
    // recorded with its intent.
    let rollback_to = match kind.pool() {
        Some(pool) if !is_rollback(&kind) => c.pools.get(pool).cloned(),
        _ => None,
    };
    let st = r.step_mut(step);
    st.status = StepStatus::Starting { since: now };
    st.started_at.get_or_insert(now);
    st.rollback_to = rollback_to;
    audit(
        out,
        ENGINE,
        "step.started",
        step_subject(r, step),
        "intent recorded before the call",
    );
    out.push(Command::StartStep {
        step,
        cluster: id,
        kind,
    });
}

pub(super) fn is_rollback(k: &StepKind) -> bool {
    matches!(k, StepKind::PoolRollback { .. })
}

/// A gate starts over: health must be seen again for the whole settle time, and the
/// gate gets its whole timeout again, because a timeout that ran out while nothing
/// could be observed or recorded says nothing about the cluster. The gate's watch is
/// asked for again (a steady cluster sends no new observation by itself).
pub(super) fn regate(r: &mut Rollout, step: StepRef, now: DateTime<Utc>, out: &mut Vec<Command>) {
    r.step_mut(step).status = StepStatus::Gating {
        since: now,
        passing_since: None,
        last: None,
    };
    let (cluster, kind) = (r.cluster(step.cluster_ref()).id.clone(), r.step(step).kind.clone());
    out.push(Command::Gate { step, cluster, kind });
}

fn start_gate(r: &mut Rollout, step: StepRef, now: DateTime<Utc>, out: &mut Vec<Command>, why: &str) {
    r.step_mut(step).status = StepStatus::Gating {
        since: now,
        passing_since: None,
        last: None,
    };
    let (cluster, kind) = (r.cluster(step.cluster_ref()).id.clone(), r.step(step).kind.clone());
    audit(out, ENGINE, "step.operation_done", step_subject(r, step), why);
    out.push(Command::Gate { step, cluster, kind });
}

/// Passes a gate healthy for the settle time; fails one unhealthy at the timeout.
pub(super) fn check_gate(r: &mut Rollout, s: &Settings, step: StepRef, now: DateTime<Utc>, out: &mut Vec<Command>) {
    let StepStatus::Gating {
        since,
        passing_since,
        last,
    } = r.step(step).status.clone()
    else {
        return;
    };
    if passing_since.is_some_and(|p| now - p >= dur(s.gate_settle)) {
        out.push(Command::StopGate { step });
        audit(
            out,
            ENGINE,
            "gate.passed",
            step_subject(r, step),
            format!("healthy for {}s", dur(s.gate_settle).num_seconds()),
        );
        let kind = r.step(step).kind.clone();
        note_pool(r.cluster_mut(step.cluster_ref()), &kind);
        let pool_step = matches!(kind, StepKind::PoolVersion { .. } | StepKind::NodeImage { .. });
        let st = r.step_mut(step);
        if pool_step && !s.pool_soak.is_zero() {
            st.status = StepStatus::Soaking {
                until: later(now, s.pool_soak),
            };
        } else {
            st.status = StepStatus::Done;
            st.finished_at = Some(now);
        }
    } else if passing_since.is_none() && now - since >= dur(s.gate_timeout) {
        let reason = format!(
            "gate failed after {}s: {}",
            dur(s.gate_timeout).num_seconds(),
            last.unwrap_or_else(|| "no healthy observation".into())
        );
        out.push(Command::StopGate { step });
        fail_step(r, step, "gate.failed", reason.clone(), now, out);
        let c = r.cluster(step.cluster_ref()).id.clone();
        out.push(Command::Notify {
            event: NotifyEvent::GateFailed,
            ring: Some(r.rings[step.ring].name.clone()),
            cluster: Some(c),
            message: reason.clone(),
        });
        let kind = &r.step(step).kind;
        let rolls_back = !is_rollback(kind) && kind.pool().is_some() && s.rolls_back(&r.rings[step.ring].name);
        if rolls_back && start_rollback(r, step, now, out).is_some() {
            return;
        }
        let reason = if rolls_back {
            format!("{reason}; not rolled back: the pool's version before the step was not recorded")
        } else {
            reason
        };
        fail_cluster(r, step.cluster_ref(), reason, now, out);
    }
}

/// Keeps the cluster's record of its pools current as pool steps pass (pools the
/// baseline read; one added since is not recorded, and its step has nothing to go
/// back to).
fn note_pool(c: &mut ClusterRun, kind: &StepKind) {
    let Some(p) = kind.pool().and_then(|p| c.pools.get_mut(p)) else {
        return;
    };
    match kind {
        StepKind::PoolVersion { to, .. } => {
            p.version = *to;
            p.image = None;
        }
        StepKind::NodeImage { to, .. } => p.image = Some(to.clone()),
        StepKind::PoolRollback { to, image, .. } => {
            p.version = *to;
            p.image = image.clone();
        }
        StepKind::ControlPlane { .. } => {}
    }
}

/// Marks a step failed and audits it under `action`.
fn fail_step(r: &mut Rollout, step: StepRef, action: &str, reason: String, now: DateTime<Utc>, out: &mut Vec<Command>) {
    let st = r.step_mut(step);
    st.status = StepStatus::Failed { reason: reason.clone() };
    st.finished_at = Some(now);
    audit(out, ENGINE, action, step_subject(r, step), reason);
}

/// The reason of the step whose failure started a rollback.
pub(super) fn gate_failure(c: &ClusterRun) -> Option<&str> {
    c.steps.iter().find_map(|s| match &s.status {
        StepStatus::Failed { reason } if !is_rollback(&s.kind) => Some(reason.as_str()),
        _ => None,
    })
}

/// A pool step's gate failed in a ring that rolls back: the pool goes back to what it
/// had before the step (a new step, run like any other: intent, call, operation, gate
/// against the cluster's baseline). `None` when nothing was recorded to go back to.
fn start_rollback(r: &mut Rollout, step: StepRef, now: DateTime<Utc>, out: &mut Vec<Command>) -> Option<()> {
    let st = r.step(step);
    let to = st.rollback_to.clone()?;
    let (pool, from) = match &st.kind {
        StepKind::PoolVersion { pool, to, .. } => (pool.clone(), *to),
        StepKind::NodeImage { pool, .. } => (pool.clone(), to.version),
        _ => return None,
    };
    let kind = StepKind::PoolRollback {
        pool: pool.clone(),
        from,
        to: to.version,
        image: to.image.clone(),
    };
    let reason = format!(
        "{}; rolling pool {pool} back",
        gate_failure(r.cluster(step.cluster_ref()))?
    );
    let ring = r.rings[step.ring].name.clone();
    let expected_secs = r.step(step).expected_secs;
    let c = r.cluster_mut(step.cluster_ref());
    c.steps.push(StepRun {
        kind,
        earliest_start: now,
        status: StepStatus::Pending,
        attempts: 0,
        started_at: None,
        finished_at: None,
        rollback_to: None,
        // Replaces the pool's nodes as the failed step did.
        expected_secs,
    });
    let (id, subject) = (c.id.clone(), format!("{ring}/{}", c.id.name));
    out.push(Command::Notify {
        event: NotifyEvent::RollbackStarted,
        ring: Some(ring),
        cluster: Some(id),
        message: format!("{subject}: {reason}"),
    });
    audit(out, ENGINE, "cluster.rolling_back", subject, reason);
    Some(())
}
