//! The rollout level: the drive of the whole rollout (timed step transitions, skips that
//! waited, then ring by ring), its halt, an operator's pause, resume and abort, and what
//! a restart or a span of failed saves does to the rollout.

use super::{
    ENGINE, audit,
    cluster::{prepare, skip_cluster},
    ring::{approval_valid, ring_failures},
    step::{check_gate, regate},
    wave::drive_ring,
};
use crate::domain::duration::later;
use crate::engine::input::{Command, NotifyEvent, Scope};
use crate::engine::model::*;
use crate::engine::settings::Settings;
use chrono::{DateTime, Utc};

pub(super) fn drive(r: &mut Rollout, s: &Settings, now: DateTime<Utc>, out: &mut Vec<Command>) {
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

pub(super) fn halt(r: &mut Rollout, reason: String, out: &mut Vec<Command>) {
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

/// An operator pauses the rollout, a ring or a cluster.
pub(super) fn pause(r: &mut Rollout, scope: Scope, by: String, reason: String, out: &mut Vec<Command>) {
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

/// An operator resumes the rollout, a ring or a cluster.
pub(super) fn unpause(r: &mut Rollout, scope: Scope, by: String, out: &mut Vec<Command>) {
    match &scope {
        Scope::Rollout if matches!(r.status, RolloutStatus::Paused { .. }) => r.status = RolloutStatus::Running,
        Scope::Rollout => return,
        _ => set_paused(r, &scope, false),
    }
    audit(out, &by, "resumed", scope_name(&scope), "");
}

/// An operator aborts the rollout: operations and gates stop, watches end.
pub(super) fn abort(r: &mut Rollout, by: String, reason: String, out: &mut Vec<Command>) {
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
pub(super) fn resume(r: &mut Rollout, s: &Settings, now: DateTime<Utc>, out: &mut Vec<Command>) {
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

/// After saves failed from `since` until `now`: every running gate starts over (see
/// [`Input::Unrecorded`](crate::engine::Input::Unrecorded)); recorded once, with the
/// span, so the audit says why a gate took longer than its timeout.
pub(super) fn unrecorded(r: &mut Rollout, since: DateTime<Utc>, now: DateTime<Utc>, out: &mut Vec<Command>) {
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
