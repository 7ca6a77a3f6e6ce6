//! What `/healthz` and `/readyz` answer, and who tells them.
//!
//! - **Liveness** (`/healthz`): the process answers HTTP. It never looks at the state
//!   store: restarting the process mends neither a full disk nor a damaged file, and a
//!   kubelet that kills a daemon for them only loses the in-memory state and the retry.
//! - **Readiness** (`/readyz`): the daemon can do its job, i.e. record what it does. It
//!   is 503 with the reason while the rollout loop cannot persist (disk full, I/O error)
//!   and until the next save succeeds, and when the store does not answer.
//!
//! The runtime reports here; the API reads. Changes are also a metric
//! (`ringmaster_store_write_failing`, `ringmaster_store_write_failures_total`).

use std::sync::Mutex;

/// Shared between the runtime (which writes) and the API (which reads).
#[derive(Debug, Default)]
pub struct Health {
    failing: Mutex<Option<Failure>>,
}

/// Why the daemon is not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Stable, for scripts: `persist_failed`.
    pub code: &'static str,
    pub message: String,
    pub since: chrono::DateTime<chrono::Utc>,
    /// Failed attempts so far.
    pub attempts: u32,
}

impl Health {
    /// Records a failed save; returns true when this is the first of a run of failures
    /// (the caller logs and notifies once, not on every retry).
    pub fn persist_failed(&self, message: String, now: chrono::DateTime<chrono::Utc>) -> bool {
        let mut f = self.failing.lock().unwrap_or_else(|e| e.into_inner());
        match f.as_mut() {
            Some(f) => {
                f.attempts += 1;
                f.message = message;
                false
            }
            None => {
                *f = Some(Failure {
                    code: "persist_failed",
                    message,
                    since: now,
                    attempts: 1,
                });
                true
            }
        }
    }

    /// A save succeeded; returns the failure it ends, if there was one.
    pub fn persisted(&self) -> Option<Failure> {
        self.failing.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The current failure, `None` when ready.
    pub fn failure(&self) -> Option<Failure> {
        self.failing.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
