//! An operation's life: starting one (refused while another runs), its ticks through
//! its phases, injected failures, its end (statuses, provisioning states, the cluster's
//! lock), cancel and abort; and the cluster auto-upgrade a fault fires, which starts one.

use super::pool_upgrade::pool_step;
use super::{Busy, OpStatus, Operation, Phase, PoolGoal, Stage, Target};
use crate::fleet::{FaultKind, OpKind};
use crate::world::{Event, World};
use std::collections::VecDeque;

/// Starts an operation on cluster `c`; refused (AKS's 409) while another runs.
pub fn start(w: &mut World, c: usize, target: Target, phases: Vec<Phase>, kind: OpKind) -> Result<String, Busy> {
    if w.clusters[c].operation.is_some() {
        return Err(Busy(busy_message(w, c)));
    }
    let id = w.rng.guid();
    let state = match (&target, phases.first()) {
        (_, Some(Phase::NodeImage { .. })) => "UpgradingNodeImageVersion",
        (_, Some(Phase::Reconcile)) => "Updating",
        _ => "Upgrading",
    };
    match &target {
        Target::Cluster => w.clusters[c].provisioning_state = state,
        Target::Pool(p) => {
            if let Some(pool) = w.clusters[c].pool_mut(p) {
                pool.provisioning_state = state;
            }
        }
    }
    bump_etags(w, c, &target);
    w.clusters[c].operation = Some(id.clone());
    let location_returns_resource = matches!(phases.first(), Some(Phase::NodeImage { .. }));
    let phases_text: Vec<String> = phases.iter().map(|p| format!("{p:?}")).collect();
    w.last_started = Some(id.clone());
    w.ops.insert(
        id.clone(),
        Operation {
            id: id.clone(),
            cluster: c,
            target,
            status: OpStatus::InProgress,
            start: w.now,
            end: None,
            error: None,
            phases: phases.into(),
            phase_started: false,
            job: None,
            generation: 0,
            kind,
            location_returns_resource,
            ticks: 0,
            abort_of: None,
            work: phases_text.clone(),
        },
    );
    w.schedule(
        w.now,
        Event::OpTick {
            op: id.clone(),
            generation: 0,
        },
    );
    Ok(id)
}

/// AKS's message for a write refused because another operation runs.
pub(crate) fn busy_message(w: &World, c: usize) -> String {
    let running = w.clusters[c].operation.as_deref().unwrap_or_default();
    let what = match w.ops.get(running).map(|o| &o.target) {
        Some(Target::Pool(p)) => format!("{p} - {}", pool_state(w, c, p)),
        _ => format!("{} - {}", w.clusters[c].name, w.clusters[c].provisioning_state),
    };
    format!(
        "Operation is not allowed: Another operation ({what}) is in progress, please wait for it to finish before starting a new operation. See https://aka.ms/aks-pending-operation for more details"
    )
}

fn pool_state(w: &World, c: usize, p: &str) -> &'static str {
    w.clusters[c].pool(p).map_or("Updating", |p| p.provisioning_state)
}

fn bump_etags(w: &mut World, c: usize, target: &Target) {
    let e = w.rng.hex(16);
    w.clusters[c].etag = e;
    if let Target::Pool(p) = target {
        let e = w.rng.hex(16);
        if let Some(pool) = w.clusters[c].pool_mut(p) {
            pool.etag = e;
        }
    }
}

/// Wakes the operation running on cluster `c` (a node became Ready, a pod became
/// Ready): stages waiting on those re-check at once instead of on a timer.
pub(crate) fn wake_cluster(w: &mut World, c: usize) {
    if let Some(id) = w.clusters[c].operation.clone()
        && let Some(op) = w.ops.get_mut(&id)
        && op.job.as_ref().is_some_and(|j| {
            matches!(
                j.stage,
                Stage::WaitSurgeReady | Stage::Reimaging | Stage::Draining | Stage::DrainingSurge
            )
        })
    {
        op.generation += 1;
        let g = op.generation;
        w.schedule(w.now, Event::OpTick { op: id, generation: g });
    }
}

/// Schedules the next tick of `id` after `d`, invalidating earlier ones.
pub(super) fn tick_after(w: &mut World, id: &str, d: std::time::Duration) {
    if let Some(op) = w.ops.get_mut(id) {
        op.generation += 1;
        let g = op.generation;
        w.after(
            d,
            Event::OpTick {
                op: id.to_string(),
                generation: g,
            },
        );
    }
}

/// Drives operation `id` one step.
pub fn tick(w: &mut World, id: &str, generation: u64) {
    let Some(op) = w.ops.get_mut(id) else { return };
    if op.generation != generation || op.status.is_terminal() || op.status == OpStatus::Canceling {
        return;
    }
    op.ticks += 1;
    let started = op.phase_started;
    op.phase_started = true;
    let c = op.cluster;
    let Some(phase) = op.phases.front().cloned() else {
        finish(w, id, OpStatus::Succeeded, None);
        return;
    };
    match phase {
        Phase::ControlPlane(v) => {
            if !started {
                if let Some(err) = injected_failure(w, c, OpKind::ControlPlane, None) {
                    let half = w.fleet.durations.control_plane_upgrade / 2;
                    fail_later(w, id, half, err);
                    return;
                }
                let d = w.fleet.durations.control_plane_upgrade;
                tick_after(w, id, d);
                return;
            }
            let cl = &mut w.clusters[c];
            cl.current_version = v;
            cl.kube.server_version = Some(v);
            next_phase(w, id);
        }
        Phase::Reconcile => {
            if !started {
                let d = w.fleet.durations.reconcile;
                tick_after(w, id, d);
                return;
            }
            next_phase(w, id);
        }
        Phase::Abort { target } => {
            if !started {
                let d = w.fleet.durations.abort;
                tick_after(w, id, d);
                return;
            }
            cancel(w, &target);
            next_phase(w, id);
        }
        Phase::PoolVersion { pool, version } => pool_step(w, id, c, &pool, PoolGoal::Version(version), started),
        Phase::NodeImage { pool } => pool_step(w, id, c, &pool, PoolGoal::LatestImage, started),
        Phase::PoolRollback { pool, version, image } => {
            pool_step(w, id, c, &pool, PoolGoal::Rollback { version, image }, started)
        }
    }
}

pub(super) fn next_phase(w: &mut World, id: &str) {
    let Some(op) = w.ops.get_mut(id) else { return };
    op.phases.pop_front();
    op.phase_started = false;
    op.job = None;
    op.generation += 1;
    let g = op.generation;
    w.schedule(
        w.now,
        Event::OpTick {
            op: id.to_string(),
            generation: g,
        },
    );
}

pub(super) fn injected_failure(w: &World, c: usize, kind: OpKind, pool: Option<&str>) -> Option<(String, String)> {
    let name = &w.clusters[c].name;
    w.active_faults().find_map(|f| match &f.what {
        FaultKind::OperationFails {
            cluster,
            operation,
            pool: fp,
            code,
            message,
        } if cluster == name && *operation == kind && (fp.is_none() || fp.as_deref() == pool) => {
            Some((code.clone(), message.clone()))
        }
        _ => None,
    })
}

pub(super) fn fail_later(w: &mut World, id: &str, d: std::time::Duration, err: (String, String)) {
    if let Some(op) = w.ops.get_mut(id) {
        op.error = Some(err);
        // An empty phase list with an error set finishes as Failed on the next tick.
        op.phases.clear();
        op.phases.push_back(Phase::Reconcile);
        op.phase_started = true;
    }
    tick_after(w, id, d);
}

/// Ends an operation: statuses, provisioning states, the cluster's lock.
pub(super) fn finish(w: &mut World, id: &str, mut status: OpStatus, error: Option<(String, String)>) {
    let now = w.now;
    let Some(op) = w.ops.get_mut(id) else { return };
    if error.is_some() {
        op.error = error;
    }
    if op.error.is_some() && status == OpStatus::Succeeded {
        status = OpStatus::Failed;
    }
    op.status = status;
    op.end = Some(now);
    op.job = None;
    let (c, target) = (op.cluster, op.target.clone());
    let state = match status {
        OpStatus::Succeeded => "Succeeded",
        OpStatus::Canceled => "Canceled",
        _ => "Failed",
    };
    // An abort's own operation leaves states to the operation it canceled.
    let is_abort = op.abort_of.is_some();
    let cluster = &mut w.clusters[c];
    if cluster.operation.as_deref() == Some(id) {
        cluster.operation = None;
    }
    if !is_abort {
        match &target {
            Target::Cluster => {
                cluster.provisioning_state = state;
                for p in &mut cluster.pools {
                    if matches!(
                        p.provisioning_state,
                        "Upgrading" | "UpgradingNodeImageVersion" | "Canceling"
                    ) {
                        p.provisioning_state = state;
                    }
                }
            }
            Target::Pool(p) => {
                if let Some(pool) = cluster.pool_mut(p) {
                    pool.provisioning_state = state;
                }
                // "The `provisioningState` property indicates the status of the latest
                // Azure resource operation" (`list-aks-clusters.md`): a cluster left
                // Canceled or Failed by an earlier operation reads Succeeded once a later
                // operation on it (here on one of its pools) succeeds.
                if status == OpStatus::Succeeded && matches!(cluster.provisioning_state, "Canceled" | "Failed") {
                    cluster.provisioning_state = "Succeeded";
                }
            }
        }
        bump_etags(w, c, &target);
    }
}

/// Abort: the target stops where it is and ends Canceled.
pub fn cancel(w: &mut World, id: &str) {
    let Some(op) = w.ops.get(id) else { return };
    if op.status.is_terminal() {
        return;
    }
    let c = op.cluster;
    let job = op.job.clone();
    if let Some(job) = job {
        // Leave no node cordoned by us (quarantined ones stay), and no surge node behind.
        for n in job.batch.iter().filter(|n| !job.quarantined.contains(n)) {
            w.clusters[c].kube.update_node(n, |n| n.unschedulable = false);
        }
        for n in &job.surge {
            w.remove_node(c, n);
        }
        w.kick_unscheduled(c);
    }
    // ARM's async-operation contract: a Failed or Canceled status carries `error`. The
    // shape is Azure's for a canceled operation (`{"code": "Canceled", "message":
    // "Operation was canceled."}`, as Azure's network RP answers it).
    let why = (
        "Canceled".to_string(),
        "Operation was canceled: an abort request stopped it.".to_string(),
    );
    finish(w, id, OpStatus::Canceled, Some(why));
}

/// Marks the running operation of cluster `c` Canceling and starts the abort
/// operation that will end it. `None` when nothing runs (AKS answers 204).
pub fn abort(w: &mut World, c: usize, target: Target) -> Option<String> {
    let running = w.clusters[c].operation.clone()?;
    if let Some(op) = w.ops.get_mut(&running) {
        op.status = OpStatus::Canceling;
    }
    match &target {
        Target::Cluster => w.clusters[c].provisioning_state = "Canceling",
        Target::Pool(p) => {
            if let Some(pool) = w.clusters[c].pool_mut(p) {
                pool.provisioning_state = "Canceling";
            }
        }
    }
    let id = w.rng.guid();
    w.last_started = Some(id.clone());
    w.ops.insert(
        id.clone(),
        Operation {
            id: id.clone(),
            cluster: c,
            target,
            status: OpStatus::InProgress,
            start: w.now,
            end: None,
            error: None,
            phases: VecDeque::from([Phase::Abort {
                target: running.clone(),
            }]),
            phase_started: false,
            job: None,
            generation: 0,
            kind: OpKind::ControlPlane,
            location_returns_resource: false,
            ticks: 0,
            abort_of: Some(running.clone()),
            work: vec![format!("Abort {{ target: {running:?} }}")],
        },
    );
    w.schedule(
        w.now,
        Event::OpTick {
            op: id.clone(),
            generation: 0,
        },
    );
    Some(id)
}

/// A cluster's own AKS auto-upgrade fires (fault `auto_upgrade`): the channel's target
/// for the control plane and every pool, as AKS would do in its maintenance window.
pub fn auto_upgrade(w: &mut World, c: usize, _fault: usize) {
    if w.clusters[c].operation.is_some() {
        return;
    }
    let cl = &w.clusters[c];
    let current = cl.current_version;
    let target = match cl.auto_upgrade_channel.as_str() {
        "patch" => w.latest_patch(&cl.location, current.minor_version()),
        "stable" | "rapid" => w
            .latest_patch(&cl.location, current.minor_version().next())
            .or_else(|| w.latest_patch(&cl.location, current.minor_version())),
        _ => None,
    };
    let Some(target) = target.filter(|t| *t > current) else {
        return;
    };
    let mut phases = vec![Phase::ControlPlane(target)];
    for p in &cl.pools {
        phases.push(Phase::PoolVersion {
            pool: p.name.clone(),
            version: target,
        });
    }
    w.clusters[c].kubernetes_version = target.to_string();
    for p in &mut w.clusters[c].pools {
        p.orchestrator_version = target.to_string();
    }
    let _ = start(w, c, Target::Cluster, phases, OpKind::ControlPlane);
}
