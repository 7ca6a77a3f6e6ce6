//! Whole rollouts, end to end: the simulator, the runtime (engine, executor, gates on
//! kube watches) and a SQLite state file in a temp dir. Issues 5 and 16:
//!
//! - for the demo fleet (`examples/fleets/demo.yaml` without its fault, with
//!   `policies/demo.yaml`) and a 500-cluster fleet (`examples/fleets/large.yaml` with
//!   `count: 500` and the demo fleet's durations, with a policy written below), in
//!   process: the rollout's makespan divided by its critical path (goal at most 1.02),
//!   and the gate reaction time (goal: the next step's ARM call within 1 s of simulated
//!   time);
//! - a whole 5,000-cluster rollout (`count: 5000`: 250 dev, 750 staging, 4,000 prod
//!   clusters in 5 subscriptions; waves of 50, 100 and 100; approval given the moment
//!   it is asked) with the daemon and the simulator in separate processes: the same
//!   figures, plus the daemon's peak memory (goal under 256 MiB), the state file's size
//!   and growth (goal under 100 MiB), reading it back as a restart does (goal under 2 s)
//!   and ARM calls against the per-subscription token bucket;
//! - for every run, what the runtime's loop cost per pass, from its own metrics (goal
//!   under 2 ms at 5,000 clusters, flat from 500).
//!
//! ```text
//! cargo bench --bench rollout                       # about 30 minutes on 2 cores
//! BENCH_ONLY=demo,500,5k                            # pick runs (also: latency, a diagnostic)
//! BENCH_DEMO_SCALES=300,1000 BENCH_500_SCALES=25,100   # simulated seconds per wall-clock second
//! BENCH_5K_SCALE=100 BENCH_5K_SECONDS=3600 BENCH_5K_DEV=50 BENCH_5K_STAGING=100 BENCH_5K_PROD=100
//! BENCH_NO_STORE=1     # diagnostic: the in-process runtime without a state file
//! BENCH_DEBUG=1        # every step's times on stderr
//! ```
//!
//! Everything is measured in simulated time (the engine's clock, which runs in step
//! with the simulator's). Simulated time runs `scale` times faster than the wall clock,
//! so every wall-clock latency (an HTTP round trip, an fsync, a timer tick, a queue of
//! inputs waiting for the runtime's loop) weighs `scale` times more in simulated time
//! than it would in production: each run prints its overhead in wall-clock seconds,
//! the CPU it used (2 = both cores busy), and each fleet runs at two scales to show it
//! (the 500-cluster fleet at 25x, whose figure is the one to read against the goal, and
//! at 100x: at 100x one millisecond of wall-clock latency is 0.1 s of simulated time).
//! The 5,000-cluster rollout runs at 100x so that its 20-odd simulated hours fit in a
//! quarter of an hour; the simulator then simulates up to 100 clusters' surges at once
//! on the same two cores as the daemon.
//!
//! **Following operations.** The simulator writes `Retry-After` in wall-clock time
//! (its poll interval divided by the scale) and the daemon waits it on the wall clock,
//! so the daemon polls every simulated 10 s, as ARM asks.
//!
//! **Critical path.** From what the run recorded: the simulator's own record of every
//! operation (when AKS accepted it, when it ended; `/_sim/operations` for the separate
//! process) and, at each gate pass, when the cluster's selected pods last became Ready
//! (`/_sim/pods-ready`). Per step: the operation as AKS took it,
//! plus any time the workload needed after the operation to be Ready again, plus the
//! policy's settle time, plus the pool soak after pool steps; a cluster's steps in
//! sequence, never before the step's earliest start (maintenance windows); a wave is
//! its slowest cluster; waves in sequence; then the ring's soak; before a ring that
//! needs one, the wait for the approval (a person: unavoidable, shown apart; here it
//! is sent the moment the notifier asks). Everything else is the engine's: discovery
//! and planning, taking baselines, ARM calls, following operations, watch latency,
//! timers. The ratio is makespan / critical path.
//!
//! **Gate reaction.** For each gate pass followed by another step of the same cluster:
//! the simulated time from the moment the gate's condition had held for the settle
//! time (plus the pool soak, when one follows) to the next step's `step.started`
//! audit entry (its intent, right before the ARM call), and to the moment AKS received
//! that call. "Engine view" starts from when the engine first saw the cluster healthy;
//! "end to end" from when it really was (operation ended and pods Ready, from the
//! simulator), so it also counts following the operation and watch latency.
//!
//! **Memory.** The 5,000-cluster run uses two child processes, so that no figure mixes
//! the simulator's memory with the daemon's: `ringmaster sim` (the release binary
//! Cargo builds for benchmarks) and this benchmark's own executable in a daemon role,
//! which discovers, plans and runs the rollout against it with a state file. Its
//! `VmHWM` (peak resident set) is the daemon's peak memory; the simulator's is shown
//! apart. The daemon role also asks the simulator for pods' Ready times at each gate
//! pass (a GET off the loop, about one a second), the only work in it that a real
//! daemon does not do.

use ringmaster::arm;
use ringmaster::clock::Clock;
use ringmaster::demo::Rehearsal;
use ringmaster::domain::fleet::ClusterId;
use ringmaster::engine::{ClusterStatus, Input, NotifyEvent, Rollout, RolloutStatus, StepStatus};
use ringmaster::identity::{AzureConfig, AzureTokens};
use ringmaster::plan::StepKind;
use ringmaster::runtime::{Notifier, Runtime};
use ringmaster::sim::operation::{OpStatus, Target};
use ringmaster::sim::{ReadyInfo, Simulator, fleet};
use ringmaster::store::{AuditEntry, Store};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

type Time = chrono::DateTime<chrono::Utc>;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

#[path = "common/generated.rs"]
mod generated;
use generated::{generated_fleet_text, generated_policy};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn env_list(name: &str, default: &str) -> Vec<f64> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

// ------------------------------------------------------------------ process figures

/// A `/proc/<pid>/status` field in MiB (`VmRSS:`, `VmHWM:`).
fn status_mib(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// CPU seconds (user + system) this process used so far (clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line; 12 and 13 after the ')'.
    (tick(11) + tick(12)) / 100.0
}

fn secs(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn hms(s: f64) -> String {
    let t = s.round() as i64;
    format!("{}h{:02}m{:02}s", t / 3600, (t % 3600) / 60, t % 60)
}

// ------------------------------------------------------------------ in-process runs

struct ChannelNotifier(mpsc::UnboundedSender<(NotifyEvent, Option<String>)>);

impl Notifier for ChannelNotifier {
    fn notify(&self, event: NotifyEvent, ring: Option<&str>, _cluster: Option<&ClusterId>, _message: &str) {
        let _ = self.0.send((event, ring.map(str::to_string)));
    }
}

/// One operation as the simulator recorded it.
struct SimOp {
    cluster: String,
    target: Target,
    start: Time,
    end: Option<Time>,
    ok: bool,
}

/// Parses `ring/cluster step N: ...` (the engine's step subjects) into (cluster, N-1).
fn step_of(subject: &str) -> Option<(String, usize)> {
    let (_, rest) = subject.split_once('/')?;
    let (cluster, rest) = rest.split_once(" step ")?;
    let n: usize = rest.split(':').next()?.trim().parse().ok()?;
    Some((cluster.to_string(), n.checked_sub(1)?))
}

fn target_of(kind: &StepKind) -> Target {
    match kind.pool() {
        None => Target::Cluster,
        Some(pool) => Target::Pool(pool.to_string()),
    }
}

/// Everything one run recorded.
struct Recording {
    rollout: Rollout,
    created: Time,
    audit: Vec<AuditEntry>,
    ops: Vec<SimOp>,
    /// (cluster, step) -> when the engine first saw the gate healthy (the last time
    /// health began before the pass).
    passing_since: HashMap<(String, usize), Time>,
    /// (cluster, step) -> when the cluster's selected pods last became Ready, read from
    /// the simulator when the gate passed.
    pods_ready: HashMap<(String, usize), Time>,
    settle: Duration,
    pool_soak: Duration,
    ring_soaks: Vec<Duration>,
    state_bytes: u64,
    wall: Duration,
    cpu: f64,
    scale: f64,
    /// ARM calls, and the reads among them (most are operation polls).
    arm_calls: u64,
    arm_reads: u64,
    /// The Retry-After interval the daemon waited between polls (simulated).
    poll: Duration,
    cost: LoopCost,
}

/// Latest `ready_since` of the Ready pods in the gate's namespaces of cluster `name`.
fn last_pod_ready(sim: &Simulator, gates: &ringmaster::policy::Gates, name: &str) -> Option<Time> {
    sim.with_world(|w| {
        let c = w.clusters.iter().find(|c| c.name == name)?;
        let now = w.now;
        c.kube
            .pods
            .values()
            .filter(|p| p.ready && ringmaster::gate::selects_namespace(gates, &p.namespace))
            .filter_map(|p| p.ready_since)
            .filter(|t| *t <= now)
            .max()
            .map(|t| t.to_datetime())
    })
}

async fn record_run(fleet: fleet::Fleet, policy_path: &Path, scale: f64, limit: Duration) -> Recording {
    let poll = fleet.durations.poll_interval;
    let dir = tempfile::tempdir().expect("temp dir");
    // The daemon's clock runs in step with the simulator's (as in `ringmaster demo`).
    let Rehearsal {
        sim,
        clock,
        client,
        tokens,
    } = Rehearsal::start(fleet, scale, Some(dir.path().join("sim")))
        .await
        .expect("simulator");
    let policy_text = std::fs::read_to_string(policy_path).expect("policy");
    let policy =
        ringmaster::policy::compile(&policy_path.display().to_string(), &policy_text).expect("policy compiles");
    let settings = ringmaster::engine::Settings::from_policy(&policy);

    let wall0 = Instant::now();
    let cpu0 = cpu_seconds();
    let created = clock.now();
    let (rollout, _) = ringmaster::service::run::new_rollout(&client, policy_path, &sim.info.subscription_ids, created)
        .await
        .expect("discovery and plan");
    let ring_soaks = rollout
        .rings
        .iter()
        .map(|r| settings.ring(&r.name).map_or(Duration::ZERO, |s| s.soak))
        .collect();
    let store = Arc::new(Store::open(dir.path().join("ringmaster.db")).expect("state file"));
    let (ntx, mut nrx) = mpsc::unbounded_channel();
    let rt = Runtime::new(
        rollout,
        client.clone(),
        tokens,
        clock.clone(),
        // Diagnostic: without a state file (no JSON, no commit per transition).
        (std::env::var("BENCH_NO_STORE").is_err()).then(|| store.clone()),
        Arc::new(ChannelNotifier(ntx)),
    )
    .expect("runtime");
    let metrics = Arc::new(ringmaster::metrics::Metrics::default());
    let mut rt = rt.with_metrics(metrics.clone());
    let control = rt.control();
    let mut audit_rx = rt.audit_feed();
    let mut progress = rt.progress();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(rt.run(Input::Tick, async {
        let _ = stop_rx.await;
    }));

    let mut audit = Vec::new();
    let mut passing_since = HashMap::new();
    let mut pods_ready = HashMap::new();
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            Some(a) = audit_rx.recv() => {
                if a.action == "gate.passed" && let Some(key) = step_of(&a.subject)
                    && let Some(t) = last_pod_ready(&sim, &policy.gates, &key.0) {
                    pods_ready.insert(key, t);
                }
                audit.push(a);
            }
            Some((event, ring)) = nrx.recv() => {
                if event == NotifyEvent::ApprovalNeeded && let Some(ring) = ring {
                    control.send(Input::Approve {
                        ring,
                        by: "bench".into(),
                        comment: "approved by the benchmark as soon as asked".into(),
                        expires_at: None,
                    });
                }
            }
            changed = progress.changed() => {
                if changed.is_err() { break; }
                let r = progress.borrow_and_update();
                if r.status.is_terminal() { break; }
                // Only running clusters can be gating: a short scan, no clone.
                for (_, c) in r.clusters().filter(|(_, c)| c.status == ClusterStatus::Running) {
                    for (i, s) in c.steps.iter().enumerate() {
                        if let StepStatus::Gating { passing_since: Some(p), .. } = &s.status {
                            passing_since.insert((c.id.name.clone(), i), *p);
                        }
                    }
                }
            }
            _ = &mut deadline => {
                eprintln!("rollout did not end within {}s of wall-clock time", limit.as_secs());
                break;
            }
        }
    }
    let _ = stop_tx.send(());
    let rollout = runner.await.expect("runtime task").expect("runtime");
    while let Some(a) = audit_rx.recv().await {
        audit.push(a);
    }
    let wall = wall0.elapsed();
    let cpu = cpu_seconds() - cpu0;
    let ops = sim.with_world(|w| {
        w.ops
            .values()
            .map(|o| SimOp {
                cluster: w.clusters[o.cluster].name.clone(),
                target: o.target.clone(),
                start: o.start.to_datetime(),
                end: o.end.map(|e| e.to_datetime()),
                ok: o.status == OpStatus::Succeeded,
            })
            .collect()
    });
    store.checkpoint().expect("checkpoint");
    let state_bytes = store.file_size().unwrap_or(0);
    let cost = LoopCost::of(&metrics);
    let stats = &client.http().stats;
    let arm_calls = stats.calls.load(std::sync::atomic::Ordering::Relaxed);
    let arm_reads = stats.reads.load(std::sync::atomic::Ordering::Relaxed);
    sim.shutdown().await;
    Recording {
        rollout,
        created,
        audit,
        ops,
        passing_since,
        pods_ready,
        settle: policy.gates.pod_readiness.settle,
        pool_soak: policy.steps.pool_soak,
        ring_soaks,
        state_bytes,
        wall,
        cpu,
        scale,
        arm_calls,
        arm_reads,
        poll,
        cost,
    }
}

/// What the runtime's loop cost during the run, from its own metrics
/// (`ringmaster_loop_*`, `ringmaster_state_*`): every pass takes a batch of inputs,
/// advances the engine, saves what changed and publishes the state (wall-clock time).
#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct LoopCost {
    passes: f64,
    inputs: f64,
    total_s: f64,
    max_s: f64,
    saves: f64,
    written_bytes: f64,
    /// Of `total_s`, waiting for commits (the WAL's fsync, whatever the fleet's size).
    commit_s: f64,
    /// Of `total_s`, the engine's transitions.
    engine_s: f64,
}

impl LoopCost {
    fn of(m: &ringmaster::metrics::Metrics) -> LoopCost {
        let g = |n: &str| m.get(n, &[]);
        LoopCost {
            passes: g("ringmaster_loop_seconds_count"),
            inputs: g("ringmaster_loop_inputs_total"),
            total_s: g("ringmaster_loop_seconds_sum"),
            max_s: g("ringmaster_loop_seconds_max"),
            saves: g("ringmaster_state_saves_total"),
            written_bytes: g("ringmaster_state_written_bytes_total"),
            commit_s: g("ringmaster_state_commit_seconds_sum"),
            engine_s: g("ringmaster_loop_engine_seconds_sum"),
        }
    }
    fn per_pass_ms(&self) -> f64 {
        self.total_s * 1000.0 / self.passes.max(1.0)
    }
    fn per_input_ms(&self) -> f64 {
        self.total_s * 1000.0 / self.inputs.max(1.0)
    }
    fn bytes_per_save(&self) -> f64 {
        self.written_bytes / self.saves.max(1.0)
    }
    /// Per pass, without the wait for the commit: what the fleet's size can change.
    fn cpu_per_pass_ms(&self) -> f64 {
        (self.total_s - self.commit_s) * 1000.0 / self.passes.max(1.0)
    }
    fn commit_per_save_ms(&self) -> f64 {
        self.commit_s * 1000.0 / self.saves.max(1.0)
    }
    fn show(&self) -> String {
        format!(
            "{:.0} passes of the loop for {:.0} inputs: {:.2} ms per pass = {:.2} without the commit (engine {:.2}, JSON, publishing, dispatch {:.2}) + commits (fsync) {:.2} ms per save; {:.2} ms per input; max {:.1} ms; {:.0} saves of {:.1} KiB on average ({:.1} MiB in all)",
            self.passes,
            self.inputs,
            self.per_pass_ms(),
            self.cpu_per_pass_ms(),
            self.engine_s * 1000.0 / self.passes.max(1.0),
            self.cpu_per_pass_ms() - self.engine_s * 1000.0 / self.passes.max(1.0),
            self.commit_per_save_ms(),
            self.per_input_ms(),
            self.max_s * 1000.0,
            self.saves,
            self.bytes_per_save() / 1024.0,
            self.written_bytes / 1048576.0
        )
    }
}

// ------------------------------------------------------------------ analysis

/// One step's times, as the engine, the simulator and the policy saw them.
#[derive(Debug, Clone, Default)]
struct StepTimes {
    earliest: Option<Time>,
    started: Option<Time>,
    op_start: Option<Time>,
    op_end: Option<Time>,
    op_done_seen: Option<Time>,
    healthy_seen: Option<Time>,
    pods_ready: Option<Time>,
    passed: Option<Time>,
    finished: Option<Time>,
    soak: Duration,
}

impl StepTimes {
    /// When the policy let the step's gate start counting: the operation ended (as AKS
    /// saw it) and the pods were Ready.
    fn condition(&self) -> Option<Time> {
        let end = self.op_end.or(self.op_done_seen)?;
        Some(self.pods_ready.map_or(end, |p| p.max(end)))
    }

    /// The unavoidable part of the step: the operation as AKS took it, the workload's
    /// time to be Ready after it, the settle time, the pool soak.
    fn unavoidable(&self, settle: Duration) -> f64 {
        let op = match (self.op_start, self.condition()) {
            (Some(s), Some(c)) => secs(c - s).max(0.0),
            _ => 0.0,
        };
        op + settle.as_secs_f64() + self.soak.as_secs_f64()
    }
}

#[derive(Default)]
struct Stats(Vec<f64>);

impl Stats {
    fn push(&mut self, v: Option<f64>) {
        if let Some(v) = v {
            self.0.push(v);
        }
    }
    fn mean(&self) -> f64 {
        if self.0.is_empty() {
            f64::NAN
        } else {
            self.0.iter().sum::<f64>() / self.0.len() as f64
        }
    }
    fn max(&self) -> f64 {
        self.0.iter().copied().fold(f64::NAN, f64::max)
    }
    fn p(&self, q: f64) -> f64 {
        let mut v = self.0.clone();
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * q).round() as usize]
    }
    fn n(&self) -> usize {
        self.0.len()
    }
    fn show(&self) -> String {
        format!("{:.2}/{:.2}/{:.2}", self.mean(), self.p(0.95), self.max())
    }
}

struct Analysis {
    label: String,
    clusters: usize,
    steps: usize,
    outcome: String,
    scale: f64,
    makespan: f64,
    critical: f64,
    approval_wait: f64,
    window_wait: f64,
    prestart: f64,
    reaction_engine: Stats,
    reaction_e2e: Stats,
    reaction_call: Stats,
    lag_call: Stats,
    lag_follow: Stats,
    lag_watch: Stats,
    lag_pass: Stats,
    lag_soak: Stats,
    lag_baseline: Stats,
    lag_wave: Stats,
    passing_missed: usize,
    state_bytes: u64,
    wall: f64,
    cpu: f64,
    arm_calls: u64,
    arm_reads: u64,
    poll: Duration,
    transitions: u64,
    cost: LoopCost,
}

fn analyse(label: &str, rec: &Recording) -> Analysis {
    let r = &rec.rollout;
    let at_of = |action: &str, subject: &str| {
        rec.audit
            .iter()
            .find(|a| a.action == action && a.subject == subject)
            .map(|a| a.at)
    };
    // Step-level audit times by (cluster, step).
    let mut audit_step: HashMap<(&str, (String, usize)), Time> = HashMap::new();
    for a in &rec.audit {
        if let Some(k) = step_of(&a.subject) {
            audit_step.entry((a.action.as_str(), k)).or_insert(a.at);
        }
    }
    // Operations per (cluster, target), in the order AKS received them.
    let mut ops: HashMap<(String, String), Vec<&SimOp>> = HashMap::new();
    for o in &rec.ops {
        ops.entry((o.cluster.clone(), format!("{:?}", o.target)))
            .or_default()
            .push(o);
    }
    for v in ops.values_mut() {
        v.sort_by_key(|o| o.start);
    }
    let mut a = Analysis {
        label: label.to_string(),
        clusters: 0,
        steps: 0,
        outcome: r.status.label().to_string(),
        scale: rec.scale,
        makespan: 0.0,
        critical: 0.0,
        approval_wait: 0.0,
        window_wait: 0.0,
        prestart: 0.0,
        reaction_engine: Stats::default(),
        reaction_e2e: Stats::default(),
        reaction_call: Stats::default(),
        lag_call: Stats::default(),
        lag_follow: Stats::default(),
        lag_watch: Stats::default(),
        lag_pass: Stats::default(),
        lag_soak: Stats::default(),
        lag_baseline: Stats::default(),
        lag_wave: Stats::default(),
        passing_missed: 0,
        state_bytes: rec.state_bytes,
        wall: rec.wall.as_secs_f64(),
        cpu: rec.cpu,
        arm_calls: rec.arm_calls,
        arm_reads: rec.arm_reads,
        poll: rec.poll,
        transitions: r.seq,
        cost: rec.cost,
    };
    if r.status != RolloutStatus::Succeeded {
        a.outcome = format!("{} (NOT a clean run)", r.status.label());
    }
    let end = rec
        .audit
        .iter()
        .find(|x| x.action == "rollout.succeeded")
        .map_or(r.updated_at, |x| x.at);
    a.makespan = secs(end - rec.created);
    if let Some(first) = rec.audit.iter().find(|x| x.action == "ring.started") {
        a.prestart = secs(first.at - rec.created);
    }

    let settle = rec.settle;
    // The ideal schedule, with and without maintenance windows.
    let mut t = rec.created;
    let mut t_free = rec.created;
    let mut prev_wave_end: Option<Time> = None;
    for (ri, ring) in r.rings.iter().enumerate() {
        if let (Some(asked), Some(ok)) = (
            at_of("ring.awaiting_approval", &ring.name),
            at_of("ring.approved", &ring.name),
        ) {
            let w = secs(ok - asked).max(0.0);
            a.approval_wait += w;
            t += chrono::Duration::milliseconds((w * 1000.0) as i64);
            t_free += chrono::Duration::milliseconds((w * 1000.0) as i64);
        }
        for wave in &ring.waves {
            let mut wave_end = t;
            let mut wave_end_free = t_free;
            let mut first_start: Option<Time> = None;
            let mut last_finish: Option<Time> = None;
            for c in &wave.clusters {
                a.clusters += 1;
                let mut per_target: HashMap<String, usize> = HashMap::new();
                let times: Vec<StepTimes> = c
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let key = (c.id.name.clone(), i);
                        let tk = format!("{:?}", target_of(&s.kind));
                        let k = per_target.entry(tk.clone()).or_insert(0);
                        let op = ops.get(&(c.id.name.clone(), tk)).and_then(|v| v.get(*k)).copied();
                        *k += 1;
                        let pool_step = !matches!(s.kind, StepKind::ControlPlane { .. });
                        StepTimes {
                            earliest: Some(s.earliest_start),
                            started: s.started_at,
                            op_start: op.map(|o| o.start),
                            op_end: op.filter(|o| o.ok).and_then(|o| o.end),
                            op_done_seen: audit_step.get(&("step.operation_done", key.clone())).copied(),
                            healthy_seen: rec.passing_since.get(&key).copied(),
                            pods_ready: rec.pods_ready.get(&key).copied(),
                            passed: audit_step.get(&("gate.passed", key.clone())).copied(),
                            finished: s.finished_at,
                            soak: if pool_step { rec.pool_soak } else { Duration::ZERO },
                        }
                    })
                    .collect();
                a.steps += times.len();
                if std::env::var("BENCH_DEBUG").is_ok() {
                    for (i, st) in times.iter().enumerate() {
                        let d = |x: Option<Time>, y: Option<Time>| x.zip(y).map(|(x, y)| secs(x - y));
                        eprintln!(
                            "{} step {} {:?}: earliest {:?} started {:?} call {:?} op {:?} follow {:?} healthy {:?} pods {:?} pass {:?} fin {:?}",
                            c.id.name,
                            i + 1,
                            target_of(&c.steps[i].kind),
                            st.earliest.map(|e| e.format("%H:%M:%S").to_string()),
                            st.started.map(|e| e.format("%H:%M:%S%.3f").to_string()),
                            d(st.op_start, st.started),
                            d(st.op_end, st.op_start),
                            d(st.op_done_seen, st.op_end),
                            d(st.healthy_seen, st.op_done_seen),
                            d(st.pods_ready, st.op_end),
                            d(st.passed, st.healthy_seen),
                            d(st.finished, st.passed),
                        );
                    }
                }
                // The cluster's ideal chain.
                let mut s_t = t;
                let mut s_free = t_free;
                for st in &times {
                    if let Some(e) = st.earliest {
                        s_t = s_t.max(e);
                    }
                    let u = chrono::Duration::milliseconds((st.unavoidable(settle) * 1000.0) as i64);
                    s_t += u;
                    s_free += u;
                }
                wave_end = wave_end.max(s_t);
                wave_end_free = wave_end_free.max(s_free);
                // Where the engine's time went.
                if let (Some(cs), Some(first)) = (c.started_at, times.first().and_then(|x| x.started)) {
                    a.lag_baseline.push(Some(secs(first - cs)));
                }
                first_start = match (first_start, c.started_at) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    (x, y) => x.or(y),
                };
                last_finish = match (last_finish, c.finished_at) {
                    (Some(x), Some(y)) => Some(x.max(y)),
                    (x, y) => x.or(y),
                };
                for (i, st) in times.iter().enumerate() {
                    let d = |x: Option<Time>, y: Option<Time>| x.zip(y).map(|(x, y)| secs(x - y));
                    a.lag_call.push(d(st.op_start, st.started));
                    a.lag_follow.push(d(st.op_done_seen, st.op_end));
                    let cond_seen = st.op_done_seen.map(|o| st.pods_ready.map_or(o, |p| p.max(o)));
                    a.lag_watch.push(d(st.healthy_seen, cond_seen).map(|x| x.max(0.0)));
                    let settle_c = chrono::Duration::milliseconds(settle.as_millis() as i64);
                    let soak_c = chrono::Duration::milliseconds(st.soak.as_millis() as i64);
                    a.lag_pass.push(d(st.passed, st.healthy_seen.map(|h| h + settle_c)));
                    if !st.soak.is_zero() {
                        a.lag_soak.push(d(st.finished, st.passed.map(|p| p + soak_c)));
                    }
                    if st.healthy_seen.is_none() && st.passed.is_some() {
                        a.passing_missed += 1;
                    }
                    let Some(next) = times.get(i + 1) else { continue };
                    // Gate reaction: the next step's intent (and AKS receiving its call)
                    // after the gate's condition held for the settle time (+ pool soak).
                    let ready_engine = st.healthy_seen.map(|h| h + settle_c + soak_c);
                    let ready_true = st.condition().map(|c| c + settle_c + soak_c);
                    // A later earliest start (a window) is not a reaction.
                    let ready_engine = ready_engine.map(|x| next.earliest.map_or(x, |e| x.max(e)));
                    let ready_true = ready_true.map(|x| next.earliest.map_or(x, |e| x.max(e)));
                    a.reaction_engine.push(d(next.started, ready_engine));
                    a.reaction_e2e.push(d(next.started, ready_true));
                    a.reaction_call.push(d(next.op_start, ready_engine));
                }
            }
            if let (Some(prev), Some(fs)) = (prev_wave_end, first_start) {
                a.lag_wave.push(Some(secs(fs - prev)));
            }
            prev_wave_end = last_finish;
            t = wave_end;
            t_free = wave_end_free;
        }
        let soak = chrono::Duration::milliseconds(rec.ring_soaks[ri].as_millis() as i64);
        t += soak;
        t_free += soak;
        // A ring's first wave starts after the previous ring's soak: not a wave gap.
        prev_wave_end = None;
    }
    a.critical = secs(t - rec.created);
    a.window_wait = secs(t - t_free);
    a
}

fn print_analysis(a: &Analysis) {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!(
        "\n== {} at {}x: {} clusters, {} steps, {}",
        a.label, a.scale, a.clusters, a.steps, a.outcome
    );
    println!(
        "   makespan {} / critical path {} = {:.4}   (critical path holds {} of window waits, {} of approval wait)",
        hms(a.makespan),
        hms(a.critical),
        a.makespan / a.critical,
        hms(a.window_wait),
        hms(a.approval_wait)
    );
    println!(
        "   engine overhead {:.0}s simulated = {:.3}s of wall-clock time at this scale; {:.1}s of it before the first ring started (discovery, maintenance reads, plan)",
        a.makespan - a.critical,
        (a.makespan - a.critical) / a.scale,
        a.prestart
    );
    println!(
        "   gate reaction (s, mean/p95/max over {} passes): engine view {}, end to end {}, AKS receives the call {}",
        a.reaction_engine.n(),
        a.reaction_engine.show(),
        a.reaction_e2e.show(),
        a.reaction_call.show()
    );
    println!(
        "   per-step lags (s, mean/p95/max): ARM call {}, following the operation {}, watch -> healthy {}, settle timer {}, soak timer {}",
        a.lag_call.show(),
        a.lag_follow.show(),
        a.lag_watch.show(),
        a.lag_pass.show(),
        a.lag_soak.show()
    );
    println!(
        "   per-cluster: baseline before the first step {}; between waves {} (last cluster done -> next wave's first cluster)",
        a.lag_baseline.show(),
        a.lag_wave.show()
    );
    println!(
        "   ARM calls {} ({} reads; {:.1} per step); operations followed every {}s simulated, as the simulator's Retry-After asks",
        a.arm_calls,
        a.arm_reads,
        a.arm_calls as f64 / a.steps.max(1) as f64,
        a.poll.as_secs_f64(),
    );
    println!(
        "   {} engine transitions; the loop: {} = {:.2}s of simulated time per pass at this scale",
        a.transitions,
        a.cost.show(),
        a.cost.per_pass_ms() * a.scale / 1000.0
    );
    println!(
        "   wall {:.1}s, CPU {:.1}s ({:.2} of {} cores busy), state file {} KiB{}",
        a.wall,
        a.cpu,
        a.cpu / a.wall,
        cores,
        a.state_bytes / 1024,
        if a.passing_missed > 0 {
            format!(", {} gate passes without an observed healthy time", a.passing_missed)
        } else {
            String::new()
        }
    );
}

// ------------------------------------------------------------------ 5,000 clusters

/// What the daemon child reports (one JSON line); the audit and the final state the
/// parent reads from the state file, the operations from the simulator.
#[derive(serde::Serialize, serde::Deserialize, Debug, Default)]
struct DaemonReport {
    rss_start_mib: f64,
    hwm_after_plan_mib: f64,
    rss_after_plan_mib: f64,
    hwm_peak_mib: f64,
    rss_end_mib: f64,
    discovery_plan_wall_s: f64,
    run_wall_s: f64,
    cpu_s: f64,
    created: Time,
    stopped_by: String,
    passing_since: Vec<(String, usize, Time)>,
    pods_ready: Vec<(String, usize, Time)>,
    cost: LoopCost,
    arm_calls: u64,
    arm_reads: u64,
    arm_writes: u64,
    arm_throttled: u64,
    arm_retries: u64,
    state_file_bytes: u64,
    state_file_checkpointed_bytes: u64,
    /// Every 10 s of wall-clock time: (simulated s since the rollout began, RSS MiB,
    /// state file bytes with WAL, ARM calls so far, ARM writes so far, clusters done).
    timeline: Vec<(f64, f64, u64, u64, u64, usize)>,
}

/// The simulator's ready line, as `ringmaster sim` prints it.
fn ready_info(ready: &str) -> ReadyInfo {
    let ready: serde_json::Value = serde_json::from_str(ready).expect("ready line is JSON");
    let s = |k: &str| ready[k].as_str().unwrap_or_default().to_string();
    ReadyInfo {
        arm_endpoint: s("arm_endpoint"),
        authority_host: s("authority_host"),
        tenant_id: s("tenant_id"),
        client_id: s("client_id"),
        client_secret: s("client_secret"),
        ca_cert: ready["ca_cert"].as_str().map(str::to_string),
        subscription_ids: ready["subscription_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        kube_endpoint_base: s("kube_endpoint_base"),
        manual_clock: false,
        sim_start: s("sim_start"),
    }
}

/// GETs a simulator hook (`/_sim/...`, which takes an ARM token) as JSON.
async fn sim_hook(
    http: &reqwest::Client,
    info: &ReadyInfo,
    tokens: &AzureTokens,
    path: &str,
) -> Option<serde_json::Value> {
    use ringmaster::identity::TokenSource;
    let token = tokens.token(ringmaster::identity::ARM_SCOPE, false).await.ok()?;
    let url = format!("{}/_sim/{path}", info.arm_endpoint.trim_end_matches('/'));
    let r = http.get(url).bearer_auth(token.secret()).send().await.ok()?;
    if !r.status().is_success() {
        eprintln!("GET /_sim/{path}: {}", r.status());
        return None;
    }
    r.json().await.ok()
}

/// When the gate-selected pods of `cluster` last became Ready, at or before `at`.
async fn pods_ready_at(
    http: &reqwest::Client,
    info: &ReadyInfo,
    tokens: &AzureTokens,
    gates: &ringmaster::policy::Gates,
    cluster: &str,
    at: Time,
) -> Option<Time> {
    let v = sim_hook(http, info, tokens, &format!("pods-ready?cluster={cluster}")).await?;
    v["namespaces"]
        .as_object()?
        .iter()
        .filter(|(ns, _)| ringmaster::gate::selects_namespace(gates, ns))
        .filter_map(|(_, t)| t.as_str()?.parse::<Time>().ok())
        .filter(|t| *t <= at)
        .max()
}

/// The daemon role: discover, plan and run the whole rollout against the simulator
/// named in the environment, approving at once, until it ends or `BENCH_5K_SECONDS`
/// pass; print a [`DaemonReport`].
async fn daemon_role() {
    ringmaster::identity::install_crypto_provider();
    let mut rep = DaemonReport {
        rss_start_mib: status_mib("self", "VmRSS:"),
        ..Default::default()
    };
    let info = ready_info(&std::env::var("BENCH_SIM_READY").expect("ready line"));
    let policy_path = PathBuf::from(std::env::var("BENCH_POLICY").expect("policy"));
    let state_path = PathBuf::from(std::env::var("BENCH_STATE").expect("state"));
    let seconds: f64 = env_or("BENCH_5K_SECONDS", 3600.0);
    let config = AzureConfig::for_simulator(&info);
    let boot: Arc<dyn Clock> = Arc::new(ringmaster::clock::SystemClock);
    let probe = arm::connect(&config, boot).expect("client");
    // As `ringmaster run --sim-clock`: the simulator's clock, read once, run locally.
    let clock: Arc<dyn Clock> = Arc::new(
        ringmaster::service::run::sim_clock(&probe)
            .await
            .expect("simulator clock"),
    );
    drop(probe);
    let client = Arc::new(arm::connect(&config, clock.clone()).expect("client"));
    let tokens = Arc::new(AzureTokens::new(config.clone(), config.http_client().expect("http")).expect("tokens"));
    let policy_text = std::fs::read_to_string(&policy_path).expect("policy");
    let policy =
        ringmaster::policy::compile(&policy_path.display().to_string(), &policy_text).expect("policy compiles");
    let wall0 = Instant::now();
    let cpu0 = cpu_seconds();
    rep.created = clock.now();
    let (rollout, snapshot) =
        ringmaster::service::run::new_rollout(&client, &policy_path, &info.subscription_ids, rep.created)
            .await
            .expect("discovery and plan");
    drop(snapshot);
    rep.discovery_plan_wall_s = wall0.elapsed().as_secs_f64();
    rep.hwm_after_plan_mib = status_mib("self", "VmHWM:");
    rep.rss_after_plan_mib = status_mib("self", "VmRSS:");
    let store = Arc::new(Store::open(&state_path).expect("state file"));
    let (ntx, mut nrx) = mpsc::unbounded_channel();
    let metrics = Arc::new(ringmaster::metrics::Metrics::default());
    let mut rt = Runtime::new(
        rollout,
        client.clone(),
        tokens.clone(),
        clock.clone(),
        Some(store.clone()),
        Arc::new(ChannelNotifier(ntx)),
    )
    .expect("runtime")
    .with_metrics(metrics.clone());
    let control = rt.control();
    let mut audit_rx = rt.audit_feed();
    let mut progress = rt.progress();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run0 = Instant::now();
    let runner = tokio::spawn(rt.run(Input::Tick, async {
        let _ = stop_rx.await;
    }));
    // Pods' Ready times at each gate pass, asked of the simulator off the loop.
    let hooks = config.http_client().expect("http");
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<(String, usize, Time)>();
    let deadline = tokio::time::sleep(Duration::from_secs_f64(seconds));
    tokio::pin!(deadline);
    let mut sample = tokio::time::interval(Duration::from_millis(200));
    let mut passing_since: HashMap<(String, usize), Time> = HashMap::new();
    let mut done = 0usize;
    let mut next_mark = 0.0;
    let stats = &client.http().stats;
    let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    rep.stopped_by = "time limit".into();
    loop {
        tokio::select! {
            Some(a) = audit_rx.recv() => {
                if a.action == "cluster.done" {
                    done += 1;
                }
                if a.action == "gate.passed" && let Some((cluster, step)) = step_of(&a.subject) {
                    let (http, info, gates, tx) = (hooks.clone(), info.clone(), policy.gates.clone(), ready_tx.clone());
                    let tokens = tokens.clone();
                    tokio::spawn(async move {
                        if let Some(t) = pods_ready_at(&http, &info, &tokens, &gates, &cluster, a.at).await {
                            let _ = tx.send((cluster, step, t));
                        }
                    });
                }
            }
            Some(r) = ready_rx.recv() => rep.pods_ready.push(r),
            Some((event, ring)) = nrx.recv() => {
                if event == NotifyEvent::ApprovalNeeded && let Some(ring) = ring {
                    control.send(Input::Approve { ring, by: "bench".into(), comment: String::new(), expires_at: None });
                }
            }
            changed = progress.changed() => {
                if changed.is_err() { rep.stopped_by = "runtime ended".into(); break; }
                let r = progress.borrow_and_update();
                for (_, c) in r.clusters().filter(|(_, c)| c.status == ClusterStatus::Running) {
                    for (i, s) in c.steps.iter().enumerate() {
                        if let StepStatus::Gating { passing_since: Some(p), .. } = &s.status {
                            passing_since.insert((c.id.name.clone(), i), *p);
                        }
                    }
                }
                if r.status.is_terminal() { rep.stopped_by = format!("rollout {}", r.status.label()); break; }
            }
            _ = sample.tick() => {
                rep.hwm_peak_mib = status_mib("self", "VmHWM:");
                if run0.elapsed().as_secs_f64() >= next_mark {
                    next_mark += 10.0;
                    rep.timeline.push((
                        secs(clock.now() - rep.created),
                        status_mib("self", "VmRSS:"),
                        store.file_size().unwrap_or(0),
                        get(&stats.calls),
                        get(&stats.writes),
                        done,
                    ));
                }
            }
            _ = &mut deadline => break,
        }
    }
    rep.hwm_peak_mib = rep.hwm_peak_mib.max(status_mib("self", "VmHWM:"));
    let _ = stop_tx.send(());
    let _ = runner.await.expect("runtime task").expect("runtime");
    rep.run_wall_s = run0.elapsed().as_secs_f64();
    rep.cpu_s = cpu_seconds() - cpu0;
    rep.hwm_peak_mib = rep.hwm_peak_mib.max(status_mib("self", "VmHWM:"));
    rep.rss_end_mib = status_mib("self", "VmRSS:");
    // The last gate passes' pod times.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(r) = ready_rx.try_recv() {
        rep.pods_ready.push(r);
    }
    rep.passing_since = passing_since.into_iter().map(|((c, i), t)| (c, i, t)).collect();
    rep.cost = LoopCost::of(&metrics);
    (rep.arm_calls, rep.arm_reads, rep.arm_writes) = (get(&stats.calls), get(&stats.reads), get(&stats.writes));
    (rep.arm_throttled, rep.arm_retries) = (get(&stats.throttled), get(&stats.retries));
    rep.state_file_bytes = store.file_size().unwrap_or(0);
    let _ = store.checkpoint();
    rep.state_file_checkpointed_bytes = store.file_size().unwrap_or(0);
    println!("REPORT {}", serde_json::to_string(&rep).expect("report"));
}

struct FiveK {
    daemon: DaemonReport,
    analysis: Analysis,
    sim_hwm_mib: f64,
    sim_rss_ready_mib: f64,
    max_parallel: (u32, u32, u32),
    subscriptions: usize,
    /// Reading the state file back as a restarted daemon does (s), and its size.
    recovery_s: f64,
    audit_entries: usize,
}

/// Starts `ringmaster sim` and the daemon role as two processes; when the daemon is
/// done, reads its state file and the simulator's record of operations, and analyses
/// the run as the in-process runs are.
fn run_5k(rt: &tokio::runtime::Runtime, scale: f64, seconds: f64, max_parallel: (u32, u32, u32)) -> FiveK {
    let dir = tempfile::tempdir().expect("temp dir");
    let fleet_text = generated_fleet_text(5000);
    let fleet_path = dir.path().join("fleet-5000.yaml");
    std::fs::write(&fleet_path, &fleet_text).expect("fleet file");
    let poll = fleet::parse("fleet-5000.yaml", &fleet_text)
        .expect("5,000 fleet")
        .durations
        .poll_interval;
    let policy_path = dir.path().join("policy-5000.yaml");
    let (dev, stg, prd) = max_parallel;
    let policy_text = generated_policy("bench-5000", dev, stg, prd);
    std::fs::write(&policy_path, &policy_text).expect("policy file");
    let mut sim = std::process::Command::new(env!("CARGO_BIN_EXE_ringmaster"))
        .arg("sim")
        .arg("--fleet")
        .arg(&fleet_path)
        .arg("--time-scale")
        .arg(scale.to_string())
        .arg("--state-dir")
        .arg(dir.path())
        .env("RINGMASTER_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ringmaster sim starts");
    let mut ready = String::new();
    BufReader::new(sim.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("ready line");
    let info = ready_info(ready.trim());
    let sim_pid = sim.id().to_string();
    let sim_rss_ready_mib = status_mib(&sim_pid, "VmRSS:");
    let exe = std::env::current_exe().expect("own executable");
    let state_path = dir.path().join("ringmaster.db");
    let mut daemon = std::process::Command::new(exe)
        .env("BENCH_ROLE", "daemon")
        .env("BENCH_SIM_READY", ready.trim())
        .env("BENCH_POLICY", &policy_path)
        .env("BENCH_STATE", &state_path)
        .env("BENCH_5K_SECONDS", seconds.to_string())
        .env("RINGMASTER_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("daemon role starts");
    let mut out = String::new();
    let mut lines = BufReader::new(daemon.stdout.take().expect("stdout"));
    let mut line = String::new();
    while lines.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
        if let Some(j) = line.strip_prefix("REPORT ") {
            out = j.trim().to_string();
        }
        line.clear();
    }
    let _ = daemon.wait();
    let d: DaemonReport = serde_json::from_str(&out).expect("daemon report");
    // What AKS did, from the simulator.
    let config = AzureConfig::for_simulator(&info);
    let http = config.http_client().expect("http");
    let tokens = AzureTokens::new(config.clone(), http.clone()).expect("tokens");
    let ops_json = rt
        .block_on(sim_hook(&http, &info, &tokens, "operations"))
        .expect("the simulator's operations");
    let time = |v: &serde_json::Value| v.as_str().and_then(|t| t.parse::<Time>().ok());
    let ops: Vec<SimOp> = ops_json["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["abortOf"].is_null())
        .filter_map(|o| {
            let target = match o["target"].as_str()? {
                "cluster" => Target::Cluster,
                t => Target::Pool(t.strip_prefix("pool/")?.to_string()),
            };
            Some(SimOp {
                cluster: o["cluster"].as_str()?.to_string(),
                target,
                start: time(&o["start"])?,
                end: time(&o["end"]),
                ok: o["status"] == "Succeeded",
            })
        })
        .collect();
    let sim_hwm_mib = status_mib(&sim_pid, "VmHWM:");
    let _ = sim.kill();
    let _ = sim.wait();
    // The state file, as a restarted daemon reads it.
    let t = Instant::now();
    let store = Store::open(&state_path).expect("state file");
    let rollout = ringmaster::service::daemon::stored(&store)
        .expect("stored rollout")
        .pop()
        .expect("a rollout");
    let recovery_s = t.elapsed().as_secs_f64();
    let mut audit = Vec::new();
    let mut since = 0;
    loop {
        let page = store
            .audit(&ringmaster::store::AuditQuery {
                rollout_id: Some(rollout.id.clone()),
                since_id: Some(since),
                limit: 1000,
                ..Default::default()
            })
            .expect("audit");
        let Some(last) = page.last().map(|(id, _)| *id) else {
            break;
        };
        audit.extend(page.into_iter().map(|(_, a)| a));
        since = last;
    }
    let policy = ringmaster::policy::compile("policy-5000.yaml", &policy_text).expect("policy compiles");
    let settings = ringmaster::engine::Settings::from_policy(&policy);
    let rec = Recording {
        ring_soaks: rollout
            .rings
            .iter()
            .map(|r| settings.ring(&r.name).map_or(Duration::ZERO, |s| s.soak))
            .collect(),
        created: d.created,
        audit: audit.clone(),
        ops,
        passing_since: d.passing_since.iter().map(|(c, i, t)| ((c.clone(), *i), *t)).collect(),
        pods_ready: d.pods_ready.iter().map(|(c, i, t)| ((c.clone(), *i), *t)).collect(),
        settle: policy.gates.pod_readiness.settle,
        pool_soak: policy.steps.pool_soak,
        state_bytes: d.state_file_checkpointed_bytes,
        wall: Duration::from_secs_f64(d.discovery_plan_wall_s + d.run_wall_s),
        cpu: d.cpu_s,
        scale,
        arm_calls: d.arm_calls,
        arm_reads: d.arm_reads,
        poll,
        cost: d.cost,
        rollout,
    };
    let analysis = analyse("5,000 clusters", &rec);
    FiveK {
        daemon: d,
        analysis,
        sim_hwm_mib,
        sim_rss_ready_mib,
        max_parallel,
        subscriptions: info.subscription_ids.len(),
        recovery_s,
        audit_entries: audit.len(),
    }
}

fn print_5k(f: &FiveK) {
    let d = &f.daemon;
    let a = &f.analysis;
    print_analysis(a);
    println!(
        "   the daemon in its own process, the simulator in another; waves of {} (dev), {} (staging), {} (prod); stopped by {}",
        f.max_parallel.0, f.max_parallel.1, f.max_parallel.2, d.stopped_by
    );
    println!(
        "   daemon memory: peak (VmHWM) {:.1} MiB [goal < 256]; at start {:.1}, after discovery+plan {:.1} (peak so far {:.1}), at the end {:.1}",
        d.hwm_peak_mib, d.rss_start_mib, d.rss_after_plan_mib, d.hwm_after_plan_mib, d.rss_end_mib
    );
    let step = (d.timeline.len() / 12).max(1);
    println!(
        "   over the run (simulated h: RSS MiB, state file MiB, clusters done): {}",
        d.timeline
            .iter()
            .step_by(step)
            .map(|x| format!(
                "{:.1}h: {:.0}, {:.1}, {}",
                x.0 / 3600.0,
                x.1,
                x.2 as f64 / 1048576.0,
                x.5
            ))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let hours = a.makespan / 3600.0;
    let first = d.timeline.iter().find(|x| x.2 > 0).map_or(0, |x| x.2);
    println!(
        "   state file: {:.1} MiB with WAL at the end, {:.1} MiB checkpointed [goal < 100]; growth {:.2} MiB per hour of rollout after the first save ({:.1} MiB); {} audit entries; read back (a restart's recovery) in {:.2}s [goal < 2]",
        d.state_file_bytes as f64 / 1048576.0,
        d.state_file_checkpointed_bytes as f64 / 1048576.0,
        (d.state_file_checkpointed_bytes.saturating_sub(first)) as f64 / 1048576.0 / hours.max(1e-9),
        first as f64 / 1048576.0,
        f.audit_entries,
        f.recovery_s
    );
    // ARM: per subscription and simulated second, at the peak 10-second sample and on
    // average, against the regional token bucket's refill (reads 25/s, writes 10/s).
    let subs = f.subscriptions.max(1) as f64;
    let mut peak = (0.0f64, 0.0f64);
    for w in d.timeline.windows(2) {
        let dt = (w[1].0 - w[0].0).max(1e-9);
        let calls = (w[1].3 - w[0].3) as f64 / dt / subs;
        let writes = (w[1].4 - w[0].4) as f64 / dt / subs;
        peak = (peak.0.max(calls - writes), peak.1.max(writes));
    }
    println!(
        "   ARM: {} calls ({} reads, {} writes) = {:.1} per step; per subscription ({}) and simulated second: reads {:.2} mean / {:.2} peak, writes {:.3} / {:.3} (bucket refill: reads 25/s, writes 10/s); {} answers 429, {} retries",
        d.arm_calls,
        d.arm_reads,
        d.arm_writes,
        d.arm_calls as f64 / a.steps.max(1) as f64,
        f.subscriptions,
        d.arm_reads as f64 / a.makespan.max(1.0) / subs,
        peak.0,
        d.arm_writes as f64 / a.makespan.max(1.0) / subs,
        peak.1,
        d.arm_throttled,
        d.arm_retries
    );
    println!(
        "   daemon CPU {:.1}s over {:.1}s ({:.2} cores); simulator process: {:.1} MiB when ready, peak {:.1} MiB (not counted above)",
        d.cpu_s,
        d.discovery_plan_wall_s + d.run_wall_s,
        d.cpu_s / (d.discovery_plan_wall_s + d.run_wall_s),
        f.sim_rss_ready_mib,
        f.sim_hwm_mib
    );
}

/// Diagnostic (`BENCH_ONLY=latency`): how the daemon's ARM client follows operations
/// against the in-process simulator at a scale: two control-plane upgrades followed
/// at once, every poll's time; and sequential GET latencies.
async fn latency_probe() {
    let scale: f64 = env_or("BENCH_PROBE_SCALE", 300.0);
    let mut f = fleet::load(&Path::new(MANIFEST).join("examples/fleets/demo.yaml")).expect("demo fleet");
    f.faults.clear();
    let Rehearsal { sim, clock, client, .. } = Rehearsal::start(f, scale, None).await.expect("simulator");
    let d = ringmaster::discovery::discover(&client, &sim.info.subscription_ids, clock.now())
        .await
        .expect("discovery");
    let id = d.snapshot.clusters[0].id.clone();
    for pause in [0u64, 5, 20, 34, 60] {
        let mut v = Vec::new();
        for _ in 0..100 {
            let t = Instant::now();
            client.get_cluster(&id).await.expect("get");
            v.push(t.elapsed().as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        v.sort_by(f64::total_cmp);
        println!(
            "GET managedCluster ({pause} ms apart, wall-clock ms): p50 {:.2}, p90 {:.2}, max {:.2}",
            v[50], v[90], v[99]
        );
    }
    let mut tasks = Vec::new();
    for c in d
        .snapshot
        .clusters
        .iter()
        .filter(|c| c.control_plane.to_string().starts_with("1.32"))
        .take(2)
    {
        let (client, clock, id) = (client.clone(), clock.clone(), c.id.clone());
        tasks.push(tokio::spawn(async move {
            let op = match client.upgrade_control_plane(&id, "1.33.3").await {
                Ok(arm::Submitted::Started(op)) => op,
                other => panic!("{other:?}"),
            };
            let mut polls = vec![clock.now()];
            let _ = client.http().wait(&op, |_| polls.push(clock.now())).await;
            polls.push(clock.now());
            let gaps: Vec<String> = polls.windows(2).map(|w| format!("{:.1}", secs(w[1] - w[0]))).collect();
            println!("{}: poll gaps (simulated s): {}", id.name, gaps.join(" "));
            let op = match client.upgrade_pool(&id, "user1", "1.33.3").await {
                Ok(arm::Submitted::Started(op)) => op,
                other => panic!("{other:?}"),
            };
            let mut lat = Vec::new();
            loop {
                let t = Instant::now();
                let p = client.http().poll_once(&op).await.expect("poll");
                let l = t.elapsed().as_secs_f64() * 1000.0;
                let t = Instant::now();
                clock.sleep(Duration::from_secs(10)).await;
                lat.push(format!("{l:.1}+{:.1}", t.elapsed().as_secs_f64() * 1000.0));
                if matches!(p, arm::lro::Progress::Done(_)) {
                    break;
                }
            }
            println!("{}: poll latency + sleep (wall ms): {}", id.name, lat.join(" "));
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    sim.shutdown().await;
}

// ------------------------------------------------------------------ main

fn main() {
    if let Ok(f) = std::env::var("BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(f))
            .with_writer(std::io::stderr)
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if std::env::var("BENCH_ROLE").as_deref() == Ok("daemon") {
        rt.block_on(daemon_role());
        return;
    }
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only == "latency" {
        rt.block_on(latency_probe());
        return;
    }
    let want = |k: &str| only.is_empty() || only.split(',').any(|x| x == k);
    // Long enough for the 500-cluster fleet at 25x (about 6.5 minutes).
    let limit = Duration::from_secs(env_or("BENCH_RUN_LIMIT", 480));
    let mut table: Vec<Analysis> = Vec::new();
    let mut five = None;

    if want("demo") {
        let policy = Path::new(MANIFEST).join("policies/demo.yaml");
        for scale in env_list("BENCH_DEMO_SCALES", "300,1000") {
            let mut f = fleet::load(&Path::new(MANIFEST).join("examples/fleets/demo.yaml")).expect("demo fleet");
            f.faults.clear();
            let rec = rt.block_on(record_run(f, &policy, scale, limit));
            let a = analyse("demo fleet (no faults)", &rec);
            print_analysis(&a);
            table.push(a);
        }
    }
    if want("500") {
        let dir = tempfile::tempdir().expect("temp dir");
        let policy = dir.path().join("policy-500.yaml");
        std::fs::write(&policy, generated_policy("bench-500", 25, 25, 100)).expect("policy");
        for scale in env_list("BENCH_500_SCALES", "25,100") {
            let f = fleet::parse("large.yaml (count 500)", &generated_fleet_text(500)).expect("500 fleet");
            let rec = rt.block_on(record_run(f, &policy, scale, limit));
            let a = analyse("500 clusters", &rec);
            print_analysis(&a);
            table.push(a);
        }
    }
    if want("5k") {
        let f = run_5k(
            &rt,
            env_or("BENCH_5K_SCALE", 100.0),
            env_or("BENCH_5K_SECONDS", 3600.0),
            (
                env_or("BENCH_5K_DEV", 50),
                env_or("BENCH_5K_STAGING", 100),
                env_or("BENCH_5K_PROD", 100),
            ),
        );
        print_5k(&f);
        five = Some((
            f.daemon.hwm_peak_mib,
            f.daemon.state_file_checkpointed_bytes,
            f.analysis.cost,
        ));
        table.push(f.analysis);
    }

    println!("\n{:-<132}", "");
    println!(
        "{:<15} {:>6} {:>8} {:>10} {:>10} {:>7} {:>11} {:>9} {:>22} {:>14}",
        "run",
        "scale",
        "clusters",
        "makespan",
        "crit.path",
        "ratio",
        "overhead",
        "approval",
        "gate reaction mean/max",
        "end-to-end"
    );
    for a in &table {
        println!(
            "{:<15} {:>5}x {:>8} {:>10} {:>10} {:>7.4} {:>8.3}s w {:>8.1}s {:>6.2}/{:.2}s ({:.1} ms w) {:>12.1}s",
            a.label.split(' ').take(2).collect::<Vec<_>>().join(" "),
            a.scale,
            a.clusters,
            hms(a.makespan),
            hms(a.critical),
            a.makespan / a.critical,
            (a.makespan - a.critical) / a.scale,
            a.approval_wait,
            a.reaction_engine.mean(),
            a.reaction_engine.max(),
            a.reaction_engine.max() / a.scale * 1000.0,
            a.reaction_e2e.mean()
        );
    }
    for a in &table {
        println!(
            "{:<15} {:>5}x {:>8}   loop {:.2} ms per pass: {:.2} ms engine + JSON + publishing (goal < 2 ms, flat from 500 to 5,000), {:.2} ms per commit; {:.2} ms per input; max {:.1} ms",
            a.label.split(' ').take(2).collect::<Vec<_>>().join(" "),
            a.scale,
            a.clusters,
            a.cost.per_pass_ms(),
            a.cost.cpu_per_pass_ms(),
            a.cost.commit_per_save_ms(),
            a.cost.per_input_ms(),
            a.cost.max_s * 1000.0
        );
    }
    if let Some((hwm, bytes, _)) = &five {
        println!(
            "5,000 clusters: daemon peak RSS {hwm:.1} MiB (goal < 256), state file {:.1} MiB checkpointed (goal < 100)",
            *bytes as f64 / 1048576.0
        );
    }
    println!(
        "overhead = makespan - critical path in wall-clock seconds (w): what the engine, the simulator and this machine added"
    );
    println!(
        "gate reaction: engine view in simulated s (max also in wall-clock ms); end-to-end: from the true condition (op ended, pods Ready)"
    );
    println!("goals: ratio <= 1.02; gate reaction <= 1 s simulated; daemon peak < 256 MiB");
}
