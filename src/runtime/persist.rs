//! Saving the rollout's state: `persist` retries a failed save with backoff until it
//! is saved (or the daemon stops), and says when saves fail and when they work again.
//! Apart because a failing disk is its own story (health, metrics, webhooks) beside the
//! loop that only waits for the save.

use super::{Runtime, RuntimeError};
use crate::engine::NotifyEvent;
use crate::store::{AuditEntry, RolloutRecord, StoreWriter};
use tracing::{info, warn};

/// First wait before saving again after a failed save; it doubles up to the max.
const SAVE_RETRY_FIRST: std::time::Duration = std::time::Duration::from_secs(1);
const SAVE_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(60);

impl Runtime {
    /// Saves `record` with its audit entries, retrying until it is saved or shutdown.
    ///
    /// A save that fails (disk full, I/O error) is not the end of the rollout: the state
    /// is kept in memory, nothing it asks for runs, and the save is tried again with
    /// backoff (1 s doubling to 60 s, wall clock); no input is taken meanwhile. The
    /// first failure of a run is an ERROR log, a webhook (`stateNotSaved`), a metric and
    /// a 503 from `/readyz`; the save that ends it says so the same ways. So a step is
    /// neither lost (its transition is saved before it runs) nor repeated (the state is
    /// saved once, then the commands run once).
    pub(super) async fn persist(
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
}
