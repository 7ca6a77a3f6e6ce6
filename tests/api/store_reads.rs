//! A read the real state file fails is a 503 the caller sees, never an empty list or a
//! 404: the real daemon (`service::daemon::Daemon`, the API's `Control` in `serve`) over
//! a real SQLite file that another process damaged, not a stand-in told to fail.

use super::harness::{ALICE, tokens_yaml};
use super::support::engine_driver::demo;
use reqwest::StatusCode;
use ringmaster::api::auth::{Auth, parse_tokens};
use ringmaster::api::{ApiState, serve};
use ringmaster::demo::Rehearsal;
use ringmaster::metrics::Metrics;
use ringmaster::runtime::LogNotifier;
use ringmaster::service::daemon::Daemon;
use ringmaster::store::Store;
use serde_json::Value;
use std::sync::Arc;

async fn get(base: &str, path: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_state_file_the_daemon_cannot_read_is_503_for_the_list_and_the_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Arc::new(Store::open(&path).unwrap());
    let (r, _) = demo();
    let id = r.id.clone();
    store
        .save_rollout(&ringmaster::engine::stored::record(&r, None, r.created_at).unwrap())
        .unwrap();
    let Rehearsal {
        sim,
        clock,
        client,
        tokens,
    } = Rehearsal::start(super::support::demo_snapshot::load_fleet("demo.yaml"), 1.0, None)
        .await
        .unwrap();
    let metrics = Arc::new(Metrics::default());
    let policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/demo.yaml");
    let daemon = Daemon::new(
        store.clone(),
        client,
        tokens,
        clock.clone(),
        metrics.clone(),
        Arc::new(LogNotifier),
        policy,
        sim.info.subscription_ids.clone(),
    );
    let auth = Auth::new(parse_tokens("tokens.yaml", &tokens_yaml()).unwrap(), None, vec![]);
    let state = ApiState::new(daemon, store.clone(), Arc::new(auth), metrics, clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, state, std::future::pending()));

    let one = format!("/api/v1/rollouts/{id}");
    let (s, v) = get(&base, "/api/v1/rollouts").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["rollouts"].as_array().map(Vec::len), Some(1), "{v}");
    let (s, v) = get(&base, &one).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Another writer (a bad restore, a newer binary, a disk error) leaves the row valid
    // SQL and JSON but not a state this daemon can read: first the state, then the
    // time the listing reads too.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE rollouts SET state_json = '{\"not\": \"a rollout\"}'", [])
        .unwrap();
    let unavailable = |(s, v): (StatusCode, Value)| {
        (s == StatusCode::SERVICE_UNAVAILABLE && v["error"]["code"] == "store_unavailable")
            .then_some(())
            .ok_or(format!("{s} {v}"))
    };
    let (s, v) = get(&base, "/api/v1/rollouts").await;
    assert_eq!(s, StatusCode::OK, "the listing reads no state: {v}");
    let state = unavailable(get(&base, &one).await);
    conn.execute("UPDATE rollouts SET updated_at = 'not a time'", [])
        .unwrap();
    let list = unavailable(get(&base, "/api/v1/rollouts").await);
    assert!(
        state.is_ok() && list.is_ok(),
        "not 503 store_unavailable: the rollout {state:?}, the list {list:?}"
    );
    drop(sim);
}
