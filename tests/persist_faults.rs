//! Finding 2 of issue 12, the loud half: when the rollout loop cannot save (the disk is
//! full), the daemon says so (`/readyz` 503 with the reason, a metric, a webhook) and
//! waits; when it can save again it goes on, with no step lost or repeated. The full
//! disk is `PRAGMA max_page_count` lowered on the live store, then raised again. A real
//! daemon, simulator and SQLite file in-process; waits are bounded.

mod common;

use common::daemon::serve_demo;
use ringmaster::api::auth::Auth;
use ringmaster::demo::Rehearsal;
use ringmaster::domain::fleet::ClusterId;
use ringmaster::engine::NotifyEvent;
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn started_steps(store: &Store) -> Vec<String> {
    let q = AuditQuery {
        limit: 100_000,
        ..Default::default()
    };
    store
        .audit(&q)
        .unwrap()
        .into_iter()
        .filter(|(_, e)| e.action == "step.started")
        .map(|(_, e)| e.subject)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_makes_the_daemon_unready_and_it_resumes_without_losing_a_step() {
    let mut fleet = common::demo_fleet();
    fleet.faults.clear();
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

    until("the first steps started", Duration::from_secs(90), async || {
        started_steps(&store).len() >= 2
    })
    .await;
    // The disk is full: the file may not grow by a page.
    let pages = store.stats().unwrap().page_count;
    store.set_max_pages(pages).unwrap();
    until("/readyz 503", Duration::from_secs(90), async || {
        ready(http.clone(), base.clone()).await.0 == 503
    })
    .await;
    let (_, v) = ready(http.clone(), base.clone()).await;
    assert_eq!(v["error"]["code"], "persist_failed", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("full"), "{v}");
    assert_eq!(metrics.get("ringmaster_store_write_failing", &[]), 1.0);
    assert!(notes.0.lock().unwrap().contains(&NotifyEvent::StateNotSaved));
    let h = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(h.status().as_u16(), 200, "liveness does not depend on the disk");
    assert!(daemon.active().is_some(), "the rollout loop is waiting, not gone");
    let stuck = started_steps(&store).len();

    // Space again: the daemon saves, says so, and goes on.
    store.set_max_pages(1 << 30).unwrap();
    until("/readyz 200 again", Duration::from_secs(90), async || {
        ready(http.clone(), base.clone()).await.0 == 200
    })
    .await;
    assert_eq!(metrics.get("ringmaster_store_write_failing", &[]), 0.0);
    assert!(notes.0.lock().unwrap().contains(&NotifyEvent::StateSaved));
    until("more steps started", Duration::from_secs(120), async || {
        started_steps(&store).len() > stuck + 1
    })
    .await;
    let steps = started_steps(&store);
    let mut unique = steps.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), steps.len(), "a step started twice: {steps:?}");
    // Each saved intent is unique by construction; check none was left open twice.
    drop(served);
}
