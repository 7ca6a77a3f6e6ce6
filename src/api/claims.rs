//! Claims and policies as the API shows them: which rollout holds which cluster, who
//! waits for it (`store::claims`), and the policies the daemon runs.
//!
//! An operator may release a claim, audited, only when its holder does not run here (a
//! rollout that ended without letting go, which a correct daemon never leaves, or one
//! from a state file restored beside another). A running holder is asked to skip the
//! cluster instead (`ringmaster skip`): it lets go once its operation there ends, in
//! the same save that records the skip, so nothing ever acts beside a running step.

use super::ApiState;
use super::auth::Ctx;
use super::error::{ApiError, Body};
use super::rollouts::{record, require_operator, required};
use axum::Json;
use axum::extract::{Extension, State};
use serde::Deserialize;
use serde_json::{Value, json};

/// `GET /api/v1/claims`: every claim and every wait, by cluster.
pub(super) async fn list(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let (claims, waits) =
        tokio::task::spawn_blocking(move || Ok::<_, crate::store::StoreError>((store.claims()?, store.claim_waits()?)))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(json!({ "claims": claims, "waits": waits })))
}

/// `GET /api/v1/policies`: the policies in force (and files that do not compile).
pub(super) async fn policies(State(state): State<ApiState>) -> Json<Value> {
    Json(json!({ "policies": state.control.policies() }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReleaseBody {
    /// The cluster's resource path: `subscription/resourceGroup/name`.
    cluster: Option<String>,
    reason: Option<String>,
}

/// `POST /api/v1/claims/release` (operators).
pub(super) async fn release(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Body(b): Body<ReleaseBody>,
) -> Result<Json<Value>, ApiError> {
    require_operator(&state, &ctx, "releasing a claim").await?;
    let cluster = required("cluster", b.cluster)?;
    let reason = required("reason", b.reason)?;
    let store = state.store.clone();
    let claims = tokio::task::spawn_blocking(move || store.claims())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let key = crate::store::claims::key(&cluster);
    let Some(claim) = claims.into_iter().find(|c| c.cluster == key) else {
        return Err(ApiError::not_found(
            "unknown_claim",
            format!(
                "nobody holds `{cluster}` (GET /api/v1/claims lists the claims; a cluster is named subscription/resourceGroup/name)"
            ),
        ));
    };
    if state.control.active().contains(&claim.rollout_id) {
        return Err(ApiError::conflict(
            "holder_running",
            format!(
                "rollout `{}` runs here and holds the cluster ({}): skip the cluster in it instead (`ringmaster skip --rollout {} ...`); it lets go once its operation there ends",
                claim.rollout_id, claim.doing, claim.rollout_id
            ),
        ));
    }
    record(
        &state,
        &ctx,
        "claim.released",
        Some(&claim.rollout_id),
        key.clone(),
        &reason,
        json!({ "cluster": key, "holder": claim.rollout_id }),
    )
    .await?;
    let store = state.store.clone();
    let released = tokio::task::spawn_blocking(move || store.release_claim(&key))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(json!({ "released": released })))
}
