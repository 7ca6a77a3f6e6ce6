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

/// Answers every command as AKS would (preflights clear, baselines taken, calls
/// accepted, operations done) until `stop` picks a command; returns it and the time
/// reached. The commands after the picked one in its batch are dropped: to go on from
/// there, start again with `Input::Resumed` (which asks for them again).
fn run_until<T>(
    r: &mut Rollout,
    s: &Settings,
    now: chrono::DateTime<chrono::Utc>,
    stop: impl FnMut(&Rollout, &Command) -> Option<T>,
) -> (T, chrono::DateTime<chrono::Utc>) {
    run_from(r, s, now, Input::Tick, stop)
}

fn run_from<T>(
    r: &mut Rollout,
    s: &Settings,
    mut now: chrono::DateTime<chrono::Utc>,
    first: Input,
    mut stop: impl FnMut(&Rollout, &Command) -> Option<T>,
) -> (T, chrono::DateTime<chrono::Utc>) {
    let mut inputs = vec![first];
    loop {
        let input = inputs.pop().expect("the stop comes before the inputs run out");
        for c in engine::advance(r, s, input, now) {
            if let Some(t) = stop(r, &c) {
                return (t, now);
            }
            match c {
                Command::RunPreflight { cluster, .. } => inputs.push(Input::PreflightDone {
                    cluster,
                    findings: vec![],
                }),
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
        .filter(|c| {
            matches!(
                c,
                Command::StartStep { .. } | Command::TakeBaseline { .. } | Command::RunPreflight { .. }
            )
        })
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
            .any(|c| matches!(c, Command::RunPreflight { cluster, .. } if cluster.wave == step.wave + 1)),
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

/// A blocking finding about `cluster`.
fn block(cluster: &ClusterId) -> ringmaster::preflight::Finding {
    ringmaster::preflight::Finding {
        cluster: cluster.clone(),
        pool: Some("user1".into()),
        check: ringmaster::preflight::Check::Pdb,
        severity: ringmaster::preflight::Severity::Blocks,
        aks_code: Some("UnsatisfiablePDB".into()),
        seen: "PDB shop/web: maxUnavailable: 0".into(),
        why: "refused".into(),
        fix: "relax it".into(),
    }
}

/// Drives the demo rollout until the first preflight command; returns it.
fn first_preflight(
    r: &mut Rollout,
    s: &Settings,
) -> (
    engine::ClusterRef,
    Vec<ringmaster::plan::ClusterPlan>,
    chrono::DateTime<chrono::Utc>,
) {
    let start = r.created_at;
    let ((c, o), t) = run_until(r, s, start, |_, c| match c {
        Command::RunPreflight { cluster, others, .. } => Some((*cluster, others.clone())),
        _ => None,
    });
    (c, o, t)
}

/// `on_block: skip` (the default): the cluster is skipped by "preflight", sends nothing,
/// and does not count against the ring's failure budget.
#[test]
fn a_blocking_preflight_skips_the_cluster_before_any_call() {
    let (mut r, s) = demo();
    let (cref, _, t) = first_preflight(&mut r, &s);
    let id = r.cluster(cref).id.clone();
    let cmds = engine::advance(
        &mut r,
        &s,
        Input::PreflightDone {
            cluster: cref,
            findings: vec![block(&id)],
        },
        t,
    );
    match &r.cluster(cref).status {
        ClusterStatus::Skipped { by, reason } => {
            assert_eq!(by, "preflight");
            assert!(reason.contains("pdb [UnsatisfiablePDB]: PDB shop/web"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!cmds.iter().any(|c| matches!(c, Command::TakeBaseline { cluster, .. } | Command::RunPreflight { cluster, .. } if *cluster == cref)));
    assert!(cmds.iter().any(|c| matches!(
        c,
        Command::Notify {
            event: engine::NotifyEvent::PreflightBlocked,
            ..
        }
    )));
    assert!(!r.cluster(cref).preflight.as_ref().unwrap().passed);
    // The rest of the rollout goes on, and never starts a step of the skipped cluster.
    let ((), _) = run_from(&mut r, &s, t, Input::Resumed, |r, c| {
        if let Command::StartStep { cluster, .. } = c {
            assert_ne!(*cluster, id, "a step of the skipped cluster started");
        }
        r.status.is_terminal().then_some(())
    });
    assert_eq!(r.status, engine::RolloutStatus::Succeeded, "a skip is not a failure");
}

/// `on_block: halt` halts the rollout; `wait` re-checks and goes on once it clears,
/// and skips the cluster when it never clears within `wait_up_to`.
#[test]
fn halt_halts_and_wait_rechecks_until_it_clears_or_times_out() {
    use ringmaster::policy::OnBlock;
    let (mut r, mut s) = demo();
    s.preflight.as_mut().unwrap().on_block = OnBlock::Halt;
    let (cref, _, t) = first_preflight(&mut r, &s);
    let id = r.cluster(cref).id.clone();
    engine::advance(
        &mut r,
        &s,
        Input::PreflightDone {
            cluster: cref,
            findings: vec![block(&id)],
        },
        t,
    );
    assert!(
        matches!(r.status, engine::RolloutStatus::Halted { .. }),
        "{:?}",
        r.status
    );

    let (mut r, mut s) = demo();
    s.preflight.as_mut().unwrap().on_block = OnBlock::Wait;
    let (cref, _, t) = first_preflight(&mut r, &s);
    let id = r.cluster(cref).id.clone();
    engine::advance(
        &mut r,
        &s,
        Input::PreflightDone {
            cluster: cref,
            findings: vec![block(&id)],
        },
        t,
    );
    assert_eq!(r.cluster(cref).status, ClusterStatus::Preparing);
    let recheck = s.preflight.as_ref().unwrap().recheck;
    let early = engine::advance(&mut r, &s, Input::Tick, t + Duration::seconds(10));
    assert!(
        !early.iter().any(|c| matches!(c, Command::RunPreflight { .. })),
        "not before the re-check time"
    );
    let again = engine::advance(&mut r, &s, Input::Tick, t + Duration::from_std(recheck).unwrap());
    assert!(
        again
            .iter()
            .any(|c| matches!(c, Command::RunPreflight { cluster, .. } if *cluster == cref))
    );
    let next = engine::advance(
        &mut r,
        &s,
        Input::PreflightDone {
            cluster: cref,
            findings: vec![],
        },
        t + Duration::minutes(6),
    );
    assert!(
        next.iter()
            .any(|c| matches!(c, Command::TakeBaseline { cluster, .. } if *cluster == cref)),
        "cleared: on to the baseline"
    );

    let (mut r, mut s) = demo();
    s.preflight.as_mut().unwrap().on_block = OnBlock::Wait;
    let (cref, _, t) = first_preflight(&mut r, &s);
    let id = r.cluster(cref).id.clone();
    let up_to = Duration::from_std(s.preflight.as_ref().unwrap().wait_up_to).unwrap();
    engine::advance(
        &mut r,
        &s,
        Input::PreflightDone {
            cluster: cref,
            findings: vec![block(&id)],
        },
        t,
    );
    engine::advance(
        &mut r,
        &s,
        Input::PreflightDone {
            cluster: cref,
            findings: vec![block(&id)],
        },
        t + up_to,
    );
    match &r.cluster(cref).status {
        ClusterStatus::Skipped { reason, .. } => assert!(reason.contains("still blocked after 1d"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

/// The wave's clusters ahead of a cluster, started and unfinished, come with its
/// preflight command: their surges share its quota.
#[test]
fn a_preflight_carries_the_wave_mates_ahead_of_it() {
    let (mut r, s) = demo();
    let start = r.created_at;
    let mut seen = Vec::new();
    let ((), _) = run_until(&mut r, &s, start, |r, c| {
        if let Command::RunPreflight { cluster, others, .. } = c {
            let ahead: Vec<String> = r.rings[cluster.ring].waves[cluster.wave].clusters[..cluster.cluster]
                .iter()
                .filter(|x| x.status.is_active())
                .map(|x| x.id.name.clone())
                .collect();
            let got: Vec<String> = others.iter().map(|o| o.id.name.clone()).collect();
            assert_eq!(got, ahead);
            seen.push(others.len());
        }
        r.status.is_terminal().then_some(())
    });
    assert!(
        seen.iter().any(|n| *n > 0),
        "some wave has several clusters at once: {seen:?}"
    );
}
