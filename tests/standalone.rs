//! The binary stands alone: run from a directory with nothing in it (as after
//! `cargo install` or in the container image), `ringmaster sim` and `ringmaster demo`
//! use the demo fleet and policy built into the binary, and a file named on the command
//! line still wins (a missing one is an error, never a silent fall-back).

mod common;

use common::procs::bin;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn empty_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    d
}

#[test]
fn sim_check_uses_the_built_in_fleet_from_an_empty_directory() {
    let dir = empty_dir();
    let out = Command::new(bin())
        .args(["sim", "--check"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("examples/fleets/demo.yaml (built in): valid") && stdout.contains("8 clusters"),
        "{stdout}"
    );
}

#[test]
fn a_fleet_or_policy_named_on_the_command_line_wins_and_must_exist() {
    let dir = empty_dir();
    for args in [
        &["sim", "--check", "--fleet", "nowhere.yaml"][..],
        &["demo", "--policy", "nowhere.yaml"][..],
        &["demo", "--fleet", "nowhere.yaml"][..],
    ] {
        let out = Command::new(bin())
            .args(args)
            .current_dir(dir.path())
            .env("RINGMASTER_LOG", "error")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains("nowhere.yaml"), "{args:?}: {stderr}");
    }
}

/// Reads lines from `child`'s stdout until `want` matches one, within `limit`.
fn wait_for_line(child: &mut std::process::Child, limit: Duration, want: impl Fn(&str) -> bool) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut seen = String::new();
    while let Some(left) = limit.checked_sub(start.elapsed()) {
        match rx.recv_timeout(left) {
            Ok(line) if want(&line) => return line,
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    panic!("no such line within {limit:?}; saw:\n{seen}");
}

#[test]
fn sim_and_demo_start_from_an_empty_directory() {
    let dir = empty_dir();
    let mut sim = Command::new(bin())
        .args(["sim", "--env-file", "sim.env", "--state-dir", "."])
        .current_dir(dir.path())
        .env("RINGMASTER_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = wait_for_line(&mut sim, Duration::from_secs(60), |l| l.starts_with('{'));
    let _ = sim.kill();
    let _ = sim.wait();
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["subscription_ids"].as_array().map(Vec::len), Some(2), "{ready}");
    let env = std::fs::read_to_string(dir.path().join("sim.env")).unwrap();
    assert!(env.contains("RINGMASTER_ARM_ENDPOINT="), "{env}");

    // The demo plans the built-in policy on the built-in fleet; it is stopped there (CI
    // runs it to the end from an empty directory too).
    let mut demo = Command::new(bin())
        .args(["demo", "--time-scale", "600"])
        .current_dir(dir.path())
        .env("RINGMASTER_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let plan = wait_for_line(&mut demo, Duration::from_secs(120), |l| l.starts_with("plan: "));
    let _ = demo.kill();
    let _ = demo.wait();
    assert!(
        plan.contains("target 1.33") && plan.contains("8 clusters in 3 rings"),
        "{plan}"
    );
}
