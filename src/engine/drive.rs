//! The transitions. `advance` applies one input, then drives the rollout as far as it
//! can go at `now`, and asks to be woken at the next time something is due.

use super::input::{Command, Input, NotifyEvent, Scope};
use super::model::*;
use super::settings::Settings;
use crate::domain::duration::later;
use crate::plan::StepKind;
use crate::policy::OnBlock;
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
        drive(r, s, now, &mut out);
        if out.len() == before {
            break;
        }
    }
    if let Some(at) = next_wake(r, s, now) {
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
        Input::Resumed => resume(r, s, now, out),
        Input::Unrecorded { since } => unrecorded(r, since, now, out),
        Input::BaselineTaken {
            cluster,
            baseline,
            pools,
        } => {
            let c = r.cluster_mut(cluster);
            if c.status == ClusterStatus::Preparing {
                c.baseline = Some(baseline);
                c.pools = pools;
                c.status = ClusterStatus::Running;
                let subject = format!("{}/{}", r.rings[cluster.ring].name, r.cluster(cluster).id.name);
                audit(out, ENGINE, "cluster.started", subject, "baseline taken");
            }
        }
        Input::PreflightDone { cluster, findings } => preflight_done(r, s, cluster, findings, now, out),
        Input::Claimed { cluster } => {
            let c = r.cluster_mut(cluster);
            if c.status == ClusterStatus::Preparing && !c.claimed {
                c.claimed = true;
                if c.waiting.take().is_some() {
                    let subject = format!("{}/{}", r.rings[cluster.ring].name, r.cluster(cluster).id.name);
                    audit(
                        out,
                        ENGINE,
                        "cluster.claimed",
                        subject,
                        "the cluster is free: this rollout holds it now",
                    );
                }
                prepare(r, s, cluster, out);
            }
        }
        Input::ClusterBusy { cluster, reason } => cluster_busy(r, s, cluster, reason, now, out),
        Input::BaselineFailed { cluster, reason } => {
            let timeout = dur(s.gate_timeout);
            let c = r.cluster_mut(cluster);
            if c.status == ClusterStatus::Preparing {
                if c.started_at.is_some_and(|t| now - t >= timeout) {
                    fail_cluster(
                        r,
                        cluster,
                        format!("cannot read the cluster for a baseline: {reason}"),
                        now,
                        out,
                    );
                } else {
                    c.retry_at = Some(later(now, std::time::Duration::from_secs(30)));
                }
            }
        }
        Input::StepAccepted { step, op } if valid_step(r, step) => {
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
        Input::StepAlreadyDone { step } if valid_step(r, step) => {
            if matches!(
                r.step(step).status,
                StepStatus::Starting { .. } | StepStatus::InFlight { .. }
            ) {
                start_gate(r, step, now, out, "the cluster already is where the step leads");
            }
        }
        Input::StepRefused {
            step,
            reason,
            retryable,
        } if valid_step(r, step) => {
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
        Input::OperationFinished { step, result } if valid_step(r, step) => {
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
        Input::GateObserved {
            step,
            healthy,
            reasons,
            at,
        } if valid_step(r, step) => {
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
        Input::Approve {
            ring,
            by,
            comment,
            expires_at,
        } => {
            if let Some(ri) = r.rings.iter().position(|x| x.name == ring) {
                let needs = s.ring(&ring).is_some_and(|x| x.approvers.is_some());
                let waiting = matches!(
                    r.rings[ri].status,
                    RingStatus::Pending | RingStatus::AwaitingApproval { .. }
                );
                if needs && waiting {
                    r.rings[ri].approval = Some(ApprovalRecord {
                        by: by.clone(),
                        at: now,
                        expires_at,
                        comment: comment.clone(),
                    });
                    audit(out, &by, "ring.approved", ring, comment);
                }
            }
        }
        Input::Reject { ring, by, comment } => {
            if let Some(ri) = r.rings.iter().position(|x| x.name == ring)
                && matches!(
                    r.rings[ri].status,
                    RingStatus::Pending | RingStatus::AwaitingApproval { .. }
                )
                && !r.status.is_terminal()
            {
                r.rings[ri].status = RingStatus::Failed {
                    reason: format!("rejected by {by}: {comment}"),
                };
                audit(out, &by, "ring.rejected", ring.clone(), comment.clone());
                halt(r, format!("ring {ring} rejected by {by}: {comment}"), out);
            }
        }
        Input::PromoteNow { ring, by, reason } => {
            if let Some(ri) = r.rings.iter().position(|x| x.name == ring)
                && matches!(r.rings[ri].status, RingStatus::Soaking { .. })
            {
                r.rings[ri].status = RingStatus::Soaking { until: now };
                audit(out, &by, "ring.promoted", ring, reason);
            }
        }
        Input::Pause { scope, by, reason } => {
            match &scope {
                Scope::Rollout if r.status == RolloutStatus::Running => {
                    r.status = RolloutStatus::Paused {
                        by: by.clone(),
                        reason: reason.clone(),
                    }
                }
                Scope::Rollout => return,
                _ => set_paused(r, &scope, true),
            }
            audit(out, &by, "paused", scope_name(&scope), reason);
        }
        Input::Resume { scope, by } => {
            match &scope {
                Scope::Rollout if matches!(r.status, RolloutStatus::Paused { .. }) => r.status = RolloutStatus::Running,
                Scope::Rollout => return,
                _ => set_paused(r, &scope, false),
            }
            audit(out, &by, "resumed", scope_name(&scope), "");
        }
        Input::Abort { by, reason } => {
            if r.status.is_terminal() {
                return;
            }
            let inflight: Vec<StepRef> = in_progress_steps(r);
            for st in inflight {
                let (cluster, kind) = (r.cluster(st.cluster_ref()).id.clone(), r.step(st).kind.clone());
                match r.step(st).status {
                    StepStatus::Starting { .. } | StepStatus::InFlight { .. } => out.push(Command::AbortOperation {
                        step: st,
                        cluster,
                        kind,
                    }),
                    StepStatus::Gating { .. } => out.push(Command::StopGate { step: st }),
                    _ => {}
                }
            }
            for (cref, c) in r.clusters().map(|(a, b)| (a, b.clone())).collect::<Vec<_>>() {
                if c.status.is_active() {
                    out.push(Command::StopWatch { cluster: c.id.clone() });
                    let _ = cref;
                }
            }
            r.status = RolloutStatus::Aborted {
                by: by.clone(),
                reason: reason.clone(),
            };
            audit(out, &by, "rollout.aborted", r.id.clone(), reason.clone());
            out.push(Command::Notify {
                event: NotifyEvent::RolloutHalted,
                ring: None,
                cluster: None,
                message: format!("rollout {} aborted by {by}: {reason}", r.id),
            });
        }
        Input::Skip { cluster, by, reason } => {
            if let Some(c) = r.find(&cluster)
                && !r.cluster(c).status.is_finished()
            {
                if r.cluster(c).steps.iter().any(|s| s.status.may_have_operation()) {
                    // AKS goes on with the operation whatever we decide: the cluster
                    // keeps its wave slot (the next wave must not start beside a
                    // running upgrade) and is skipped when the operation ends.
                    audit(
                        out,
                        &by,
                        "cluster.skip_requested",
                        cluster.name.clone(),
                        format!("{reason} (skipped when its running operation ends)"),
                    );
                    r.cluster_mut(c).skip_requested = Some((by, reason));
                } else {
                    skip_cluster(r, c, by, reason, now, out);
                }
            }
        }
        // Inputs naming a step that does not exist (a stale message) change nothing.
        Input::StepAccepted { .. }
        | Input::StepAlreadyDone { .. }
        | Input::StepRefused { .. }
        | Input::OperationFinished { .. }
        | Input::GateObserved { .. } => {}
    }
}

/// Another rollout holds the cluster: skip it, or wait and ask again (audited when the
/// reason changes, not at every ask).
fn cluster_busy(
    r: &mut Rollout,
    s: &Settings,
    cref: ClusterRef,
    reason: String,
    now: DateTime<Utc>,
    out: &mut Vec<Command>,
) {
    let c = r.cluster(cref);
    if c.status != ClusterStatus::Preparing || c.claimed {
        return;
    }
    if s.on_busy == crate::policy::OnBusy::Skip {
        let reason = format!("another rollout has the cluster ({reason}); the policy says on_busy: skip");
        skip_cluster(r, cref, ENGINE.to_string(), reason, now, out);
        return;
    }
    let subject = format!("{}/{}", r.rings[cref.ring].name, c.id.name);
    let run = r.cluster_mut(cref);
    run.retry_at = Some(later(now, s.claim_retry));
    if run.waiting.as_deref() != Some(reason.as_str()) {
        audit(out, ENGINE, "cluster.waiting", subject, reason.clone());
        run.waiting = Some(reason);
    }
}

/// What a preparing cluster does next: its preflight (when the policy runs one and it
/// has not passed yet), else its baseline.
fn prepare(r: &Rollout, s: &Settings, cref: ClusterRef, out: &mut Vec<Command>) {
    let c = r.cluster(cref);
    if !c.claimed {
        out.push(Command::Claim {
            cluster: cref,
            id: c.id.clone(),
        });
        return;
    }
    if s.preflight.is_none() || c.preflight.as_ref().is_some_and(|p| p.passed) {
        out.push(Command::TakeBaseline {
            cluster: cref,
            id: c.id.clone(),
        });
        return;
    }
    let wave = &r.plan.rings[cref.ring].waves[cref.wave];
    let runs = &r.rings[cref.ring].waves[cref.wave].clusters;
    // The wave's clusters ahead of this one that may be surging now or soon: their
    // needs count against the same quota and subnets.
    let others = (0..cref.cluster)
        .filter(|&i| runs[i].status.is_active())
        .map(|i| wave.clusters[i].clone())
        .collect();
    out.push(Command::RunPreflight {
        cluster: cref,
        plan: wave.clusters[cref.cluster].clone(),
        wave: wave.name.clone(),
        others,
    });
}

/// Acts on a cluster's preflight: nothing blocking, on to the baseline; else what the
/// policy's `on_block` says. A skipped cluster is not a failed upgrade.
fn preflight_done(
    r: &mut Rollout,
    s: &Settings,
    cref: ClusterRef,
    findings: Vec<crate::preflight::Finding>,
    now: DateTime<Utc>,
    out: &mut Vec<Command>,
) {
    let Some(ps) = &s.preflight else { return };
    let c = r.cluster(cref);
    if c.status != ClusterStatus::Preparing || c.preflight.as_ref().is_some_and(|p| p.passed) {
        return;
    }
    let first = c.preflight.is_none();
    let started = c.started_at.unwrap_or(now);
    let subject = format!("{}/{}", r.rings[cref.ring].name, c.id.name);
    let blocking: Vec<String> = findings
        .iter()
        .filter(|f| f.severity == crate::preflight::Severity::Blocks)
        .map(|f| {
            let code = f.aks_code.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default();
            format!("{}{code}: {}", f.check.label(), f.seen)
        })
        .collect();
    let warnings = findings.len() - blocking.len();
    r.cluster_mut(cref).preflight = Some(PreflightRecord {
        at: now,
        passed: blocking.is_empty(),
        findings,
    });
    if blocking.is_empty() {
        audit(
            out,
            ENGINE,
            "cluster.preflight_passed",
            subject,
            format!("nothing blocks ({warnings} warnings)"),
        );
        prepare(r, s, cref, out);
        return;
    }
    // Said by `preflight` (the skip's `by`, the audit's action): the reason is the findings.
    let reason = blocking.join("; ");
    let id = r.cluster(cref).id.clone();
    let notify = |out: &mut Vec<Command>, message: String| {
        out.push(Command::Notify {
            event: NotifyEvent::PreflightBlocked,
            ring: Some(r.rings[cref.ring].name.clone()),
            cluster: Some(id.clone()),
            message,
        })
    };
    let waited_out = now - started >= dur(ps.wait_up_to);
    let waits = ps.on_block == OnBlock::Wait && !waited_out;
    // Audited once, when first found blocking (a `wait` re-checks without repeating it).
    if first {
        let said = if waits {
            format!("{reason}; re-checking")
        } else {
            reason.clone()
        };
        audit(out, ENGINE, "cluster.preflight_blocked", subject.clone(), said);
    }
    match ps.on_block {
        OnBlock::Wait if waits => {
            if first {
                notify(out, format!("{subject} waits for preflight: {reason}"));
            }
            r.cluster_mut(cref).retry_at = Some(later(now, ps.recheck));
        }
        OnBlock::Halt => {
            notify(out, format!("{subject}: preflight blocks the rollout: {reason}"));
            halt(r, format!("{subject}: preflight: {reason}"), out);
        }
        OnBlock::Skip | OnBlock::Wait => {
            let reason = if ps.on_block == OnBlock::Wait {
                format!(
                    "{reason} (still blocked after {})",
                    crate::domain::duration::format_duration(ps.wait_up_to)
                )
            } else {
                reason
            };
            notify(out, format!("{subject} skipped by preflight: {reason}"));
            skip_cluster(r, cref, "preflight".into(), reason, now, out);
        }
    }
}

/// Skips a cluster now: its gates stop, its watches end, it counts as finished.
fn skip_cluster(
    r: &mut Rollout,
    c: ClusterRef,
    by: String,
    reason: String,
    now: DateTime<Utc>,
    out: &mut Vec<Command>,
) {
    let gating: Vec<StepRef> = (0..r.cluster(c).steps.len())
        .map(|i| StepRef {
            ring: c.ring,
            wave: c.wave,
            cluster: c.cluster,
            step: i,
        })
        .filter(|st| matches!(r.step(*st).status, StepStatus::Gating { .. }))
        .collect();
    for st in gating {
        out.push(Command::StopGate { step: st });
    }
    let run = r.cluster_mut(c);
    run.status = ClusterStatus::Skipped {
        by: by.clone(),
        reason: reason.clone(),
    };
    run.finished_at = Some(now);
    run.skip_requested = None;
    let name = run.id.name.clone();
    out.push(Command::StopWatch {
        cluster: run.id.clone(),
    });
    audit(out, &by, "cluster.skipped", name, reason);
}

/// Pauses or resumes a ring or a cluster (the rollout's own pause is its status).
fn set_paused(r: &mut Rollout, scope: &Scope, paused: bool) {
    match scope {
        Scope::Ring(name) => r
            .rings
            .iter_mut()
            .filter(|x| &x.name == name)
            .for_each(|x| x.paused = paused),
        Scope::Cluster(id) => {
            if let Some(c) = r.find(id) {
                r.cluster_mut(c).paused = paused;
            }
        }
        Scope::Rollout => {}
    }
}

fn scope_name(s: &Scope) -> String {
    match s {
        Scope::Rollout => "rollout".into(),
        Scope::Ring(n) => format!("ring {n}"),
        Scope::Cluster(id) => format!("cluster {}", id.name),
    }
}

/// Steps that are past Pending and not finished.
fn in_progress_steps(r: &Rollout) -> Vec<StepRef> {
    let mut v = Vec::new();
    for (c, run) in r.clusters() {
        for (i, st) in run.steps.iter().enumerate() {
            if matches!(
                st.status,
                StepStatus::Starting { .. } | StepStatus::InFlight { .. } | StepStatus::Gating { .. }
            ) {
                v.push(StepRef {
                    ring: c.ring,
                    wave: c.wave,
                    cluster: c.cluster,
                    step: i,
                });
            }
        }
    }
    v
}

/// After a restart: watches again, and every step in flight picked up where it was.
fn resume(r: &mut Rollout, s: &Settings, now: DateTime<Utc>, out: &mut Vec<Command>) {
    let clusters: Vec<(ClusterRef, ClusterRun)> = r.clusters().map(|(a, b)| (a, b.clone())).collect();
    for (cref, c) in clusters {
        let warmed = c.status == ClusterStatus::Pending && c.warm;
        if r.status.is_terminal() || !(c.status.is_active() || warmed) {
            continue;
        }
        out.push(Command::StartWatch { cluster: c.id.clone() });
        if warmed {
            continue;
        }
        if c.status == ClusterStatus::Preparing {
            prepare(r, s, cref, out);
            continue;
        }
        for (i, st) in c.steps.iter().enumerate() {
            let step = StepRef {
                ring: cref.ring,
                wave: cref.wave,
                cluster: cref.cluster,
                step: i,
            };
            let (cluster, kind) = (c.id.clone(), st.kind.clone());
            match &st.status {
                StepStatus::Starting { .. } => out.push(Command::Reconcile { step, cluster, kind }),
                StepStatus::InFlight { op } => out.push(Command::FollowOperation {
                    step,
                    cluster,
                    kind,
                    op: op.clone(),
                }),
                // Nothing could be observed while the daemon was down.
                StepStatus::Gating { .. } => regate(r, step, now, out),
                _ => {}
            }
        }
    }
    // A notification may have died with the previous process: ask again.
    if !r.status.is_terminal() {
        for ring in r
            .rings
            .iter()
            .filter(|x| matches!(x.status, RingStatus::AwaitingApproval { .. }))
        {
            out.push(Command::Notify {
                event: NotifyEvent::ApprovalNeeded,
                ring: Some(ring.name.clone()),
                cluster: None,
                message: format!("ring {} is waiting for approval", ring.name),
            });
        }
    }
    audit(
        out,
        ENGINE,
        "rollout.resumed",
        r.id.clone(),
        "daemon started on stored state",
    );
}

/// A gate starts over: health must be seen again for the whole settle time, and the
/// gate gets its whole timeout again, because a timeout that ran out while nothing
/// could be observed or recorded says nothing about the cluster. The gate's watch is
/// asked for again (a steady cluster sends no new observation by itself).
fn regate(r: &mut Rollout, step: StepRef, now: DateTime<Utc>, out: &mut Vec<Command>) {
    r.step_mut(step).status = StepStatus::Gating {
        since: now,
        passing_since: None,
        last: None,
    };
    let (cluster, kind) = (r.cluster(step.cluster_ref()).id.clone(), r.step(step).kind.clone());
    out.push(Command::Gate { step, cluster, kind });
}

/// After saves failed from `since` until `now`: every running gate starts over (see
/// [`Input::Unrecorded`]); recorded once, with the span, so the audit says why a gate
/// took longer than its timeout.
fn unrecorded(r: &mut Rollout, since: DateTime<Utc>, now: DateTime<Utc>, out: &mut Vec<Command>) {
    if r.status.is_terminal() {
        return;
    }
    let gating: Vec<StepRef> = in_progress_steps(r)
        .into_iter()
        .filter(|&st| matches!(r.step(st).status, StepStatus::Gating { .. }))
        .collect();
    for &st in &gating {
        regate(r, st, now, out);
    }
    audit(
        out,
        ENGINE,
        "rollout.unrecorded",
        r.id.clone(),
        format!(
            "the state could not be saved from {since} to {now}; {} gate(s) observe again for their whole timeout",
            gating.len()
        ),
    );
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
fn check_gate(r: &mut Rollout, s: &Settings, step: StepRef, now: DateTime<Utc>, out: &mut Vec<Command>) {
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

fn fail_cluster(r: &mut Rollout, c: ClusterRef, reason: String, now: DateTime<Utc>, out: &mut Vec<Command>) {
    let run = r.cluster(c);
    if run.status.is_finished() {
        return;
    }
    let rolling_back = run.steps.iter().any(|s| is_rollback(&s.kind));
    let reason = match gate_failure(run) {
        Some(first) if rolling_back => {
            let subject = format!("{}/{}", r.rings[c.ring].name, run.id.name);
            let reason = format!("{first}; the rollback failed: {reason}");
            out.push(Command::Notify {
                event: NotifyEvent::RollbackFinished,
                ring: Some(r.rings[c.ring].name.clone()),
                cluster: Some(run.id.clone()),
                message: format!("{subject}: {reason}"),
            });
            audit(out, ENGINE, "cluster.rollback_failed", subject, reason.clone());
            reason
        }
        _ => reason,
    };
    let run = r.cluster_mut(c);
    run.status = ClusterStatus::Failed { reason: reason.clone() };
    run.finished_at = Some(now);
    let id = run.id.clone();
    out.push(Command::StopWatch { cluster: id.clone() });
    audit(
        out,
        ENGINE,
        "cluster.failed",
        format!("{}/{}", r.rings[c.ring].name, id.name),
        reason,
    );
}

fn halt(r: &mut Rollout, reason: String, out: &mut Vec<Command>) {
    if r.status.is_terminal() {
        return;
    }
    r.status = RolloutStatus::Halted { reason: reason.clone() };
    audit(out, ENGINE, "rollout.halted", r.id.clone(), reason.clone());
    out.push(Command::Notify {
        event: NotifyEvent::RolloutHalted,
        ring: None,
        cluster: None,
        message: format!("rollout {} halted: {reason}", r.id),
    });
}

fn ring_failures(ring: &RingRun) -> u32 {
    ring.waves
        .iter()
        .flat_map(|w| &w.clusters)
        .filter(|c| c.status.is_failure())
        .count() as u32
}

fn approval_valid(ring: &RingRun, now: DateTime<Utc>) -> bool {
    ring.approval
        .as_ref()
        .is_some_and(|a| a.expires_at.is_none_or(|e| e > now))
}

fn drive(r: &mut Rollout, s: &Settings, now: DateTime<Utc>, out: &mut Vec<Command>) {
    if r.status.is_terminal() {
        return;
    }
    // Timed transitions of steps: soaks end, backoffs end, gates pass or time out. Only
    // the steps in one of those states are looked at again (a scan that copies nothing:
    // at 5,000 clusters it runs at every transition), and only in clusters still under
    // way: a finished cluster is over (a skipped one's gate, stopped, must not fail its
    // step at its old deadline and start a rollback on it).
    let timed: Vec<StepRef> = r
        .clusters()
        .filter(|(_, run)| !run.status.is_finished())
        .flat_map(|(c, run)| {
            run.steps.iter().enumerate().filter_map(move |(i, st)| {
                matches!(
                    st.status,
                    StepStatus::Soaking { .. } | StepStatus::Backoff { .. } | StepStatus::Gating { .. }
                )
                .then_some(StepRef {
                    ring: c.ring,
                    wave: c.wave,
                    cluster: c.cluster,
                    step: i,
                })
            })
        })
        .collect();
    for st in timed {
        match r.step(st).status.clone() {
            StepStatus::Soaking { until } if until <= now => {
                let x = r.step_mut(st);
                x.status = StepStatus::Done;
                x.finished_at = Some(now);
            }
            StepStatus::Backoff { until } if until <= now => r.step_mut(st).status = StepStatus::Pending,
            StepStatus::Gating { .. } => check_gate(r, s, st, now, out),
            _ => {}
        }
    }
    // Skips that waited for a running operation, now that it ended.
    let waiting: Vec<ClusterRef> = r
        .clusters()
        .filter(|(_, c)| {
            c.skip_requested.is_some()
                && !c.status.is_finished()
                && !c.steps.iter().any(|s| s.status.may_have_operation())
        })
        .map(|(c, _)| c)
        .collect();
    for c in waiting {
        if let Some((by, reason)) = r.cluster_mut(c).skip_requested.take() {
            skip_cluster(r, c, by, reason, now, out);
        }
    }
    let paused = matches!(r.status, RolloutStatus::Paused { .. });
    for ri in 0..r.rings.len() {
        let settings = s.ring(&r.rings[ri].name).cloned();
        let needs_approval = settings.as_ref().is_some_and(|x| x.approvers.is_some());
        match r.rings[ri].status.clone() {
            RingStatus::Passed => continue,
            RingStatus::Failed { .. } => return,
            RingStatus::Pending | RingStatus::AwaitingApproval { .. } => {
                // An approval that expired before the ring could start is no approval:
                // someone has to approve again, so ask again.
                if r.rings[ri].approval.is_some() && !approval_valid(&r.rings[ri], now) {
                    r.rings[ri].approval = None;
                    let name = r.rings[ri].name.clone();
                    audit(
                        out,
                        ENGINE,
                        "ring.approval_expired",
                        name.clone(),
                        "expired before the ring started",
                    );
                    if matches!(r.rings[ri].status, RingStatus::AwaitingApproval { .. }) {
                        out.push(Command::Notify {
                            event: NotifyEvent::ApprovalNeeded,
                            ring: Some(name.clone()),
                            cluster: None,
                            message: format!("the approval of ring {name} expired; approve again"),
                        });
                    }
                }
                if paused || r.rings[ri].paused {
                    return;
                }
                if needs_approval && !approval_valid(&r.rings[ri], now) {
                    if matches!(r.rings[ri].status, RingStatus::Pending) {
                        r.rings[ri].status = RingStatus::AwaitingApproval { since: now };
                        let name = r.rings[ri].name.clone();
                        audit(
                            out,
                            ENGINE,
                            "ring.awaiting_approval",
                            name.clone(),
                            "the previous ring passed",
                        );
                        let who = settings
                            .as_ref()
                            .and_then(|x| x.approvers.clone())
                            .unwrap_or_default()
                            .join(", ");
                        out.push(Command::Notify {
                            event: NotifyEvent::ApprovalNeeded,
                            ring: Some(name.clone()),
                            cluster: None,
                            message: format!("ring {name} is waiting for approval by {who}"),
                        });
                    }
                    return;
                }
                r.rings[ri].status = RingStatus::Running;
                r.rings[ri].started_at = Some(now);
                audit(out, ENGINE, "ring.started", r.rings[ri].name.clone(), "");
            }
            RingStatus::Soaking { until } => {
                if until <= now {
                    r.rings[ri].status = RingStatus::Passed;
                    r.rings[ri].finished_at = Some(now);
                    audit(out, ENGINE, "ring.passed", r.rings[ri].name.clone(), "soak over");
                    continue;
                }
                return;
            }
            RingStatus::Running => {}
        }
        // The ring runs.
        let halt_now = settings
            .as_ref()
            .is_some_and(|x| x.halt_on_failure && ring_failures(&r.rings[ri]) > x.max_failed_clusters);
        if halt_now {
            let name = r.rings[ri].name.clone();
            r.rings[ri].status = RingStatus::Failed {
                reason: "failure budget exceeded".into(),
            };
            halt(
                r,
                format!(
                    "ring {name}: {} cluster(s) failed, budget {}",
                    ring_failures(&r.rings[ri]),
                    settings.as_ref().map_or(0, |x| x.max_failed_clusters)
                ),
                out,
            );
            return;
        }
        if !drive_ring(r, s, ri, paused, now, out) {
            return;
        }
        // Every wave is finished.
        let failures = ring_failures(&r.rings[ri]);
        let budget = settings.as_ref().map_or(0, |x| x.max_failed_clusters);
        let name = r.rings[ri].name.clone();
        if failures > budget {
            r.rings[ri].status = RingStatus::Failed {
                reason: format!("{failures} cluster(s) failed, budget {budget}"),
            };
            halt(
                r,
                format!("ring {name}: {failures} cluster(s) failed, budget {budget}"),
                out,
            );
            return;
        }
        let soak = settings.as_ref().map_or(std::time::Duration::ZERO, |x| x.soak);
        out.push(Command::Notify {
            event: NotifyEvent::RingDone,
            ring: Some(name.clone()),
            cluster: None,
            message: format!("ring {name} done ({failures} failed); soaking {}s", soak.as_secs()),
        });
        audit(out, ENGINE, "ring.done", name, format!("{failures} cluster(s) failed"));
        r.rings[ri].status = RingStatus::Soaking {
            until: later(now, soak),
        };
        if soak.is_zero() {
            r.rings[ri].status = RingStatus::Passed;
            r.rings[ri].finished_at = Some(now);
            continue;
        }
        return;
    }
    if r.rings.iter().all(|x| x.status == RingStatus::Passed) {
        r.status = RolloutStatus::Succeeded;
        audit(out, ENGINE, "rollout.succeeded", r.id.clone(), "");
        out.push(Command::Notify {
            event: NotifyEvent::RolloutFinished,
            ring: None,
            cluster: None,
            message: format!("rollout {} finished", r.id),
        });
    }
}

/// Drives the current wave of a ring; true when every wave is finished.
fn drive_ring(
    r: &mut Rollout,
    s: &Settings,
    ri: usize,
    paused: bool,
    now: DateTime<Utc>,
    out: &mut Vec<Command>,
) -> bool {
    for wi in 0..r.rings[ri].waves.len() {
        if r.rings[ri].waves[wi].clusters.iter().all(|c| c.status.is_finished()) {
            continue;
        }
        let ring_paused = paused || r.rings[ri].paused;
        let max = r.rings[ri].waves[wi].max_parallel;
        for ci in 0..r.rings[ri].waves[wi].clusters.len() {
            let cref = ClusterRef {
                ring: ri,
                wave: wi,
                cluster: ci,
            };
            let active = r.rings[ri].waves[wi]
                .clusters
                .iter()
                .filter(|c| c.status.is_active())
                .count();
            let c = r.cluster(cref);
            match c.status {
                ClusterStatus::Pending => {
                    let first_due = c.steps.first().is_none_or(|s| s.earliest_start <= now);
                    if ring_paused || c.paused || active >= max || !first_due {
                        continue;
                    }
                    let id = c.id.clone();
                    let run = r.cluster_mut(cref);
                    run.status = ClusterStatus::Preparing;
                    run.started_at = Some(now);
                    out.push(Command::StartWatch { cluster: id });
                    prepare(r, s, cref, out);
                }
                ClusterStatus::Preparing if c.retry_at.is_some_and(|t| t <= now) => {
                    r.cluster_mut(cref).retry_at = None;
                    prepare(r, s, cref, out);
                }
                ClusterStatus::Running => drive_cluster(r, cref, ring_paused, now, out),
                _ => {}
            }
        }
        if !ring_paused {
            warm_next_wave(r, ri, wi, out);
        }
        return false;
    }
    true
}

/// Once every cluster of wave `wi` has started, starts the watches of the next wave's
/// clusters (once each): when their turn comes, the baseline is read from watches that
/// already listed, instead of every cluster of a wave connecting at the same moment.
fn warm_next_wave(r: &mut Rollout, ri: usize, wi: usize, out: &mut Vec<Command>) {
    let ring = &mut r.rings[ri];
    if wi + 1 >= ring.waves.len()
        || ring.waves[wi]
            .clusters
            .iter()
            .any(|c| c.status == ClusterStatus::Pending)
    {
        return;
    }
    for c in &mut ring.waves[wi + 1].clusters {
        if c.status == ClusterStatus::Pending && !c.paused && !c.warm {
            std::sync::Arc::make_mut(c).warm = true;
            out.push(Command::StartWatch { cluster: c.id.clone() });
        }
    }
}

fn drive_cluster(r: &mut Rollout, cref: ClusterRef, ring_paused: bool, now: DateTime<Utc>, out: &mut Vec<Command>) {
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

fn is_rollback(k: &StepKind) -> bool {
    matches!(k, StepKind::PoolRollback { .. })
}

/// Every step done: the cluster is upgraded, or (when its last step was a rollback)
/// rolled back with its workloads healthy again.
fn finish_cluster(
    r: &mut Rollout,
    cref: ClusterRef,
    rollback: Option<usize>,
    now: DateTime<Utc>,
    out: &mut Vec<Command>,
) {
    let subject = format!("{}/{}", r.rings[cref.ring].name, r.cluster(cref).id.name);
    let (status, action, why) = match rollback.map(|j| r.cluster(cref).steps[j].kind.clone()) {
        Some(StepKind::PoolRollback { pool, to, image, .. }) => {
            let image = image.map(|i| format!(" (image {i})")).unwrap_or_default();
            let reason = format!(
                "{}; pool {pool} rolled back to {to}{image}, its workloads passed the gate again",
                gate_failure(r.cluster(cref)).unwrap_or("the gate failed")
            );
            out.push(Command::Notify {
                event: NotifyEvent::RollbackFinished,
                ring: Some(r.rings[cref.ring].name.clone()),
                cluster: Some(r.cluster(cref).id.clone()),
                message: format!("{subject} rolled back: {reason}"),
            });
            (
                ClusterStatus::RolledBack { reason: reason.clone() },
                "cluster.rolled_back",
                reason,
            )
        }
        _ => (
            ClusterStatus::Done,
            "cluster.done",
            "every step passed its gate".to_string(),
        ),
    };
    let run = r.cluster_mut(cref);
    run.status = status;
    run.finished_at = Some(now);
    out.push(Command::StopWatch {
        cluster: run.id.clone(),
    });
    audit(out, ENGINE, action, subject, why);
}

/// The reason of the step whose failure started a rollback.
fn gate_failure(c: &ClusterRun) -> Option<&str> {
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

/// The earliest time something is due.
fn next_wake(r: &Rollout, s: &Settings, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if r.status.is_terminal() {
        return None;
    }
    let mut best: Option<DateTime<Utc>> = None;
    let mut consider = |t: DateTime<Utc>| {
        if t > now {
            best = Some(best.map_or(t, |b| b.min(t)));
        }
    };
    for ring in &r.rings {
        if let RingStatus::Soaking { until } = ring.status {
            consider(until);
        }
        if let (RingStatus::AwaitingApproval { .. } | RingStatus::Pending, Some(a)) = (&ring.status, &ring.approval)
            && let Some(e) = a.expires_at
        {
            consider(e);
        }
        for w in &ring.waves {
            for c in w.clusters.iter().filter(|c| !c.status.is_finished()) {
                if let Some(t) = c.retry_at {
                    consider(t);
                }
                if matches!(c.status, ClusterStatus::Pending)
                    && let Some(first) = c.steps.first()
                {
                    consider(first.earliest_start);
                }
                for st in &c.steps {
                    match &st.status {
                        StepStatus::Soaking { until } | StepStatus::Backoff { until } => consider(*until),
                        StepStatus::Gating {
                            since, passing_since, ..
                        } => {
                            consider(later(*since, s.gate_timeout));
                            if let Some(p) = passing_since {
                                consider(later(*p, s.gate_settle));
                            }
                        }
                        StepStatus::Pending if c.status == ClusterStatus::Running => consider(st.earliest_start),
                        _ => {}
                    }
                }
            }
        }
    }
    best
}
