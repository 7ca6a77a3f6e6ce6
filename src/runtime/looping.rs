//! The loop of a running rollout: `run` takes inputs in batches, `step` advances the
//! engine over a batch, saves the new state once and then runs the commands it
//! produced (`execute`); and what stops the loop's tasks when it ends or is dropped.
//! Apart from `mod.rs` (the runtime's types and how one is built) because this is the
//! part that orders intent before action.

use super::batch::{MAX_BATCH, after_outage, order_batch};
use super::count::{count, loop_cost};
use super::{CRASH_AFTER_SAVE, Runtime, RuntimeError, claims, exec};
use crate::engine::{self, Command, Input, Rollout};
use crate::store::AuditEntry;
use tracing::{info, warn};

/// How long (wall clock) the end of a rollout waits for its abort calls to AKS.
const ABORT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Runtime {
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
