//! `ringmaster upgrades` as a user runs it: the real binary, configured by environment
//! variables only, against a simulator on loopback. Its JSON must agree, cluster by
//! cluster and pool by pool, with the simulator's own upgrade profiles; and nothing it
//! logs, even at trace level, may contain the client secret or a token.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_json_agrees_with_the_simulators_upgrade_profiles() {
    let sim = start(demo_fleet(), 1).await;
    let info = sim.info.clone();
    let (report, _) = tokio::task::spawn_blocking(move || run_binary(&info)).await.unwrap();
    let arm = Arm::new(&sim).await;
    let clusters = report["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 8, "every cluster of both subscriptions");
    for c in clusters {
        let id = &c["id"];
        let path = arm.cluster_path(
            id["subscription"].as_str().unwrap(),
            id["resourceGroup"].as_str().unwrap(),
            id["name"].as_str().unwrap(),
        );
        let profile = arm.get(&format!("{path}/upgradeProfiles/default")).await.body;
        let cp = &profile["properties"]["controlPlaneProfile"];
        assert_eq!(c["kubernetesVersion"], cp["kubernetesVersion"], "{id}");
        let theirs: Vec<(String, bool)> = cp["upgrades"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["kubernetesVersion"].as_str().unwrap().to_string(),
                    u["isPreview"].as_bool().unwrap_or(false),
                )
            })
            .collect();
        let ours: Vec<(String, bool)> = c["controlPlaneUpgrades"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["version"].as_str().unwrap().to_string(),
                    u["isPreview"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(ours, theirs, "control-plane upgrades of {id}");
        for p in c["pools"].as_array().unwrap() {
            let name = p["name"].as_str().unwrap();
            let pp = arm
                .get(&format!("{path}/agentPools/{name}/upgradeProfiles/default"))
                .await
                .body;
            assert_eq!(
                p["kubernetesVersion"], pp["properties"]["kubernetesVersion"],
                "{id} {name}"
            );
            assert_eq!(
                p["latestNodeImage"], pp["properties"]["latestNodeImageVersion"],
                "{id} {name}"
            );
            let theirs: Vec<&str> = pp["properties"]["upgrades"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["kubernetesVersion"].as_str().unwrap())
                .collect();
            let ours: Vec<&str> = p["upgrades"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["version"].as_str().unwrap())
                .collect();
            assert_eq!(ours, theirs, "pool upgrades of {id} {name}");
            let pool = arm.get(&format!("{path}/agentPools/{name}")).await.body;
            assert_eq!(p["nodeImage"], pool["properties"]["nodeImageVersion"]);
            assert_eq!(
                p["nodeImageBehind"],
                Value::Bool(pool["properties"]["nodeImageVersion"] != pp["properties"]["latestNodeImageVersion"])
            );
        }
    }
    // The demo has one cluster a minor behind: its upgrades are the next minor's patches.
    let behind = clusters
        .iter()
        .find(|c| c["kubernetesVersion"] == "1.31.11")
        .expect("the 1.31 cluster");
    assert_eq!(behind["controlPlaneUpgrades"][0]["version"], "1.32.6");
    sim.shutdown().await;
}

/// Runs `ringmaster upgrades --output json` configured by environment variables only,
/// at trace log level; returns the JSON and everything it printed. Call it from a
/// blocking thread: the simulator keeps serving on the test's runtime.
fn run_binary(info: &ringmaster::sim::ReadyInfo) -> (Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ringmaster"))
        .args(["upgrades", "--output", "json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AZURE_TENANT_ID", &info.tenant_id)
        .env("AZURE_CLIENT_ID", &info.client_id)
        .env("AZURE_CLIENT_SECRET", &info.client_secret)
        .env("AZURE_AUTHORITY_HOST", &info.authority_host)
        .env("RINGMASTER_ARM_ENDPOINT", &info.arm_endpoint)
        .env("RINGMASTER_CA_CERT", info.ca_cert.as_ref().unwrap())
        .env("RINGMASTER_LOG", "trace")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    let json = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    (json, stderr + &String::from_utf8_lossy(&out.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_in_any_output_even_at_trace_level() {
    let sim = start(demo_fleet(), 1).await;
    let info = sim.info.clone();
    let (_, all_output) = tokio::task::spawn_blocking(move || run_binary(&info)).await.unwrap();
    assert!(
        all_output.len() > 1000,
        "trace logs were produced ({} bytes)",
        all_output.len()
    );
    assert!(
        !all_output.contains(&sim.info.client_secret),
        "the client secret leaked"
    );
    let tokens = sim.shared().tokens().issued();
    assert!(!tokens.is_empty());
    for t in tokens {
        assert!(!all_output.contains(&t), "a bearer token leaked into the output");
    }
    // The kubeconfig tokens of the clusters never leave the simulator in this run, but
    // check the ARM token prefix too: no `Bearer sim.` anywhere.
    assert!(!all_output.contains("Bearer sim."));
    sim.shutdown().await;
}
