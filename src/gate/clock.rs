//! The gate's time logic, apart from what it judges: pass when the verdict has been
//! healthy *continuously* for the settle time, fail at the timeout counted from the
//! gate's start. Pure: `now` comes from the caller (the engine, which has it from the
//! observation), so a whole gate replays in a test.
//!
//! The engine calls [`GateClock::observe`] on every watch change (the verdict may have
//! changed) and at the `until` of the [`GateState::Waiting`] it last got (the settle may
//! have ended or the timeout come while nothing changed). Between two calls the verdict
//! is taken to be what the earlier call said, which holds because every change calls.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Where a gate stands after an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum GateState {
    /// Healthy for the whole settle time, no later than the timeout.
    Passed,
    /// Observe again at `until` if nothing changes before: the end of the settle time
    /// when healthy, else the timeout.
    Waiting { until: DateTime<Utc> },
    /// Not healthy-and-settled by the timeout: the cluster failed its gate.
    TimedOut,
}

/// One gate's timer. Serializable: it is part of the persisted run, so a restarted daemon
/// keeps the gate's start (the timeout does not restart with the process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateClock {
    /// When the gate started (the step finished); the timeout counts from here.
    pub first_eval: DateTime<Utc>,
    /// Since when every observation was healthy; `None` after a blocked one.
    pub passing_since: Option<DateTime<Utc>>,
    pub settle: Duration,
    pub timeout: Duration,
}

fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl GateClock {
    /// A gate starting at `now`.
    pub fn start(now: DateTime<Utc>, settle: Duration, timeout: Duration) -> GateClock {
        GateClock {
            first_eval: now,
            passing_since: None,
            settle,
            timeout,
        }
    }

    /// A gate starting at `now` with the policy's settle and timeout.
    pub fn for_spec(now: DateTime<Utc>, spec: &super::GateSpec) -> GateClock {
        GateClock::start(now, spec.pod_readiness.settle, spec.pod_readiness.timeout)
    }

    /// When the gate times out.
    pub fn deadline(&self) -> DateTime<Utc> {
        plus(self.first_eval, self.timeout)
    }

    /// Records the verdict seen at `now` and says where the gate stands.
    ///
    /// Boundaries: healthy since `t` passes at `t + settle` exactly; the gate times out
    /// at `first_eval + timeout` exactly, unless the settle ended at or before it (a late
    /// observation of a gate that had settled in time still passes). Once the timeout has
    /// gone by, no later health can pass: a settle starting after it ends after it.
    pub fn observe(&mut self, verdict_ok: bool, now: DateTime<Utc>) -> GateState {
        let deadline = self.deadline();
        if verdict_ok {
            let since = *self.passing_since.get_or_insert(now);
            let settled = plus(since, self.settle);
            if settled <= now && settled <= deadline {
                return GateState::Passed;
            }
            if now >= deadline {
                return GateState::TimedOut;
            }
            GateState::Waiting {
                until: settled.min(deadline),
            }
        } else {
            self.passing_since = None;
            if now >= deadline {
                GateState::TimedOut
            } else {
                GateState::Waiting { until: deadline }
            }
        }
    }
}
