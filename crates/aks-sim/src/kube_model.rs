//! One simulated cluster's Kubernetes objects: nodes, pods, workloads (Deployments and
//! their ReplicaSets), PodDisruptionBudgets, namespaces and events, with an etcd-like
//! `resourceVersion` and a bounded change history for watches to resume from.
//!
//! Objects are kept compact and rendered to the Kubernetes JSON shapes only when a
//! client asks (list) or when they change (watch history), so 5,000 idle clusters cost
//! little memory.
//!
//! This file holds the objects and their changes; `render` their Kubernetes JSON.

use super::clock::SimTime;
use super::fleet::{OsType, Pdb};
use super::version::KubeVersion;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

mod render;

pub(crate) use render::{
    render_deployment, render_event, render_namespace, render_node, render_pdb, render_pod, render_replicaset,
};

/// How many changes a cluster keeps for watches that resume from a resourceVersion;
/// older ones get `410 Gone` and must list again, as on a real API server.
pub const HISTORY_LIMIT: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Namespace,
    Node,
    Pod,
    Deployment,
    ReplicaSet,
    PodDisruptionBudget,
    Event,
}

impl Kind {
    pub fn namespaced(self) -> bool {
        !matches!(self, Kind::Namespace | Kind::Node)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One change, as a watch sends it.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub kind: Kind,
    pub typ: ChangeType,
    pub object: Value,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub uid: String,
    pub pool: String,
    pub mode_system: bool,
    pub os: OsType,
    pub vm_size: String,
    pub created: SimTime,
    pub rv: u64,
    pub unschedulable: bool,
    pub ready: bool,
    pub version: KubeVersion,
    pub image: String,
    /// Extra labels (e.g. `kubernetes.azure.com/upgrade-status=Quarantined`).
    pub extra_labels: BTreeMap<String, String>,
    /// Set while the node is being reimaged or created: the uid of the work in flight.
    pub generation: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    /// Not yet on a node.
    Unscheduled,
    /// On a node, containers being created.
    Creating,
    /// Containers running (ready or not).
    Running,
}

#[derive(Debug, Clone)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub workload: usize,
    pub node: Option<String>,
    pub phase: PodPhase,
    pub ready: bool,
    pub crash_looping: bool,
    pub restarts: u32,
    pub created: SimTime,
    pub started: Option<SimTime>,
    pub ready_since: Option<SimTime>,
    pub rv: u64,
}

#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    pub replicas: u32,
    pub readiness_delay: Duration,
    pub pdb: Option<Pdb>,
    pub os: OsType,
    pub pool: Option<String>,
    pub uid: String,
    pub rs_hash: String,
    pub rs_uid: String,
    pub pdb_uid: String,
    pub created: SimTime,
}

#[derive(Debug, Clone)]
pub struct KEvent {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub reason: String,
    pub message: String,
    pub involved_kind: &'static str,
    pub involved_name: String,
    /// The involved object's namespace ("" for a node) and uid: `kubectl describe`
    /// finds an object's events by both.
    pub involved_namespace: String,
    pub involved_uid: String,
    pub typ: &'static str,
    pub time: SimTime,
    pub rv: u64,
}

/// All Kubernetes state of one cluster.
#[derive(Debug, Default)]
pub struct KubeState {
    pub rv: u64,
    pub nodes: BTreeMap<String, Node>,
    pub pods: BTreeMap<(String, String), Pod>,
    pub workloads: Vec<Workload>,
    pub namespaces: BTreeMap<String, (String, SimTime)>,
    pub events: VecDeque<KEvent>,
    pub history: VecDeque<Arc<Change>>,
    /// Lowest resourceVersion a watch may resume from (older: 410 Gone).
    pub history_floor: u64,
    pub watchers: Option<broadcast::Sender<Arc<Change>>>,
    pub uid_seq: u64,
    pub cluster_created: SimTime,
    /// The cluster's Kubernetes version, for `/version`.
    pub server_version: Option<KubeVersion>,
}

const EVENT_LIMIT: usize = 64;

impl KubeState {
    pub fn next_uid(&mut self, cluster_seed: &str) -> String {
        self.uid_seq += 1;
        // Deterministic, unique within the simulator, GUID-shaped.
        let h = fnv(cluster_seed) ^ self.uid_seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            h >> 32,
            (h >> 16) & 0xffff,
            h & 0xfff,
            self.uid_seq & 0xfff,
            self.uid_seq
        )
    }

    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Records a change to an object and tells the watchers.
    pub fn record(&mut self, kind: Kind, typ: ChangeType, object: Value) {
        let change = Arc::new(Change {
            rv: self.rv,
            kind,
            typ,
            object,
        });
        self.history.push_back(change.clone());
        while self.history.len() > HISTORY_LIMIT {
            if let Some(old) = self.history.pop_front() {
                self.history_floor = old.rv;
            }
        }
        if let Some(tx) = &self.watchers
            && tx.send(change).is_err()
        {
            self.watchers = None;
        }
    }

    /// A receiver of future changes (created on first use: idle clusters hold no channel).
    pub fn subscribe(&mut self) -> broadcast::Receiver<Arc<Change>> {
        match &self.watchers {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(4096);
                self.watchers = Some(tx);
                rx
            }
        }
    }

    /// Changes after `rv`, or `None` when `rv` is older than the history kept (410).
    pub fn changes_since(&self, rv: u64) -> Option<Vec<Arc<Change>>> {
        if rv < self.history_floor {
            return None;
        }
        Some(self.history.iter().filter(|c| c.rv > rv).cloned().collect())
    }

    // ---------------------------------------------------------------- mutations

    pub fn put_node(&mut self, mut node: Node, typ: ChangeType) {
        node.rv = self.bump();
        let obj = render_node(&node);
        self.nodes.insert(node.name.clone(), node);
        self.record(Kind::Node, typ, obj);
    }

    /// Applies `f` to a node and records the change; returns false when it is gone.
    pub fn update_node(&mut self, name: &str, f: impl FnOnce(&mut Node)) -> bool {
        let Some(mut n) = self.nodes.remove(name) else {
            return false;
        };
        f(&mut n);
        self.put_node(n, ChangeType::Modified);
        true
    }

    pub fn delete_node(&mut self, name: &str) -> Option<Node> {
        let mut n = self.nodes.remove(name)?;
        n.rv = self.bump();
        self.record(Kind::Node, ChangeType::Deleted, render_node(&n));
        Some(n)
    }

    pub fn put_pod(&mut self, mut pod: Pod, typ: ChangeType) {
        pod.rv = self.bump();
        let obj = render_pod(
            &pod,
            &self.workloads[pod.workload],
            self.nodes.get(pod.node.as_deref().unwrap_or("")),
        );
        self.pods.insert((pod.namespace.clone(), pod.name.clone()), pod);
        self.record(Kind::Pod, typ, obj);
    }

    pub fn update_pod(&mut self, key: &(String, String), f: impl FnOnce(&mut Pod)) -> bool {
        let Some(mut p) = self.pods.remove(key) else {
            return false;
        };
        f(&mut p);
        self.put_pod(p, ChangeType::Modified);
        true
    }

    pub fn delete_pod(&mut self, key: &(String, String)) -> Option<Pod> {
        let mut p = self.pods.remove(key)?;
        p.rv = self.bump();
        let obj = render_pod(
            &p,
            &self.workloads[p.workload],
            self.nodes.get(p.node.as_deref().unwrap_or("")),
        );
        self.record(Kind::Pod, ChangeType::Deleted, obj);
        Some(p)
    }

    /// Records the workload's Deployment and ReplicaSet status after its pods changed.
    pub fn touch_workload(&mut self, w: usize) {
        self.bump();
        let (ready, total) = self.workload_counts(w);
        let d = render_deployment(&self.workloads[w], self.rv, ready, total);
        self.record(Kind::Deployment, ChangeType::Modified, d);
        self.bump();
        let rs = render_replicaset(&self.workloads[w], self.rv, ready, total);
        self.record(Kind::ReplicaSet, ChangeType::Modified, rs);
        if self.workloads[w].pdb.is_some() {
            self.bump();
            let p = render_pdb(&self.workloads[w], self.rv, ready, total);
            self.record(Kind::PodDisruptionBudget, ChangeType::Modified, p);
        }
    }

    pub fn add_event(&mut self, e: KEvent) {
        let mut e = e;
        e.rv = self.bump();
        let obj = render_event(&e);
        self.events.push_back(e);
        if self.events.len() > EVENT_LIMIT {
            self.events.pop_front();
        }
        self.record(Kind::Event, ChangeType::Added, obj);
    }

    // ---------------------------------------------------------------- queries

    /// (Ready pods, existing pods) of a workload.
    pub fn workload_counts(&self, w: usize) -> (u32, u32) {
        let mut ready = 0;
        let mut total = 0;
        for p in self.pods.values().filter(|p| p.workload == w) {
            total += 1;
            if p.ready {
                ready += 1;
            }
        }
        (ready, total)
    }

    /// How many more pods of workload `w` may be disrupted now under its PDB.
    pub fn disruptions_allowed(&self, w: usize) -> Option<u32> {
        let wl = &self.workloads[w];
        let pdb = wl.pdb?;
        let (ready, _) = self.workload_counts(w);
        let desired_healthy = match pdb {
            Pdb::MinAvailable(m) => m,
            Pdb::MaxUnavailable(m) => wl.replicas.saturating_sub(m),
        };
        Some(ready.saturating_sub(desired_healthy))
    }

    /// Every object of a kind, rendered, in name order.
    pub fn render_all(&self, kind: Kind) -> Vec<Value> {
        match kind {
            Kind::Namespace => self
                .namespaces
                .iter()
                .map(|(name, (uid, created))| render_namespace(name, uid, *created))
                .collect(),
            Kind::Node => self.nodes.values().map(render_node).collect(),
            Kind::Pod => self
                .pods
                .values()
                .map(|p| {
                    render_pod(
                        p,
                        &self.workloads[p.workload],
                        self.nodes.get(p.node.as_deref().unwrap_or("")),
                    )
                })
                .collect(),
            Kind::Deployment => (0..self.workloads.len())
                .map(|w| {
                    let (r, t) = self.workload_counts(w);
                    render_deployment(&self.workloads[w], self.rv, r, t)
                })
                .collect(),
            Kind::ReplicaSet => (0..self.workloads.len())
                .map(|w| {
                    let (r, t) = self.workload_counts(w);
                    render_replicaset(&self.workloads[w], self.rv, r, t)
                })
                .collect(),
            Kind::PodDisruptionBudget => (0..self.workloads.len())
                .filter(|w| self.workloads[*w].pdb.is_some())
                .map(|w| {
                    let (ready, total) = self.workload_counts(w);
                    render_pdb(&self.workloads[w], self.rv, ready, total)
                })
                .collect(),
            Kind::Event => self.events.iter().map(render_event).collect(),
        }
    }
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}
