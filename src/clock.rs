//! Time, injected. Everything in ringmaster that waits or reads the time does it
//! through [`Clock`], so a test can run a whole rollout on the simulator's virtual
//! clock without sleeping, and the daemon runs on the wall clock.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::time::Duration;

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// Waits `d` (on this clock).
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()>;
}

/// The wall clock and tokio's timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}
