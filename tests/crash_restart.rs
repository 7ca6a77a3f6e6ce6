//! Crash tests: `ringmaster run` is killed with SIGKILL at random moments during a
//! rollout against a separately running `ringmaster sim`, and restarted on the same
//! state file each time. The rollout must finish as the policy says, and the
//! simulator's own record must show that no step's operation was started twice.

mod common;

use common::procs::{Sim, ringmaster, start_sim};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run_cmd(sim: &Sim, state: &std::path::Path) -> Command {
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/demo.yaml");
    let mut c = ringmaster(
        sim,
        &[
            "run",
            "--policy",
            policy,
            "--sim-clock",
            "--approve-as",
            "alice",
            "--state",
        ],
    );
    c.arg(state).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// The simulator's record of every operation, through its test hook.
fn operations(sim: &Sim) -> Vec<Value> {
    let script = r#"
import json, os, ssl, urllib.request, urllib.parse
e = os.environ
ctx = ssl.create_default_context(cafile=e["RINGMASTER_CA_CERT"])
body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": e["AZURE_CLIENT_ID"], "client_secret": e["AZURE_CLIENT_SECRET"], "scope": "https://management.azure.com/.default"}).encode()
tok = json.load(urllib.request.urlopen(e["AZURE_AUTHORITY_HOST"] + "/" + e["AZURE_TENANT_ID"] + "/oauth2/v2.0/token", body, context=ctx))["access_token"]
req = urllib.request.Request(e["RINGMASTER_ARM_ENDPOINT"] + "/_sim/operations", headers={"Authorization": "Bearer " + tok})
print(json.dumps(json.load(urllib.request.urlopen(req, context=ctx))["value"]))
"#;
    let mut c = Command::new("python3");
    c.args(["-c", script]);
    for (k, v) in &sim.env {
        c.env(k, v);
    }
    let out = c.output().expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn killed_at_random_moments_the_rollout_finishes_and_no_step_runs_twice() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    eprintln!("crash test seed {seed} (CRASH_SEED to replay the kill times)");
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), "600");
    let state = dir.path().join("state.db");
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut kills = 0;
    let mut done = false;
    for _ in 0..6 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let after = Duration::from_millis(300 + x % 2200);
        let mut child = run_cmd(&sim, &state).spawn().expect("run starts");
        let t = Instant::now();
        let mut finished = false;
        while t.elapsed() < after {
            if let Some(status) = child.try_wait().unwrap() {
                finished = true;
                // Ended within this run: it must have ended as the policy says (no
                // later run checks it; see below).
                assert!(
                    status.success(),
                    "the rollout ended as the policy says (exit {status:?}) after {kills} kills"
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if finished {
            // It ended within this run: a further `run` would plan a new (empty)
            // rollout, which is not what this test looks at.
            done = true;
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    // Then let it finish.
    if !done {
        let mut child = run_cmd(&sim, &state).spawn().expect("run starts");
        let t = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(180),
                "the resumed rollout did not finish"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            status.success(),
            "the rollout ended as the policy says (exit {status:?}) after {kills} kills"
        );
    }
    assert!(kills >= 2, "the test killed the daemon mid-rollout ({kills} times)");
    // No operation started twice for the same work on the same cluster.
    let ops = operations(&sim);
    let mut seen: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for op in &ops {
        if !op["abortOf"].is_null() {
            continue;
        }
        let key = (
            op["cluster"].as_str().unwrap().to_string(),
            op["target"].as_str().unwrap().to_string(),
            op["work"].to_string(),
        );
        *seen.entry(key).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "operations started twice: {twice:?}");
    assert!(ops.len() >= 20, "the rollout ran its steps ({} operations)", ops.len());
    // And the state file says so too.
    let store = ringmaster::store::Store::open(&state).unwrap();
    let rollouts = store.load_rollouts().unwrap();
    assert_eq!(rollouts.len(), 1, "one rollout, resumed, not restarted");
    assert_eq!(rollouts[0].status, "succeeded");
}

/// The failing pool's step in a stored rollout state: (ring, wave, cluster, step).
fn failing_step(state: &Value) -> Option<(usize, usize, usize, usize)> {
    for (ri, ring) in state["rings"].as_array()?.iter().enumerate() {
        for (wi, wave) in ring["waves"].as_array()?.iter().enumerate() {
            for (ci, cl) in wave["clusters"].as_array()?.iter().enumerate() {
                if cl["id"]["name"] != FAILING_POOL.0 {
                    continue;
                }
                for (si, st) in cl["steps"].as_array()?.iter().enumerate() {
                    if st["kind"]["kind"] == "poolVersion" && st["kind"]["pool"] == FAILING_POOL.1 {
                        return Some((ri, wi, ci, si));
                    }
                }
            }
        }
    }
    None
}

/// Regression (found by the kills above): killed after AKS took a step's call but before
/// the daemon recorded the answer, ringmaster restarted on a step still `starting`; the
/// operation had meanwhile ended Failed, so the resource read "not at the target, nothing
/// running", and the call went out a second time (AKS took it, and it failed again).
///
/// The test kills `run` as soon as the simulator logs the failing pool's call. That the
/// kill falls before the daemon recorded the answer is a race, so the state file is then
/// put where such a kill leaves it (the step `starting`, as recorded before the call),
/// which is exactly what a kill a few milliseconds earlier leaves; the simulator's
/// operation is let fail before the restart. After it, no second call may reach AKS, and
/// the cluster must end failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_a_call_and_its_record_a_failed_operation_is_not_called_again() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim_on(dir.path(), FLEET, TIME_SCALE);
    let arm = SimArm::new(&sim).await;
    let state_path = dir.path().join("state.db");
    let is_failing_call = |w: &Value| {
        let k = step_of(w);
        k.contains(FAILING_POOL.0) && k.contains(&format!("pool {} -> \"", FAILING_POOL.1))
    };
    let mut child = spawn_run(&sim, &state_path);
    let t = Instant::now();
    loop {
        if arm.requests().await.iter().any(is_failing_call) {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            let keys: Vec<String> = arm.requests().await.iter().map(step_of).collect();
            panic!("run ended before the failing call: {keys:#?}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the failing pool's call did not come within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The operation fails 90 simulated seconds after it starts (the fleet's
    // node_provision): wait until the simulator says so.
    let t = Instant::now();
    loop {
        let ops = arm.get("/_sim/operations").await;
        let failed = ops["value"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|op| op["cluster"] == FAILING_POOL.0 && op["status"] == "Failed");
        if failed {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the failing operation did not fail"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Where a kill before the record leaves the state file.
    let store = ringmaster::store::Store::open(&state_path).unwrap();
    let mut rec = store.load_rollouts().unwrap().remove(0);
    let mut state: Value = serde_json::from_str(&rec.state_json).unwrap();
    let (r, w, c, s) = failing_step(&state).expect("the failing pool's step is in the plan");
    let step = &mut state["rings"][r]["waves"][w]["clusters"][c]["steps"][s];
    let was = step["status"]["state"].as_str().unwrap_or_default().to_string();
    assert!(
        was == "starting" || was == "inFlight",
        "killed right after the call, the step is starting or in flight, not {was}"
    );
    eprintln!("the kill found the step {was}; restarting from `starting`");
    let since = step["startedAt"].clone();
    step["status"] = json!({ "state": "starting", "since": since });
    rec.state_json = state.to_string();
    store.save_rollout(&rec).unwrap();
    drop(store);
    // Restart: it must reconcile without calling again, and go on to the end.
    let mut child = spawn_run(&sim, &state_path);
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < FINISH_WITHIN, "the resumed rollout did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "the rollout ended as the policy says ({status:?})");
    let writes = arm.requests().await;
    let calls: Vec<&Value> = writes.iter().filter(|w| is_failing_call(w)).collect();
    assert_eq!(calls.len(), 1, "the failed operation's call went out once: {calls:?}");
    let dups = duplicates(&writes);
    assert!(dups.is_empty(), "duplicate calls: {dups:?}");
    let store = ringmaster::store::Store::open(&state_path).unwrap();
    let state: Value = serde_json::from_str(&store.load_rollouts().unwrap()[0].state_json).unwrap();
    let (r, w, c, _) = failing_step(&state).unwrap();
    assert_eq!(
        state["rings"][r]["waves"][w]["clusters"][c]["status"]["state"], "failed",
        "{} ended failed",
        FAILING_POOL.0
    );
}
