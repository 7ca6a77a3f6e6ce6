//! Reading rollouts: the list, and one rollout's full status (serialized straight from
//! its state, with who may approve each ring and its ETA).

use super::shared::{approval_target, load};
use crate::api::ApiState;
use crate::api::approvals::Deciders;
use crate::api::auth::Ctx;
use crate::api::error::{ApiError, P};
use crate::engine::{RingRun, Rollout};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub(in crate::api) async fn list(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "rollouts": state.control.list()?, "active": state.control.active(), "policies": state.control.policies() }),
    ))
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
pub(in crate::api) fn eta(state: &ApiState, r: &Rollout) -> Option<crate::forecast::Eta> {
    let policy = crate::policy::compile(&r.policy_file, &r.policy_text).ok()?;
    let settings = crate::engine::Settings::from_policy(&policy);
    crate::forecast::eta(r, &settings, state.clock.now())
}

pub(in crate::api) async fn show(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    P(id): P<String>,
) -> Result<Response, ApiError> {
    let r = load(&state, &id)?;
    let eta = crate::api::live::eta(&state, &r).await;
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
