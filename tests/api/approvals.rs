//! Approvals: only the ring's approver groups, exactly once under concurrency, never
//! with an expired approval; rejections halt.

use crate::harness::{ALICE, BOB, Harness, OPS, VIEWER, code};
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use ringmaster::clock::Clock;
use ringmaster::engine::{Input, RingStatus, RolloutStatus};
use serde_json::json;

const APPROVE: &str = "/api/v1/rollouts/r1/rings/prod/approve";

/// Ends staging's soak: prod then waits for its approval.
async fn prod_awaits_approval(h: &Harness) {
    let (s, v) = h
        .post(
            Some(OPS),
            "/api/v1/rollouts/r1/rings/staging/promote-now",
            json!({ "reason": "go" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(matches!(
        h.standin.rollout("r1").rings[2].status,
        RingStatus::AwaitingApproval { .. }
    ));
}

fn sent_approvals(h: &Harness) -> usize {
    h.standin
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, i)| matches!(i, Input::Approve { .. }))
        .count()
}

#[tokio::test]
async fn an_approver_approves_and_the_ring_starts() {
    let h = Harness::start().await;
    prod_awaits_approval(&h).await;
    let (s, v) = h.get(Some(BOB), "/api/v1/rollouts/r1/approvals").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["pending"][0]["ring"], "prod");
    assert_eq!(v["pending"][0]["approvers"], json!(["platform-admins"]));
    assert_eq!(v["pending"][0]["mayApprove"], true);
    let (_, v) = h.get(Some(VIEWER), "/api/v1/rollouts/r1/approvals").await;
    assert_eq!(v["pending"][0]["mayApprove"], false);

    let now = h.clock.now();
    let (s, v) = h
        .post(Some(BOB), APPROVE, json!({ "comment": "staging looks good" }))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["alreadyApproved"], false);
    assert_eq!(v["approval"]["approvedBy"], "bob");
    assert_eq!(v["approval"]["target"], "1.33.3");
    let expires: DateTime<Utc> = serde_json::from_value(v["approval"]["expiresAt"].clone()).unwrap();
    assert_eq!(expires, now + Duration::hours(8), "the policy's expires_after");
    let r = h.standin.rollout("r1");
    assert_eq!(r.rings[2].status, RingStatus::Running);
    assert_eq!(r.rings[2].approval.as_ref().unwrap().by, "bob");
    assert_eq!(h.store.approvals("r1").unwrap().len(), 1);
    assert!(h.audit().iter().any(|e| e.action == "api.approve" && e.actor == "bob"));
    assert!(
        h.audit()
            .iter()
            .any(|e| e.action == "ring.approved" && e.actor == "bob")
    );

    let (s, v) = h.post(Some(BOB), APPROVE, json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "not_awaiting_approval"));
    let (s, v) = h
        .post(Some(BOB), "/api/v1/rollouts/r1/rings/dev/approve", json!({}))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "approval_not_required"));
    let (s, v) = h
        .post(Some(BOB), "/api/v1/rollouts/r1/rings/qa/approve", json!({}))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "unknown_ring"));
}

#[tokio::test]
async fn promote_is_approve_and_a_ring_may_be_approved_before_it_is_reached() {
    let h = Harness::start().await;
    let (s, v) = h
        .post(
            Some(ALICE),
            "/api/v1/rollouts/r1/rings/prod/promote",
            json!({ "comment": "pre" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(h.standin.rollout("r1").rings[2].status, RingStatus::Pending);
    assert_eq!(h.standin.rollout("r1").rings[2].approval.as_ref().unwrap().by, "alice");
    // When staging passes, prod starts without waiting.
    h.post(
        Some(OPS),
        "/api/v1/rollouts/r1/rings/staging/promote-now",
        json!({ "reason": "go" }),
    )
    .await;
    assert_eq!(h.standin.rollout("r1").rings[2].status, RingStatus::Running);
}

#[tokio::test]
async fn someone_outside_the_approver_groups_is_refused_and_audited() {
    let h = Harness::start().await;
    prod_awaits_approval(&h).await;
    let before = h.observable();
    for token in [OPS, VIEWER] {
        let (s, v) = h.post(Some(token), APPROVE, json!({ "comment": "me too" })).await;
        assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "forbidden"));
        assert!(
            v["error"]["message"].as_str().unwrap().contains("platform-admins"),
            "{v}"
        );
    }
    let (s, _) = h
        .post(
            Some(VIEWER),
            "/api/v1/rollouts/r1/rings/prod/reject",
            json!({ "comment": "no" }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(h.observable(), before, "a refused approval changed something");
    assert!(matches!(
        h.standin.rollout("r1").rings[2].status,
        RingStatus::AwaitingApproval { .. }
    ));
    let denied = h.audit_actions("auth.denied");
    let actors: Vec<&str> = denied.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(actors, ["ops", "viewer", "viewer"]);
    assert_eq!(denied[0].subject, format!("POST {APPROVE}"));
    assert_eq!(denied[0].rollout_id, None, "a refused path is never a rollout id");
    assert_eq!(denied[0].detail["status"], 403);
    assert_eq!(denied[0].detail["extra"]["approvers"], json!(["platform-admins"]));
}

#[tokio::test]
async fn an_expired_approval_is_refused_and_the_ring_asks_again() {
    let h = Harness::start().await;
    let now = h.clock.now();
    let before = h.observable();
    let past = now - Duration::minutes(1);
    let (s, v) = h.post(Some(BOB), APPROVE, json!({ "expiresAt": past })).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "approval_expired"));
    let (s, v) = h.post(Some(BOB), APPROVE, json!({ "expiresAt": now })).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "approval_expired"));
    assert_eq!(h.observable(), before);

    // Approved ahead of time for 10 minutes (sooner than the policy's 8 hours)...
    let (s, v) = h
        .post(Some(BOB), APPROVE, json!({ "expiresAt": now + Duration::minutes(10) }))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let expires: DateTime<Utc> = serde_json::from_value(v["approval"]["expiresAt"].clone()).unwrap();
    assert_eq!(expires, now + Duration::minutes(10));
    // ...but staging soaks longer: the approval lapses before prod is reached.
    h.clock.advance(Duration::minutes(20));
    h.standin.apply("r1", Input::Tick).unwrap();
    prod_awaits_approval(&h).await;
    assert!(h.standin.rollout("r1").rings[2].approval.is_none());
    assert!(h.audit().iter().any(|e| e.action == "ring.approval_expired"));
    let (_, v) = h.get(Some(BOB), "/api/v1/rollouts/r1/approvals").await;
    assert_eq!(v["pending"][0]["ring"], "prod", "{v}");
    assert_eq!(v["approvals"][0]["expired"], true);

    // A new approval is recorded afresh (not "already approved" by the expired one).
    let (s, v) = h.post(Some(ALICE), APPROVE, json!({ "comment": "again" })).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["alreadyApproved"], false);
    assert_eq!(h.store.approvals("r1").unwrap().len(), 2);
    assert_eq!(h.standin.rollout("r1").rings[2].status, RingStatus::Running);
}

#[tokio::test]
async fn concurrent_approvals_are_recorded_once() {
    let h = Harness::start().await;
    prod_awaits_approval(&h).await;
    let calls = (0..8).map(|i| {
        let token = if i % 2 == 0 { ALICE } else { BOB };
        h.post(Some(token), APPROVE, json!({ "comment": format!("approval {i}") }))
    });
    let answers = futures::future::join_all(calls).await;
    assert!(answers.iter().all(|(s, _)| *s == StatusCode::OK), "{answers:?}");
    let first: Vec<_> = answers.iter().filter(|(_, v)| v["alreadyApproved"] == false).collect();
    assert_eq!(first.len(), 1, "{answers:?}");
    let winner = first[0].1["approval"]["approvedBy"].as_str().unwrap();
    assert!(answers.iter().all(|(_, v)| v["approval"]["approvedBy"] == winner));
    assert_eq!(h.store.approvals("r1").unwrap().len(), 1);
    assert_eq!(sent_approvals(&h), 1, "the engine heard of one approval");
    assert_eq!(h.audit_actions("ring.approved").len(), 1);
    assert_eq!(h.standin.rollout("r1").rings[2].approval.as_ref().unwrap().by, winner);
}

#[tokio::test]
async fn a_duplicate_does_not_resend_what_the_daemon_has_not_applied_yet() {
    let h = Harness::start().await;
    prod_awaits_approval(&h).await;
    // The daemon takes inputs from a channel: the first approval is sent, not applied.
    h.standin.defer.store(true, std::sync::atomic::Ordering::SeqCst);
    let (s, v) = h.post(Some(ALICE), APPROVE, json!({ "comment": "first" })).await;
    assert_eq!((s, v["alreadyApproved"].as_bool()), (StatusCode::OK, Some(false)));
    let (s, v) = h.post(Some(BOB), APPROVE, json!({ "comment": "second" })).await;
    assert_eq!((s, v["alreadyApproved"].as_bool()), (StatusCode::OK, Some(true)));
    assert_eq!(sent_approvals(&h), 1);
    h.standin.flush();
    assert_eq!(h.standin.rollout("r1").rings[2].status, RingStatus::Running);
    assert_eq!(h.audit_actions("ring.approved").len(), 1);
    let api: Vec<(String, String)> = h
        .audit_actions("api.approve")
        .into_iter()
        .map(|e| (e.actor, e.reason))
        .collect();
    assert_eq!(api, [("alice".into(), "first".into()), ("bob".into(), "second".into())]);
}

#[tokio::test]
async fn a_duplicate_resends_an_approval_the_engine_never_got() {
    let h = Harness::start().await;
    prod_awaits_approval(&h).await;
    let now = h.clock.now();
    // As if the first call's send was lost (daemon restarting): the store has it only.
    let a = ringmaster::store::Approval {
        rollout_id: "r1".into(),
        ring: "prod".into(),
        target: "1.33.3".into(),
        approved_by: "alice".into(),
        groups: vec!["platform-admins".into()],
        comment: "first".into(),
        approved_at: now,
        expires_at: Some(now + Duration::hours(8)),
    };
    h.store.record_approval(&a).unwrap();
    let (s, v) = h.post(Some(BOB), APPROVE, json!({ "comment": "second" })).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["alreadyApproved"], true);
    let r = h.standin.rollout("r1");
    assert_eq!(
        r.rings[2].approval.as_ref().unwrap().by,
        "alice",
        "sent as its approver gave it"
    );
    assert_eq!(r.rings[2].status, RingStatus::Running);
}

#[tokio::test]
async fn a_rejection_needs_a_comment_and_halts_the_rollout() {
    let h = Harness::start().await;
    prod_awaits_approval(&h).await;
    let reject = "/api/v1/rollouts/r1/rings/prod/reject";
    let (s, v) = h.post(Some(BOB), reject, json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "missing_field"));
    let (s, v) = h
        .post(Some(BOB), reject, json!({ "comment": "error budget spent" }))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r = h.standin.rollout("r1");
    assert!(matches!(r.status, RolloutStatus::Halted { .. }), "{:?}", r.status);
    assert!(matches!(r.rings[2].status, RingStatus::Failed { .. }));
    assert_eq!(h.store.rejections("r1").unwrap()[0].rejected_by, "bob");
    assert!(h.audit().iter().any(|e| e.action == "api.reject" && e.actor == "bob"));
    let (s, v) = h.post(Some(BOB), APPROVE, json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "rollout_finished"));
}
