//! An abort reaches AKS. The rollout ends at once (Aborted), and the abort call for the
//! operation in flight is still sent: the runtime's end waits for it instead of
//! cancelling it with its other tasks (which is what it did: the abort never left).
//! In-process simulator on a scaled clock; waits are event-driven and bounded.

mod common;

use ringmaster::demo::Rehearsal;
use ringmaster::engine::{Input, RolloutStatus, StepStatus};
use ringmaster::runtime::{LogNotifier, Runtime};
use ringmaster::sim::operation::OpStatus;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_cancels_the_operation_in_flight_in_aks() {
    let mut fleet = common::demo_fleet();
    fleet.faults.clear();
    let Rehearsal {
        sim,
        clock,
        client,
        tokens,
    } = Rehearsal::start(fleet, 200.0, None).await.unwrap();
    let policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/demo.yaml");
    let (rollout, _) = ringmaster::service::run::new_rollout(&client, &policy, &sim.info.subscription_ids, clock.now())
        .await
        .unwrap();
    let rt = Runtime::new(rollout, client, tokens, clock, None, Arc::new(LogNotifier)).unwrap();
    let control = rt.control();
    let mut progress = rt.progress();
    let run = tokio::spawn(rt.run(Input::Tick, std::future::pending::<()>()));
    let in_flight = async {
        loop {
            let flying = progress
                .borrow()
                .clusters()
                .any(|(_, c)| c.steps.iter().any(|s| matches!(s.status, StepStatus::InFlight { .. })));
            if flying {
                return;
            }
            progress.changed().await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), in_flight)
        .await
        .expect("a step's operation in flight");
    assert!(control.send(Input::Abort {
        by: "alice".into(),
        reason: "stop".into(),
    }));
    let end = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the rollout ends")
        .unwrap()
        .unwrap();
    assert!(matches!(end.status, RolloutStatus::Aborted { .. }), "{:?}", end.status);
    // AKS got the abort: an abort operation names the upgrade, which is canceling.
    let (aborts, canceling) = sim.with_world(|w| {
        let aborts: Vec<String> = w.ops.values().filter_map(|o| o.abort_of.clone()).collect();
        let canceling = aborts
            .iter()
            .filter(|id| {
                w.ops
                    .get(*id)
                    .is_some_and(|o| matches!(o.status, OpStatus::Canceling | OpStatus::Canceled))
            })
            .count();
        (aborts.len(), canceling)
    });
    assert!(aborts >= 1, "no abort reached the simulator");
    assert_eq!(canceling, aborts, "every aborted operation is being canceled");
}
