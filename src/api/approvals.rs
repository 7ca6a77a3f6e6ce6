//! Approvals: which rings wait for one, approving (promoting the target into a ring)
//! and rejecting.
//!
//! An approval is recorded in the store before the engine hears of it. The store keeps
//! at most one live approval per (rollout, ring, target), so two approvers clicking at
//! once record one approval: the second gets 200 with `alreadyApproved: true` and the
//! first approval, and nothing is written for it but its audit entry.
//!
//! Expiry, as the API sees it:
//! - An approval lasts the ring's `expires_after` (from the policy the rollout started
//!   with), or less if the request gives an earlier `expiresAt`.
//! - A request whose `expiresAt` is not in the future is refused (400
//!   `approval_expired`): an expired approval lets nothing start, so recording one would
//!   only mislead.
//! - An approval that expires before its ring starts is dropped by the engine, which
//!   asks again: the ring shows in `GET .../approvals` as pending, with the expired
//!   approval, and a new approval is recorded afresh (the store retires the expired one).

use super::ApiState;
use super::auth::{Caller, Ctx, forbid, intersects};
use super::error::{ApiError, Body, P};
use super::rollouts::{approval_target, load, not_finished, record, ring, ring_state};
use crate::engine::{Input, RingStatus, Rollout};
use crate::store::{Approval, ApprovalOutcome, Rejection};
use axum::extract::State;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;

/// Who decides a ring and what the caller may do about it: the one answer the status,
/// the summary, the pending list and the approve and reject calls share.
pub(super) struct Deciders {
    /// The groups that may approve (none: the ring needs no approval).
    pub approvers: Vec<String>,
    pub expires_after: Option<std::time::Duration>,
    /// The caller is in one of the approvers' groups.
    pub may_approve: bool,
    /// The caller may approve, or is an operator.
    pub may_reject: bool,
}

impl Deciders {
    /// For ring `ri` of `r`. The daemon is asked only for rings whose plan lists
    /// approvers: status calls are the API's hottest path, and its answer may cost a
    /// policy compile.
    pub(super) fn of(state: &ApiState, r: &Rollout, ri: usize, caller: &Caller) -> Self {
        let needs = r.plan.rings.get(ri).is_none_or(|p| !p.approvers.is_empty());
        let rules = r
            .rings
            .get(ri)
            .filter(|_| needs)
            .and_then(|run| state.control.ring_approval(&r.id, &run.name));
        let (approvers, expires_after) = rules.map(|a| (a.approvers, a.expires_after)).unwrap_or_default();
        let may_approve = intersects(&caller.groups, &approvers);
        Deciders {
            may_reject: may_approve || state.auth.is_operator(caller),
            may_approve,
            approvers,
            expires_after,
        }
    }

    pub(super) fn expires_after_seconds(&self) -> Option<u64> {
        self.expires_after.map(|d| d.as_secs())
    }
}

/// Serialises approvals and rejections within one API, and remembers the approvals it
/// sent to the engine: a duplicate re-sends the first approval only when this process
/// never delivered it (its send failed, or it was recorded before a restart), not
/// merely because the daemon has not applied it yet.
#[derive(Clone, Default)]
pub(super) struct ApprovalLock(pub Arc<tokio::sync::Mutex<HashSet<Sent>>>);

/// (rollout, ring, target, approved at): one approval.
type Sent = (String, String, String, DateTime<Utc>);

fn approval_json(a: &Approval, now: DateTime<Utc>) -> Value {
    json!({
        "ring": a.ring, "target": a.target, "approvedBy": a.approved_by, "groups": a.groups,
        "comment": a.comment, "approvedAt": a.approved_at, "expiresAt": a.expires_at,
        "expired": a.expires_at.is_some_and(|e| e <= now),
    })
}

fn rejection_json(r: &Rejection) -> Value {
    json!({
        "ring": r.ring, "target": r.target, "rejectedBy": r.rejected_by, "groups": r.groups,
        "comment": r.comment, "rejectedAt": r.rejected_at,
    })
}

/// Ring `ri` as it waits for an approval, with who may decide it (`d`); none when it
/// does not wait or the engine already holds an approval valid at `now`. The approvals
/// list and the dashboard's summary both show this.
pub(super) fn waiting_for_approval(r: &Rollout, ri: usize, d: &Deciders, now: DateTime<Utc>) -> Option<Value> {
    let run = &r.rings[ri];
    let RingStatus::AwaitingApproval { since } = run.status else {
        return None;
    };
    if engine_approved(r, ri, now) {
        return None;
    }
    Some(json!({
        "ring": run.name,
        "since": since,
        "expiresAfterSeconds": d.expires_after_seconds(),
        "approvers": d.approvers,
        "mayApprove": d.may_approve,
        "mayReject": d.may_reject,
        "expiredApproval": run.approval,
    }))
}

/// True when the engine holds an approval of ring `ri` valid at `now`.
fn engine_approved(r: &Rollout, ri: usize, now: DateTime<Utc>) -> bool {
    r.rings[ri]
        .approval
        .as_ref()
        .is_some_and(|a| a.expires_at.is_none_or(|e| e > now))
}

fn waiting(s: &RingStatus) -> bool {
    matches!(s, RingStatus::Pending | RingStatus::AwaitingApproval { .. })
}

/// Rings waiting for an approval (and who may give it), and every decision so far.
pub(super) async fn pending(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    P(id): P<String>,
) -> Result<Json<Value>, ApiError> {
    let r = load(&state, &id)?;
    let now = state.clock.now();
    let store = state.store.clone();
    let rid = id.clone();
    let (approvals, rejections) = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::store::StoreError>((store.approvals(&rid)?, store.rejections(&rid)?))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let pending: Vec<Value> = r
        .rings
        .iter()
        .enumerate()
        .filter_map(|(ri, _)| waiting_for_approval(&r, ri, &Deciders::of(&state, &r, ri, &ctx.caller), now))
        .collect();
    Ok(Json(json!({
        "rolloutId": id,
        "target": approval_target(&r),
        "pending": pending,
        "approvals": approvals.iter().map(|a| approval_json(a, now)).collect::<Vec<_>>(),
        "rejections": rejections.iter().map(rejection_json).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ApproveBody {
    comment: Option<String>,
    /// Expire the approval sooner than the policy's `expires_after`.
    expires_at: Option<DateTime<Utc>>,
}

/// Approves promoting the rollout's target into `ring` (also `.../promote`).
pub(super) async fn approve(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(lock): Extension<ApprovalLock>,
    P((id, ring_name)): P<(String, String)>,
    Body(b): Body<ApproveBody>,
) -> Result<Json<Value>, ApiError> {
    let r = load(&state, &id)?;
    let (ri, run) = ring(&r, &ring_name)?;
    let rules = Deciders::of(&state, &r, ri, &ctx.caller);
    if rules.approvers.is_empty() {
        return Err(ApiError::conflict(
            "approval_not_required",
            format!("ring `{ring_name}` needs no approval"),
        ));
    }
    if !rules.may_approve {
        let message = format!(
            "{} may not approve ring `{ring_name}`: its approvers are the groups {}",
            ctx.caller.name,
            rules.approvers.join(", ")
        );
        let extra = json!({ "approvers": rules.approvers, "groups": ctx.caller.groups });
        return Err(forbid(&state, &ctx, message, extra).await);
    }
    not_finished(&r)?;
    if !waiting(&run.status) {
        return Err(ApiError::conflict(
            "not_awaiting_approval",
            format!(
                "ring `{ring_name}` is {}: there is nothing to approve",
                ring_state(&run.status)
            ),
        ));
    }
    let now = state.clock.now();
    if let Some(at) = b.expires_at
        && at <= now
    {
        return Err(ApiError::bad_request(
            "approval_expired",
            format!("expiresAt {at} is not in the future: an expired approval lets nothing start"),
        ));
    }
    // Saturating: a policy stored before durations were bounded may say `99999999d`.
    let by_policy = rules.expires_after.map(|d| crate::domain::duration::later(now, d));
    let expires_at = match (by_policy, b.expires_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let approval = Approval {
        rollout_id: id.clone(),
        ring: ring_name.clone(),
        target: approval_target(&r),
        approved_by: ctx.caller.name.clone(),
        groups: ctx.caller.groups.clone(),
        comment: b.comment.unwrap_or_default(),
        approved_at: now,
        expires_at,
    };
    let mut sent = lock.0.lock().await;
    let own_comment = approval.comment.clone();
    let store = state.store.clone();
    let a = approval.clone();
    let outcome = tokio::task::spawn_blocking(move || store.record_approval(&a))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let (first, already) = match outcome {
        ApprovalOutcome::Recorded(_) => (approval, false),
        ApprovalOutcome::AlreadyApproved(first) => (first, true),
    };
    let extra = json!({ "target": first.target, "expiresAt": first.expires_at, "alreadyApproved": already });
    record(
        &state,
        &ctx,
        "api.approve",
        Some(&id),
        ring_name.clone(),
        &own_comment,
        extra,
    )
    .await?;
    // A duplicate sends nothing, unless the engine lacks the recorded approval and this
    // API never delivered it (the first call's send failed, or the daemon restarted
    // in between): then it is re-sent, as given by its approver.
    let key: Sent = (id.clone(), ring_name.clone(), first.target.clone(), first.approved_at);
    let engine_has_it = state.control.get(&id)?.is_some_and(|r| engine_approved(&r, ri, now));
    if !already || (!engine_has_it && !sent.contains(&key)) {
        let input = Input::Approve {
            ring: ring_name.clone(),
            by: first.approved_by.clone(),
            comment: first.comment.clone(),
            expires_at: first.expires_at,
        };
        state.control.send(&id, input)?;
        sent.insert(key);
    }
    Ok(Json(json!({
        "rolloutId": id,
        "ring": ring_name,
        "alreadyApproved": already,
        "approval": approval_json(&first, now),
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RejectBody {
    comment: Option<String>,
}

/// Refuses the promotion into `ring`: the ring fails and the rollout halts. For the
/// ring's approvers and the operators.
pub(super) async fn reject(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(lock): Extension<ApprovalLock>,
    P((id, ring_name)): P<(String, String)>,
    Body(b): Body<RejectBody>,
) -> Result<Json<Value>, ApiError> {
    let r = load(&state, &id)?;
    let (ri, run) = ring(&r, &ring_name)?;
    let d = Deciders::of(&state, &r, ri, &ctx.caller);
    if !d.may_reject {
        let message = format!(
            "{} may not reject ring `{ring_name}`: that is for its approvers ({}) and the operators",
            ctx.caller.name,
            d.approvers.join(", ")
        );
        let extra = json!({ "approvers": d.approvers, "groups": ctx.caller.groups });
        return Err(forbid(&state, &ctx, message, extra).await);
    }
    not_finished(&r)?;
    let comment = b.comment.map(|c| c.trim().to_string()).unwrap_or_default();
    if comment.is_empty() {
        return Err(ApiError::bad_request("missing_field", "`comment` is required: say why"));
    }
    if !waiting(&run.status) {
        return Err(ApiError::conflict(
            "not_awaiting_approval",
            format!(
                "ring `{ring_name}` is {}: it can no longer be rejected",
                ring_state(&run.status)
            ),
        ));
    }
    let rejection = Rejection {
        rollout_id: id.clone(),
        ring: ring_name.clone(),
        target: approval_target(&r),
        rejected_by: ctx.caller.name.clone(),
        groups: ctx.caller.groups.clone(),
        comment: comment.clone(),
        rejected_at: state.clock.now(),
    };
    let _serial = lock.0.lock().await;
    let store = state.store.clone();
    let rj = rejection.clone();
    tokio::task::spawn_blocking(move || store.record_rejection(&rj))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    record(
        &state,
        &ctx,
        "api.reject",
        Some(&id),
        ring_name.clone(),
        &comment,
        json!({ "target": rejection.target }),
    )
    .await?;
    let input = Input::Reject {
        ring: ring_name.clone(),
        by: ctx.caller.name.clone(),
        comment,
    };
    state.control.send(&id, input)?;
    Ok(Json(
        json!({ "rolloutId": id, "ring": ring_name, "rejection": rejection_json(&rejection) }),
    ))
}
