//! What a fleet costs the simulator, and the bound past which it is refused.
//!
//! The simulator holds every cluster, node and pod in memory from the start (`World::new`
//! builds them all before the ready line). A fleet file that passes every check can still
//! be far beyond a machine: `generate: { count: 20000 }` with two pools of 1,000 nodes is
//! 40,000,000 nodes, about 26 GiB, and `ringmaster sim` on it grew at 48 MB/s until it was
//! killed, never ready. So `ringmaster sim --check` estimates the cost from the compiled
//! fleet (counts only, nothing built) and refuses a fleet over [`MAX_BYTES`], and
//! [`Simulator::start`](crate::Simulator::start) refuses the same fleet, with the same
//! function, before it allocates the world.
//!
//! The figures are measured, not derived from type sizes (strings, maps and the
//! allocator's rounding dominate): the resident memory (`VmRSS`) of the release
//! `ringmaster sim --manual-clock` once ready, on fleets generated from
//! `examples/fleets/large.yaml` with the cluster count, nodes per pool and replicas varied
//! one at a time (1 to 10,000 clusters, up to 400,000 nodes, up to 500,000 pods). The
//! least-squares fit: 16.1 MiB for an empty simulator, 19,062 B per cluster (its ARM
//! documents, Kubernetes objects, indexes), 699 B per node and 614 B per pod; the
//! constants below, rounded up, are within 1% of every run but the smallest (2%).
//! docs/fleet.md lists the runs. The estimate is of the fleet at start: upgrades add surge
//! nodes and the request log grows, hence a bound well below what a CI runner or laptop has.

use super::fleet::Fleet;
use std::fmt;

/// Resident memory of a simulator with no clusters (code, TLS, runtime), bytes.
pub const BASE_BYTES: u64 = 16 << 20;
/// Per cluster, without its nodes and pods.
pub const BYTES_PER_CLUSTER: u64 = 19_100;
/// Per node (VMSS instance and Kubernetes Node).
pub const BYTES_PER_NODE: u64 = 700;
/// Per pod (a workload replica).
pub const BYTES_PER_POD: u64 = 620;
/// The most memory a fleet may cost at start: 1 GiB. It admits the project's largest
/// fleets with room to spare (`examples/fleets/large.yaml`, 5,000 clusters: ~127 MiB;
/// the most `generate:` allows with its template, 20,000 clusters: ~458 MiB) and leaves
/// room for a run's growth on a machine with a few GiB; about 1.5 million nodes.
pub const MAX_BYTES: u64 = 1 << 30;

/// The size of a fleet and what it costs the simulator, estimated from counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetCost {
    pub clusters: u64,
    /// Nodes at start: the pools' `count`s.
    pub nodes: u64,
    /// Pods at start: the workloads' `replicas`.
    pub pods: u64,
}

impl FleetCost {
    /// Counts only: nothing of the world is built.
    pub fn of(fleet: &Fleet) -> Self {
        let mut cost = FleetCost {
            clusters: fleet.clusters.len() as u64,
            nodes: 0,
            pods: 0,
        };
        for c in &fleet.clusters {
            cost.nodes = cost
                .nodes
                .saturating_add(c.pools.iter().map(|p| u64::from(p.count)).sum::<u64>());
            cost.pods = cost
                .pods
                .saturating_add(c.workloads.iter().map(|w| u64::from(w.replicas)).sum::<u64>());
        }
        cost
    }

    /// Estimated resident memory of the simulator once it is ready, bytes.
    pub fn bytes(&self) -> u64 {
        BASE_BYTES
            .saturating_add(self.clusters.saturating_mul(BYTES_PER_CLUSTER))
            .saturating_add(self.nodes.saturating_mul(BYTES_PER_NODE))
            .saturating_add(self.pods.saturating_mul(BYTES_PER_POD))
    }

    /// `Ok` when the fleet fits [`MAX_BYTES`]; the numbers and the way out otherwise.
    pub fn check(&self) -> Result<(), FleetTooLarge> {
        if self.bytes() <= MAX_BYTES {
            Ok(())
        } else {
            Err(FleetTooLarge { cost: *self })
        }
    }

    /// The most nodes this fleet's clusters and pods leave room for under the bound.
    pub fn max_nodes(&self) -> u64 {
        let rest = BASE_BYTES
            .saturating_add(self.clusters.saturating_mul(BYTES_PER_CLUSTER))
            .saturating_add(self.pods.saturating_mul(BYTES_PER_POD));
        MAX_BYTES.saturating_sub(rest) / BYTES_PER_NODE
    }
}

/// A fleet the simulator would not hold: the estimate, the limit and what to lower.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{clusters} clusters, {nodes} nodes, {pods} pods: about {bytes} of simulator memory, over the limit of {limit} (at most {max_nodes} nodes with these clusters and pods); lower `generate.count`, the pools' `count` or the workloads' `replicas`",
    clusters = thousands(cost.clusters),
    nodes = thousands(cost.nodes),
    pods = thousands(cost.pods),
    bytes = Size(cost.bytes()),
    limit = Size(MAX_BYTES),
    max_nodes = thousands(cost.max_nodes()),
)]
pub struct FleetTooLarge {
    pub cost: FleetCost,
}

/// `40000000` -> `40,000,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// Bytes as MiB below 1 GiB, GiB with one decimal above.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const GIB: u64 = 1 << 30;
        if self.0 < GIB {
            write!(f, "{} MiB", self.0.div_ceil(1 << 20))
        } else if self.0.is_multiple_of(GIB) {
            write!(f, "{} GiB", self.0 / GIB)
        } else {
            write!(f, "{:.1} GiB", self.0 as f64 / GIB as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(count: u32, nodes_per_pool: u32, replicas: u32) -> Fleet {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/fleets/large.yaml"))
            .unwrap()
            .replacen(
                "generate:\n  count: 5000\n",
                &format!("generate:\n  count: {count}\n"),
                1,
            )
            .replace("      count: 2\n", &format!("      count: {nodes_per_pool}\n"))
            .replacen("      replicas: 2\n", &format!("      replicas: {replicas}\n"), 1);
        super::super::fleet::parse("large.yaml", &text).unwrap()
    }

    #[test]
    fn the_issues_fleet_is_refused_with_its_numbers() {
        let cost = FleetCost::of(&generated(20_000, 1_000, 2));
        assert_eq!((cost.clusters, cost.nodes, cost.pods), (20_000, 40_000_000, 40_000));
        let e = cost.check().unwrap_err().to_string();
        assert!(
            e.starts_with("20,000 clusters, 40,000,000 nodes, 40,000 pods: about 26.5 GiB of simulator memory, over the limit of 1 GiB (at most "),
            "{e}"
        );
    }

    #[test]
    fn the_projects_large_fleets_fit() {
        for (count, nodes, replicas) in [(5_000, 2, 2), (20_000, 2, 2), (1_000, 200, 2)] {
            let cost = FleetCost::of(&generated(count, nodes, replicas));
            assert!(cost.check().is_ok(), "{cost:?}: {}", Size(cost.bytes()));
        }
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(40_000_000), "40,000,000");
        assert_eq!(Size(145 << 20).to_string(), "145 MiB");
        assert_eq!(Size(MAX_BYTES).to_string(), "1 GiB");
    }
}
