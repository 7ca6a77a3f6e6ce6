//! The operator's decisions on a rollout: start now, end a soak, pause, resume, abort,
//! skip a cluster. Each checks the caller and the rollout, then goes through
//! [`decide`](super::decide::decide). Approvals are in `approvals.rs`.

use super::decide::{OperatorLock, decide, paused_in};
use super::shared::{find_cluster, load, not_finished, record, require_operator, required, ring, ring_state};
use crate::api::ApiState;
use crate::api::auth::Ctx;
use crate::api::error::{ApiError, Body, P};
use crate::engine::{Input, RingStatus, Rollout, Scope};
use crate::service::StartRequest;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct StartBody {
    /// Which policy (required when the daemon runs several).
    policy: Option<String>,
    reason: Option<String>,
}

pub(in crate::api) async fn start(
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct ReasonBody {
    reason: Option<String>,
}

pub(in crate::api) async fn promote_now(
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

/// Pause/resume scope: the whole rollout, one ring, or one cluster.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct ScopeBody {
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

pub(in crate::api) async fn pause(
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

pub(in crate::api) async fn resume(
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

pub(in crate::api) async fn abort(
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

pub(in crate::api) async fn skip(
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
