//! A full state disk, in a real daemon with a real SQLite file, its API on loopback
//! and the simulator in-process (issue 12's finding 2, issue 26's finding 2):
//!
//! * loud: while the loop cannot save, `/readyz` is 503 with the reason, the
//!   `ringmaster_store_write_failing` gauge is 1 and a `stateNotSaved` webhook goes out;
//!   liveness does not depend on the disk; when saves work again all of it says so;
//! * no step lost or repeated, judged on the **simulator's request log** (every mutating
//!   ARM request, whatever its answer), not on the daemon's own audit: the rollout runs
//!   to its end through several outages, each cluster's versions in AKS are the target,
//!   and no step was sent twice (`common::writes`);
//! * an outage is not a failing workload: each outage lasts longer than the gates'
//!   timeout (5 simulated minutes) while a gate is running, and the rollout still ends
//!   with 0 failed or rolled-back clusters. The daemon took no input while it could not
//!   save; its gates observe again for their whole timeout afterwards
//!   (`Input::Unrecorded`), as after a restart.
//!
//! The full disk is `PRAGMA max_page_count` lowered on the live store to its current
//! size, then raised again. Waits are bounded; nothing is judged on wall-clock timing.

mod common;

use common::daemon::serve_demo;
use ringmaster::api::auth::Auth;
use ringmaster::demo::Rehearsal;
use ringmaster::domain::fleet::ClusterId;
use ringmaster::engine::{ClusterStatus, Input, NotifyEvent, RingStatus, Rollout, RolloutStatus, StepStatus};
use ringmaster::metrics::Metrics;
use ringmaster::runtime::Notifier;
use ringmaster::service::Control;
use ringmaster::store::{AuditQuery, Store};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Captured(Mutex<Vec<NotifyEvent>>);

impl Notifier for Captured {
    fn notify(&self, event: NotifyEvent, _ring: Option<&str>, _cluster: Option<&ClusterId>, _message: &str) {
        self.0.lock().unwrap().push(event);
    }
}

async fn until(what: &str, within: Duration, mut f: impl AsyncFnMut() -> bool) {
    let t = Instant::now();
    while !f().await {
        assert!(t.elapsed() < within, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn audit_of(store: &Store, action: &str) -> Vec<String> {
    let q = AuditQuery {
        limit: 100_000,
        ..Default::default()
    };
    store
        .audit(&q)
        .unwrap()
        .into_iter()
        .filter(|(_, e)| e.action == action)
        .map(|(_, e)| e.reason)
        .collect()
}

fn in_flight(r: &Rollout) -> bool {
    r.clusters()
        .any(|(_, c)| c.steps.iter().any(|s| matches!(s.status, StepStatus::InFlight { .. })))
}

/// The number in "… N gate(s) observe again …" of a `rollout.unrecorded` entry.
fn gates_restarted(reason: &str) -> usize {
    reason
        .split(';')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_longer_than_a_gate_timeout_lose_no_step_repeat_none_and_fail_no_cluster() {
    let mut fleet = common::demo_fleet();
    fleet.faults.clear();
    // 300x: a gate's 5-minute timeout is 1 s of wall clock, an outage of 3 s is 15
    // simulated minutes.
    let rehearsal = Rehearsal::start(fleet, 300.0, None).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("state.db")).unwrap());
    let notes = Arc::new(Captured::default());
    let metrics = Arc::new(Metrics::default());
    let auth = Auth::new(vec![], None, vec![]);
    let served = serve_demo(rehearsal, store.clone(), metrics.clone(), notes.clone(), auth, |_| {}).await;
    let (daemon, base) = (&served.daemon, served.base.clone());
    let http = reqwest::Client::new();
    let ready = |http: reqwest::Client, base: String| async move {
        let r = http.get(format!("{base}/readyz")).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().await.unwrap())
    };
    until("the rollout started", Duration::from_secs(60), async || {
        !daemon.active().is_empty()
    })
    .await;
    let id = daemon.active().into_iter().next().unwrap();
    let rollout = || daemon.get(&id).ok().flatten();

    // Outages until one caught a running gate (a gate starts when an operation ends,
    // and the operation runs on while the disk is full), at most five.
    let mut caught = 0;
    for outage in 0..5 {
        until("an operation in flight", Duration::from_secs(120), async || {
            rollout().is_some_and(|r| in_flight(&r) || r.status.is_terminal())
        })
        .await;
        if rollout().is_none_or(|r| r.status.is_terminal()) {
            break;
        }
        let pages = store.stats().unwrap().page_count;
        store.set_max_pages(pages).unwrap();
        until("/readyz 503", Duration::from_secs(90), async || {
            ready(http.clone(), base.clone()).await.0 == 503
        })
        .await;
        if outage == 0 {
            let (_, v) = ready(http.clone(), base.clone()).await;
            assert_eq!(v["error"]["code"], "persist_failed", "{v}");
            assert!(v["error"]["message"].as_str().unwrap().contains("full"), "{v}");
            assert_eq!(metrics.get("ringmaster_store_write_failing", &[]), 1.0);
            assert!(notes.0.lock().unwrap().contains(&NotifyEvent::StateNotSaved));
            let h = http.get(format!("{base}/healthz")).send().await.unwrap();
            assert_eq!(h.status().as_u16(), 200, "liveness does not depend on the disk");
            assert!(!daemon.active().is_empty(), "the rollout loop is waiting, not gone");
        }
        // Three gate timeouts of simulated time with nothing saved.
        tokio::time::sleep(Duration::from_secs(3)).await;
        store.set_max_pages(1 << 30).unwrap();
        until("/readyz 200 again", Duration::from_secs(90), async || {
            ready(http.clone(), base.clone()).await.0 == 200
        })
        .await;
        assert_eq!(metrics.get("ringmaster_store_write_failing", &[]), 0.0);
        assert!(notes.0.lock().unwrap().contains(&NotifyEvent::StateSaved));
        until("the outage recorded", Duration::from_secs(30), async || {
            audit_of(&store, "rollout.unrecorded").len() > outage
        })
        .await;
        caught = audit_of(&store, "rollout.unrecorded")
            .iter()
            .map(|r| gates_restarted(r))
            .sum();
        if caught > 0 {
            break;
        }
    }
    assert!(caught > 0, "no outage caught a running gate: the test proved nothing");

    // To the end, approving prod when it asks.
    until("the rollout's end", Duration::from_secs(240), async || {
        let Some(r) = rollout() else { return false };
        if r.rings
            .iter()
            .any(|x| x.name == "prod" && matches!(x.status, RingStatus::AwaitingApproval { .. }))
        {
            let _ = daemon.send(
                &r.id,
                Input::Approve {
                    ring: "prod".into(),
                    by: "test".into(),
                    comment: "go".into(),
                    expires_at: None,
                },
            );
        }
        r.status.is_terminal()
    })
    .await;
    let r = rollout().unwrap();
    let failed: Vec<String> = r
        .clusters()
        .filter(|(_, c)| c.status.is_failure())
        .map(|(_, c)| format!("{}: {:?}", c.id.name, c.status))
        .collect();
    assert!(failed.is_empty(), "an outage failed healthy clusters: {failed:?}");
    assert_eq!(r.status, RolloutStatus::Succeeded, "{:?}", r.status);

    // Judged on AKS's side: no step sent twice, and every cluster that ended done is on
    // the target in AKS (nothing lost).
    let log = served.sim.with_world(|w| serde_json::to_value(&w.writes).unwrap());
    let writes = common::writes::mutating(log.as_array().cloned().unwrap());
    assert!(!writes.is_empty());
    let dups = common::writes::duplicates(&writes);
    assert!(dups.is_empty(), "duplicate calls:\n  {}", dups.join("\n  "));
    let done: Vec<&ClusterId> = r
        .clusters()
        .filter(|(_, c)| c.status == ClusterStatus::Done)
        .map(|(_, c)| &c.id)
        .collect();
    assert!(done.len() >= 6, "{done:?}");
    let versions = served.sim.with_world(|w| {
        done.iter()
            .map(|id| {
                let i = w
                    .cluster_index(&id.subscription, &id.resource_group, &id.name)
                    .expect("in AKS");
                let c = &w.clusters[i];
                let mut v = vec![c.current_version.to_string()];
                v.extend(c.pools.iter().map(|p| p.current_version.to_string()));
                (id.name.clone(), v)
            })
            .collect::<Vec<_>>()
    });
    for (name, v) in versions {
        assert!(
            v.iter().all(|x| x.starts_with("1.33")),
            "{name} is not on the target in AKS: {v:?}"
        );
    }
}
