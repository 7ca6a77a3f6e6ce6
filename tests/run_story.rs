//! `ringmaster run` tells the whole story (issue 32): every audit entry of the rollout
//! that the printer shows reaches the output before the summary, and the summary names
//! each cluster's outcome. Real processes: `ringmaster sim` on the demo fleet (its
//! fault: pods never Ready on aks-stg-weu-01 at 1.33, so that pool's gate fails and it
//! is rolled back; aks-dev-weu-02 skipped by preflight for its PDB) and `ringmaster run`.
//!
//! The end of a rollout is where a detached printer loses lines (the process exits as
//! the last entries are saved), so three runs, side by side, each on its own simulator.

mod common;

use common::procs;
use ringmaster::store::{AuditQuery, Store};

const POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/demo.yaml");

/// One rollout of the demo fleet with `run`; returns its stdout and exit code, checked
/// against the store it left.
fn one_run() {
    let dir = tempfile::tempdir().unwrap();
    let sim = procs::start_sim(dir.path(), "600");
    let state = dir.path().join("state.db");
    let out = procs::ringmaster(
        &sim,
        &[
            "run",
            "--policy",
            POLICY,
            "--sim-clock",
            "--approve-as",
            "alice",
            "--state",
            &state.display().to_string(),
        ],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    // The rollout succeeds as the policy says (staging skips its failed cluster): exit 0.
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let store = Store::open(&state).unwrap();
    let rec = store.load_rollouts().unwrap().pop().expect("a stored rollout");
    let entries = store
        .audit(&AuditQuery {
            rollout_id: Some(rec.id.clone()),
            since_id: Some(0),
            limit: 100_000,
            filter: Default::default(),
        })
        .unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    let summary_at = lines
        .iter()
        .position(|l| l.starts_with("Summary ("))
        .unwrap_or_else(|| panic!("no summary:\n{stdout}"));
    // Each shown entry once, in the lines before the summary (the same entry may recur:
    // one printed line accounts for one stored entry).
    let mut printed: Vec<&str> = lines[..summary_at].to_vec();
    let mut missing = Vec::new();
    for (_, e) in &entries {
        let Some(want) = ringmaster::runtime::audit_line(e) else {
            continue;
        };
        match printed.iter().position(|l| *l == want) {
            Some(i) => {
                printed.remove(i);
            }
            None => missing.push(want),
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} stored entries not printed before the summary:\n{}\n--- output:\n{stdout}",
        missing.len(),
        entries.len(),
        missing.join("\n")
    );
    assert!(
        entries.iter().any(|(_, e)| e.action == "cluster.rolled_back"),
        "{stdout}"
    );

    let summary = lines[summary_at..].join("\n");
    let row = |cluster: &str| {
        lines[summary_at..]
            .iter()
            .find(|l| l.split_whitespace().nth(1) == Some(cluster))
            .unwrap_or_else(|| panic!("{cluster} not in the summary:\n{summary}"))
            .to_string()
    };
    assert!(row("aks-stg-weu-01").contains("ROLLED BACK"), "{summary}");
    assert!(row("aks-dev-weu-02").contains("skipped by preflight"), "{summary}");
    assert!(row("aks-prd-weu-01").contains("upgraded"), "{summary}");
    assert!(summary.contains("gate failure: staging/aks-stg-weu-01"), "{summary}");
    assert!(lines.last().unwrap().ends_with(": succeeded"), "{stdout}");
}

#[test]
fn run_prints_every_audit_entry_then_a_summary_per_cluster() {
    let runs: Vec<_> = (0..3).map(|_| std::thread::spawn(one_run)).collect();
    for r in runs {
        r.join().unwrap();
    }
}
