//! What the rollout handlers (and the approval, claim, rollback and live handlers beside
//! them) share: loading a rollout and its parts (404/409), recording a request in the
//! audit log, the operator check (403) and required fields (400).

use crate::api::ApiState;
use crate::api::auth::{Ctx, forbid};
use crate::api::error::ApiError;
use crate::domain::fleet::ClusterId;
use crate::engine::{RingRun, RingStatus, Rollout};
use crate::store::AuditEntry;
use serde_json::{Value, json};

/// The rollout, or 404.
pub(in crate::api) fn load(state: &ApiState, id: &str) -> Result<Rollout, ApiError> {
    state
        .control
        .get(id)?
        .ok_or_else(|| ApiError::not_found("unknown_rollout", format!("no rollout `{id}`")))
}

/// 409 unless the rollout can still change.
pub(in crate::api) fn not_finished(r: &Rollout) -> Result<(), ApiError> {
    if r.status.is_terminal() {
        return Err(ApiError::conflict(
            "rollout_finished",
            format!(
                "rollout `{}` has ended ({}): it takes no more decisions",
                r.id,
                r.status.label()
            ),
        ));
    }
    Ok(())
}

pub(in crate::api) fn ring<'a>(r: &'a Rollout, name: &str) -> Result<(usize, &'a RingRun), ApiError> {
    r.rings
        .iter()
        .enumerate()
        .find(|(_, x)| x.name == name)
        .ok_or_else(|| ApiError::not_found("unknown_ring", format!("rollout `{}` has no ring `{name}`", r.id)))
}

/// The version a rollout promotes, as approvals record it.
pub(in crate::api) fn approval_target(r: &Rollout) -> String {
    let t = &r.plan.target;
    match &t.version {
        Some(v) => v.to_string(),
        None => format!("{} (node image {})", t.channel, t.node_image),
    }
}

/// Finds a cluster of the rollout by `name`, `resourceGroup/name` or
/// `subscription/resourceGroup/name` (URL-encode the slashes in a path).
pub(in crate::api) fn find_cluster(r: &Rollout, key: &str) -> Result<ClusterId, ApiError> {
    let matches: Vec<ClusterId> = r
        .clusters()
        .map(|(_, c)| c.id.clone())
        .filter(|id| {
            key == id.name
                || key == format!("{}/{}", id.resource_group, id.name)
                || key.eq_ignore_ascii_case(&id.to_string())
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ApiError::not_found(
            "unknown_cluster",
            format!("rollout `{}` has no cluster `{key}`", r.id),
        )),
        many => Err(ApiError::conflict(
            "ambiguous_cluster",
            format!(
                "`{key}` names {} clusters; use resourceGroup/name: {}",
                many.len(),
                many.iter()
                    .map(|c| format!("{}/{}", c.resource_group, c.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Appends the caller's request to the audit log. A failing store refuses the call:
/// no change happens that the log doesn't show.
pub(in crate::api) async fn record(
    state: &ApiState,
    ctx: &Ctx,
    action: &str,
    rollout: Option<&str>,
    subject: String,
    reason: &str,
    extra: Value,
) -> Result<(), ApiError> {
    let entry = AuditEntry {
        at: state.clock.now(),
        actor: ctx.caller.name.clone(),
        action: action.to_string(),
        rollout_id: rollout.map(str::to_string),
        subject,
        reason: reason.to_string(),
        detail: json!({
            "method": ctx.method,
            "path": ctx.path,
            "via": ctx.caller.via,
            "groups": ctx.caller.groups,
            "request": extra,
        }),
    };
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || store.append_audit(&entry))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(())
}

/// 403 (audited) unless the caller is in an operator group.
pub(in crate::api) async fn require_operator(state: &ApiState, ctx: &Ctx, what: &str) -> Result<(), ApiError> {
    if state.auth.is_operator(&ctx.caller) {
        return Ok(());
    }
    let message = if state.auth.operators().is_empty() {
        format!("{what} needs an operator group, and this server has none configured (--operator-group)")
    } else {
        format!(
            "{what} is for the operator groups ({})",
            state.auth.operators().join(", ")
        )
    };
    Err(forbid(state, ctx, message, json!({ "groups": ctx.caller.groups })).await)
}

pub(in crate::api) fn required(field: &'static str, v: Option<String>) -> Result<String, ApiError> {
    match v.map(|s| s.trim().to_string()) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(ApiError::bad_request("missing_field", format!("`{field}` is required"))),
    }
}

pub(in crate::api) fn ring_state(s: &RingStatus) -> &'static str {
    match s {
        RingStatus::Pending => "pending",
        RingStatus::AwaitingApproval { .. } => "awaiting approval",
        RingStatus::Running => "running",
        RingStatus::Soaking { .. } => "soaking",
        RingStatus::Passed => "passed",
        RingStatus::Failed { .. } => "failed",
    }
}
