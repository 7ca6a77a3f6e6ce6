//! Azure's own Python SDK (azure-identity + azure-mgmt-containerservice, with
//! azure-core's ARM poller) against the simulator, unchanged: token, upgrade profile,
//! paged list, pool GET, control-plane then pool upgrade, node image upgrades, and a
//! rollback of the upgraded pool from its upgrade profile's `recentlyUsedVersions`. The
//! script `tests/python/sdk_upgrade.py` prints what it saw; this test checks it against
//! the simulator's own state.
//!
//! The SDK's pinned versions (`tests/python/requirements.txt`) go into a virtual
//! environment under the cargo target directory, made on first use and reused after (a
//! stamp holds the requirements it was made from; change a pin and it is made again), so
//! `cargo test` needs only `python3` with its `venv` module and the package index. The
//! test fails (never skips) when that cannot be done. `RINGMASTER_PYTHON` names an
//! interpreter that already has the SDK instead.

use ringmaster::sim::{ClockMode, SimOptions, Simulator, fleet};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const SUB: &str = "3f2a8c1e-6b4d-4e7a-9c05-1d2e3f405a61";
const INSTALL: &str = "apt-get install -y python3 python3-venv";

/// What the simulator holds for one pool.
#[derive(Debug, Clone)]
struct PoolState {
    version: String,
    image: String,
    latest: Option<String>,
    state: &'static str,
}

fn pool_state(sim: &Simulator, rg: &str, cluster: &str, pool: &str) -> PoolState {
    sim.with_world(|w| {
        let c = w.cluster_index(SUB, rg, cluster).expect("cluster exists");
        let cl = &w.clusters[c];
        let p = cl.pool(pool).expect("pool exists");
        PoolState {
            version: p.current_version.to_string(),
            image: p.node_image.clone(),
            latest: w.latest_image(&cl.location, &p.os_sku),
            state: p.provisioning_state,
        }
    })
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("expected a string, got {v}"))
}

async fn run_script(sim: &Simulator) -> Value {
    let info = &sim.info;
    let ca = info.ca_cert.as_deref().expect("the simulator serves TLS");
    let python = match std::env::var("RINGMASTER_PYTHON") {
        Ok(p) => p,
        Err(_) => tokio::task::spawn_blocking(sdk_python)
            .await
            .expect("venv set-up ran")
            .display()
            .to_string(),
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/sdk_upgrade.py");
    let child = tokio::process::Command::new(&python)
        .arg(&script)
        .env("AZURE_TENANT_ID", &info.tenant_id)
        .env("AZURE_CLIENT_ID", &info.client_id)
        .env("AZURE_CLIENT_SECRET", &info.client_secret)
        .env("AZURE_AUTHORITY_HOST", &info.authority_host)
        .env("RINGMASTER_ARM_ENDPOINT", &info.arm_endpoint)
        .env("RINGMASTER_SUBSCRIPTION_ID", SUB)
        .env("RINGMASTER_SUBSCRIPTION_IDS", info.subscription_ids.join(","))
        .env("REQUESTS_CA_BUNDLE", ca)
        .env("SSL_CERT_FILE", ca)
        // No proxy may intercept loopback, and no developer's Azure settings leak in.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("AZURE_SUBSCRIPTION_ID")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{python}` ({e}): `{INSTALL}`"));
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .expect("the SDK script did not finish within 300 s")
        .expect("the SDK script ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(3) => {
            panic!(
                "the Azure Python SDK is not importable by `{python}` (RINGMASTER_PYTHON must have `pip install -r tests/python/requirements.txt`)\n{stderr}"
            )
        }
        _ => panic!(
            "the SDK script failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            out.status
        ),
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("the SDK script printed no JSON line:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON from the SDK script ({e}): {line}"))
}

/// Runs `cmd` to completion; panics with its output and `what` when it fails.
fn must(cmd: &mut std::process::Command, what: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?} ({e}); install Python 3: `{INSTALL}`"));
    assert!(
        out.status.success(),
        "{what} failed ({}); `{INSTALL}` installs what it needs\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The interpreter of a virtual environment holding the pinned SDK, made when missing or
/// when its stamp differs from `tests/python/requirements.txt`.
fn sdk_python() -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let requirements = root.join("tests/python/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).expect("tests/python/requirements.txt");
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("azure-sdk-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("ringmaster-requirements.txt");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return python;
    }
    eprintln!("making {} with the pinned Azure SDK (once)", venv.display());
    let _ = std::fs::remove_dir_all(&venv);
    must(
        std::process::Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    );
    must(
        std::process::Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
        "pip install -r tests/python/requirements.txt",
    );
    std::fs::write(&stamp, &wanted).expect("write the venv's stamp");
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_python_sdk_upgrades_a_cluster_unchanged() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleets/demo.yaml");
    let mut fleet = fleet::load(&path).expect("demo fleet compiles");
    // Small pages, so the SDK's pager has to follow nextLink (4 clusters in SUB).
    fleet.arm.page_size = 3;
    let sim = Simulator::start(SimOptions {
        fleet,
        listen: "127.0.0.1:0".parse().unwrap(),
        // 600 simulated seconds per second: a 4-minute control-plane upgrade takes 0.4 s.
        clock: ClockMode::Scaled(600.0),
        seed: 1,
        plain_http: false,
        state_dir: Some(tempfile::tempdir().expect("temp dir").keep()),
    })
    .await
    .expect("simulator starts");

    // What the simulator holds before the script runs.
    let (cp_before, cp_upgrades, names) = sim.with_world(|w| {
        let c = &w.clusters[w.cluster_index(SUB, "rg-dev-weu", "aks-dev-weu-01").unwrap()];
        let ups: Vec<String> = w
            .control_plane_upgrades(&c.location, c.current_version)
            .iter()
            .map(|(v, _)| v.to_string())
            .collect();
        let names: BTreeSet<String> = w
            .clusters_in(SUB, None)
            .iter()
            .map(|i| w.clusters[*i].name.clone())
            .collect();
        (c.current_version.to_string(), ups, names)
    });
    let user1_before = pool_state(&sim, "rg-dev-weu", "aks-dev-weu-01", "user1");
    let image_before = pool_state(&sim, "rg-dev-neu", "aks-dev-neu-01", "system");
    assert_eq!(cp_before, "1.32.7");
    assert_ne!(
        Some(&image_before.image),
        image_before.latest.as_ref(),
        "the demo's pool starts behind"
    );

    let out = run_script(&sim).await;
    let pretty = serde_json::to_string_pretty(&out).unwrap();
    eprintln!("SDK saw:\n{pretty}");

    // 1. Upgrade profile.
    let prof = &out["upgrade_profile"];
    assert_eq!(prof["control_plane_version"], cp_before.as_str(), "{pretty}");
    let seen: Vec<&str> = prof["upgrades"].as_array().unwrap().iter().map(s).collect();
    assert_eq!(seen, cp_upgrades, "{pretty}");
    assert!(seen.contains(&"1.33.3"));
    assert_eq!(
        prof["pools"]["user1"]["kubernetes_version"],
        user1_before.version.as_str()
    );

    // 2. The paged list: every cluster of the subscription, once.
    let listed: Vec<&str> = out["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| s(&c["name"]))
        .collect();
    assert_eq!(
        listed.iter().copied().map(String::from).collect::<BTreeSet<_>>(),
        names,
        "{pretty}"
    );
    assert_eq!(listed.len(), names.len(), "no cluster twice: {listed:?}");

    // 3. The pool as it was.
    let before = &out["pool_before"];
    assert_eq!(before["current_orchestrator_version"], user1_before.version.as_str());
    assert_eq!(before["node_image_version"], user1_before.image.as_str());
    assert_eq!(before["provisioning_state"], "Succeeded");
    assert_eq!(before["max_surge"], "33%");

    // 4. Control plane through the SDK's poller.
    let cp = &out["control_plane"];
    assert_eq!(cp["poller_status"], "Succeeded", "{pretty}");
    assert_eq!(cp["provisioning_state"], "Succeeded", "{pretty}");
    assert_eq!(cp["kubernetes_version"], "1.33.3");
    assert_eq!(cp["current_kubernetes_version"], "1.33.3");
    assert_eq!(
        cp["pools"]["user1"],
        user1_before.version.as_str(),
        "pools stay where they were"
    );

    // 5. The pool: version and the region's latest node image. (The simulator's pool is
    //    read after step 8's rollback: what it held here is what step 8's GET saw.)
    let user1 = pool_state(&sim, "rg-dev-weu", "aks-dev-weu-01", "user1");
    let after = &out["pool_after"];
    assert_eq!(after["poller_status"], "Succeeded", "{pretty}");
    assert_eq!(after["provisioning_state"], "Succeeded", "{pretty}");
    assert_eq!(after["orchestrator_version"], "1.33.3");
    assert_eq!(after["current_orchestrator_version"], "1.33.3");
    assert_eq!(after["max_surge"], "33%", "upgrade settings survive the GET-then-PUT");
    assert_eq!(out["rollback"]["before"]["current_orchestrator_version"], "1.33.3");
    assert_eq!(user1.state, "Succeeded");
    assert_eq!(
        Some(s(&after["node_image_version"])),
        user1.latest.as_deref(),
        "a version upgrade takes the latest image"
    );
    assert_eq!(out["cluster_after"]["pools"]["user1"], "1.33.3");

    // 6. Node image upgrade (202 + LRO) of a pool that was behind.
    let img = &out["node_image"];
    let system = pool_state(&sim, "rg-dev-neu", "aks-dev-neu-01", "system");
    assert_eq!(img["poller_status"], "Succeeded", "{pretty}");
    assert_eq!(img["provisioning_state"], "Succeeded", "{pretty}");
    assert_eq!(img["before"], image_before.image.as_str());
    assert_eq!(img["after"], img["latest"], "{pretty}");
    assert_eq!(Some(s(&img["after"])), system.latest.as_deref());
    assert_eq!(system.image, s(&img["after"]));
    assert_eq!(
        system.version, image_before.version,
        "a node image upgrade keeps the Kubernetes version"
    );
    assert_eq!(system.state, "Succeeded");

    // 7. Node image upgrade of a pool already current (200, nothing to poll).
    let cur = &out["node_image_current"];
    assert_eq!(cur["poller_status"], "Succeeded", "{pretty}");
    assert_eq!(cur["after"], cur["latest"]);
    assert_eq!(Some(s(&cur["after"])), user1.latest.as_deref());
    assert_eq!(cur["provisioning_state"], "Succeeded");

    // 8. Rollback: the one pair user1 left in step 5, sent back as nodeImageVersion (and
    //    orchestratorVersion); the pool ends on it and has nothing more to roll back to.
    let rb = &out["rollback"];
    let recent = rb["recent_before"].as_array().expect("recent_before");
    assert_eq!(recent.len(), 1, "one upgrade of user1, one pair: {pretty}");
    assert_eq!(recent[0]["orchestrator_version"], user1_before.version.as_str());
    assert_eq!(recent[0]["node_image_version"], user1_before.image.as_str());
    let (sim_start, sim_now) = sim.with_world(|w| (w.start.to_datetime(), w.now.to_datetime()));
    let left = chrono::DateTime::parse_from_rfc3339(s(&recent[0]["timestamp"]))
        .unwrap_or_else(|e| panic!("timestamp is a date-time ({e}): {pretty}"));
    assert!(sim_start < left && left <= sim_now, "{left} within the run");
    assert_eq!(rb["before"]["node_image_version"], after["node_image_version"]);
    assert_eq!(rb["poller_status"], "Succeeded", "{pretty}");
    for seen in [&rb["result"], &rb["after"]] {
        assert_eq!(seen["provisioning_state"], "Succeeded", "{pretty}");
        assert_eq!(seen["current_orchestrator_version"], user1_before.version.as_str());
        assert_eq!(seen["orchestrator_version"], user1_before.version.as_str());
        assert_eq!(seen["node_image_version"], user1_before.image.as_str());
    }
    assert_eq!(rb["recent_after"], serde_json::json!([]), "no second rollback");
    let user1 = pool_state(&sim, "rg-dev-weu", "aks-dev-weu-01", "user1");
    assert_eq!(
        (user1.version.as_str(), user1.image.as_str()),
        (user1_before.version.as_str(), user1_before.image.as_str())
    );
    sim.with_world(|w| {
        let c = &w.clusters[w.cluster_index(SUB, "rg-dev-weu", "aks-dev-weu-01").unwrap()];
        let nodes: Vec<_> = c.kube.nodes.values().filter(|n| n.pool == "user1").collect();
        assert!(!nodes.is_empty());
        for n in nodes {
            assert_eq!(
                (n.version.to_string(), n.image.as_str()),
                (user1_before.version.clone(), user1_before.image.as_str()),
                "node {}",
                n.name
            );
        }
        // The request log tells the one rollback PUT apart from the GET-then-PUT upgrade
        // (whose body also carries nodeImageVersion, the current one).
        let rollbacks: Vec<_> = w.writes.iter().filter(|r| r.rollback_to.is_some()).collect();
        assert_eq!(rollbacks.len(), 1, "{rollbacks:?}");
        assert_eq!(rollbacks[0].method, "PUT");
        assert!(rollbacks[0].path.to_ascii_lowercase().ends_with("/agentpools/user1"));
        assert_eq!(rollbacks[0].rollback_to.as_deref(), Some(user1_before.image.as_str()));
        assert_eq!(rollbacks[0].status, 200);
        assert!(rollbacks[0].operation.is_some());
        let pool_puts_with_image = w
            .writes
            .iter()
            .filter(|r| {
                r.method == "PUT"
                    && r.body
                        .as_ref()
                        .is_some_and(|b| b["properties"].get("nodeImageVersion").is_some())
            })
            .count();
        assert_eq!(pool_puts_with_image, 2, "the upgrade's PUT sent the image back too");
    });

    // The simulator agrees, and nothing is left running.
    sim.with_world(|w| {
        let c = &w.clusters[w.cluster_index(SUB, "rg-dev-weu", "aks-dev-weu-01").unwrap()];
        assert_eq!(
            c.current_version.to_string(),
            "1.33.3",
            "a pool rollback leaves the control plane"
        );
        assert_eq!(c.provisioning_state, "Succeeded");
        assert!(c.operation.is_none());
        let n = &w.clusters[w.cluster_index(SUB, "rg-dev-neu", "aks-dev-neu-01").unwrap()];
        assert!(n.operation.is_none());
    });
    sim.shutdown().await;
}
