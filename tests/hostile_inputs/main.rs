//! Bad input never crashes (issue #11): the shipped policies and the demo fleet file,
//! mutated (lines deleted, duplicated, swapped; values replaced by hostile ones: huge
//! and negative numbers, `99999999d`, empty and very long strings, unicode, wrong types,
//! deep nesting, unknown keys), go through the policy compiler, the planner, the pure
//! engine and the fleet-file loader. Nothing may panic, and every refusal names a line.
//!
//! Policies that compile are planned against the demo fleet and driven through the
//! engine for a few hundred simulated inputs (with a restart from the serialized state
//! on the way), so no date arithmetic panic is left between a policy and a rollout.

#[path = "../support/mod.rs"]
mod support;

mod mutate;
mod pipeline;
mod unknown_keys;

use mutate::{Mutation, hostile_values, mutate, mutation};
use pipeline::{POLICIES, check_fleet, check_policy, compile_checked, drive, fixtures, plan_and_drive};
use proptest::prelude::*;
use ringmaster::domain::duration::parse_duration;
use ringmaster::engine::{RolloutStatus, Settings};
use ringmaster::plan::plan;
use ringmaster::policy::{Policy, compile, compile_with_snapshot};

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_policies_never_crash_and_every_refusal_has_a_line(
        which in 0..POLICIES.len(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let (file, text) = &fixtures().policies[which];
        check_policy(file, &mutate(text, &mutations), 600);
    }

}

proptest! {
    // Fewer: each accepted fleet is also planned and driven.
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_fleet_files_never_crash_and_every_refusal_has_a_line(
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        check_fleet(&mutate(&fixtures().fleet, &mutations));
    }
}

/// Every hostile scalar in place of every scalar value of every shipped policy, one at a
/// time: exhaustive where the random mutations above sample (the structural values, wrong
/// types and nesting, are left to those: they stop at the parser). Each distinct accepted policy
/// (ignoring its name and description, which nothing computes with) is planned and
/// driven through the engine.
#[test]
fn every_hostile_value_in_every_policy_field() {
    let values = hostile_values();
    let (mut accepted, mut refused) = (0, 0);
    let mut planned: Vec<Policy> = Vec::new();
    let scalars: Vec<usize> = (0..values.len())
        .filter(|v| values[*v].len() < 100 && !values[*v].starts_with(['[', '{', '&', '*', '!', '|']))
        .collect();
    for (file, text) in &fixtures().policies {
        for (line, l) in text.lines().enumerate() {
            let value = l.split_once(": ").map(|(_, v)| v.trim()).unwrap_or("");
            if l.trim_start().starts_with('#') || value.is_empty() || value.starts_with(['[', '{']) {
                continue;
            }
            for &v in &scalars {
                let mutated = mutate(text, &[Mutation::Value(line, v)]);
                let Some(mut p) = compile_checked(file, &mutated, false) else {
                    refused += 1;
                    continue;
                };
                accepted += 1;
                (p.name, p.description) = (String::new(), None);
                if !planned.contains(&p) {
                    plan_and_drive(file, &mutated, &p, 600);
                    planned.push(p);
                }
            }
        }
    }
    // Both outcomes happen: the mutations reach the planner and the refusals.
    assert!(
        accepted > 100 && refused > 1000,
        "accepted {accepted}, refused {refused}"
    );
    assert!(planned.len() > 20, "{} distinct accepted policies", planned.len());
}

/// A policy stored before durations were bounded (or built in code) may carry waits far
/// beyond chrono's range; the engine saturates them to "never" instead of panicking.
/// Before the fix, `now + chrono::Duration` panicked in `engine::drive` (pool soak, ring
/// soak, gate settle/timeout wake-ups) and in the planner (`plan::timing`, pool soak).
#[test]
fn waits_beyond_the_range_of_dates_saturate_in_planner_and_engine() {
    let f = fixtures();
    let (file, text) = &f.policies[1];
    let mut policy = compile_with_snapshot(file, text, Some(&f.snapshot)).unwrap();
    let huge = parse_duration("99999999d").unwrap();
    let now = f.snapshot.taken_at;
    // A pool soak past the end of time: the steps after it have no start, so those
    // clusters are skipped with the reason.
    let mut soaked = policy.clone();
    soaked.steps.pool_soak = huge;
    let p = plan(&f.snapshot, &soaked, now);
    assert!(
        p.skipped.iter().any(|s| s.reason.contains("no time within")),
        "{:#?}",
        p.skipped
    );
    // Ring soaks past the end of time: the first ring is planned, later rings wait.
    for r in &mut policy.rings {
        r.soak = huge;
    }
    let p = plan(&f.snapshot, &policy, now);
    assert!(p.steps().count() > 0);
    let mut settings = Settings::from_policy(&policy);
    settings.pool_soak = huge;
    settings.gate_timeout = huge;
    settings.retry_after = huge;
    let r = drive(file, text, p.clone(), &settings, now, 400);
    assert!(
        !r.status.is_terminal(),
        "a never-ending soak never ends: {:?}",
        r.status
    );
    settings.gate_settle = huge;
    drive(file, text, p, &settings, now, 400);
}

/// The regression of the issue: `soak: 99999999d` used to compile (and then crash the
/// engine); now it is refused with its position.
#[test]
fn a_soak_of_99999999_days_is_refused_at_its_position() {
    let text = "name: huge\ntarget: { channel: stable }\nrings:\n  - name: dev\n    selector: { tags: { ring: dev } }\n    soak: 99999999d\n";
    let errors = ringmaster::policy::compile("huge.yaml", text).unwrap_err();
    let shown = errors.to_string();
    assert!(
        shown.starts_with("huge.yaml:6:11: `99999999d` is longer than 366d"),
        "{shown}"
    );
    assert!(ringmaster::policy::compile("ok.yaml", &text.replace("99999999d", "366d")).is_ok());
}

/// Deep nesting is refused with a position (the parser's depth budget), not a stack overflow.
#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    for open in ["[", "{a: "] {
        let close = if open == "[" { "]" } else { "}" };
        let text = format!("name: {}1{}\n", open.repeat(50_000), close.repeat(50_000));
        check_policy("deep.yaml", &text, 0);
        check_fleet(&text);
    }
}

/// The driver above reaches the end of a real rollout (so the mutated policies really
/// go through ring soaks, pool soaks, gates and approvals, not just the first steps).
#[test]
fn the_driver_finishes_every_shipped_policy() {
    let f = fixtures();
    for (file, text) in &f.policies {
        let policy = compile(file, text).unwrap();
        let now = f.snapshot.taken_at;
        let p = plan(&f.snapshot, &policy, now);
        // The demo fleet leaves node images to AKS (node OS channel NodeImage) and has no
        // strict-prod canaries: the image policies and strict-prod plan nothing there
        // (their mutations still go through the compiler).
        let idle = file.contains("node-image-only") || file.contains("images-") || file.contains("strict-prod");
        assert_eq!(p.steps().count() == 0, idle, "{file}");
        let r = drive(file, text, p, &Settings::from_policy(&policy), now, 600);
        assert_eq!(r.status, RolloutStatus::Succeeded, "{file}");
    }
}
