//! Pods over simulated time: scheduling, start, readiness, restarts, removal and
//! eviction (with PDBs), and the scheduler's choice of node for a workload's pod.

use super::events::Event;
use super::{World, with_cluster};
use crate::fleet::{FaultKind, Pdb};
use crate::kube_model::{ChangeType, KubeState, PodPhase, Workload};
use crate::version::KubeVersion;
use std::collections::HashMap;

impl World {
    // ---------------------------------------------------------------- pods

    fn pod_alive(&self, c: usize, key: &(String, String), uid: &str) -> bool {
        self.clusters[c].kube.pods.get(key).is_some_and(|p| p.uid == uid)
    }

    pub(super) fn pod_schedule(&mut self, c: usize, key: &(String, String), uid: &str) {
        if !self.pod_alive(c, key, uid) {
            return;
        }
        let kube = &self.clusters[c].kube;
        let pod = &kube.pods[key];
        if pod.node.is_some() {
            return;
        }
        let Some(node) = pick_node(kube, &kube.workloads[pod.workload]) else {
            return; // stays Pending until a node frees up (see `kick_unscheduled`)
        };
        self.clusters[c].kube.update_pod(key, |p| {
            p.node = Some(node);
            p.phase = PodPhase::Creating;
        });
        let d = self.fleet.durations.pod_start;
        self.after(
            d,
            Event::PodStarted {
                c,
                key: key.clone(),
                uid: uid.into(),
            },
        );
    }

    pub(super) fn pod_started(&mut self, c: usize, key: &(String, String), uid: &str) {
        if !self.pod_alive(c, key, uid) {
            return;
        }
        let node_version = {
            let kube = &self.clusters[c].kube;
            kube.pods[key]
                .node
                .as_ref()
                .and_then(|n| kube.nodes.get(n))
                .map(|n| n.version)
        };
        let crash = node_version.is_some_and(|v| self.pods_never_ready(c, &key.0, v));
        let now = self.now;
        self.clusters[c].kube.update_pod(key, |p| {
            p.phase = PodPhase::Running;
            p.started = Some(now);
            p.crash_looping = crash;
        });
        let w = self.clusters[c].kube.pods[key].workload;
        if crash {
            let d = self.fleet.durations.crash_loop_restart;
            self.after(
                d,
                Event::PodRestart {
                    c,
                    key: key.clone(),
                    uid: uid.into(),
                },
            );
            let name = key.1.clone();
            self.kube_event(
                c,
                &key.0,
                "Pod",
                &name,
                "BackOff",
                "Back-off restarting failed container app",
                "Warning",
            );
        } else {
            let d = self.clusters[c].kube.workloads[w].readiness_delay;
            self.after(
                d,
                Event::PodReady {
                    c,
                    key: key.clone(),
                    uid: uid.into(),
                },
            );
        }
    }

    pub(super) fn pod_ready(&mut self, c: usize, key: &(String, String), uid: &str) {
        if !self.pod_alive(c, key, uid) {
            return;
        }
        let now = self.now;
        self.clusters[c].kube.update_pod(key, |p| {
            p.ready = true;
            p.ready_since = Some(now);
        });
        let w = self.clusters[c].kube.pods[key].workload;
        self.clusters[c].kube.touch_workload(w);
        // A pod turning Ready may unblock a drain waiting on a PDB.
        crate::operation::wake_cluster(self, c);
    }

    pub(super) fn pod_restart(&mut self, c: usize, key: &(String, String), uid: &str) {
        if !self.pod_alive(c, key, uid) {
            return;
        }
        self.clusters[c].kube.update_pod(key, |p| p.restarts += 1);
        let d = self.fleet.durations.crash_loop_restart;
        self.after(
            d,
            Event::PodRestart {
                c,
                key: key.clone(),
                uid: uid.into(),
            },
        );
    }

    /// Whether pods of `namespace` on a node of `version` never become Ready (fault).
    fn pods_never_ready(&self, c: usize, namespace: &str, version: KubeVersion) -> bool {
        let name = &self.clusters[c].name;
        self.active_faults().any(|f| match &f.what {
            FaultKind::PodsNeverReady {
                cluster,
                version: spec,
                namespace: ns,
            } => cluster == name && spec.matches(version) && ns.as_deref().is_none_or(|n| n == namespace),
            _ => false,
        })
    }

    /// Whether a node of this pool and version stays NotReady (fault).
    pub fn node_stays_not_ready(&self, c: usize, pool: &str, version: KubeVersion) -> bool {
        let name = &self.clusters[c].name;
        self.active_faults().any(|f| match &f.what {
            FaultKind::NodesNotReady {
                cluster,
                pool: p,
                version: v,
            } => cluster == name && p.as_deref().is_none_or(|p| p == pool) && v.is_none_or(|v| v.matches(version)),
            _ => false,
        })
    }

    /// Deletes a pod (evicted, or its node went away) and lets its workload replace it.
    pub fn remove_pod(&mut self, c: usize, key: &(String, String)) {
        let Some(pod) = self.clusters[c].kube.delete_pod(key) else {
            return;
        };
        let seed = self.cluster_seed(c);
        let replacement = with_cluster(self, c, |w, cl| w.new_pod(cl, pod.workload, &seed));
        let rkey = (replacement.namespace.clone(), replacement.name.clone());
        let ruid = replacement.uid.clone();
        self.clusters[c].kube.put_pod(replacement, ChangeType::Added);
        self.clusters[c].kube.touch_workload(pod.workload);
        let d = self.fleet.durations.pod_schedule;
        self.after(
            d,
            Event::PodSchedule {
                c,
                key: rkey,
                uid: ruid,
            },
        );
    }

    /// Gives Pending pods another scheduling attempt (a node became schedulable).
    pub fn kick_unscheduled(&mut self, c: usize) {
        let pending: Vec<((String, String), String)> = self.clusters[c]
            .kube
            .pods
            .iter()
            .filter(|(_, p)| p.node.is_none())
            .map(|(k, p)| (k.clone(), p.uid.clone()))
            .collect();
        let d = self.fleet.durations.pod_schedule;
        for (key, uid) in pending {
            self.after(d, Event::PodSchedule { c, key, uid });
        }
    }

    pub fn cluster_seed(&self, c: usize) -> String {
        let cl = &self.clusters[c];
        format!("{}/{}/{}", cl.subscription, cl.resource_group, cl.name)
    }

    /// Evicts a pod as `pods/eviction` does: refused while its PDB allows no disruption.
    pub fn evict(&mut self, c: usize, key: &(String, String)) -> Result<(), EvictError> {
        let kube = &self.clusters[c].kube;
        let pod = kube.pods.get(key).ok_or(EvictError::NotFound)?;
        let w = pod.workload;
        let wl = &kube.workloads[w];
        let blocked_by_fault = self.active_faults().any(|f| match &f.what {
            FaultKind::PdbBlocksDrain { cluster, workload } => {
                *cluster == self.clusters[c].name && *workload == wl.name
            }
            _ => false,
        });
        if blocked_by_fault {
            return Err(EvictError::Pdb(format!("{}/{}", wl.namespace, wl.name)));
        }
        if let Some(allowed) = kube.disruptions_allowed(w) {
            // An unready pod does not count as healthy, so evicting it costs nothing
            // as long as the budget is met (IfHealthyBudget).
            let (ready, _) = kube.workload_counts(w);
            let desired = match wl.pdb {
                Some(Pdb::MinAvailable(m)) => m,
                Some(Pdb::MaxUnavailable(m)) => wl.replicas.saturating_sub(m),
                None => 0,
            };
            let ok = if pod.ready { allowed >= 1 } else { ready >= desired };
            if !ok {
                return Err(EvictError::Pdb(format!("{}/{}", wl.namespace, wl.name)));
            }
        }
        self.remove_pod(c, key);
        Ok(())
    }
}

/// Why an eviction was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvictError {
    NotFound,
    /// The named PDB (`namespace/name`) allows no disruption now.
    Pdb(String),
}

/// The node the scheduler picks for a workload's pod: Ready, schedulable, right OS and
/// pool, fewest pods of this workload, then fewest pods, then name.
pub(crate) fn pick_node(kube: &KubeState, w: &Workload) -> Option<String> {
    let mut per_node: HashMap<&str, (u32, u32)> = HashMap::new();
    for p in kube.pods.values() {
        if let Some(n) = &p.node {
            let e = per_node.entry(n.as_str()).or_default();
            e.1 += 1;
            if kube
                .workloads
                .get(p.workload)
                .is_some_and(|pw| pw.name == w.name && pw.namespace == w.namespace)
            {
                e.0 += 1;
            }
        }
    }
    kube.nodes
        .values()
        .filter(|n| n.ready && !n.unschedulable && n.os == w.os && w.pool.as_ref().is_none_or(|p| *p == n.pool))
        .min_by_key(|n| {
            let (mine, all) = per_node.get(n.name.as_str()).copied().unwrap_or_default();
            (mine, all, n.name.clone())
        })
        .map(|n| n.name.clone())
}
