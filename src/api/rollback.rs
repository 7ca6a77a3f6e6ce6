//! `POST /api/v1/clusters/{cluster}/rollback`: an operator rolls one node pool back to
//! what it had (`ringmaster rollback CLUSTER [--pool NAME]`). Operators only; audited
//! before the call; refused, with AKS's reason, when AKS would refuse it. Not while
//! ringmaster is upgrading the cluster (skip it first): two writers on one cluster is
//! what the engine never allows itself.

use super::ApiState;
use super::auth::Ctx;
use super::error::{ApiError, Body, P};
use super::rollouts::{find_cluster, record, require_operator, required};
use crate::engine::{PoolVersions, Rollout};
use crate::plan::StepKind;
use crate::rollback::RollbackError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RollbackBody {
    pool: Option<String>,
    reason: Option<String>,
}

/// The pools of `cluster` that `r` upgraded, newest step first, with what each had.
fn recorded(r: &Rollout, c: crate::engine::ClusterRef) -> Vec<(String, PoolVersions)> {
    let mut steps: Vec<_> = r
        .cluster(c)
        .steps
        .iter()
        .filter(|s| s.started_at.is_some() && !matches!(s.kind, StepKind::PoolRollback { .. }))
        .filter_map(|s| Some((s.started_at?, s.kind.pool()?.to_string(), s.rollback_to.clone()?)))
        .collect();
    steps.sort_by_key(|s| std::cmp::Reverse(s.0));
    steps.into_iter().map(|(_, p, v)| (p, v)).collect()
}

pub(super) async fn rollback(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    P(key): P<String>,
    Body(b): Body<RollbackBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_operator(&state, &ctx, "rolling a node pool back").await?;
    let reason = required("reason", b.reason)?;
    let arm = state
        .arm
        .clone()
        .ok_or_else(|| ApiError::unavailable("no_arm", "this server has no ARM client"))?;
    // The newest rollout that has the cluster says who it is and what its pools had.
    let mut summaries = state.control.list()?;
    summaries.sort_by_key(|s| std::cmp::Reverse(s.updated_at));
    let mut found = None;
    for s in summaries {
        if let Some(r) = state.control.get(&s.id)?
            && let Ok(id) = find_cluster(&r, &key)
        {
            found = Some((r, id));
            break;
        }
    }
    let (r, id) = found.ok_or_else(|| {
        ApiError::not_found(
            "unknown_cluster",
            format!("no rollout has a cluster `{key}`: ringmaster rolls back pools of clusters it upgraded"),
        )
    })?;
    let cref = r.find(&id).ok_or_else(|| ApiError::internal("cluster vanished"))?;
    if state.control.active().contains(&r.id) && r.cluster(cref).status.is_active() {
        return Err(ApiError::conflict(
            "cluster_busy",
            format!(
                "rollout `{}` is upgrading `{}` now: skip the cluster first (ringmaster skip), then roll it back",
                r.id, id.name
            ),
        ));
    }
    let extra = json!({ "cluster": id.name, "pool": b.pool });
    record(
        &state,
        &ctx,
        "api.rollback",
        Some(&r.id),
        id.name.clone(),
        &reason,
        extra,
    )
    .await?;
    let started = crate::rollback::start(&arm, &id, b.pool.as_deref(), &recorded(&r, cref))
        .await
        .map_err(|e| match e {
            RollbackError::NotFound(m) => ApiError::not_found("unknown_pool", m),
            RollbackError::Refused(m) => ApiError::conflict("rollback_refused", m),
            // AKS refused after all (a race with another writer): its reason, as a refusal.
            RollbackError::Arm(e @ crate::arm::ArmError::Service { status: 400 | 409, .. }) => {
                ApiError::conflict("rollback_refused", e.to_string())
            }
            RollbackError::Arm(e) => ApiError::new(StatusCode::BAD_GATEWAY, "arm_error", e.to_string()),
        })?;
    let what = format!(
        "pool {}: {} / {} -> {} / {}",
        started.pool, started.from_version, started.from_image, started.to_version, started.to_image
    );
    record(
        &state,
        &ctx,
        "pool.rollback_started",
        Some(&r.id),
        id.name.clone(),
        &what,
        json!({}),
    )
    .await?;
    state
        .metrics
        .inc("ringmaster_rollbacks_total", &[("result", "started")]);
    if let Some(op) = started.operation.clone() {
        tokio::spawn(follow(state.clone(), arm, op, r.id.clone(), id.name.clone(), what));
    }
    let mut body = serde_json::to_value(&started).unwrap_or_default();
    body["cluster"] = json!(id.name);
    body["state"] = json!("accepted");
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// Follows AKS's operation and audits how it ended (a restart loses this follow-up;
/// AKS goes on, and the pool shows the outcome).
async fn follow(
    state: ApiState,
    arm: std::sync::Arc<crate::arm::AksClient>,
    op: crate::arm::OperationRef,
    rollout: String,
    cluster: String,
    what: String,
) {
    let (action, result, reason) = match arm.http().wait(&op, |_| {}).await {
        Ok(_) => ("pool.rolled_back", "rolledBack", what),
        Err(e) => ("pool.rollback_failed", "failed", format!("{what}: {e}")),
    };
    state.metrics.inc("ringmaster_rollbacks_total", &[("result", result)]);
    let entry = crate::store::AuditEntry {
        at: state.clock.now(),
        actor: "ringmaster".into(),
        action: action.into(),
        rollout_id: Some(rollout),
        subject: cluster,
        reason,
        detail: json!({}),
    };
    let store = state.store.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || store.append_audit(&entry)).await {
        tracing::warn!(error = %e, "auditing a rollback's end failed");
    }
}
