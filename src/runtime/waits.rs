//! How long gates and approvals kept the rollout waiting, for the histograms
//! `ringmaster_gate_wait_seconds{result}` and `ringmaster_approval_wait_seconds{ring}`.
//!
//! The state forgets when a wait began as soon as it ends: a passed gate's step becomes
//! `Soaking` or `Done`, an approved ring `Running`, and `Gating { since }` or
//! `AwaitingApproval { since }` are gone by the time the runtime sees the verdict. So
//! the runtime remembers the start from the audit entry that began the wait
//! (`step.operation_done`, `ring.awaiting_approval`), and observes at the verdict.
//!
//! A restart keeps approvals (a ring still waiting says since when) but not gates: a
//! resumed gate starts over (see `engine::drive`), and a wait half seen is not measured.

use crate::engine::{RingStatus, Rollout};
use crate::metrics::Metrics;
use crate::store::AuditEntry;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Starts of the waits in progress: at most one per gating step and one per ring.
#[derive(Debug, Default)]
pub(crate) struct Waits {
    /// Step subject (`ring/cluster step N: ...`) -> when its operation ended.
    gates: HashMap<String, DateTime<Utc>>,
    /// Ring -> when it asked for approval.
    approvals: HashMap<String, DateTime<Utc>>,
}

impl Waits {
    /// For a runtime starting on `r`: the rings already waiting for an approval.
    pub fn of(r: &Rollout) -> Waits {
        let approvals = r
            .rings
            .iter()
            .filter_map(|ring| match ring.status {
                RingStatus::AwaitingApproval { since } => Some((ring.name.clone(), since)),
                _ => None,
            })
            .collect();
        Waits {
            gates: HashMap::new(),
            approvals,
        }
    }

    /// Notes the waits `audits` begin and observes the ones they end.
    pub fn observe(&mut self, m: &Metrics, audits: &[AuditEntry]) {
        for a in audits {
            match a.action.as_str() {
                "step.operation_done" => {
                    self.gates.insert(a.subject.clone(), a.at);
                }
                "gate.passed" | "gate.failed" => {
                    let result = if a.action == "gate.passed" { "passed" } else { "failed" };
                    if let Some(since) = self.gates.remove(&a.subject) {
                        m.observe(GATE_WAIT, &[("result", result)], secs(since, a.at));
                    }
                }
                // A gate that ends without a verdict (its cluster skipped) is forgotten
                // when its cluster ends. The subject is `ring/cluster`, or the cluster's
                // name alone for a skip.
                "cluster.done" | "cluster.failed" | "cluster.skipped" | "cluster.rolled_back" => {
                    let of_cluster = if a.subject.contains('/') {
                        format!("{} step ", a.subject)
                    } else {
                        format!("/{} step ", a.subject)
                    };
                    self.gates.retain(|s, _| !s.contains(&of_cluster));
                }
                "ring.awaiting_approval" => {
                    self.approvals.insert(a.subject.clone(), a.at);
                }
                "ring.approved" => {
                    if let Some(since) = self.approvals.remove(&a.subject) {
                        m.observe(APPROVAL_WAIT, &[("ring", &a.subject)], secs(since, a.at));
                    }
                }
                "ring.rejected" => {
                    self.approvals.remove(&a.subject);
                }
                _ => {}
            }
        }
    }
}

pub(crate) const GATE_WAIT: &str = "ringmaster_gate_wait_seconds";
pub(crate) const APPROVAL_WAIT: &str = "ringmaster_approval_wait_seconds";

fn secs(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    ((to - from).num_milliseconds() as f64 / 1000.0).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str, subject: &str, at: DateTime<Utc>) -> AuditEntry {
        AuditEntry {
            at,
            actor: "ringmaster".into(),
            action: action.into(),
            rollout_id: None,
            subject: subject.into(),
            reason: String::new(),
            detail: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_gate_and_an_approval_are_timed_from_their_start_to_their_verdict() {
        let m = Metrics::default();
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let min = |n: i64| t0 + chrono::Duration::minutes(n);
        let step = "dev/c1 step 1: control plane 1.32 -> 1.33";
        let mut w = Waits::default();
        w.observe(&m, &[entry("step.operation_done", step, t0)]);
        w.observe(&m, &[entry("ring.awaiting_approval", "prod", min(1))]);
        w.observe(&m, &[entry("gate.passed", step, min(4))]);
        // A verdict on a gate that began before this process: not measured.
        w.observe(&m, &[entry("gate.failed", "dev/c2 step 1: x", min(5))]);
        w.observe(&m, &[entry("ring.approved", "prod", min(61))]);
        let sum = |n: &str, l: &[(&str, &str)]| m.get(n, l);
        assert_eq!(sum("ringmaster_gate_wait_seconds_sum", &[("result", "passed")]), 240.0);
        assert_eq!(sum("ringmaster_gate_wait_seconds_count", &[("result", "failed")]), 0.0);
        assert_eq!(sum("ringmaster_approval_wait_seconds_sum", &[("ring", "prod")]), 3600.0);
        assert!(w.gates.is_empty() && w.approvals.is_empty());
    }

    #[test]
    fn a_gate_without_verdict_is_forgotten_with_its_cluster() {
        let m = Metrics::default();
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let mut w = Waits::default();
        w.observe(&m, &[entry("step.operation_done", "dev/c1 step 2: pool a", t0)]);
        w.observe(&m, &[entry("step.operation_done", "dev/c10 step 1: pool a", t0)]);
        w.observe(&m, &[entry("cluster.skipped", "c1", t0)]);
        assert_eq!(w.gates.keys().collect::<Vec<_>>(), ["dev/c10 step 1: pool a"]);
    }
}
