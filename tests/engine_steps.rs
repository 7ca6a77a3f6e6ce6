//! The pure engine, step by step, on the demo fleet's plan: the cases that need an
//! exact sequence of inputs (the simulation campaign, `tests/campaign.rs`, covers the
//! rest through the real runtime).

mod support;

use support::engine_driver::{audits, demo, pools_of, run_from, run_until};

use chrono::Duration;
use ringmaster::domain::fleet::ClusterId;
use ringmaster::engine::{self, ClusterStatus, Command, Input, Rollout, Settings, StepRef, StepStatus};

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
                Command::StartStep { .. }
                    | Command::Claim { .. }
                    | Command::TakeBaseline { .. }
                    | Command::RunPreflight { .. }
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
            .any(|c| matches!(c, Command::Claim { cluster, .. } if cluster.wave == step.wave + 1)),
        "the next wave starts once the operation ended: {cmds:?}"
    );
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
/// and does not count against the ring's failure budget. The skip's ring is given no
/// budget at all (`halt`, 0 failures): a skip counted as a failure would halt it.
#[test]
fn a_blocking_preflight_skips_the_cluster_before_any_call() {
    let (mut r, mut s) = demo();
    let (cref, _, t) = first_preflight(&mut r, &s);
    let id = r.cluster(cref).id.clone();
    let ring = r.rings[cref.ring].name.clone();
    let budget = s.rings.iter_mut().find(|x| x.name == ring).unwrap();
    budget.halt_on_failure = true;
    budget.max_failed_clusters = 0;
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
    assert_eq!(r.rings[cref.ring].status, engine::RingStatus::Passed, "{ring}");
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
/// preflight command: their surges share its quota. Judged against the demo's plan
/// written out by hand (not against a copy of the engine's rule): dev's one wave runs
/// its three clusters at once (`max_parallel: 3`), so the second and third preflights
/// carry the ones ahead; staging's wave (`max_parallel: 2`) takes its two at once;
/// prod's waves run one cluster at a time, and carry none. (That the quota check counts
/// them against AKS's quota is `tests/preflight_e2e.rs`: a pair that fits alone but not
/// together.)
#[test]
fn a_preflight_carries_the_wave_mates_ahead_of_it() {
    let (mut r, s) = demo();
    let start = r.created_at;
    let mut seen: Vec<(String, Vec<String>)> = Vec::new();
    let ((), _) = run_until(&mut r, &s, start, |r, c| {
        if let Command::RunPreflight { cluster, others, .. } = c {
            let name = r.cluster(*cluster).id.name.clone();
            seen.push((name, others.iter().map(|o| o.id.name.clone()).collect()));
        }
        r.status.is_terminal().then_some(())
    });
    let mut want: Vec<(String, Vec<String>)> = WANT_PREFLIGHTS
        .iter()
        .map(|(c, o)| (c.to_string(), o.iter().map(|x| x.to_string()).collect()))
        .collect();
    // Which wave-mate's preflight runs first follows the order its claim is answered
    // in (the driver answers the last first); what each one carries does not.
    seen.sort();
    want.sort();
    assert_eq!(seen, want);
}

/// Each preflight of the demo rollout, in order: (cluster, wave mates ahead of it).
const WANT_PREFLIGHTS: &[(&str, &[&str])] = &[
    ("aks-dev-neu-01", &[]),
    ("aks-dev-weu-01", &["aks-dev-neu-01"]),
    ("aks-dev-weu-02", &["aks-dev-neu-01", "aks-dev-weu-01"]),
    ("aks-stg-neu-01", &[]),
    ("aks-stg-weu-01", &["aks-stg-neu-01"]),
    ("aks-prd-weu-02", &[]),
    ("aks-prd-neu-01", &[]),
    ("aks-prd-weu-01", &[]),
];

/// Drives the demo to the first gate of a node pool step of `cluster`.
fn to_pool_gate(r: &mut Rollout, s: &Settings, cluster: &str) -> (StepRef, chrono::DateTime<chrono::Utc>) {
    let start = r.created_at;
    run_until(r, s, start, |_, c| match c {
        Command::Gate {
            step,
            cluster: id,
            kind: ringmaster::plan::StepKind::PoolVersion { .. },
        } if id.name == cluster => Some(*step),
        _ => None,
    })
}

/// Fails the gate of `step`: unhealthy until its timeout.
fn fail_gate(
    r: &mut Rollout,
    s: &Settings,
    step: StepRef,
    now: chrono::DateTime<chrono::Utc>,
) -> (Vec<Command>, chrono::DateTime<chrono::Utc>) {
    let bad = Input::GateObserved {
        step,
        healthy: false,
        reasons: vec!["shop/web-1 not Ready".into()],
        at: now,
    };
    engine::advance(r, s, bad, now);
    let later = now + Duration::from_std(s.gate_timeout).unwrap() + Duration::seconds(1);
    (engine::advance(r, s, Input::Tick, later), later)
}

/// AKS accepts the step's call and its operation succeeds; the commands that follow.
fn aks_takes(r: &mut Rollout, s: &Settings, step: StepRef, now: chrono::DateTime<chrono::Utc>) -> Vec<Command> {
    engine::advance(r, s, Input::StepAccepted { step, op: None }, now);
    engine::advance(r, s, Input::OperationFinished { step, result: Ok(()) }, now)
}

fn rollback_start(cmds: &[Command]) -> Option<(StepRef, ringmaster::plan::StepKind)> {
    cmds.iter().find_map(|c| match c {
        Command::StartStep { step, kind, .. } if matches!(kind, ringmaster::plan::StepKind::PoolRollback { .. }) => {
            Some((*step, kind.clone()))
        }
        _ => None,
    })
}

/// The demo policy rolls back: a pool step whose gate fails becomes a rollback to the
/// version and image the pool had (recorded with the step's intent, before its call),
/// sent at once; when the rollback's gate passes, the cluster ends `rolledBack` and the
/// steps after the failed one never run.
#[test]
fn a_pool_whose_gate_fails_is_rolled_back_to_what_it_had() {
    let (mut r, s) = demo();
    let (step, now) = to_pool_gate(&mut r, &s, "aks-stg-weu-01");
    let before = r.step(step).rollback_to.clone().expect("recorded with the intent");
    let id = r.cluster(step.cluster_ref()).id.clone();
    let ringmaster::plan::StepKind::PoolVersion { pool, from, to } = r.step(step).kind.clone() else {
        unreachable!()
    };
    let had = &pools_of(&id)[&pool];
    assert_eq!((&before.version, &before.image), (&from, &had.image));
    assert_eq!(before.version, had.version);

    let (cmds, now) = fail_gate(&mut r, &s, step, now);
    assert!(audits(&cmds).contains(&"gate.failed".to_string()), "{cmds:?}");
    assert!(audits(&cmds).contains(&"cluster.rolling_back".to_string()), "{cmds:?}");
    let (rb, kind) = rollback_start(&cmds).expect("the rollback's call is asked for at once");
    assert_eq!(
        kind,
        ringmaster::plan::StepKind::PoolRollback {
            pool: pool.clone(),
            from: to,
            to: had.version,
            image: had.image.clone(),
        }
    );
    assert!(matches!(r.step(rb).status, StepStatus::Starting { .. }), "intent first");
    assert!(r.cluster(step.cluster_ref()).status.is_active(), "holds its slot");

    // AKS rolls it back; the workloads pass the gate again.
    let cmds = aks_takes(&mut r, &s, rb, now);
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::Gate { step, .. } if *step == rb))
    );
    let healthy = Input::GateObserved {
        step: rb,
        healthy: true,
        reasons: vec![],
        at: now,
    };
    engine::advance(&mut r, &s, healthy, now);
    let later = now + Duration::from_std(s.gate_settle).unwrap();
    let cmds = engine::advance(&mut r, &s, Input::Tick, later);
    assert!(audits(&cmds).contains(&"cluster.rolled_back".to_string()), "{cmds:?}");
    assert!(cmds.iter().any(|c| matches!(
        c,
        Command::Notify {
            event: engine::NotifyEvent::RollbackFinished,
            ..
        }
    )));
    let c = r.cluster(step.cluster_ref());
    let ClusterStatus::RolledBack { reason } = &c.status else {
        panic!("{:?}", c.status)
    };
    assert!(
        reason.contains("shop/web-1 not Ready") && reason.contains(&format!("rolled back to {}", had.version)),
        "{reason}"
    );
    // Nothing after the failed step ran.
    assert!(
        c.steps[step.step + 1..rb.step]
            .iter()
            .all(|s| s.status == StepStatus::Pending)
    );
}

/// `hold` (the default): the gate failure fails the cluster, nothing is rolled back.
#[test]
fn with_hold_a_failed_gate_is_not_rolled_back() {
    let (mut r, mut s) = demo();
    for ring in &mut s.rings {
        ring.on_gate_failure = ringmaster::policy::OnGateFailure::Hold;
    }
    let (step, now) = to_pool_gate(&mut r, &s, "aks-stg-weu-01");
    let (cmds, _) = fail_gate(&mut r, &s, step, now);
    assert!(rollback_start(&cmds).is_none(), "{cmds:?}");
    assert!(matches!(
        r.cluster(step.cluster_ref()).status,
        ClusterStatus::Failed { .. }
    ));
    assert!(
        !r.cluster(step.cluster_ref())
            .steps
            .iter()
            .any(|s| matches!(s.kind, ringmaster::plan::StepKind::PoolRollback { .. }))
    );
}

/// The daemon dies after the gate failure was saved (the rollback's intent with it) and
/// before or after the call: the restart reconciles the rollback (reads the pool, sends
/// only if it did not take) and asks for no second rollback or any other step.
#[test]
fn a_restart_after_the_gate_failure_reconciles_the_rollback_once() {
    let (mut r, s) = demo();
    let (step, now) = to_pool_gate(&mut r, &s, "aks-stg-weu-01");
    let (cmds, now) = fail_gate(&mut r, &s, step, now);
    let (rb, _) = rollback_start(&cmds).unwrap();
    // What the store keeps, read back.
    let mut r: Rollout = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    let cmds = engine::advance(&mut r, &s, Input::Resumed, now + Duration::minutes(3));
    let for_cluster: Vec<&Command> = cmds
        .iter()
        .filter(|c| matches!(c, Command::StartStep { step, .. } | Command::Reconcile { step, .. } if step.cluster_ref() == rb.cluster_ref()))
        .collect();
    assert!(
        matches!(for_cluster[..], [Command::Reconcile { step, .. }] if *step == rb),
        "{for_cluster:?}"
    );
    assert_eq!(
        r.cluster(rb.cluster_ref())
            .steps
            .iter()
            .filter(|s| matches!(s.kind, ringmaster::plan::StepKind::PoolRollback { .. }))
            .count(),
        1
    );
}

/// AKS refuses the rollback (the entry left `recentlyUsedVersions`): the cluster is held
/// as it is, failed with both reasons; no other step runs.
#[test]
fn a_rollback_aks_refuses_holds_the_cluster() {
    let (mut r, s) = demo();
    let (step, now) = to_pool_gate(&mut r, &s, "aks-stg-weu-01");
    let (cmds, now) = fail_gate(&mut r, &s, step, now);
    let (rb, _) = rollback_start(&cmds).unwrap();
    let refused = Input::StepRefused {
        step: rb,
        reason: "pool user1 cannot be rolled back to 1.32.7: AKS's recentlyUsedVersions lists nothing".into(),
        retryable: false,
    };
    let cmds = engine::advance(&mut r, &s, refused, now);
    assert!(
        audits(&cmds).contains(&"cluster.rollback_failed".to_string()),
        "{cmds:?}"
    );
    assert!(
        !cmds
            .iter()
            .any(|c| matches!(c, Command::StartStep { step, .. } if step.cluster_ref() == rb.cluster_ref()))
    );
    let ClusterStatus::Failed { reason } = &r.cluster(rb.cluster_ref()).status else {
        panic!()
    };
    assert!(
        reason.contains("shop/web-1 not Ready")
            && reason.contains("the rollback failed")
            && reason.contains("recentlyUsedVersions"),
        "{reason}"
    );
}

/// The rollback's own gate fails: the cluster fails; a rollback is never rolled back.
#[test]
fn a_rollback_whose_gate_fails_fails_the_cluster() {
    let (mut r, s) = demo();
    let (step, now) = to_pool_gate(&mut r, &s, "aks-stg-weu-01");
    let (cmds, now) = fail_gate(&mut r, &s, step, now);
    let (rb, _) = rollback_start(&cmds).unwrap();
    aks_takes(&mut r, &s, rb, now);
    let (cmds, _) = fail_gate(&mut r, &s, rb, now);
    assert!(rollback_start(&cmds).is_none(), "{cmds:?}");
    assert!(
        audits(&cmds).contains(&"cluster.rollback_failed".to_string()),
        "{cmds:?}"
    );
    assert!(matches!(
        r.cluster(rb.cluster_ref()).status,
        ClusterStatus::Failed { .. }
    ));
}

/// An operator skips a cluster while a pool step's gate is watching it, in a ring that
/// rolls back (the demo's): the cluster is over. Its gate's deadline passing later must
/// not fail the step, nor start a rollback on the skipped cluster. (Found while making
/// the engine's timed scan look at unfinished clusters only: before, the skipped
/// cluster's gate kept its deadline and a rollback call went out when it passed.)
#[test]
fn a_skipped_clusters_gate_deadline_starts_nothing() {
    let (mut r, s) = demo();
    let start = r.created_at;
    let (step, now) = run_until(&mut r, &s, start, |r, c| match c {
        Command::Gate { step, .. } if r.step(*step).kind.pool().is_some() => Some(*step),
        _ => None,
    });
    let id = r.cluster(step.cluster_ref()).id.clone();
    let steps = r.cluster(step.cluster_ref()).steps.len();
    let skip = Input::Skip {
        cluster: id,
        by: "carol".into(),
        reason: "test".into(),
    };
    let cmds = engine::advance(&mut r, &s, skip, now);
    assert!(audits(&cmds).contains(&"cluster.skipped".to_string()), "{cmds:?}");
    // Well past the gate's timeout.
    let cmds = engine::advance(&mut r, &s, Input::Tick, now + Duration::hours(2));
    let c = r.cluster(step.cluster_ref());
    assert!(matches!(c.status, ClusterStatus::Skipped { .. }), "{:?}", c.status);
    assert_eq!(c.steps.len(), steps, "no rollback step was added");
    let on_it: Vec<&Command> = cmds
        .iter()
        .filter(|x| matches!(x, Command::StartStep { step: s, .. } if s.cluster_ref() == step.cluster_ref()))
        .collect();
    assert!(on_it.is_empty(), "nothing is sent to a skipped cluster: {on_it:?}");
    assert!(
        !audits(&cmds).contains(&"gate.failed".to_string()),
        "{:?}",
        audits(&cmds)
    );
}
