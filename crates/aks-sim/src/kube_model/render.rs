//! Rendering of a cluster's compact objects to the Kubernetes JSON shapes clients see
//! (nodes and their labels, pods, Deployments, ReplicaSets, PodDisruptionBudgets,
//! namespaces, events), done only when a client lists or when an object changes.

use super::{KEvent, Node, Pod, PodPhase, Workload, fnv};
use crate::clock::SimTime;
use crate::fleet::{OsType, Pdb};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub(crate) fn node_labels(n: &Node) -> BTreeMap<String, String> {
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

pub(crate) fn render_node(n: &Node) -> Value {
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

pub(crate) fn render_pod(p: &Pod, w: &Workload, node: Option<&Node>) -> Value {
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

pub(crate) fn render_deployment(w: &Workload, rv: u64, ready: u32, total: u32) -> Value {
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

pub(crate) fn render_replicaset(w: &Workload, rv: u64, ready: u32, total: u32) -> Value {
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
pub(crate) fn render_pdb(w: &Workload, rv: u64, ready: u32, existing: u32) -> Value {
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

pub(crate) fn render_namespace(name: &str, uid: &str, created: SimTime) -> Value {
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

pub(crate) fn render_event(e: &KEvent) -> Value {
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
