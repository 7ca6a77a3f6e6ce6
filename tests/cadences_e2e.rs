//! Two cadences in one daemon, end to end with separate processes: `ringmaster serve
//! --policies tests/fixtures/cadences/policies` on the demo fleet with node images left to
//! ringmaster (`fleet.yaml` beside them): a version rollout with an approval before prod,
//! priority 10, and a node-image rollout, priority 0) against `ringmaster sim`, both
//! started at once. `serve` is SIGKILLed while both rollouts hold
//! clusters and started again.
//!
//! Judged from outside: the simulator's request log (AKS answers 409 to a second
//! operation on a cluster: there must be none), and the audit log (each rollout's
//! entries about a cluster, from its first to its last, never overlap another
//! rollout's on that cluster); the node images reach prod while the version rollout
//! waits for prod's approval; when both have ended, no claim and no wait is left.

mod common;

use common::procs::{SimArm, spawn_serve_dir, start_sim_on, write_tokens};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const ALICE: &str = "alice-token-0123456789abcdef0123456789";
const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cadences/policies");

async fn get(url: &str) -> Value {
    let r = reqwest::Client::new().get(url).bearer_auth(ALICE).send().await.unwrap();
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.json().await.unwrap()
}

/// Every rollout of the daemon, by policy, in full.
async fn rollouts(url: &str) -> BTreeMap<String, Value> {
    let list = get(&format!("{url}/api/v1/rollouts")).await;
    let mut out = BTreeMap::new();
    for r in list["rollouts"].as_array().into_iter().flatten() {
        let id = r["id"].as_str().unwrap();
        out.insert(
            r["policy"].as_str().unwrap().to_string(),
            get(&format!("{url}/api/v1/rollouts/{id}")).await,
        );
    }
    out
}

/// Polls until `f` holds (wall clock, bounded: separate processes).
async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(t.elapsed() < Duration::from_secs(180), "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn state(r: &Value) -> &str {
    r["status"]["state"].as_str().unwrap_or("")
}

fn ring_state<'a>(r: &'a Value, ring: &str) -> &'a str {
    r["rings"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == ring))
        .and_then(|x| x["status"]["state"].as_str())
        .unwrap_or("")
}

/// The names of the rollout's clusters being prepared or upgraded.
fn active_clusters(r: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for ring in r["rings"].as_array().into_iter().flatten() {
        for wave in ring["waves"].as_array().into_iter().flatten() {
            for c in wave["clusters"].as_array().into_iter().flatten() {
                if matches!(c["status"]["state"].as_str(), Some("running" | "preparing")) && c["claimed"] == true {
                    out.push(c["id"]["name"].as_str().unwrap_or("").to_string());
                }
            }
        }
    }
    out
}

fn terminal(r: &Value) -> bool {
    matches!(state(r), "succeeded" | "halted" | "aborted")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cadences_run_side_by_side_and_never_act_on_one_cluster_at_once() {
    let dir = tempfile::tempdir().unwrap();
    write_tokens(dir.path(), &[("alice", "platform-admins", ALICE)]);
    let fleet = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/fleets/cadences.yaml");
    let sim = start_sim_on(dir.path(), fleet, "120");
    let s = spawn_serve_dir(&sim, dir.path(), POLICIES, &["--start-now"]);
    // Both rollouts work on clusters at once (on different clusters), then a SIGKILL.
    until("both rollouts upgrading clusters", async || {
        let all = rollouts(&s.url).await;
        (all.len() == 2 && all.values().all(|r| !active_clusters(r).is_empty())).then_some(())
    })
    .await;
    let held = get(&format!("{}/api/v1/claims", s.url)).await;
    let clusters: Vec<&str> = held["claims"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["cluster"].as_str())
        .collect();
    let unique: std::collections::BTreeSet<&&str> = clusters.iter().collect();
    assert_eq!(unique.len(), clusters.len(), "one holder per cluster: {held:#}");
    drop(s);
    let s = spawn_serve_dir(&sim, dir.path(), POLICIES, &[]);

    // The version rollout waits for prod's approval, holding no prod cluster: the node
    // images go on there and finish.
    let all = until("images done while versions waits for prod", async || {
        let all = rollouts(&s.url).await;
        let (v, i) = (all.get("versions")?, all.get("images")?);
        (terminal(i) || terminal(v)).then_some(all)
    })
    .await;
    assert_eq!(state(&all["images"]), "succeeded", "{:#}", all["images"]["status"]);
    assert_eq!(
        ring_state(&all["versions"], "prod"),
        "awaitingApproval",
        "the images finished while versions waited: {:#}",
        all["versions"]["status"]
    );
    let prod_images = all["images"]["rings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "prod")
        .unwrap()
        .to_string();
    assert!(
        prod_images.contains("\"done\""),
        "prod's images were refreshed: {prod_images}"
    );

    // Approve prod; the version rollout ends.
    let id = all["versions"]["id"].as_str().unwrap().to_string();
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/rollouts/{id}/rings/prod/approve", s.url))
        .bearer_auth(ALICE)
        .json(&serde_json::json!({ "comment": "images and staging looked fine" }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let versions = until("versions ended", async || {
        let all = rollouts(&s.url).await;
        all.get("versions").filter(|v| terminal(v)).cloned()
    })
    .await;
    assert_eq!(state(&versions), "succeeded", "{:#}", versions["status"]);

    // Nothing is held or awaited once both ended.
    let c = get(&format!("{}/api/v1/claims", s.url)).await;
    assert_eq!(c["claims"], serde_json::json!([]), "{c:#}");
    assert_eq!(c["waits"], serde_json::json!([]), "{c:#}");

    // AKS never saw two operations on one cluster.
    let arm = SimArm::new(&sim).await;
    let log = arm.requests().await;
    let conflicts: Vec<&Value> = log.iter().filter(|w| w["status"] == 409).collect();
    assert!(conflicts.is_empty(), "AKS refused a second operation: {conflicts:#?}");
    assert!(
        log.iter()
            .any(|w| w["path"].as_str().unwrap_or("").contains("upgradeNodeImageVersion"))
    );

    // Per cluster, each rollout's audit entries span a time no other rollout's touch.
    let mut entries: Vec<Value> = Vec::new();
    loop {
        let since = entries.last().and_then(|e| e["id"].as_i64()).unwrap_or(0);
        let page = get(&format!("{}/api/v1/audit?since={since}&limit=1000", s.url)).await;
        let got = page["entries"].as_array().cloned().unwrap_or_default();
        if got.is_empty() {
            break;
        }
        entries.extend(got);
    }
    assert!(entries.len() > 50, "{}", entries.len());
    let mut spans: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    for e in &entries {
        let (Some(rollout), Some(subject), Some(at)) =
            (e["rolloutId"].as_str(), e["subject"].as_str(), e["at"].as_str())
        else {
            continue;
        };
        let action = e["action"].as_str().unwrap_or("");
        if !(action.starts_with("cluster.") || action.starts_with("step.") || action.starts_with("gate."))
            || action == "cluster.waiting"
        {
            continue;
        }
        let Some(cluster) = subject.split('/').nth(1).and_then(|c| c.split(' ').next()) else {
            continue;
        };
        let span = spans
            .entry((cluster.to_string(), rollout.to_string()))
            .or_insert((at.to_string(), at.to_string()));
        span.0 = span.0.clone().min(at.to_string());
        span.1 = span.1.clone().max(at.to_string());
    }
    let both: Vec<&String> = spans
        .keys()
        .map(|(c, _)| c)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut shared = 0;
    for cluster in both {
        let of: Vec<_> = spans.iter().filter(|((c, _), _)| c == cluster).collect();
        if of.len() == 2 {
            shared += 1;
            let (a, b) = (of[0].1, of[1].1);
            assert!(
                a.1 < b.0 || b.1 < a.0,
                "{cluster}: {} {a:?} and {} {b:?} overlap",
                of[0].0.1,
                of[1].0.1
            );
        }
    }
    // aks-dev-neu-01, aks-dev-weu-01, aks-prd-neu-01 and aks-prd-weu-01 are in both plans.
    assert!(
        shared >= 4,
        "both rollouts worked on the clusters both plan: {spans:#?}"
    );
}

/// SIGHUP re-reads the directory: a policy whose file stops compiling is reported and its
/// last good version stays in force; a new file is taken; the answer to a start names
/// the policies when none is given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rereads_the_policies_and_a_broken_file_keeps_its_last_good_version() {
    let dir = tempfile::tempdir().unwrap();
    write_tokens(dir.path(), &[("alice", "platform-admins", ALICE)]);
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    for f in ["versions.yaml", "images.yaml"] {
        std::fs::copy(format!("{POLICIES}/{f}"), policies.join(f)).unwrap();
    }
    let fleet = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/fleets/cadences.yaml");
    let sim = start_sim_on(dir.path(), fleet, "60");
    let s = spawn_serve_dir(&sim, dir.path(), policies.to_str().unwrap(), &[]);
    let names = |v: &Value| -> Vec<(String, bool)> {
        v["policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap().to_string(), p["error"].is_string()))
            .collect()
    };
    let v = get(&format!("{}/api/v1/policies", s.url)).await;
    assert_eq!(
        names(&v),
        [("versions".into(), false), ("images".into(), false)],
        "priority order: {v:#}"
    );
    // Break one, add one, and SIGHUP.
    std::fs::write(
        policies.join("images.yaml"),
        "name: images\ntarget: { channel: nope }\n",
    )
    .unwrap();
    let patches = std::fs::read_to_string(policies.join("versions.yaml"))
        .unwrap()
        .replace("name: versions", "name: patches")
        .replace("priority: 10", "priority: 5");
    std::fs::write(policies.join("patches.yaml"), patches).unwrap();
    let pid = s.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let v = until("the policies re-read", async || {
        let v = get(&format!("{}/api/v1/policies", s.url)).await;
        (v["policies"].as_array().map_or(0, Vec::len) == 3).then_some(v)
    })
    .await;
    assert_eq!(
        names(&v),
        [
            ("versions".into(), false),
            ("patches".into(), false),
            ("images".into(), true)
        ],
        "the broken file keeps its last good version, reported: {v:#}"
    );
    let images = &v["policies"][2];
    assert!(images["error"].as_str().unwrap().contains("images.yaml"), "{images:#}");
    // Starting one without naming it: refused, naming the policies.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/rollouts", s.url))
        .bearer_auth(ALICE)
        .json(&serde_json::json!({ "reason": "which?" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "policy_required", "{body:#}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("images"),
        "{body:#}"
    );
}
