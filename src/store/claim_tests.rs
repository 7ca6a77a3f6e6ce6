//! Claims on an in-memory store: who holds a cluster, who waits, when it is let go.

use super::*;
use chrono::{DateTime, TimeZone, Utc};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, 0).unwrap()
}

const C: &str = "sub/rg/aks-prd-weu-01";

fn who(rollout: &str, priority: i32) -> Claimant<'_> {
    Claimant {
        rollout_id: rollout,
        policy: rollout,
        priority,
    }
}

fn record(id: &str, at: i64) -> RolloutRecord {
    RolloutRecord {
        id: id.into(),
        policy_name: id.into(),
        status: "running".into(),
        state_json: "{}".into(),
        updated_at: t(at),
        parts: vec![],
        replace_parts: false,
    }
}

fn holder(s: &Store) -> Option<String> {
    s.claims().unwrap().into_iter().next().map(|c| c.rollout_id)
}

#[test]
fn one_holder_at_a_time_and_the_other_is_told_who() {
    let s = Store::open_in_memory().unwrap();
    assert_eq!(
        s.claim(C, &who("versions", 0), "preparing", t(0)).unwrap(),
        ClaimOutcome::Held
    );
    // Asking again is idempotent; the case of the path does not matter (ARM ignores it).
    assert_eq!(
        s.claim(&C.to_uppercase(), &who("versions", 0), "preparing", t(1))
            .unwrap(),
        ClaimOutcome::Held
    );
    match s.claim(C, &who("images", 9), "preparing", t(2)).unwrap() {
        ClaimOutcome::Busy(c) => {
            assert_eq!(c.rollout_id, "versions");
            let reason = ClaimOutcome::Busy(c).reason().unwrap();
            assert!(reason.contains("held by rollout versions"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(holder(&s).as_deref(), Some("versions"));
    assert_eq!(s.claim_waits().unwrap().len(), 1, "the refused one waits");
}

#[test]
fn the_save_that_ends_a_cluster_releases_it_and_the_first_waiter_by_priority_takes_it() {
    let s = Store::open_in_memory().unwrap();
    s.claim(C, &who("versions", 0), "preparing", t(0)).unwrap();
    // Low priority asks first, high priority later: high goes first anyway.
    assert!(matches!(
        s.claim(C, &who("images", 1), "", t(10)).unwrap(),
        ClaimOutcome::Busy(_)
    ));
    assert!(matches!(
        s.claim(C, &who("patches", 5), "", t(20)).unwrap(),
        ClaimOutcome::Busy(_)
    ));
    let end = ClaimChanges {
        release: vec![C.into()],
        ..Default::default()
    };
    s.save_rollout_with_claims(&record("versions", 30), &[], &end).unwrap();
    assert_eq!(holder(&s), None);
    match s.claim(C, &who("images", 1), "", t(40)).unwrap() {
        ClaimOutcome::Queued(w) => assert_eq!(w.rollout_id, "patches"),
        other => panic!("the lower priority must queue: {other:?}"),
    }
    assert_eq!(s.claim(C, &who("patches", 5), "", t(41)).unwrap(), ClaimOutcome::Held);
    assert_eq!(holder(&s).as_deref(), Some("patches"));
    // The holder's wait is gone; the other still waits.
    let waits: Vec<String> = s.claim_waits().unwrap().into_iter().map(|w| w.rollout_id).collect();
    assert_eq!(waits, ["images"]);
}

#[test]
fn equal_priorities_go_first_come_and_a_waiter_that_stopped_asking_stands_aside() {
    let s = Store::open_in_memory().unwrap();
    s.claim(C, &who("versions", 0), "", t(0)).unwrap();
    s.claim(C, &who("a", 0), "", t(10)).unwrap();
    s.claim(C, &who("b", 0), "", t(20)).unwrap();
    s.release_claim(C).unwrap();
    assert!(matches!(s.claim(C, &who("b", 0), "", t(30)).unwrap(), ClaimOutcome::Queued(w) if w.rollout_id == "a"));
    // `a` last asked at t(10): five minutes later it no longer blocks `b`.
    let later = t(10) + claims::WAIT_STALE + chrono::TimeDelta::seconds(1);
    assert_eq!(s.claim(C, &who("b", 0), "", later).unwrap(), ClaimOutcome::Held);
}

#[test]
fn a_step_intent_on_a_cluster_another_rollout_holds_is_refused_with_the_whole_save() {
    let s = Store::open_in_memory().unwrap();
    s.claim(C, &who("versions", 0), "", t(0)).unwrap();
    let step = ClaimChanges {
        hold: vec![(C.into(), "step 1/3, control plane to 1.33.3 (starting)".into())],
        ..Default::default()
    };
    let err = s
        .save_rollout_with_claims(&record("images", 1), &[], &step)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ClaimHeld { ref holder, .. } if holder == "versions"),
        "{err}"
    );
    assert!(
        s.load_rollout("images").unwrap().is_none(),
        "nothing of the save was kept"
    );
    // The holder's own save goes through and says what it does there.
    s.save_rollout_with_claims(&record("versions", 2), &[], &step).unwrap();
    assert_eq!(
        s.claims().unwrap()[0].doing,
        "step 1/3, control plane to 1.33.3 (starting)"
    );
    // A held cluster nobody claimed yet (a state from before claims) is taken.
    let other = "sub/rg/aks-dev-weu-01";
    let old = ClaimChanges {
        hold: vec![(other.into(), "step 2/3".into())],
        ..Default::default()
    };
    s.save_rollout_with_claims(&record("images", 3), &[], &old).unwrap();
    let by: Vec<(String, String)> = s
        .claims()
        .unwrap()
        .into_iter()
        .map(|c| (c.cluster, c.rollout_id))
        .collect();
    assert!(by.contains(&(other.into(), "images".into())), "{by:?}");
}

#[test]
fn a_rollout_that_ends_lets_go_of_everything_it_held_or_waited_for() {
    let s = Store::open_in_memory().unwrap();
    s.claim(C, &who("versions", 0), "", t(0)).unwrap();
    s.claim("sub/rg/two", &who("versions", 0), "", t(0)).unwrap();
    s.claim("sub/rg/three", &who("images", 0), "", t(0)).unwrap();
    s.claim("sub/rg/three", &who("versions", 0), "", t(0)).unwrap();
    let end = ClaimChanges {
        release_all: true,
        ..Default::default()
    };
    s.save_rollout_with_claims(&record("versions", 5), &[], &end).unwrap();
    let left: Vec<String> = s.claims().unwrap().into_iter().map(|c| c.rollout_id).collect();
    assert_eq!(left, ["images"]);
    assert!(s.claim_waits().unwrap().is_empty());
}
