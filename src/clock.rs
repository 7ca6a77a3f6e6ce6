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
    /// Waits `d` as a server means it (`Retry-After`): wall-clock time. Only a clock
    /// that runs faster than the wall differs; it must not scale the server's wait a
    /// second time (a simulator on a scaled clock already converted it to wall time).
    fn sleep_wall(&self, d: Duration) -> BoxFuture<'static, ()> {
        self.sleep(d)
    }
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

/// Time that runs `scale` times faster than the wall clock from `base`: the daemon's
/// clock when it rehearses against a `ringmaster sim` started with `--time-scale`, so
/// policy soaks and settle times are simulated minutes, in step with the simulator.
#[derive(Debug, Clone)]
pub struct ScaledClock {
    base: DateTime<Utc>,
    /// tokio's Instant: std's in production, virtual under a paused tokio clock (the
    /// simulation campaign runs the real runtime that way, without waiting).
    started: tokio::time::Instant,
    scale: f64,
}

impl ScaledClock {
    pub fn new(base: DateTime<Utc>, scale: f64) -> Self {
        Self {
            base,
            started: tokio::time::Instant::now(),
            scale: scale.max(0.001),
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.started.elapsed().mul_f64(self.scale);
        self.base + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }

    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d.div_f64(self.scale)))
    }

    fn sleep_wall(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// ringmaster's clock on a simulator's manual clock: sleeping moves simulated time
/// forward at once, so a client that honours `Retry-After` or backs off runs in step with
/// the simulator without any wall-clock wait. For single-flow tests: two tasks sleeping
/// at once both advance the clock.
impl Clock for crate::sim::shared::ManualSimClock {
    fn now(&self) -> DateTime<Utc> {
        crate::sim::shared::ManualSimClock::now(self)
    }

    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        self.advance(d);
        Box::pin(tokio::task::yield_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server's `Retry-After` is wall time already: a rehearsal clock running 300x
    /// must wait it as is, while its own waits (soaks, backoff) are scaled down.
    #[tokio::test(start_paused = true)]
    async fn scaled_clock_does_not_scale_a_servers_wait_again() {
        let c = ScaledClock::new(Utc::now(), 300.0);
        let t0 = tokio::time::Instant::now();
        c.sleep(Duration::from_secs(30)).await;
        assert_eq!(t0.elapsed(), Duration::from_millis(100));
        let t2 = tokio::time::Instant::now();
        c.sleep_wall(Duration::from_millis(40)).await;
        assert_eq!(t2.elapsed(), Duration::from_millis(40));
    }
}
