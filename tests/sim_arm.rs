//! The simulator's ARM API over real HTTPS: long-running operations, errors
//! (400/401/409/412/429), paging, surge upgrades that honour PDBs, abort, node images,
//! and determinism by seed. Simulated time moves only when a test says so.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use ringmaster::sim::fleet;
use serde_json::{Value, json};
use std::time::Duration;

const SUB: &str = "3f2a8c1e-6b4d-4e7a-9c05-1d2e3f405a61";

fn dev(arm: &Arm) -> String {
    arm.cluster_path(SUB, "rg-dev-weu", "aks-dev-weu-01")
}

async fn op_status(arm: &Arm, url: &str) -> Value {
    let r = arm.call(Method::GET, url, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

#[tokio::test]
async fn pool_upgrade_runs_as_a_long_running_operation() {
    let sim = start(demo_fleet(), 1).await;
    let arm = Arm::new(&sim).await;
    let cp = dev(&arm);
    // Control plane first: 1.32.7 -> 1.33.3.
    let mut mc = arm.get(&cp).await.body;
    mc["properties"]["kubernetesVersion"] = json!("1.33.3");
    let r = arm.put(&cp, &mc).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["properties"]["provisioningState"], "Upgrading");
    let async_url = r.header("azure-asyncoperation").expect("Azure-AsyncOperation header");
    assert!(r.header("retry-after").is_some());
    assert_eq!(op_status(&arm, &async_url).await["status"], "InProgress");
    // While it runs, a second operation is refused with AKS's 409.
    let pool_path = format!("{cp}/agentPools/user1");
    let mut pool = arm.get(&pool_path).await.body;
    pool["properties"]["orchestratorVersion"] = json!("1.33.3");
    let busy = arm.put(&pool_path, &pool).await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    assert_eq!(busy.body["code"], "OperationNotAllowed");
    advance_until(&sim, Duration::from_secs(30), Duration::from_secs(3600), || async {
        op_status(&arm, &async_url).await["status"] == "Succeeded"
    })
    .await;
    let mc = arm.get(&cp).await.body;
    assert_eq!(mc["properties"]["currentKubernetesVersion"], "1.33.3");
    assert_eq!(mc["properties"]["provisioningState"], "Succeeded");
    let done = op_status(&arm, &async_url).await;
    assert!(done["endTime"].is_string());

    // Now the pool, which reimages every node through surge.
    let before: Vec<String> = sim.with_world(|w| {
        let c = w.cluster_index(SUB, "rg-dev-weu", "aks-dev-weu-01").unwrap();
        w.clusters[c]
            .kube
            .nodes
            .values()
            .filter(|n| n.pool == "user1")
            .map(|n| n.name.clone())
            .collect()
    });
    let mut pool = arm.get(&pool_path).await.body;
    pool["properties"]["orchestratorVersion"] = json!("1.33.3");
    let r = arm.put(&pool_path, &pool).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let async_url = r.header("azure-asyncoperation").unwrap();
    advance_until(&sim, Duration::from_secs(15), Duration::from_secs(4 * 3600), || async {
        op_status(&arm, &async_url).await["status"] == "Succeeded"
    })
    .await;
    let pool = arm.get(&pool_path).await.body;
    assert_eq!(pool["properties"]["currentOrchestratorVersion"], "1.33.3");
    sim.with_world(|w| {
        let c = w.cluster_index(SUB, "rg-dev-weu", "aks-dev-weu-01").unwrap();
        let nodes: Vec<_> = w.clusters[c]
            .kube
            .nodes
            .values()
            .filter(|n| n.pool == "user1")
            .collect();
        assert_eq!(nodes.len(), before.len(), "surge nodes are gone at the end");
        assert!(
            nodes
                .iter()
                .all(|n| n.version.to_string() == "1.33.3" && n.ready && !n.unschedulable)
        );
        // Every pod of every workload runs again.
        for (wi, wl) in w.clusters[c].kube.workloads.iter().enumerate() {
            let (ready, total) = w.clusters[c].kube.workload_counts(wi);
            assert_eq!((ready, total), (wl.replicas, wl.replicas), "{}", wl.name);
        }
    });
    sim.shutdown().await;
}

#[tokio::test]
async fn surge_upgrade_never_breaks_a_pdb() {
    let sim = start(demo_fleet(), 7).await;
    let arm = Arm::new(&sim).await;
    let cp = dev(&arm);
    // Pools may trail the control plane: upgrade it first, then watch the pool upgrade
    // event by event and check every PDB after each simulated second.
    let mut mc = arm.get(&cp).await.body;
    mc["properties"]["kubernetesVersion"] = json!("1.33");
    let url = arm.put(&cp, &mc).await.header("azure-asyncoperation").unwrap();
    advance_until(&sim, Duration::from_secs(60), Duration::from_secs(3600), || async {
        op_status(&arm, &url).await["status"] == "Succeeded"
    })
    .await;
    let mut mc = arm.get(&cp).await.body;
    for p in mc["properties"]["agentPoolProfiles"].as_array_mut().unwrap() {
        p["orchestratorVersion"] = json!("1.33");
    }
    let r = arm.put(&cp, &mc).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let url = r.header("azure-asyncoperation").unwrap();
    let mut evictions_seen = 0;
    let mut last_pods = std::collections::BTreeSet::new();
    for _ in 0..(6 * 3600) {
        sim.advance(Duration::from_secs(1));
        let (ok, pods) = sim.with_world(|w| {
            let c = w.cluster_index(SUB, "rg-dev-weu", "aks-dev-weu-01").unwrap();
            let k = &w.clusters[c].kube;
            for (wi, wl) in k.workloads.iter().enumerate() {
                if let Some(pdb) = wl.pdb {
                    let (ready, _) = k.workload_counts(wi);
                    let min = match pdb {
                        fleet::Pdb::MinAvailable(m) => m,
                        fleet::Pdb::MaxUnavailable(m) => wl.replicas - m,
                    };
                    assert!(ready >= min, "{}: {ready} Ready pods, PDB needs {min}", wl.name);
                }
            }
            let pods: std::collections::BTreeSet<String> = k.pods.keys().map(|(_, n)| n.clone()).collect();
            (w.clusters[c].operation.is_none(), pods)
        });
        evictions_seen += last_pods.difference(&pods).count();
        last_pods = pods;
        if ok {
            break;
        }
    }
    assert_eq!(op_status(&arm, &url).await["status"], "Succeeded");
    assert!(evictions_seen > 0, "pods moved during the upgrade");
    sim.shutdown().await;
}

#[tokio::test]
async fn version_rules_give_aks_error_codes() {
    let sim = start(demo_fleet(), 1).await;
    let arm = Arm::new(&sim).await;
    let cp = dev(&arm);
    let mc = arm.get(&cp).await.body;
    // Skipping a minor on the control plane.
    let mut skip = mc.clone();
    skip["properties"]["kubernetesVersion"] = json!("1.34.1");
    let r = arm.put(&cp, &skip).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["code"], "OperationNotAllowed");
    assert!(r.body["message"].as_str().unwrap().contains("Available upgrades"));
    // A pool ahead of the control plane.
    let pool_path = format!("{cp}/agentPools/user1");
    let mut pool = arm.get(&pool_path).await.body;
    pool["properties"]["orchestratorVersion"] = json!("1.33.3");
    let r = arm.put(&pool_path, &pool).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["code"], "NodePoolMcVersionIncompatible");
    // A version the region does not offer.
    pool["properties"]["orchestratorVersion"] = json!("1.32.99");
    let r = arm.put(&pool_path, &pool).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Nothing changed.
    let after = arm.get(&cp).await.body;
    assert_eq!(after["properties"]["currentKubernetesVersion"], "1.32.7");
    assert_eq!(after["properties"]["provisioningState"], "Succeeded");
    sim.shutdown().await;
}

/// AKS's skew from 1.28 on: "the control plane can be up to three minor versions ahead
/// of node pools" (`upgrade-aks-control-plane.md`), and nothing limits how many minors one
/// pool upgrade crosses.
#[tokio::test]
async fn a_pool_three_minors_behind_blocks_the_control_plane_and_catches_up_at_once() {
    let text = std::fs::read_to_string(demo_fleet_path()).unwrap().replacen(
        "    kubernetes_version: 1.32.7\n",
        "    kubernetes_version: 1.34.1\n",
        1,
    );
    let mut fleet = fleet::parse("demo", &text).unwrap();
    // The first cluster: control plane on 1.34.1, pool user1 pinned to 1.31 (three behind).
    let v131: ringmaster::sim::version::KubeVersion = "1.31.11".parse().unwrap();
    fleet.clusters[0].pools[1].version = v131;
    let sim = start(fleet, 1).await;
    let arm = Arm::new(&sim).await;
    let cp = dev(&arm);
    let mut mc = arm.get(&cp).await.body;
    mc["properties"]["kubernetesVersion"] = json!("1.35.0");
    let r = arm.put(&cp, &mc).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert_eq!(r.body["code"], "NodePoolMcVersionIncompatible");
    assert!(r.body["message"].as_str().unwrap().contains("user1"), "{:?}", r.body);
    // The pool may go from 1.31 to its control plane's 1.34 in one upgrade.
    let pool_path = format!("{cp}/agentPools/user1");
    let mut pool = arm.get(&pool_path).await.body;
    pool["properties"]["orchestratorVersion"] = json!("1.34.1");
    let r = arm.put(&pool_path, &pool).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    sim.shutdown().await;
}

#[tokio::test]
async fn stale_etag_gets_412_and_unknown_fields_survive_a_put() {
    let sim = start(demo_fleet(), 1).await;
    let arm = Arm::new(&sim).await;
    let cp = dev(&arm);
    let mut mc = arm.get(&cp).await.body;
    let etag = mc["eTag"].as_str().unwrap().to_string();
    mc["properties"]["someFutureField"] = json!({ "keep": [1, 2, 3] });
    mc["properties"]["kubernetesVersion"] = json!("1.32.7");
    let r = arm.call(Method::PUT, &cp, Some(&mc), &[("If-Match", &etag)]).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let url = r.header("azure-asyncoperation").unwrap();
    advance_until(&sim, Duration::from_secs(10), Duration::from_secs(600), || async {
        op_status(&arm, &url).await["status"] == "Succeeded"
    })
    .await;
    let again = arm.get(&cp).await.body;
    assert_eq!(again["properties"]["someFutureField"], json!({ "keep": [1, 2, 3] }));
    assert_eq!(
        again["properties"]["networkProfile"],
        mc["properties"]["networkProfile"]
    );
    assert_ne!(again["eTag"], json!(etag), "the eTag changes with every write");
    let r = arm.call(Method::PUT, &cp, Some(&mc), &[("If-Match", &etag)]).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    sim.shutdown().await;
}

#[tokio::test]
async fn calls_without_a_valid_token_get_401() {
    let sim = start(demo_fleet(), 1).await;
    let arm = Arm::new(&sim).await;
    let url = format!(
        "{}/subscriptions/{SUB}/providers/Microsoft.ContainerService/managedClusters?api-version={API}",
        arm.base
    );
    let r = to_reply(arm.http.get(&url).send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["code"], "AuthenticationFailed");
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer authorization_uri=")
    );
    let r = to_reply(arm.http.get(&url).bearer_auth("forged").send().await.unwrap()).await;
    assert_eq!(r.body["error"]["code"], "InvalidAuthenticationToken");
    // A token for another audience is refused too.
    let kube_token = token(&arm.http, &sim, "6dae42f8-4368-4678-94ff-3960e28e3630/.default").await;
    let t = kube_token.body["access_token"].as_str().unwrap();
    let r = to_reply(arm.http.get(&url).bearer_auth(t).send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Expired tokens: 401 ExpiredAuthenticationToken, and a fresh token works again.
    let r = arm.call(Method::POST, "/_sim/tokens/expire", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = arm
        .get(&format!(
            "/subscriptions/{SUB}/providers/Microsoft.ContainerService/managedClusters"
        ))
        .await;
    assert_eq!(r.body["error"]["code"], "ExpiredAuthenticationToken");
    let fresh = Arm::new(&sim).await;
    let r = fresh
        .get(&format!(
            "/subscriptions/{SUB}/providers/Microsoft.ContainerService/managedClusters"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // A wrong client secret gets no token, and the answer does not echo it.
    let info = &sim.info;
    let bad = arm
        .http
        .post(format!("{}/{}/oauth2/v2.0/token", info.authority_host, info.tenant_id))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &info.client_id),
            ("client_secret", "hunter2-wrong"),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(!bad.text().await.unwrap().contains("hunter2"));
    sim.shutdown().await;
}

#[tokio::test]
async fn throttling_answers_429_and_refills_on_simulated_time() {
    let text = std::fs::read_to_string(demo_fleet_path()).unwrap().replace(
        "reads: { bucket: 250, per_second: 25 }",
        "reads: { bucket: 5, per_second: 1 }",
    );
    let sim = start(fleet::parse("demo", &text).unwrap(), 1).await;
    let arm = Arm::new(&sim).await;
    let cp = dev(&arm);
    let mut remaining = Vec::new();
    for _ in 0..5 {
        let r = arm.get(&cp).await;
        assert_eq!(r.status, StatusCode::OK);
        remaining.push(
            r.header("x-ms-ratelimit-remaining-subscription-reads")
                .unwrap()
                .parse::<u32>()
                .unwrap(),
        );
    }
    assert_eq!(remaining, vec![4, 3, 2, 1, 0]);
    let r = arm.get(&cp).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["error"]["code"], "SubscriptionRequestsThrottled");
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert_eq!(r.header("retry-after-ms").as_deref(), Some("1000"));
    // Writes have their own bucket.
    assert_ne!(
        arm.post(&format!("{cp}/abort")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    sim.advance(Duration::from_secs(2));
    assert_eq!(arm.get(&cp).await.status, StatusCode::OK);
    sim.shutdown().await;
}

#[tokio::test]
async fn lists_are_paged_with_next_link() {
    let text = std::fs::read_to_string(demo_fleet_path())
        .unwrap()
        .replace("page_size: 100", "page_size: 2");
    let sim = start(fleet::parse("demo", &text).unwrap(), 1).await;
    let arm = Arm::new(&sim).await;
    let mut url = format!("/subscriptions/{SUB}/providers/Microsoft.ContainerService/managedClusters");
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let r = arm.get(&url).await;
        assert_eq!(r.status, StatusCode::OK);
        pages += 1;
        names.extend(
            r.body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string()),
        );
        match r.body["nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(names.len(), 5, "five clusters in the non-prod subscription: {names:?}");
    assert_eq!(pages, 3, "pages of 2: 2 + 2 + 1");
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "no cluster twice");
    sim.shutdown().await;
}

#[tokio::test]
async fn node_image_upgrade_follows_location_and_abort_cancels() {
    let sim = start(demo_fleet(), 3).await;
    let arm = Arm::new(&sim).await;
    let cp = dev(&arm);
    let profile = arm
        .get(&format!("{cp}/agentPools/user1/upgradeProfiles/default"))
        .await
        .body;
    let latest = profile["properties"]["latestNodeImageVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let pool = arm.get(&format!("{cp}/agentPools/user1")).await.body;
    assert_ne!(
        pool["properties"]["nodeImageVersion"].as_str().unwrap(),
        latest,
        "the demo starts this pool behind"
    );
    let r = arm
        .post(&format!("{cp}/agentPools/user1/upgradeNodeImageVersion"))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["properties"]["provisioningState"], "UpgradingNodeImageVersion");
    let location = r.header("location").expect("Location header");
    assert_eq!(
        arm.call(Method::GET, &location, None, &[]).await.status,
        StatusCode::ACCEPTED
    );
    advance_until(&sim, Duration::from_secs(15), Duration::from_secs(4 * 3600), || async {
        arm.call(Method::GET, &location, None, &[]).await.status == StatusCode::OK
    })
    .await;
    let done = arm.call(Method::GET, &location, None, &[]).await;
    assert_eq!(done.body["properties"]["nodeImageVersion"], json!(latest));
    assert_eq!(done.body["properties"]["provisioningState"], "Succeeded");

    // Abort: a pool upgrade in flight ends Canceled, and the pool is usable again.
    let mut mc = arm.get(&cp).await.body;
    mc["properties"]["kubernetesVersion"] = json!("1.33.3");
    let url = arm.put(&cp, &mc).await.header("azure-asyncoperation").unwrap();
    sim.advance(Duration::from_secs(30));
    let r = arm.post(&format!("{cp}/abort")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(arm.get(&cp).await.body["properties"]["provisioningState"], "Canceling");
    advance_until(&sim, Duration::from_secs(10), Duration::from_secs(600), || async {
        op_status(&arm, &url).await["status"] == "Canceled"
    })
    .await;
    let mc = arm.get(&cp).await.body;
    assert_eq!(mc["properties"]["provisioningState"], "Canceled");
    assert_eq!(mc["properties"]["currentKubernetesVersion"], "1.32.7");
    // ARM's async contract: a Canceled status carries `error {code, message}`.
    let canceled = op_status(&arm, &url).await;
    assert_eq!(canceled["error"]["code"], "Canceled", "{canceled}");
    assert!(
        canceled["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{canceled}"
    );
    // Nothing runs now, so abort has nothing to do.
    assert_eq!(arm.post(&format!("{cp}/abort")).await.status, StatusCode::NO_CONTENT);
    // A later operation on one of its pools succeeds: the cluster's provisioningState is
    // that of its latest operation again (`list-aks-clusters.md`), not Canceled forever.
    let pool_path = format!("{cp}/agentPools/system");
    let pool = arm.get(&pool_path).await.body;
    let r = arm.put(&pool_path, &pool).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let url = r.header("azure-asyncoperation").unwrap();
    assert_eq!(arm.get(&cp).await.body["properties"]["provisioningState"], "Canceled");
    advance_until(&sim, Duration::from_secs(10), Duration::from_secs(600), || async {
        op_status(&arm, &url).await["status"] == "Succeeded"
    })
    .await;
    assert_eq!(arm.get(&cp).await.body["properties"]["provisioningState"], "Succeeded");
    sim.shutdown().await;
}

/// AKS gives a cluster with a system-assigned identity a kubelet identity in its node
/// resource group, and `az aks show --query identityProfile.kubeletidentity.objectId`
/// is how AKS's own docs read it.
#[tokio::test]
async fn system_assigned_clusters_show_their_kubelet_identity() {
    let sim = start(demo_fleet(), 1).await;
    let arm = Arm::new(&sim).await;
    let list = arm
        .get(&format!(
            "/subscriptions/{SUB}/providers/Microsoft.ContainerService/managedClusters"
        ))
        .await
        .body;
    let mut client_ids = Vec::new();
    for mc in list["value"].as_array().unwrap() {
        assert_eq!(mc["identity"]["type"], "SystemAssigned");
        let k = &mc["properties"]["identityProfile"]["kubeletidentity"];
        let node_rg = mc["properties"]["nodeResourceGroup"].as_str().unwrap();
        let name = mc["name"].as_str().unwrap();
        assert_eq!(
            k["resourceId"],
            format!(
                "/subscriptions/{SUB}/resourcegroups/{node_rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool"
            )
        );
        for field in ["clientId", "objectId"] {
            let id = k[field].as_str().unwrap_or_default();
            assert!(id.len() == 36 && id.matches('-').count() == 4, "{field} {id}");
        }
        assert_ne!(k["clientId"], k["objectId"]);
        client_ids.push(k["clientId"].as_str().unwrap().to_string());
    }
    let n = client_ids.len();
    client_ids.sort();
    client_ids.dedup();
    assert_eq!(client_ids.len(), n, "each cluster has its own kubelet identity");
    sim.shutdown().await;
}

/// The cloud-metadata document Azure tools read to configure a custom cloud
/// (azure-cli: `ARM_CLOUD_METADATA_URL`): every endpoint is the simulator, and a token
/// asked for the first audience, from the login endpoint it names, opens ARM.
#[tokio::test]
async fn cloud_metadata_points_azure_tools_at_the_simulator() {
    let sim = start(demo_fleet(), 1).await;
    let http = client(&sim);
    let base = &sim.info.arm_endpoint;
    let r = to_reply(
        http.get(format!("{base}/metadata/endpoints?api-version=2022-09-01"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let cloud = &r.body.as_array().expect("an array of clouds since 2019-05-01")[0];
    assert!(cloud["name"].is_string());
    assert_eq!(cloud["resourceManager"], format!("{base}/"));
    assert!(cloud["graph"].as_str().unwrap().starts_with(base.as_str()));
    assert!(cloud["suffixes"].is_object());
    let login = cloud["authentication"]["loginEndpoint"].as_str().unwrap();
    let audience = cloud["authentication"]["audiences"][0].as_str().unwrap();
    let info = &sim.info;
    let t = to_reply(
        http.post(format!("{}{}/oauth2/v2.0/token", login, info.tenant_id))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", info.client_id.as_str()),
                ("client_secret", info.client_secret.as_str()),
                ("scope", &format!("{audience}.default")),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(t.status, StatusCode::OK, "{:?}", t.body);
    let arm = Arm {
        http: http.clone(),
        base: base.clone(),
        token: t.body["access_token"].as_str().unwrap().to_string(),
        sub: SUB.into(),
    };
    assert_eq!(arm.get(&dev(&arm)).await.status, StatusCode::OK);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_pdb_that_blocks_the_drain_fails_the_upgrade_after_the_timeout() {
    let mut text = std::fs::read_to_string(demo_fleet_path()).unwrap();
    text.push_str("  - kind: pdb_blocks_drain\n    cluster: aks-dev-weu-01\n    workload: web\n");
    let sim = start(fleet::parse("demo", &text).unwrap(), 1).await;
    let arm = Arm::new(&sim).await;
    let cp = dev(&arm);
    let r = arm
        .post(&format!("{cp}/agentPools/user1/upgradeNodeImageVersion"))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let url = r.header("azure-asyncoperation").unwrap();
    advance_until(&sim, Duration::from_secs(60), Duration::from_secs(3 * 3600), || async {
        op_status(&arm, &url).await["status"] != "InProgress"
    })
    .await;
    let st = op_status(&arm, &url).await;
    assert_eq!(st["status"], "Failed");
    let msg = st["error"]["message"].as_str().unwrap();
    // AKS's wording (its PodDrainFailure troubleshooting article).
    assert_eq!(st["error"]["code"], "UpgradeFailed");
    assert!(
        msg.starts_with("Drain node aks-user1-") && msg.contains("blocked by pdb web with 0 unready pods."),
        "{msg}"
    );
    // Default undrainable behaviour (Schedule): nothing stays cordoned, no surge node stays.
    sim.with_world(|w| {
        let c = w.cluster_index(SUB, "rg-dev-weu", "aks-dev-weu-01").unwrap();
        assert!(w.clusters[c].kube.nodes.values().all(|n| !n.unschedulable));
        let user1 = w.clusters[c].kube.nodes.values().filter(|n| n.pool == "user1").count();
        assert_eq!(user1 as u32, w.clusters[c].pool("user1").unwrap().count);
    });
    assert_eq!(
        arm.get(&format!("{cp}/agentPools/user1")).await.body["properties"]["provisioningState"],
        "Failed"
    );
    sim.shutdown().await;
}

/// The same seed, fleet and requests give the same answers, byte for byte.
#[tokio::test]
async fn same_seed_same_results() {
    async fn run(seed: u64) -> Vec<String> {
        let sim = start(demo_fleet(), seed).await;
        let arm = Arm::new(&sim).await;
        let cp = dev(&arm);
        let mut transcript = Vec::new();
        let mut mc = arm.get(&cp).await.body;
        mc["properties"]["kubernetesVersion"] = json!("1.33.3");
        for p in mc["properties"]["agentPoolProfiles"].as_array_mut().unwrap() {
            p["orchestratorVersion"] = json!("1.33.3");
        }
        let r = arm.put(&cp, &mc).await;
        transcript.push(r.body.to_string());
        let url = r.header("azure-asyncoperation").unwrap();
        for _ in 0..240 {
            sim.advance(Duration::from_secs(30));
            transcript.push(op_status(&arm, &url).await.to_string());
            transcript.push(arm.get(&cp).await.body.to_string());
            let pods = sim.with_world(|w| {
                let c = w.cluster_index(SUB, "rg-dev-weu", "aks-dev-weu-01").unwrap();
                w.clusters[c].kube.render_all(ringmaster::sim::kube_model::Kind::Pod)
            });
            transcript.push(serde_json::to_string(&pods).unwrap());
        }
        sim.shutdown().await;
        transcript
    }
    let a = run(42).await;
    let b = run(42).await;
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "answer {i} differs between two runs with seed 42");
    }
    let c = run(43).await;
    assert_ne!(a, c, "another seed gives other names and ids");
}

/// `availableAgentPoolVersions`: what a new pool of the cluster may run, i.e. every patch
/// of the region within AKS's skew below the control plane (1.32.7 here: nothing newer),
/// in the shape of the official example.
#[tokio::test]
async fn available_agent_pool_versions_are_those_within_the_skew() {
    let sim = start(demo_fleet(), 1).await;
    let arm = Arm::new(&sim).await;
    let r = arm.get(&format!("{}/availableAgentPoolVersions", dev(&arm))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let versions: Vec<&str> = r.body["properties"]["agentPoolVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["kubernetesVersion"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.31.10", "1.31.11", "1.32.6", "1.32.7"]);
    let example: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/azure/arm-examples/AgentPoolsGetAgentPoolAvailableVersions.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let official = &example["responses"]["200"]["body"];
    assert_eq!(r.body["type"], official["type"]);
    for key in r.body.as_object().unwrap().keys() {
        assert!(official.get(key).is_some(), "{key} is not in the official answer");
    }
    sim.shutdown().await;
}
