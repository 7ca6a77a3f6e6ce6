//! The simulator's clock. Simulated time is milliseconds since the Unix epoch; it
//! either follows the wall clock multiplied by `--time-scale`, or moves only when
//! told to (`Manual`, for tests: no test ever sleeps to let simulated time pass).

use chrono::{DateTime, Utc};
use std::sync::Mutex;
use std::time::Duration;
// tokio's Instant is std's in production; under a paused tokio clock (the simulation
// campaign) simulated time then follows tokio's virtual time, with no wall-clock wait.
use tokio::time::Instant;

/// A point in simulated time (ms since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimTime(pub i64);

impl SimTime {
    pub fn from_datetime(t: DateTime<Utc>) -> Self {
        SimTime(t.timestamp_millis())
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0).unwrap_or_default()
    }

    /// RFC 3339 with a `Z`, as ARM and Kubernetes write times.
    pub fn rfc3339(self) -> String {
        self.to_datetime().format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    pub fn rfc3339_millis(self) -> String {
        self.to_datetime().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }

    /// Saturates instead of overflowing: a fleet file's longest duration is bounded, but
    /// a sum of them must not panic the simulator either.
    pub fn plus(self, d: Duration) -> SimTime {
        SimTime(self.0.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    pub fn since(self, earlier: SimTime) -> Duration {
        Duration::from_millis((self.0 - earlier.0).max(0) as u64)
    }
}

impl serde::Serialize for SimTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339_millis())
    }
}

#[derive(Debug)]
enum Mode {
    Scaled { real_start: Instant, scale: f64 },
    Manual { offset: Mutex<Duration> },
}

/// Simulated time source shared by every part of the simulator.
#[derive(Debug)]
pub struct SimClock {
    start: SimTime,
    mode: Mode,
}

impl SimClock {
    /// Simulated time runs `scale` times faster than the wall clock.
    pub fn scaled(start: SimTime, scale: f64) -> Self {
        Self {
            start,
            mode: Mode::Scaled {
                real_start: Instant::now(),
                scale: scale.max(0.001),
            },
        }
    }

    /// Simulated time moves only through [`SimClock::advance`].
    pub fn manual(start: SimTime) -> Self {
        Self {
            start,
            mode: Mode::Manual {
                offset: Mutex::new(Duration::ZERO),
            },
        }
    }

    pub fn start(&self) -> SimTime {
        self.start
    }

    pub fn now(&self) -> SimTime {
        match &self.mode {
            Mode::Scaled { real_start, scale } => self.start.plus(real_start.elapsed().mul_f64(*scale)),
            Mode::Manual { offset } => self.start.plus(*offset.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }

    pub fn is_manual(&self) -> bool {
        matches!(self.mode, Mode::Manual { .. })
    }

    /// Moves a manual clock forward (no effect on a scaled clock).
    pub fn advance(&self, by: Duration) {
        if let Mode::Manual { offset } = &self.mode {
            *offset.lock().unwrap_or_else(|e| e.into_inner()) += by;
        }
    }

    /// Simulated seconds per wall-clock second (None for a manual clock).
    pub fn scale(&self) -> Option<f64> {
        match &self.mode {
            Mode::Scaled { scale, .. } => Some(*scale),
            Mode::Manual { .. } => None,
        }
    }

    /// How long a client should wait in wall-clock time for `sim` to pass.
    pub fn to_real(&self, sim: Duration) -> Duration {
        match &self.mode {
            Mode::Scaled { scale, .. } => sim.div_f64(*scale),
            Mode::Manual { .. } => sim,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = SimClock::manual(SimTime(1_000));
        assert_eq!(c.now(), SimTime(1_000));
        c.advance(Duration::from_secs(2));
        assert_eq!(c.now(), SimTime(3_000));
        assert_eq!(SimTime(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(SimTime(i64::MAX - 1).plus(Duration::from_secs(1)), SimTime(i64::MAX));
    }
}
