//! The runtime's metrics: what each pass of the loop cost, and the counts and durations
//! read from the audit entries a pass produced (steps, gates, rollbacks, preflight,
//! operation times). Apart because it only reads what the loop did.

use crate::engine::{self, Rollout};
use crate::store::AuditEntry;
use chrono::{DateTime, Utc};

/// What one pass of the loop cost: wall-clock seconds (engine, save, publishing,
/// dispatch), of which the engine's transitions and waiting for the commit (the WAL's
/// fsync), inputs taken, state bytes written.
pub(super) fn loop_cost(
    m: &crate::metrics::Metrics,
    secs: f64,
    engine: f64,
    committing: f64,
    inputs: usize,
    written: usize,
) {
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
pub(super) fn count(m: &crate::metrics::Metrics, r: &Rollout, audits: &[AuditEntry]) {
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
