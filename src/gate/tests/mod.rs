//! Gate tests: builders for snapshots and specs, then the fail-closed cases and the
//! output formats; pods, nodes and the clock have their own files.

mod nodes;
mod pods;

use super::*;
use crate::gate::snapshot::{NodeInfo, OwnerKey, OwnerPods};
use crate::policy::PodReadiness;
use chrono::{DateTime, TimeZone, Utc};
use std::time::Duration;

pub(super) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

/// Defaults as the policy compiler gives them, except settle/timeout kept round.
pub(super) fn spec() -> GateSpec {
    GateSpec {
        pod_readiness: PodReadiness {
            min_ready_ratio: 1.0,
            include_namespaces: vec![],
            exclude_namespaces: vec![],
            settle: Duration::from_secs(60),
            timeout: Duration::from_secs(900),
        },
        nodes_ready: true,
        no_regression: true,
        regression_tolerance: 0.0,
    }
}

pub(super) fn key(ns: &str, kind: &str, name: &str) -> OwnerKey {
    OwnerKey {
        namespace: ns.into(),
        kind: kind.into(),
        name: name.into(),
    }
}

pub(super) fn oref(ns: &str, kind: &str, name: &str) -> OwnerRef {
    OwnerRef::from(&key(ns, kind, name))
}

/// An owner with `existing` pods named `<name>-<i>`, the first `ready` of them Ready.
pub(super) fn owner(ns: &str, kind: &str, name: &str, desired: u32, existing: u32, ready: u32) -> OwnerPods {
    OwnerPods {
        owner: key(ns, kind, name),
        desired,
        existing,
        ready,
        restarts: 0,
        crash_looping: 0,
        not_ready_pods: (ready..existing).map(|i| format!("{name}-{i}")).collect(),
    }
}

pub(super) fn crashing(mut o: OwnerPods, crash_looping: u32, restarts: u32) -> OwnerPods {
    o.crash_looping = crash_looping;
    o.restarts = restarts;
    o
}

pub(super) fn node(name: &str, pool: &str, ready: bool, version: &str, image: &str) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        pool: Some(pool.into()),
        ready,
        unschedulable: false,
        kubelet_version: version.into(),
        node_image: Some(image.into()),
    }
}

pub(super) fn snap(owners: Vec<OwnerPods>, nodes: Vec<NodeInfo>) -> KubeSnapshot {
    KubeSnapshot {
        taken_at: t0(),
        synced: true,
        api_error: None,
        owners,
        nodes,
    }
}

/// A healthy cluster: two Ready nodes in `sys`, one 3/3 Deployment.
pub(super) fn healthy() -> KubeSnapshot {
    snap(
        vec![owner("app", "ReplicaSet", "web-5d9f", 3, 3, 3)],
        vec![
            node("aks-sys-0", "sys", true, "v1.33.3", "img-1"),
            node("aks-sys-1", "sys", true, "v1.33.3", "img-1"),
        ],
    )
}

/// Evaluates against a baseline of `before` (itself when `None`).
pub(super) fn eval_vs(before: Option<&KubeSnapshot>, now: &KubeSnapshot, spec: &GateSpec) -> Verdict {
    let b = Baseline::from_snapshot(before.unwrap_or(now), spec);
    evaluate(now, spec, Some(&b), &NodeExpectation::default())
}

pub(super) fn reasons(v: Verdict) -> Vec<Reason> {
    match v {
        Ok(_) => vec![],
        Err(b) => {
            assert!(!b.reasons.is_empty(), "Blocked must carry a reason");
            b.reasons
        }
    }
}

#[test]
fn a_healthy_cluster_passes_with_what_it_counted() {
    let v = eval_vs(None, &healthy(), &spec());
    assert_eq!(
        v,
        Ok(Healthy {
            owners: 1,
            pods_ready: 3,
            pods_desired: 3,
            nodes: 2
        })
    );
    assert_eq!(v.unwrap().to_string(), "healthy: 3/3 pods Ready over 1 owners, 2 nodes");
}

/// (name, snapshot, spec, baseline, expected reasons)
type FailCase<'a> = (
    &'a str,
    &'a KubeSnapshot,
    &'a GateSpec,
    Option<&'a Baseline>,
    Vec<Reason>,
);

#[test]
fn fail_closed_table() {
    let s = spec();
    let good = healthy();
    let mut api = healthy();
    api.api_error = Some("connection refused".into());
    let mut unsynced = healthy();
    unsynced.synced = false;
    let mut both = unsynced.clone();
    both.api_error = Some("502".into());
    // An empty, unsynced cluster would otherwise look perfectly healthy.
    let mut empty_unsynced = snap(vec![], vec![]);
    empty_unsynced.synced = false;
    let bad_base = Baseline::from_snapshot(&api, &s);
    let unsynced_base = Baseline::from_snapshot(&unsynced, &s);
    let good_base = Baseline::from_snapshot(&good, &s);
    let mut no_reg = spec();
    no_reg.no_regression = false;
    let cases: Vec<FailCase> = vec![
        (
            "api error",
            &api,
            &s,
            Some(&good_base),
            vec![Reason::ApiError {
                error: "connection refused".into(),
            }],
        ),
        (
            "unsynced",
            &unsynced,
            &s,
            Some(&good_base),
            vec![Reason::WatchesNotSynced],
        ),
        (
            "empty and unsynced",
            &empty_unsynced,
            &s,
            Some(&good_base),
            vec![Reason::WatchesNotSynced],
        ),
        (
            "both, and nothing else judged",
            &both,
            &s,
            None,
            vec![Reason::ApiError { error: "502".into() }, Reason::WatchesNotSynced],
        ),
        (
            "baseline of an unreadable API",
            &good,
            &s,
            Some(&bad_base),
            vec![Reason::BaselineUnreadable {
                error: Some("connection refused".into()),
            }],
        ),
        (
            "baseline of unsynced watches",
            &good,
            &s,
            Some(&unsynced_base),
            vec![Reason::BaselineUnreadable { error: None }],
        ),
        (
            "no baseline but no_regression",
            &good,
            &s,
            None,
            vec![Reason::BaselineMissing],
        ),
    ];
    for (name, snap, spec, base, want) in cases {
        let got = reasons(evaluate(snap, spec, base, &NodeExpectation::default()));
        assert_eq!(got, want, "{name}");
    }
    // Without no_regression, no baseline is needed.
    assert!(evaluate(&good, &no_reg, None, &NodeExpectation::default()).is_ok());
}

#[test]
fn baseline_keeps_selected_namespaces_sorted_and_round_trips() {
    let mut s = spec();
    s.pod_readiness.exclude_namespaces = vec!["kube-system".into()];
    let snap = snap(
        vec![
            owner("zeta", "ReplicaSet", "a", 1, 1, 1),
            owner("kube-system", "ReplicaSet", "coredns", 2, 2, 2),
            crashing(owner("app", "StatefulSet", "db", 3, 3, 2), 1, 7),
        ],
        vec![
            node("n2", "user", false, "v1.33.3", "img"),
            node("n1", "sys", true, "v1.33.3", "img"),
        ],
    );
    let b = Baseline::from_snapshot(&snap, &s);
    let names: Vec<String> = b.owners.iter().map(|o| o.owner.to_string()).collect();
    assert_eq!(names, ["app/StatefulSet/db", "zeta/ReplicaSet/a"]);
    assert_eq!(
        b.owners[0],
        OwnerBaseline {
            owner: oref("app", "StatefulSet", "db"),
            desired: 3,
            existing: 3,
            ready: 2,
            crash_looping: 1,
            restarts: 7,
        }
    );
    let nodes: Vec<(&str, bool)> = b.nodes.iter().map(|n| (n.name.as_str(), n.ready)).collect();
    assert_eq!(nodes, [("n1", true), ("n2", false)]);
    assert_eq!(b.unreadable(), None);
    let json = serde_json::to_string(&b).unwrap();
    assert_eq!(serde_json::from_str::<Baseline>(&json).unwrap(), b);
}

#[test]
fn reasons_print_one_line_each() {
    let cases = vec![
        (
            Reason::ApiError {
                error: "timeout".into(),
            },
            "API unreadable: timeout",
        ),
        (Reason::WatchesNotSynced, "watches not synced yet"),
        (Reason::BaselineMissing, "no baseline to check for regressions"),
        (
            Reason::BaselineUnreadable { error: None },
            "baseline taken before the watches synced",
        ),
        (
            Reason::PodsNotReady {
                owner: oref("app", "ReplicaSet", "web"),
                ready: 1,
                desired: 6,
                existing: 5,
                ratio: 1.0 / 6.0,
                required: 0.98,
                not_ready_pods: vec!["web-1".into(), "web-2".into(), "web-3".into(), "web-4".into()],
                not_ready: 4,
            },
            "app/ReplicaSet/web: 1/6 pods Ready (0.17 < 0.98); 1 missing; not Ready: web-1, web-2, web-3 and 1 more",
        ),
        (
            Reason::NewCrashLoop {
                owner: oref("app", "StatefulSet", "db"),
                crash_looping: 2,
                baseline_crash_looping: 0,
                restarts: 9,
                baseline_restarts: 1,
            },
            "app/StatefulSet/db: 2 pods in CrashLoopBackOff (baseline 0); restarts 9 (baseline 1)",
        ),
        (
            Reason::ReadinessRegression {
                owner: oref("app", "ReplicaSet", "web"),
                ready: 2,
                desired: 4,
                ratio: 0.5,
                baseline_ready: 4,
                baseline_desired: 4,
                baseline_ratio: 1.0,
                tolerance: 0.1,
            },
            "app/ReplicaSet/web: Ready 2/4 (0.50) regressed from 4/4 (1.00), tolerance 0.10",
        ),
        (
            Reason::NodeNotReady {
                node: "n1".into(),
                pool: Some("user".into()),
            },
            "node n1 (pool user): NotReady",
        ),
        (
            Reason::NodeWrongVersion {
                node: "n1".into(),
                pool: None,
                found: "v1.32.7".into(),
                expected: "v1.33.3".into(),
            },
            "node n1: kubelet v1.32.7, expected v1.33.3",
        ),
        (
            Reason::NodeWrongImage {
                node: "n1".into(),
                pool: Some("sys".into()),
                found: None,
                expected: "img-2".into(),
            },
            "node n1 (pool sys): node image unknown, expected img-2",
        ),
        (
            Reason::PoolHasNoNodes { pool: "gpu".into() },
            "pool gpu: no nodes found",
        ),
    ];
    for (r, want) in cases {
        assert_eq!(r.to_string(), want);
        assert!(!want.contains('\n'));
    }
}

#[test]
fn blocked_prints_a_line_per_reason_and_serializes_tagged() {
    let b = Blocked {
        reasons: vec![
            Reason::WatchesNotSynced,
            Reason::NodeNotReady {
                node: "n1".into(),
                pool: None,
            },
        ],
    };
    assert_eq!(b.to_string(), "watches not synced yet\nnode n1: NotReady");
    let json = serde_json::to_value(&b).unwrap();
    assert_eq!(
        json,
        serde_json::json!({ "reasons": [
            { "reason": "watches_not_synced" },
            { "reason": "node_not_ready", "node": "n1", "pool": null },
        ]})
    );
    assert_eq!(serde_json::from_value::<Blocked>(json).unwrap(), b);
}
