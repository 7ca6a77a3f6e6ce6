//! From a pool's failed gate to its rollback, in-process: the simulator on
//! `tests/fixtures/rollback/fleet.yaml`'s `rb-broken` (pods never Ready on 1.33 nodes of
//! pool user1), the real runtime with a state file, `tests/fixtures/rollback/policy.yaml`
//! (`on_gate_failure: rollback`, gate timeout 10 min, settle 1 min). Issue 14's goal:
//! the rollback's call within 1 s of simulated time after the gate fails, like any step.
//!
//! Measured in simulated time (the engine's clock runs in step with the simulator's),
//! per run:
//! - **late**: the gate's failure after its deadline (when it started gating plus the
//!   timeout): how soon the engine acts on a timeout;
//! - **intent**: gate failed -> the rollback's `step.started` (its intent, saved);
//! - **AKS**: gate failed -> the simulator received the rollback's PUT;
//! - **Ready**: gate failed -> the last of the pods Ready again (the simulator's own
//!   record), which is AKS's rollback (surge, drain, reimage) plus the pods' start;
//! - **rolledBack**: gate failed -> the cluster `rolledBack` (Ready plus the gate's
//!   settle time plus watch latency).
//!
//! Each scale runs three times; at a higher scale every wall-clock millisecond weighs
//! more in simulated time (at 300x, 1 ms is 0.3 s).
//!
//! Run: `cargo bench --bench rollback` (about 1 minute).

use ringmaster::demo::Rehearsal;
use ringmaster::domain::fleet::ClusterId;
use ringmaster::engine::{Input, NotifyEvent};
use ringmaster::runtime::{Notifier, Runtime};
use ringmaster::store::{AuditEntry, Store};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

type Time = chrono::DateTime<chrono::Utc>;

const CLUSTER: &str = "rb-broken";

struct Quiet;

impl Notifier for Quiet {
    fn notify(&self, _: NotifyEvent, _: Option<&str>, _: Option<&ClusterId>, _: &str) {}
}

struct Run {
    late: f64,
    intent: f64,
    aks: f64,
    ready: f64,
    rolled_back: f64,
}

fn secs(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

async fn one(scale: f64) -> Run {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fleet_path = root.join("tests/fixtures/rollback/fleet.yaml");
    let policy_path = root.join("tests/fixtures/rollback/policy.yaml");
    let mut fleet =
        ringmaster::sim::fleet::parse("fleet.yaml", &std::fs::read_to_string(&fleet_path).unwrap()).expect("fleet");
    fleet.clusters.retain(|c| c.name == CLUSTER);
    fleet.faults.retain(|f| format!("{:?}", f.what).contains(CLUSTER));
    let policy_text = std::fs::read_to_string(&policy_path).unwrap();
    let policy = ringmaster::policy::compile("policy.yaml", &policy_text).expect("policy");
    let dir = tempfile::tempdir().unwrap();
    let Rehearsal {
        sim,
        clock,
        client,
        tokens,
    } = Rehearsal::start(fleet, scale, None).await.expect("simulator");
    let (rollout, _) =
        ringmaster::service::run::new_rollout(&client, &policy_path, &sim.info.subscription_ids, clock.now())
            .await
            .expect("plan");
    let store = Arc::new(Store::open(dir.path().join("state.db")).unwrap());
    let mut rt = Runtime::new(rollout, client, tokens, clock.clone(), Some(store), Arc::new(Quiet)).unwrap();
    let mut audit = rt.audit_feed();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(rt.run(Input::Tick, async {
        let _ = stop_rx.await;
    }));
    let mut seen: Vec<AuditEntry> = Vec::new();
    let limit = tokio::time::sleep(Duration::from_secs(120));
    tokio::pin!(limit);
    loop {
        tokio::select! {
            Some(a) = audit.recv() => {
                let end = a.action == "cluster.rolled_back" || a.action == "cluster.rollback_failed";
                seen.push(a);
                if end { break; }
            }
            _ = &mut limit => panic!("no rollback within 120 s: {:#?}", seen.iter().map(|a| &a.action).collect::<Vec<_>>()),
        }
    }
    let _ = stop_tx.send(());
    let _ = runner.await;
    let at = |action: &str, part: &str| -> Time {
        seen.iter()
            .find(|a| a.action == action && a.subject.contains(part))
            .unwrap_or_else(|| panic!("no {action} {part}"))
            .at
    };
    let failed = at("gate.failed", "pool user1");
    let gating_since = seen
        .iter()
        .rev()
        .find(|a| a.action == "step.operation_done" && a.subject.contains("pool user1") && a.at <= failed)
        .expect("the failed step's gate start")
        .at;
    let deadline = gating_since + chrono::Duration::from_std(policy.gates.pod_readiness.timeout).unwrap();
    let intent = at("step.started", "rollback");
    let rolled_back = at("cluster.rolled_back", CLUSTER);
    let (received, ready) = sim.with_world(|w| {
        let put = w
            .writes
            .iter()
            .find(|x| x.rollback_to.is_some())
            .expect("the rollback's PUT")
            .at
            .to_datetime();
        let c = w.clusters.iter().find(|c| c.name == CLUSTER).unwrap();
        let ready = c
            .kube
            .pods
            .values()
            .filter(|p| p.namespace == "shop" && p.ready)
            .filter_map(|p| p.ready_since)
            .max()
            .expect("pods Ready again")
            .to_datetime();
        (put, ready)
    });
    sim.shutdown().await;
    Run {
        late: secs(failed - deadline),
        intent: secs(intent - failed),
        aks: secs(received - failed),
        ready: secs(ready - failed),
        rolled_back: secs(rolled_back - failed),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    ringmaster::identity::install_crypto_provider();
    println!("simulated seconds after the gate failed (late: after the gate's deadline)");
    println!(
        "{:>6} {:>4} {:>8} {:>8} {:>8} {:>9} {:>11}",
        "scale", "run", "late", "intent", "AKS", "Ready", "rolledBack"
    );
    for scale in [60.0, 300.0] {
        let mut worst: f64 = 0.0;
        for i in 1..=3 {
            let r = one(scale).await;
            worst = worst.max(r.aks);
            println!(
                "{:>5}x {:>4} {:>8.2} {:>8.2} {:>8.2} {:>9.1} {:>11.1}",
                scale, i, r.late, r.intent, r.aks, r.ready, r.rolled_back
            );
        }
        println!(
            "{scale}x: gate failure -> AKS received the rollback, worst {worst:.2} s (goal 1 s): {}",
            if worst <= 1.0 { "met" } else { "NOT met" }
        );
    }
}
