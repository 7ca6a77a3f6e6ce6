//! Preflight end to end, with separate processes: `ringmaster sim` on
//! `tests/fixtures/preflight/fleet.yaml` (one cluster per kind of AKS refusal, one
//! healthy cluster, a pair that fits its quota alone but not together), and the real
//! `ringmaster preflight` and `ringmaster run`.
//!
//! 1. `preflight` names every blocked cluster with the refusal AKS would answer, and
//!    exits 3.
//! 2. A rollout (`on_block: skip`, the default) sends no mutating call to a blocked
//!    cluster (judged on the simulator's request log) and upgrades the rest.
//! 3. With preflight off, the same fleet fails at AKS with the codes preflight predicted
//!    (all but the stopped cluster, which fails at the baseline before any call): each
//!    check predicts a real refusal, not a rule of ringmaster's own.

mod common;

use common::procs::{self, Sim, SimArm};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const FLEET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/preflight/fleet.yaml");
const POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/preflight/policy.yaml");

/// The clusters preflight must block, with a (check, AKS code) each must carry.
const BLOCKED: &[(&str, &str, &str)] = &[
    ("pf-pdb", "pdb", "UnsatisfiablePDB"),
    ("pf-deprecated", "deprecatedApi", "UpgradeBlockedOnDeprecatedAPIUsage"),
    ("pf-quota", "quota", "QuotaExceeded"),
    ("pf-subnet", "subnet", "SubnetIsFull"),
    ("pf-stopped", "clusterState", "OperationNotAllowed"),
    ("pf-pair-a", "quota", "QuotaExceeded"),
    ("pf-pair-b", "quota", "QuotaExceeded"),
];

fn preflight_json(sim: &Sim, policy: &str) -> (i32, Value) {
    let out = procs::ringmaster(sim, &["preflight", "--policy", policy, "--output", "json"])
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "preflight printed no JSON ({e}); exit {code}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, v)
}

/// cluster name → its findings.
fn findings(report: &Value) -> BTreeMap<String, Vec<Value>> {
    report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"]["name"].as_str().unwrap().to_string(),
                c["findings"].as_array().cloned().unwrap_or_default(),
            )
        })
        .collect()
}

fn blocking(f: &[Value]) -> Vec<&Value> {
    f.iter().filter(|x| x["severity"] == "blocks").collect()
}

#[test]
fn preflight_names_every_blocked_cluster_with_the_refusal_aks_would_answer() {
    let dir = tempfile::tempdir().unwrap();
    let sim = procs::start_sim_on(dir.path(), FLEET, "60");
    let (code, report) = preflight_json(&sim, POLICY);
    assert_eq!(code, 3, "exit 3 when something blocks: {report:#}");
    let by = findings(&report);
    assert_eq!(by.len(), 8, "every cluster of the plan is checked: {:?}", by.keys());
    for (name, check, aks) in BLOCKED {
        let f = &by[*name];
        assert!(
            blocking(f).iter().any(|x| x["check"] == *check && x["aksCode"] == *aks),
            "{name}: expected a blocking {check} finding with {aks}, got {f:#?}"
        );
        for x in blocking(f) {
            for field in ["seen", "why", "fix"] {
                assert!(!x[field].as_str().unwrap_or("").is_empty(), "{name}: empty {field}");
            }
        }
    }
    assert!(blocking(&by["pf-ok"]).is_empty(), "pf-ok: {:#?}", by["pf-ok"]);
    // The pair fits alone: their findings say the wave is why.
    for name in ["pf-pair-a", "pf-pair-b"] {
        let seen = blocking(&by[name])[0]["seen"].as_str().unwrap().to_string();
        assert!(seen.contains("in wave all"), "{name}: {seen}");
    }
    // What was seen carries the numbers.
    let pdb = blocking(&by["pf-pdb"])[0]["seen"].as_str().unwrap().to_string();
    assert!(pdb.contains("maxUnavailable: 0"), "{pdb}");
    let dep = blocking(&by["pf-deprecated"])[0]["seen"].as_str().unwrap().to_string();
    assert!(dep.contains("removed in 1.33"), "{dep}");
    assert!(report["reads"]["arm"].as_u64().unwrap() > 0);

    // The table names each blocked cluster too, and fits a terminal's width per line
    // of its own (findings' texts wrap in the terminal).
    let out = procs::ringmaster(&sim, &["preflight", "--policy", POLICY])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let table = String::from_utf8_lossy(&out.stdout);
    for (name, _, _) in BLOCKED {
        assert!(table.contains(&format!("{name} (dev/all): BLOCKED")), "{table}");
    }
    assert!(table.contains("pf-ok (dev/all): ok"), "{table}");

    // `plan --preflight` shows the same after the plan, and exits 3 too.
    let out = procs::ringmaster(&sim, &["plan", "--policy", POLICY, "--preflight", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rings"][0]["name"], "dev", "the plan is there");
    assert_eq!(findings(&v["preflight"]), by, "the same findings as `preflight`");

    // `upgrades --policy` counts each cluster's blocking findings.
    let out = procs::ringmaster(&sim, &["upgrades", "--policy", POLICY, "--output", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let count = |name: &str| -> u64 {
        v["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"]["name"] == name)
            .and_then(|c| c["blockingFindings"].as_u64())
            .unwrap_or_else(|| panic!("{name} has no count: {v:#}"))
    };
    assert_eq!(count("pf-ok"), 0);
    for (name, _, _) in BLOCKED {
        assert_eq!(count(name) as usize, blocking(&by[*name]).len(), "{name}");
    }
    let out = procs::ringmaster(&sim, &["upgrades", "--policy", POLICY])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().next().unwrap().contains("BLOCKS"), "{table}");
}

/// Mutating ARM requests per cluster name (the simulator's request log, less ARM's
/// `list*` actions: POSTs that read).
fn writes_by_cluster(sim: &Sim) -> BTreeMap<String, usize> {
    let log = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { SimArm::new(sim).await.requests().await });
    let mut by = BTreeMap::new();
    for w in log {
        let path = w["path"].as_str().unwrap_or_default().to_ascii_lowercase();
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if let Some(i) = segs.iter().position(|s| *s == "managedclusters") {
            *by.entry(segs.get(i + 1).copied().unwrap_or_default().to_string())
                .or_insert(0) += 1;
        }
    }
    by
}

/// Runs a rollout to its end; returns the final rollout state from the state file.
fn run_rollout(sim: &Sim, dir: &Path, policy: &str) -> ringmaster::engine::Rollout {
    let state = dir.join("state.db").display().to_string();
    let out = procs::ringmaster(sim, &["run", "--policy", policy, "--sim-clock", "--state", &state])
        .output()
        .unwrap();
    let store = ringmaster::store::Store::open(&state).unwrap();
    let rec = store.load_rollouts().unwrap().pop().unwrap_or_else(|| {
        panic!(
            "no rollout stored; run said:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    ringmaster::engine::stored::load(&rec).unwrap()
}

fn statuses(r: &ringmaster::engine::Rollout) -> BTreeMap<String, ringmaster::engine::ClusterStatus> {
    r.clusters()
        .map(|(_, c)| (c.id.name.clone(), c.status.clone()))
        .collect()
}

#[test]
fn a_rollout_skips_what_preflight_blocks_and_upgrades_the_rest() {
    use ringmaster::engine::ClusterStatus;
    let dir = tempfile::tempdir().unwrap();
    let sim = procs::start_sim_on(dir.path(), FLEET, "600");
    let r = run_rollout(&sim, dir.path(), POLICY);
    let st = statuses(&r);
    // pf-pair-a is ahead of pf-pair-b in the wave: it fits alone and goes; pf-pair-b
    // would not fit beside it and is skipped.
    let upgraded: BTreeSet<&str> = ["pf-ok", "pf-pair-a"].into();
    for (name, s) in &st {
        if upgraded.contains(name.as_str()) {
            assert_eq!(*s, ClusterStatus::Done, "{name}: {s:?}");
        } else {
            match s {
                ClusterStatus::Skipped { by, reason } => {
                    assert_eq!(by, "preflight", "{name}");
                    // The cluster's own code, not any code: a reason built from another
                    // cluster's findings (or from none) fails here.
                    let (_, check, code) = BLOCKED
                        .iter()
                        .find(|(n, _, _)| n == name)
                        .unwrap_or_else(|| panic!("{name} is not expected to be blocked"));
                    assert!(
                        reason.contains(&format!("[{code}]")),
                        "{name}: the reason names its own AKS code {code} ({check}): {reason}"
                    );
                }
                other => panic!("{name} should be skipped by preflight: {other:?}"),
            }
        }
    }
    let pair_b = r.clusters().find(|(_, c)| c.id.name == "pf-pair-b").unwrap().1;
    let record = pair_b.preflight.as_ref().expect("the preflight is in the state");
    assert!(!record.passed);
    assert!(record.blocking().any(|f| f.seen.contains("pf-pair-a")), "{record:#?}");
    let writes = writes_by_cluster(&sim);
    for (name, _, _) in BLOCKED.iter().filter(|(n, _, _)| *n != "pf-pair-a") {
        assert_eq!(writes.get(*name), None, "no upgrade call to {name}: {writes:?}");
    }
    for name in upgraded {
        assert!(
            writes.get(name).copied().unwrap_or(0) >= 3,
            "{name} was upgraded: {writes:?}"
        );
    }
}

#[test]
fn with_preflight_off_the_blocked_clusters_fail_at_aks_as_predicted() {
    use ringmaster::engine::ClusterStatus;
    let dir = tempfile::tempdir().unwrap();
    let sim = procs::start_sim_on(dir.path(), FLEET, "600");
    let (_, report) = preflight_json(&sim, POLICY);
    let predicted = findings(&report);
    let off = dir.path().join("policy-off.yaml");
    let text = std::fs::read_to_string(POLICY).unwrap() + "preflight:\n  enabled: false\n";
    std::fs::write(&off, text).unwrap();
    let r = run_rollout(&sim, dir.path(), &off.display().to_string());
    let st = statuses(&r);
    assert_eq!(st["pf-ok"], ClusterStatus::Done);
    let failed = |name: &str| match &st[name] {
        ClusterStatus::Failed { reason } => Some(reason.clone()),
        _ => None,
    };
    for name in ["pf-pdb", "pf-deprecated", "pf-quota", "pf-subnet"] {
        let reason = failed(name).unwrap_or_else(|| panic!("{name} should fail at AKS: {:?}", st[name]));
        let codes: Vec<&str> = blocking(&predicted[name])
            .iter()
            .filter_map(|f| f["aksCode"].as_str())
            .collect();
        assert!(
            codes.iter().any(|c| reason.contains(c)),
            "{name}: AKS answered `{reason}`, preflight predicted {codes:?}"
        );
    }
    // The pair upgrades at once: one of the two surges last and fails on the quota.
    let pair: Vec<String> = ["pf-pair-a", "pf-pair-b"].iter().filter_map(|n| failed(n)).collect();
    assert!(
        pair.iter().any(|r| r.contains("QuotaExceeded")),
        "one of the pair fails on the shared quota: {:?} {:?}",
        st["pf-pair-a"],
        st["pf-pair-b"]
    );
    // A stopped cluster's API server does not answer, so the rollout fails it at the
    // baseline before any call; AKS's own refusal is what preflight predicted.
    assert!(failed("pf-stopped").is_some(), "{:?}", st["pf-stopped"]);
    assert_eq!(writes_by_cluster(&sim).get("pf-stopped"), None);
}

/// With `allow_force_upgrade`, a deprecated API warns instead of blocking, and ringmaster
/// sets AKS's override on the control-plane upgrade, which AKS (the simulator) honours.
#[test]
fn the_policy_may_let_ringmaster_set_the_deprecated_api_override() {
    use ringmaster::engine::ClusterStatus;
    let dir = tempfile::tempdir().unwrap();
    let sim = procs::start_sim_on(dir.path(), FLEET, "600");
    let forced = dir.path().join("policy-force.yaml");
    let text = std::fs::read_to_string(POLICY).unwrap() + "preflight:\n  allow_force_upgrade: true\n";
    std::fs::write(&forced, text).unwrap();
    let forced = forced.display().to_string();
    let (_, report) = preflight_json(&sim, &forced);
    let dep = &findings(&report)["pf-deprecated"];
    assert!(blocking(dep).is_empty(), "{dep:#?}");
    assert!(
        dep.iter()
            .any(|f| f["check"] == "deprecatedApi" && f["severity"] == "warns"),
        "{dep:#?}"
    );
    let r = run_rollout(&sim, dir.path(), &forced);
    assert_eq!(statuses(&r)["pf-deprecated"], ClusterStatus::Done);
}
