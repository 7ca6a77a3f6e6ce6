//! Automatic rollback end to end, with separate processes: `ringmaster sim` on
//! `tests/fixtures/rollback/fleet.yaml` (pods that are never Ready on 1.33 nodes, on two
//! clusters; one of them has a pool on a patch AKS no longer supports) and the real
//! `ringmaster run`, `plan` and `preflight`.
//!
//! 1. `on_gate_failure: rollback`: the pool whose gate fails is rolled back, its pods
//!    are Ready again on the old version and image, the cluster ends `rolledBack`; the
//!    daemon is killed right after saving the gate failure (the rollback's intent) and
//!    before its call, and the restart sends the rollback once (the simulator's request
//!    log). The pool that AKS cannot roll back is warned about before anything starts
//!    and, once its gate fails, held: no rollback call, the pool left as it is.
//! 2. `hold`: nothing is rolled back.
//! 3. `ringmaster rollback` by an operator: refused before any call to a non-operator,
//!    while AKS runs an operation, with the auto-upgrade channel on, while the running
//!    rollout upgrades that cluster, and once AKS lists nothing to go back to.

mod common;

use common::procs::{self, Sim, SimArm};
use ringmaster::engine::{ClusterStatus, Rollout};
use serde_json::Value;
use std::path::Path;

const FLEET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rollback/fleet.yaml");
const POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rollback/policy.yaml");
const SUB: &str = "3f2a8c1e-6b4d-4e7a-9c05-1d2e3f405a61";

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// `ringmaster run` on the state file in `dir`; `crash_after`: the audit action after
/// whose save the process aborts (`RINGMASTER_CRASH_AFTER_SAVE`).
fn run(sim: &Sim, dir: &Path, policy: &str, crash_after: Option<&str>) -> std::process::Output {
    let state = dir.join("state.db").display().to_string();
    let mut cmd = procs::ringmaster(sim, &["run", "--policy", policy, "--sim-clock", "--state", &state]);
    if let Some(a) = crash_after {
        cmd.env(ringmaster::runtime::CRASH_AFTER_SAVE, a);
    }
    cmd.output().unwrap()
}

/// The fixture's policy with `on_gate_failure: hold`, written into `dir`.
fn hold_policy(dir: &Path) -> std::path::PathBuf {
    let policy = dir.join("hold.yaml");
    let text = std::fs::read_to_string(POLICY).unwrap();
    std::fs::write(
        &policy,
        text.replace("on_gate_failure: rollback", "on_gate_failure: hold"),
    )
    .unwrap();
    policy
}

fn stored(dir: &Path) -> Rollout {
    let store = ringmaster::store::Store::open(dir.join("state.db")).unwrap();
    let rec = store.load_rollouts().unwrap().pop().expect("a stored rollout");
    ringmaster::engine::stored::load(&rec).unwrap()
}

fn status(r: &Rollout, name: &str) -> ClusterStatus {
    r.clusters()
        .find(|(_, c)| c.id.name == name)
        .map(|(_, c)| c.status.clone())
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

/// The rollback requests the simulator processed for `cluster` (a pool PUT whose
/// `nodeImageVersion` names a rollback target), with their answers.
fn rollback_calls(sim: &Sim, cluster: &str) -> Vec<Value> {
    let needle = format!("/managedclusters/{cluster}/agentpools/");
    block_on(async { SimArm::new(sim).await.requests().await })
        .into_iter()
        .filter(|w| w["method"] == "PUT" && w["path"].as_str().unwrap_or("").to_ascii_lowercase().contains(&needle))
        .filter(|w| !w["rollbackTo"].is_null())
        .collect()
}

fn pool(sim: &Sim, cluster: &str, pool: &str) -> Value {
    let path = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-rb/providers/Microsoft.ContainerService/managedClusters/{cluster}/agentPools/{pool}"
    );
    block_on(async { SimArm::new(sim).await.get(&path).await })
}

fn out(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_pool_whose_pods_break_is_rolled_back_once_across_a_crash_and_an_unrollbackable_one_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let sim = procs::start_sim_on(dir.path(), FLEET, "600");
    let before = pool(&sim, "rb-broken", "user1");
    let (old_version, old_image) = (
        before["properties"]["currentOrchestratorVersion"]
            .as_str()
            .unwrap()
            .to_string(),
        before["properties"]["nodeImageVersion"].as_str().unwrap().to_string(),
    );

    // Before anything starts: the plan and preflight say rb-stale's user1 cannot be
    // rolled back (1.32.5 is no longer supported), and nothing about rb-broken.
    let plan = procs::ringmaster(&sim, &["plan", "--policy", POLICY, "--output", "json"])
        .output()
        .unwrap();
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    let notes = |name: &str| -> String {
        plan["rings"][0]["waves"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|w| w["clusters"].as_array().unwrap().iter())
            .find(|c| c["id"]["name"] == name)
            .map(|c| c["notes"].to_string())
            .unwrap_or_default()
    };
    assert!(
        notes("rb-stale").contains("pool user1 could not be rolled back"),
        "{plan:#}"
    );
    assert!(!notes("rb-broken").contains("rolled back"), "{plan:#}");
    let pf = procs::ringmaster(&sim, &["preflight", "--policy", POLICY, "--output", "json"])
        .output()
        .unwrap();
    let pf: Value = serde_json::from_slice(&pf.stdout).unwrap();
    let warned: Vec<String> = pf["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            let name = c["id"]["name"].as_str().unwrap().to_string();
            c["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["check"] == "rollback" && f["severity"] == "warns")
                .map(move |f| format!("{name}/{}", f["pool"].as_str().unwrap_or("")))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(warned, ["rb-stale/user1"], "{pf:#}");

    // The daemon dies right after saving rb-broken's gate failure: the rollback's
    // intent is durable, its call not sent.
    let first = run(&sim, dir.path(), POLICY, Some("cluster.rolling_back"));
    assert!(!first.status.success(), "the kill point was reached: {}", out(&first));
    let r = stored(dir.path());
    assert!(
        r.clusters().any(|(_, c)| c.id.name == "rb-broken"
            && c.steps
                .iter()
                .any(|s| matches!(s.kind, ringmaster::plan::StepKind::PoolRollback { .. }))),
        "the rollback is in the saved state"
    );
    assert!(rollback_calls(&sim, "rb-broken").is_empty(), "killed before the call");

    // The restart sends it, once, and the rollout goes on to the end.
    let second = run(&sim, dir.path(), POLICY, None);
    assert!(second.status.success(), "{}", out(&second));
    let r = stored(dir.path());
    let calls = rollback_calls(&sim, "rb-broken");
    assert_eq!(calls.len(), 1, "one rollback call: {calls:#?}");
    assert!(
        calls[0]["status"].as_u64().is_some_and(|s| (200..300).contains(&s)),
        "{calls:#?}"
    );
    assert_eq!(calls[0]["rollbackTo"], old_image.as_str());
    let ClusterStatus::RolledBack { reason } = status(&r, "rb-broken") else {
        panic!("rb-broken: {:?}\n{}", status(&r, "rb-broken"), out(&second))
    };
    assert!(
        reason.contains("rolled back to") && reason.contains("gate failed"),
        "{reason}"
    );
    // On the old version and image, and the rollback's gate (pods Ready against the
    // baseline) passed: that is what `rolledBack` means.
    let after = pool(&sim, "rb-broken", "user1");
    assert_eq!(after["properties"]["currentOrchestratorVersion"], old_version.as_str());
    assert_eq!(after["properties"]["nodeImageVersion"], old_image.as_str());
    let rb = r.clusters().find(|(_, c)| c.id.name == "rb-broken").unwrap().1;
    let last = rb.steps.last().unwrap();
    assert!(matches!(last.kind, ringmaster::plan::StepKind::PoolRollback { .. }));
    assert_eq!(last.status, ringmaster::engine::StepStatus::Done);

    // rb-stale: its gate failed too, AKS lists nothing to go back to: held, no call.
    let ClusterStatus::Failed { reason } = status(&r, "rb-stale") else {
        panic!("rb-stale: {:?}", status(&r, "rb-stale"))
    };
    assert!(
        reason.contains("the rollback failed") && reason.contains("recentlyUsedVersions lists nothing"),
        "{reason}"
    );
    assert!(rollback_calls(&sim, "rb-stale").is_empty());
    let stale = pool(&sim, "rb-stale", "user1");
    assert_eq!(
        stale["properties"]["currentOrchestratorVersion"], "1.33.3",
        "left as it is"
    );
}

#[test]
fn with_hold_nothing_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let sim = procs::start_sim_on(dir.path(), FLEET, "600");
    let policy = hold_policy(dir.path());
    let o = run(&sim, dir.path(), policy.to_str().unwrap(), None);
    assert!(o.status.success(), "{}", out(&o));
    let r = stored(dir.path());
    for name in ["rb-broken", "rb-stale"] {
        assert!(
            matches!(status(&r, name), ClusterStatus::Failed { .. }),
            "{name}: {:?}\n{}",
            status(&r, name),
            out(&o)
        );
        assert!(rollback_calls(&sim, name).is_empty(), "{name}");
        assert_eq!(
            pool(&sim, name, "user1")["properties"]["currentOrchestratorVersion"],
            "1.33.3",
            "{name}: {:?}",
            status(&r, name)
        );
    }
}

const ALICE: &str = "alice-token-0123456789abcdef0123456789";
const BOB: &str = "bob-token-0123456789abcdef0123456789xx";

/// `ringmaster rollback` as `token` against `serve`: (exit code, stdout + stderr).
fn rollback_cli(sim: &Sim, serve: &procs::Serve, token: &str, args: &[&str]) -> (i32, String) {
    let mut all = vec!["rollback"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--server", &serve.url]);
    let o = procs::ringmaster(sim, &all)
        .env("RINGMASTER_TOKEN", token)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// An operator rolls back a pool a held rollout left on the new version: accepted with
/// what it goes back to; refused with AKS's reason while it runs and once nothing is
/// left to go back to; refused to a non-operator; audited from request to end.
#[test]
fn an_operator_rolls_a_held_pool_back_and_aks_refusals_are_said_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let sim = procs::start_sim_on(dir.path(), FLEET, "600");
    let policy = hold_policy(dir.path());
    let before = pool(&sim, "rb-broken", "user1");
    let o = run(&sim, dir.path(), policy.to_str().unwrap(), None);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(
        pool(&sim, "rb-broken", "user1")["properties"]["currentOrchestratorVersion"],
        "1.33.3"
    );

    std::fs::write(
        dir.path().join("tokens.yaml"),
        format!(
            "tokens:\n  - name: alice\n    groups: [platform-admins]\n    sha256: {}\n  - name: bob\n    groups: [developers]\n    sha256: {}\n",
            ringmaster::api::auth::token_digest_hex(ALICE),
            ringmaster::api::auth::token_digest_hex(BOB)
        ),
    )
    .unwrap();
    let serve = procs::spawn_serve_on(&sim, dir.path(), policy.to_str().unwrap(), &[]);

    let (code, said) = rollback_cli(&sim, &serve, BOB, &["rb-broken", "--reason", "checkout errors"]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("operator"), "{said}");
    assert!(rollback_calls(&sim, "rb-broken").is_empty());

    // Without --pool: the pool ringmaster upgraded last, user1.
    let (code, said) = rollback_cli(&sim, &serve, ALICE, &["rb-broken", "--reason", "checkout errors"]);
    assert_eq!(code, 0, "{said}");
    let old = before["properties"]["nodeImageVersion"].as_str().unwrap();
    assert!(
        said.contains("Rolling back pool user1 of rb-broken: 1.33.3") && said.contains(&format!("-> 1.32.7 / {old}")),
        "{said}"
    );
    // AKS is rolling it back: a second request is refused before any call.
    let (code, said) = rollback_cli(
        &sim,
        &serve,
        ALICE,
        &["rb-broken", "--pool", "user1", "--reason", "again"],
    );
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("an operation is running"), "{said}");
    assert_eq!(rollback_calls(&sim, "rb-broken").len(), 1);

    // Back on 1.32.7; AKS lists nothing more to go back to (no consecutive rollbacks).
    let back = (0..300).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let p = pool(&sim, "rb-broken", "user1");
        p["properties"]["currentOrchestratorVersion"] == "1.32.7" && p["properties"]["provisioningState"] == "Succeeded"
    });
    assert!(back, "rolled back within 30 s: {:#}", pool(&sim, "rb-broken", "user1"));
    assert_eq!(pool(&sim, "rb-broken", "user1")["properties"]["nodeImageVersion"], old);
    let (code, said) = rollback_cli(
        &sim,
        &serve,
        ALICE,
        &["rb-broken", "--pool", "user1", "--reason", "again"],
    );
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("no rollback target") && said.contains("lists nothing"),
        "{said}"
    );
    let (code, said) = rollback_cli(&sim, &serve, ALICE, &["rb-broken", "--pool", "nope", "--reason", "x"]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("has no pool `nope`"), "{said}");
    assert_eq!(rollback_calls(&sim, "rb-broken").len(), 1, "refusals send nothing");

    // The audit log: who asked, what was sent, how it ended.
    let ended = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let o = procs::ringmaster(&sim, &["history", "--all", "--output", "json", "--server", &serve.url])
            .env("RINGMASTER_TOKEN", ALICE)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        let actions: Vec<String> = v["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                format!(
                    "{}:{}",
                    e["actor"].as_str().unwrap_or(""),
                    e["action"].as_str().unwrap_or("")
                )
            })
            .collect();
        [
            "alice:api.rollback",
            "alice:pool.rollback_started",
            "ringmaster:pool.rolled_back",
        ]
        .iter()
        .all(|a| actions.iter().any(|x| x == a))
    });
    assert!(ended, "the audit log has the request, the call and its end");
}

/// Changes rb-broken's Kubernetes auto-upgrade channel (a cluster PUT, as
/// `az aks update --auto-upgrade-channel` sends) and waits until AKS is done with it.
fn set_channel(sim: &Sim, channel: &str) {
    let path = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-rb/providers/Microsoft.ContainerService/managedClusters/rb-broken"
    );
    block_on(async {
        let arm = SimArm::new(sim).await;
        let mut mc = arm.get(&path).await;
        mc["properties"]["autoUpgradeProfile"]["upgradeChannel"] = channel.into();
        let url = format!("{}{path}?api-version={}", arm.base, common::API);
        let r = arm
            .http
            .put(url)
            .bearer_auth(&arm.token)
            .json(&mc)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "PUT the channel: {}", r.status());
        for _ in 0..300 {
            let mc = arm.get(&path).await;
            if mc["properties"]["provisioningState"] == "Succeeded"
                && mc["properties"]["autoUpgradeProfile"]["upgradeChannel"] == channel
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the channel change did not finish in 30 s");
    });
}

fn write_tokens(dir: &Path) {
    std::fs::write(
        dir.join("tokens.yaml"),
        format!(
            "tokens:\n  - name: alice\n    groups: [platform-admins]\n    sha256: {}\n",
            ringmaster::api::auth::token_digest_hex(ALICE)
        ),
    )
    .unwrap();
}

/// `ringmaster rollback` is refused before any call when AKS would refuse it for the
/// cluster's auto-upgrade channel (docs/rollback.md), and goes once the channel is off.
#[test]
fn a_rollback_is_refused_while_the_auto_upgrade_channel_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let sim = procs::start_sim_on(dir.path(), FLEET, "600");
    let policy = hold_policy(dir.path());
    let o = run(&sim, dir.path(), policy.to_str().unwrap(), None);
    assert!(o.status.success(), "{}", out(&o));
    write_tokens(dir.path());
    let serve = procs::spawn_serve_on(&sim, dir.path(), policy.to_str().unwrap(), &[]);
    set_channel(&sim, "patch");
    let (code, said) = rollback_cli(&sim, &serve, ALICE, &["rb-broken", "--reason", "checkout errors"]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("auto-upgrade channel is `patch`") && said.contains("auto-upgrade-channel none"),
        "{said}"
    );
    assert!(rollback_calls(&sim, "rb-broken").is_empty(), "refused before any call");
    set_channel(&sim, "none");
    let (code, said) = rollback_cli(&sim, &serve, ALICE, &["rb-broken", "--reason", "checkout errors"]);
    assert_eq!(code, 0, "{said}");
    assert_eq!(rollback_calls(&sim, "rb-broken").len(), 1);
}

/// While the running rollout upgrades a cluster, `ringmaster rollback` of it is refused
/// (two writers on one cluster), before any call; the rollout goes on.
#[test]
fn a_rollback_is_refused_while_the_rollout_upgrades_that_cluster() {
    let dir = tempfile::tempdir().unwrap();
    // Slow enough that rb-broken's upgrade (control plane, then two pools with gates)
    // outlasts the few requests below by far.
    let sim = procs::start_sim_on(dir.path(), FLEET, "30");
    write_tokens(dir.path());
    let serve = procs::spawn_serve_on(&sim, dir.path(), POLICY, &["--start-now"]);
    let needle = "/managedclusters/rb-broken";
    let upgrading = (0..600).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        block_on(async { SimArm::new(&sim).await.requests().await })
            .iter()
            .any(|w| {
                w["path"].as_str().unwrap_or("").to_ascii_lowercase().contains(needle)
                    && w["status"].as_u64().is_some_and(|s| (200..300).contains(&s))
            })
    });
    assert!(upgrading, "the rollout started upgrading rb-broken within 30 s");
    let (code, said) = rollback_cli(&sim, &serve, ALICE, &["rb-broken", "--reason", "checkout errors"]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("is upgrading `rb-broken` now") && said.contains("ringmaster skip"),
        "{said}"
    );
    assert!(rollback_calls(&sim, "rb-broken").is_empty(), "refused before any call");
}
