//! Bad input never crashes (issue #11): the shipped policies and the demo fleet file,
//! mutated (lines deleted, duplicated, swapped; values replaced by hostile ones: huge
//! and negative numbers, `99999999d`, empty and very long strings, unicode, wrong types,
//! deep nesting, unknown keys), go through the policy compiler, the planner, the pure
//! engine and the fleet-file loader. Nothing may panic, and every refusal names a line.
//!
//! Policies that compile are planned against the demo fleet and driven through the
//! engine for a few hundred simulated inputs (with a restart from the serialized state
//! on the way), so no date arithmetic panic is left between a policy and a rollout.

mod support;

use proptest::prelude::*;
use ringmaster::domain::duration::{NEVER, parse_duration};
use ringmaster::domain::fleet::FleetSnapshot;
use ringmaster::engine::{self, Command, Input, NotifyEvent, Rollout, RolloutStatus, Settings};
use ringmaster::plan::{Plan, plan};
use ringmaster::policy::{Policy, compile, compile_with_snapshot};
use ringmaster::yaml::SourceErrors;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::OnceLock;

fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const POLICIES: [&str; 4] = [
    "policies/default.yaml",
    "policies/demo.yaml",
    "policies/node-image-only.yaml",
    "policies/strict-prod.yaml",
];
const FLEET: &str = "examples/fleets/demo.yaml";

struct Fixtures {
    policies: Vec<(&'static str, String)>,
    fleet: String,
    snapshot: FleetSnapshot,
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let fleet = support::demo_snapshot::load_fleet("demo.yaml");
        Fixtures {
            policies: POLICIES.iter().map(|p| (*p, read(p))).collect(),
            fleet: read(FLEET),
            snapshot: support::demo_snapshot::snapshot(&fleet),
        }
    })
}

/// Values no policy or fleet file should contain, each of which once might have crashed
/// something: overflowing durations and numbers, dates at the ends of chrono's range,
/// wrong types, YAML features (anchors, tags), deep nesting, odd unicode.
fn hostile_values() -> Vec<String> {
    let mut v: Vec<String> = [
        "99999999d",
        "213503982334d",
        "366d",
        "367d",
        "0s",
        "1ms",
        "1s500ms",
        "0",
        "-1",
        "-99999999d",
        "4294967296",
        "18446744073709551616",
        "99999999999999999999999999",
        "-9223372036854775809",
        "1e400",
        "-.inf",
        ".nan",
        "1.5",
        "\"\"",
        "''",
        "~",
        "null",
        "true",
        "[]",
        "{}",
        "[1, 2]",
        "{ a: 1 }",
        "{ soak: 99999999d }",
        "\"ü🦀\u{202e}\u{0}x\"",
        "\"\\u0000\"",
        "Ω≈ç√",
        "+262143-12-31",
        "-262144-01-01",
        "9999-12-31",
        "2026-02-30",
        "0000-00-00",
        "\"0 0 29 2 *\"",
        "\"* * * * * * 2200\"",
        "\"0 30 2 * * SUN\"",
        "\"59 23 31 DEC * 9999\"",
        "Etc/GMT+14",
        "Pacific/Kiritimati",
        "1.99999999999",
        "1.33.99999999999999999",
        "&anchor x",
        "*undefined",
        "!!binary aGk=",
        "!custom 1",
        "|\n  block",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("x".repeat(20_000));
    v.push(format!("\"{}\"", "é".repeat(5_000)));
    v.push(format!("{}1{}", "[".repeat(300), "]".repeat(300)));
    v.push(format!("{}1{}", "{a: ".repeat(300), "}".repeat(300)));
    v
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    /// Replace the value of the line's `key: value` (or `- value`) with hostile value `v`.
    Value(usize, usize),
    /// A key no schema knows, at the line's indentation.
    UnknownKey(usize),
    /// The line's indentation moved by -2..=+2 columns.
    Indent(usize, i8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let n = hostile_values().len();
    prop_oneof![
        1 => any::<usize>().prop_map(Mutation::Delete),
        1 => any::<usize>().prop_map(Mutation::Duplicate),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        4 => (any::<usize>(), 0..n).prop_map(|(a, v)| Mutation::Value(a, v)),
        1 => any::<usize>().prop_map(Mutation::UnknownKey),
        1 => (any::<usize>(), -2i8..=2).prop_map(|(a, d)| Mutation::Indent(a, d)),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let values = hostile_values();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    for m in mutations {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match *m {
            Mutation::Delete(i) => {
                lines.remove(i % n);
            }
            Mutation::Duplicate(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Mutation::Swap(a, b) => lines.swap(a % n, b % n),
            Mutation::Value(i, v) => {
                let l = &lines[i % n];
                let cut = l.find(": ").map(|c| c + 2).or_else(|| l.find("- ").map(|c| c + 2));
                if let Some(c) = cut {
                    lines[i % n] = format!("{}{}", &l[..c], values[v]);
                }
            }
            Mutation::UnknownKey(i) => {
                let l = &lines[i % n];
                let indent = l.len() - l.trim_start_matches([' ', '-']).len();
                lines.insert(i % n, format!("{}zz_unknown: 1", " ".repeat(indent)));
            }
            Mutation::Indent(i, d) => {
                let l = &lines[i % n];
                lines[i % n] = if d >= 0 {
                    format!("{}{l}", " ".repeat(d as usize))
                } else {
                    let strip = l.len() - l.trim_start_matches(' ').len();
                    l[strip.min(d.unsigned_abs() as usize)..].to_string()
                };
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Every refusal names its file and a line (>= 1): an error without a position would
/// leave the user searching.
fn assert_positioned(errors: &SourceErrors, file: &str, text: &str) {
    assert!(!errors.0.is_empty(), "a refusal without errors\n{text}");
    for e in &errors.0 {
        let shown = e.to_string();
        assert!(
            e.line >= 1 && shown.starts_with(&format!("{file}:{}:", e.line)),
            "error without a line: `{shown}`\n--- input:\n{text}"
        );
    }
}

/// Drives `plan` through the pure engine as a healthy AKS and an approving operator
/// would, jumping time to each wake-up, for at most `max_inputs` inputs, with one restart
/// (the state serialized and read back, as the store does) halfway.
fn drive(
    file: &str,
    text: &str,
    plan: Plan,
    settings: &Settings,
    now0: chrono::DateTime<chrono::Utc>,
    max_inputs: usize,
) -> Rollout {
    let mut r = Rollout::new("hostile".into(), file.into(), text.into(), plan, now0);
    let mut now = now0;
    let mut inputs = VecDeque::from([Input::Tick]);
    let mut wake: Option<chrono::DateTime<chrono::Utc>> = None;
    for i in 0..max_inputs {
        let input = match inputs.pop_front() {
            Some(input) => input,
            None => match wake.take() {
                Some(at) if at < NEVER => {
                    now = now.max(at);
                    Input::Tick
                }
                _ => break,
            },
        };
        for c in engine::advance(&mut r, settings, input, now) {
            match c {
                Command::TakeBaseline { cluster, .. } => inputs.push_back(Input::BaselineTaken {
                    cluster,
                    baseline: serde_json::Value::Null,
                }),
                Command::StartStep { step, .. } | Command::Reconcile { step, .. } => {
                    inputs.push_back(Input::StepAccepted { step, op: None })
                }
                Command::FollowOperation { step, .. } => {
                    inputs.push_back(Input::OperationFinished { step, result: Ok(()) })
                }
                Command::Gate { step, .. } => inputs.push_back(Input::GateObserved {
                    step,
                    healthy: true,
                    reasons: vec![],
                    at: now,
                }),
                Command::Notify {
                    event: NotifyEvent::ApprovalNeeded,
                    ring: Some(ring),
                    ..
                } => inputs.push_back(Input::Approve {
                    ring,
                    by: "alice".into(),
                    comment: "fine".into(),
                    expires_at: None,
                }),
                Command::WakeAt { at } => wake = Some(wake.map_or(at, |w| w.min(at))),
                _ => {}
            }
        }
        if r.status.is_terminal() {
            break;
        }
        if i == max_inputs / 2 {
            let stored = serde_json::to_string(&r).expect("a rollout serializes");
            r = serde_json::from_str(&stored).expect("a stored rollout reads back");
            inputs.push_back(Input::Resumed);
        }
    }
    r
}

/// Compiles a (mutated) policy, alone and (`with_fleet`) against the demo fleet: no panic, and a
/// refusal names a line for every error. The policy compiled alone (the fleet checks
/// would refuse `strict-prod.yaml`, whose canaries the demo fleet lacks), or `None`.
fn compile_checked(file: &str, text: &str, with_fleet: bool) -> Option<Policy> {
    if with_fleet {
        let snapshot = &fixtures().snapshot;
        match catch_unwind(AssertUnwindSafe(|| compile_with_snapshot(file, text, Some(snapshot)))) {
            Err(_) => panic!("the policy compiler (with a fleet) panicked on:\n{text}"),
            Ok(Err(errors)) => assert_positioned(&errors, file, text),
            Ok(Ok(_)) => {}
        }
    }
    match catch_unwind(AssertUnwindSafe(|| compile(file, text))) {
        Err(_) => panic!("the policy compiler panicked on:\n{text}"),
        Ok(Err(errors)) => {
            assert_positioned(&errors, file, text);
            None
        }
        Ok(Ok(p)) => Some(p),
    }
}

/// Plans an accepted policy on the demo fleet and drives the plan through the engine.
fn plan_and_drive(file: &str, text: &str, policy: &Policy, drive_inputs: usize) {
    let f = fixtures();
    let now = f.snapshot.taken_at;
    let driven = catch_unwind(AssertUnwindSafe(|| {
        let p = plan(&f.snapshot, policy, now);
        let settings = Settings::from_policy(policy);
        drive(file, text, p, &settings, now, drive_inputs);
    }));
    assert!(
        driven.is_ok(),
        "planner or engine panicked on an accepted policy:\n{text}"
    );
}

/// Both of the above; whether the policy was accepted.
fn check_policy(file: &str, text: &str, drive_inputs: usize) -> bool {
    let policy = compile_checked(file, text, true);
    if let Some(p) = &policy {
        plan_and_drive(file, text, p, drive_inputs);
    }
    policy.is_some()
}

/// Loads a (mutated) fleet file; when accepted, plans the demo policy on the snapshot
/// discovery would see of it and drives the plan a little through the engine.
fn check_fleet(text: &str) {
    let outcome = catch_unwind(AssertUnwindSafe(|| ringmaster::sim::fleet::parse("fleet.yaml", text)));
    let fleet = match outcome {
        Err(_) => panic!("the fleet loader panicked on:\n{text}"),
        Ok(Err(errors)) => {
            assert_positioned(&errors, "fleet.yaml", text);
            return;
        }
        Ok(Ok(fleet)) => fleet,
    };
    if fleet.start_time.is_none() {
        return; // the test's snapshot builder needs a fixed start
    }
    let snapshot = support::demo_snapshot::snapshot(&fleet);
    let (file, policy_text) = &fixtures().policies[1];
    let policy = compile(file, policy_text).expect("the demo policy compiles");
    let now = snapshot.taken_at;
    let driven = catch_unwind(AssertUnwindSafe(|| {
        let p = plan(&snapshot, &policy, now);
        drive(file, policy_text, p, &Settings::from_policy(&policy), now, 100);
    }));
    assert!(
        driven.is_ok(),
        "planner or engine panicked on an accepted fleet:\n{text}"
    );
}

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
        // The demo fleet's node images are current and it has no strict-prod canaries:
        // those two plan nothing there (their mutations still go through the compiler).
        let idle = file.contains("node-image-only") || file.contains("strict-prod");
        assert_eq!(p.steps().count() == 0, idle, "{file}");
        let r = drive(file, text, p, &Settings::from_policy(&policy), now, 600);
        assert_eq!(r.status, RolloutStatus::Succeeded, "{file}");
    }
}

/// A value for an inserted unknown key, `indent` being the key's column (0-based): a
/// scalar, a flow collection or a block mapping with a nested list.
fn unknown_value(kind: usize, indent: usize) -> String {
    let pad = |n: usize| " ".repeat(indent + n);
    match kind % 5 {
        0 => "1".into(),
        1 => "99999999d".into(),
        2 => "[1, { a: 2 }]".into(),
        3 => "{ channel: rapid, soak: 1h }".into(),
        _ => format!(
            "\n{}name: x\n{}rings:\n{}- 1\n{}- {{ b: 2 }}",
            pad(2),
            pad(2),
            pad(4),
            pad(4)
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// Unknown keys inserted into valid mappings of a shipped policy, and a soak made too
    /// long: the errors are exactly those (each at its line and column), so checking
    /// went on past every unknown key and blanking them added nothing spurious.
    #[test]
    fn unknown_keys_and_a_semantic_error_are_all_reported_and_nothing_else(
        which in 0..POLICIES.len(),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 1..6),
        kinds in prop::collection::vec(0usize..5, 6),
    ) {
        let (file, text) = &fixtures().policies[which];
        let lines: Vec<&str> = text.lines().collect();
        // Lines `key: scalar-or-flow` (optionally after `- `): a key may follow them at
        // the same column, in the same mapping.
        let eligible: Vec<(usize, usize)> = lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                let body = l.trim_start_matches([' ', '-']);
                let col = l.len() - body.len();
                let (key, value) = body.split_once(": ")?;
                let value = value.trim();
                let simple = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                (simple && !value.is_empty() && !value.starts_with(['#', '|', '>'])).then_some((i, col))
            })
            .collect();
        prop_assume!(!eligible.is_empty());
        let mut chosen: Vec<(usize, usize)> = picks.iter().map(|p| *p.get(&eligible)).collect();
        chosen.sort();
        chosen.dedup_by_key(|c| c.0);
        let soak = lines.iter().position(|l| l.trim_start().starts_with("soak: "));
        let mut out: Vec<String> = Vec::new();
        let mut expected: Vec<String> = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            if Some(i) == soak {
                let col = l.find("soak: ").unwrap() + "soak: ".len();
                out.push(format!("{}99999999d", &l[..col]));
                expected.push(format!("{file}:{}:{}: `99999999d` is longer than 366d", out.len(), col + 1));
            } else {
                out.push(l.to_string());
            }
            if let Some(k) = chosen.iter().position(|c| c.0 == i) {
                let col = chosen[k].1;
                let value = unknown_value(kinds[k], col);
                let line = out.len() + 1;
                out.extend(format!("{}zz_unknown_{k}: {value}", " ".repeat(col)).lines().map(String::from));
                expected.push(format!("{file}:{line}:{}: unknown field `zz_unknown_{k}`", col + 1));
            }
        }
        let mutated = out.join("\n") + "\n";
        let errors = ringmaster::policy::compile(file, &mutated).expect_err("refused");
        let shown: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
        prop_assert_eq!(shown.len(), expected.len(), "{:#?}\n{:#?}\n{}", shown, expected, mutated);
        for want in &expected {
            prop_assert!(shown.iter().any(|s| s.starts_with(want.as_str())), "missing {}\n{:#?}\n{}", want, shown, mutated);
        }
    }
}
