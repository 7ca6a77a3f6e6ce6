//! One simulated cluster's Kubernetes objects: nodes, pods, workloads (Deployments and
//! their ReplicaSets), PodDisruptionBudgets, namespaces and events, with an etcd-like
//! `resourceVersion` and a bounded change history for watches to resume from.
//!
//! Objects are kept compact and rendered to the Kubernetes JSON shapes only when a
//! client asks (list) or when they change (watch history), so 5,000 idle clusters cost
//! little memory.

use super::clock::SimTime;
use super::fleet::{OsType, Pdb};
use super::version::KubeVersion;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

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

// ---------------------------------------------------------------- rendering

pub fn node_labels(n: &Node) -> BTreeMap<String, String> {
    let os = if n.os == OsType::Windows { "windows" } else { "linux" };
    let mut l: BTreeMap<String, String> = [
        ("agentpool", n.pool.as_str()),
        ("kubernetes.azure.com/agentpool", n.pool.as_str()),
        (
            "kubernetes.azure.com/mode",
            if n.mode_system { "system" } else { "user" },
        ),
        ("kubernetes.azure.com/node-image-version", n.image.as_str()),
        ("kubernetes.azure.com/cluster", "simulated"),
        ("kubernetes.io/os", os),
        ("beta.kubernetes.io/os", os),
        ("kubernetes.io/arch", "amd64"),
        ("kubernetes.io/hostname", n.name.as_str()),
        ("node.kubernetes.io/instance-type", n.vm_size.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    l.insert("kubernetes.azure.com/kubelet-version".into(), format!("v{}", n.version));
    l.extend(n.extra_labels.clone());
    l
}

pub fn render_node(n: &Node) -> Value {
    let ready = if n.ready { "True" } else { "False" };
    let created = n.created.rfc3339();
    let mut spec =
        json!({ "providerID": format!("azure:///subscriptions/simulated/virtualMachineScaleSets/{}", n.name) });
    if n.unschedulable {
        spec["unschedulable"] = json!(true);
        spec["taints"] =
            json!([{ "key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": created }]);
    }
    let os_image = if n.os == OsType::Windows {
        "Windows Server 2022 Datacenter"
    } else {
        "Ubuntu 22.04.5 LTS"
    };
    json!({
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": n.name,
            "uid": n.uid,
            "resourceVersion": n.rv.to_string(),
            "creationTimestamp": created,
            "labels": node_labels(n),
        },
        "spec": spec,
        "status": {
            "conditions": [{
                "type": "Ready",
                "status": ready,
                "reason": if n.ready { "KubeletReady" } else { "KubeletNotReady" },
                "message": if n.ready { "kubelet is posting ready status" } else { "container runtime network not ready" },
                "lastHeartbeatTime": created,
                "lastTransitionTime": created,
            }],
            "nodeInfo": {
                "kubeletVersion": format!("v{}", n.version),
                "kubeProxyVersion": format!("v{}", n.version),
                "osImage": os_image,
                "operatingSystem": if n.os == OsType::Windows { "windows" } else { "linux" },
                "architecture": "amd64",
                "containerRuntimeVersion": "containerd://1.7.27",
                "kernelVersion": "5.15.0-1079-azure",
                "machineID": n.uid,
                "systemUUID": n.uid,
                "bootID": n.uid,
            },
        },
    })
}

fn workload_labels(w: &Workload) -> Value {
    json!({ "app": w.name, "pod-template-hash": w.rs_hash })
}

pub fn render_pod(p: &Pod, w: &Workload, node: Option<&Node>) -> Value {
    let created = p.created.rfc3339();
    let phase = match p.phase {
        PodPhase::Unscheduled | PodPhase::Creating => "Pending",
        PodPhase::Running => "Running",
    };
    let scheduled = p.node.is_some();
    let tf = |b: bool| if b { "True" } else { "False" };
    let container_state = match (p.phase, p.crash_looping, p.started) {
        (PodPhase::Running, false, Some(s)) => json!({ "running": { "startedAt": s.rfc3339() } }),
        (PodPhase::Running, true, _) => {
            json!({ "waiting": { "reason": "CrashLoopBackOff", "message": "back-off restarting failed container app" } })
        }
        _ => json!({ "waiting": { "reason": "ContainerCreating" } }),
    };
    let mut spec = json!({
        "containers": [{ "name": "app", "image": format!("mcr.microsoft.com/simulated/{}:1.0", w.name) }],
        "nodeSelector": { "kubernetes.io/os": if w.os == OsType::Windows { "windows" } else { "linux" } },
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
    });
    if let Some(pool) = &w.pool {
        spec["nodeSelector"]["agentpool"] = json!(pool);
    }
    if let Some(n) = &p.node {
        spec["nodeName"] = json!(n);
    }
    let mut status = json!({
        "phase": phase,
        "conditions": [
            { "type": "PodScheduled", "status": tf(scheduled), "lastTransitionTime": created },
            { "type": "Initialized", "status": tf(scheduled), "lastTransitionTime": created },
            { "type": "ContainersReady", "status": tf(p.ready), "lastTransitionTime": p.ready_since.unwrap_or(p.created).rfc3339() },
            { "type": "Ready", "status": tf(p.ready), "lastTransitionTime": p.ready_since.unwrap_or(p.created).rfc3339() },
        ],
        "qosClass": "BestEffort",
    });
    if scheduled {
        status["containerStatuses"] = json!([{
            "name": "app",
            "ready": p.ready,
            "started": p.phase == PodPhase::Running,
            "restartCount": p.restarts,
            "image": format!("mcr.microsoft.com/simulated/{}:1.0", w.name),
            "imageID": "",
            "state": container_state,
        }]);
        status["startTime"] = json!(created);
        status["hostIP"] = json!(node.map_or("10.224.0.4".to_string(), |n| format!(
            "10.224.0.{}",
            4 + (fnv(&n.name) % 200)
        )));
        if p.phase == PodPhase::Running {
            // From the pod overlay range, stable for the pod's life (kubectl -o wide shows it).
            let h = fnv(&p.uid);
            let ip = format!("10.244.{}.{}", (h >> 8) % 256, 2 + h % 250);
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{ "ip": ip }]);
        }
    } else {
        status["conditions"][0]["reason"] = json!("Unschedulable");
        status["conditions"][0]["message"] =
            json!("0/0 nodes are available: no schedulable node matches the pod's node selector.");
    }
    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": p.name,
            "namespace": p.namespace,
            "uid": p.uid,
            "resourceVersion": p.rv.to_string(),
            "creationTimestamp": created,
            "labels": workload_labels(w),
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": format!("{}-{}", w.name, w.rs_hash),
                "uid": w.rs_uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
        "status": status,
    })
}

pub fn render_deployment(w: &Workload, rv: u64, ready: u32, total: u32) -> Value {
    // The pod template's node selector is the one its pods carry (`render_pod`): what
    // `ringmaster snapshot` reads a workload's pool from, as on a real cluster.
    let mut selector = json!({ "kubernetes.io/os": if w.os == OsType::Windows { "windows" } else { "linux" } });
    if let Some(pool) = &w.pool {
        selector["agentpool"] = json!(pool);
    }
    json!({
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": w.name, "namespace": w.namespace, "uid": w.uid,
            "resourceVersion": rv.to_string(), "generation": 1,
            "creationTimestamp": w.created.rfc3339(),
            "labels": { "app": w.name },
        },
        "spec": {
            "replicas": w.replicas,
            "selector": { "matchLabels": { "app": w.name } },
            "template": { "metadata": { "labels": { "app": w.name } }, "spec": { "containers": [{ "name": "app", "image": format!("mcr.microsoft.com/simulated/{}:1.0", w.name) }], "nodeSelector": selector } },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": total,
            "updatedReplicas": total,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": w.replicas.saturating_sub(ready),
        },
    })
}

pub fn render_replicaset(w: &Workload, rv: u64, ready: u32, total: u32) -> Value {
    json!({
        "kind": "ReplicaSet",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": format!("{}-{}", w.name, w.rs_hash), "namespace": w.namespace, "uid": w.rs_uid,
            "resourceVersion": rv.to_string(), "generation": 1,
            "creationTimestamp": w.created.rfc3339(),
            "labels": workload_labels(w),
            "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "Deployment", "name": w.name, "uid": w.uid, "controller": true, "blockOwnerDeletion": true }],
        },
        "spec": {
            "replicas": w.replicas,
            "selector": { "matchLabels": workload_labels(w) },
        },
        "status": { "replicas": total, "readyReplicas": ready, "availableReplicas": ready, "observedGeneration": 1 },
    })
}

/// A PodDisruptionBudget with the status the disruption controller computes
/// (kubernetes `pkg/controller/disruption`, `getExpectedPodCount`): an integer
/// `minAvailable` expects the pods that exist (`len(pods)`) and desires that many
/// healthy; `maxUnavailable` expects the controller's scale (the replicas) and desires
/// scale - maxUnavailable. `currentHealthy` counts Ready pods; `disruptionsAllowed` is
/// currentHealthy - desiredHealthy, never below 0.
pub fn render_pdb(w: &Workload, rv: u64, ready: u32, existing: u32) -> Value {
    let (spec, desired, expected) = match w.pdb {
        Some(Pdb::MinAvailable(m)) => (json!({ "minAvailable": m }), m, existing),
        Some(Pdb::MaxUnavailable(m)) => (json!({ "maxUnavailable": m }), w.replicas.saturating_sub(m), w.replicas),
        None => (json!({}), 0, w.replicas),
    };
    let mut spec = spec;
    spec["selector"] = json!({ "matchLabels": { "app": w.name } });
    json!({
        "kind": "PodDisruptionBudget",
        "apiVersion": "policy/v1",
        "metadata": {
            "name": w.name, "namespace": w.namespace, "uid": w.pdb_uid,
            "resourceVersion": rv.to_string(), "generation": 1,
            "creationTimestamp": w.created.rfc3339(),
        },
        "spec": spec,
        "status": {
            "observedGeneration": 1,
            "currentHealthy": ready,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "disruptionsAllowed": ready.saturating_sub(desired),
        },
    })
}

pub fn render_namespace(name: &str, uid: &str, created: SimTime) -> Value {
    json!({
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {
            "name": name, "uid": uid, "resourceVersion": "1",
            "creationTimestamp": created.rfc3339(),
            "labels": { "kubernetes.io/metadata.name": name },
        },
        "spec": { "finalizers": ["kubernetes"] },
        "status": { "phase": "Active" },
    })
}

pub fn render_event(e: &KEvent) -> Value {
    let t = e.time.rfc3339();
    json!({
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": { "name": e.name, "namespace": e.namespace, "uid": e.uid, "resourceVersion": e.rv.to_string(), "creationTimestamp": t },
        "involvedObject": { "kind": e.involved_kind, "name": e.involved_name, "namespace": e.involved_namespace, "uid": e.involved_uid, "apiVersion": "v1" },
        "reason": e.reason,
        "message": e.message,
        "type": e.typ,
        "count": 1,
        "firstTimestamp": t,
        "lastTimestamp": t,
        "source": { "component": "aks-simulator" },
        "reportingComponent": "aks-simulator",
    })
}
