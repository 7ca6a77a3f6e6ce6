//! `ringmaster snapshot` copies a fleet into a fleet file that rehearses it: the demo
//! fleet, copied from a running `ringmaster sim` and loaded by a second one, gives the
//! same `upgrades`, `plan`, `forecast` and `preflight` (times aside: each is taken at its
//! own moment; the forecast of both starts at the same instant). `upgrades` and `plan`
//! carry versions and steps only; the forecast reads each pool's node count, surge,
//! soak and drain timeout (its durations), and preflight reads VM sizes (quota),
//! network plugin and pod IPs (subnet), PDB numbers and the pods they match (drains):
//! a field the copy drops or alters shows in one of them.
//! `--anonymize` keeps the shape and the tags (ring selectors need them), and no name.

mod common;

use common::procs::{self, Sim, SimArm};
use serde_json::Value;

fn json_of(sim: &Sim, args: &[&str]) -> Value {
    let o = procs::ringmaster(sim, args).output().unwrap();
    // `preflight` exits 3 when something blocks (the demo fleet's aks-dev-weu-02).
    let ok = o.status.success() || (args[0] == "preflight" && o.status.code() == Some(3));
    assert!(ok, "{args:?}: {:?} {}", o.status, String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Without the fields that say when something was read or may start.
fn timeless(v: Value) -> Value {
    const TIMES: [&str; 6] = [
        "generatedAt",
        "rolloutStart",
        "earliestStart",
        "notBefore",
        "windowEnd",
        "takenAt",
    ];
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !TIMES.contains(&k.as_str()))
                .map(|(k, x)| (k, timeless(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(timeless).collect()),
        other => other,
    }
}

/// Where two JSON values first differ (a path, the two values), `None` when equal.
fn difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                difference(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &format!("{at}.{k}"),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| difference(p, q, &format!("{at}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{at}: {a} vs the copy's {b}")),
    }
}

/// Copies the fleet `original` runs into a file, starts a second simulator on it, and
/// compares what `upgrades`, `plan`, `forecast` and `preflight` (with `policy`) say of
/// both. Returns the copy's path.
fn round_trip(
    dir: &std::path::Path,
    original: &Sim,
    policy: &str,
    what: &str,
    not_copied: &[&str],
) -> std::path::PathBuf {
    let copy = dir.join(format!("{what}-copy.yaml"));
    let o = procs::ringmaster(original, &["snapshot", "--output", copy.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let copy_dir = dir.join(format!("{what}-copy"));
    std::fs::create_dir_all(&copy_dir).unwrap();
    let rehearsal = procs::start_sim_on(&copy_dir, copy.to_str().unwrap(), "1");
    let start = json_of(original, &["upgrades", "--output", "json"])["takenAt"]
        .as_str()
        .expect("upgrades says when")
        .to_string();
    let forecast = json_of(
        original,
        &["forecast", "--policy", policy, "--start", &start, "--output", "json"],
    );
    assert!(
        forecast["rings"][0]["clusters"][0]["steps"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "{what}: the forecast has steps: {forecast:#}"
    );
    for args in [
        vec!["upgrades", "--output", "json"],
        vec!["plan", "--policy", policy, "--output", "json"],
        vec!["forecast", "--policy", policy, "--start", &start, "--output", "json"],
        vec!["preflight", "--policy", policy, "--output", "json"],
    ] {
        let a = without_checks(timeless(json_of(original, &args)), not_copied);
        let b = without_checks(timeless(json_of(&rehearsal, &args)), not_copied);
        if let Some(d) = difference(&a, &b, "") {
            panic!("{what}: {args:?} differ at {d}\n--- original\n{a:#}\n--- copy\n{b:#}");
        }
    }
    // What neither shows: each cluster's ARM resource, field by field (VM sizes, counts,
    // max pods, upgrade settings, network plugin and mode, power state).
    let (arm_a, arm_b) = block_on(async {
        let (a, b) = (SimArm::new(original).await, SimArm::new(&rehearsal).await);
        let ids = json_of(original, &["upgrades", "--output", "json"])["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].clone())
            .collect::<Vec<Value>>();
        let mut out = (Vec::new(), Vec::new());
        for id in ids {
            let path = format!(
                "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerService/managedClusters/{}",
                id["subscription"].as_str().unwrap(),
                id["resourceGroup"].as_str().unwrap(),
                id["name"].as_str().unwrap()
            );
            out.0.push(copied_fields(&a.get(&path).await));
            out.1.push(copied_fields(&b.get(&path).await));
        }
        out
    });
    for (a, b) in arm_a.iter().zip(&arm_b) {
        if let Some(d) = difference(a, b, "") {
            panic!("{what}: the copy's ARM resource differs at {d}\n--- original\n{a:#}");
        }
    }
    copy
}

/// The fields of a managed cluster the fleet file carries, pools by name.
fn copied_fields(mc: &Value) -> Value {
    let p = &mc["properties"];
    let pools: Vec<Value> = p["agentPoolProfiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let keys = [
                "name",
                "count",
                "vmSize",
                "maxPods",
                "mode",
                "osType",
                "osSKU",
                "orchestratorVersion",
                "nodeImageVersion",
                "upgradeSettings",
            ];
            keys.iter().map(|k| (k.to_string(), x[*k].clone())).collect()
        })
        .collect();
    serde_json::json!({
        "name": mc["name"],
        "powerState": p["powerState"],
        "networkPlugin": p["networkProfile"]["networkPlugin"],
        "networkPluginMode": p["networkProfile"]["networkPluginMode"],
        "kubernetesVersion": p["currentKubernetesVersion"],
        "pools": pools,
    })
}

/// `v` without the findings of the checks in `checks` (what the copy does not carry),
/// nor, when there are such checks, the count of reads (no subnet to read in the copy).
fn without_checks(v: Value, checks: &[&str]) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| checks.is_empty() || k != "reads")
                .map(|(k, x)| {
                    if k == "findings"
                        && let Value::Array(a) = x
                    {
                        let kept = a
                            .into_iter()
                            .filter(|f| !checks.iter().any(|c| f["check"] == *c))
                            .collect();
                        return (k, Value::Array(kept));
                    }
                    (k, without_checks(x, checks))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| without_checks(x, checks)).collect()),
        other => other,
    }
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn a_snapshot_of_a_fleet_rehearses_the_same_upgrades_plan_forecast_and_preflight() {
    let dir = tempfile::tempdir().unwrap();
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/demo.yaml");
    let original = procs::start_sim(dir.path(), "1");
    let copy = round_trip(dir.path(), &original, policy, "demo", &[]);
    let text = std::fs::read_to_string(&copy).unwrap();
    assert!(!text.contains("client_secret") && !text.contains("BEGIN"), "no secrets");
    assert!(text.contains("min_available"), "PDBs are copied: {text}");
    let preflight = json_of(&original, &["preflight", "--policy", policy, "--output", "json"]);
    assert!(
        preflight.to_string().contains("UnsatisfiablePDB"),
        "preflight finds the demo's blocked cluster: {preflight:#}"
    );

    // The preflight fixture: VM sizes and node counts against a vCPU quota (alone and
    // in a pair), a network plugin and max pods against a subnet, PDBs, a stopped
    // cluster: each of its findings rests on a field the copy must keep.
    let pf_dir = dir.path().join("pf");
    std::fs::create_dir_all(&pf_dir).unwrap();
    let pf = procs::start_sim_on(
        &pf_dir,
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/preflight/fleet.yaml"),
        "1",
    );
    let pf_policy = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/preflight/policy.yaml");
    let found = json_of(&pf, &["preflight", "--policy", pf_policy, "--output", "json"]).to_string();
    for code in [
        "QuotaExceeded",
        "SubnetIsFull",
        "UnsatisfiablePDB",
        "OperationNotAllowed",
    ] {
        assert!(found.contains(code), "the fixture's preflight finds {code}: {found}");
    }
    // Quotas, subnets and deprecated API calls are not copied (`src/snapshot.rs`): the
    // copy's findings of those checks are left out, and its ARM resources compared.
    round_trip(
        &pf_dir,
        &pf,
        pf_policy,
        "preflight fixture",
        &["quota", "subnet", "deprecatedApi"],
    );

    // Anonymized: the same clusters and steps, none of the names.
    let anon = dir.path().join("anon.yaml");
    let o = procs::ringmaster(
        &original,
        &["snapshot", "--anonymize", "--output", anon.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&anon).unwrap();
    for name in ["aks-stg-weu-01", "rg-staging-weu", "namespace: shop", "name: web"] {
        assert!(!text.contains(name), "{name} left in the anonymized copy");
    }
    let anon_dir = dir.path().join("anon");
    std::fs::create_dir_all(&anon_dir).unwrap();
    let hidden = procs::start_sim_on(&anon_dir, anon.to_str().unwrap(), "1");
    // The same clusters by shape (a policy that names clusters needs their hashes).
    let shapes = |sim: &Sim| -> Vec<String> {
        let u = json_of(sim, &["upgrades", "--output", "json"]);
        let mut v: Vec<String> = u["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c["kubernetesVersion"],
                    c["pools"].as_array().map_or(0, |p| p.len())
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(shapes(&original), shapes(&hidden));
}
