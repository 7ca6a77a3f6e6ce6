//! ringmaster's Kubernetes access against simulated clusters: a kube-rs client from the
//! ARM kubeconfig (and from an Entra token on an Entra-ID cluster), watches that follow
//! a pool upgrade (nodes change version, pods move and come back Ready), and an API
//! server outage that the snapshot reports (gates fail closed on it), and an Entra
//! token that expires under a long-lived client.

mod common;

use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use ringmaster::arm::{self, ClusterId, Submitted};
use ringmaster::clock::Clock;
use ringmaster::identity::{AzureConfig, AzureTokens};
use ringmaster::kube::{ClusterWatch, KubeSnapshot, WatchSet};
use ringmaster::sim::shared::ManualSimClock;
use ringmaster::sim::{Simulator, fleet};
use std::sync::Arc;
use std::time::Duration;

const SUB: &str = "3f2a8c1e-6b4d-4e7a-9c05-1d2e3f405a61";

fn dev() -> ClusterId {
    ClusterId::new(SUB, "rg-dev-weu", "aks-dev-weu-01")
}

struct Env {
    sim: Simulator,
    arm: arm::AksClient,
    tokens: Arc<AzureTokens>,
    clock: Arc<dyn Clock>,
}

async fn env(fleet: fleet::Fleet) -> Env {
    let sim = start(fleet, 1).await;
    let clock: Arc<dyn Clock> = Arc::new(ManualSimClock(sim.shared().clone()));
    let config = AzureConfig::for_simulator(&sim.info);
    let arm = arm::connect(&config, clock.clone()).unwrap();
    let tokens = Arc::new(AzureTokens::new(config.clone(), config.http_client().unwrap()).unwrap());
    Env {
        sim,
        arm,
        tokens,
        clock,
    }
}

/// Waits (wall clock, bounded: this is I/O) until the watch shows what `f` wants.
async fn until(
    w: &mut ClusterWatch,
    clock: &Arc<dyn Clock>,
    what: &str,
    f: impl Fn(&KubeSnapshot) -> bool,
) -> KubeSnapshot {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = w.snapshot(clock.now());
        if f(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}; last snapshot: {s:?}"
        );
        let _ = tokio::time::timeout(Duration::from_millis(500), w.changed()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_follow_a_pool_upgrade() {
    let e = env(demo_fleet()).await;
    let client = ringmaster::kube::client_for(&e.arm, e.tokens.clone(), &dev())
        .await
        .unwrap();
    let mut set = WatchSet::default();
    let w = set.start(dev(), client);
    let s = until(w, &e.clock, "initial sync", |s| s.synced).await;
    assert!(s.api_error.is_none());
    let (nodes, pods) = e.sim.with_world(|w| {
        let c = w.cluster_index(SUB, "rg-dev-weu", "aks-dev-weu-01").unwrap();
        (w.clusters[c].kube.nodes.len(), w.clusters[c].kube.pods.len())
    });
    assert_eq!(s.nodes.len(), nodes);
    assert_eq!(s.owners.iter().map(|o| o.existing as usize).sum::<usize>(), pods);
    assert!(
        s.owners.iter().all(|o| o.ready == o.desired),
        "all Ready at start: {:?}",
        s.owners
    );
    let web = s
        .owners
        .iter()
        .find(|o| o.owner.namespace == "shop" && o.owner.name.starts_with("web-"))
        .expect("web's ReplicaSet");
    assert_eq!(web.desired, 3);

    // Control plane, then the user pool.
    for (pool, version) in [(None, "1.33.3"), (Some("user1"), "1.33.3")] {
        let sub = match pool {
            None => e.arm.upgrade_control_plane(&dev(), version).await.unwrap(),
            Some(p) => e.arm.upgrade_pool(&dev(), p, version).await.unwrap(),
        };
        let Submitted::Started(op) = sub else { panic!("{sub:?}") };
        e.arm.http().wait(&op, |_| {}).await.unwrap();
    }
    let w = set.get_mut(&dev()).unwrap();
    let s = until(w, &e.clock, "user1 nodes on v1.33.3 and every pod Ready", |s| {
        let user1: Vec<_> = s.nodes.iter().filter(|n| n.pool.as_deref() == Some("user1")).collect();
        user1.len() == 2
            && user1.iter().all(|n| n.kubelet_version == "v1.33.3" && n.ready)
            && s.owners.iter().all(|o| o.ready == o.desired)
    })
    .await;
    assert_eq!(
        s.nodes.iter().filter(|n| n.pool.as_deref() == Some("user1")).count(),
        2,
        "surge nodes are gone"
    );
    set.stop(&dev());
    assert!(set.is_empty());
    e.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_outage_shows_in_the_snapshot_and_the_watch_recovers() {
    let mut text = std::fs::read_to_string(demo_fleet_path()).unwrap();
    text.push_str("  - kind: api_unreachable\n    cluster: aks-dev-weu-01\n    from: 10m\n    to: 20m\n");
    let e = env(fleet::parse("demo", &text).unwrap()).await;
    let client = ringmaster::kube::client_for(&e.arm, e.tokens.clone(), &dev())
        .await
        .unwrap();
    let mut w = ClusterWatch::start_with_probe(client, Duration::from_millis(100));
    until(&mut w, &e.clock, "initial sync", |s| s.synced).await;
    e.sim.advance(Duration::from_secs(600));
    // Evict a pod so that the watch has something to fetch, then the outage shows.
    let _ = e.sim.with_world(|w| {
        let c = w.cluster_index(SUB, "rg-dev-weu", "aks-dev-weu-01").unwrap();
        let key = w.clusters[c].kube.pods.keys().next().cloned().unwrap();
        w.evict(c, &key)
    });
    until(&mut w, &e.clock, "the outage is reported", |s| s.api_error.is_some()).await;
    e.sim.advance(Duration::from_secs(900));
    until(&mut w, &e.clock, "recovered after the outage", |s| {
        s.api_error.is_none() && s.synced
    })
    .await;
    e.sim.shutdown().await;
}

/// The demo fleet with aks-dev-weu-01 on Entra ID (local accounts disabled).
fn entra_fleet() -> fleet::Fleet {
    let text = std::fs::read_to_string(demo_fleet_path()).unwrap().replacen(
        "    kubernetes_version: 1.32.7\n",
        "    kubernetes_version: 1.32.7\n    entra_id: true\n    disable_local_accounts: true\n",
        1,
    );
    fleet::parse("demo", &text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_id_clusters_get_an_entra_token() {
    let e = env(entra_fleet()).await;
    let kubeconfig = e.arm.user_kubeconfig(&dev()).await.unwrap();
    assert!(
        kubeconfig.0.contains("kubelogin"),
        "an Entra-ID cluster's kubeconfig runs kubelogin"
    );
    let client = ringmaster::kube::client_for(&e.arm, e.tokens.clone(), &dev())
        .await
        .unwrap();
    let mut w = ClusterWatch::start(client);
    let s = until(&mut w, &e.clock, "sync with an Entra token", |s| s.synced).await;
    assert!(!s.nodes.is_empty());
    e.sim.shutdown().await;
}

/// Entra tokens expire (after about an hour in Azure) under a client that lives for a
/// whole rollout. The API server's 401 makes the client's next request carry a
/// force-refreshed token, so the client, and a watch started on it, read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entra_id_client_outlives_its_token() {
    let e = env(entra_fleet()).await;
    let client = ringmaster::kube::client_for(&e.arm, e.tokens.clone(), &dev())
        .await
        .unwrap();
    let pods: Api<Pod> = Api::all(client.clone());
    let before = pods.list(&Default::default()).await.unwrap();
    assert!(!before.items.is_empty());

    let hook = Arm::new(&e.sim).await;
    assert_eq!(hook.post("/_sim/tokens/expire").await.status, 200);
    // The request that still carries the expired token is refused...
    let err = pods.list(&Default::default()).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 401), "{err}");
    let shown = format!("{err} {err:?}");
    let issued = e.sim.shared().tokens().issued();
    assert!(!issued.is_empty());
    assert!(issued.iter().all(|t| !shown.contains(t.as_str())), "a token in {shown}");
    // ...and the next one carries a fresh token.
    let after = pods.list(&Default::default()).await.unwrap();
    assert_eq!(after.items.len(), before.items.len());

    let mut w = ClusterWatch::start(client);
    let s = until(&mut w, &e.clock, "sync after the token expired", |s| s.synced).await;
    assert!(s.api_error.is_none(), "{:?}", s.api_error);
    assert!(!s.nodes.is_empty());
    e.sim.shutdown().await;
}
