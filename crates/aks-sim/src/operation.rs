//! Long-running operations: control-plane upgrades, pool upgrades by AKS's surge
//! algorithm, node image upgrades, reconciles and aborts, each a state machine driven
//! by timed events. Their status is what ARM's `Azure-AsyncOperation` and `Location`
//! URLs report.
//!
//! A pool upgrade (aks-facts.md, "How AKS upgrades a pool"): add `maxSurge` nodes on
//! the target; cordon and drain as many old nodes (plus `maxUnavailable`) through
//! evictions that honour PDBs, each within `drainTimeoutInMinutes`; soak; reimage them
//! onto the target, where they become the buffer for the next batch; at the end drain
//! and delete the surge nodes.
//!
//! A rollback (`roll-back-node-pool-version.md`: it "replaces the nodes" like an
//! upgrade) is the same algorithm towards a pair the pool ran before ([`PoolGoal`]).
//! Each clean pool upgrade remembers the pair it left (`Pool::remember`), which the
//! pool's upgrade profile serves as `recentlyUsedVersions`; a rollback clears that
//! history ("Consecutive rollbacks to go back several versions are not possible").

use super::clock::SimTime;
use super::fleet::{FaultKind, OpKind, Undrainable, parse_count_or_percent};
use super::kube_model::ChangeType;
use super::version::KubeVersion;
use super::world::{Event, World, with_cluster};
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpStatus {
    InProgress,
    Canceling,
    Succeeded,
    Failed,
    Canceled,
}

impl OpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OpStatus::InProgress => "InProgress",
            OpStatus::Canceling => "Canceling",
            OpStatus::Succeeded => "Succeeded",
            OpStatus::Failed => "Failed",
            OpStatus::Canceled => "Canceled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, OpStatus::Succeeded | OpStatus::Failed | OpStatus::Canceled)
    }
}

/// Which resource an operation acts on (its provisioningState, and the final result of
/// a `Location` poll).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Cluster,
    Pool(String),
}

/// One piece of work of an operation, done in order.
#[derive(Debug, Clone)]
pub enum Phase {
    ControlPlane(KubeVersion),
    PoolVersion {
        pool: String,
        version: KubeVersion,
    },
    NodeImage {
        pool: String,
    },
    /// Back to a pair of the pool's `recentlyUsedVersions` (a pool PUT whose
    /// `nodeImageVersion` names one): its nodes replaced as in a version upgrade.
    PoolRollback {
        pool: String,
        version: KubeVersion,
        image: String,
    },
    /// A PUT that changed nothing that needs nodes touched.
    Reconcile,
    /// Cancels operation `target` (an abort's own operation).
    Abort {
        target: String,
    },
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    pub cluster: usize,
    pub target: Target,
    pub status: OpStatus,
    pub start: SimTime,
    pub end: Option<SimTime>,
    pub error: Option<(String, String)>,
    pub phases: VecDeque<Phase>,
    /// Whether the current phase has begun (its first tick happened).
    pub phase_started: bool,
    pub job: Option<PoolJob>,
    /// Events carry the generation they were scheduled for; older ones are ignored.
    pub generation: u64,
    /// What kind of work the operation does (for faults and status).
    pub kind: OpKind,
    /// True for a Location-final operation whose result is the resource (node image).
    pub location_returns_resource: bool,
    /// Number of ticks (a progress figure).
    pub ticks: u64,
    /// For an abort's own operation: the operation it cancels.
    pub abort_of: Option<String>,
    /// What the operation was asked to do (its phases at the start), for inspection.
    pub work: Vec<String>,
}

/// Progress of one pool upgrade (version or node image).
#[derive(Debug, Clone)]
pub struct PoolJob {
    pub pool: String,
    pub version: KubeVersion,
    pub image: String,
    pub stage: Stage,
    pub surge_count: u32,
    pub unavailable: u32,
    pub surge: Vec<String>,
    pub batch: Vec<String>,
    pub quarantined: Vec<String>,
    pub deadline: SimTime,
    pub blocked_by: Option<String>,
    /// A rollback: at the end it clears the pool's history instead of adding to it.
    pub rollback: bool,
}

/// Where a pool phase moves the pool's nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolGoal {
    /// A Kubernetes version, on the region's latest node image (a version upgrade takes
    /// the latest image: `upgrade-node-pools.md`).
    Version(KubeVersion),
    /// The region's latest node image, on the pool's version.
    LatestImage,
    /// A (version, image) pair the pool ran before.
    Rollback { version: KubeVersion, image: String },
}

impl PoolGoal {
    /// The fault kind that matches it: a rollback replaces nodes as a version upgrade
    /// does, so `operation: pool` faults hit it.
    fn kind(&self) -> OpKind {
        match self {
            PoolGoal::LatestImage => OpKind::NodeImage,
            _ => OpKind::Pool,
        }
    }

    /// The pool's provisioningState while it runs. UNVERIFIED for a rollback: the
    /// article names no state; `Upgrading` is guessed from "like an upgrade".
    fn state(&self) -> &'static str {
        match self {
            PoolGoal::LatestImage => "UpgradingNodeImageVersion",
            _ => "Upgrading",
        }
    }

    /// The (version, image) the nodes end on.
    fn target(&self, w: &World, c: usize, p: &super::world::Pool) -> (KubeVersion, String) {
        let latest = || {
            w.latest_image(&w.clusters[c].location, &p.os_sku)
                .unwrap_or(p.node_image.clone())
        };
        match self {
            PoolGoal::Version(v) => (*v, latest()),
            PoolGoal::LatestImage => (p.current_version, latest()),
            PoolGoal::Rollback { version, image } => (*version, image.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    WaitSurgeReady,
    Draining,
    Soaking,
    Reimaging,
    DrainingSurge,
    DeletingSurge,
}

/// Why an operation could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy(pub String);

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
pub fn busy_message(w: &World, c: usize) -> String {
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
pub fn wake_cluster(w: &mut World, c: usize) {
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
fn tick_after(w: &mut World, id: &str, d: std::time::Duration) {
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

fn next_phase(w: &mut World, id: &str) {
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

fn injected_failure(w: &World, c: usize, kind: OpKind, pool: Option<&str>) -> Option<(String, String)> {
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

fn fail_later(w: &mut World, id: &str, d: std::time::Duration, err: (String, String)) {
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
fn finish(w: &mut World, id: &str, mut status: OpStatus, error: Option<(String, String)>) {
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

// ---------------------------------------------------------------- pool upgrades

fn node_on_target(n: &super::kube_model::Node, job: &PoolJob) -> bool {
    n.version == job.version && n.image == job.image
}

fn pool_step(w: &mut World, id: &str, c: usize, pool: &str, goal: PoolGoal, started: bool) {
    if !started {
        let Some(p) = w.clusters[c].pool(pool).cloned() else {
            finish(
                w,
                id,
                OpStatus::Failed,
                Some(("AgentPoolNotFound".into(), format!("Agent pool {pool} not found"))),
            );
            return;
        };
        if let Some(err) = injected_failure(w, c, goal.kind(), Some(pool)) {
            let d = w.fleet.durations.node_provision;
            fail_later(w, id, d, err);
            return;
        }
        let Some(pi) = w.clusters[c].pools.iter().position(|q| q.name == p.name) else {
            return;
        };
        w.clusters[c].pools[pi].provisioning_state = goal.state();
        let (version, image) = goal.target(w, c, &p);
        let pct = |s: &str| match parse_count_or_percent(s) {
            Some((v, true)) => (p.count * v).div_ceil(100),
            Some((v, false)) => v,
            None => 0,
        };
        let mut surge_count = pct(&p.upgrade.max_surge);
        let unavailable = pct(&p.upgrade.max_unavailable);
        if surge_count == 0 && unavailable == 0 {
            surge_count = 1;
        }
        // Surge nodes are new VMs: they need vCPU quota and subnet addresses now.
        if let Err(e) = super::quota::check_new_vms(w, c, &p.vm_size, surge_count)
            .map_err(|e| super::rules::Refusal {
                message: format!("Create or update VMSS {} failed. {}", vmss_id(w, c, &p), e.message),
                ..e
            })
            .and_then(|()| super::network::check_new_nodes(w, c, &p.name, surge_count))
        {
            finish(w, id, OpStatus::Failed, Some((e.code.to_string(), e.message)));
            return;
        }
        let mut job = PoolJob {
            pool: p.name.clone(),
            version,
            image,
            stage: Stage::WaitSurgeReady,
            surge_count,
            unavailable,
            surge: Vec::new(),
            batch: Vec::new(),
            quarantined: Vec::new(),
            deadline: w.now.plus(w.fleet.durations.node_ready_timeout),
            blocked_by: None,
            rollback: matches!(goal, PoolGoal::Rollback { .. }),
        };
        let seed = w.cluster_seed(c);
        let gen_base = w.rng.next_u64() >> 16;
        for _ in 0..surge_count {
            let img = job.image.clone();
            let mut node = with_cluster(w, c, |w, cl| w.new_node(cl, pi, &seed, job.version, img, false));
            node.generation = gen_base;
            let name = node.name.clone();
            w.clusters[c].kube.put_node(node, ChangeType::Added);
            let d = w.fleet.durations.node_provision;
            w.after(
                d,
                Event::NodeReady {
                    c,
                    node: name.clone(),
                    generation: gen_base,
                },
            );
            job.surge.push(name);
        }
        set_job(w, id, job);
        let d = w.fleet.durations.node_provision;
        tick_after(w, id, d);
        return;
    }
    let Some(mut job) = w.ops.get(id).and_then(|o| o.job.clone()) else {
        return;
    };
    let poll = w.fleet.durations.eviction_retry;
    match job.stage {
        Stage::WaitSurgeReady => {
            if job.surge.iter().all(|n| node_ready(w, c, n)) {
                next_batch(w, id, c, job);
            } else if w.now >= job.deadline {
                let names: Vec<_> = job.surge.iter().filter(|n| !node_ready(w, c, n)).cloned().collect();
                fail_pool(
                    w,
                    id,
                    c,
                    &job,
                    "NodesNotReady",
                    format!("Nodes did not become Ready in time: {}", names.join(", ")),
                );
            } else {
                set_job(w, id, job);
                tick_after(w, id, poll.max(std::time::Duration::from_secs(30)));
            }
        }
        Stage::Draining | Stage::DrainingSurge => {
            let left = drain(w, c, &job.batch);
            if left.is_empty() {
                if job.stage == Stage::Draining {
                    job.stage = Stage::Soaking;
                    let soak = std::time::Duration::from_secs(60 * u64::from(pool_soak(w, c, &job.pool)));
                    set_job(w, id, job);
                    tick_after(w, id, soak);
                } else {
                    for n in job.surge.clone() {
                        w.remove_node(c, &n);
                    }
                    job.stage = Stage::DeletingSurge;
                    set_job(w, id, job);
                    let d = w.fleet.durations.node_delete;
                    tick_after(w, id, d);
                }
            } else if w.now >= job.deadline {
                undrainable(w, id, c, job, left);
            } else {
                job.blocked_by = Some(left[0].1.clone());
                set_job(w, id, job);
                tick_after(w, id, poll);
            }
        }
        Stage::Soaking => {
            let g = w.rng.next_u64() >> 16;
            for n in &job.batch {
                let (v, img) = (job.version, job.image.clone());
                w.clusters[c].kube.update_node(n, |node| {
                    node.ready = false;
                    node.version = v;
                    node.image = img;
                    node.generation = g;
                });
                let d = w.fleet.durations.node_reimage;
                w.after(
                    d,
                    Event::NodeReady {
                        c,
                        node: n.clone(),
                        generation: g,
                    },
                );
            }
            job.stage = Stage::Reimaging;
            job.deadline = w
                .now
                .plus(w.fleet.durations.node_reimage + w.fleet.durations.node_ready_timeout);
            set_job(w, id, job);
            let d = w.fleet.durations.node_reimage;
            tick_after(w, id, d);
        }
        Stage::Reimaging => {
            if job.batch.iter().all(|n| node_ready(w, c, n)) {
                for n in &job.batch {
                    w.clusters[c].kube.update_node(n, |node| node.unschedulable = false);
                }
                w.kick_unscheduled(c);
                next_batch(w, id, c, job);
            } else if w.now >= job.deadline {
                let names: Vec<_> = job.batch.iter().filter(|n| !node_ready(w, c, n)).cloned().collect();
                fail_pool(
                    w,
                    id,
                    c,
                    &job,
                    "NodesNotReady",
                    format!("Nodes did not become Ready after reimage: {}", names.join(", ")),
                );
            } else {
                set_job(w, id, job);
                tick_after(w, id, std::time::Duration::from_secs(30));
            }
        }
        Stage::DeletingSurge => {
            let now = w.now;
            if let Some(p) = w.clusters[c].pool_mut(&job.pool) {
                let left = (
                    p.current_version,
                    std::mem::replace(&mut p.node_image, job.image.clone()),
                );
                p.current_version = job.version;
                update_history(p, left, &job, now);
            }
            if job.quarantined.is_empty() {
                next_phase(w, id);
            } else {
                let msg = format!(
                    "Upgrade completed with quarantined nodes (undrainable, cordoned): {}",
                    job.quarantined.join(", ")
                );
                finish(w, id, OpStatus::Failed, Some(("UpgradeFailed".into(), msg)));
            }
        }
    }
}

/// A pool's rollback history once its nodes reached `job`'s target, having left the
/// pair `left`: a rollback clears it (no consecutive rollbacks; also when it ended with
/// quarantined nodes, since the pool moved anyway), a clean upgrade remembers `left`, an
/// upgrade that quarantined nodes (it fails) records nothing.
fn update_history(p: &mut super::world::Pool, left: (KubeVersion, String), job: &PoolJob, now: SimTime) {
    if job.rollback {
        p.recent.clear();
    } else if job.quarantined.is_empty() && (left.0, left.1.as_str()) != (job.version, job.image.as_str()) {
        p.remember(left.0, left.1, now);
    }
}

/// The id of a pool's scale set in the node resource group (`MC_...`).
fn vmss_id(w: &World, c: usize, p: &super::world::Pool) -> String {
    let cl = &w.clusters[c];
    format!(
        "/subscriptions/{}/resourceGroups/MC_{}_{}_{}/providers/Microsoft.Compute/virtualMachineScaleSets/aks-{}-{}-vmss",
        cl.subscription, cl.resource_group, cl.name, cl.location, p.name, p.vmss
    )
}

fn pool_soak(w: &World, c: usize, pool: &str) -> u32 {
    w.clusters[c].pool(pool).map_or(0, |p| p.upgrade.node_soak_minutes)
}

fn node_ready(w: &World, c: usize, n: &str) -> bool {
    w.clusters[c].kube.nodes.get(n).is_some_and(|n| n.ready)
}

fn set_job(w: &mut World, id: &str, job: PoolJob) {
    if let Some(op) = w.ops.get_mut(id) {
        op.job = Some(job);
    }
}

/// Picks and cordons the next batch of old nodes, or moves to the surge nodes' drain.
fn next_batch(w: &mut World, id: &str, c: usize, mut job: PoolJob) {
    let old: Vec<String> = w.clusters[c]
        .kube
        .nodes
        .values()
        .filter(|n| n.pool == job.pool && !job.surge.contains(&n.name) && !job.quarantined.contains(&n.name))
        .filter(|n| !node_on_target(n, &job))
        .map(|n| n.name.clone())
        .collect();
    let size = (job.surge_count + job.unavailable).max(1) as usize;
    let (batch, stage) = if old.is_empty() {
        (job.surge.clone(), Stage::DrainingSurge)
    } else {
        (old.into_iter().take(size).collect(), Stage::Draining)
    };
    for n in &batch {
        w.clusters[c].kube.update_node(n, |node| node.unschedulable = true);
        // AKS's event as a drain starts (`error-code-poddrainfailure.md`: "Normal Drain
        // node/aks-... Draining node: aks-...").
        let msg = format!("Draining node: {n}");
        w.kube_event(c, "default", "Node", n, "Drain", &msg, "Normal");
    }
    let drain_timeout = w.clusters[c]
        .pool(&job.pool)
        .map_or(30, |p| p.upgrade.drain_timeout_minutes);
    job.deadline = w
        .now
        .plus(std::time::Duration::from_secs(60 * u64::from(drain_timeout)));
    job.batch = batch;
    job.stage = stage;
    set_job(w, id, job);
    tick_after(w, id, std::time::Duration::ZERO);
}

/// Tries to evict every pod on `nodes`; returns the pods still there with the PDB that
/// blocks each (`(namespace/pod, namespace/pdb)`).
fn drain(w: &mut World, c: usize, nodes: &[String]) -> Vec<(String, String)> {
    let keys: Vec<(String, String)> = w.clusters[c]
        .kube
        .pods
        .iter()
        .filter(|(_, p)| p.node.as_ref().is_some_and(|n| nodes.contains(n)))
        .map(|(k, _)| k.clone())
        .collect();
    let mut left = Vec::new();
    for k in keys {
        if let Err(e) = w.evict(c, &k) {
            let why = match e {
                super::world::EvictError::Pdb(pdb) => pdb,
                super::world::EvictError::NotFound => continue,
            };
            left.push((format!("{}/{}", k.0, k.1), why));
        }
    }
    left
}

fn undrainable(w: &mut World, id: &str, c: usize, mut job: PoolJob, left: Vec<(String, String)>) {
    let blocked_nodes: Vec<String> = {
        let kube = &w.clusters[c].kube;
        let mut v: Vec<String> = left
            .iter()
            .filter_map(|(pod, _)| {
                let (ns, name) = pod.split_once('/')?;
                kube.pods
                    .get(&(ns.to_string(), name.to_string()))
                    .and_then(|p| p.node.clone())
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let behavior = w.clusters[c]
        .pool(&job.pool)
        .map_or(Undrainable::Schedule, |p| p.upgrade.undrainable);
    // AKS's events on each blocked node, then its error for the first blocked pod.
    for (pod, _) in &left {
        let node = pod
            .split_once('/')
            .and_then(|(ns, name)| w.clusters[c].kube.pods.get(&(ns.to_string(), name.to_string())))
            .and_then(|p| p.node.clone());
        if let Some(node) = node {
            let pod_name = pod.split_once('/').map_or(pod.as_str(), |(_, n)| n);
            let msg = super::rules::drain_event(pod_name);
            w.kube_event(c, "default", "Node", &node, "Drain", &msg, "Warning");
        }
    }
    let (pod, pdb) = &left[0];
    let (ns, pod_name) = pod.split_once('/').unwrap_or(("default", pod.as_str()));
    let pdb_name = pdb.split_once('/').map_or(pdb.as_str(), |(_, n)| n);
    let node = w.clusters[c]
        .kube
        .pods
        .get(&(ns.to_string(), pod_name.to_string()))
        .and_then(|p| p.node.clone())
        .unwrap_or_default();
    let unready = {
        let kube = &w.clusters[c].kube;
        kube.workloads
            .iter()
            .position(|wl| wl.namespace == ns && wl.name == pdb_name)
            .map_or(0, |wi| {
                let (ready, total) = kube.workload_counts(wi);
                total - ready
            })
    };
    let msg = super::rules::drain_failure(&node, ns, pod_name, pdb_name, unready).message;
    if behavior == Undrainable::Cordon && job.stage == Stage::Draining {
        for n in &blocked_nodes {
            w.clusters[c].kube.update_node(n, |node| {
                node.extra_labels
                    .insert("kubernetes.azure.com/upgrade-status".into(), "Quarantined".into());
            });
        }
        job.quarantined.extend(blocked_nodes.iter().cloned());
        job.batch.retain(|n| !blocked_nodes.contains(n));
        job.stage = Stage::Soaking;
        set_job(w, id, job);
        tick_after(w, id, std::time::Duration::ZERO);
        return;
    }
    fail_pool(w, id, c, &job, "UpgradeFailed", msg);
}

/// Fails a pool upgrade: nodes cordoned by the drain are uncordoned (behaviour
/// `Schedule`), surge nodes are removed, the operation ends Failed.
fn fail_pool(w: &mut World, id: &str, c: usize, job: &PoolJob, code: &str, msg: String) {
    for n in job.batch.iter().filter(|n| !job.surge.contains(n)) {
        w.clusters[c].kube.update_node(n, |node| node.unschedulable = false);
    }
    for n in &job.surge {
        w.remove_node(c, n);
    }
    w.kick_unscheduled(c);
    let name = job.pool.clone();
    w.kube_event(c, "default", "Node", &name, "UpgradeFailed", &msg, "Warning");
    finish(w, id, OpStatus::Failed, Some((code.to_string(), msg)));
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
