//! `ringmaster serve`: the daemon. It resumes the unfinished rollouts from the state
//! file, starts new ones on each policy's schedule (or when asked through the API),
//! drives them with the runtime, and answers the HTTP API through [`Control`].
//!
//! One rollout per policy at a time, rollouts of different policies at the same time
//! (the weekly node images go on while a version rollout waits two days for prod's
//! approval). They never act on one cluster together: each cluster is claimed in the
//! store before a rollout prepares it (`store::claims`). Policies are re-read on
//! SIGHUP ([`super::policies`]); a running rollout keeps the policy text it started
//! with (stored in its state). SIGTERM stops starting steps, persists and exits;
//! operations in flight keep running in Azure and are re-attached at the next start.

use super::policies::{Catalog, Loaded, PolicySet, PolicyView};
use super::{Control, ControlError, RingApproval, RolloutSummary};
use crate::arm::AksClient;
use crate::clock::Clock;
use crate::engine::{Input, Rollout};
use crate::identity::TokenSource;
use crate::metrics::Metrics;
use crate::runtime::{Notifier, Runtime};
use crate::store::Store;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tracing::{error, info, warn};

/// A rollout being driven.
struct Active {
    policy: String,
    control: crate::runtime::Control,
    progress: watch::Receiver<Rollout>,
}

impl Active {
    fn running(&self) -> bool {
        !self.progress.borrow().status.is_terminal()
    }
}

/// Someone asked for a rollout now.
struct StartAsk {
    actor: String,
    policy: String,
}

impl From<PathBuf> for PolicySet {
    fn from(p: PathBuf) -> Self {
        PolicySet::File(p)
    }
}

pub struct Daemon {
    pub store: Arc<Store>,
    pub client: Arc<AksClient>,
    pub tokens: Arc<dyn TokenSource>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub notifier: Arc<dyn Notifier>,
    pub policy_set: PolicySet,
    pub subscriptions: Vec<String>,
    /// Whether the rollout loops can save (shared with the API's `/readyz`).
    pub health: Arc<crate::health::Health>,
    /// Every committed pass of the rollouts being driven (`/api/v1/events`).
    pub events: crate::events::EventBus,
    /// The policies in force.
    pub catalog: Catalog,
    /// By rollout id.
    active: Mutex<BTreeMap<String, Active>>,
    /// Wakes the scheduler (a rollout ended, someone asked for one, SIGHUP).
    kick: tokio::sync::Notify,
    start_requests: Mutex<Vec<StartAsk>>,
    reload_requested: std::sync::atomic::AtomicBool,
    /// The rollout loops' tasks, for [`Daemon::kill`].
    loops: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Each rollout's compiled policy (it never changes for a rollout): the API asks on
    /// every status call.
    policies: Mutex<std::collections::HashMap<String, Arc<crate::policy::Policy>>>,
}

impl Daemon {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<Store>,
        client: Arc<AksClient>,
        tokens: Arc<dyn TokenSource>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        notifier: Arc<dyn Notifier>,
        policies: impl Into<PolicySet>,
        subscriptions: Vec<String>,
    ) -> Arc<Self> {
        describe_metrics(&metrics);
        // The daemon's client for its whole life: its calls are timed by operation.
        client.http().set_metrics(metrics.clone());
        let policy_set = policies.into();
        let catalog = Catalog::default();
        for p in catalog.reload(&policy_set) {
            warn!("{p}");
        }
        Arc::new(Daemon {
            store,
            client,
            tokens,
            clock,
            metrics,
            notifier,
            policy_set,
            subscriptions,
            health: Default::default(),
            events: Default::default(),
            catalog,
            active: Mutex::new(BTreeMap::new()),
            kick: tokio::sync::Notify::new(),
            start_requests: Mutex::new(Vec::new()),
            reload_requested: Default::default(),
            loops: Mutex::new(Vec::new()),
            policies: Mutex::new(std::collections::HashMap::new()),
        })
    }

    fn active_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Active>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every stored rollout, decoded. A read error or a state this binary cannot decode
    /// is an error: taking it for "nothing stored" would leave a running rollout
    /// unresumed, silently.
    pub fn stored(&self) -> Result<Vec<Rollout>, ControlError> {
        stored(&self.store)
    }

    /// The unfinished rollouts to resume. `serve` calls this before it listens, so a
    /// state file it cannot read stops it with the reason.
    pub fn unfinished(&self) -> Result<Vec<Rollout>, ControlError> {
        Ok(self.stored()?.into_iter().filter(|r| !r.status.is_terminal()).collect())
    }

    /// Re-reads the policies at the scheduler's next turn (SIGHUP).
    pub fn reload(&self) {
        self.reload_requested.store(true, std::sync::atomic::Ordering::SeqCst);
        self.kick.notify_one();
    }

    /// Runs until `shutdown` resolves: resumes what was unfinished, then schedules.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        match self.unfinished() {
            Ok(all) => {
                for r in all {
                    info!(rollout = %r.id, "resuming an unfinished rollout");
                    let id = r.id.clone();
                    if !self.clone().drive(r, Input::Resumed, shutdown.clone()) {
                        // Same as an unreadable state: a new rollout could collide with
                        // the operations the unfinished one may have in flight.
                        error!(rollout = %id, "an unfinished rollout cannot be resumed: no rollout is started");
                        let _ = shutdown.wait_for(|s| *s).await;
                        return;
                    }
                }
            }
            Err(e) => {
                // Nothing is started over a state that can't be read: a new rollout
                // could collide with the one the file holds.
                error!(error = %e, "cannot read the state file: no rollout is resumed or started");
                let _ = shutdown.wait_for(|s| *s).await;
                return;
            }
        }
        let mut last_check = self.clock.now();
        loop {
            if self.reload_requested.swap(false, std::sync::atomic::Ordering::SeqCst) {
                let problems = self.catalog.reload(&self.policy_set);
                for p in &problems {
                    warn!("{p}");
                }
                for l in self.catalog.in_force().iter().filter(|l| l.error.is_none()) {
                    info!(
                        policy = %l.policy.name,
                        file = %l.path.display(),
                        "policy re-read: it applies to the next rollout; a running rollout keeps its own"
                    );
                }
            }
            let requested = std::mem::take(&mut *self.start_requests.lock().unwrap_or_else(|e| e.into_inner()));
            let now = self.clock.now();
            for l in self.catalog.in_force() {
                let name = &l.policy.name;
                let asked: Vec<&str> = requested
                    .iter()
                    .filter(|a| &a.policy == name)
                    .map(|a| a.actor.as_str())
                    .collect();
                let due = l
                    .policy
                    .schedule
                    .start
                    .as_ref()
                    .is_some_and(|c| c.next_fire(last_check, now).is_some());
                if !due && asked.is_empty() {
                    continue;
                }
                if let Some(id) = self.running_for(name) {
                    info!(policy = %name, rollout = %id, "a start is due, but the policy's rollout still runs: not started");
                    continue;
                }
                self.start(&l, &asked, shutdown.clone()).await;
            }
            last_check = now;
            self.refresh_gauges();
            tokio::select! {
                _ = self.clock.sleep(std::time::Duration::from_secs(60)) => {}
                _ = self.kick.notified() => {}
                _ = shutdown.changed() => break,
            }
        }
        // Give the runtimes their chance to stop cleanly.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while !self.active_lock().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The running rollout of policy `name`, if any.
    fn running_for(&self, name: &str) -> Option<String> {
        self.active_lock()
            .iter()
            .find(|(_, a)| a.policy == name && a.running())
            .map(|(id, _)| id.clone())
    }

    /// Discovers, plans and drives a new rollout of `l`.
    async fn start(self: &Arc<Self>, l: &Loaded, asked: &[&str], shutdown: watch::Receiver<bool>) {
        let started = super::run::new_rollout_from(
            &self.client,
            l.source.clone(),
            &self.subscriptions,
            self.clock.now(),
            crate::forecast::DEFAULT_APPROVAL_AFTER,
        )
        .await;
        match started {
            Ok((r, _)) if r.plan.steps().next().is_none() => {
                info!(policy = %l.policy.name, "nothing to upgrade: the fleet is on the target")
            }
            Ok((r, _)) => {
                info!(policy = %l.policy.name, rollout = %r.id, by = ?asked, "starting a rollout");
                self.clone().drive(r, Input::Tick, shutdown);
            }
            Err(e) => warn!(policy = %l.policy.name, error = %format!("{e:#}"), "cannot start a rollout"),
        }
    }

    /// Spawns the runtime for `r`; false (logged) when it cannot be driven.
    fn drive(self: Arc<Self>, r: Rollout, first: Input, mut shutdown: watch::Receiver<bool>) -> bool {
        let rt = match Runtime::new(
            r.clone(),
            self.client.clone(),
            self.tokens.clone(),
            self.clock.clone(),
            Some(self.store.clone()),
            self.notifier.clone(),
        ) {
            Ok(rt) => rt
                .with_metrics(self.metrics.clone())
                .with_health(self.health.clone())
                .with_events(self.events.clone()),
            Err(e) => {
                error!(rollout = %r.id, error = %e, "cannot drive the rollout");
                return false;
            }
        };
        let id = r.id.clone();
        self.active_lock().insert(
            id.clone(),
            Active {
                policy: r.plan.policy.clone(),
                control: rt.control(),
                progress: rt.progress(),
            },
        );
        let me = self.clone();
        let task = tokio::spawn(async move {
            let daemon = me;
            let result = rt
                .run(first, async move {
                    let _ = shutdown.wait_for(|s| *s).await;
                })
                .await;
            match result {
                Ok(r) => info!(rollout = %r.id, status = r.status.label(), "rollout loop ended"),
                Err(e) => error!(rollout = %id, error = %e, "rollout loop stopped"),
            }
            daemon.active_lock().remove(&id);
            daemon.refresh_gauges();
            daemon.kick.notify_one();
        });
        let mut loops = self.loops.lock().unwrap_or_else(|e| e.into_inner());
        loops.retain(|t| !t.is_finished());
        loops.push(task.abort_handle());
        true
    }

    /// Drops every rollout loop where it is, as a SIGKILL would (the simulation
    /// campaign's kill of an in-process daemon; abort the task running [`Daemon::run`]
    /// too). What was committed is what a new daemon on the same file resumes.
    pub fn kill(&self) {
        for t in self.loops.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            t.abort();
        }
    }

    fn refresh_gauges(&self) {
        let mut by_state: std::collections::BTreeMap<String, f64> = Default::default();
        // The status column, not the states: a scrape must not decode every rollout.
        match self.store.rollout_summaries() {
            Ok(all) => {
                for r in all {
                    *by_state.entry(r.status).or_default() += 1.0;
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot count the stored rollouts");
                return;
            }
        }
        for s in ["running", "paused", "succeeded", "halted", "aborted"] {
            self.metrics.set(
                "ringmaster_rollouts",
                &[("state", s)],
                by_state.get(s).copied().unwrap_or(0.0),
            );
        }
        let st = &self.client.http().stats;
        use crate::arm::http::ArmStats;
        self.metrics.set(
            "ringmaster_arm_calls",
            &[("kind", "read")],
            ArmStats::get(&st.reads) as f64,
        );
        self.metrics.set(
            "ringmaster_arm_calls",
            &[("kind", "write")],
            ArmStats::get(&st.writes) as f64,
        );
        self.metrics
            .set("ringmaster_arm_throttled", &[], ArmStats::get(&st.throttled) as f64);
        self.metrics
            .set("ringmaster_arm_retries", &[], ArmStats::get(&st.retries) as f64);
    }
}

/// Every rollout in `store`, decoded; `serve` calls this right after opening the file.
pub fn stored(store: &Store) -> Result<Vec<Rollout>, ControlError> {
    store
        .load_rollouts()
        .map_err(|e| ControlError::Store(e.to_string()))?
        .into_iter()
        .map(|r| decode(&r))
        .collect()
}

/// A stored state, decoded; one that doesn't decode is an error naming the rollout.
fn decode(r: &crate::store::RolloutRecord) -> Result<Rollout, ControlError> {
    crate::engine::stored::load(r)
        .map_err(|e| ControlError::Store(format!("the stored state of rollout `{}` cannot be read: {e}", r.id)))
}

fn describe_metrics(m: &Metrics) {
    m.describe("ringmaster_rollouts", "gauge", "Rollouts in the state file, by state.");
    m.describe("ringmaster_arm_calls", "gauge", "ARM calls made since start, by kind.");
    m.describe("ringmaster_arm_throttled", "gauge", "ARM answers 429 since start.");
    m.describe("ringmaster_arm_retries", "gauge", "ARM calls retried since start.");
    m.describe("ringmaster_steps_total", "counter", "Upgrade steps by result.");
    m.describe(
        "ringmaster_rollbacks_total",
        "counter",
        "Node pool rollbacks after a failed gate, by result (started, rolledBack, failed).",
    );
    m.describe(
        "ringmaster_preflight_runs_total",
        "counter",
        "Preflights before a cluster's first step, by result (passed, blocked).",
    );
    m.describe(
        "ringmaster_preflight_findings_total",
        "counter",
        "Preflight findings by check and severity (blocks, warns).",
    );
    m.describe(
        "ringmaster_store_write_failing",
        "gauge",
        "1 while the rollout loop cannot save its state (it retries; /readyz is 503).",
    );
    m.describe(
        "ringmaster_store_write_failures_total",
        "counter",
        "Failed saves of a rollout's state, by error.",
    );
    m.describe_histogram(
        "ringmaster_loop_seconds",
        "Wall-clock time of the rollout loop's passes (engine, save, publishing).",
        LOOP_BUCKETS,
    );
    m.describe_histogram(
        "ringmaster_loop_engine_seconds",
        "Of a pass's time, the engine's transitions (pure computation).",
        LOOP_BUCKETS,
    );
    m.describe(
        "ringmaster_loop_seconds_max",
        "gauge",
        "The longest pass of the rollout loop since start, in seconds.",
    );
    m.describe(
        "ringmaster_loop_inputs_total",
        "counter",
        "Inputs (observations, decisions, ticks) the rollout loop took.",
    );
    m.describe("ringmaster_state_saves_total", "counter", "Saves of a rollout's state.");
    m.describe_histogram(
        "ringmaster_state_commit_seconds",
        "Wall-clock time the rollout loop waited for a save to commit (the WAL's fsync).",
        LOOP_BUCKETS,
    );
    m.describe(
        "ringmaster_state_written_bytes_total",
        "counter",
        "Bytes of state JSON written by those saves (the head and the changed parts).",
    );
    m.describe(
        "ringmaster_gate_evaluations_total",
        "counter",
        "Gate evaluations by result.",
    );
    m.describe_histogram(
        "ringmaster_operation_seconds",
        "Duration of AKS operations (step start to operation done).",
        STEP_BUCKETS,
    );
    m.describe_histogram(
        "ringmaster_step_duration_seconds",
        "Duration of upgrade steps from start to gate verdict or failure, by kind \
         (controlPlane, poolVersion, nodeImage, poolRollback).",
        STEP_BUCKETS,
    );
    m.describe_histogram(
        "ringmaster_gate_wait_seconds",
        "Time from a step's operation end to its gate's verdict, by result (passed, failed).",
        GATE_BUCKETS,
    );
    m.describe_histogram(
        "ringmaster_approval_wait_seconds",
        "Time from a ring asking for approval to the approval, by ring.",
        APPROVAL_BUCKETS,
    );
}

/// A pass of the rollout loop: sub-millisecond to seconds (a 5,000-cluster save).
const LOOP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// An AKS operation or a whole step: minutes to hours (a large pool's surge).
const STEP_BUCKETS: &[f64] = &[
    30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0, 5400.0, 7200.0, 10800.0, 14400.0,
];
/// A gate: its settle time (minutes) up to its timeout.
const GATE_BUCKETS: &[f64] = &[
    10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0, 450.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0,
];
/// A person's approval: minutes to days.
const APPROVAL_BUCKETS: &[f64] = &[
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 57600.0, 86400.0, 172800.0, 345600.0,
];

impl Control for Daemon {
    fn list(&self) -> Result<Vec<RolloutSummary>, ControlError> {
        Ok(self
            .store
            .rollout_summaries()
            .map_err(|e| ControlError::Store(e.to_string()))?
            .into_iter()
            .map(|r| RolloutSummary {
                id: r.id,
                policy: r.policy_name,
                status: r.status,
                updated_at: r.updated_at,
            })
            .collect())
    }

    fn get(&self, id: &str) -> Result<Option<Rollout>, ControlError> {
        if let Some(a) = self.active_lock().get(id) {
            return Ok(Some(a.progress.borrow().clone()));
        }
        self.store
            .load_rollout(id)
            .map_err(|e| ControlError::Store(e.to_string()))?
            .map(|r| decode(&r))
            .transpose()
    }

    fn active(&self) -> Vec<String> {
        self.active_lock().keys().cloned().collect()
    }

    fn send(&self, id: &str, input: Input) -> Result<(), ControlError> {
        let sent = self.active_lock().get(id).map(|a| a.control.send(input));
        match sent {
            Some(true) => Ok(()),
            Some(false) => Err(ControlError::NotRunning(id.to_string())),
            None if self.get(id)?.is_some() => Err(ControlError::NotRunning(id.to_string())),
            None => Err(ControlError::UnknownRollout(id.to_string())),
        }
    }

    fn ring_approval(&self, id: &str, ring: &str) -> Option<RingApproval> {
        let cached = self.policies.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned();
        let p = match cached {
            Some(p) => p,
            None => {
                let r = self.get(id).ok().flatten()?;
                let p = Arc::new(crate::policy::compile(&r.policy_file, &r.policy_text).ok()?);
                self.policies
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.to_string(), p.clone());
                p
            }
        };
        let ring = p.rings.iter().find(|x| x.name == ring)?;
        ring.approval.as_ref().map(|a| RingApproval {
            approvers: a.approvers.clone(),
            expires_after: a.expires_after,
        })
    }

    fn start_now(&self, actor: &str, policy: Option<&str>) -> Result<super::StartRequest, ControlError> {
        let name = self.startable(policy)?;
        self.start_requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(StartAsk {
                actor: actor.to_string(),
                policy: name,
            });
        self.kick.notify_one();
        Ok(super::StartRequest::Queued)
    }

    fn can_start(&self, policy: Option<&str>) -> Result<(), ControlError> {
        self.startable(policy).map(drop)
    }

    fn policies(&self) -> Vec<PolicyView> {
        self.catalog.views()
    }
}

impl Daemon {
    /// The policy a start request names (or the only one), when none of its rollouts runs.
    fn startable(&self, policy: Option<&str>) -> Result<String, ControlError> {
        let in_force = self.catalog.in_force();
        let names = || in_force.iter().map(|l| l.policy.name.clone()).collect::<Vec<_>>();
        let name = match policy {
            Some(p) if in_force.iter().any(|l| l.policy.name == p) => p.to_string(),
            Some(p) => {
                return Err(ControlError::UnknownPolicy {
                    name: p.to_string(),
                    known: names(),
                });
            }
            None if in_force.len() == 1 => in_force[0].policy.name.clone(),
            None => return Err(ControlError::PolicyRequired(names())),
        };
        match self.running_for(&name) {
            Some(id) => Err(ControlError::AlreadyRunning(id)),
            None => Ok(name),
        }
    }
}
