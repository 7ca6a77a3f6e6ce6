//! Rollouts: reading them, and the operator's decisions (pause, resume, abort, skip,
//! end a soak, start now). Approvals are in `approvals.rs`.
//!
//! Every decision follows the same order: load the rollout (404), check the caller's
//! groups (403, audited), check the rollout can take it (409), write the request to the
//! audit log, then send the input to the engine. A refused call has changed nothing, and
//! an accepted one is in the log before the engine sees it.

use super::ApiState;
use super::approvals::Deciders;
use super::auth::{Ctx, forbid};
use super::error::{ApiError, Body, P, Q};
use crate::domain::fleet::ClusterId;
use crate::engine::{Input, RingRun, RingStatus, Rollout, RolloutStatus, Scope};
use crate::service::StartRequest;
use crate::store::{AuditEntry, AuditQuery};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

/// The rollout, or 404.
pub(super) fn load(state: &ApiState, id: &str) -> Result<Rollout, ApiError> {
    state
        .control
        .get(id)?
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

pub(super) fn required(field: &'static str, v: Option<String>) -> Result<String, ApiError> {
    match v.map(|s| s.trim().to_string()) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(ApiError::bad_request("missing_field", format!("`{field}` is required"))),
    }
}

/// Serializes operator decisions: two concurrent `pause` calls must not both see the
/// rollout running and both say they paused it. One lock for the API is enough (these
/// calls are rare and short). It holds the decisions sent but not yet applied (answered
/// `queued`), so asking again while the engine is busy is not recorded or sent twice.
#[derive(Clone, Default)]
pub(super) struct OperatorLock(Arc<tokio::sync::Mutex<std::collections::HashSet<String>>>);

/// How long a decision waits (wall clock) for the engine to apply it before answering
/// `queued` (the engine is busy or cannot persist; the input stays in its queue).
const APPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits until the rollout satisfies `done`; the rollout as last seen, and whether it did.
async fn wait_applied(
    state: &ApiState,
    id: &str,
    done: impl Fn(&Rollout) -> bool,
) -> Result<(Rollout, bool), ApiError> {
    let deadline = tokio::time::Instant::now() + APPLY_WAIT;
    loop {
        let r = load(state, id)?;
        if done(&r) {
            return Ok((r, true));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok((r, false));
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The answer to a decision: what happened (`applied`, `unchanged`: it was so already,
/// or `queued`: sent, not applied yet) and the rollout's state now.
fn outcome(r: &Rollout, action: &str, result: &str, extra: Value) -> (StatusCode, Json<Value>) {
    let status = if result == "queued" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let mut v = json!({
        "rolloutId": r.id,
        "action": action,
        "result": result,
        "accepted": result != "unchanged",
        "status": r.status,
    });
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    (status, Json(v))
}

/// Answers `unchanged` when the rollout is already as asked, `queued` when the same
/// decision was sent and is not applied yet; else records the decision, sends it, and
/// answers once the engine applied it (or `queued` after [`APPLY_WAIT`]). Called with
/// the [`OperatorLock`] held; `pending` is what it guards.
#[allow(clippy::too_many_arguments)]
async fn decide(
    state: &ApiState,
    ctx: &Ctx,
    pending: &mut std::collections::HashSet<String>,
    id: &str,
    action: &str,
    subject: String,
    reason: &str,
    input: Input,
    extra: Value,
    done: impl Fn(&Rollout) -> bool,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = format!("{id}\n{action}\n{subject}");
    let r = load(state, id)?;
    if done(&r) {
        pending.remove(&key);
        return Ok(outcome(&r, action, "unchanged", extra));
    }
    if pending.contains(&key) {
        return Ok(outcome(&r, action, "queued", extra));
    }
    let audit_action = format!("api.{}", action.replace('-', "_"));
    record(state, ctx, &audit_action, Some(id), subject, reason, json!({})).await?;
    state.control.send(id, input)?;
    let (r, applied) = wait_applied(state, id, done).await?;
    if applied {
        pending.remove(&key);
    } else {
        pending.insert(key);
    }
    Ok(outcome(&r, action, if applied { "applied" } else { "queued" }, extra))
}

/// Whether `scope` is paused in `r`.
fn paused_in(r: &Rollout, scope: &Scope) -> bool {
    match scope {
        Scope::Rollout => matches!(r.status, RolloutStatus::Paused { .. }),
        Scope::Ring(name) => r.rings.iter().any(|x| &x.name == name && x.paused),
        Scope::Cluster(id) => r.find(id).is_some_and(|c| r.cluster(c).paused),
    }
}

pub(super) async fn list(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "rollouts": state.control.list()?, "active": state.control.active(), "policies": state.control.policies() }),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StartBody {
    /// Which policy (required when the daemon runs several).
    policy: Option<String>,
    reason: Option<String>,
}

pub(super) async fn start(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Body(b): Body<StartBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_operator(&state, &ctx, "starting a rollout").await?;
    let policy = b.policy.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let reason = b.reason.unwrap_or_default();
    // The request is checked, then recorded, then queued: no start without its audit
    // entry, and no audit entry for a start that was refused.
    state.control.can_start(policy)?;
    let subject = policy.map_or("rollout".to_string(), |p| format!("policy {p}"));
    record(
        &state,
        &ctx,
        "api.start",
        None,
        subject,
        &reason,
        json!({ "policy": policy }),
    )
    .await?;
    Ok(match state.control.start_now(&ctx.caller.name, policy)? {
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
    may_approve: bool,
}

/// The full status of a rollout, serialized straight from its state: at 1,000 clusters
/// it is most of a megabyte, so no intermediate JSON tree is built.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusView<'a> {
    id: &'a str,
    policy: &'a str,
    policy_file: &'a str,
    status: &'a crate::engine::RolloutStatus,
    target: &'a crate::plan::ResolvedTarget,
    approval_target: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    seq: u64,
    rings: Vec<RingView<'a>>,
    skipped: &'a [crate::plan::Skipped],
    forecast: Option<&'a crate::engine::ForecastRecord>,
    eta: Option<Arc<crate::forecast::Eta>>,
}

/// The running rollout's ETA (`docs/forecast.md`), from the policy it started with.
pub(super) fn eta(state: &ApiState, r: &Rollout) -> Option<crate::forecast::Eta> {
    let policy = crate::policy::compile(&r.policy_file, &r.policy_text).ok()?;
    let settings = crate::engine::Settings::from_policy(&policy);
    crate::forecast::eta(r, &settings, state.clock.now())
}

pub(super) async fn show(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    P(id): P<String>,
) -> Result<Response, ApiError> {
    let r = load(&state, &id)?;
    let eta = super::live::eta(&state, &r).await;
    // Serializing most of a megabyte is CPU work: off the async workers, so that event
    // streams and small calls are not kept waiting behind it.
    let body = tokio::task::spawn_blocking(move || {
        let rings = r
            .rings
            .iter()
            .enumerate()
            .map(|(ri, run)| {
                let d = Deciders::of(&state, &r, ri, &ctx.caller);
                RingView {
                    run,
                    approval_expires_after_seconds: d.expires_after_seconds(),
                    approvers: d.approvers,
                    may_approve: d.may_approve,
                }
            })
            .collect();
        serde_json::to_vec(&StatusView {
            id: &r.id,
            policy: &r.plan.policy,
            policy_file: &r.policy_file,
            status: &r.status,
            target: &r.plan.target,
            approval_target: approval_target(&r),
            created_at: r.created_at,
            updated_at: r.updated_at,
            seq: r.seq,
            rings,
            skipped: &r.plan.skipped,
            forecast: r.forecast.as_deref(),
            eta,
        })
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReasonBody {
    reason: Option<String>,
}

pub(super) async fn promote_now(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(lock): Extension<OperatorLock>,
    P((id, ring_name)): P<(String, String)>,
    Body(b): Body<ReasonBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let r = load(&state, &id)?;
    ring(&r, &ring_name)?;
    require_operator(&state, &ctx, "ending a soak early").await?;
    let reason = required("reason", b.reason)?;
    let mut pending = lock.0.lock().await;
    let r = load(&state, &id)?;
    not_finished(&r)?;
    let (ri, run) = ring(&r, &ring_name)?;
    if !matches!(run.status, RingStatus::Soaking { .. }) {
        return Err(ApiError::conflict(
            "not_soaking",
            format!("ring `{ring_name}` is not soaking (it is {})", ring_state(&run.status)),
        ));
    }
    let input = Input::PromoteNow {
        ring: ring_name.clone(),
        by: ctx.caller.name.clone(),
        reason: reason.clone(),
    };
    let now = state.clock.now();
    decide(
        &state,
        &ctx,
        &mut pending,
        &id,
        "promote-now",
        ring_name.clone(),
        &reason,
        input,
        json!({ "ring": ring_name }),
        move |r| match r.rings.get(ri).map(|x| &x.status) {
            Some(RingStatus::Soaking { until }) => until <= &now,
            _ => true,
        },
    )
    .await
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
    Extension(lock): Extension<OperatorLock>,
    P(id): P<String>,
    Body(b): Body<ScopeBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let r = load(&state, &id)?;
    require_operator(&state, &ctx, "pausing").await?;
    let mut pending = lock.0.lock().await;
    let r = load(&state, &r.id)?;
    not_finished(&r)?;
    let scope = scope(&r, &b)?;
    let subject = scope_name(&scope);
    let reason = b.reason.unwrap_or_default();
    let input = Input::Pause {
        scope: scope.clone(),
        by: ctx.caller.name.clone(),
        reason: reason.clone(),
    };
    let extra = json!({ "scope": subject });
    decide(
        &state,
        &ctx,
        &mut pending,
        &id,
        "pause",
        subject,
        &reason,
        input,
        extra,
        move |r| paused_in(r, &scope) || r.status.is_terminal(),
    )
    .await
}

pub(super) async fn resume(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(lock): Extension<OperatorLock>,
    P(id): P<String>,
    Body(b): Body<ScopeBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let r = load(&state, &id)?;
    require_operator(&state, &ctx, "resuming").await?;
    let mut pending = lock.0.lock().await;
    let r = load(&state, &r.id)?;
    not_finished(&r)?;
    let scope = scope(&r, &b)?;
    let subject = scope_name(&scope);
    let reason = b.reason.unwrap_or_default();
    let input = Input::Resume {
        scope: scope.clone(),
        by: ctx.caller.name.clone(),
    };
    let extra = json!({ "scope": subject });
    decide(
        &state,
        &ctx,
        &mut pending,
        &id,
        "resume",
        subject,
        &reason,
        input,
        extra,
        move |r| !paused_in(r, &scope) || r.status.is_terminal(),
    )
    .await
}

pub(super) async fn abort(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(lock): Extension<OperatorLock>,
    P(id): P<String>,
    Body(b): Body<ReasonBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let r = load(&state, &id)?;
    require_operator(&state, &ctx, "aborting").await?;
    let reason = required("reason", b.reason)?;
    let mut pending = lock.0.lock().await;
    let r = load(&state, &r.id)?;
    not_finished(&r)?;
    let input = Input::Abort {
        by: ctx.caller.name.clone(),
        reason: reason.clone(),
    };
    decide(
        &state,
        &ctx,
        &mut pending,
        &id,
        "abort",
        "rollout".into(),
        &reason,
        input,
        json!({}),
        |r| r.status.is_terminal(),
    )
    .await
}

pub(super) async fn skip(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Extension(lock): Extension<OperatorLock>,
    P((id, cluster)): P<(String, String)>,
    Body(b): Body<ReasonBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let r = load(&state, &id)?;
    require_operator(&state, &ctx, "skipping a cluster").await?;
    let reason = required("reason", b.reason)?;
    let mut pending = lock.0.lock().await;
    let r = load(&state, &r.id)?;
    not_finished(&r)?;
    let cluster = find_cluster(&r, &cluster)?;
    if let Some(c) = r.find(&cluster).map(|c| r.cluster(c))
        && c.status.is_finished()
    {
        return Err(ApiError::conflict(
            "cluster_finished",
            format!("cluster `{}` is already finished", cluster.name),
        ));
    }
    let name = cluster.name.clone();
    let input = Input::Skip {
        cluster: cluster.clone(),
        by: ctx.caller.name.clone(),
        reason: reason.clone(),
    };
    decide(
        &state,
        &ctx,
        &mut pending,
        &id,
        "skip",
        name.clone(),
        &reason,
        input,
        json!({ "cluster": name }),
        move |r| r.status.is_terminal() || r.find(&cluster).is_none_or(|c| r.cluster(c).status.is_finished()),
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditParams {
    rollout: Option<String>,
    since: Option<i64>,
    /// The newest entries before this id (the next page back from a tail).
    before: Option<i64>,
    limit: Option<usize>,
    ring: Option<String>,
    cluster: Option<String>,
    actor: Option<String>,
}

/// Most entries one call returns.
const MAX_AUDIT: usize = 1000;
/// Most bytes of entries one call returns (one entry always, however large): a page
/// of old rows with 64 KiB paths was 59 MB in one answer.
const MAX_AUDIT_BYTES: usize = 1024 * 1024;

/// A page of the audit log. `since` pages forward (oldest first, `nextSince` for the next
/// page); without it, the newest entries. `more` says a page was cut by `limit` or by
/// the byte budget.
pub(super) async fn audit(State(state): State<ApiState>, Q(p): Q<AuditParams>) -> Result<Json<Value>, ApiError> {
    let limit = p.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_AUDIT {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("`limit` must be 1..={MAX_AUDIT}"),
        ));
    }
    if p.since.is_some() && p.before.is_some() {
        return Err(ApiError::bad_request("bad_query", "give `since` or `before`, not both"));
    }
    let forward = p.since.is_some();
    let q = AuditQuery {
        rollout_id: p.rollout,
        since_id: p.since,
        limit,
        filter: crate::store::AuditFilter {
            ring: p.ring,
            cluster: p.cluster,
            actor: p.actor,
            before_id: p.before,
        },
    };
    let store = state.store.clone();
    let entries = tokio::task::spawn_blocking(move || store.audit(&q))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let full = entries.len() == limit;
    let mut values: Vec<(i64, Value)> = entries
        .into_iter()
        .map(|(id, e)| {
            let v = json!({
                "id": id, "at": e.at, "actor": e.actor, "action": e.action, "rolloutId": e.rollout_id,
                "subject": e.subject, "reason": e.reason, "detail": e.detail,
            });
            (id, v)
        })
        .collect();
    if !forward {
        values.reverse();
    }
    let (mut kept, mut bytes, mut cut) = (Vec::new(), 0usize, false);
    for (id, v) in values {
        let size = v.to_string().len();
        if !kept.is_empty() && bytes + size > MAX_AUDIT_BYTES {
            cut = true;
            break;
        }
        bytes += size;
        kept.push((id, v));
    }
    if !forward {
        kept.reverse();
    }
    let last = kept.last().map(|(id, _)| *id);
    let first = kept.first().map(|(id, _)| *id);
    let entries: Vec<Value> = kept.into_iter().map(|(_, v)| v).collect();
    Ok(Json(json!({
        "entries": entries,
        "lastId": last,
        "firstId": first,
        "nextSince": last,
        "more": full || cut,
    })))
}
