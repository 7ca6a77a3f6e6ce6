//! Nodes: readiness, the upgraded pool's version and image, other pools.

use super::*;

fn expect(pool: Option<&str>, version: Option<&str>, image: Option<&str>) -> NodeExpectation {
    NodeExpectation {
        pool: pool.map(Into::into),
        kubelet_version: version.map(Into::into),
        node_image: image.map(Into::into),
    }
}

/// `sys` on the old version (not upgraded yet), `user` upgraded.
fn cluster() -> Vec<NodeInfo> {
    vec![
        node("aks-sys-0", "sys", true, "v1.32.7", "img-1"),
        node("aks-user-0", "user", true, "v1.33.3", "img-2"),
        node("aks-user-1", "user", true, "v1.33.3", "img-2"),
    ]
}

fn set(nodes: &mut [NodeInfo], name: &str, f: impl FnOnce(&mut NodeInfo)) {
    f(nodes.iter_mut().find(|n| n.name == name).unwrap());
}

fn not_ready(node: &str, pool: &str) -> Reason {
    Reason::NodeNotReady {
        node: node.into(),
        pool: Some(pool.into()),
    }
}

fn run(
    nodes_ready: bool,
    no_regression: bool,
    before: Vec<NodeInfo>,
    now: Vec<NodeInfo>,
    e: &NodeExpectation,
) -> Vec<Reason> {
    let mut s = spec();
    s.nodes_ready = nodes_ready;
    s.no_regression = no_regression;
    let b = Baseline::from_snapshot(&snap(vec![], before), &s);
    reasons(evaluate(&snap(vec![], now), &s, Some(&b), e))
}

#[test]
fn upgraded_pool_table() {
    let user = expect(Some("user"), Some("v1.33.3"), Some("img-2"));
    let mut old_version = cluster();
    set(&mut old_version, "aks-user-1", |n| n.kubelet_version = "v1.32.7".into());
    let mut no_label = cluster();
    set(&mut no_label, "aks-user-0", |n| n.node_image = None);
    let mut wrong_image = cluster();
    set(&mut wrong_image, "aks-user-0", |n| n.node_image = Some("img-1".into()));
    let mut down = cluster();
    set(&mut down, "aks-user-0", |n| n.ready = false);
    let cases: Vec<(&str, Vec<NodeInfo>, NodeExpectation, Vec<Reason>)> = vec![
        ("upgraded; other pools may lag", cluster(), user.clone(), vec![]),
        (
            "old kubelet",
            old_version,
            user.clone(),
            vec![Reason::NodeWrongVersion {
                node: "aks-user-1".into(),
                pool: Some("user".into()),
                found: "v1.32.7".into(),
                expected: "v1.33.3".into(),
            }],
        ),
        (
            "no image label",
            no_label,
            user.clone(),
            vec![Reason::NodeWrongImage {
                node: "aks-user-0".into(),
                pool: Some("user".into()),
                found: None,
                expected: "img-2".into(),
            }],
        ),
        (
            "old image",
            wrong_image,
            user.clone(),
            vec![Reason::NodeWrongImage {
                node: "aks-user-0".into(),
                pool: Some("user".into()),
                found: Some("img-1".into()),
                expected: "img-2".into(),
            }],
        ),
        ("NotReady", down, user.clone(), vec![not_ready("aks-user-0", "user")]),
        (
            "version without the v",
            cluster(),
            expect(Some("user"), Some("1.33.3"), None),
            vec![],
        ),
        (
            "pool without nodes",
            cluster(),
            expect(Some("gpu"), Some("v1.33.3"), None),
            vec![Reason::PoolHasNoNodes { pool: "gpu".into() }],
        ),
        (
            "no pool: every node on the version",
            cluster(),
            expect(None, Some("v1.33.3"), None),
            vec![Reason::NodeWrongVersion {
                node: "aks-sys-0".into(),
                pool: Some("sys".into()),
                found: "v1.32.7".into(),
                expected: "v1.33.3".into(),
            }],
        ),
        (
            "control-plane step: readiness only",
            cluster(),
            NodeExpectation::default(),
            vec![],
        ),
    ];
    for (name, nodes, e, want) in cases {
        assert_eq!(run(true, true, cluster(), nodes, &e), want, "{name}");
    }
}

#[test]
fn nodes_without_a_pool_label_are_not_in_the_pool() {
    let mut nodes = cluster();
    for n in &mut nodes {
        n.pool = None;
    }
    let got = run(
        true,
        true,
        cluster(),
        nodes,
        &expect(Some("user"), Some("v1.33.3"), None),
    );
    assert_eq!(got, vec![Reason::PoolHasNoNodes { pool: "user".into() }]);
}

#[test]
fn other_pools_readiness_table() {
    let user = expect(Some("user"), Some("v1.33.3"), None);
    let mut sys_down = cluster();
    set(&mut sys_down, "aks-sys-0", |n| n.ready = false);
    let mut user_down = cluster();
    set(&mut user_down, "aks-user-1", |n| n.ready = false);
    let cases = [
        // (nodes_ready, no_regression, before, now, reasons)
        (
            "nodes_ready: all Ready",
            true,
            false,
            sys_down.clone(),
            sys_down.clone(),
            vec![not_ready("aks-sys-0", "sys")],
        ),
        (
            "off, but Ready before the step",
            false,
            true,
            cluster(),
            sys_down.clone(),
            vec![not_ready("aks-sys-0", "sys")],
        ),
        (
            "off, NotReady before too",
            false,
            true,
            sys_down.clone(),
            sys_down.clone(),
            vec![],
        ),
        (
            "off, no regression check",
            false,
            false,
            cluster(),
            sys_down.clone(),
            vec![],
        ),
        (
            "off: the upgraded pool must still be Ready",
            false,
            false,
            cluster(),
            user_down,
            vec![not_ready("aks-user-1", "user")],
        ),
    ];
    for (name, nodes_ready, no_regression, before, now, want) in cases {
        assert_eq!(run(nodes_ready, no_regression, before, now, &user), want, "{name}");
    }
}

#[test]
fn nodes_are_reported_by_name_whatever_the_snapshot_order() {
    let mut nodes = cluster();
    for n in &mut nodes {
        n.ready = false;
    }
    nodes.reverse();
    let got = run(true, true, cluster(), nodes, &NodeExpectation::default());
    assert_eq!(
        got,
        vec![
            not_ready("aks-sys-0", "sys"),
            not_ready("aks-user-0", "user"),
            not_ready("aks-user-1", "user"),
        ]
    );
}

#[test]
fn nodes_come_before_pods_in_the_reasons() {
    let mut now = healthy();
    now.nodes[1].ready = false;
    now.owners[0].ready = 2;
    now.owners[0].not_ready_pods = vec!["web-5d9f-x".into()];
    let got = reasons(eval_vs(Some(&healthy()), &now, &spec()));
    let kinds: Vec<&str> = got
        .iter()
        .map(|r| match r {
            Reason::NodeNotReady { .. } => "node",
            Reason::PodsNotReady { .. } => "pods",
            Reason::ReadinessRegression { .. } => "regression",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["node", "pods", "regression"]);
}
