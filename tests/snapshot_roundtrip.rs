//! `ringmaster snapshot` copies a fleet into a fleet file that rehearses it: the demo
//! fleet, copied from a running `ringmaster sim` and loaded by a second one, gives the
//! same `upgrades` and the same `plan` (times aside: each is taken at its own moment);
//! `--anonymize` keeps the shape and the tags (ring selectors need them), and no name.

mod common;

use common::procs::{self, Sim};
use serde_json::Value;

fn json_of(sim: &Sim, args: &[&str]) -> Value {
    let o = procs::ringmaster(sim, args).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
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

#[test]
fn a_snapshot_of_a_fleet_rehearses_the_same_upgrades_and_plan() {
    let dir = tempfile::tempdir().unwrap();
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/demo.yaml");
    let original = procs::start_sim(dir.path(), "1");
    let copy = dir.path().join("copy.yaml");
    let o = procs::ringmaster(&original, &["snapshot", "--output", copy.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&copy).unwrap();
    assert!(!text.contains("client_secret") && !text.contains("BEGIN"), "no secrets");
    assert!(text.contains("min_available"), "PDBs are copied: {text}");

    let copy_dir = dir.path().join("copy");
    std::fs::create_dir_all(&copy_dir).unwrap();
    let rehearsal = procs::start_sim_on(&copy_dir, copy.to_str().unwrap(), "1");
    for args in [
        vec!["upgrades", "--output", "json"],
        vec!["plan", "--policy", policy, "--output", "json"],
    ] {
        let a = timeless(json_of(&original, &args));
        let b = timeless(json_of(&rehearsal, &args));
        assert_eq!(a, b, "{args:?} differ:\n{a:#}\n---\n{b:#}");
    }

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
