//! The daemon loop: feeds the pure engine with what the executor observes, persists
//! every new state (with its audit entries, in one transaction) before any command it
//! produced runs, then runs the commands. Time comes from the injected [`Clock`].

pub mod claims;
mod exec;
mod preflight;
mod waits;

use crate::arm::AksClient;
use crate::clock::Clock;
use crate::domain::fleet::ClusterId;
use crate::engine::{self, Command, Input, NotifyEvent, Rollout, Settings};
use crate::identity::TokenSource;
use crate::kube::ClusterWatch;
use crate::policy::Policy;
use crate::store::{AuditEntry, RolloutRecord, Store, StoreWriter};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// Where notifications go (the demo prints them; the service posts webhooks).
pub trait Notifier: Send + Sync {
    fn notify(&self, event: NotifyEvent, ring: Option<&str>, cluster: Option<&ClusterId>, message: &str);
}

/// A notifier that only logs.
#[derive(Debug, Default)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn notify(&self, event: NotifyEvent, ring: Option<&str>, _cluster: Option<&ClusterId>, message: &str) {
        info!(?event, ring, "{message}");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("saving the rollout state failed: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("saving the rollout state did not finish: {0}")]
    Saving(String),
    #[error("the rollout's policy no longer compiles: {0}")]
    Policy(String),
}

/// Everything the executor's tasks share.
pub(crate) struct Shared {
    pub arm: Arc<AksClient>,
    pub tokens: Arc<dyn TokenSource>,
    pub clock: Arc<dyn Clock>,
    pub policy: Policy,
    pub watches: Mutex<HashMap<ClusterId, Arc<ClusterWatch>>>,
    pub inputs: mpsc::UnboundedSender<Input>,
    /// Commits, on the store's own thread.
    pub store: Option<StoreWriter>,
    pub rollout_id: String,
    /// ARM facts of clusters preflight read, for their wave-mates' capacity checks.
    pub preflight_cache: Mutex<HashMap<ClusterId, crate::preflight::facts::ClusterFacts>>,
}

/// One rollout, driven to its end (or until shutdown).
pub struct Runtime {
    shared: Arc<Shared>,
    settings: Settings,
    rollout: Rollout,
    rx: mpsc::UnboundedReceiver<Input>,
    notifier: Arc<dyn Notifier>,
    gates: HashMap<engine::StepRef, JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
    /// Calls to AKS's abort: they are the point of an abort, so the loop's end waits
    /// for them (bounded) instead of cancelling them with the other tasks.
    aborts: Vec<JoinHandle<()>>,
    wake: Option<DateTime<Utc>>,
    progress: watch::Sender<Rollout>,
    audit: Option<mpsc::UnboundedSender<AuditEntry>>,
    /// Committed passes, for the API's event stream.
    events: Option<crate::events::EventBus>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Gates and approvals being waited for, for their histograms.
    waits: waits::Waits,
    /// Where a save that fails is reported (`/readyz`).
    health: Option<Arc<crate::health::Health>>,
    /// The state the last save wrote (it shares every unchanged cluster with
    /// `rollout`): the next save writes only what differs from it.
    saved: Option<Rollout>,
    /// What is being committed and what was, for whoever checks recovery.
    commits: watch::Sender<Commits>,
    /// A crash test's kill point ([`CRASH_AFTER_SAVE`]).
    crash_after_save: Option<String>,
    /// When saves began failing, once they work again: the next pass starts with
    /// [`Input::Unrecorded`], so no gate's timeout counts the outage.
    unrecorded: Option<DateTime<Utc>>,
}

/// Crash tests set this to an audit action (e.g. `cluster.rolling_back`): the process
/// aborts right after saving the transition that audits it, before running any of its
/// commands: the exact moment between a recorded intent and its call, which a kill
/// from outside hits only by chance. Unset, nothing happens.
pub const CRASH_AFTER_SAVE: &str = "RINGMASTER_CRASH_AFTER_SAVE";

/// The runtime's saves, as [`Runtime::commits`] publishes them.
#[derive(Debug, Clone, Default)]
pub struct Commits {
    /// Handed to the store, not yet acknowledged.
    pub saving: Option<Rollout>,
    /// The last state the store acknowledged.
    pub saved: Option<Rollout>,
}

/// A handle to send decisions (approve, pause, ...) into a running rollout.
#[derive(Clone)]
pub struct Control {
    inputs: mpsc::UnboundedSender<Input>,
}

impl Control {
    pub fn send(&self, input: Input) -> bool {
        self.inputs.send(input).is_ok()
    }
}

impl Runtime {
    /// A runtime for `rollout` (new, or reloaded from the store: then it resumes).
    pub fn new(
        rollout: Rollout,
        arm: Arc<AksClient>,
        tokens: Arc<dyn TokenSource>,
        clock: Arc<dyn Clock>,
        store: Option<Arc<Store>>,
        notifier: Arc<dyn Notifier>,
    ) -> Result<Self, RuntimeError> {
        let policy = crate::policy::compile(&rollout.policy_file, &rollout.policy_text)
            .map_err(|e| RuntimeError::Policy(e.to_string()))?;
        let settings = Settings::from_policy(&policy);
        let (tx, rx) = mpsc::unbounded_channel();
        let (progress, _) = watch::channel(rollout.clone());
        let waits = waits::Waits::of(&rollout);
        let shared = Arc::new(Shared {
            arm,
            tokens,
            clock,
            policy,
            watches: Mutex::new(HashMap::new()),
            inputs: tx,
            store: store.map(StoreWriter::start),
            rollout_id: rollout.id.clone(),
            preflight_cache: Mutex::new(HashMap::new()),
        });
        Ok(Runtime {
            shared,
            settings,
            rollout,
            rx,
            notifier,
            gates: HashMap::new(),
            tasks: Vec::new(),
            aborts: Vec::new(),
            wake: None,
            progress,
            audit: None,
            events: None,
            metrics: None,
            waits,
            health: None,
            saved: None,
            unrecorded: None,
            commits: watch::channel(Commits::default()).0,
            crash_after_save: std::env::var(CRASH_AFTER_SAVE).ok().filter(|a| !a.is_empty()),
        })
    }

    /// Reports failed saves here (readiness), as well as in logs, metrics and webhooks.
    pub fn with_health(mut self, h: Arc<crate::health::Health>) -> Self {
        self.health = Some(h);
        self
    }

    /// Publishes every committed pass here (`/api/v1/events`).
    pub fn with_events(mut self, events: crate::events::EventBus) -> Self {
        self.events = Some(events);
        self
    }

    /// Counts steps, gates and operation durations here.
    pub fn with_metrics(mut self, m: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(m);
        self
    }

    pub fn control(&self) -> Control {
        Control {
            inputs: self.shared.inputs.clone(),
        }
    }

    /// Follows every state the rollout goes through.
    pub fn progress(&self) -> watch::Receiver<Rollout> {
        self.progress.subscribe()
    }

    /// Follows the saves: the state being committed, and the last one committed. A
    /// restart after a crash finds one of the two in the store, exactly.
    pub fn commits(&self) -> watch::Receiver<Commits> {
        self.commits.subscribe()
    }

    /// Sends every audit entry here too (the demo prints them).
    pub fn audit_feed(&mut self) -> mpsc::UnboundedReceiver<AuditEntry> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.audit = Some(tx);
        rx
    }

    /// Runs until the rollout ends or `shutdown` resolves; returns the final state.
    pub async fn run(
        mut self,
        first: Input,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<Rollout, RuntimeError> {
        tokio::pin!(shutdown);
        let mut next = Some(first);
        loop {
            let mut batch = Vec::new();
            let mut woke = false;
            match next.take() {
                Some(i) => batch.push(i),
                None => {
                    let sleep = match self.wake {
                        Some(at) => {
                            let d = (at - self.shared.clock.now()).to_std().unwrap_or_default();
                            self.shared.clock.sleep(d)
                        }
                        None => self.shared.clock.sleep(std::time::Duration::from_secs(3600)),
                    };
                    tokio::select! {
                        i = self.rx.recv() => match i { Some(i) => batch.push(i), None => woke = true },
                        _ = sleep => { self.wake = None; woke = true },
                        _ = &mut shutdown => { info!("shutting down: no new steps; operations in flight continue in AKS"); break; }
                    }
                }
            }
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(i) => batch.push(i),
                    Err(_) => break,
                }
            }
            self.step(order_batch(batch, woke), shutdown.as_mut()).await?;
            if self.rollout.status.is_terminal() {
                break;
            }
        }
        // Let nothing we started keep running in the background, but the aborts.
        self.stop_tasks();
        for a in self.aborts.drain(..) {
            if tokio::time::timeout(ABORT_WAIT, a).await.is_err() {
                warn!("an abort call to AKS did not finish in time");
            }
        }
        // A clone: the rest of `self` drops here (see its `Drop`).
        Ok(self.rollout.clone())
    }

    /// Engine transitions for a batch of inputs, then one save, then the commands:
    /// intent before action still holds (nothing runs before the state that asked for
    /// it is durable), and a backlog costs one serialization and one commit, not one
    /// per input.
    async fn step(
        &mut self,
        batch: Vec<Input>,
        shutdown: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    ) -> Result<(), RuntimeError> {
        // Wall-clock, for the loop's cost metrics only (decisions use `now`).
        let started = std::time::Instant::now();
        let inputs = batch.len();
        let mut written = 0;
        let mut committing = 0.0;
        let now = self.shared.clock.now();
        let batch = match self.unrecorded.take() {
            Some(since) => after_outage(batch, since),
            None => batch,
        };
        let mut cmds = Vec::new();
        for input in batch {
            cmds.extend(engine::advance(&mut self.rollout, &self.settings, input, now));
        }
        let engine_secs = started.elapsed().as_secs_f64();
        let audits: Vec<AuditEntry> = cmds
            .iter()
            .filter_map(|c| match c {
                Command::Audit {
                    actor,
                    action,
                    subject,
                    reason,
                } => Some(AuditEntry {
                    at: now,
                    actor: actor.clone(),
                    action: action.clone(),
                    rollout_id: Some(self.rollout.id.clone()),
                    subject: subject.clone(),
                    reason: reason.clone(),
                    detail: serde_json::Value::Null,
                }),
                _ => None,
            })
            .collect();
        // Every transition that matters after a restart emits a command (an audit at
        // least). What emits none is bookkeeping a restart redoes or forgets on purpose:
        // a gate's running observation (health must be seen again for the whole settle
        // time), a baseline's retry time (resume takes the baseline again), timers that
        // `drive` recomputes from the state.
        // Asking for a cluster is not durable either: a restart finds the cluster
        // preparing and unclaimed, and asks again.
        let durable = cmds
            .iter()
            .any(|c| !matches!(c, Command::WakeAt { .. } | Command::Claim { .. }));
        if durable && let Some(store) = &self.shared.store {
            // The head and the clusters that changed since the last save: a transition
            // costs what it changed, not the fleet (`engine::stored`).
            let record = engine::stored::record(&self.rollout, self.saved.as_ref(), now)
                .map_err(|e| RuntimeError::Saving(e.to_string()))?;
            let claims = claims::changes(&self.rollout, self.saved.as_ref());
            written = record.state_json.len() + record.parts.iter().map(|(_, j)| j.len()).sum::<usize>();
            let store = store.clone();
            let saving = self.rollout.clone();
            // Only a recovery check follows the commits; nobody else pays for them.
            let followed = self.commits.receiver_count() > 0;
            if followed {
                self.commits.send_modify(|c| c.saving = Some(saving.clone()));
            }
            let t = std::time::Instant::now();
            self.persist(&store, record, claims, audits.clone(), shutdown).await?;
            committing = t.elapsed().as_secs_f64();
            if followed {
                self.commits.send_modify(|c| c.saved = c.saving.take());
            }
            self.saved = Some(saving);
            if let Some(action) = &self.crash_after_save
                && audits.iter().any(|a| &a.action == action)
            {
                tracing::error!(%action, "{CRASH_AFTER_SAVE}: aborting after the save, before its commands");
                std::process::abort();
            }
        }
        if let Some(m) = &self.metrics {
            count(m, &self.rollout, &audits);
            self.waits.observe(m, &audits);
        }
        if let Some(tx) = &self.audit {
            for a in &audits {
                let _ = tx.send(a.clone());
            }
        }
        self.progress.send_replace(self.rollout.clone());
        if durable && let Some(ev) = &self.events {
            ev.publish(&self.rollout, &audits);
        }
        for c in cmds {
            self.execute(c);
        }
        if let Some(m) = &self.metrics {
            loop_cost(
                m,
                started.elapsed().as_secs_f64(),
                engine_secs,
                committing,
                inputs,
                written,
            );
        }
        Ok(())
    }

    /// Saves `record` with its audit entries, retrying until it is saved or shutdown.
    ///
    /// A save that fails (disk full, I/O error) is not the end of the rollout: the state
    /// is kept in memory, nothing it asks for runs, and the save is tried again with
    /// backoff (1 s doubling to 60 s, wall clock); no input is taken meanwhile. The
    /// first failure of a run is an ERROR log, a webhook (`stateNotSaved`), a metric and
    /// a 503 from `/readyz`; the save that ends it says so the same ways. So a step is
    /// neither lost (its transition is saved before it runs) nor repeated (the state is
    /// saved once, then the commands run once).
    async fn persist(
        &mut self,
        store: &StoreWriter,
        record: RolloutRecord,
        claims: crate::store::ClaimChanges,
        entries: Vec<AuditEntry>,
        mut shutdown: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    ) -> Result<(), RuntimeError> {
        let mut backoff = SAVE_RETRY_FIRST;
        let mut record = record;
        let mut failing_since = None;
        loop {
            let (entries, claims) = (entries.clone(), claims.clone());
            let (saved, back) = store
                .run(move |s| {
                    let saved = s.save_rollout_with_claims(&record, &entries, &claims);
                    (saved, record)
                })
                .await
                .map_err(|e| RuntimeError::Saving(e.to_string()))?;
            record = back;
            let error = match saved {
                Ok(_) => {
                    self.saved_again();
                    if failing_since.is_some() {
                        self.unrecorded = failing_since;
                    }
                    return Ok(());
                }
                Err(e) => e,
            };
            let now = self.shared.clock.now();
            failing_since.get_or_insert(now);
            let message = format!("saving the state of rollout {}: {error}", self.rollout.id);
            let first = self
                .health
                .as_ref()
                .is_none_or(|h| h.persist_failed(message.clone(), now));
            if let Some(m) = &self.metrics {
                m.inc("ringmaster_store_write_failures_total", &[("error", error.label())]);
                m.set("ringmaster_store_write_failing", &[], 1.0);
            }
            if first {
                tracing::error!(rollout = %self.rollout.id, error = %error, retry_in_s = backoff.as_secs(),
                    "cannot save the rollout's state; nothing more runs until it is saved (retrying)");
                self.notifier.notify(
                    NotifyEvent::StateNotSaved,
                    None,
                    None,
                    &format!("{message}. The rollout waits and retries; free space on the state volume."),
                );
            } else {
                warn!(rollout = %self.rollout.id, error = %error, retry_in_s = backoff.as_secs(), "still cannot save the rollout's state");
            }
            tokio::select! {
                _ = self.shared.clock.sleep_wall(backoff) => {}
                _ = &mut shutdown => {
                    return Err(RuntimeError::Saving(format!(
                        "stopped before the state could be saved (the last saved state resumes at the next start): {error}"
                    )));
                }
            }
            backoff = (backoff * 2).min(SAVE_RETRY_MAX);
        }
    }

    /// After a successful save: ends a run of failures, if there was one.
    fn saved_again(&self) {
        let Some(ended) = self.health.as_ref().and_then(|h| h.persisted()) else {
            if let Some(m) = &self.metrics {
                m.set("ringmaster_store_write_failing", &[], 0.0);
            }
            return;
        };
        if let Some(m) = &self.metrics {
            m.set("ringmaster_store_write_failing", &[], 0.0);
        }
        info!(rollout = %self.rollout.id, attempts = ended.attempts, since = %ended.since, "the rollout's state is saved again; going on");
        self.notifier.notify(
            NotifyEvent::StateSaved,
            None,
            None,
            &format!(
                "the state of rollout {} is saved again after {} failed attempts since {}; the rollout goes on",
                self.rollout.id, ended.attempts, ended.since
            ),
        );
    }

    /// Cancels the gates and the executor's tasks (not the calls to AKS's abort).
    fn stop_tasks(&mut self) {
        for (_, g) in self.gates.drain() {
            g.abort();
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }

    fn execute(&mut self, cmd: Command) {
        let sh = self.shared.clone();
        match cmd {
            Command::Audit { .. } => {}
            Command::WakeAt { at } => self.wake = Some(self.wake.map_or(at, |w| w.min(at))),
            Command::Notify {
                event,
                ring,
                cluster,
                message,
            } => self.notifier.notify(event, ring.as_deref(), cluster.as_ref(), &message),
            Command::StopGate { step } => {
                if let Some(h) = self.gates.remove(&step) {
                    h.abort();
                }
            }
            Command::StopWatch { cluster } => {
                sh.watches.lock().unwrap_or_else(|e| e.into_inner()).remove(&cluster);
                // A finished cluster is no wave-mate's concern any more (preflight counts
                // active clusters only): without this, the cache held every cluster's
                // facts to the end of a 5,000-cluster rollout.
                sh.preflight_cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&cluster);
            }
            Command::Gate { step, cluster, kind } => {
                let baseline = self.rollout.cluster(step.cluster_ref()).baseline.clone();
                if let Some(h) = self
                    .gates
                    .insert(step, tokio::spawn(exec::gate(sh, step, cluster, kind, baseline)))
                {
                    h.abort();
                }
            }
            abort @ Command::AbortOperation { .. } => {
                self.aborts.retain(|t| !t.is_finished());
                self.aborts.push(tokio::spawn(exec::run(sh, abort)));
            }
            other => {
                self.tasks.retain(|t| !t.is_finished());
                self.tasks.push(tokio::spawn(exec::run(sh, other)));
            }
        }
    }
}

/// A runtime dropped without finishing `run` (its task cancelled, or a test's simulated
/// crash) takes its tasks with it, as a killed process would: no gate, watch or call
/// of a gone daemon may go on acting beside the one that resumes the rollout.
impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_tasks();
        for a in self.aborts.drain(..) {
            a.abort();
        }
        self.shared.watches.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// First wait before saving again after a failed save; it doubles up to the max.
const SAVE_RETRY_FIRST: std::time::Duration = std::time::Duration::from_secs(1);
const SAVE_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(60);

/// How long (wall clock) the end of a rollout waits for its abort calls to AKS.
const ABORT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// At most this many queued inputs go into one save (bounds the time between saves).
const MAX_BATCH: usize = 512;

/// Orders a batch: gate observations first, only the latest per step; then the other
/// inputs as they came; then one tick if time woke the loop or a tick was queued.
///
/// Every `advance` drives the whole rollout at `now`, so what the watches already saw
/// must be known before anything is decided: a tick (or any input) taken before a
/// queued observation could pass a gate on health that has since gone, or time one out
/// on health the watches had already seen. Only the latest observation per step
/// counts: an older healthy one, applied first, would pass a gate at once (health is
/// counted from its watch time) before the newer unhealthy one is seen.
fn order_batch(batch: Vec<Input>, woke: bool) -> Vec<Input> {
    let ticks = woke || batch.iter().any(|i| matches!(i, Input::Tick));
    let latest: std::collections::HashMap<engine::StepRef, usize> = batch
        .iter()
        .enumerate()
        .filter_map(|(i, x)| match x {
            Input::GateObserved { step, .. } => Some((*step, i)),
            _ => None,
        })
        .collect();
    let (mut observed, mut rest) = (Vec::new(), Vec::new());
    for (i, x) in batch.into_iter().enumerate() {
        match &x {
            Input::Tick => {}
            Input::GateObserved { step, .. } if latest.get(step) == Some(&i) => observed.push(x),
            Input::GateObserved { .. } => {}
            _ => rest.push(x),
        }
    }
    observed.append(&mut rest);
    if ticks || observed.is_empty() {
        observed.push(Input::Tick);
    }
    observed
}

/// The first pass after saves failed: [`Input::Unrecorded`] first, and none of the
/// gate observations queued meanwhile (the gates are asked for fresh ones; an old
/// healthy one must not start a settle time).
fn after_outage(batch: Vec<Input>, since: DateTime<Utc>) -> Vec<Input> {
    std::iter::once(Input::Unrecorded { since })
        .chain(batch.into_iter().filter(|i| !matches!(i, Input::GateObserved { .. })))
        .collect()
}

/// Logs a failure of the loop's channel (the runtime is gone).
pub(crate) fn send(sh: &Shared, input: Input) {
    if sh.inputs.send(input).is_err() {
        warn!("the rollout loop is gone; dropping an observation");
    }
}

/// What one pass of the loop cost: wall-clock seconds (engine, save, publishing,
/// dispatch), of which the engine's transitions and waiting for the commit (the WAL's
/// fsync), inputs taken, state bytes written.
fn loop_cost(m: &crate::metrics::Metrics, secs: f64, engine: f64, committing: f64, inputs: usize, written: usize) {
    m.observe("ringmaster_loop_seconds", &[], secs);
    m.observe("ringmaster_loop_engine_seconds", &[], engine);
    if secs > m.get("ringmaster_loop_seconds_max", &[]) {
        m.set("ringmaster_loop_seconds_max", &[], secs);
    }
    m.add("ringmaster_loop_inputs_total", &[], inputs as f64);
    if written > 0 {
        m.observe("ringmaster_state_commit_seconds", &[], committing);
        m.inc("ringmaster_state_saves_total", &[]);
        m.add("ringmaster_state_written_bytes_total", &[], written as f64);
    }
}

/// The cluster an audit subject names (`ring/cluster...`): a scan of its ring only.
fn cluster_named<'a>(r: &'a Rollout, subject: &str) -> Option<&'a engine::ClusterRun> {
    let (ring, rest) = subject.split_once('/')?;
    let name = rest.split(' ').next()?;
    r.rings
        .iter()
        .find(|x| x.name == ring)?
        .waves
        .iter()
        .flat_map(|w| &w.clusters)
        .find(|c| c.id.name == name)
        .map(|c| &**c)
}

/// The step a step subject names (`ring/cluster step N: ...`).
fn step_named<'a>(r: &'a Rollout, subject: &str) -> Option<&'a engine::StepRun> {
    let n: usize = subject.split_once(" step ")?.1.split(':').next()?.trim().parse().ok()?;
    cluster_named(r, subject)?.steps.get(n.checked_sub(1)?)
}

/// Seconds from `t` to `a`'s time (0 if `t` is later).
fn secs_since(t: DateTime<Utc>, a: &AuditEntry) -> f64 {
    ((a.at - t).num_milliseconds() as f64 / 1000.0).max(0.0)
}

/// A step ended (its gate passed or failed, or its operation failed): its duration from
/// its start, by kind. A step that never started (failed at its first call) has none.
fn step_ended(m: &crate::metrics::Metrics, r: &Rollout, a: &AuditEntry) {
    if let Some(s) = step_named(r, &a.subject)
        && let Some(t) = s.started_at
    {
        m.observe(
            "ringmaster_step_duration_seconds",
            &[("kind", s.kind.name())],
            secs_since(t, a),
        );
    }
}

/// Metrics from the transitions just made.
fn count(m: &crate::metrics::Metrics, r: &Rollout, audits: &[AuditEntry]) {
    for a in audits {
        match a.action.as_str() {
            "step.started" => m.inc("ringmaster_steps_total", &[("result", "started")]),
            "gate.passed" => {
                m.inc("ringmaster_steps_total", &[("result", "succeeded")]);
                m.inc("ringmaster_gate_evaluations_total", &[("result", "passed")]);
                step_ended(m, r, a);
            }
            "gate.failed" => {
                m.inc("ringmaster_gate_evaluations_total", &[("result", "failed")]);
                step_ended(m, r, a);
            }
            "step.failed" => {
                m.inc("ringmaster_steps_total", &[("result", "failed")]);
                step_ended(m, r, a);
            }
            "cluster.rolling_back" => m.inc("ringmaster_rollbacks_total", &[("result", "started")]),
            "cluster.rolled_back" => m.inc("ringmaster_rollbacks_total", &[("result", "rolledBack")]),
            "cluster.rollback_failed" => m.inc("ringmaster_rollbacks_total", &[("result", "failed")]),
            "cluster.preflight_passed" | "cluster.preflight_blocked" => {
                let result = if a.action.ends_with("passed") {
                    "passed"
                } else {
                    "blocked"
                };
                m.inc("ringmaster_preflight_runs_total", &[("result", result)]);
                let record = cluster_named(r, &a.subject).and_then(|c| c.preflight.as_ref());
                for f in record.map(|p| p.findings.as_slice()).unwrap_or_default() {
                    m.inc(
                        "ringmaster_preflight_findings_total",
                        &[("check", f.check.label()), ("severity", f.severity.label())],
                    );
                }
            }
            "step.operation_done" => {
                // Operation time: from the step's start to now, for the step named.
                if let Some(t) = step_named(r, &a.subject).and_then(|s| s.started_at) {
                    m.observe("ringmaster_operation_seconds", &[], secs_since(t, a));
                }
            }
            _ => {}
        }
    }
}

/// One terminal line for an audit entry worth showing a person (None for the rest).
pub fn audit_line(a: &AuditEntry) -> Option<String> {
    const SHOWN: &[&str] = &[
        "ring.started",
        "ring.done",
        "ring.passed",
        "ring.awaiting_approval",
        "ring.approved",
        "ring.rejected",
        "step.started",
        "gate.passed",
        "gate.failed",
        "cluster.done",
        "cluster.failed",
        "cluster.skipped",
        "cluster.preflight_blocked",
        "cluster.rolling_back",
        "cluster.rolled_back",
        "cluster.rollback_failed",
        "rollout.succeeded",
        "rollout.halted",
        "rollout.aborted",
        "rollout.resumed",
        "step.retry",
        "step.failed",
        "paused",
        "resumed",
    ];
    if !SHOWN.contains(&a.action.as_str()) {
        return None;
    }
    let who = if a.actor == "ringmaster" {
        String::new()
    } else {
        format!(" (by {})", a.actor)
    };
    let reason: String = if a.reason.is_empty() {
        String::new()
    } else if a.reason.chars().count() > 90 {
        format!(" — {}…", a.reason.chars().take(89).collect::<String>())
    } else {
        format!(" — {}", a.reason)
    };
    Some(format!(
        "[{}] {:<22} {}{who}{reason}",
        a.at.format("%H:%M"),
        a.action,
        a.subject
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::StepRef;

    fn observed(step: usize, healthy: bool) -> Input {
        Input::GateObserved {
            step: StepRef {
                ring: 0,
                wave: 0,
                cluster: 0,
                step,
            },
            healthy,
            reasons: vec![],
            at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn pause() -> Input {
        Input::Pause {
            scope: engine::Scope::Rollout,
            by: "alice".into(),
            reason: String::new(),
        }
    }

    #[test]
    fn observations_go_first_only_the_latest_per_step_and_ticks_last() {
        let b = order_batch(
            vec![
                pause(),
                observed(1, true),
                Input::Tick,
                observed(2, true),
                observed(1, false),
            ],
            false,
        );
        assert_eq!(b, vec![observed(2, true), observed(1, false), pause(), Input::Tick]);
        assert_eq!(order_batch(vec![observed(1, true)], false), vec![observed(1, true)]);
        assert_eq!(
            order_batch(vec![observed(1, false)], true),
            vec![observed(1, false), Input::Tick]
        );
        assert_eq!(order_batch(vec![], true), vec![Input::Tick]);
    }
}
