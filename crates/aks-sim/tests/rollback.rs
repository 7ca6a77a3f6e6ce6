//! Node pool rollback (api-version 2026-10-01, `roll-back-node-pool-version.md`): the
//! pairs a pool left are served as `recentlyUsedVersions` for 7 days while their version
//! is offered; a pool PUT naming one in `nodeImageVersion` replaces the nodes back onto
//! it, once. Driven through the ARM dispatcher on a manual clock: nothing sleeps.

use aks_sim::arm::{self, ArmReply, ArmRequest};
use aks_sim::clock::{SimClock, SimTime};
use aks_sim::operation::OpStatus;
use aks_sim::shared::Shared;
use aks_sim::version::MinorVersion;
use aks_sim::world::World;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

const SUB: &str = "3f2a8c1e-6b4d-4e7a-9c05-1d2e3f405a61";
const CLUSTER: &str = "/subscriptions/3f2a8c1e-6b4d-4e7a-9c05-1d2e3f405a61/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c1";
const OLD_IMAGE: &str = "AKSUbuntu-2204gen2containerd-202611.12.0";
const NEW_IMAGE: &str = "AKSUbuntu-2204gen2containerd-202611.26.0";
const DAY: Duration = Duration::from_secs(24 * 3600);

/// One cluster on 1.32.7 whose pool `user1` runs 1.31.10 on an image one release behind
/// (`node_image`); pods of `shop` never become Ready on 1.32 nodes.
fn fleet(node_image: &str) -> String {
    format!(
        r#"
start_time: 2026-11-30T07:00:00Z
subscriptions: [{SUB}]
versions:
  - {{ minor: "1.31", patches: ["1.31.10"] }}
  - {{ minor: "1.32", patches: ["1.32.6", "1.32.7"] }}
  - {{ minor: "1.33", patches: ["1.33.2"] }}
  - {{ minor: "1.34", patches: ["1.34.1"] }}
  - {{ minor: "1.35", patches: ["1.35.0"] }}
node_images:
  - os_sku: Ubuntu
    family: AKSUbuntu-2204gen2containerd
    releases:
      - {{ version: 202611.12.0, available: "2026-11-16" }}
      - {{ version: 202611.26.0, available: "2026-11-28" }}
clusters:
  - name: c1
    subscription: {SUB}
    resource_group: rg
    location: westeurope
    kubernetes_version: 1.32.7
    pools:
      - {{ name: system, mode: System, count: 2 }}
      - {{ name: user1, count: 2, version: 1.31.10, node_image: {node_image} }}
    workloads:
      - {{ name: web, namespace: shop, replicas: 2, pool: user1 }}
faults:
  - {{ kind: pods_never_ready, cluster: c1, version: "1.32", namespace: shop }}
"#
    )
}

struct Sim(Shared);

impl Sim {
    fn new(node_image: &str) -> Self {
        let fleet = aks_sim::fleet::parse("rollback.yaml", &fleet(node_image)).expect("the fleet compiles");
        let start = SimTime::from_datetime(fleet.start_time.expect("start_time"));
        let world = World::new(fleet, start, 7);
        Sim(Shared::new(
            world,
            SimClock::manual(start),
            "http://sim".into(),
            "secret".into(),
            None,
        ))
    }

    fn call(&self, method: Method, rest: &str, body: Option<Value>) -> ArmReply {
        let path = format!("{CLUSTER}{rest}");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers = HeaderMap::new();
        let mut w = self.0.world();
        w.last_rollback = None;
        arm::dispatch(
            &self.0,
            &mut w,
            &ArmRequest {
                method: &method,
                segments: path.split('/').filter(|s| !s.is_empty()).map(String::from).collect(),
                query: vec![("api-version".into(), "2026-10-01".into())],
                headers: &headers,
                body: body.as_bytes(),
                api_version: "2026-10-01".into(),
            },
        )
    }

    fn put_pool(&self, props: Value) -> ArmReply {
        self.call(Method::PUT, "/agentPools/user1", Some(json!({ "properties": props })))
    }

    fn recent(&self) -> Vec<Value> {
        let r = self.call(Method::GET, "/agentPools/user1/upgradeProfiles/default", None);
        assert_eq!(r.status, StatusCode::OK);
        r.body.expect("a profile")["properties"]["recentlyUsedVersions"]
            .as_array()
            .expect("recentlyUsedVersions is always an array")
            .clone()
    }

    /// Runs the cluster's operation to its end on the simulated clock; its status and
    /// end time.
    fn finish(&self) -> (OpStatus, SimTime) {
        for _ in 0..2000 {
            self.0.clock.advance(Duration::from_secs(15));
            let w = self.0.world();
            if w.clusters[0].operation.is_none() {
                let op = w.ops.values().max_by_key(|o| o.start).expect("an operation ran");
                return (op.status, op.end.expect("it ended"));
            }
        }
        panic!("the operation did not end within 500 simulated minutes");
    }

    fn advance(&self, d: Duration) {
        self.0.clock.advance(d);
        drop(self.0.world());
    }

    fn with<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.0.world())
    }

    /// The pool's (current version, orchestratorVersion, image).
    fn pool(&self) -> (String, String, String) {
        self.with(|w| {
            let p = w.clusters[0].pool("user1").expect("user1").clone();
            (p.current_version.to_string(), p.orchestrator_version, p.node_image)
        })
    }

    /// Every node of user1 as (version, image).
    fn nodes(&self) -> Vec<(String, String)> {
        self.with(|w| {
            w.clusters[0]
                .kube
                .nodes
                .values()
                .filter(|n| n.pool == "user1")
                .map(|n| (n.version.to_string(), n.image.clone()))
                .collect()
        })
    }

    /// (Ready, all) pods of namespace `shop`.
    fn shop_pods(&self) -> (usize, usize) {
        self.with(|w| {
            let pods: Vec<_> = w.clusters[0]
                .kube
                .pods
                .values()
                .filter(|p| p.namespace == "shop")
                .collect();
            (pods.iter().filter(|p| p.ready).count(), pods.len())
        })
    }

    fn upgrade_pool(&self, to: &str) -> SimTime {
        let r = self.put_pool(json!({ "orchestratorVersion": to }));
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let (status, end) = self.finish();
        assert_eq!(status, OpStatus::Succeeded);
        end
    }

    fn upgrade_control_plane(&self, to: &str) {
        let r = self.call(
            Method::PUT,
            "",
            Some(json!({ "properties": { "kubernetesVersion": to } })),
        );
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(self.finish().0, OpStatus::Succeeded);
    }
}

fn code(r: &ArmReply) -> (StatusCode, String, String) {
    let b = r.body.clone().unwrap_or_default();
    (
        r.status,
        b["code"].as_str().unwrap_or_default().to_string(),
        b["message"].as_str().unwrap_or_default().to_string(),
    )
}

fn entry(version: &str, image: &str, at: SimTime) -> Value {
    json!({ "orchestratorVersion": version, "nodeImageVersion": image, "timestamp": at.rfc3339() })
}

#[test]
fn an_upgrade_remembers_the_pair_it_left_newest_first() {
    let sim = Sim::new("202611.12.0");
    assert_eq!(sim.recent(), Vec::<Value>::new(), "nothing before any upgrade");
    let first = sim.upgrade_pool("1.32.6");
    assert_eq!(sim.recent(), vec![entry("1.31.10", OLD_IMAGE, first)]);
    sim.advance(DAY);
    let second = sim.upgrade_pool("1.32.7");
    assert_eq!(
        sim.recent(),
        vec![entry("1.32.6", NEW_IMAGE, second), entry("1.31.10", OLD_IMAGE, first)]
    );
    assert_eq!(sim.pool(), ("1.32.7".into(), "1.32.7".into(), NEW_IMAGE.into()));
}

#[test]
fn a_pair_is_remembered_once_at_its_latest_time() {
    let sim = Sim::new("202611.12.0");
    sim.with(|w| {
        let t0 = w.now;
        let t1 = t0.plus(DAY);
        let p = w.clusters[0].pool_mut("user1").expect("user1");
        let v = p.current_version;
        p.remember(v, OLD_IMAGE.into(), t0);
        p.remember(v, NEW_IMAGE.into(), t0);
        p.remember(v, OLD_IMAGE.into(), t1);
        let seen: Vec<(&str, SimTime)> = p.recent.iter().map(|r| (r.image.as_str(), r.left)).collect();
        assert_eq!(seen, vec![(OLD_IMAGE, t1), (NEW_IMAGE, t0)]);
    });
}

/// The fault keyed by version (pods never Ready on 1.32) clears once the rollback put
/// the pods back on nodes of the old version and image; the history is then empty, so a
/// second rollback (back to the pair just left) is refused.
#[test]
fn a_rollback_restores_version_and_image_and_clears_a_version_fault() {
    let sim = Sim::new("202611.12.0");
    assert_eq!(sim.shop_pods(), (2, 2), "Ready on 1.31");
    sim.upgrade_pool("1.32.7");
    sim.advance(Duration::from_secs(600));
    let (ready, all) = sim.shop_pods();
    assert_eq!((ready, all), (0, 2), "the fault holds on 1.32 nodes");
    assert!(sim.nodes().iter().all(|n| *n == ("1.32.7".into(), NEW_IMAGE.into())));

    let r = sim.put_pool(json!({ "orchestratorVersion": "1.31", "nodeImageVersion": OLD_IMAGE }));
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    sim.with(|w| {
        assert_eq!(w.last_rollback.as_deref(), Some(OLD_IMAGE), "the log marks it");
        let op = w.clusters[0].operation.clone().expect("an operation runs");
        assert!(w.ops[&op].work[0].starts_with("PoolRollback"), "{:?}", w.ops[&op].work);
        assert_eq!(w.clusters[0].pool("user1").unwrap().provisioning_state, "Upgrading");
    });
    let busy = sim.put_pool(json!({ "nodeImageVersion": OLD_IMAGE }));
    assert_eq!(code(&busy).0, StatusCode::CONFLICT, "no concurrent operation");
    assert_eq!(code(&busy).1, "OperationNotAllowed");
    assert_eq!(sim.finish().0, OpStatus::Succeeded);
    sim.advance(Duration::from_secs(600));

    assert_eq!(sim.pool(), ("1.31.10".into(), "1.31.10".into(), OLD_IMAGE.into()));
    let nodes = sim.nodes();
    assert_eq!(nodes.len(), 2, "surge nodes are gone");
    assert!(
        nodes.iter().all(|n| *n == ("1.31.10".into(), OLD_IMAGE.into())),
        "{nodes:?}"
    );
    assert_eq!(sim.shop_pods(), (2, 2), "Ready again on 1.31 nodes");
    assert_eq!(
        sim.recent(),
        Vec::<Value>::new(),
        "a rollback records nothing and clears"
    );

    let again = sim.put_pool(json!({ "orchestratorVersion": "1.32.7", "nodeImageVersion": NEW_IMAGE }));
    let (status, c, msg) = code(&again);
    assert_eq!(
        (status, c.as_str()),
        (StatusCode::BAD_REQUEST, "InvalidParameter"),
        "{msg}"
    );
    assert!(msg.contains("No recently used version"), "{msg}");
    assert_eq!(sim.pool().0, "1.31.10");
}

#[test]
fn a_rollback_is_offered_for_seven_days() {
    let sim = Sim::new("202611.12.0");
    sim.upgrade_pool("1.32.7");
    sim.advance(6 * DAY);
    assert_eq!(sim.recent().len(), 1, "still offered after 6 days");
    sim.advance(2 * DAY);
    assert_eq!(sim.recent(), Vec::<Value>::new(), "gone after 8 days");
    let r = sim.put_pool(json!({ "nodeImageVersion": OLD_IMAGE }));
    let (status, c, msg) = code(&r);
    assert_eq!((status, c.as_str()), (StatusCode::BAD_REQUEST, "InvalidParameter"));
    assert!(
        msg.starts_with(&format!("NodeImageVersion '{OLD_IMAGE}' is not accepted")),
        "{msg}"
    );
    assert!(sim.with(|w| w.clusters[0].operation.is_none()));
    assert_eq!(sim.pool().0, "1.32.7");
}

#[test]
fn a_version_no_longer_offered_is_not_a_rollback_target() {
    let sim = Sim::new("202611.12.0");
    sim.upgrade_pool("1.32.7");
    assert_eq!(sim.recent().len(), 1);
    // AKS drops 1.31 from the region's list.
    sim.with(|w| w.fleet.catalogue.retain(|m| m.minor != MinorVersion::new(1, 31)));
    assert_eq!(sim.recent(), Vec::<Value>::new());
    let r = sim.put_pool(json!({ "orchestratorVersion": "1.31.10", "nodeImageVersion": OLD_IMAGE }));
    assert_eq!(code(&r).0, StatusCode::BAD_REQUEST);
    assert_eq!(code(&r).1, "InvalidParameter");
}

#[test]
fn a_rollback_needs_the_auto_upgrade_channel_off() {
    let sim = Sim::new("202611.12.0");
    sim.upgrade_pool("1.32.7");
    sim.with(|w| w.clusters[0].auto_upgrade_channel = "stable".into());
    let r = sim.put_pool(json!({ "nodeImageVersion": OLD_IMAGE }));
    let (status, c, msg) = code(&r);
    assert_eq!((status, c.as_str()), (StatusCode::BAD_REQUEST, "OperationNotAllowed"));
    assert!(msg.contains("auto-upgrade channel is 'stable'"), "{msg}");
    assert!(sim.with(|w| w.clusters[0].operation.is_none()));
    sim.with(|w| w.clusters[0].auto_upgrade_channel = "none".into());
    let r = sim.put_pool(json!({ "nodeImageVersion": OLD_IMAGE }));
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[test]
fn only_a_served_pair_is_accepted() {
    let sim = Sim::new("202611.12.0");
    sim.upgrade_pool("1.32.7");
    let unknown = "AKSUbuntu-2204gen2containerd-202601.01.0";
    let r = sim.put_pool(json!({ "nodeImageVersion": unknown }));
    let (status, c, msg) = code(&r);
    assert_eq!((status, c.as_str()), (StatusCode::BAD_REQUEST, "InvalidParameter"));
    assert_eq!(
        msg,
        format!(
            "NodeImageVersion '{unknown}' is not accepted. NodeImageVersion can only be current version '{NEW_IMAGE}' or 'latest', or a recently used version for rollback: '{OLD_IMAGE}' (orchestratorVersion '1.31.10')."
        )
    );
    assert_eq!(
        sim.with(|w| w.last_rollback.clone()).as_deref(),
        Some(unknown),
        "logged as a rollback request"
    );
    // The right image with another version than the entry's.
    let r = sim.put_pool(json!({ "orchestratorVersion": "1.32.6", "nodeImageVersion": OLD_IMAGE }));
    assert_eq!(code(&r).1, "InvalidParameter");
    assert!(
        code(&r).2.contains("with orchestratorVersion '1.32.6'"),
        "{}",
        code(&r).2
    );
    assert!(sim.with(|w| w.clusters[0].operation.is_none()));
    assert_eq!(sim.recent().len(), 1, "a refusal changes nothing");
}

/// A GET-then-PUT sends the pool's own image back: no rollback, as before.
#[test]
fn the_current_image_is_not_a_rollback() {
    let sim = Sim::new("202611.12.0");
    sim.upgrade_pool("1.32.7");
    let r = sim.put_pool(json!({ "orchestratorVersion": "1.32.7", "nodeImageVersion": NEW_IMAGE }));
    assert_eq!(r.status, StatusCode::OK);
    sim.with(|w| {
        assert_eq!(w.last_rollback, None);
        let op = w.clusters[0].operation.clone().expect("a reconcile");
        assert_eq!(w.ops[&op].work, vec!["Reconcile".to_string()]);
    });
    sim.finish();
    assert_eq!(sim.pool(), ("1.32.7".into(), "1.32.7".into(), NEW_IMAGE.into()));
    assert_eq!(sim.recent().len(), 1);
}

/// An upgrade that kept the image (the pool was on the latest) leaves a pair with the
/// same image: the exact orchestratorVersion selects it; a minor does not.
#[test]
fn a_pair_with_the_current_image_is_chosen_by_its_exact_version() {
    let sim = Sim::new("202611.26.0");
    let end = sim.upgrade_pool("1.32.7");
    assert_eq!(sim.recent(), vec![entry("1.31.10", NEW_IMAGE, end)]);
    let r = sim.put_pool(json!({ "orchestratorVersion": "1.31", "nodeImageVersion": NEW_IMAGE }));
    let (status, c, _) = code(&r);
    assert_eq!(
        (status, c.as_str()),
        (StatusCode::BAD_REQUEST, "AgentPoolUpgradeVersionNotAllowed")
    );
    let r = sim.put_pool(json!({ "orchestratorVersion": "1.31.10", "nodeImageVersion": NEW_IMAGE }));
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(sim.finish().0, OpStatus::Succeeded);
    assert_eq!(sim.pool(), ("1.31.10".into(), "1.31.10".into(), NEW_IMAGE.into()));
}

/// The control plane moved on after the upgrade: the old version would now be 4 minors
/// behind it, more than AKS allows.
#[test]
fn a_rollback_keeps_the_skew_rules_against_the_control_plane() {
    let sim = Sim::new("202611.12.0");
    sim.upgrade_pool("1.32.7");
    for v in ["1.33.2", "1.34.1"] {
        sim.upgrade_control_plane(v);
    }
    sim.upgrade_control_plane("1.35.0");
    let r = sim.put_pool(json!({ "nodeImageVersion": OLD_IMAGE }));
    let (status, c, msg) = code(&r);
    assert_eq!(
        (status, c.as_str()),
        (StatusCode::BAD_REQUEST, "NodePoolMcVersionIncompatible"),
        "{msg}"
    );
    assert!(msg.contains("1.31.10") && msg.contains("1.35.0"), "{msg}");
    assert!(sim.with(|w| w.clusters[0].operation.is_none()));
    assert_eq!(
        sim.recent().len(),
        1,
        "still offered: only the control plane is in the way"
    );
}

/// A cluster PUT that moves pools goes through the same pool phase: it records too.
#[test]
fn a_cluster_put_that_moves_a_pool_records_its_pair() {
    let sim = Sim::new("202611.12.0");
    let r = sim.call(
        Method::PUT,
        "",
        Some(json!({ "properties": { "agentPoolProfiles": [{ "name": "user1", "orchestratorVersion": "1.32.7" }] } })),
    );
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let (status, end) = sim.finish();
    assert_eq!(status, OpStatus::Succeeded);
    assert_eq!(sim.recent(), vec![entry("1.31.10", OLD_IMAGE, end)]);
}

/// A node image upgrade replaces the nodes too: it records the pair it left, and a
/// rollback to it changes the image back, not the version.
#[test]
fn a_node_image_upgrade_records_its_pair_and_rolls_back() {
    let sim = Sim::new("202611.12.0");
    let r = sim.call(Method::POST, "/agentPools/user1/upgradeNodeImageVersion", None);
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let (status, end) = sim.finish();
    assert_eq!(status, OpStatus::Succeeded);
    assert_eq!(sim.pool(), ("1.31.10".into(), "1.31.10".into(), NEW_IMAGE.into()));
    assert_eq!(sim.recent(), vec![entry("1.31.10", OLD_IMAGE, end)]);
    let r = sim.put_pool(json!({ "nodeImageVersion": OLD_IMAGE }));
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(sim.finish().0, OpStatus::Succeeded);
    assert_eq!(sim.pool(), ("1.31.10".into(), "1.31.10".into(), OLD_IMAGE.into()));
    assert!(sim.nodes().iter().all(|n| n.1 == OLD_IMAGE));
}

/// The refusals of any pool upgrade hold for a rollback: a stopped cluster, a PDB that
/// allows no disruption.
#[test]
fn a_rollback_is_refused_as_an_upgrade_would_be() {
    let sim = Sim::new("202611.12.0");
    sim.upgrade_pool("1.32.7");
    sim.with(|w| w.clusters[0].conditions.stopped = true);
    let r = sim.put_pool(json!({ "nodeImageVersion": OLD_IMAGE }));
    assert_eq!(
        (code(&r).0, code(&r).1.as_str()),
        (StatusCode::BAD_REQUEST, "OperationNotAllowed")
    );
    assert!(code(&r).2.contains("stopped state"), "{}", code(&r).2);
    sim.with(|w| {
        w.clusters[0].conditions.stopped = false;
        w.clusters[0].kube.workloads[2].pdb = Some(aks_sim::fleet::Pdb::MaxUnavailable(0));
    });
    let r = sim.put_pool(json!({ "nodeImageVersion": OLD_IMAGE }));
    assert_eq!(
        (code(&r).0, code(&r).1.as_str()),
        (StatusCode::BAD_REQUEST, "UnsatisfiablePDB")
    );
    assert!(sim.with(|w| w.clusters[0].operation.is_none()));
    assert_eq!(sim.pool().0, "1.32.7");
}

/// An upgrade that ends with quarantined (undrainable, cordoned) nodes fails: the pair it
/// left is not a "good version" to offer.
#[test]
fn an_upgrade_that_quarantines_nodes_records_nothing() {
    use aks_sim::fleet::{Fault, FaultKind, Undrainable};
    let sim = Sim::new("202611.12.0");
    sim.with(|w| {
        w.clusters[0].pool_mut("user1").expect("user1").upgrade.undrainable = Undrainable::Cordon;
        w.fleet.faults.push(Fault {
            what: FaultKind::PdbBlocksDrain {
                cluster: "c1".into(),
                workload: "web".into(),
            },
            from: Duration::ZERO,
            to: None,
        });
    });
    let r = sim.put_pool(json!({ "orchestratorVersion": "1.32.7" }));
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let (status, _) = sim.finish();
    assert_eq!(status, OpStatus::Failed);
    let quarantined = sim.with(|w| {
        let op = w.ops.values().max_by_key(|o| o.start).expect("the upgrade");
        op.error.clone().expect("an error").1
    });
    assert!(quarantined.contains("quarantined"), "{quarantined}");
    assert_eq!(sim.recent(), Vec::<Value>::new());
}
