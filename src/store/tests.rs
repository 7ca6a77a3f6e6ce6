//! Unit tests on an in-memory store: each table's rules. File-backed behaviour
//! (reopen, WAL, crashes, threads) is in `tests/store.rs`.

use super::*;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, 0).unwrap()
}

fn rollout(id: &str, status: &str, seq: u32) -> RolloutRecord {
    RolloutRecord {
        id: id.into(),
        policy_name: "default".into(),
        status: status.into(),
        state_json: json!({ "seq": seq }).to_string(),
        updated_at: t(seq.into()),
        parts: vec![],
        replace_parts: false,
    }
}

fn entry(action: &str, rollout: Option<&str>) -> AuditEntry {
    AuditEntry {
        at: t(0),
        actor: "ringmaster".into(),
        action: action.into(),
        rollout_id: rollout.map(Into::into),
        subject: "ring/canary".into(),
        reason: "because".into(),
        detail: json!({ "a": [1, 2] }),
    }
}

fn store_with(rollouts: &[&str]) -> Store {
    let s = Store::open_in_memory().unwrap();
    for id in rollouts {
        s.save_rollout(&rollout(id, "running", 0)).unwrap();
    }
    s
}

#[test]
fn the_store_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Store>();
}

#[test]
fn rollouts_upsert_and_come_back_ordered_by_id() {
    let s = store_with(&[]);
    s.save_rollout(&rollout("b", "running", 1)).unwrap();
    s.save_rollout(&rollout("a", "running", 1)).unwrap();
    s.save_rollout(&rollout("b", "halted", 2)).unwrap();
    let all = s.load_rollouts().unwrap();
    assert_eq!(all, vec![rollout("a", "running", 1), rollout("b", "halted", 2)]);
    assert_eq!(s.load_rollout("b").unwrap(), Some(rollout("b", "halted", 2)));
    assert_eq!(s.load_rollout("zzz").unwrap(), None);
}

#[test]
fn a_state_that_is_not_json_is_refused() {
    let s = store_with(&[]);
    let mut r = rollout("a", "running", 1);
    r.state_json = "{not json".into();
    let err = s.save_rollout(&r).unwrap_err();
    assert!(err.is_constraint(), "{err}");
    assert_eq!(s.load_rollouts().unwrap(), vec![]);
}

#[test]
fn state_and_audit_commit_together_or_not_at_all() {
    let s = store_with(&[]);
    let ids = s
        .save_rollout_with_audit(&rollout("a", "running", 1), &[entry("step.started", Some("a"))])
        .unwrap();
    assert_eq!(ids.len(), 1);
    let bad = AuditEntry {
        actor: String::new(), // violates CHECK (actor <> '')
        ..entry("step.succeeded", Some("a"))
    };
    let err = s
        .save_rollout_with_audit(&rollout("a", "running", 2), &[entry("gate.passed", Some("a")), bad])
        .unwrap_err();
    assert!(err.is_constraint(), "{err}");
    assert_eq!(s.load_rollout("a").unwrap(), Some(rollout("a", "running", 1)));
    let log = s.audit(&AuditQuery::default()).unwrap();
    assert_eq!(
        log.iter().map(|(_, e)| e.action.as_str()).collect::<Vec<_>>(),
        ["step.started"]
    );
}

#[test]
fn audit_pages_forward_from_a_cursor_and_shows_the_newest_tail() {
    let s = store_with(&[]);
    let mut ids = vec![];
    for i in 0..10 {
        let rollout = if i % 2 == 0 { Some("a") } else { None };
        ids.push(s.append_audit(&entry(&format!("e{i}"), rollout)).unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let actions = |q: AuditQuery| -> Vec<String> { s.audit(&q).unwrap().into_iter().map(|(_, e)| e.action).collect() };
    let tail = AuditQuery {
        limit: 3,
        ..AuditQuery::default()
    };
    assert_eq!(actions(tail), ["e7", "e8", "e9"]);
    let after = AuditQuery {
        since_id: Some(ids[2]),
        limit: 3,
        ..AuditQuery::default()
    };
    assert_eq!(actions(after), ["e3", "e4", "e5"]);
    let of_a = AuditQuery {
        rollout_id: Some("a".into()),
        limit: 2,
        ..AuditQuery::default()
    };
    assert_eq!(actions(of_a), ["e6", "e8"]);
    let of_a_after = AuditQuery {
        rollout_id: Some("a".into()),
        since_id: Some(ids[0]),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(actions(of_a_after), ["e2", "e4", "e6", "e8"]);
    assert_eq!(
        actions(AuditQuery {
            limit: 0,
            ..AuditQuery::default()
        }),
        Vec::<String>::new()
    );
    let (id, e) = &s.audit(&AuditQuery::default()).unwrap()[0];
    assert_eq!((*id, e), (ids[0], &entry("e0", Some("a"))));
}

#[test]
fn the_audit_log_cannot_be_changed_even_with_raw_sql() {
    let s = store_with(&[]);
    s.append_audit(&entry("x", None)).unwrap();
    let conn = s.conn();
    assert!(conn.execute("UPDATE audit SET reason = 'nothing to see'", []).is_err());
    assert!(conn.execute("DELETE FROM audit", []).is_err());
}

fn intent(step: u32, kind: &str) -> Intent {
    Intent {
        rollout_id: "r".into(),
        cluster: "aks-1".into(),
        step,
        kind: kind.into(),
        recorded_at: t(5),
    }
}

#[test]
fn an_intent_is_recorded_once_and_closed_once() {
    let s = store_with(&["r"]);
    let IntentOutcome::Recorded(id) = s.record_intent(&intent(0, "upgrade_control_plane")).unwrap() else {
        panic!("first record must be new")
    };
    s.record_operation(id, r#"{"url":"https://arm/op/1"}"#).unwrap();
    match s.record_intent(&intent(0, "upgrade_control_plane")).unwrap() {
        IntentOutcome::Existing(row) => {
            assert_eq!(row.id, id);
            assert_eq!(row.operation.as_deref(), Some(r#"{"url":"https://arm/op/1"}"#));
            assert_eq!(row.outcome, None);
        }
        other => panic!("expected the existing intent, got {other:?}"),
    }
    let other = s.record_intent(&intent(1, "upgrade_pool")).unwrap().id();
    assert_eq!(
        s.open_intents("r").unwrap().iter().map(|i| i.id).collect::<Vec<_>>(),
        [id, other]
    );

    s.close_intent(id, "succeeded").unwrap();
    s.close_intent(id, "succeeded").unwrap(); // redone after a restart: fine
    assert!(
        s.conn().execute("DELETE FROM intents", []).is_err(),
        "intents are never deleted"
    );
    assert!(matches!(
        s.close_intent(id, "failed"),
        Err(StoreError::IntentClosed { .. })
    ));
    assert!(matches!(
        s.record_operation(id, "{}"),
        Err(StoreError::IntentClosed { .. })
    ));
    assert!(matches!(
        s.close_intent(999, "failed"),
        Err(StoreError::IntentNotFound { id: 999 })
    ));
    assert_eq!(
        s.open_intents("r").unwrap().iter().map(|i| i.id).collect::<Vec<_>>(),
        [other]
    );
    assert_eq!(s.intents("r").unwrap().len(), 2);
    assert_eq!(s.intent(id).unwrap().unwrap().outcome.as_deref(), Some("succeeded"));
}

#[test]
fn an_intent_needs_its_rollout_and_a_json_operation() {
    let s = store_with(&["r"]);
    let orphan = Intent {
        rollout_id: "nope".into(),
        ..intent(0, "upgrade_pool")
    };
    assert!(s.record_intent(&orphan).unwrap_err().is_constraint());
    let id = s.record_intent(&intent(0, "upgrade_pool")).unwrap().id();
    assert!(s.record_operation(id, "not json").unwrap_err().is_constraint());
}

fn approval(by: &str, at: i64, expires: Option<i64>) -> Approval {
    Approval {
        rollout_id: "r".into(),
        ring: "prod".into(),
        target: "1.34.2".into(),
        approved_by: by.into(),
        groups: vec!["sre".into(), "prod-approvers".into()],
        comment: "looks good".into(),
        approved_at: t(at),
        expires_at: expires.map(t),
    }
}

#[test]
fn one_live_approval_per_ring_and_target() {
    let s = store_with(&["r"]);
    let first = approval("alice", 0, Some(3600));
    assert!(matches!(
        s.record_approval(&first).unwrap(),
        ApprovalOutcome::Recorded(_)
    ));
    assert_eq!(
        s.record_approval(&approval("bob", 10, None)).unwrap(),
        ApprovalOutcome::AlreadyApproved(first.clone())
    );
    // Another target or ring is a separate approval.
    let other = Approval {
        target: "1.35.0".into(),
        ..approval("bob", 10, None)
    };
    assert!(matches!(
        s.record_approval(&other).unwrap(),
        ApprovalOutcome::Recorded(_)
    ));
    assert_eq!(s.approvals("r").unwrap(), vec![first, other]);
}

#[test]
fn an_expired_approval_is_not_valid_and_can_be_given_again() {
    let s = store_with(&["r"]);
    s.record_approval(&approval("alice", 0, Some(60))).unwrap();
    assert!(s.valid_approval("r", "prod", "1.34.2", t(59)).unwrap().is_some());
    assert_eq!(s.valid_approval("r", "prod", "1.34.2", t(60)).unwrap(), None);
    assert_eq!(s.valid_approval("r", "prod", "1.35.0", t(1)).unwrap(), None);
    let again = approval("bob", 61, None);
    assert!(matches!(
        s.record_approval(&again).unwrap(),
        ApprovalOutcome::Recorded(_)
    ));
    assert_eq!(s.valid_approval("r", "prod", "1.34.2", t(10_000)).unwrap(), Some(again));
    assert_eq!(s.approvals("r").unwrap().len(), 2);
}

#[test]
fn an_approval_that_expires_before_it_is_given_is_refused() {
    let s = store_with(&["r"]);
    assert!(
        s.record_approval(&approval("alice", 10, Some(10)))
            .unwrap_err()
            .is_constraint()
    );
    assert!(s.record_approval(&approval("", 10, None)).unwrap_err().is_constraint());
}

#[test]
fn a_rejection_revokes_the_live_approval() {
    let s = store_with(&["r"]);
    s.record_approval(&approval("alice", 0, None)).unwrap();
    let no = Rejection {
        rollout_id: "r".into(),
        ring: "prod".into(),
        target: "1.34.2".into(),
        rejected_by: "carol".into(),
        groups: vec!["sre".into()],
        comment: "error budget spent".into(),
        rejected_at: t(5),
    };
    s.record_rejection(&no).unwrap();
    assert_eq!(s.valid_approval("r", "prod", "1.34.2", t(6)).unwrap(), None);
    assert_eq!(s.rejections("r").unwrap(), vec![no]);
    // Approving after a rejection is a new decision.
    assert!(matches!(
        s.record_approval(&approval("alice", 7, None)).unwrap(),
        ApprovalOutcome::Recorded(_)
    ));
    assert!(s.valid_approval("r", "prod", "1.34.2", t(8)).unwrap().is_some());
    let conn = s.conn();
    assert!(
        conn.execute("UPDATE approvals SET live = 1", []).is_err(),
        "revocation is final"
    );
    assert!(conn.execute("DELETE FROM approvals", []).is_err());
}

#[test]
fn errors_have_metric_labels_and_stats_are_sane() {
    let s = store_with(&["r"]);
    let err = s
        .record_intent(&Intent {
            rollout_id: "x".into(),
            ..intent(0, "k")
        })
        .unwrap_err();
    assert_eq!(err.label(), "recording an intent");
    let stats = s.stats().unwrap();
    assert!(stats.page_size > 0 && stats.page_count > 0);
    assert_eq!(stats.file_bytes, stats.page_size * stats.page_count);
    assert_eq!(s.quick_check().unwrap(), Ok(()));
}

#[test]
fn a_file_store_is_wal_with_full_sync_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("s.db")).unwrap();
    let conn = s.conn();
    let pragma = |name: &str| -> String {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, rusqlite::types::Value>(0))
            .map(|v| format!("{v:?}"))
            .unwrap()
    };
    assert_eq!(pragma("journal_mode"), r#"Text("wal")"#);
    assert_eq!(pragma("synchronous"), "Integer(2)", "2 is FULL");
    assert_eq!(pragma("foreign_keys"), "Integer(1)");
}

#[test]
fn audit_filters_by_ring_cluster_actor_and_pages_back() {
    let s = store_with(&[]);
    let rows = [
        ("ring.started", "ringmaster", "prod"),
        ("cluster.started", "ringmaster", "prod/aks_1"),
        (
            "step.started",
            "ringmaster",
            "prod/aks_1 step 1: control plane 1.32.7 -> 1.33.3",
        ),
        (
            "step.started",
            "ringmaster",
            "prod/aksx1 step 1: control plane 1.32.7 -> 1.33.3",
        ),
        ("cluster.skipped", "alice", "aks_1"),
        ("ring.started", "ringmaster", "production"),
        ("ring.approved", "alice", "prod"),
    ];
    let mut ids = vec![];
    for (action, actor, subject) in rows {
        let e = AuditEntry {
            actor: actor.into(),
            subject: subject.into(),
            ..entry(action, Some("a"))
        };
        ids.push(s.append_audit(&e).unwrap());
    }
    let subjects = |filter: AuditFilter| -> Vec<String> {
        let q = AuditQuery {
            filter,
            ..AuditQuery::default()
        };
        s.audit(&q).unwrap().into_iter().map(|(_, e)| e.subject).collect()
    };
    // A ring: itself and what is under it, not a ring whose name starts the same.
    let prod = subjects(AuditFilter {
        ring: Some("prod".into()),
        ..Default::default()
    });
    assert_eq!(prod.len(), 5, "{prod:?}");
    assert!(!prod.iter().any(|x| x == "production"));
    // A cluster: `_` is a name's character, not LIKE's wildcard (`aksx1` is not `aks_1`).
    let cluster = subjects(AuditFilter {
        cluster: Some("aks_1".into()),
        ..Default::default()
    });
    assert_eq!(cluster.len(), 3, "{cluster:?}");
    assert!(!cluster.iter().any(|x| x.contains("aksx1")));
    let by_alice = subjects(AuditFilter {
        actor: Some("alice".into()),
        ..Default::default()
    });
    assert_eq!(by_alice, ["aks_1", "prod"]);
    let older = subjects(AuditFilter {
        before_id: Some(ids[2]),
        ..Default::default()
    });
    assert_eq!(older, ["prod", "prod/aks_1"]);
}
