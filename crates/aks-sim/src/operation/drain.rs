//! Draining in a pool upgrade: picking and cordoning the next batch, evicting its pods
//! through PDBs, what happens to nodes that cannot be drained (by the pool's undrainable
//! node behaviour), and failing the upgrade.

use super::lifecycle::{finish, tick_after};
use super::pool_upgrade::{node_on_target, set_job};
use super::{OpStatus, PoolJob, Stage};
use crate::fleet::Undrainable;
use crate::world::World;

/// Picks and cordons the next batch of old nodes, or moves to the surge nodes' drain.
pub(super) fn next_batch(w: &mut World, id: &str, c: usize, mut job: PoolJob) {
    let old: Vec<String> = w.clusters[c]
        .kube
        .nodes
        .values()
        .filter(|n| n.pool == job.pool && !job.surge.contains(&n.name) && !job.quarantined.contains(&n.name))
        .filter(|n| !node_on_target(n, &job))
        .map(|n| n.name.clone())
        .collect();
    let size = (job.surge_count + job.unavailable).max(1) as usize;
    let (batch, stage) = if old.is_empty() {
        (job.surge.clone(), Stage::DrainingSurge)
    } else {
        (old.into_iter().take(size).collect(), Stage::Draining)
    };
    for n in &batch {
        w.clusters[c].kube.update_node(n, |node| node.unschedulable = true);
        // AKS's event as a drain starts (`error-code-poddrainfailure.md`: "Normal Drain
        // node/aks-... Draining node: aks-...").
        let msg = format!("Draining node: {n}");
        w.kube_event(c, "default", "Node", n, "Drain", &msg, "Normal");
    }
    let drain_timeout = w.clusters[c]
        .pool(&job.pool)
        .map_or(30, |p| p.upgrade.drain_timeout_minutes);
    job.deadline = w
        .now
        .plus(std::time::Duration::from_secs(60 * u64::from(drain_timeout)));
    job.batch = batch;
    job.stage = stage;
    set_job(w, id, job);
    tick_after(w, id, std::time::Duration::ZERO);
}

/// Tries to evict every pod on `nodes`; returns the pods still there with the PDB that
/// blocks each (`(namespace/pod, namespace/pdb)`).
pub(super) fn drain(w: &mut World, c: usize, nodes: &[String]) -> Vec<(String, String)> {
    let keys: Vec<(String, String)> = w.clusters[c]
        .kube
        .pods
        .iter()
        .filter(|(_, p)| p.node.as_ref().is_some_and(|n| nodes.contains(n)))
        .map(|(k, _)| k.clone())
        .collect();
    let mut left = Vec::new();
    for k in keys {
        if let Err(e) = w.evict(c, &k) {
            let why = match e {
                crate::world::EvictError::Pdb(pdb) => pdb,
                crate::world::EvictError::NotFound => continue,
            };
            left.push((format!("{}/{}", k.0, k.1), why));
        }
    }
    left
}

pub(super) fn undrainable(w: &mut World, id: &str, c: usize, mut job: PoolJob, left: Vec<(String, String)>) {
    let blocked_nodes: Vec<String> = {
        let kube = &w.clusters[c].kube;
        let mut v: Vec<String> = left
            .iter()
            .filter_map(|(pod, _)| {
                let (ns, name) = pod.split_once('/')?;
                kube.pods
                    .get(&(ns.to_string(), name.to_string()))
                    .and_then(|p| p.node.clone())
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let behavior = w.clusters[c]
        .pool(&job.pool)
        .map_or(Undrainable::Schedule, |p| p.upgrade.undrainable);
    // AKS's events on each blocked node, then its error for the first blocked pod.
    for (pod, _) in &left {
        let node = pod
            .split_once('/')
            .and_then(|(ns, name)| w.clusters[c].kube.pods.get(&(ns.to_string(), name.to_string())))
            .and_then(|p| p.node.clone());
        if let Some(node) = node {
            let pod_name = pod.split_once('/').map_or(pod.as_str(), |(_, n)| n);
            let msg = crate::rules::drain_event(pod_name);
            w.kube_event(c, "default", "Node", &node, "Drain", &msg, "Warning");
        }
    }
    let (pod, pdb) = &left[0];
    let (ns, pod_name) = pod.split_once('/').unwrap_or(("default", pod.as_str()));
    let pdb_name = pdb.split_once('/').map_or(pdb.as_str(), |(_, n)| n);
    let node = w.clusters[c]
        .kube
        .pods
        .get(&(ns.to_string(), pod_name.to_string()))
        .and_then(|p| p.node.clone())
        .unwrap_or_default();
    let unready = {
        let kube = &w.clusters[c].kube;
        kube.workloads
            .iter()
            .position(|wl| wl.namespace == ns && wl.name == pdb_name)
            .map_or(0, |wi| {
                let (ready, total) = kube.workload_counts(wi);
                total - ready
            })
    };
    let msg = crate::rules::drain_failure(&node, ns, pod_name, pdb_name, unready).message;
    if behavior == Undrainable::Cordon && job.stage == Stage::Draining {
        for n in &blocked_nodes {
            w.clusters[c].kube.update_node(n, |node| {
                node.extra_labels
                    .insert("kubernetes.azure.com/upgrade-status".into(), "Quarantined".into());
            });
        }
        job.quarantined.extend(blocked_nodes.iter().cloned());
        job.batch.retain(|n| !blocked_nodes.contains(n));
        job.stage = Stage::Soaking;
        set_job(w, id, job);
        tick_after(w, id, std::time::Duration::ZERO);
        return;
    }
    fail_pool(w, id, c, &job, "UpgradeFailed", msg);
}

/// Fails a pool upgrade: nodes cordoned by the drain are uncordoned (behaviour
/// `Schedule`), surge nodes are removed, the operation ends Failed.
pub(super) fn fail_pool(w: &mut World, id: &str, c: usize, job: &PoolJob, code: &str, msg: String) {
    for n in job.batch.iter().filter(|n| !job.surge.contains(n)) {
        w.clusters[c].kube.update_node(n, |node| node.unschedulable = false);
    }
    for n in &job.surge {
        w.remove_node(c, n);
    }
    w.kick_unscheduled(c);
    let name = job.pool.clone();
    w.kube_event(c, "default", "Node", &name, "UpgradeFailed", &msg, "Warning");
    finish(w, id, OpStatus::Failed, Some((code.to_string(), msg)));
}
