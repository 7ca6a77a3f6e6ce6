//! The daemon loop: feeds the pure engine with what the executor observes, persists
//! every new state (with its audit entries, in one transaction) before any command it
//! produced runs, then runs the commands. Time comes from the injected [`Clock`].
//!
//! This file holds the runtime's types and how one is built; the loop itself is in
//! `looping`, saving in `persist`, the order of a batch in `batch`, metrics in
//! `count` and the terminal line of an audit entry in `lines`.

mod batch;
pub mod claims;
mod count;
mod exec;
mod lines;
mod looping;
mod persist;
mod preflight;
mod waits;

pub use lines::audit_line;

use crate::arm::AksClient;
use crate::clock::Clock;
use crate::domain::fleet::ClusterId;
use crate::engine::{self, Input, NotifyEvent, Rollout, Settings};
use crate::identity::TokenSource;
use crate::kube::ClusterWatch;
use crate::policy::Policy;
use crate::store::{AuditEntry, Store, StoreWriter};
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
}

/// Logs a failure of the loop's channel (the runtime is gone).
pub(crate) fn send(sh: &Shared, input: Input) {
    if sh.inputs.send(input).is_err() {
        warn!("the rollout loop is gone; dropping an observation");
    }
}
