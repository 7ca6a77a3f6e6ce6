//! The pure engine and claims (`store::claims`): a cluster is claimed before anything
//! reads or changes it; a cluster another rollout holds waits (asking again, audited
//! once per reason) or is skipped, as the policy's `on_busy` says.

mod support;

use chrono::Duration;
use ringmaster::engine::{self, ClusterRef, ClusterStatus, Command, Input};
use ringmaster::policy::OnBusy;
use support::engine_driver::{audits, demo, run_from, run_until};

/// The first cluster to be claimed, and when.
fn first_claim(r: &mut engine::Rollout, s: &engine::Settings) -> (ClusterRef, chrono::DateTime<chrono::Utc>) {
    let start = r.created_at;
    run_until(r, s, start, |_, c| match c {
        Command::Claim { cluster, .. } => Some(*cluster),
        _ => None,
    })
}

#[test]
fn nothing_reads_or_changes_a_cluster_before_it_is_claimed() {
    let (mut r, s) = demo();
    let start = r.created_at;
    let cmds = engine::advance(&mut r, &s, Input::Tick, start);
    let claimed: Vec<ClusterRef> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Claim { cluster, .. } => Some(*cluster),
            _ => None,
        })
        .collect();
    assert!(!claimed.is_empty(), "{cmds:?}");
    assert!(
        !cmds.iter().any(|c| matches!(
            c,
            Command::RunPreflight { .. } | Command::TakeBaseline { .. } | Command::StartStep { .. }
        )),
        "a claim comes first: {cmds:?}"
    );
    let cmds = engine::advance(&mut r, &s, Input::Claimed { cluster: claimed[0] }, start);
    assert!(r.cluster(claimed[0]).claimed);
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::RunPreflight { cluster, .. } if *cluster == claimed[0])),
        "claimed: on to its preflight: {cmds:?}"
    );
}

#[test]
fn a_busy_cluster_waits_holding_its_slot_asks_again_and_goes_on_once_free() {
    let (mut r, s) = demo();
    assert_eq!(s.on_busy, OnBusy::Wait, "the default");
    let (cref, t) = first_claim(&mut r, &s);
    let busy = |reason: &str| Input::ClusterBusy {
        cluster: cref,
        reason: reason.into(),
    };
    let cmds = engine::advance(&mut r, &s, busy("held by rollout versions-1"), t);
    assert_eq!(audits(&cmds), ["cluster.waiting"]);
    let c = r.cluster(cref);
    assert_eq!(c.status, ClusterStatus::Preparing, "it keeps its wave slot");
    assert_eq!(c.waiting.as_deref(), Some("held by rollout versions-1"));
    assert!(!c.claimed);
    // Not asked again before the retry time; asked at it.
    let early = engine::advance(&mut r, &s, Input::Tick, t + Duration::seconds(5));
    assert!(
        !early
            .iter()
            .any(|c| matches!(c, Command::Claim { cluster, .. } if *cluster == cref))
    );
    let retry = Duration::from_std(s.claim_retry).unwrap();
    let again = engine::advance(&mut r, &s, Input::Tick, t + retry);
    assert!(
        again
            .iter()
            .any(|c| matches!(c, Command::Claim { cluster, .. } if *cluster == cref)),
        "{again:?}"
    );
    // The same reason is not audited twice.
    let cmds = engine::advance(&mut r, &s, busy("held by rollout versions-1"), t + retry);
    assert!(audits(&cmds).is_empty(), "{cmds:?}");
    // Free: claimed, audited, prepared; and the rollout runs to its end.
    let cmds = engine::advance(&mut r, &s, Input::Claimed { cluster: cref }, t + retry * 2);
    assert_eq!(audits(&cmds), ["cluster.claimed"]);
    assert!(r.cluster(cref).waiting.is_none());
    let ((), _) = run_from(&mut r, &s, t + retry * 2, Input::Resumed, |r, _| {
        r.status.is_terminal().then_some(())
    });
    assert_eq!(r.status, engine::RolloutStatus::Succeeded);
}

#[test]
fn with_on_busy_skip_a_busy_cluster_is_skipped_and_not_a_failure() {
    let (mut r, mut s) = demo();
    s.on_busy = OnBusy::Skip;
    let (cref, t) = first_claim(&mut r, &s);
    let cmds = engine::advance(
        &mut r,
        &s,
        Input::ClusterBusy {
            cluster: cref,
            reason: "held by rollout versions-1".into(),
        },
        t,
    );
    match &r.cluster(cref).status {
        ClusterStatus::Skipped { reason, .. } => assert!(reason.contains("versions-1"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(audits(&cmds).contains(&"cluster.skipped".to_string()), "{cmds:?}");
    let skipped = r.cluster(cref).id.clone();
    let ((), _) = run_from(&mut r, &s, t, Input::Resumed, |r, c| {
        if let Command::StartStep { cluster, .. } = c {
            assert_ne!(*cluster, skipped, "a step of the skipped cluster started");
        }
        r.status.is_terminal().then_some(())
    });
    assert_eq!(r.status, engine::RolloutStatus::Succeeded, "a skip is not a failure");
}

/// After a restart, a preparing cluster that was not claimed yet asks again (the ask is
/// not saved); one that was claimed goes straight on.
#[test]
fn a_restart_asks_again_only_for_what_was_not_claimed() {
    let (mut r, s) = demo();
    let (cref, t) = first_claim(&mut r, &s);
    let cmds = engine::advance(&mut r, &s, Input::Resumed, t);
    assert!(
        cmds.iter()
            .any(|c| matches!(c, Command::Claim { cluster, .. } if *cluster == cref))
    );
    engine::advance(&mut r, &s, Input::Claimed { cluster: cref }, t);
    let cmds = engine::advance(&mut r, &s, Input::Resumed, t);
    assert!(
        !cmds
            .iter()
            .any(|c| matches!(c, Command::Claim { cluster, .. } if *cluster == cref)),
        "{cmds:?}"
    );
}
