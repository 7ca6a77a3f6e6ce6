//! End to end with separate processes: `ringmaster serve` against `ringmaster sim`. The
//! rollout waits before prod; someone outside the approver groups is refused; `ringmaster
//! approve prod` (the CLI) lets it finish; the audit log shows who approved and who was
//! refused; and restarting `serve` (SIGKILL) mid-rollout loses nothing.

mod common;

use common::procs::{Serve, Sim, spawn_serve, start_sim};
use serde_json::Value;
use std::time::{Duration, Instant};

const ALICE: &str = "alice-token-0123456789abcdef0123456789";
const BOB: &str = "bob-token-0123456789abcdef0123456789ab";

fn serve(sim: &Sim, dir: &std::path::Path, start_now: bool) -> Serve {
    spawn_serve(sim, dir, if start_now { &["--start-now"] } else { &[] })
}

fn hash(token: &str) -> String {
    ringmaster::api::auth::token_digest_hex(token)
}

async fn get(url: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(url: &str, token: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls the rollout until `f` holds (wall clock, bounded: separate processes).
async fn until(s: &Serve, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let t = Instant::now();
    loop {
        let (status, list) = get(&format!("{}/api/v1/rollouts", s.url), ALICE).await;
        if status == 200
            && let Some(id) = list["rollouts"]
                .as_array()
                .and_then(|a| a.first())
                .and_then(|r| r["id"].as_str())
        {
            let (_, r) = get(&format!("{}/api/v1/rollouts/{id}", s.url), ALICE).await;
            if f(&r) {
                return r;
            }
        }
        assert!(t.elapsed() < Duration::from_secs(120), "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ring_state(r: &Value, ring: &str) -> String {
    let rings = r.get("rings").and_then(Value::as_array).cloned().unwrap_or_default();
    rings
        .iter()
        .find(|x| x["name"] == ring)
        .map(|x| x["status"]["state"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

fn status_of(r: &Value) -> String {
    r["status"]["state"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_waits_for_prod_approval_survives_a_restart_and_records_who_approved() {
    ringmaster::identity::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tokens.yaml"),
        format!("tokens:\n  - name: alice\n    groups: [platform-admins]\n    sha256: {}\n  - name: bob\n    groups: [developers]\n    sha256: {}\n", hash(ALICE), hash(BOB)),
    )
    .unwrap();
    let sim = start_sim(dir.path(), "600");
    let s = serve(&sim, dir.path(), true);
    // Mid-rollout (dev running), kill serve without warning and start it again.
    let before = until(&s, "the dev ring running", |r| ring_state(r, "dev") == "running").await;
    let id = before["id"].as_str().unwrap().to_string();
    drop(s);
    let s = serve(&sim, dir.path(), false);
    let r = until(&s, "prod awaiting approval", |r| {
        ring_state(r, "prod") == "awaitingApproval"
    })
    .await;
    assert_eq!(
        r["id"].as_str(),
        Some(id.as_str()),
        "the same rollout resumed after the restart"
    );
    assert_eq!(ring_state(&r, "dev"), "passed");
    // The forecast made at the start, and the ETA now: prod still to come, after the
    // approval the forecast assumes (one hour after it was asked).
    assert!(r["forecast"]["finish"].is_string(), "{:#}", r["forecast"]);
    let eta = &r["eta"];
    let rings: Vec<&str> = eta["rings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["name"].as_str())
        .collect();
    assert_eq!(rings, ["prod"], "{eta:#}");
    let finish = chrono::DateTime::parse_from_rfc3339(eta["finish"].as_str().unwrap()).unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(eta["at"].as_str().unwrap()).unwrap();
    assert!(finish > at + chrono::Duration::minutes(30), "{eta:#}");
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", s.url))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let eta_secs: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ringmaster_rollout_eta_seconds "))
        .expect("the ETA metric")
        .trim()
        .parse()
        .unwrap();
    assert!(eta_secs > 1800.0, "{eta_secs}");
    // Bob is not an approver of prod.
    let url = format!("{}/api/v1/rollouts/{id}/rings/prod/approve", s.url);
    let (refused, _) = post(&url, BOB, serde_json::json!({ "comment": "ship it" })).await;
    assert_eq!(refused, 403);
    // Alice approves with the CLI.
    let out = tokio::task::spawn_blocking({
        let url = s.url.clone();
        let env = sim.env.clone();
        move || {
            let mut c = std::process::Command::new(common::procs::bin());
            c.args(["approve", "prod", "--comment", "staging looked fine"])
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("RINGMASTER_SERVER", url)
                .env("RINGMASTER_TOKEN", ALICE);
            let _ = env;
            c.output().unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "approve: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(ALICE),
        "the token is never printed"
    );
    let done = until(&s, "the rollout finished", |r| {
        status_of(r) == "succeeded" || status_of(r) == "halted"
    })
    .await;
    assert_eq!(status_of(&done), "succeeded", "{done}");
    // The audit log: who approved, who was refused, and no token anywhere.
    let (status, audit) = get(&format!("{}/api/v1/audit?rollout={id}&limit=1000", s.url), ALICE).await;
    assert_eq!(status, 200);
    let text = audit.to_string();
    assert!(
        !text.contains(ALICE) && !text.contains(BOB),
        "no token in the audit log"
    );
    let entries = audit
        .as_array()
        .cloned()
        .or_else(|| audit["entries"].as_array().cloned())
        .unwrap_or_default();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "ring.approved" && e["actor"] == "alice"),
        "alice's approval is recorded: {text}"
    );
    let (_, all) = get(&format!("{}/api/v1/audit?limit=1000", s.url), ALICE).await;
    assert!(
        all.to_string().contains("auth.denied") || all.to_string().contains("bob"),
        "bob's refusal is recorded"
    );
    // One rollout: resumed, never started twice.
    let (_, list) = get(&format!("{}/api/v1/rollouts", s.url), ALICE).await;
    assert_eq!(list["rollouts"].as_array().map(Vec::len), Some(1));
    // Asking for another: the daemon takes the request (202) and plans first; the fleet
    // is on target now, so nothing starts.
    let url = format!("{}/api/v1/rollouts", s.url);
    let (asked, body) = post(&url, ALICE, serde_json::json!({ "reason": "again" })).await;
    assert_eq!(asked, 202, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["requestedBy"].as_str()),
        (Some("queued"), Some("alice"))
    );
}
