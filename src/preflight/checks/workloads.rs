//! Checks of what runs on the cluster: PodDisruptionBudgets that cannot allow a drain of
//! a pool the plan upgrades, and nodes and pods already unhealthy before it starts.

use super::Ctx;
use crate::preflight::facts::{KubeFacts, PdbFacts, PodFacts};
use crate::preflight::{Check, Finding, Severity};
use std::collections::{BTreeMap, BTreeSet};

/// Node name → pool name.
fn node_pools(k: &KubeFacts) -> BTreeMap<&str, &str> {
    k.nodes
        .iter()
        .filter_map(|n| n.pool.as_deref().map(|p| (n.name.as_str(), p)))
        .collect()
}

fn matched<'a>(pdb: &PdbFacts, pods: &'a [PodFacts]) -> Vec<&'a PodFacts> {
    let Some(sel) = &pdb.selector else {
        return Vec::new();
    };
    pods.iter()
        .filter(|p| !p.finished && p.namespace == pdb.namespace && sel.matches(&p.labels))
        .collect()
}

/// What a PDB does to a drain, judged on the pods it matches.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// `maxUnavailable` is 0: AKS refuses the upgrade up front (`UnsatisfiablePDB`).
    RefusedUpFront(String),
    /// No eviction can ever succeed: the drain fails after `drainTimeoutInMinutes`.
    DrainFails(String),
    /// No eviction succeeds now because matching pods are unhealthy.
    DrainWaits(String),
    Fine,
}

fn judge(pdb: &PdbFacts, expected: i64) -> Verdict {
    if let Some(mu) = pdb.max_unavailable
        && mu.scaled(expected) <= 0
    {
        return Verdict::RefusedUpFront(format!("maxUnavailable: {mu} ({expected} pods match)"));
    }
    if let Some(ma) = pdb.min_available
        && ma.scaled(expected) >= expected
    {
        return Verdict::DrainFails(format!(
            "minAvailable: {ma} with {expected} matching pods: no pod may ever be evicted"
        ));
    }
    if pdb.disruptions_allowed <= 0 {
        let numbers = format!(
            "status.disruptionsAllowed 0 (currentHealthy {}, desiredHealthy {}, expectedPods {})",
            pdb.current_healthy, pdb.desired_healthy, pdb.expected_pods
        );
        return if pdb.current_healthy >= pdb.desired_healthy {
            Verdict::DrainFails(format!("{numbers} although the pods are healthy"))
        } else {
            Verdict::DrainWaits(numbers)
        };
    }
    Verdict::Fine
}

/// PDBs whose pods sit on a pool the plan upgrades and that allow no eviction. Only those
/// pools' drains are affected, so a PDB matching pods elsewhere is not reported.
pub fn pdbs(ctx: &Ctx<'_>) -> Vec<Finding> {
    let Ok(k) = &ctx.facts.kube else {
        return Vec::new();
    };
    let upgraded = super::upgraded_pools(ctx.plan);
    if upgraded.is_empty() {
        return Vec::new();
    }
    let pools = node_pools(k);
    let mut out = Vec::new();
    for pdb in &k.pdbs {
        let pods = matched(pdb, &k.pods);
        let on: BTreeSet<&str> = pods
            .iter()
            .filter_map(|p| p.node.as_deref().and_then(|n| pools.get(n).copied()))
            .filter(|p| upgraded.contains(p))
            .collect();
        if on.is_empty() {
            continue;
        }
        let expected = pods.len() as i64;
        let name = format!("PDB {}/{}", pdb.namespace, pdb.name);
        let drain = "drainTimeoutInMinutes";
        for pool in on {
            let f = match judge(pdb, expected) {
                Verdict::Fine => continue,
                Verdict::RefusedUpFront(why) => ctx.finding(
                    Some(pool),
                    Check::Pdb,
                    Severity::Blocks,
                    format!("{name}: {why}"),
                    "AKS refuses to upgrade a pool while a PDB on it allows no disruption",
                    format!("set {name}'s maxUnavailable to 1 or more (or minAvailable below the replicas) for the upgrade"),
                )
                .aks("UnsatisfiablePDB"),
                Verdict::DrainFails(why) => ctx.finding(
                    Some(pool),
                    Check::Pdb,
                    Severity::Blocks,
                    format!("{name}: {why}"),
                    format!("every eviction is refused, so the drain fails after {drain} (\"Drain node ... failed when evicting pod\") and the pool upgrade fails"),
                    format!("scale the workload up or relax {name} so that at least one pod may be evicted"),
                )
                .aks("UpgradeFailed"),
                Verdict::DrainWaits(why) => ctx.finding(
                    Some(pool),
                    Check::Pdb,
                    Severity::Warns,
                    format!("{name}: {why}"),
                    format!("evictions wait until the unhealthy pods recover; past {drain} the drain fails"),
                    "make the workload healthy before the upgrade",
                ),
            };
            out.push(f);
        }
    }
    out
}

/// The cluster's API must be readable (fail closed, like the gate's baseline), and what
/// is already unhealthy is worth knowing: the gate compares against this baseline, so it
/// would hide nothing, but an operator should not learn of it from a failed upgrade.
pub fn nodes_and_pods(ctx: &Ctx<'_>) -> Vec<Finding> {
    let k = match &ctx.facts.kube {
        Ok(k) => k,
        Err(e) => {
            return vec![ctx.finding(
                None,
                Check::Unreadable,
                Severity::Blocks,
                format!("the cluster's Kubernetes API could not be read: {e}"),
                "PDBs, nodes and workloads cannot be checked, and the health gate could not take its baseline",
                "check the API server's reachability and ringmaster's access (listClusterUserCredential, Kubernetes RBAC)",
            )];
        }
    };
    let mut out = Vec::new();
    let not_ready: Vec<&str> = k.nodes.iter().filter(|n| !n.ready).map(|n| n.name.as_str()).collect();
    if !not_ready.is_empty() {
        out.push(ctx.finding(
            None,
            Check::NodesNotReady,
            Severity::Warns,
            format!(
                "{} of {} nodes NotReady: {}",
                not_ready.len(),
                k.nodes.len(),
                first_few(&not_ready)
            ),
            "the node gate compares against this baseline; AKS may fail to drain or reimage these nodes",
            "repair or remove the nodes before the upgrade",
        ));
    }
    let unready: Vec<String> = k
        .pods
        .iter()
        .filter(|p| !p.finished && !p.ready)
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    if !unready.is_empty() {
        let names: Vec<&str> = unready.iter().map(String::as_str).collect();
        out.push(ctx.finding(
            None,
            Check::WorkloadsUnhealthy,
            Severity::Warns,
            format!(
                "{} of {} pods not Ready: {}",
                unready.len(),
                k.pods.len(),
                first_few(&names)
            ),
            "the pod gate compares against this baseline; unhealthy pods also hold their PDBs at zero disruptions",
            "fix the workloads before the upgrade",
        ));
    }
    out
}

fn first_few(names: &[&str]) -> String {
    const SHOWN: usize = 3;
    let mut s = names.iter().take(SHOWN).copied().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}
