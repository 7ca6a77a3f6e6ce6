//! Rollouts: reading them, and the operator's decisions (pause, resume, abort, skip,
//! end a soak, start now). Approvals are in `approvals.rs`.
//!
//! Every decision follows the same order: load the rollout (404), check the caller's
//! groups (403, audited), check the rollout can take it (409), write the request to the
//! audit log, then send the input to the engine. A refused call has changed nothing, and
//! an accepted one is in the log before the engine sees it.

use super::ApiState;
use super::auth::{Ctx, forbid};
use super::error::{ApiError, Body, P, Q};
use crate::domain::fleet::ClusterId;
use crate::engine::{Input, RingRun, RingStatus, Rollout, RolloutStatus, Scope};
use crate::service::{RingApproval, StartRequest};
use crate::store::{AuditEntry, AuditQuery};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The rollout, or 404.
pub(super) fn load(state: &ApiState, id: &str) -> Result<Rollout, ApiError> {
    state
        .control
        .get(id)
        .ok_or_else(|| ApiError::not_found("unknown_rollout", format!("no rollout `{id}`")))
}

/// 409 unless the rollout can still change.
pub(super) fn not_finished(r: &Rollout) -> Result<(), ApiError> {
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

pub(super) fn ring<'a>(r: &'a Rollout, name: &str) -> Result<(usize, &'a RingRun), ApiError> {
    r.rings
        .iter()
        .enumerate()
        .find(|(_, x)| x.name == name)
        .ok_or_else(|| ApiError::not_found("unknown_ring", format!("rollout `{}` has no ring `{name}`", r.id)))
}

/// The version a rollout promotes, as approvals record it.
pub fn approval_target(r: &Rollout) -> String {
    let t = &r.plan.target;
    match &t.version {
        Some(v) => v.to_string(),
        None => format!("{} (node image {})", t.channel, t.node_image),
    }
}

/// Finds a cluster of the rollout by `name`, `resourceGroup/name` or
/// `subscription/resourceGroup/name` (URL-encode the slashes in a path).
pub(super) fn find_cluster(r: &Rollout, key: &str) -> Result<ClusterId, ApiError> {
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
pub(super) async fn record(
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
pub(super) async fn require_operator(state: &ApiState, ctx: &Ctx, what: &str) -> Result<(), ApiError> {
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

fn required(field: &'static str, v: Option<String>) -> Result<String, ApiError> {
    match v.map(|s| s.trim().to_string()) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(ApiError::bad_request("missing_field", format!("`{field}` is required"))),
    }
}

fn accepted(id: &str, action: &str, extra: Value) -> Json<Value> {
    let mut v = json!({ "rolloutId": id, "action": action, "accepted": true });
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    Json(v)
}

pub(super) async fn list(State(state): State<ApiState>) -> Json<Value> {
    Json(json!({ "rollouts": state.control.list(), "active": state.control.active() }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StartBody {
    reason: Option<String>,
}

pub(super) async fn start(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Body(b): Body<StartBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_operator(&state, &ctx, "starting a rollout").await?;
    if let Some(active) = state.control.active() {
        return Err(ApiError::conflict(
            "already_running",
            format!("a rollout is already running: `{active}`"),
        ));
    }
    let reason = b.reason.unwrap_or_default();
    record(&state, &ctx, "api.start", None, "rollout".into(), &reason, json!({})).await?;
    Ok(match state.control.start_now(&ctx.caller.name)? {
        StartRequest::Started(id) => (
            StatusCode::CREATED,
            Json(json!({ "id": id, "startedBy": ctx.caller.name })),
        ),
        StartRequest::Queued => (
            StatusCode::ACCEPTED,
            Json(json!({
                "status": "queued",
                "requestedBy": ctx.caller.name,
                "message": "the daemon discovers the fleet and plans, then starts the rollout (GET /api/v1/rollouts lists it); nothing starts when the fleet is already on target",
            })),
        ),
    })
}

/// A ring as shown: the engine's state plus who may approve it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RingView<'a> {
    #[serde(flatten)]
    run: &'a RingRun,
    approvers: Vec<String>,
    approval_expires_after_seconds: Option<u64>,
}

/// Asks the daemon about approvals only for rings whose plan lists approvers: status
/// calls are the API's hottest path, and the answer may cost a policy compile.
fn ring_views(state: &ApiState, r: &Rollout) -> Vec<Value> {
    r.rings
        .iter()
        .enumerate()
        .map(|(ri, run)| {
            let needs = r.plan.rings.get(ri).is_none_or(|p| !p.approvers.is_empty());
            let a: Option<RingApproval> = needs.then(|| state.control.ring_approval(&r.id, &run.name)).flatten();
            serde_json::to_value(RingView {
                run,
                approvers: a.as_ref().map(|a| a.approvers.clone()).unwrap_or_default(),
                approval_expires_after_seconds: a.and_then(|a| a.expires_after).map(|d| d.as_secs()),
            })
            .unwrap_or(Value::Null)
        })
        .collect()
}

pub(super) async fn show(State(state): State<ApiState>, P(id): P<String>) -> Result<Json<Value>, ApiError> {
    let r = load(&state, &id)?;
    Ok(Json(json!({
        "id": r.id,
        "policy": r.plan.policy,
        "policyFile": r.policy_file,
        "status": r.status,
        "target": r.plan.target,
        "approvalTarget": approval_target(&r),
        "createdAt": r.created_at,
        "updatedAt": r.updated_at,
        "seq": r.seq,
        "rings": ring_views(&state, &r),
        "skipped": r.plan.skipped,
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReasonBody {
    reason: Option<String>,
}

pub(super) async fn promote_now(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    P((id, ring_name)): P<(String, String)>,
    Body(b): Body<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    let r = load(&state, &id)?;
    let (_, run) = ring(&r, &ring_name)?;
    require_operator(&state, &ctx, "ending a soak early").await?;
    not_finished(&r)?;
    let reason = required("reason", b.reason)?;
    if !matches!(run.status, RingStatus::Soaking { .. }) {
        return Err(ApiError::conflict(
            "not_soaking",
            format!("ring `{ring_name}` is not soaking (it is {})", ring_state(&run.status)),
        ));
    }
    record(
        &state,
        &ctx,
        "api.promote_now",
        Some(&id),
        ring_name.clone(),
        &reason,
        json!({}),
    )
    .await?;
    let input = Input::PromoteNow {
        ring: ring_name.clone(),
        by: ctx.caller.name.clone(),
        reason,
    };
    state.control.send(&id, input)?;
    Ok(accepted(&id, "promote-now", json!({ "ring": ring_name })))
}

pub(super) fn ring_state(s: &RingStatus) -> &'static str {
    match s {
        RingStatus::Pending => "pending",
        RingStatus::AwaitingApproval { .. } => "awaiting approval",
        RingStatus::Running => "running",
        RingStatus::Soaking { .. } => "soaking",
        RingStatus::Passed => "passed",
        RingStatus::Failed { .. } => "failed",
    }
}

/// Pause/resume scope: the whole rollout, one ring, or one cluster.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScopeBody {
    ring: Option<String>,
    cluster: Option<String>,
    reason: Option<String>,
}

fn scope(r: &Rollout, b: &ScopeBody) -> Result<Scope, ApiError> {
    match (&b.ring, &b.cluster) {
        (Some(_), Some(_)) => Err(ApiError::bad_request("bad_scope", "give `ring` or `cluster`, not both")),
        (Some(name), None) => ring(r, name).map(|_| Scope::Ring(name.clone())),
        (None, Some(c)) => find_cluster(r, c).map(Scope::Cluster),
        (None, None) => Ok(Scope::Rollout),
    }
}

fn scope_name(s: &Scope) -> String {
    match s {
        Scope::Rollout => "rollout".into(),
        Scope::Ring(r) => format!("ring {r}"),
        Scope::Cluster(c) => format!("cluster {}", c.name),
    }
}

pub(super) async fn pause(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    P(id): P<String>,
    Body(b): Body<ScopeBody>,
) -> Result<Json<Value>, ApiError> {
    let r = load(&state, &id)?;
    require_operator(&state, &ctx, "pausing").await?;
    not_finished(&r)?;
    let scope = scope(&r, &b)?;
    if scope == Scope::Rollout && matches!(r.status, RolloutStatus::Paused { .. }) {
        return Err(ApiError::conflict(
            "already_paused",
            format!("rollout `{id}` is already paused"),
        ));
    }
    let reason = b.reason.unwrap_or_default();
    let subject = scope_name(&scope);
    record(
        &state,
        &ctx,
        "api.pause",
        Some(&id),
        subject.clone(),
        &reason,
        json!({}),
    )
    .await?;
    let input = Input::Pause {
        scope,
        by: ctx.caller.name.clone(),
        reason,
    };
    state.control.send(&id, input)?;
    Ok(accepted(&id, "pause", json!({ "scope": subject })))
}

pub(super) async fn resume(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    P(id): P<String>,
    Body(b): Body<ScopeBody>,
) -> Result<Json<Value>, ApiError> {
    let r = load(&state, &id)?;
    require_operator(&state, &ctx, "resuming").await?;
    not_finished(&r)?;
    let scope = scope(&r, &b)?;
    if scope == Scope::Rollout && !matches!(r.status, RolloutStatus::Paused { .. }) {
        return Err(ApiError::conflict(
            "not_paused",
            format!("rollout `{id}` is not paused"),
        ));
    }
    let subject = scope_name(&scope);
    let reason = b.reason.unwrap_or_default();
    record(
        &state,
        &ctx,
        "api.resume",
        Some(&id),
        subject.clone(),
        &reason,
        json!({}),
    )
    .await?;
    let input = Input::Resume {
        scope,
        by: ctx.caller.name.clone(),
    };
    state.control.send(&id, input)?;
    Ok(accepted(&id, "resume", json!({ "scope": subject })))
}

pub(super) async fn abort(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    P(id): P<String>,
    Body(b): Body<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    let r = load(&state, &id)?;
    require_operator(&state, &ctx, "aborting").await?;
    not_finished(&r)?;
    let reason = required("reason", b.reason)?;
    record(
        &state,
        &ctx,
        "api.abort",
        Some(&id),
        "rollout".into(),
        &reason,
        json!({}),
    )
    .await?;
    let input = Input::Abort {
        by: ctx.caller.name.clone(),
        reason,
    };
    state.control.send(&id, input)?;
    Ok(accepted(&id, "abort", json!({})))
}

pub(super) async fn skip(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    P((id, cluster)): P<(String, String)>,
    Body(b): Body<ReasonBody>,
) -> Result<Json<Value>, ApiError> {
    let r = load(&state, &id)?;
    require_operator(&state, &ctx, "skipping a cluster").await?;
    not_finished(&r)?;
    let cluster = find_cluster(&r, &cluster)?;
    let reason = required("reason", b.reason)?;
    if let Some(c) = r.find(&cluster).map(|c| r.cluster(c))
        && c.status.is_finished()
    {
        return Err(ApiError::conflict(
            "cluster_finished",
            format!("cluster `{}` is already finished", cluster.name),
        ));
    }
    record(
        &state,
        &ctx,
        "api.skip",
        Some(&id),
        cluster.name.clone(),
        &reason,
        json!({}),
    )
    .await?;
    let name = cluster.name.clone();
    let input = Input::Skip {
        cluster,
        by: ctx.caller.name.clone(),
        reason,
    };
    state.control.send(&id, input)?;
    Ok(accepted(&id, "skip", json!({ "cluster": name })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditParams {
    rollout: Option<String>,
    since: Option<i64>,
    limit: Option<usize>,
}

/// Most entries one call returns.
const MAX_AUDIT: usize = 1000;

pub(super) async fn audit(State(state): State<ApiState>, Q(p): Q<AuditParams>) -> Result<Json<Value>, ApiError> {
    let limit = p.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_AUDIT {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("`limit` must be 1..={MAX_AUDIT}"),
        ));
    }
    let q = AuditQuery {
        rollout_id: p.rollout,
        since_id: p.since,
        limit,
    };
    let store = state.store.clone();
    let entries = tokio::task::spawn_blocking(move || store.audit(&q))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let last = entries.last().map(|(id, _)| *id);
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|(id, e)| {
            json!({
                "id": id, "at": e.at, "actor": e.actor, "action": e.action, "rolloutId": e.rollout_id,
                "subject": e.subject, "reason": e.reason, "detail": e.detail,
            })
        })
        .collect();
    Ok(Json(json!({ "entries": entries, "lastId": last })))
}
