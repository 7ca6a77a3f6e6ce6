//! The pure engine, step by step, on the demo fleet's plan: the cases that need an
//! exact sequence of inputs (the simulation campaign, `tests/campaign.rs`, covers the
//! rest through the real runtime).

mod support;

use chrono::Duration;
use ringmaster::domain::fleet::ClusterId;
use ringmaster::engine::{self, ClusterStatus, Command, Input, Rollout, Settings, StepRef, StepStatus};

/// The demo policy's rollout of the demo fleet, and its settings.
fn demo() -> (Rollout, Settings) {
    let fleet = support::demo_snapshot::load_fleet("demo.yaml");
    let snapshot = support::demo_snapshot::snapshot(&fleet);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/demo.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let file = path.display().to_string();
    let policy = ringmaster::policy::compile_with_snapshot(&file, &text, Some(&snapshot)).unwrap();
    let plan = ringmaster::plan::plan(&snapshot, &policy, snapshot.taken_at);
    let settings = Settings::from_policy(&policy);
    (Rollout::new("t".into(), file, text, plan, snapshot.taken_at), settings)
}

/// Answers every command as AKS would (baselines taken, calls accepted, operations
/// done) until `stop` picks a command; returns it and the time reached.
fn run_until<T>(
    r: &mut Rollout,
    s: &Settings,
    mut now: chrono::DateTime<chrono::Utc>,
    mut stop: impl FnMut(&Rollout, &Command) -> Option<T>,
) -> (T, chrono::DateTime<chrono::Utc>) {
    let mut inputs = vec![Input::Tick];
    loop {
        let input = inputs.pop().expect("the stop comes before the inputs run out");
        for c in engine::advance(r, s, input, now) {
            if let Some(t) = stop(r, &c) {
                return (t, now);
            }
            match c {
                Command::TakeBaseline { cluster, .. } => inputs.push(Input::BaselineTaken {
                    cluster,
                    baseline: serde_json::Value::Null,
                }),
                Command::StartStep { step, .. } => inputs.push(Input::StepAccepted { step, op: None }),
                Command::FollowOperation { step, .. } => inputs.push(Input::OperationFinished { step, result: Ok(()) }),
                Command::Gate { step, .. } => inputs.push(Input::GateObserved {
                    step,
                    healthy: true,
                    reasons: vec![],
                    at: now,
                }),
                Command::Notify {
                    event: engine::NotifyEvent::ApprovalNeeded,
                    ring: Some(ring),
                    ..
                } => inputs.push(Input::Approve {
                    ring,
                    by: "alice".into(),
                    comment: "test".into(),
                    expires_at: None,
                }),
                _ => {}
            }
        }
        if inputs.is_empty() {
            inputs.push(Input::Tick);
        }
        now += Duration::seconds(30);
    }
}

/// An operator skips a cluster whose upgrade AKS is running: AKS goes on with it, so
/// the cluster keeps its wave slot and nothing else of it starts; it is skipped when
/// the operation ends, and only then may the next wave start. (Found by the campaign,
/// seed 392 of its first generator: the skip freed the slot at once and the next wave
/// started beside the running upgrade.)
#[test]
fn a_skip_waits_for_the_running_operation_and_holds_the_wave() {
    let (mut r, s) = demo();
    let start = r.created_at;
    // To the prod canary's first operation (prod's canary wave comes before `rest`).
    let (step, mut now) = run_until(&mut r, &s, start, |r, c| match c {
        Command::FollowOperation { step, .. } if r.rings[step.ring].name == "prod" => Some(*step),
        _ => None,
    });
    let canary: ClusterId = r.cluster(step.cluster_ref()).id.clone();
    let skip = Input::Skip {
        cluster: canary.clone(),
        by: "carol".into(),
        reason: "test".into(),
    };
    let cmds = engine::advance(&mut r, &s, skip, now);
    assert!(
        audits(&cmds).contains(&"cluster.skip_requested".to_string()),
        "{cmds:?}"
    );
    assert!(
        r.cluster(step.cluster_ref()).status.is_active(),
        "it holds its slot while AKS works"
    );
    // Time passes; the operation still runs: nothing starts, in this wave or the next.
    now += Duration::minutes(30);
    let cmds = engine::advance(&mut r, &s, Input::Tick, now);
    let started: Vec<&Command> = cmds
        .iter()
        .filter(|c| matches!(c, Command::StartStep { .. } | Command::TakeBaseline { .. }))
        .collect();
    assert!(
        started.is_empty(),
        "nothing starts while the skipped cluster's operation runs: {started:?}"
    );
    // The operation ends: the cluster is skipped, and the next wave may go.
    now += Duration::minutes(1);
    let cmds = engine::advance(&mut r, &s, Input::OperationFinished { step, result: Ok(()) }, now);
    assert!(audits(&cmds).contains(&"cluster.skipped".to_string()), "{cmds:?}");
    assert!(matches!(
        r.cluster(step.cluster_ref()).status,
        ClusterStatus::Skipped { .. }
    ));
    let next: Vec<&StepRef> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::StartStep { step, .. } => Some(step),
            _ => None,
        })
        .collect();
    assert!(
        next.iter().all(|st| st.cluster_ref() != step.cluster_ref()),
        "no step of the skipped cluster: {next:?}"
    );
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::TakeBaseline { cluster, .. } if cluster.wave == step.wave + 1)),
        "the next wave starts once the operation ended: {cmds:?}"
    );
}

fn audits(cmds: &[Command]) -> Vec<String> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Audit { action, .. } => Some(action.clone()),
            _ => None,
        })
        .collect()
}

/// Health the watches saw before a gate's deadline counts from when it was seen, even
/// when the engine gets the observation late (a backlog): no false timeout, and the
/// settle time runs from the watch time, not from when the loop got to it.
#[test]
fn a_late_healthy_observation_counts_from_when_it_was_seen() {
    let (mut r, settings) = demo();
    // Answer every command as AKS would until the first gate begins.
    let start = r.created_at;
    let (step, _) = run_until(&mut r, &settings, start, |_, c| match c {
        Command::Gate { step, .. } => Some(*step),
        _ => None,
    });
    let StepStatus::Gating { since, .. } = r.step(step).status.clone() else {
        panic!("the step is gating")
    };
    let timeout = Duration::from_std(settings.gate_timeout).unwrap();
    let settle = Duration::from_std(settings.gate_settle).unwrap();
    let seen = since + timeout - Duration::seconds(2);
    let late = since + timeout + Duration::seconds(3);
    let healthy = Input::GateObserved {
        step,
        healthy: true,
        reasons: vec![],
        at: seen,
    };
    let cmds = engine::advance(&mut r, &settings, healthy, late);
    let actions: Vec<&str> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Audit { action, .. } => Some(action.as_str()),
            _ => None,
        })
        .collect();
    assert!(!actions.contains(&"gate.failed"), "{actions:?}");
    assert!(
        matches!(r.step(step).status, StepStatus::Gating { passing_since: Some(p), .. } if p == seen),
        "{:?}",
        r.step(step).status
    );
    let wake = cmds.iter().find_map(|c| match c {
        Command::WakeAt { at } => Some(*at),
        _ => None,
    });
    assert_eq!(wake, Some(seen + settle), "the engine wakes when the settle time ends");
    engine::advance(&mut r, &settings, Input::Tick, seen + settle);
    assert!(
        !matches!(
            r.step(step).status,
            StepStatus::Gating { .. } | StepStatus::Failed { .. }
        ),
        "passed at seen + settle: {:?}",
        r.step(step).status
    );
}
