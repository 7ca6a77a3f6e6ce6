//! `GET /api/v1/audit`: a page of the audit log, forward from `since` or back from the
//! newest (or `before`), cut by a count and a byte budget.

use crate::api::ApiState;
use crate::api::error::{ApiError, Q};
use crate::store::AuditQuery;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct AuditParams {
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
pub(in crate::api) async fn audit(
    State(state): State<ApiState>,
    Q(p): Q<AuditParams>,
) -> Result<Json<Value>, ApiError> {
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
