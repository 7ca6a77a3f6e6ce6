//! `--sim-clock` on the commands that read the fleet (issue 32): against `ringmaster
//! sim`, whose demo fleet lives a week before the wall clock, `forecast` starts, and
//! `plan`, `preflight` and `upgrades` are taken, at the simulator's time with the flag
//! and at the wall clock's without it. Real processes.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::procs::{self, Sim, SimArm};

const POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/demo.yaml");

/// The time field `field` of `ringmaster <args> --output json`.
fn time_of(sim: &Sim, args: &[&str], field: &str) -> DateTime<Utc> {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let out = procs::ringmaster(sim, &all).output().unwrap();
    // preflight exits 3 on the demo fleet (a PDB blocks a dev cluster): still a report.
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{all:?}: no {field}"))
        .parse()
        .unwrap()
}

fn close(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    (a - b).abs() < Duration::minutes(2)
}

#[test]
fn forecast_plan_preflight_and_upgrades_run_on_the_simulator_s_clock_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    // Scale 1: the simulated clock stays where it started, a week before the wall clock.
    let sim = procs::start_sim(dir.path(), "1");
    let sim_now: DateTime<Utc> = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { SimArm::new(&sim).await.get("/_sim/clock").await })["now"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (Utc::now() - sim_now).abs() > Duration::hours(1),
        "the test needs a simulator far from the wall clock: {sim_now}"
    );
    let cases: [(&[&str], &str); 4] = [
        (&["forecast", "--policy", POLICY], "start"),
        (&["plan", "--policy", POLICY], "generatedAt"),
        (&["preflight", "--policy", POLICY], "takenAt"),
        (&["upgrades"], "takenAt"),
    ];
    for (args, field) in cases {
        let mut with = args.to_vec();
        with.push("--sim-clock");
        let t = time_of(&sim, &with, field);
        assert!(
            close(t, sim_now),
            "{with:?}: {field} {t}, the simulator is at {sim_now}"
        );
        let t = time_of(&sim, args, field);
        assert!(
            close(t, Utc::now()),
            "{args:?}: {field} {t}, the wall clock is at {}",
            Utc::now()
        );
    }
}
