//! The transitions. `advance` applies one input, then drives the rollout as far as it
//! can go at `now`, and asks to be woken at the next time something is due.
//!
//! Split by level: `rollout` (the drive of the whole rollout, its halt, pause, resume,
//! abort and restart), `ring` (approvals, the failure budget), `wave` (which clusters
//! start), `cluster` (claim, preflight, baseline, skip, fail, finish), `step` (an
//! operation and its gate, rollbacks) and `wake` (the next time something is due). This
//! file holds `advance`, the dispatch of each input to its level, and the helpers every
//! level shares.

mod cluster;
mod ring;
mod rollout;
mod step;
mod wake;
mod wave;

use super::input::{Command, Input};
use super::model::*;
use super::settings::Settings;
use crate::plan::StepKind;
use chrono::{DateTime, Utc};

const ENGINE: &str = "ringmaster";

/// A policy duration as a chrono delta; too long ones saturate (never a panic: a rollout
/// stores its policy, so a panic here would come back on every restart).
fn dur(d: std::time::Duration) -> chrono::Duration {
    crate::domain::duration::delta(d)
}

fn audit(out: &mut Vec<Command>, actor: &str, action: &str, subject: String, reason: impl Into<String>) {
    out.push(Command::Audit {
        actor: actor.to_string(),
        action: action.to_string(),
        subject,
        reason: reason.into(),
    });
}

fn step_subject(r: &Rollout, s: StepRef) -> String {
    let c = r.cluster(s.cluster_ref());
    format!(
        "{}/{} step {}: {}",
        r.rings[s.ring].name,
        c.id.name,
        s.step + 1,
        describe(&c.steps[s.step].kind)
    )
}

/// A step in words, for logs, audit and the terminal.
pub fn describe(k: &StepKind) -> String {
    match k {
        StepKind::ControlPlane { from, to } => format!("control plane {from} -> {to}"),
        StepKind::PoolVersion { pool, from, to } => format!("pool {pool} {from} -> {to}"),
        StepKind::NodeImage { pool, to, .. } => format!("pool {pool} node image -> {to}"),
        StepKind::PoolRollback { pool, from, to, image } => match image {
            Some(i) => format!("pool {pool} rollback {from} -> {to} (image {i})"),
            None => format!("pool {pool} rollback {from} -> {to}"),
        },
    }
}

/// Applies `input` at `now` and returns what the executor must do.
pub fn advance(r: &mut Rollout, s: &Settings, input: Input, now: DateTime<Utc>) -> Vec<Command> {
    let mut out = Vec::new();
    apply(r, s, input, now, &mut out);
    // Drive to a fixed point: every transition emits at least one command, so a pass
    // that emits none changed nothing (a finished wave lets the next one start at once).
    for _ in 0..64 {
        let before = out.len();
        rollout::drive(r, s, now, &mut out);
        if out.len() == before {
            break;
        }
    }
    if let Some(at) = wake::next_wake(r, s, now) {
        out.push(Command::WakeAt { at });
    }
    r.seq += 1;
    r.updated_at = now;
    out
}

fn valid_step(r: &Rollout, s: StepRef) -> bool {
    r.rings
        .get(s.ring)
        .and_then(|x| x.waves.get(s.wave))
        .and_then(|w| w.clusters.get(s.cluster))
        .is_some_and(|c| s.step < c.steps.len())
}

fn apply(r: &mut Rollout, s: &Settings, input: Input, now: DateTime<Utc>, out: &mut Vec<Command>) {
    match input {
        Input::Tick => {}
        Input::Resumed => rollout::resume(r, s, now, out),
        Input::Unrecorded { since } => rollout::unrecorded(r, since, now, out),
        Input::BaselineTaken {
            cluster,
            baseline,
            pools,
        } => cluster::baseline_taken(r, cluster, baseline, pools, out),
        Input::PreflightDone { cluster, findings } => cluster::preflight_done(r, s, cluster, findings, now, out),
        Input::Claimed { cluster } => cluster::claimed(r, s, cluster, out),
        Input::ClusterBusy { cluster, reason } => cluster::cluster_busy(r, s, cluster, reason, now, out),
        Input::BaselineFailed { cluster, reason } => cluster::baseline_failed(r, s, cluster, reason, now, out),
        Input::StepAccepted { step, op } if valid_step(r, step) => step::accepted(r, step, op, out),
        Input::StepAlreadyDone { step } if valid_step(r, step) => step::already_done(r, step, now, out),
        Input::StepRefused {
            step,
            reason,
            retryable,
        } if valid_step(r, step) => step::refused(r, s, step, reason, retryable, now, out),
        Input::OperationFinished { step, result } if valid_step(r, step) => {
            step::operation_finished(r, step, result, now, out)
        }
        Input::GateObserved {
            step,
            healthy,
            reasons,
            at,
        } if valid_step(r, step) => step::gate_observed(r, s, step, healthy, reasons, at, now, out),
        Input::Approve {
            ring,
            by,
            comment,
            expires_at,
        } => ring::approve(r, s, ring, by, comment, expires_at, now, out),
        Input::Reject { ring, by, comment } => ring::reject(r, ring, by, comment, out),
        Input::PromoteNow { ring, by, reason } => ring::promote(r, ring, by, reason, now, out),
        Input::Pause { scope, by, reason } => rollout::pause(r, scope, by, reason, out),
        Input::Resume { scope, by } => rollout::unpause(r, scope, by, out),
        Input::Abort { by, reason } => rollout::abort(r, by, reason, out),
        Input::Skip { cluster, by, reason } => cluster::skip(r, cluster, by, reason, now, out),
        // Inputs naming a step that does not exist (a stale message) change nothing.
        Input::StepAccepted { .. }
        | Input::StepAlreadyDone { .. }
        | Input::StepRefused { .. }
        | Input::OperationFinished { .. }
        | Input::GateObserved { .. } => {}
    }
}
