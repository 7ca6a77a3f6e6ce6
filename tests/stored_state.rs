//! The rollout's state in parts (`engine::stored`), through a real state file: every
//! save of a whole demo rollout reads back exactly as the engine had it, a save writes
//! the clusters that changed and no others, and a state saved whole before parts (a
//! schema-1 file) is read and then rewritten in parts.

mod support;

use ringmaster::engine::{self, Input, Rollout, Scope, stored};
use ringmaster::store::Store;
use support::engine_driver::{demo, run_until};

/// Saves `r` as the runtime does (what changed since `saved`) and reads it back.
fn save_and_load(store: &Store, r: &Rollout, saved: Option<&Rollout>) -> (Rollout, usize) {
    let rec = stored::record(r, saved, r.updated_at).unwrap();
    let written = rec.parts.len();
    store.save_rollout(&rec).unwrap();
    let back = stored::load(&store.load_rollout(&r.id).unwrap().unwrap()).unwrap();
    (back, written)
}

#[test]
fn every_save_of_a_whole_rollout_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("state.db")).unwrap();
    let (mut r, s) = demo();
    let clusters = r.clusters().count();
    let mut saved: Option<Rollout> = None;
    let mut saves = 0;
    let mut parts_after_first = Vec::new();
    let start = r.created_at;
    let ((), _) = run_until(&mut r, &s, start, |now, _| {
        // Once per transition (the driver calls this for each of its commands).
        if saved.as_ref().is_some_and(|x| x.seq == now.seq && x == now) {
            return now.status.is_terminal().then_some(());
        }
        let (back, written) = save_and_load(&store, now, saved.as_ref());
        for ((at, a), (_, b)) in back.clusters().zip(now.clusters()) {
            assert_eq!(a, b, "cluster {at:?} at seq {}", now.seq);
        }
        assert_eq!(&back, now, "save {saves} (seq {}) reads back as it was", now.seq);
        if saved.is_some() {
            parts_after_first.push(written);
        } else {
            assert_eq!(written, clusters + 1, "the first save writes every part");
        }
        saves += 1;
        saved = Some(now.clone());
        now.status.is_terminal().then_some(())
    });
    assert_eq!(r.status, engine::RolloutStatus::Succeeded);
    assert!(saves > 50, "a whole rollout saves many times ({saves})");
    let max = parts_after_first.iter().max().copied().unwrap_or(0);
    let total: usize = parts_after_first.iter().sum();
    eprintln!(
        "{saves} saves of {clusters} clusters: at most {max} parts, {:.2} on average, after the first",
        total as f64 / parts_after_first.len() as f64
    );
    assert!(
        max < clusters / 2,
        "a transition writes the clusters it changed, not the fleet (at most {max} of {clusters})"
    );
}

#[test]
fn a_save_writes_exactly_the_clusters_that_changed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("state.db")).unwrap();
    let (mut r, s) = demo();
    let now = r.created_at;
    // The first transition starts the dev ring's clusters (they wait for baselines).
    engine::advance(&mut r, &s, Input::Tick, now);
    let (_, written) = save_and_load(&store, &r, None);
    assert_eq!(written, r.clusters().count() + 1);
    let before = r.clone();
    // A ring's pause changes the head only.
    let ring = r.rings[1].name.clone();
    engine::advance(
        &mut r,
        &s,
        Input::Pause {
            scope: Scope::Ring(ring),
            by: "alice".into(),
            reason: "test".into(),
        },
        now,
    );
    let (back, written) = save_and_load(&store, &r, Some(&before));
    assert_eq!((back == r, written), (true, 0), "a ring's pause writes no cluster");
    // A cluster's pause changes that cluster's part only.
    let before = r.clone();
    let (at, id) = r.clusters().map(|(at, c)| (at, c.id.clone())).nth(3).unwrap();
    engine::advance(
        &mut r,
        &s,
        Input::Pause {
            scope: Scope::Cluster(id),
            by: "alice".into(),
            reason: "test".into(),
        },
        now,
    );
    assert!(r.cluster(at).paused);
    let rec = stored::record(&r, Some(&before), now).unwrap();
    let flat = r.clusters().position(|(x, _)| x == at).unwrap() as i64 + 1;
    assert_eq!(rec.parts.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![flat]);
    store.save_rollout(&rec).unwrap();
    assert_eq!(stored::load(&store.load_rollout(&r.id).unwrap().unwrap()).unwrap(), r);
}

#[test]
fn a_state_saved_whole_before_parts_is_read_then_rewritten_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (r, _) = demo();
    {
        // A schema-1 file as released, holding this rollout as the daemon then wrote
        // it: the whole state in `state_json`.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("support/schema_v1.sql")).unwrap();
        conn.execute(
            "INSERT INTO rollouts (id, policy_name, status, state_json, updated_at) VALUES (?1, 'demo', 'running', ?2, '2026-01-01T00:00:00.000000000Z')",
            rusqlite::params![r.id, serde_json::to_string(&r).unwrap()],
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.check().unwrap().schema_version, ringmaster::store::SCHEMA_VERSION);
    let rec = store.load_rollout(&r.id).unwrap().unwrap();
    assert!(rec.parts.is_empty());
    assert_eq!(stored::load(&rec).unwrap(), r, "read whole, as it was written");
    assert_eq!(ringmaster::service::daemon::stored(&store).unwrap(), vec![r.clone()]);
    // The runtime's first save after loading writes every part; from then on, parts.
    let (back, written) = save_and_load(&store, &r, None);
    assert_eq!(back, r);
    assert_eq!(written, r.clusters().count() + 1);
    let head: serde_json::Value =
        serde_json::from_str(&store.load_rollout(&r.id).unwrap().unwrap().state_json).unwrap();
    assert_eq!(head["layout"], 2);
    assert!(head.get("plan").is_none(), "the head no longer holds the plan");
}

#[test]
fn a_state_missing_a_part_is_refused_with_what_is_missing() {
    let (r, _) = demo();
    let full = stored::encode(&r).unwrap();
    let mut parts = full.parts.clone();
    parts.retain(|(k, _)| *k != 2);
    let err = stored::decode(&full.head, &parts).unwrap_err().to_string();
    assert!(err.contains("cluster parts"), "{err}");
    parts.push((99, "{}".into()));
    let err = stored::decode(&full.head, &parts).unwrap_err().to_string();
    assert_eq!(err, "part 2 is missing");
    let err = stored::decode(&full.head, &full.parts[1..]).unwrap_err().to_string();
    assert_eq!(err, "part 0 is missing");
}

#[test]
fn a_whole_save_drops_parts_the_state_no_longer_has_and_a_newer_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("state.db")).unwrap();
    let (r, _) = demo();
    let mut stale = stored::record(&r, None, r.updated_at).unwrap();
    stale.parts.push((999, "{}".into()));
    store.save_rollout(&stale).unwrap();
    let err = stored::load(&store.load_rollout(&r.id).unwrap().unwrap()).unwrap_err();
    assert!(err.to_string().contains("cluster parts"), "{err}");
    // A restarted runtime's first save writes the whole state: the stray part goes.
    let (back, _) = save_and_load(&store, &r, None);
    assert_eq!(back, r);
    let head = stored::encode(&r).unwrap().head.replace("\"layout\":2", "\"layout\":3");
    let err = stored::decode(&head, &[]).unwrap_err().to_string();
    assert!(err.contains("layout 3") && err.contains("upgrade ringmaster"), "{err}");
}

/// A cluster's gate baseline as the executor stored it before the baseline was typed (the
/// gate's `Baseline` through `serde_json::to_value`, kept in the cluster's run as a JSON
/// value), written out by hand.
const BASELINE_AS_STORED: &str = concat!(
    r#"{"taken_at":"2026-03-02T09:30:00Z","synced":true,"api_error":null,"#,
    r#""owners":[{"owner":{"namespace":"app","kind":"ReplicaSet","name":"web-5d9c"},"#,
    r#""desired":3,"existing":3,"ready":3,"crash_looping":0,"restarts":2}],"#,
    r#""nodes":[{"name":"aks-system-0","pool":"system","ready":true},"#,
    r#"{"name":"aks-user-0","pool":null,"ready":false}]}"#
);

/// The demo rollout's state in parts, its first cluster's baseline replaced by `json`.
fn with_baseline(json: &str) -> (Rollout, stored::Encoded) {
    let (r, _) = demo();
    let mut enc = stored::encode(&r).unwrap();
    let (key, part) = &mut enc.parts[1];
    assert_eq!(*key, 1);
    assert!(part.contains(r#""baseline":null"#), "{part}");
    *part = part.replace(r#""baseline":null"#, &format!(r#""baseline":{json}"#));
    (r, enc)
}

#[test]
fn a_baseline_stored_before_it_was_typed_reads_back_the_same_and_is_written_the_same() {
    use chrono::TimeZone;
    use ringmaster::gate::{Baseline, NodeBaseline, OwnerBaseline, OwnerRef};
    let (_, enc) = with_baseline(BASELINE_AS_STORED);
    let back = stored::decode(&enc.head, &enc.parts).unwrap();
    let expected = Baseline {
        taken_at: chrono::Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0).unwrap(),
        synced: true,
        api_error: None,
        owners: vec![OwnerBaseline {
            owner: OwnerRef {
                namespace: "app".into(),
                kind: "ReplicaSet".into(),
                name: "web-5d9c".into(),
            },
            desired: 3,
            existing: 3,
            ready: 3,
            crash_looping: 0,
            restarts: 2,
        }],
        nodes: vec![
            NodeBaseline {
                name: "aks-system-0".into(),
                pool: Some("system".into()),
                ready: true,
            },
            NodeBaseline {
                name: "aks-user-0".into(),
                pool: None,
                ready: false,
            },
        ],
    };
    let (_, first) = back.clusters().next().unwrap();
    assert_eq!(first.baseline.as_ref(), Some(&expected));
    assert!(
        back.clusters().skip(1).all(|(_, c)| c.baseline.is_none()),
        "null is no baseline"
    );
    // Written back in the same shape, byte for byte.
    assert_eq!(stored::encode(&back).unwrap().parts, enc.parts);
}

#[test]
fn a_baseline_that_does_not_decode_fails_the_load_naming_the_rollout() {
    // `{}` is what a test driver used to store; the others, a wrong type and a missing field.
    for bad in [
        "{}",
        r#"{"taken_at":"2026-03-02T09:30:00Z","synced":"yes","api_error":null,"owners":[],"nodes":[]}"#,
        r#"{"taken_at":"2026-03-02T09:30:00Z","synced":true,"api_error":null,"owners":[]}"#,
        r#""baseline""#,
    ] {
        let (r, enc) = with_baseline(bad);
        let err = stored::decode(&enc.head, &enc.parts).unwrap_err().to_string();
        assert!(err.contains("the gate baseline does not decode"), "{bad}: {err}");
        // What `serve` reports on opening such a state file.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("state.db")).unwrap();
        let mut rec = stored::record(&r, None, r.updated_at).unwrap();
        rec.parts = enc.parts.clone();
        store.save_rollout(&rec).unwrap();
        let err = ringmaster::service::daemon::stored(&store).unwrap_err().to_string();
        assert!(
            err.contains(&format!("rollout `{}`", r.id)) && err.contains("the gate baseline does not decode"),
            "{bad}: {err}"
        );
    }
}
