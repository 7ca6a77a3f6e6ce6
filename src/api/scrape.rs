//! Gauges computed when `/metrics` is scraped, from the active rollout's state: they
//! describe "now", so they are read at the scrape instead of kept up to date by the
//! loop (a count of 5,000 clusters per scrape, none per transition).

use crate::engine::{ClusterStatus, RingStatus, Rollout};
use crate::metrics::Metrics;
use chrono::{DateTime, Utc};

pub const CLUSTERS: &str = "ringmaster_clusters";
pub const APPROVAL_WAITING: &str = "ringmaster_approval_waiting_seconds";
pub const READY: &str = "ringmaster_ready";
pub const BUILD_INFO: &str = "ringmaster_build_info";

pub fn describe(m: &Metrics) {
    m.describe(
        CLUSTERS,
        "gauge",
        "Clusters of the active rollout by ring and state (pending, preparing, running, done, failed, skipped, rolledBack); none without one.",
    );
    m.describe(
        APPROVAL_WAITING,
        "gauge",
        "Seconds each ring of each active rollout has been waiting for its approval (0: not waiting).",
    );
    m.describe(
        READY,
        "gauge",
        "1 while the rollout loop can save its state, 0 while it cannot (/readyz is 503).",
    );
    m.describe(BUILD_INFO, "gauge", "Always 1, labelled with ringmaster's version.");
    m.set(BUILD_INFO, &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
}

/// Sets the gauges of the active rollouts, labelled by policy (none: no series).
pub fn rollout_gauges(m: &Metrics, active: &[Rollout], now: DateTime<Utc>) {
    let mut clusters: Vec<(Vec<(&str, &str)>, f64)> = Vec::new();
    let mut waiting: Vec<(Vec<(&str, &str)>, f64)> = Vec::new();
    for r in active {
        let policy = r.plan.policy.as_str();
        for ring in &r.rings {
            // Every state, so that a ring's series exist at 0 too (a query for failed
            // clusters gets 0, not nothing).
            let n = ClusterStatus::count(ring.waves.iter().flat_map(|w| &w.clusters).map(|c| &c.status));
            for (state, n) in ClusterStatus::LABELS.iter().zip(n) {
                clusters.push((
                    vec![("ring", &ring.name), ("state", state), ("policy", policy)],
                    n as f64,
                ));
            }
            let secs = match ring.status {
                RingStatus::AwaitingApproval { since } if ring.approval.is_none() => {
                    (now - since).num_seconds().max(0) as f64
                }
                _ => 0.0,
            };
            waiting.push((vec![("ring", &ring.name), ("policy", policy)], secs));
        }
    }
    m.set_all(CLUSTERS, &clusters);
    m.set_all(APPROVAL_WAITING, &waiting);
}
