//! The settle/timeout clock: sequences of observations and the state after each.

use super::*;
use chrono::TimeDelta;

fn at(secs: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(secs)
}

fn waiting(secs: i64) -> GateState {
    GateState::Waiting { until: at(secs) }
}

/// Runs observations `(seconds after start, healthy, expected state)` on a gate with a
/// 60 s settle and a 900 s timeout.
fn replay(name: &str, settle: u64, steps: &[(i64, bool, GateState)]) {
    let mut c = GateClock::start(t0(), Duration::from_secs(settle), Duration::from_secs(900));
    for (i, (secs, ok, want)) in steps.iter().enumerate() {
        assert_eq!(
            c.observe(*ok, at(*secs)),
            *want,
            "{name}, step {i} (t+{secs}s, ok {ok})"
        );
    }
}

#[test]
fn settle_and_timeout_sequences() {
    use GateState::{Passed, TimedOut};
    replay(
        "healthy from the start passes at exactly the settle end",
        60,
        &[(0, true, waiting(60)), (59, true, waiting(60)), (60, true, Passed)],
    );
    replay(
        "a blocked verdict resets the settle",
        60,
        &[
            (0, true, waiting(60)),
            (30, false, waiting(900)),
            (40, true, waiting(100)),
            (60, true, waiting(100)),
            (99, true, waiting(100)),
            (100, true, Passed),
        ],
    );
    replay(
        "flapping never settles and times out at exactly the deadline",
        60,
        &[
            (0, true, waiting(60)),
            (50, false, waiting(900)),
            (100, true, waiting(160)),
            (150, false, waiting(900)),
            (899, false, waiting(900)),
            (900, false, TimedOut),
        ],
    );
    replay(
        "settle ending exactly at the deadline passes",
        60,
        &[(0, false, waiting(900)), (840, true, waiting(900)), (900, true, Passed)],
    );
    replay(
        "settle ending after the deadline times out",
        60,
        &[
            (0, false, waiting(900)),
            (850, true, waiting(900)),
            (900, true, TimedOut),
        ],
    );
    replay(
        "a late observation of a gate that settled in time passes",
        60,
        &[(10, true, waiting(70)), (2000, true, Passed)],
    );
    replay(
        "after the timeout nothing passes",
        60,
        &[(0, false, waiting(900)), (901, true, TimedOut), (2000, true, TimedOut)],
    );
    replay(
        "no settle: the first healthy verdict passes",
        0,
        &[(0, false, waiting(900)), (5, true, Passed)],
    );
}

#[test]
fn clock_from_spec_and_persisted() {
    let mut s = spec();
    s.pod_readiness.settle = Duration::from_secs(120);
    s.pod_readiness.timeout = Duration::from_secs(1200);
    let mut c = GateClock::for_spec(t0(), &s);
    assert_eq!(c.deadline(), at(1200));
    assert_eq!(c.observe(true, at(5)), waiting(125));
    let json = serde_json::to_string(&c).unwrap();
    let mut back: GateClock = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.observe(true, at(125)), GateState::Passed);
    assert_eq!(
        serde_json::to_value(waiting(125)).unwrap(),
        serde_json::json!({ "state": "waiting", "until": "2026-03-02T10:02:05Z" })
    );
}

#[test]
fn huge_durations_do_not_overflow() {
    let mut c = GateClock::start(t0(), Duration::from_secs(60), Duration::MAX);
    assert_eq!(c.deadline(), DateTime::<Utc>::MAX_UTC);
    assert_eq!(
        c.observe(false, at(10)),
        GateState::Waiting {
            until: DateTime::<Utc>::MAX_UTC
        }
    );
}
