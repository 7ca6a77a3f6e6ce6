//! The cluster level: getting a cluster ready (its claim, its preflight, its
//! baseline), and taking it out of the rollout (skipped, failed, finished). Apart from
//! the rest of the machine because a cluster's preparation is its own small protocol
//! with the executor (claim, preflight, baseline, each retried on its own clock).

use super::{
    ENGINE, audit, dur,
    rollout::halt,
    step::{gate_failure, is_rollback},
};
use crate::domain::duration::later;
use crate::domain::fleet::ClusterId;
use crate::engine::input::{Command, NotifyEvent};
use crate::engine::model::*;
use crate::engine::settings::Settings;
use crate::plan::StepKind;
use crate::policy::OnBlock;
use chrono::{DateTime, Utc};

/// The baseline was read: the cluster runs.
pub(super) fn baseline_taken(
    r: &mut Rollout,
    cluster: ClusterRef,
    baseline: crate::gate::Baseline,
    pools: std::collections::BTreeMap<String, PoolVersions>,
    out: &mut Vec<Command>,
) {
    let c = r.cluster_mut(cluster);
    if c.status == ClusterStatus::Preparing {
        c.baseline = Some(baseline);
        c.pools = pools;
        c.status = ClusterStatus::Running;
        let subject = format!("{}/{}", r.rings[cluster.ring].name, r.cluster(cluster).id.name);
        audit(out, ENGINE, "cluster.started", subject, "baseline taken");
    }
}

/// The claim was granted: on with the preparation.
pub(super) fn claimed(r: &mut Rollout, s: &Settings, cluster: ClusterRef, out: &mut Vec<Command>) {
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

/// Another rollout holds the cluster: skip it, or wait and ask again (audited when the
/// reason changes, not at every ask).
pub(super) fn cluster_busy(
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

/// The baseline could not be read: ask again in a while, or fail the cluster once the
/// gate timeout has passed since it started.
pub(super) fn baseline_failed(
    r: &mut Rollout,
    s: &Settings,
    cluster: ClusterRef,
    reason: String,
    now: DateTime<Utc>,
    out: &mut Vec<Command>,
) {
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

/// What a preparing cluster does next: its preflight (when the policy runs one and it
/// has not passed yet), else its baseline.
pub(super) fn prepare(r: &Rollout, s: &Settings, cref: ClusterRef, out: &mut Vec<Command>) {
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
pub(super) fn preflight_done(
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

/// An operator skips a cluster: now, or when its running operation ends.
pub(super) fn skip(
    r: &mut Rollout,
    cluster: ClusterId,
    by: String,
    reason: String,
    now: DateTime<Utc>,
    out: &mut Vec<Command>,
) {
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

/// Skips a cluster now: its gates stop, its watches end, it counts as finished.
pub(super) fn skip_cluster(
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

pub(super) fn fail_cluster(r: &mut Rollout, c: ClusterRef, reason: String, now: DateTime<Utc>, out: &mut Vec<Command>) {
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

/// Every step done: the cluster is upgraded, or (when its last step was a rollback)
/// rolled back with its workloads healthy again.
pub(super) fn finish_cluster(
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
