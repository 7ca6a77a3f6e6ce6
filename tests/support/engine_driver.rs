//! The demo policy's rollout of the demo fleet through the pure engine, with every
//! command answered as AKS would: for tests that need exact sequences of inputs.

use super::demo_snapshot;
use chrono::Duration;
use ringmaster::domain::fleet::ClusterId;
use ringmaster::engine::{self, Command, Input, Rollout, Settings};

/// The demo policy's rollout of the demo fleet, and its settings.
pub fn demo() -> (Rollout, Settings) {
    let fleet = demo_snapshot::load_fleet("demo.yaml");
    let snapshot = demo_snapshot::snapshot(&fleet);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/demo.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let file = path.display().to_string();
    let policy = ringmaster::policy::compile_with_snapshot(&file, &text, Some(&snapshot)).unwrap();
    let plan = ringmaster::plan::plan(&snapshot, &policy, snapshot.taken_at);
    let settings = Settings::from_policy(&policy);
    (Rollout::new("t".into(), file, text, plan, snapshot.taken_at), settings)
}

/// The demo fleet's pools of one cluster, as the executor reads them for a baseline.
pub fn pools_of(id: &ClusterId) -> std::collections::BTreeMap<String, engine::PoolVersions> {
    let fleet = demo_snapshot::load_fleet("demo.yaml");
    let snapshot = demo_snapshot::snapshot(&fleet);
    let c = snapshot.clusters.iter().find(|c| &c.id == id).expect("a demo cluster");
    c.pools
        .iter()
        .map(|p| {
            let v = engine::PoolVersions {
                version: p.version,
                image: Some(p.node_image.clone()),
            };
            (p.name.clone(), v)
        })
        .collect()
}

/// Answers every command as AKS would (preflights clear, baselines taken, calls
/// accepted, operations done) until `stop` picks a command; returns it and the time
/// reached. The commands after the picked one in its batch are dropped: to go on from
/// there, start again with `Input::Resumed` (which asks for them again).
pub fn run_until<T>(
    r: &mut Rollout,
    s: &Settings,
    now: chrono::DateTime<chrono::Utc>,
    stop: impl FnMut(&Rollout, &Command) -> Option<T>,
) -> (T, chrono::DateTime<chrono::Utc>) {
    run_from(r, s, now, Input::Tick, stop)
}

pub fn run_from<T>(
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
                Command::Claim { cluster, .. } => inputs.push(Input::Claimed { cluster }),
                Command::TakeBaseline { cluster, id } => inputs.push(Input::BaselineTaken {
                    cluster,
                    // Synced, as the executor's (an unsynced one fails the baseline).
                    baseline: ringmaster::gate::Baseline {
                        synced: true,
                        ..Default::default()
                    },
                    pools: pools_of(&id),
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

/// The audit actions among `cmds`, in order.
pub fn audits(cmds: &[Command]) -> Vec<String> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Audit { action, .. } => Some(action.clone()),
            _ => None,
        })
        .collect()
}
