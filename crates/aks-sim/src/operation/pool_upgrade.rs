//! A pool upgrade (or rollback, or node image upgrade) step by step, by AKS's surge
//! algorithm: surge nodes, batches, soak and reimage, and the pool's rollback history and
//! scale set once its nodes reached the target.

use super::drain::{drain, fail_pool, next_batch, undrainable};
use super::lifecycle::{fail_later, finish, injected_failure, next_phase, tick_after};
use super::{OpStatus, PoolGoal, PoolJob, Stage};
use crate::clock::SimTime;
use crate::fleet::parse_count_or_percent;
use crate::kube_model::ChangeType;
use crate::version::KubeVersion;
use crate::world::{Event, World, with_cluster};

pub(super) fn node_on_target(n: &crate::kube_model::Node, job: &PoolJob) -> bool {
    n.version == job.version && n.image == job.image
}

pub(super) fn pool_step(w: &mut World, id: &str, c: usize, pool: &str, goal: PoolGoal, started: bool) {
    if !started {
        let Some(p) = w.clusters[c].pool(pool).cloned() else {
            finish(
                w,
                id,
                OpStatus::Failed,
                Some(("AgentPoolNotFound".into(), format!("Agent pool {pool} not found"))),
            );
            return;
        };
        if let Some(err) = injected_failure(w, c, goal.kind(), Some(pool)) {
            let d = w.fleet.durations.node_provision;
            fail_later(w, id, d, err);
            return;
        }
        let Some(pi) = w.clusters[c].pools.iter().position(|q| q.name == p.name) else {
            return;
        };
        w.clusters[c].pools[pi].provisioning_state = goal.state();
        let (version, image) = goal.target(w, c, &p);
        let pct = |s: &str| match parse_count_or_percent(s) {
            Some((v, true)) => (p.count * v).div_ceil(100),
            Some((v, false)) => v,
            None => 0,
        };
        let mut surge_count = pct(&p.upgrade.max_surge);
        let unavailable = pct(&p.upgrade.max_unavailable);
        if surge_count == 0 && unavailable == 0 {
            surge_count = 1;
        }
        // Surge nodes are new VMs: they need vCPU quota and subnet addresses now.
        if let Err(e) = crate::quota::check_new_vms(w, c, &p.vm_size, surge_count)
            .map_err(|e| crate::rules::Refusal {
                message: format!("Create or update VMSS {} failed. {}", vmss_id(w, c, &p), e.message),
                ..e
            })
            .and_then(|()| crate::network::check_new_nodes(w, c, &p.name, surge_count))
        {
            finish(w, id, OpStatus::Failed, Some((e.code.to_string(), e.message)));
            return;
        }
        let mut job = PoolJob {
            pool: p.name.clone(),
            version,
            image,
            stage: Stage::WaitSurgeReady,
            surge_count,
            unavailable,
            surge: Vec::new(),
            batch: Vec::new(),
            quarantined: Vec::new(),
            deadline: w.now.plus(w.fleet.durations.node_ready_timeout),
            blocked_by: None,
            rollback: matches!(goal, PoolGoal::Rollback { .. }),
        };
        let seed = w.cluster_seed(c);
        let gen_base = w.rng.next_u64() >> 16;
        for _ in 0..surge_count {
            let img = job.image.clone();
            let mut node = with_cluster(w, c, |w, cl| w.new_node(cl, pi, &seed, job.version, img, false));
            node.generation = gen_base;
            let name = node.name.clone();
            w.clusters[c].kube.put_node(node, ChangeType::Added);
            let d = w.fleet.durations.node_provision;
            w.after(
                d,
                Event::NodeReady {
                    c,
                    node: name.clone(),
                    generation: gen_base,
                },
            );
            job.surge.push(name);
        }
        set_job(w, id, job);
        let d = w.fleet.durations.node_provision;
        tick_after(w, id, d);
        return;
    }
    let Some(mut job) = w.ops.get(id).and_then(|o| o.job.clone()) else {
        return;
    };
    let poll = w.fleet.durations.eviction_retry;
    match job.stage {
        Stage::WaitSurgeReady => {
            if job.surge.iter().all(|n| node_ready(w, c, n)) {
                next_batch(w, id, c, job);
            } else if w.now >= job.deadline {
                let names: Vec<_> = job.surge.iter().filter(|n| !node_ready(w, c, n)).cloned().collect();
                fail_pool(
                    w,
                    id,
                    c,
                    &job,
                    "NodesNotReady",
                    format!("Nodes did not become Ready in time: {}", names.join(", ")),
                );
            } else {
                set_job(w, id, job);
                tick_after(w, id, poll.max(std::time::Duration::from_secs(30)));
            }
        }
        Stage::Draining | Stage::DrainingSurge => {
            let left = drain(w, c, &job.batch);
            if left.is_empty() {
                if job.stage == Stage::Draining {
                    job.stage = Stage::Soaking;
                    let soak = std::time::Duration::from_secs(60 * u64::from(pool_soak(w, c, &job.pool)));
                    set_job(w, id, job);
                    tick_after(w, id, soak);
                } else {
                    for n in job.surge.clone() {
                        w.remove_node(c, &n);
                    }
                    job.stage = Stage::DeletingSurge;
                    set_job(w, id, job);
                    let d = w.fleet.durations.node_delete;
                    tick_after(w, id, d);
                }
            } else if w.now >= job.deadline {
                undrainable(w, id, c, job, left);
            } else {
                job.blocked_by = Some(left[0].1.clone());
                set_job(w, id, job);
                tick_after(w, id, poll);
            }
        }
        Stage::Soaking => {
            let g = w.rng.next_u64() >> 16;
            for n in &job.batch {
                let (v, img) = (job.version, job.image.clone());
                w.clusters[c].kube.update_node(n, |node| {
                    node.ready = false;
                    node.version = v;
                    node.image = img;
                    node.generation = g;
                });
                let d = w.fleet.durations.node_reimage;
                w.after(
                    d,
                    Event::NodeReady {
                        c,
                        node: n.clone(),
                        generation: g,
                    },
                );
            }
            job.stage = Stage::Reimaging;
            job.deadline = w
                .now
                .plus(w.fleet.durations.node_reimage + w.fleet.durations.node_ready_timeout);
            set_job(w, id, job);
            let d = w.fleet.durations.node_reimage;
            tick_after(w, id, d);
        }
        Stage::Reimaging => {
            if job.batch.iter().all(|n| node_ready(w, c, n)) {
                for n in &job.batch {
                    w.clusters[c].kube.update_node(n, |node| node.unschedulable = false);
                }
                w.kick_unscheduled(c);
                next_batch(w, id, c, job);
            } else if w.now >= job.deadline {
                let names: Vec<_> = job.batch.iter().filter(|n| !node_ready(w, c, n)).cloned().collect();
                fail_pool(
                    w,
                    id,
                    c,
                    &job,
                    "NodesNotReady",
                    format!("Nodes did not become Ready after reimage: {}", names.join(", ")),
                );
            } else {
                set_job(w, id, job);
                tick_after(w, id, std::time::Duration::from_secs(30));
            }
        }
        Stage::DeletingSurge => {
            let now = w.now;
            if let Some(p) = w.clusters[c].pool_mut(&job.pool) {
                let left = (
                    p.current_version,
                    std::mem::replace(&mut p.node_image, job.image.clone()),
                );
                p.current_version = job.version;
                update_history(p, left, &job, now);
            }
            if job.quarantined.is_empty() {
                next_phase(w, id);
            } else {
                let msg = format!(
                    "Upgrade completed with quarantined nodes (undrainable, cordoned): {}",
                    job.quarantined.join(", ")
                );
                finish(w, id, OpStatus::Failed, Some(("UpgradeFailed".into(), msg)));
            }
        }
    }
}

/// A pool's rollback history once its nodes reached `job`'s target, having left the
/// pair `left`: a rollback clears it (no consecutive rollbacks; also when it ended with
/// quarantined nodes, since the pool moved anyway), a clean upgrade remembers `left`, an
/// upgrade that quarantined nodes (it fails) records nothing.
fn update_history(p: &mut crate::world::Pool, left: (KubeVersion, String), job: &PoolJob, now: SimTime) {
    if job.rollback {
        p.recent.clear();
    } else if job.quarantined.is_empty() && (left.0, left.1.as_str()) != (job.version, job.image.as_str()) {
        p.remember(left.0, left.1, now);
    }
}

/// The id of a pool's scale set in the node resource group (`MC_...`).
fn vmss_id(w: &World, c: usize, p: &crate::world::Pool) -> String {
    let cl = &w.clusters[c];
    format!(
        "/subscriptions/{}/resourceGroups/MC_{}_{}_{}/providers/Microsoft.Compute/virtualMachineScaleSets/aks-{}-{}-vmss",
        cl.subscription, cl.resource_group, cl.name, cl.location, p.name, p.vmss
    )
}

fn pool_soak(w: &World, c: usize, pool: &str) -> u32 {
    w.clusters[c].pool(pool).map_or(0, |p| p.upgrade.node_soak_minutes)
}

fn node_ready(w: &World, c: usize, n: &str) -> bool {
    w.clusters[c].kube.nodes.get(n).is_some_and(|n| n.ready)
}

pub(super) fn set_job(w: &mut World, id: &str, job: PoolJob) {
    if let Some(op) = w.ops.get_mut(id) {
        op.job = Some(job);
    }
}
