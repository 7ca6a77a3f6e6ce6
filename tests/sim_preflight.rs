//! The simulator refuses upgrades as AKS does for reasons a fleet-wide preflight can
//! predict: an unsatisfiable PDB, deprecated API usage, a vCPU quota or a subnet too
//! small for the surge nodes, a stopped cluster; and serves what predicts them (PDB
//! status, `/metrics`, compute and network usages). Over real HTTPS against
//! `tests/fixtures/preflight/fleet.yaml`, on the manual clock.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use ringmaster::sim::{Simulator, fleet};
use serde_json::{Value, json};
use std::time::Duration;

const SUB: &str = "3f2a8c1e-6b4d-4e7a-9c05-1d2e3f405a61";
const RG: &str = "rg-pf";

fn preflight_fleet() -> fleet::Fleet {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/preflight/fleet.yaml");
    fleet::load(&path).expect("preflight fleet compiles")
}

fn cluster(arm: &Arm, name: &str) -> String {
    arm.cluster_path(SUB, RG, name)
}

async fn op_status(arm: &Arm, url: &str) -> Value {
    let r = arm.call(Method::GET, url, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

/// Waits (in simulated time) until the operation behind `url` is terminal.
async fn settle(sim: &Simulator, arm: &Arm, url: &str) -> Value {
    advance_until(sim, Duration::from_secs(30), Duration::from_secs(4 * 3600), || async {
        op_status(arm, url).await["status"] != "InProgress"
    })
    .await;
    op_status(arm, url).await
}

/// Upgrades the control plane of `name` to 1.33.3 (only the control plane) and waits.
async fn upgrade_control_plane(sim: &Simulator, arm: &Arm, name: &str) {
    let path = cluster(arm, name);
    let mut mc = arm.get(&path).await.body;
    mc["properties"]["kubernetesVersion"] = json!("1.33.3");
    let r = arm.put(&path, &mc).await;
    assert_eq!(r.status, StatusCode::OK, "{name}: {:?}", r.body);
    let url = r.header("azure-asyncoperation").unwrap();
    assert_eq!(settle(sim, arm, &url).await["status"], "Succeeded", "{name}");
}

/// Starts a version upgrade of pool `pool` of `name` to 1.33.3; the Azure-AsyncOperation URL.
async fn start_pool_upgrade(arm: &Arm, name: &str, pool: &str) -> String {
    let path = format!("{}/agentPools/{pool}", cluster(arm, name));
    let mut p = arm.get(&path).await.body;
    p["properties"]["orchestratorVersion"] = json!("1.33.3");
    let r = arm.put(&path, &p).await;
    assert_eq!(r.status, StatusCode::OK, "{name}/{pool}: {:?}", r.body);
    r.header("azure-asyncoperation").unwrap()
}

fn usage<'a>(list: &'a Value, family: &str) -> &'a Value {
    list["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"]["value"] == family)
        .unwrap_or_else(|| panic!("no usage {family} in {list}"))
}

async fn compute_usages(arm: &Arm, location: &str) -> Value {
    let r = arm
        .get(&format!(
            "/subscriptions/{SUB}/providers/Microsoft.Compute/locations/{location}/usages"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

async fn subnet_usage(arm: &Arm, subnet: &str) -> (u64, u64) {
    let r = arm
        .get(&format!(
            "/subscriptions/{SUB}/resourceGroups/rg-pf-net/providers/Microsoft.Network/virtualNetworks/vnet-pf/usages"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let id = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-pf-net/providers/Microsoft.Network/virtualNetworks/vnet-pf/subnets/{subnet}"
    );
    let u = r.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id.as_str())
        .unwrap_or_else(|| panic!("no {id} in {}", r.body))
        .clone();
    assert_eq!(u["name"]["value"], "Subnet size and usage");
    assert_eq!(u["unit"], "Count");
    (u["currentValue"].as_u64().unwrap(), u["limit"].as_u64().unwrap())
}

/// The cluster's API server URL and admin token, from its admin kubeconfig.
async fn kube_access(arm: &Arm, name: &str) -> (String, String) {
    let r = arm
        .post(&format!("{}/listClusterAdminCredential", cluster(arm, name)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    use base64::Engine;
    let b64 = r.body["kubeconfigs"][0]["value"].as_str().unwrap();
    let text = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {text}"))
            .trim()
            .to_string()
    };
    (field("server:"), field("token:"))
}

async fn kube_get(sim: &Simulator, arm: &Arm, name: &str, path: &str) -> reqwest::Response {
    let (server, token) = kube_access(arm, name).await;
    client(sim)
        .get(format!("{server}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn arm_shows_power_state_network_and_pool_addresses() {
    let sim = start(preflight_fleet(), 1).await;
    let arm = Arm::new(&sim).await;
    let stopped = arm.get(&cluster(&arm, "pf-stopped")).await.body;
    assert_eq!(stopped["properties"]["powerState"]["code"], "Stopped");
    assert_eq!(
        stopped["properties"]["agentPoolProfiles"][0]["powerState"]["code"],
        "Stopped"
    );
    let ok = arm.get(&cluster(&arm, "pf-ok")).await.body;
    assert_eq!(ok["properties"]["powerState"]["code"], "Running");
    assert_eq!(ok["properties"]["networkProfile"]["networkPlugin"], "azure");
    assert_eq!(ok["properties"]["networkProfile"]["networkPluginMode"], "overlay");
    let pool = &ok["properties"]["agentPoolProfiles"][0];
    assert_eq!(pool["maxPods"], 250);
    assert_eq!(
        pool["vnetSubnetID"],
        format!(
            "/subscriptions/{SUB}/resourceGroups/rg-pf-net/providers/Microsoft.Network/virtualNetworks/vnet-pf/subnets/snet-ok"
        )
    );
    let subnet = arm
        .get(&format!("{}/agentPools/user1", cluster(&arm, "pf-subnet")))
        .await
        .body;
    assert_eq!(subnet["properties"]["maxPods"], 10);
    let mc = arm.get(&cluster(&arm, "pf-subnet")).await.body;
    assert_eq!(mc["properties"]["networkProfile"]["networkPlugin"], "azure");
    assert!(mc["properties"]["networkProfile"].get("networkPluginMode").is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn stopped_cluster_refuses_every_write_and_its_api_server_is_down() {
    let sim = start(preflight_fleet(), 2).await;
    let arm = Arm::new(&sim).await;
    let path = cluster(&arm, "pf-stopped");
    let mut mc = arm.get(&path).await.body;
    mc["properties"]["kubernetesVersion"] = json!("1.33.3");
    let r = arm.put(&path, &mc).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.body["code"], "OperationNotAllowed");
    assert_eq!(
        r.body["message"],
        format!(
            "An error has occurred in subscription {SUB}, resourceGroup: {RG} request: Managed Cluster is in stopped state, no operations except for start are allowed."
        )
    );
    let pool_path = format!("{path}/agentPools/user1");
    let pool = arm.get(&pool_path).await.body;
    let r = arm.put(&pool_path, &pool).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["code"], "OperationNotAllowed");
    let r = arm.post(&format!("{pool_path}/upgradeNodeImageVersion")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let version = kube_get(&sim, &arm, "pf-stopped", "/version").await;
    assert_eq!(version.status(), StatusCode::SERVICE_UNAVAILABLE);
    sim.shutdown().await;
}

#[tokio::test]
async fn unsatisfiable_pdb_refuses_upgrades_that_drain() {
    let sim = start(preflight_fleet(), 3).await;
    let arm = Arm::new(&sim).await;
    // The PDB as the API server reports it: no disruption allowed.
    let pdb: Value = kube_get(
        &sim,
        &arm,
        "pf-pdb",
        "/apis/policy/v1/namespaces/shop/poddisruptionbudgets/ledger",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(pdb["spec"]["maxUnavailable"], 0);
    assert_eq!(
        pdb["status"],
        json!({ "observedGeneration": 1, "currentHealthy": 2, "desiredHealthy": 2, "expectedPods": 2, "disruptionsAllowed": 0 })
    );
    // A control-plane-only upgrade drains nothing and goes through.
    upgrade_control_plane(&sim, &arm, "pf-pdb").await;
    // A pool upgrade is refused up front, as is a cluster PUT that moves pools.
    let pool_path = format!("{}/agentPools/user1", cluster(&arm, "pf-pdb"));
    let mut pool = arm.get(&pool_path).await.body;
    pool["properties"]["orchestratorVersion"] = json!("1.33.3");
    let r = arm.put(&pool_path, &pool).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.body["code"], "UnsatisfiablePDB");
    assert_eq!(
        r.body["message"],
        "1 error occurred:\n\t* PDB shop/ledger has maxunavailble == 0 can't proceed with put operation\n\n"
    );
    let path = cluster(&arm, "pf-pdb");
    let mut mc = arm.get(&path).await.body;
    for p in mc["properties"]["agentPoolProfiles"].as_array_mut().unwrap() {
        p["orchestratorVersion"] = json!("1.33.3");
    }
    let r = arm.put(&path, &mc).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.body["code"], "UnsatisfiablePDB");
    sim.shutdown().await;
}

#[tokio::test]
async fn deprecated_api_usage_blocks_the_minor_upgrade_until_overridden() {
    let sim = start(preflight_fleet(), 4).await;
    let arm = Arm::new(&sim).await;
    // The API server reports the usage as kube-apiserver does.
    let metrics = kube_get(&sim, &arm, "pf-deprecated", "/metrics").await;
    assert_eq!(metrics.status(), StatusCode::OK);
    let ct = metrics.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("# TYPE apiserver_requested_deprecated_apis gauge\n"),
        "{text}"
    );
    assert!(
        text.contains("apiserver_requested_deprecated_apis{group=\"flowcontrol.apiserver.k8s.io\",removed_release=\"1.33\",resource=\"prioritylevelconfigurations\",subresource=\"\",version=\"v1beta3\"} 1\n"),
        "{text}"
    );
    // A healthy cluster's /metrics has no such sample.
    let clean = kube_get(&sim, &arm, "pf-ok", "/metrics").await.text().await.unwrap();
    assert!(!clean.contains("apiserver_requested_deprecated_apis{"), "{clean}");

    let path = cluster(&arm, "pf-deprecated");
    let mut mc = arm.get(&path).await.body;
    mc["properties"]["kubernetesVersion"] = json!("1.33.3");
    let r = arm.put(&path, &mc).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.body["code"], "ValidationError");
    assert_eq!(r.body["subcode"], "UpgradeBlockedOnDeprecatedAPIUsage");
    let msg = r.body["message"].as_str().unwrap();
    assert!(msg.starts_with("Control Plane upgrade is blocked due to recent usage of a Kubernetes API deprecated in the specified version."), "{msg}");
    assert!(
        msg.contains("usage has been detected on API flowcontrol.apiserver.k8s.io.prioritylevelconfigurations.v1beta3, and was recently seen at: 2026-11-30 06:00:00 +0000 UTC, which will be removed in 1.33"),
        "{msg}"
    );
    // forceUpgrade without `until`, or with an `until` already past, changes nothing.
    for overrides in [
        json!({ "forceUpgrade": true }),
        json!({ "forceUpgrade": true, "until": "2026-11-30T06:59:00Z" }),
        json!({ "forceUpgrade": false, "until": "2026-12-01T00:00:00Z" }),
    ] {
        mc["properties"]["upgradeSettings"] = json!({ "overrideSettings": overrides });
        let r = arm.put(&path, &mc).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{overrides}: {:?}", r.body);
        assert_eq!(r.body["subcode"], "UpgradeBlockedOnDeprecatedAPIUsage");
    }
    // As `az aks update --enable-force-upgrade --upgrade-override-until` does: set the
    // override first (a PUT that changes no version), then upgrade with GET-then-PUT.
    let mut mc = arm.get(&path).await.body;
    mc["properties"]["upgradeSettings"] =
        json!({ "overrideSettings": { "forceUpgrade": true, "until": "2026-11-30T10:00:00Z" } });
    let r = arm.put(&path, &mc).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    settle(&sim, &arm, &r.header("azure-asyncoperation").unwrap()).await;
    let mut mc = arm.get(&path).await.body;
    assert_eq!(
        mc["properties"]["upgradeSettings"]["overrideSettings"]["forceUpgrade"],
        true
    );
    mc["properties"]["kubernetesVersion"] = json!("1.33.3");
    let r = arm.put(&path, &mc).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let done = settle(&sim, &arm, &r.header("azure-asyncoperation").unwrap()).await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    let mc = arm.get(&path).await.body;
    assert_eq!(mc["properties"]["currentKubernetesVersion"], "1.33.3");
    // The kept override does not break a later GET-then-PUT, even once expired.
    sim.advance(Duration::from_secs(6 * 3600));
    let r = arm.put(&path, &mc).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    sim.shutdown().await;
}

#[tokio::test]
async fn quota_too_small_for_the_surge_fails_the_operation() {
    let sim = start(preflight_fleet(), 5).await;
    let arm = Arm::new(&sim).await;
    let before = compute_usages(&arm, "northeurope").await;
    assert_eq!(usage(&before, "standardDSv5Family")["currentValue"], 16);
    assert_eq!(usage(&before, "standardDSv5Family")["limit"], 16);
    upgrade_control_plane(&sim, &arm, "pf-quota").await;
    let url = start_pool_upgrade(&arm, "pf-quota", "system").await;
    let done = settle(&sim, &arm, &url).await;
    assert_eq!(done["status"], "Failed", "{done}");
    assert_eq!(done["error"]["code"], "QuotaExceeded");
    let msg = done["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("Create or update VMSS /subscriptions/"), "{msg}");
    assert!(
        msg.contains("Operation could not be completed as it results in exceeding approved standardDSv5Family Cores quota. Additional details - Deployment Model: Resource Manager, Location: northeurope, Current Limit: 16, Current Usage: 16, Additional Required: 2, (Minimum) New Limit Required: 18."),
        "{msg}"
    );
    let pool = arm
        .get(&format!("{}/agentPools/system", cluster(&arm, "pf-quota")))
        .await
        .body;
    assert_eq!(pool["properties"]["provisioningState"], "Failed");
    sim.shutdown().await;
}

#[tokio::test]
async fn full_subnet_fails_the_operation() {
    let sim = start(preflight_fleet(), 6).await;
    let arm = Arm::new(&sim).await;
    // 5 nodes x (1 + max_pods 10) + 4 used = 59 = a /26 less 5 reserved.
    assert_eq!(subnet_usage(&arm, "snet-full").await, (59, 59));
    upgrade_control_plane(&sim, &arm, "pf-subnet").await;
    let url = start_pool_upgrade(&arm, "pf-subnet", "user1").await;
    let done = settle(&sim, &arm, &url).await;
    assert_eq!(done["status"], "Failed", "{done}");
    assert_eq!(done["error"]["code"], "SubnetIsFull");
    assert_eq!(
        done["error"]["message"],
        "Failed to scale node pool 'user1' in Kubernetes service 'pf-subnet'. Error: VMSSAgentPoolReconciler retry failed: Code='SubnetIsFull' Message='snet-full with address prefix 10.10.1.0/26 doesn't have enough capacity for IP addresses.' Details=[]"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn healthy_cluster_upgrades_and_usages_count_its_surge_nodes() {
    let sim = start(preflight_fleet(), 7).await;
    let arm = Arm::new(&sim).await;
    // westeurope: 10 used elsewhere + running clusters' Standard_D2s_v5 nodes (pf-pdb 4,
    // pf-deprecated 4, pf-subnet 5, pf-ok 4: 17 nodes, 34 vCPUs); pf-stopped counts 0.
    let u = compute_usages(&arm, "westeurope").await;
    assert_eq!(
        usage(&u, "standardDSv5Family"),
        &json!({ "currentValue": 44, "limit": 200, "name": { "value": "standardDSv5Family", "localizedValue": "Standard DSv5 Family vCPUs" }, "unit": "Count" })
    );
    assert_eq!(usage(&u, "cores")["currentValue"], 44);
    assert_eq!(usage(&u, "cores")["name"]["localizedValue"], "Total Regional vCPUs");
    assert_eq!(usage(&u, "standardESv5Family")["limit"], 100_000);
    assert_eq!(subnet_usage(&arm, "snet-ok").await, (7, 251));

    upgrade_control_plane(&sim, &arm, "pf-ok").await;
    let url = start_pool_upgrade(&arm, "pf-ok", "system").await;
    // The first poll applies the operation's first step: its surge node now exists.
    assert_eq!(op_status(&arm, &url).await["status"], "InProgress");
    let u = compute_usages(&arm, "westeurope").await;
    assert_eq!(usage(&u, "standardDSv5Family")["currentValue"], 46);
    assert_eq!(subnet_usage(&arm, "snet-ok").await, (8, 251));
    let done = settle(&sim, &arm, &url).await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    let u = compute_usages(&arm, "westeurope").await;
    assert_eq!(usage(&u, "standardDSv5Family")["currentValue"], 44);
    assert_eq!(subnet_usage(&arm, "snet-ok").await, (7, 251));
    // The other pool too, through a cluster PUT.
    let path = cluster(&arm, "pf-ok");
    let mut mc = arm.get(&path).await.body;
    for p in mc["properties"]["agentPoolProfiles"].as_array_mut().unwrap() {
        p["orchestratorVersion"] = json!("1.33.3");
    }
    let r = arm.put(&path, &mc).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let done = settle(&sim, &arm, &r.header("azure-asyncoperation").unwrap()).await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    sim.shutdown().await;
}

#[tokio::test]
async fn two_clusters_fit_the_quota_alone_but_not_together() {
    let sim = start(preflight_fleet(), 8).await;
    let arm = Arm::new(&sim).await;
    let u = compute_usages(&arm, "francecentral").await;
    assert_eq!(usage(&u, "standardDSv3Family")["currentValue"], 16);
    assert_eq!(usage(&u, "standardDSv3Family")["limit"], 18);
    upgrade_control_plane(&sim, &arm, "pf-pair-a").await;
    upgrade_control_plane(&sim, &arm, "pf-pair-b").await;
    // Both at once: a's surge node takes the last 2 vCPUs, b's cannot be created.
    let a = start_pool_upgrade(&arm, "pf-pair-a", "user1").await;
    let b = start_pool_upgrade(&arm, "pf-pair-b", "user1").await;
    let done_b = settle(&sim, &arm, &b).await;
    assert_eq!(done_b["status"], "Failed", "{done_b}");
    assert_eq!(done_b["error"]["code"], "QuotaExceeded");
    assert!(
        done_b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("standardDSv3Family Cores quota. Additional details - Deployment Model: Resource Manager, Location: francecentral, Current Limit: 18, Current Usage: 18, Additional Required: 2"),
        "{done_b}"
    );
    assert_eq!(settle(&sim, &arm, &a).await["status"], "Succeeded");
    // Alone, b fits.
    let b = start_pool_upgrade(&arm, "pf-pair-b", "user1").await;
    assert_eq!(settle(&sim, &arm, &b).await["status"], "Succeeded");
    sim.shutdown().await;
}

/// A PDB that allows disruptions up front but none at drain time (minAvailable equal to
/// the replicas) fails the operation after `drainTimeoutInMinutes`, with AKS's error and
/// a `Drain` event on the node.
#[tokio::test]
async fn a_drain_blocked_by_a_pdb_fails_after_the_drain_timeout() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/preflight/fleet.yaml"),
    )
    .unwrap()
    .replace("        pdb: { min_available: 2 }", "        pdb: { min_available: 3 }")
    .replace(
        "      - { name: user1, count: 2, subnet: vnet-pf/snet-ok }",
        "      - { name: user1, count: 2, subnet: vnet-pf/snet-ok, upgrade_settings: { drain_timeout_minutes: 5 } }",
    );
    let fleet = fleet::parse("inline", &text).expect("compiles");
    let sim = start(fleet, 9).await;
    let arm = Arm::new(&sim).await;
    let pdb: Value = kube_get(
        &sim,
        &arm,
        "pf-ok",
        "/apis/policy/v1/namespaces/shop/poddisruptionbudgets/web",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
    assert_eq!(pdb["status"]["desiredHealthy"], 3);
    // Nothing is refused up front: the PDB has no maxUnavailable 0.
    upgrade_control_plane(&sim, &arm, "pf-ok").await;
    let url = start_pool_upgrade(&arm, "pf-ok", "user1").await;
    let done = settle(&sim, &arm, &url).await;
    assert_eq!(done["status"], "Failed", "{done}");
    assert_eq!(done["error"]["code"], "UpgradeFailed");
    let msg = done["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("Drain node aks-user1-"), "{msg}");
    assert!(
        msg.contains("failed with Too Many Requests error. This error is often caused by a restrictive Pod Disruption Budget (PDB) policy. See https://aka.ms/aks/debugdrainfailures. Original error: Cannot evict pod as it would violate the pod's disruption budget.. PDB debug info: shop/web-"),
        "{msg}"
    );
    assert!(msg.ends_with("blocked by pdb web with 0 unready pods."), "{msg}");
    let events: Value = kube_get(&sim, &arm, "pf-ok", "/api/v1/namespaces/default/events")
        .await
        .json()
        .await
        .unwrap();
    let drain = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reason"] == "Drain" && e["type"] == "Warning")
        .unwrap_or_else(|| panic!("no Drain warning in {events}"));
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "Drain" && e["message"].as_str().unwrap().starts_with("Draining node: aks-user1-")),
        "{events}"
    );
    assert_eq!(drain["type"], "Warning");
    assert_eq!(drain["involvedObject"]["kind"], "Node");
    assert!(
        drain["message"]
            .as_str()
            .unwrap()
            .starts_with("Eviction blocked by Too Many Requests (usually a pdb): web-")
    );
    sim.shutdown().await;
}

/// The compute usages list pages like ARM's other lists (`nextLink`), and a virtual
/// network that does not exist is ARM's 404.
#[tokio::test]
async fn usages_page_and_unknown_networks_are_not_found() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/preflight/fleet.yaml");
    let text = std::fs::read_to_string(path).unwrap() + "\narm:\n  page_size: 3\n";
    let sim = start(fleet::parse("inline", &text).expect("compiles"), 10).await;
    let arm = Arm::new(&sim).await;
    let mut url = format!("/subscriptions/{SUB}/providers/Microsoft.Compute/locations/westeurope/usages");
    let mut names = Vec::new();
    loop {
        let r = arm.get(&url).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let page = r.body["value"].as_array().unwrap();
        assert!(page.len() <= 3);
        names.extend(page.iter().map(|u| u["name"]["value"].as_str().unwrap().to_string()));
        match r.body["nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(names[0], "cores");
    assert!(names.contains(&"standardDSv5Family".to_string()), "{names:?}");
    assert_eq!(names.len(), 8, "{names:?}");
    let r = arm
        .get(&format!(
            "/subscriptions/{SUB}/resourceGroups/rg-pf-net/providers/Microsoft.Network/virtualNetworks/nope/usages"
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["code"], "ResourceNotFound");
    sim.shutdown().await;
}

/// A node image upgrade drains nodes too: with a newer image out, pf-pdb's is refused.
#[tokio::test]
async fn unsatisfiable_pdb_refuses_node_image_upgrades() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/preflight/fleet.yaml");
    let text = std::fs::read_to_string(path).unwrap()
        + "\nnode_images:\n  - os_sku: Ubuntu\n    family: AKSUbuntu-2204gen2containerd\n    releases:\n      - { version: 202611.12.0, available: \"2026-11-16\" }\n      - { version: 202612.01.0, available: \"2026-12-01\" }\n";
    let sim = start(fleet::parse("inline", &text).expect("compiles"), 11).await;
    let arm = Arm::new(&sim).await;
    sim.advance(Duration::from_secs(24 * 3600));
    let pool = format!("{}/agentPools/user1", cluster(&arm, "pf-pdb"));
    let r = arm.post(&format!("{pool}/upgradeNodeImageVersion")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.body["code"], "UnsatisfiablePDB");
    // The same upgrade on a cluster without such a PDB is accepted.
    let ok = format!("{}/agentPools/user1", cluster(&arm, "pf-ok"));
    let r = arm.post(&format!("{ok}/upgradeNodeImageVersion")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    sim.shutdown().await;
}
