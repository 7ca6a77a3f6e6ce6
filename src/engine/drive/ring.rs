//! The ring level: an operator's word on a ring (approve, reject, promote) and what the
//! ring loop asks of a ring (its failures, whether its approval holds). The ring loop
//! itself runs in `rollout.rs`, inside the drive of the whole rollout.

use super::{audit, rollout::halt};
use crate::engine::input::Command;
use crate::engine::model::*;
use crate::engine::settings::Settings;
use chrono::{DateTime, Utc};

/// An approval of a ring that needs one and has not started.
#[allow(clippy::too_many_arguments)]
pub(super) fn approve(
    r: &mut Rollout,
    s: &Settings,
    ring: String,
    by: String,
    comment: String,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    out: &mut Vec<Command>,
) {
    if let Some(ri) = r.rings.iter().position(|x| x.name == ring) {
        let needs = s.ring(&ring).is_some_and(|x| x.approvers.is_some());
        let waiting = matches!(
            r.rings[ri].status,
            RingStatus::Pending | RingStatus::AwaitingApproval { .. }
        );
        if needs && waiting {
            r.rings[ri].approval = Some(ApprovalRecord {
                by: by.clone(),
                at: now,
                expires_at,
                comment: comment.clone(),
            });
            audit(out, &by, "ring.approved", ring, comment);
        }
    }
}

/// A rejection of a ring that has not started: the ring fails, the rollout halts.
pub(super) fn reject(r: &mut Rollout, ring: String, by: String, comment: String, out: &mut Vec<Command>) {
    if let Some(ri) = r.rings.iter().position(|x| x.name == ring)
        && matches!(
            r.rings[ri].status,
            RingStatus::Pending | RingStatus::AwaitingApproval { .. }
        )
        && !r.status.is_terminal()
    {
        r.rings[ri].status = RingStatus::Failed {
            reason: format!("rejected by {by}: {comment}"),
        };
        audit(out, &by, "ring.rejected", ring.clone(), comment.clone());
        halt(r, format!("ring {ring} rejected by {by}: {comment}"), out);
    }
}

/// Ends a soaking ring's soak now.
pub(super) fn promote(
    r: &mut Rollout,
    ring: String,
    by: String,
    reason: String,
    now: DateTime<Utc>,
    out: &mut Vec<Command>,
) {
    if let Some(ri) = r.rings.iter().position(|x| x.name == ring)
        && matches!(r.rings[ri].status, RingStatus::Soaking { .. })
    {
        r.rings[ri].status = RingStatus::Soaking { until: now };
        audit(out, &by, "ring.promoted", ring, reason);
    }
}

pub(super) fn ring_failures(ring: &RingRun) -> u32 {
    ring.waves
        .iter()
        .flat_map(|w| &w.clusters)
        .filter(|c| c.status.is_failure())
        .count() as u32
}

pub(super) fn approval_valid(ring: &RingRun, now: DateTime<Utc>) -> bool {
    ring.approval
        .as_ref()
        .is_some_and(|a| a.expires_at.is_none_or(|e| e > now))
}
