//! The simulation campaign: for each seed, a generated fleet and policy run through the
//! real runtime and executor (`ringmaster::runtime::Runtime`, with its SQLite state
//! file) against the in-process simulator over real HTTPS, with the seed's faults,
//! operator inputs and daemon restarts. The whole run is on tokio's paused clock: the
//! simulator's time and the daemon's follow tokio's virtual time, which jumps to the
//! next timer whenever nothing is left to do, so hours of rollout take a fraction of a
//! second and nothing sleeps.
//!
//! The invariants are judged from outside the engine: from the simulator's own log of
//! every mutating request (whatever it was answered: 409 and no-op 200 count) and its
//! operation log, and from each rollout state the daemon publishes. See `check.rs`.
//!
//! A seed names its scenario (fleet, policy, faults, operator inputs, restart times).
//! The interleaving of network I/O inside one instant of simulated time is the
//! kernel's, so a replay runs the same scenario but may order two simultaneous events
//! differently.
#![allow(dead_code)]

pub mod check;
pub mod large;
pub mod multi;
pub mod scenario;

use chrono::{DateTime, Utc};
use ringmaster::clock::{Clock, ScaledClock};
use ringmaster::domain::fleet::ClusterId;
use ringmaster::embedded::PolicySource;
use ringmaster::engine::{Input, NotifyEvent, Rollout, RolloutStatus, Scope};
use ringmaster::identity::{AzureConfig, AzureTokens};
use ringmaster::runtime::{Notifier, Runtime};
use ringmaster::sim::{ClockMode, SimOptions, Simulator, fleet};
use scenario::{Action, Answer, CrashAt, Scenario};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How a seed's rollout ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Succeeded,
    Halted,
    Aborted,
    /// Still waiting (an approval never given, a pause never lifted) at the horizon.
    Waiting,
}

/// What one seed did.
#[derive(Debug)]
pub struct Report {
    pub seed: u64,
    pub outcome: Outcome,
    pub clean: bool,
    pub restarts: u32,
    /// Restarts after a save of changed parts, whose state read back was compared with
    /// the committed one, and equal (every restart is compared).
    pub recovered: u32,
    pub writes: usize,
    pub checks: u64,
    pub failed_clusters: usize,
    /// Clusters whose failed pool was rolled back (`on_gate_failure: rollback`).
    pub rolled_back: usize,
    /// Restarts while AKS ran a rollback ringmaster had sent (judged from the
    /// simulator's log and operations, not from the daemon's state).
    pub restarts_in_rollback: u32,
    pub simulated: chrono::Duration,
}

/// What a run of seeds added up to.
#[derive(Debug, Default)]
pub struct Totals {
    pub succeeded: usize,
    pub halted: usize,
    pub aborted: usize,
    pub waiting: usize,
    pub clean: usize,
    pub failed_clusters: usize,
    pub rolled_back: usize,
    pub restarts: u32,
    /// Restarts after a save of changed parts, whose state read back was compared with
    /// the committed one, and equal (every restart is compared).
    pub recovered: u32,
    pub writes: usize,
    pub checks: u64,
    pub simulated_secs: i64,
}

impl Totals {
    pub fn of(reports: &[Report]) -> Totals {
        let mut t = Totals::default();
        for r in reports {
            match r.outcome {
                Outcome::Succeeded => t.succeeded += 1,
                Outcome::Halted => t.halted += 1,
                Outcome::Aborted => t.aborted += 1,
                Outcome::Waiting => t.waiting += 1,
            }
            t.clean += usize::from(r.clean);
            t.failed_clusters += r.failed_clusters;
            t.rolled_back += r.rolled_back;
            t.restarts += r.restarts;
            t.recovered += r.recovered;
            t.writes += r.writes;
            t.checks += r.checks;
            t.simulated_secs += r.simulated.num_seconds();
        }
        t
    }
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "outcomes: {} succeeded, {} halted, {} aborted, {} still waiting at the horizon (approval never given or pause never lifted)",
            self.succeeded, self.halted, self.aborted, self.waiting
        )?;
        writeln!(
            f,
            "clean seeds (must succeed): {}; clusters failed as their fault requires or otherwise: {}, rolled back: {}; daemon restarts: {} ({} after saves of changed parts, each read back exactly as committed)",
            self.clean, self.failed_clusters, self.rolled_back, self.restarts, self.recovered
        )?;
        writeln!(
            f,
            "mutating requests judged: {}; invariant checks made: {}; broken: 0",
            self.writes, self.checks
        )?;
        write!(f, "simulated time: {:.0} days", self.simulated_secs as f64 / 86_400.0)
    }
}

/// Simulated time after which a rollout still running counts as waiting forever.
const HORIZON: Duration = Duration::from_secs(3 * 24 * 3600);

struct ChannelNotifier(mpsc::UnboundedSender<(NotifyEvent, Option<String>)>);

impl Notifier for ChannelNotifier {
    fn notify(&self, event: NotifyEvent, ring: Option<&str>, _c: Option<&ClusterId>, _m: &str) {
        let _ = self.0.send((event, ring.map(str::to_string)));
    }
}

/// The in-process simulator of a seed and the daemon's view of it: its clock (at the
/// simulator's, on tokio's paused time), an ARM client and tokens.
pub struct Azure {
    pub sim: Simulator,
    pub start: DateTime<Utc>,
    pub clock: Arc<dyn Clock>,
    pub client: Arc<ringmaster::arm::AksClient>,
    pub tokens: Arc<AzureTokens>,
}

impl Azure {
    pub async fn start(fleet: fleet::Fleet, seed: u64) -> Result<Azure, String> {
        let sim = Simulator::start(SimOptions {
            fleet,
            listen: "127.0.0.1:0".parse().unwrap(),
            clock: ClockMode::Scaled(1.0),
            seed,
            plain_http: false,
            state_dir: None,
        })
        .await
        .map_err(|e| format!("simulator: {e}"))?;
        let start = sim.shared().clock.now().to_datetime();
        let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(start, 1.0));
        let config = AzureConfig::for_simulator(&sim.info);
        let client = Arc::new(ringmaster::arm::connect(&config, clock.clone()).map_err(|e| e.to_string())?);
        let tokens =
            Arc::new(AzureTokens::new(config.clone(), config.http_client().unwrap()).map_err(|e| e.to_string())?);
        Ok(Azure {
            sim,
            start,
            clock,
            client,
            tokens,
        })
    }
}

/// Runs one seed on a fresh current-thread runtime with a paused clock; panics (with
/// the seed and what broke) when an invariant does not hold.
pub fn run_seed(seed: u64) -> Report {
    if let Ok(filter) = std::env::var("CAMPAIGN_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    rt.block_on(run(Scenario::generate(seed)))
}

/// Runs `seeds` on one thread per core (each seed on its own runtime); reports in seed
/// order. A broken invariant panics the whole run with its seed.
pub fn run_seeds(seeds: std::ops::RangeInclusive<u64>) -> Vec<Report> {
    let next = std::sync::Mutex::new(seeds);
    let out = std::sync::Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let Some(seed) = next.lock().unwrap().next() else { break };
                    let r = run_seed(seed);
                    out.lock().unwrap().push(r);
                }
            });
        }
    });
    let mut v = out.into_inner().unwrap();
    v.sort_by_key(|r| r.seed);
    v
}

/// Opens the state file again after a kill. A killed process's locks go with it; here
/// the dead runtime's writer thread may still be finishing the commit it had taken, so
/// the file may be busy for a few (wall-clock) milliseconds.
fn reopen(state: &std::path::Path) -> ringmaster::store::Store {
    let t = std::time::Instant::now();
    loop {
        match ringmaster::store::Store::open(state) {
            Ok(s) => return s,
            Err(e) if t.elapsed() < Duration::from_secs(10) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("the state file stays busy after a restart: {e}"),
        }
    }
}

fn id_of(rollout: &Rollout, name: &str) -> Option<ClusterId> {
    rollout
        .clusters()
        .map(|(_, c)| &c.id)
        .find(|id| id.name == name)
        .cloned()
}

async fn run(sc: Scenario) -> Report {
    let seed = sc.seed;
    // The daemon's audit trail across restarts, printed with a failure.
    let trail: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let fail = |what: String| -> ! {
        panic!(
            "campaign seed {seed}: {what}\n(replay: CAMPAIGN_SEED={seed} cargo test --test campaign)\n--- fleet\n{}\n--- policy\n{}\n--- actions {:?}, crashes {:?}\n--- answers {:?}\n--- audit\n{}",
            sc.fleet_yaml,
            sc.policy_yaml,
            sc.actions,
            sc.crashes,
            sc.answers,
            trail.lock().unwrap().join("\n")
        )
    };
    let follow = |feed: mpsc::UnboundedReceiver<ringmaster::store::AuditEntry>| {
        let trail = trail.clone();
        tokio::spawn(async move {
            let mut feed = feed;
            while let Some(a) = feed.recv().await {
                trail.lock().unwrap().push(format!(
                    "{} {} {} {}: {}",
                    a.at.format("%d %H:%M:%S%.3f"),
                    a.actor,
                    a.action,
                    a.subject,
                    a.reason
                ));
            }
        });
    };
    ringmaster::identity::install_crypto_provider();
    let fleet = fleet::parse("campaign fleet", &sc.fleet_yaml).unwrap_or_else(|e| fail(format!("fleet: {e}")));
    let dir = tempfile::tempdir().expect("temp dir");
    let Azure {
        sim,
        start,
        clock,
        client,
        tokens,
    } = Azure::start(fleet, seed).await.unwrap_or_else(|e| fail(e));
    let policy = PolicySource {
        name: format!("campaign-{seed}.yaml"),
        text: sc.policy_yaml.clone(),
    };
    let (rollout, _) = ringmaster::service::run::new_rollout_from(
        &client,
        policy,
        &sim.info.subscription_ids,
        start,
        ringmaster::forecast::DEFAULT_APPROVAL_AFTER,
    )
    .await
    .unwrap_or_else(|e| fail(format!("planning: {e:#}")));
    let state = dir.path().join("state.db");
    let store = Arc::new(ringmaster::store::Store::open(&state).unwrap());
    // The runtime's store: gone once its writer thread has finished its last commit.
    let mut previous = Arc::downgrade(&store);
    let (ntx, mut notes) = mpsc::unbounded_channel();
    let notifier: Arc<dyn Notifier> = Arc::new(ChannelNotifier(ntx));
    let mut checker = check::Checker::new(&sc, &rollout);
    // What AKS held before the daemon's first call: a pool rolled back must end on it.
    checker.initial(sim.with_world(|w| check::WorldView::of(w)));
    let plan_ids: Vec<(String, ClusterId)> = sc
        .rings
        .iter()
        .flat_map(|r| r.clusters.iter())
        .filter_map(|n| id_of(&rollout, n).map(|id| (n.clone(), id)))
        .collect();
    let cluster = |name: &str| plan_ids.iter().find(|(n, _)| n == name).map(|(_, id)| id.clone());

    let mut runtime = Runtime::new(
        rollout,
        client.clone(),
        tokens.clone(),
        clock.clone(),
        Some(store),
        notifier.clone(),
    )
    .unwrap_or_else(|e| fail(format!("runtime: {e}")));
    follow(runtime.audit_feed());
    let mut control = runtime.control();
    let mut progress = runtime.progress();
    let mut commits = runtime.commits();
    let mut runner = tokio::spawn(runtime.run(Input::Tick, std::future::pending()));

    // The operator's inputs, at simulated times (they outlive restarts: they are the
    // world's, not the daemon's).
    let mut pending: Vec<(DateTime<Utc>, Action)> = sc
        .actions
        .iter()
        .map(|(d, a)| (start + chrono::Duration::from_std(*d).unwrap(), a.clone()))
        .collect();
    let mut approvals: Vec<(DateTime<Utc>, Input)> = Vec::new();
    let mut asked: Vec<String> = Vec::new();
    let mut delivered: Vec<(String, Input)> = Vec::new();
    let mut restarts = 0;
    let mut restarts_in_rollback = 0;
    let mut recovered = 0;
    let mut started_from: Option<Rollout> = None;
    let horizon = start + chrono::Duration::from_std(HORIZON).unwrap();
    let mut last: Rollout = progress.borrow().clone();
    let mut crashes = sc.crashes.clone();
    let mut logged = sim.shared().writes_logged.subscribe();
    let outcome = loop {
        let next_action = pending.first().map(|(t, _)| *t);
        let next_approval = approvals.iter().map(|(t, _)| *t).min();
        let next = [next_action, next_approval, Some(horizon)]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
        let wait = (next - clock.now()).to_std().unwrap_or_default();
        tokio::select! {
            biased;
            changed = progress.changed() => {
                if changed.is_ok() {
                    last = progress.borrow_and_update().clone();
                    let writes = sim.with_world(|w| w.writes.clone());
                    if let Err(e) = checker.on_state(&last, &writes) { fail(e) }
                }
                if last.status.is_terminal() || changed.is_err() {
                    // The loop ends on a terminal state; let it finish its own shutdown.
                    let _ = (&mut runner).await;
                    break match &last.status {
                        RolloutStatus::Succeeded => Outcome::Succeeded,
                        RolloutStatus::Halted { .. } => Outcome::Halted,
                        RolloutStatus::Aborted { .. } => Outcome::Aborted,
                        _ => fail(format!("the runtime stopped on a state that is not terminal: {:?}", last.status)),
                    };
                }
            }
            // A crash the moment AKS took a call, before the daemon saw the answer.
            Ok(()) = logged.changed(), if !crashes.is_empty() => {
                logged.borrow_and_update();
                let started: Vec<Option<String>> = sim.with_world(|w| {
                    w.writes.iter().filter(|x| x.operation.is_some()).map(check::cluster_of).collect()
                });
                let hit = crashes.iter().position(|(at, _)| match at {
                    CrashAt::NthOperation(n) => started.len() >= *n,
                    CrashAt::FirstOperationOn(c) => started.last().is_some_and(|x| x.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(c))),
                    CrashAt::FirstRollback => sim.with_world(|w| w.writes.iter().any(|x| x.rollback_to.is_some() && (200..300).contains(&x.status))),
                });
                if let Some(i) = hit {
                    let (_, down) = crashes.remove(i);
                    pending.insert(0, (clock.now(), Action::Restart { down }));
                }
            }
            Some((event, ring)) = notes.recv() => {
                if event == NotifyEvent::ApprovalNeeded && let Some(ring) = ring && !asked.contains(&ring) {
                    asked.push(ring.clone());
                    let now = clock.now();
                    match sc.answers.iter().find(|(r, _)| *r == ring).map(|(_, a)| *a) {
                        Some(Answer::Approve { after, expires }) => {
                            let at = now + chrono::Duration::from_std(after).unwrap();
                            let expires_at = expires.map(|e| at + chrono::Duration::from_std(e).unwrap());
                            approvals.push((at, Input::Approve { ring, by: "alice".into(), comment: "campaign".into(), expires_at }));
                        }
                        Some(Answer::Reject { after }) => {
                            approvals.push((now + chrono::Duration::from_std(after).unwrap(), Input::Reject { ring, by: "bob".into(), comment: "campaign".into() }));
                        }
                        Some(Answer::Never) => {}
                        None => fail(format!("approval asked for ring {ring}, whose policy asks none")),
                    }
                }
            }
            _ = tokio::time::sleep(wait) => {
                let now = clock.now();
                if now >= horizon {
                    break Outcome::Waiting;
                }
                while let Some(i) = approvals.iter().position(|(t, _)| *t <= now) {
                    let input = approvals.remove(i).1;
                    // The approval rule is judged from here, when the operator's answer
                    // reached the daemon, not from the daemon's record of it.
                    checker.delivered(&input, now);
                    if let Input::Approve { ring, .. } | Input::Reject { ring, .. } = &input {
                        delivered.retain(|(r, _)| r != ring);
                        delivered.push((ring.clone(), input.clone()));
                    }
                    control.send(input);
                }
                while pending.first().is_some_and(|(t, _)| *t <= now) {
                    let (_, action) = pending.remove(0);
                    let input = match action {
                        Action::Restart { down } => {
                            // SIGKILL, in-process: the runtime and every task it spawned
                            // are dropped wherever they are (between an unsaved batch and
                            // its save included); the state file is all that survives.
                            runner.abort();
                            let _ = (&mut runner).await;
                            restarts += 1;
                            if check::rollback_running(&sim) {
                                restarts_in_rollback += 1;
                            }
                            // Down for a while: AKS finishes (or fails) what it took.
                            tokio::time::sleep(down).await;
                            // A killed process commits nothing more; here the dead
                            // runtime's writer thread may still finish the commit it took:
                            // wait for it (wall clock), so the file read is the last word.
                            let t = std::time::Instant::now();
                            while previous.upgrade().is_some() {
                                assert!(t.elapsed() < Duration::from_secs(10), "the killed runtime's store is still held");
                                // Let the aborted tasks drop, then the thread finish.
                                tokio::task::yield_now().await;
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            let store = Arc::new(reopen(&state));
                            previous = Arc::downgrade(&store);
                            let now = clock.now();
                            let stored = ringmaster::service::daemon::stored(&store).unwrap_or_else(|e| fail(format!("state after a restart: {e}")));
                            let Some(r) = stored.into_iter().find(|r| !r.status.is_terminal()) else {
                                fail("the daemon was restarted after the rollout ended".into())
                            };
                            // Recovery is exact: the state read back is the one the killed
                            // runtime last committed, or the one it was committing.
                            // (Nothing committed since the last start: the one it started from.)
                            let c = commits.borrow().clone();
                            let candidates: Vec<&Rollout> = [c.saving.as_ref(), c.saved.as_ref().or(started_from.as_ref())].into_iter().flatten().collect();
                            if let Some(diff) = check::recovery_mismatch(&r, &candidates) {
                                fail(format!("the recovered state is not the last committed one: {diff}"));
                            }
                            // Counted when the killed runtime had saved changes only
                            // (its first save after a start writes every part).
                            if c.saved.is_some() {
                                recovered += 1;
                            }
                            // An answer the killed daemon took but had not saved is given
                            // again, as an operator who sees the ring still waiting would.
                            for (ring, input) in &delivered {
                                if r.rings.iter().any(|x| &x.name == ring && x.approval.is_none() && matches!(x.status, ringmaster::engine::RingStatus::Pending | ringmaster::engine::RingStatus::AwaitingApproval { .. })) {
                                    approvals.push((now, input.clone()));
                                }
                            }
                            started_from = Some(r.clone());
                            let mut runtime = Runtime::new(r, client.clone(), tokens.clone(), clock.clone(), Some(store), notifier.clone())
                                .unwrap_or_else(|e| fail(format!("runtime after a restart: {e}")));
                            trail.lock().unwrap().push(format!("{} -- restart", now.format("%d %H:%M:%S%.3f")));
                            follow(runtime.audit_feed());
                            control = runtime.control();
                            progress = runtime.progress();
                            commits = runtime.commits();
                            runner = tokio::spawn(runtime.run(Input::Resumed, std::future::pending()));
                            continue;
                        }
                        Action::PauseRollout => Input::Pause { scope: Scope::Rollout, by: "carol".into(), reason: "campaign".into() },
                        Action::ResumeRollout => Input::Resume { scope: Scope::Rollout, by: "carol".into() },
                        Action::PauseRing(r) => Input::Pause { scope: Scope::Ring(r), by: "carol".into(), reason: "campaign".into() },
                        Action::ResumeRing(r) => Input::Resume { scope: Scope::Ring(r), by: "carol".into() },
                        Action::PauseCluster(c) => match cluster(&c) {
                            Some(id) => Input::Pause { scope: Scope::Cluster(id), by: "carol".into(), reason: "campaign".into() },
                            None => continue,
                        },
                        Action::ResumeCluster(c) => match cluster(&c) {
                            Some(id) => Input::Resume { scope: Scope::Cluster(id), by: "carol".into() },
                            None => continue,
                        },
                        Action::Skip(c) => match cluster(&c) {
                            Some(id) => Input::Skip { cluster: id, by: "carol".into(), reason: "campaign".into() },
                            None => continue,
                        },
                        Action::PromoteNow(r) => {
                            checker.promoted(&r);
                            Input::PromoteNow { ring: r, by: "carol".into(), reason: "campaign".into() }
                        }
                        Action::Abort => Input::Abort { by: "carol".into(), reason: "campaign".into() },
                    };
                    control.send(input);
                }
            }
        }
    };
    if outcome == Outcome::Waiting {
        runner.abort();
        let _ = runner.await;
    }
    // Whatever the daemon started runs to its end in AKS before the final checks.
    tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    let (writes, world) = sim.with_world(|w| (w.writes.clone(), check::WorldView::of(w)));
    let checks = checker
        .finish(&last, &writes, &world, outcome.clone())
        .unwrap_or_else(|e| fail(e));
    sim.shutdown().await;
    Report {
        seed,
        outcome,
        clean: sc.clean,
        restarts,
        recovered,
        writes: writes.len(),
        checks,
        failed_clusters: last
            .clusters()
            .filter(|(_, c)| matches!(c.status, ringmaster::engine::ClusterStatus::Failed { .. }))
            .count(),
        rolled_back: last
            .clusters()
            .filter(|(_, c)| matches!(c.status, ringmaster::engine::ClusterStatus::RolledBack { .. }))
            .count(),
        restarts_in_rollback,
        simulated: last.updated_at - start,
    }
}
