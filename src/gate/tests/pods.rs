//! Readiness over desired, namespace selection, owner kinds, crash loops, regression.

use super::*;
use crate::gate::pods::DesiredFrom;

fn pods_not_ready(o: &OwnerPods, desired: u32, required: f64) -> Reason {
    Reason::PodsNotReady {
        owner: OwnerRef::from(&o.owner),
        ready: o.ready,
        desired,
        existing: o.existing,
        ratio: f64::from(o.ready) / f64::from(desired),
        required,
        not_ready_pods: o.not_ready_pods.clone(),
        not_ready: o.existing - o.ready,
    }
}

fn with_ratio(r: f64) -> GateSpec {
    let mut s = spec();
    s.pod_readiness.min_ready_ratio = r;
    s
}

#[test]
fn ratio_is_over_desired_not_existing() {
    // A Deployment wants 3; one pod was evicted and not rescheduled: 2 exist, both Ready.
    let web = owner("app", "ReplicaSet", "web", 3, 2, 2);
    let now = snap(vec![web.clone()], vec![]);
    let got = reasons(eval_vs(Some(&snap(vec![], vec![])), &now, &spec()));
    assert_eq!(got, vec![pods_not_ready(&web, 3, 1.0)]);
    assert!(got[0].to_string().contains("2/3 pods Ready (0.67 < 1.00); 1 missing"));
}

#[test]
fn min_ratio_table() {
    let cases = [
        // (desired, existing, ready, min ratio, passes)
        (50, 50, 49, 0.98, true), // exactly at the minimum
        (50, 50, 48, 0.98, false),
        (10, 10, 3, 0.1 + 0.2, true), // a computed 0.30000000000000004 is met by 3/10
        (3, 3, 2, 0.98, false),       // per owner: small owners need all pods at 0.98
        (3, 3, 2, 0.66, true),
        (0, 0, 0, 1.0, true), // nothing desired (a scaled-down ReplicaSet)
        (2, 4, 4, 1.0, true), // surge: more Ready than desired
        (4, 4, 0, 0.0, true), // ratio 0 asks for nothing
    ];
    for (desired, existing, ready, min, pass) in cases {
        let o = owner("app", "ReplicaSet", "web", desired, existing, ready);
        let now = snap(vec![o.clone()], vec![]);
        let got = reasons(eval_vs(Some(&snap(vec![], vec![])), &now, &with_ratio(min)));
        let want = if pass {
            vec![]
        } else {
            vec![pods_not_ready(&o, desired, min)]
        };
        assert_eq!(got, want, "{ready}/{desired} at {min}");
    }
}

#[test]
fn per_owner_catches_one_workload_down_among_many_healthy() {
    // 200 Ready pods and a 3-replica API at 0/3: 98.5% overall, still blocked.
    let big = owner("app", "ReplicaSet", "frontend", 200, 200, 200);
    let api = owner("app", "ReplicaSet", "api", 3, 3, 0);
    let now = snap(vec![big, api.clone()], vec![]);
    let got = reasons(eval_vs(Some(&snap(vec![], vec![])), &now, &with_ratio(0.98)));
    assert_eq!(got, vec![pods_not_ready(&api, 3, 0.98)]);
}

#[test]
fn namespace_selection_table() {
    let broken = |ns: &str| owner(ns, "ReplicaSet", "x", 1, 1, 0);
    let now = snap(vec![broken("app"), broken("kube-system"), broken("monitoring")], vec![]);
    let cases: [(&[&str], &[&str], &[&str]); 5] = [
        // (include, exclude, namespaces that block)
        (&[], &[], &["app", "kube-system", "monitoring"]), // kube-system counted by default
        (&[], &["kube-system"], &["app", "monitoring"]),
        (&["app"], &[], &["app"]),
        (&["app", "monitoring"], &["monitoring"], &["app"]), // exclude wins
        (&["absent"], &[], &[]),
    ];
    for (include, exclude, want) in cases {
        let mut s = spec();
        s.pod_readiness.include_namespaces = include.iter().map(|n| n.to_string()).collect();
        s.pod_readiness.exclude_namespaces = exclude.iter().map(|n| n.to_string()).collect();
        let blocking: Vec<String> = reasons(eval_vs(None, &now, &s))
            .into_iter()
            .map(|r| match r {
                Reason::PodsNotReady { owner, .. } => owner.namespace,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(blocking, want, "include {include:?} exclude {exclude:?}");
        for ns in ["app", "kube-system", "monitoring"] {
            assert_eq!(selects_namespace(&s, ns), want.contains(&ns), "{ns}");
        }
    }
}

#[test]
fn desired_source_by_owner_kind() {
    assert_eq!(DesiredFrom::of_kind("ReplicaSet"), DesiredFrom::Owner);
    assert_eq!(DesiredFrom::of_kind("DaemonSet"), DesiredFrom::Existing);
    assert_eq!(DesiredFrom::of_kind("Node"), DesiredFrom::Existing);
    assert_eq!(DesiredFrom::of_kind("Job"), DesiredFrom::Skip);
    assert_eq!(DesiredFrom::of_kind("StatefulSet"), DesiredFrom::AtLeastBaseline);
    assert_eq!(DesiredFrom::of_kind("Pod"), DesiredFrom::AtLeastBaseline);
}

#[test]
fn owners_missing_pods_against_the_baseline() {
    let s = with_ratio(1.0);
    let before = snap(
        vec![
            owner("app", "StatefulSet", "db", 3, 3, 3),
            owner("app", "Pod", "debug", 1, 1, 1),
            owner("app", "ReplicaSet", "web-old", 2, 2, 2),
            owner("app", "DaemonSet", "agent", 3, 3, 3),
            owner("kube-system", "Node", "kube-proxy-n1", 1, 1, 1),
        ],
        vec![],
    );
    // The StatefulSet lost a pod; the bare pod is gone; the old ReplicaSet was deleted;
    // the DaemonSet shrank with its nodes; the mirror pod left with its node.
    let db = owner("app", "StatefulSet", "db", 2, 2, 2);
    let now = snap(vec![db.clone(), owner("app", "DaemonSet", "agent", 2, 2, 2)], vec![]);
    let got = reasons(eval_vs(Some(&before), &now, &s));
    let gone = Reason::PodsNotReady {
        owner: oref("app", "Pod", "debug"),
        ready: 0,
        desired: 1,
        existing: 0,
        ratio: 0.0,
        required: 1.0,
        not_ready_pods: vec![],
        not_ready: 0,
    };
    let regression = |owner: OwnerRef, ready, desired, before| Reason::ReadinessRegression {
        owner,
        ready,
        desired,
        ratio: f64::from(ready) / f64::from(desired),
        baseline_ready: before,
        baseline_desired: before,
        baseline_ratio: 1.0,
        tolerance: 0.0,
    };
    assert_eq!(
        got,
        vec![
            gone.clone(),
            regression(oref("app", "Pod", "debug"), 0, 1, 1),
            pods_not_ready(&db, 3, 1.0),
            regression(oref("app", "StatefulSet", "db"), 2, 3, 3),
        ]
    );
    assert_eq!(
        gone.to_string(),
        "app/Pod/debug: 0/1 pods Ready (0.00 < 1.00); 1 missing"
    );
}

#[test]
fn jobs_are_not_judged_on_readiness_but_on_crash_loops() {
    let done = owner("batch", "Job", "backup-29381", 1, 1, 0);
    let before = snap(vec![done.clone()], vec![]);
    assert_eq!(reasons(eval_vs(Some(&before), &before, &spec())), vec![]);
    let looping = crashing(done, 1, 5);
    let got = reasons(eval_vs(Some(&before), &snap(vec![looping], vec![]), &spec()));
    assert!(
        matches!(&got[..], [Reason::NewCrashLoop { crash_looping: 1, .. }]),
        "{got:?}"
    );
}

#[test]
fn crash_loop_new_vs_already_there() {
    let s = with_ratio(0.0); // isolate crash loops from readiness
    let base = |c| crashing(owner("app", "ReplicaSet", "web", 4, 4, 4 - c), c, 10 * c);
    let cases = [
        // (crash-looping before, now, new?)
        (0, 0, false),
        (0, 1, true),
        (1, 1, false), // already there before the step
        (2, 1, false), // getting better
        (1, 3, true),  // more than before
    ];
    for (before, now, new) in cases {
        let b = snap(vec![base(before)], vec![]);
        let n = snap(vec![base(now)], vec![]);
        let mut s = s.clone();
        s.no_regression = false;
        let got = reasons(eval_vs(Some(&b), &n, &s));
        let want = if new {
            vec![Reason::NewCrashLoop {
                owner: oref("app", "ReplicaSet", "web"),
                crash_looping: now,
                baseline_crash_looping: before,
                restarts: 10 * now,
                baseline_restarts: 10 * before,
            }]
        } else {
            vec![]
        };
        assert_eq!(got, want, "{before} -> {now}");
    }
    // An owner that did not exist before and crash-loops is new; so is any crash loop
    // when there is no baseline to compare with.
    let fresh = snap(vec![crashing(owner("app", "ReplicaSet", "new", 1, 1, 0), 1, 3)], vec![]);
    let mut s = s.clone();
    s.no_regression = false;
    assert_eq!(reasons(eval_vs(Some(&snap(vec![], vec![])), &fresh, &s)).len(), 1);
    assert_eq!(
        reasons(evaluate(&fresh, &s, None, &NodeExpectation::default())).len(),
        1
    );
    // Excluded namespaces' crash loops are not the gate's business.
    s.pod_readiness.exclude_namespaces = vec!["app".into()];
    assert_eq!(reasons(eval_vs(Some(&snap(vec![], vec![])), &fresh, &s)), vec![]);
}

#[test]
fn regression_table() {
    let cases = [
        // (ready before, ready now, tolerance, no_regression, regressed?)
        (10, 10, 0.0, true, false),
        (10, 9, 0.0, true, true),
        (10, 9, 0.1, true, false), // exactly at the tolerance
        (10, 8, 0.1, true, true),
        (10, 9, 0.05, true, true),
        (10, 5, 0.0, false, false), // the policy does not ask
        (5, 5, 0.0, true, false),   // already low before: no regression
        (5, 7, 0.0, true, false),   // better
    ];
    for (before, now, tolerance, no_regression, regressed) in cases {
        let mut s = with_ratio(0.5);
        s.no_regression = no_regression;
        s.regression_tolerance = tolerance;
        let b = snap(vec![owner("app", "ReplicaSet", "web", 10, 10, before)], vec![]);
        let n = snap(vec![owner("app", "ReplicaSet", "web", 10, 10, now)], vec![]);
        let got = reasons(eval_vs(Some(&b), &n, &s));
        let want = if regressed {
            vec![Reason::ReadinessRegression {
                owner: oref("app", "ReplicaSet", "web"),
                ready: now,
                desired: 10,
                ratio: f64::from(now) / 10.0,
                baseline_ready: before,
                baseline_desired: 10,
                baseline_ratio: f64::from(before) / 10.0,
                tolerance,
            }]
        } else {
            vec![]
        };
        assert_eq!(got, want, "{before} -> {now} tolerance {tolerance}");
    }
    // An owner that was not in the baseline cannot regress.
    let n = snap(vec![owner("app", "ReplicaSet", "new", 10, 10, 6)], vec![]);
    assert_eq!(
        reasons(eval_vs(Some(&snap(vec![], vec![])), &n, &with_ratio(0.5))),
        vec![]
    );
}

#[test]
fn pod_names_are_bounded_and_owners_ordered() {
    let big = owner("b", "ReplicaSet", "big", 100, 100, 0);
    let small = owner("a", "ReplicaSet", "small", 1, 1, 0);
    let now = snap(vec![big, small], vec![]);
    let got = reasons(eval_vs(Some(&snap(vec![], vec![])), &now, &spec()));
    let owners: Vec<String> = got
        .iter()
        .map(|r| match r {
            Reason::PodsNotReady {
                owner,
                not_ready_pods,
                not_ready,
                ..
            } => format!("{owner} {} {not_ready}", not_ready_pods.len()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        owners,
        [
            "a/ReplicaSet/small 1 1".to_string(),
            format!("b/ReplicaSet/big {MAX_PODS_LISTED} 100")
        ]
    );
    assert!(got[1].to_string().ends_with("big-0, big-1, big-2 and 97 more"));
}
