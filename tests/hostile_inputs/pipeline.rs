//! The pipeline a hostile input goes through: compile (alone and against the demo
//! fleet), plan, and drive through the pure engine; the fleet loader likewise. Each
//! stage under `catch_unwind`, each refusal checked for positions.

use crate::support;
use ringmaster::domain::duration::NEVER;
use ringmaster::domain::fleet::FleetSnapshot;
use ringmaster::engine::{self, Command, Input, NotifyEvent, Rollout, Settings};
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

pub const POLICIES: [&str; 5] = [
    "policies/default.yaml",
    "policies/demo.yaml",
    "policies/node-image-only.yaml",
    "policies/strict-prod.yaml",
    // The one with a `pools` filter (the other cadences add no field of their own).
    "policies/cadences/windows-images-monthly.yaml",
];
const FLEET: &str = "examples/fleets/demo.yaml";

pub struct Fixtures {
    pub policies: Vec<(&'static str, String)>,
    pub fleet: String,
    pub snapshot: FleetSnapshot,
}

pub fn fixtures() -> &'static Fixtures {
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

/// Every refusal names its file and a line (>= 1): an error without a position would
/// leave the user searching.
pub fn assert_positioned(errors: &SourceErrors, file: &str, text: &str) {
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
pub fn drive(
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
                Command::RunPreflight { cluster, .. } => inputs.push_back(Input::PreflightDone {
                    cluster,
                    findings: vec![],
                }),
                Command::Claim { cluster, .. } => inputs.push_back(Input::Claimed { cluster }),
                Command::TakeBaseline { cluster, .. } => inputs.push_back(Input::BaselineTaken {
                    cluster,
                    baseline: Default::default(),
                    pools: Default::default(),
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
pub fn compile_checked(file: &str, text: &str, with_fleet: bool) -> Option<Policy> {
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
pub fn plan_and_drive(file: &str, text: &str, policy: &Policy, drive_inputs: usize) {
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
pub fn check_policy(file: &str, text: &str, drive_inputs: usize) -> bool {
    let policy = compile_checked(file, text, true);
    if let Some(p) = &policy {
        plan_and_drive(file, text, p, drive_inputs);
    }
    policy.is_some()
}

/// Loads a (mutated) fleet file; when accepted, plans the demo policy on the snapshot
/// discovery would see of it and drives the plan a little through the engine.
pub fn check_fleet(text: &str) {
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
