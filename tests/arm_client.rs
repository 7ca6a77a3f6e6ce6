//! The typed ARM client against the simulator over real HTTPS: every operation, LROs
//! (success, failure, cancel, resume from a stored URL), 429 storms, 5xx, dropped
//! connections on writes, 401 and token refresh, 412, unknown fields kept.

mod common;

use common::*;
use ringmaster::arm::{self, AksClient, ArmError, ClusterId, OperationRef, Submitted};
use ringmaster::clock::Clock;
use ringmaster::identity::AzureConfig;
use ringmaster::sim::Simulator;
use ringmaster::sim::fleet;
use ringmaster::sim::shared::ManualSimClock;
use std::sync::Arc;
use std::sync::atomic::Ordering;

const SUB: &str = "3f2a8c1e-6b4d-4e7a-9c05-1d2e3f405a61";

fn dev() -> ClusterId {
    ClusterId::new(SUB, "rg-dev-weu", "aks-dev-weu-01")
}

fn connect(sim: &Simulator) -> AksClient {
    let clock: Arc<dyn Clock> = Arc::new(ManualSimClock(sim.shared().clone()));
    arm::connect(&AzureConfig::for_simulator(&sim.info), clock).expect("client")
}

fn fleet_with(edit: impl Fn(String) -> String) -> fleet::Fleet {
    let text = edit(std::fs::read_to_string(demo_fleet_path()).unwrap());
    fleet::parse("demo", &text).unwrap()
}

#[tokio::test]
async fn reads_every_resource_the_planner_needs() {
    let sim = start(fleet_with(|t| t.replace("page_size: 100", "page_size: 2")), 1).await;
    let c = connect(&sim);
    let clusters = c.list_clusters(SUB).await.unwrap();
    assert_eq!(clusters.len(), 5, "all pages followed");
    let mc = c.get_cluster(&dev()).await.unwrap();
    assert_eq!(mc.properties.current_kubernetes_version.as_deref(), Some("1.32.7"));
    assert_eq!(ClusterId::from_arm_id(mc.id.as_deref().unwrap()), Some(dev()));
    let pools = c.list_pools(&dev()).await.unwrap();
    assert_eq!(pools.len(), 2);
    let up = c.cluster_upgrade_profile(&dev()).await.unwrap();
    let offered: Vec<_> = up
        .properties
        .control_plane_profile
        .upgrades
        .iter()
        .map(|u| u.kubernetes_version.as_str())
        .collect();
    assert_eq!(offered, vec!["1.33.2", "1.33.3"]);
    let pup = c.pool_upgrade_profile(&dev(), "user1").await.unwrap();
    assert!(
        pup.properties
            .latest_node_image_version
            .unwrap()
            .starts_with("AKSUbuntu-2204gen2containerd-")
    );
    let versions = c.kubernetes_versions(SUB, "westeurope").await.unwrap();
    assert_eq!(
        versions.values.iter().map(|v| v.version.as_str()).collect::<Vec<_>>(),
        ["1.31", "1.32", "1.33", "1.34", "1.35"]
    );
    let mcfg = c
        .maintenance_configurations(&ClusterId::new(
            "8b7c6d5e-4f3a-4b2c-a1d0-9e8f7a6b5c4d",
            "rg-prod-weu",
            "aks-prd-weu-01",
        ))
        .await
        .unwrap();
    assert!(
        mcfg.iter().any(|m| m.name == "aksManagedAutoUpgradeSchedule"),
        "{mcfg:?}"
    );
    let kubeconfig = c.user_kubeconfig(&dev()).await.unwrap();
    assert!(
        kubeconfig
            .0
            .contains(&format!("server: {}/k8s/", sim.info.arm_endpoint))
    );
    assert_eq!(format!("{kubeconfig:?}"), "<redacted>");
    sim.shutdown().await;
}

#[tokio::test]
async fn control_plane_then_pool_upgrade_to_the_end_and_unknown_fields_survive() {
    let sim = start(demo_fleet(), 1).await;
    let c = connect(&sim);
    // A field ringmaster does not know about, set by someone else.
    let arm_test = Arm::new(&sim).await;
    let path = dev().arm_path();
    let mut body = arm_test.get(&path).await.body;
    body["properties"]["someFutureField"] = serde_json::json!({ "enabled": true });
    let url = arm_test.put(&path, &body).await.header("azure-asyncoperation").unwrap();
    c.http()
        .wait(
            &OperationRef {
                async_url: Some(url),
                location_url: None,
            },
            |_| {},
        )
        .await
        .unwrap();

    let op = match c.upgrade_control_plane(&dev(), "1.33.3").await.unwrap() {
        Submitted::Started(op) => op,
        other => panic!("{other:?}"),
    };
    let mut polls = 0;
    c.http().wait(&op, |_| polls += 1).await.unwrap();
    assert!(polls > 1, "the poller waited between polls");
    let mc = c.get_cluster(&dev()).await.unwrap();
    assert_eq!(mc.properties.current_kubernetes_version.as_deref(), Some("1.33.3"));
    assert_eq!(
        mc.properties.extra["someFutureField"],
        serde_json::json!({ "enabled": true })
    );
    assert!(mc.properties.network_profile.is_some(), "networkProfile kept");
    // Pools kept their version: control plane only.
    assert!(
        mc.properties
            .agent_pool_profiles
            .iter()
            .all(|p| p.properties.current_orchestrator_version.as_deref() == Some("1.32.7"))
    );
    let op = match c.upgrade_pool(&dev(), "user1", "1.33.3").await.unwrap() {
        Submitted::Started(op) => op,
        other => panic!("{other:?}"),
    };
    c.http().wait(&op, |_| {}).await.unwrap();
    assert_eq!(
        c.get_pool(&dev(), "user1")
            .await
            .unwrap()
            .properties
            .current_orchestrator_version
            .as_deref(),
        Some("1.33.3")
    );
    assert_eq!(
        c.upgrade_pool(&dev(), "user1", "1.33.3").await.unwrap(),
        Submitted::NothingToDo
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn failed_and_canceled_operations_and_resume_from_a_stored_url() {
    let mut text = std::fs::read_to_string(demo_fleet_path()).unwrap();
    text.push_str("  - kind: operation_fails\n    cluster: aks-dev-weu-01\n    operation: node_image\n    code: VMExtensionProvisioningError\n    message: simulated failure\n");
    let sim = start(fleet::parse("demo", &text).unwrap(), 1).await;
    let c = connect(&sim);
    let op = match c.upgrade_node_image(&dev(), "user1").await.unwrap() {
        Submitted::Started(op) => op,
        other => panic!("{other:?}"),
    };
    match c.http().wait(&op, |_| {}).await {
        Err(ArmError::Operation { status, code, .. }) => assert_eq!(
            (status.as_str(), code.as_str()),
            ("Failed", "VMExtensionProvisioningError")
        ),
        other => panic!("{other:?}"),
    }
    // Cancel: abort while the control plane upgrades.
    let op = match c.upgrade_control_plane(&dev(), "1.33.2").await.unwrap() {
        Submitted::Started(op) => op,
        other => panic!("{other:?}"),
    };
    let abort = c.abort(&dev(), None).await.unwrap();
    assert!(matches!(abort, Submitted::Started(_)), "{abort:?}");
    match c.http().wait(&op, |_| {}).await {
        Err(ArmError::Operation { status, .. }) => assert_eq!(status, "Canceled"),
        other => panic!("{other:?}"),
    }
    // Resume: the operation URL survives a "restart" as JSON and a new client follows it.
    let op = match c.upgrade_control_plane(&dev(), "1.33.2").await.unwrap() {
        Submitted::Started(op) => op,
        other => panic!("{other:?}"),
    };
    let stored = serde_json::to_string(&op).unwrap();
    drop(c);
    let fresh = connect(&sim);
    let op: OperationRef = serde_json::from_str(&stored).unwrap();
    fresh.http().wait(&op, |_| {}).await.unwrap();
    assert_eq!(
        fresh
            .get_cluster(&dev())
            .await
            .unwrap()
            .properties
            .current_kubernetes_version
            .as_deref(),
        Some("1.33.2")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_budget_keeps_the_client_under_arms_bucket_and_storms_are_ridden_out() {
    // ARM's documented read bucket (250, 25 per second): 600 reads must wait for refills,
    // and the client's own budget (80% of ARM's) paces them so ARM never has to throttle.
    let sim = start(demo_fleet(), 1).await;
    let c = connect(&sim);
    let t0 = c.http().clock().now();
    for _ in 0..600 {
        c.get_cluster(&dev()).await.unwrap();
    }
    let spent = (c.http().clock().now() - t0).num_milliseconds() as f64 / 1000.0;
    assert_eq!(c.http().stats.throttled.load(Ordering::Relaxed), 0, "no 429 at all");
    assert!(
        spent >= (600.0 - 200.0) / 20.0 * 0.95,
        "paced at the client's budget: {spent}s of simulated time"
    );
    sim.shutdown().await;

    let mut text = std::fs::read_to_string(demo_fleet_path()).unwrap();
    text.push_str("  - kind: throttle_storm\n    from: 0s\n    to: 2m\n");
    let sim = start(fleet::parse("demo", &text).unwrap(), 1).await;
    let c = connect(&sim);
    let mc = c.get_cluster(&dev()).await.unwrap();
    assert_eq!(mc.name.as_deref(), Some("aks-dev-weu-01"));
    let throttled = c.http().stats.throttled.load(Ordering::Relaxed);
    assert!(
        throttled >= 2,
        "waited out the storm through Retry-After ({throttled} 429s)"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn server_errors_on_reads_are_retried() {
    let mut text = std::fs::read_to_string(demo_fleet_path()).unwrap();
    text.push_str("  - kind: server_errors\n    rate: 0.3\n    status: \"500\"\n");
    let sim = start(fleet::parse("demo", &text).unwrap(), 5).await;
    let c = connect(&sim);
    for _ in 0..20 {
        c.get_cluster(&dev()).await.unwrap();
    }
    assert!(c.http().stats.retries.load(Ordering::Relaxed) > 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_dropped_write_is_verified_not_resent() {
    // From 1h to 1h05s every answer is lost after the simulator processed the request.
    let mut text = std::fs::read_to_string(demo_fleet_path()).unwrap();
    text.push_str("  - kind: server_errors\n    rate: 1.0\n    status: drop\n    from: 1h\n    to: 1h5s\n");
    let sim = start(fleet::parse("demo", &text).unwrap(), 9).await;
    let c = connect(&sim);
    sim.advance(std::time::Duration::from_secs(3600));
    let ops_before = sim.with_world(|w| w.ops.len());
    // The POST is processed and its answer dropped; the client reads the pool back
    // (those reads fail too until the window closes, and are retried), sees the
    // operation running, and does not send the POST again.
    let out = c.upgrade_node_image(&dev(), "user1").await.unwrap();
    assert_eq!(out, Submitted::InFlight);
    assert_eq!(
        sim.with_world(|w| w.ops.len()) - ops_before,
        1,
        "exactly one operation started"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_tokens_are_refreshed_on_401_and_stale_etags_get_412() {
    let sim = start(demo_fleet(), 1).await;
    let c = connect(&sim);
    c.get_cluster(&dev()).await.unwrap();
    let raw = Arm::new(&sim).await;
    assert_eq!(
        raw.call(reqwest::Method::POST, "/_sim/tokens/expire", None, &[])
            .await
            .status,
        200
    );
    c.get_cluster(&dev()).await.unwrap();
    assert_eq!(c.http().stats.token_refreshes.load(Ordering::Relaxed), 1);

    let mc = c.get_cluster(&dev()).await.unwrap();
    let stale = mc.e_tag.clone().unwrap();
    let url = c.http().url(&dev().arm_path());
    let body = serde_json::to_value(&mc).unwrap();
    // Someone else writes first.
    let raw = Arm::new(&sim).await;
    let first = raw
        .call(reqwest::Method::PUT, &dev().arm_path(), Some(&body), &[])
        .await;
    assert_eq!(first.status, 200);
    c.http()
        .wait(
            &OperationRef {
                async_url: first.header("azure-asyncoperation"),
                location_url: None,
            },
            |_| {},
        )
        .await
        .unwrap();
    let r = c
        .http()
        .send(reqwest::Method::PUT, &url, Some(&body), &[("If-Match", &stale)])
        .await
        .unwrap();
    assert_eq!(r.status, 412);
    sim.shutdown().await;
}
