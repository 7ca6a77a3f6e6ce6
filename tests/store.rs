//! The store on a real SQLite file: what survives a reopen, what commits together,
//! what two writers at once do, and what a SIGKILL at a random instant leaves behind.
//!
//! The crash test runs this very test binary as the child: with `CHILD_ENV` set,
//! `crash_child_entry_point` writes rollout states in a loop and reports each commit
//! on stdout; without it, that test does nothing.

use chrono::{DateTime, TimeZone, Utc};
use ringmaster::store::{
    Approval, ApprovalOutcome, AuditEntry, AuditQuery, Intent, IntentOutcome, RolloutRecord, Store, StoreError,
};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, 0).unwrap()
}

fn rollout(id: &str, seq: u64) -> RolloutRecord {
    RolloutRecord {
        id: id.into(),
        policy_name: "default".into(),
        status: "running".into(),
        state_json: json!({ "seq": seq, "rings": ["canary", "prod"] }).to_string(),
        updated_at: t(seq as i64),
        parts: vec![],
        replace_parts: false,
    }
}

fn entry(action: &str, rollout_id: &str, detail: Value) -> AuditEntry {
    AuditEntry {
        at: t(1),
        actor: "ringmaster".into(),
        action: action.into(),
        rollout_id: Some(rollout_id.into()),
        subject: "cluster/aks-1".into(),
        reason: "test".into(),
        detail,
    }
}

fn approval(rollout_id: &str, ring: &str, by: &str) -> Approval {
    Approval {
        rollout_id: rollout_id.into(),
        ring: ring.into(),
        target: "1.34.2".into(),
        approved_by: by.into(),
        groups: vec!["prod-approvers".into()],
        comment: String::new(),
        approved_at: t(100),
        expires_at: Some(t(100 + 3600)),
    }
}

#[test]
fn everything_survives_a_reopen_and_the_file_is_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (intent_id, audit_id) = {
        let s = Store::open(&path).unwrap();
        s.save_rollout(&rollout("r1", 1)).unwrap();
        s.save_rollout(&rollout("r2", 7)).unwrap();
        let audit_id = s
            .append_audit(&entry("step.started", "r1", json!({"step": 0})))
            .unwrap();
        let intent = Intent {
            rollout_id: "r1".into(),
            cluster: "aks-1".into(),
            step: 0,
            kind: "upgrade_control_plane".into(),
            recorded_at: t(2),
        };
        let id = s.record_intent(&intent).unwrap().id();
        s.record_operation(id, r#"{"url":"https://management.azure.com/op/1"}"#)
            .unwrap();
        assert!(matches!(
            s.record_approval(&approval("r1", "prod", "alice")).unwrap(),
            ApprovalOutcome::Recorded(_)
        ));
        (id, audit_id)
    };
    let journal: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");

    let s = Store::open(&path).unwrap();
    assert_eq!(s.load_rollouts().unwrap(), vec![rollout("r1", 1), rollout("r2", 7)]);
    let log = s.audit(&AuditQuery::default()).unwrap();
    assert_eq!(log, vec![(audit_id, entry("step.started", "r1", json!({"step": 0})))]);
    let open = s.open_intents("r1").unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, intent_id);
    assert!(open[0].operation.as_deref().unwrap().contains("op/1"));
    assert_eq!(
        s.valid_approval("r1", "prod", "1.34.2", t(200)).unwrap(),
        Some(approval("r1", "prod", "alice"))
    );
    assert_eq!(s.quick_check().unwrap(), Ok(()));
    assert_eq!(s.path(), Some(path.as_path()));
    assert!(s.file_size().unwrap() > 0);
}

#[test]
fn a_failed_transaction_leaves_nothing_behind_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let s = Store::open(&path).unwrap();
        s.save_rollout_with_audit(&rollout("r", 1), &[entry("step.started", "r", json!(1))])
            .unwrap();
        let mut bad = entry("", "r", json!(2)); // an empty action violates a CHECK
        bad.reason = "the state change must not survive this".into();
        let err = s
            .save_rollout_with_audit(&rollout("r", 2), &[entry("step.succeeded", "r", json!(2)), bad])
            .unwrap_err();
        assert!(err.is_constraint(), "{err}");
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.load_rollout("r").unwrap(), Some(rollout("r", 1)));
    let actions: Vec<String> = s
        .audit(&AuditQuery::default())
        .unwrap()
        .into_iter()
        .map(|(_, e)| e.action)
        .collect();
    assert_eq!(actions, ["step.started"]);
}

#[test]
fn concurrent_approvals_are_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let shared = Arc::new(Store::open(&path).unwrap());
    shared.save_rollout(&rollout("r", 1)).unwrap();
    // Two threads on one Store (the API's handlers), and two Stores on one file (two
    // processes): the outcome must be the same.
    let second = Arc::new(Store::open(&path).unwrap());
    for round in 0..20 {
        let ring = format!("ring-{round}");
        let stores = if round % 2 == 0 {
            [shared.clone(), shared.clone()]
        } else {
            [shared.clone(), second.clone()]
        };
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = stores
            .into_iter()
            .zip(["alice", "bob"])
            .map(|(store, who)| {
                let (barrier, ring) = (barrier.clone(), ring.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.record_approval(&approval("r", &ring, who)).unwrap()
                })
            })
            .collect();
        let outcomes: Vec<ApprovalOutcome> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let recorded = outcomes
            .iter()
            .filter(|o| matches!(o, ApprovalOutcome::Recorded(_)))
            .count();
        assert_eq!(recorded, 1, "round {round}: {outcomes:?}");
        let rows: Vec<Approval> = shared
            .approvals("r")
            .unwrap()
            .into_iter()
            .filter(|a| a.ring == ring)
            .collect();
        assert_eq!(rows.len(), 1, "round {round}");
        let winner = &rows[0];
        for o in &outcomes {
            if let ApprovalOutcome::AlreadyApproved(existing) = o {
                assert_eq!(existing, winner);
            }
        }
    }
}

#[test]
fn an_intent_is_never_recorded_twice_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let intent = Intent {
        rollout_id: "r".into(),
        cluster: "aks-2".into(),
        step: 3,
        kind: "upgrade_pool".into(),
        recorded_at: t(9),
    };
    let id = {
        let s = Store::open(&path).unwrap();
        s.save_rollout(&rollout("r", 1)).unwrap();
        let IntentOutcome::Recorded(id) = s.record_intent(&intent).unwrap() else {
            panic!("the first intent is new")
        };
        id
    };
    let s = Store::open(&path).unwrap();
    let later = Intent {
        recorded_at: t(99),
        ..intent.clone()
    };
    match s.record_intent(&later).unwrap() {
        IntentOutcome::Existing(row) => {
            assert_eq!((row.id, &row.intent), (id, &intent), "the first record wins");
        }
        other => panic!("expected the existing intent, got {other:?}"),
    }
    assert_eq!(s.intents("r").unwrap().len(), 1);
}

#[test]
fn opening_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("state.db");
    assert!(matches!(Store::open(&missing), Err(StoreError::Open { .. })));

    let newer = dir.path().join("newer.db");
    drop(Store::open(&newer).unwrap());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute("UPDATE schema_version SET version = version + 1", [])
        .unwrap();
    let err = Store::open(&newer).unwrap_err();
    assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
}

// ---- crash test ----

const CHILD_ENV: &str = "RINGMASTER_STORE_CRASH_CHILD";
const ROLLOUT: &str = "crash";
/// Clusters in the child's state: big enough (~60 KiB of JSON) that a commit spans
/// many pages, so a kill can land in the middle of writing one.
const CLUSTERS: u64 = 600;

fn crash_state(seq: u64) -> String {
    let clusters: Vec<Value> = (0..CLUSTERS)
        .map(|i| json!({ "id": format!("aks-{i:04}"), "seq": seq, "step": (seq + i) % 7 }))
        .collect();
    json!({ "seq": seq, "clusters": clusters }).to_string()
}

/// The sequence number of a stored state, checking that every part of it agrees.
fn check_crash_state(json: &str) -> u64 {
    let v: Value = serde_json::from_str(json).expect("the stored state parses");
    let seq = v["seq"].as_u64().unwrap();
    let clusters = v["clusters"].as_array().unwrap();
    assert_eq!(clusters.len() as u64, CLUSTERS);
    assert!(clusters.iter().all(|c| c["seq"].as_u64() == Some(seq)), "a torn state");
    seq
}

/// The child: continues from the stored state, forever, until killed.
#[test]
fn crash_child_entry_point() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // a normal test run: nothing to do
    };
    let store = Store::open(&path).unwrap();
    let mut seq = store
        .load_rollout(ROLLOUT)
        .unwrap()
        .map_or(0, |r| check_crash_state(&r.state_json));
    let mut out = std::io::stdout().lock();
    loop {
        seq += 1;
        let record = RolloutRecord {
            state_json: crash_state(seq),
            ..rollout(ROLLOUT, seq)
        };
        store
            .save_rollout_with_audit(&record, &[entry("step.started", ROLLOUT, json!({ "seq": seq }))])
            .unwrap();
        writeln!(out, "committed {seq}").unwrap();
        out.flush().unwrap();
    }
}

/// A small PRNG seeded from the clock; the seed is in every failure message.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// Runs the child until it has committed at least once, kills it after a random
/// delay, and returns the last sequence number it reported committed.
fn run_and_kill(path: &Path, delay: Duration) -> u64 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_entry_point", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let committed = |line: &str| line.strip_prefix("committed ").map(|n| n.parse::<u64>().unwrap());
    let mut last = lines
        .by_ref()
        .find_map(|l| committed(&l.unwrap()))
        .expect("the child committed nothing");
    std::thread::sleep(delay);
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    // Everything the child wrote before it died is still in the pipe.
    for line in lines {
        if let Some(n) = committed(&line.unwrap()) {
            last = n;
        }
    }
    last
}

#[test]
fn a_sigkill_at_any_instant_keeps_the_last_committed_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = XorShift(seed);
    let mut previous = 0;
    for round in 0..6 {
        let delay = Duration::from_millis(rng.next(300));
        let reported = run_and_kill(&path, delay);
        let ctx = format!("seed {seed}, round {round}, delay {delay:?}, reported {reported}");
        assert!(reported > previous, "{ctx}: the child went on from the stored state");

        let store = Store::open(&path).unwrap();
        assert_eq!(store.quick_check().unwrap(), Ok(()), "{ctx}");
        let stored = store.load_rollout(ROLLOUT).unwrap().expect("a committed state");
        let seq = check_crash_state(&stored.state_json);
        assert!(seq == reported || seq == reported + 1, "{ctx}: stored seq {seq}");
        assert_eq!(stored.updated_at, t(seq as i64), "{ctx}");
        // The audit log committed with each state: one entry per state, the last one
        // for the stored state, none for a state that was lost.
        let query = AuditQuery {
            rollout_id: Some(ROLLOUT.into()),
            since_id: None,
            limit: 1,
            ..Default::default()
        };
        let last = store.audit(&query).unwrap();
        assert_eq!(last[0].1.detail, json!({ "seq": seq }), "{ctx}");
        let all = store
            .audit(&AuditQuery {
                limit: usize::MAX,
                ..query
            })
            .unwrap();
        assert_eq!(all.len() as u64, seq, "{ctx}");
        println!("{ctx}: stored {seq}"); // shown with --nocapture: how the kills landed
        previous = seq;
    }
}

/// What the daemon's checkpoint after each commit batch costs: the same saves (a
/// rollout head of ~20 KB and two audit entries each) on a plain store and on a
/// daemon's, committed directly (the API's way: a checkpoint each), through the writer
/// thread one at a time (the runtime's way: a checkpoint each, after the caller has its
/// answer) and as a burst (one checkpoint for the lot).
/// `cargo test --test store checkpoint_cost -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn checkpoint_cost() {
    const N: u32 = 300;
    let dir = tempfile::tempdir().unwrap();
    let save = |s: &Store, i: u32| {
        let mut r = rollout("r1", 0);
        r.state_json = json!({ "seq": i, "pad": "p".repeat(20_000) }).to_string();
        let e = [entry("a", "r1", json!({ "i": i })), entry("b", "r1", json!({ "i": i }))];
        s.save_rollout_with_audit(&r, &e).unwrap();
    };
    for round in 0..2 {
        for daemon in [false, true] {
            let open = |name: &str| {
                let path = dir.path().join(format!("{round}-{daemon}-{name}.db"));
                Arc::new(if daemon {
                    Store::open_daemon(&path, "bench").unwrap()
                } else {
                    Store::open(&path).unwrap()
                })
            };
            let s = open("direct");
            let t0 = std::time::Instant::now();
            (0..N).for_each(|i| save(&s, i));
            let direct = t0.elapsed() / N;
            let w = ringmaster::store::StoreWriter::start(open("one"));
            let t0 = std::time::Instant::now();
            for i in 0..N {
                w.run(move |s| save(s, i)).await.unwrap();
            }
            let one = t0.elapsed() / N;
            let w = ringmaster::store::StoreWriter::start(open("burst"));
            let t0 = std::time::Instant::now();
            let all: Vec<_> = (0..N).map(|i| w.run(move |s| save(s, i))).collect();
            futures::future::join_all(all).await;
            let burst = t0.elapsed() / N;
            println!("daemon={daemon}: per commit {direct:?} direct, {one:?} one at a time, {burst:?} in a burst");
        }
    }
}
