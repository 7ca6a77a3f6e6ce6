//! The audit rows of refusals, sign-ins and sign-outs: counted and sampled by
//! [`super::denials::DenialLog`] (pure), written here (the store, off the async
//! threads). A failing store is logged, never returned: the caller is refused (or
//! signed in) either way.

use super::ApiState;
use super::auth::{Caller, Denied};
use super::denials::Denial;
use crate::store::AuditEntry;
use axum::http::StatusCode;

/// Records a failed authentication of `method path` from `peer` (see [`record_denial`]).
pub(crate) async fn record_denied(state: &ApiState, d: &Denied, peer: &str, method: &str, path: &str) {
    record_denial(
        state,
        d.actor.as_deref(),
        peer,
        method,
        path,
        d.status,
        &d.message,
        serde_json::json!({ "code": d.code }),
    )
    .await;
}

/// Counts a refusal and appends what [`super::denials::DenialLog`] says to keep (the
/// first of its source and reason this minute). A failing store is logged, not
/// returned: the caller is refused either way.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_denial(
    state: &ApiState,
    actor: Option<&str>,
    peer: &str,
    method: &str,
    path: &str,
    status: StatusCode,
    reason: &str,
    extra: serde_json::Value,
) {
    state
        .metrics
        .inc("ringmaster_api_denied_total", &[("status", status.as_str())]);
    sample(
        state,
        Denial {
            action: "auth.denied",
            actor: actor.map(str::to_string),
            peer: peer.to_string(),
            method: method.to_string(),
            path: path.to_string(),
            status: status.as_u16(),
            reason: reason.to_string(),
            extra,
        },
    )
    .await;
}

/// Records a dashboard sign-in (`session.created`, by `method path`: the token's POST or
/// Entra's callback) or sign-out (`session.ended`) of `caller`, sampled like refusals:
/// a flood of sign-ins is a count, not a row each.
pub(crate) async fn record_session(
    state: &ApiState,
    action: &'static str,
    caller: &Caller,
    peer: &str,
    (method, path): (&str, &str),
    how: &str,
) {
    sample(
        state,
        Denial {
            action,
            actor: Some(caller.name.clone()),
            peer: peer.to_string(),
            method: method.to_string(),
            path: path.to_string(),
            status: 0,
            reason: how.to_string(),
            extra: serde_json::json!({ "groups": caller.groups }),
        },
    )
    .await;
}

/// Counts `event` on the wall clock and appends the rows [`super::denials::DenialLog`]
/// keeps. The wall clock: sampling is a rate limit, and a rehearsal's fast clock would
/// make its minute a fraction of a second.
async fn sample(state: &ApiState, event: Denial) {
    let rows = state.denials.record(chrono::Utc::now(), &event);
    write_denial_rows(state, rows).await;
}

/// Appends refusal rows (none most of the time).
pub(crate) async fn write_denial_rows(state: &ApiState, rows: Vec<AuditEntry>) {
    if rows.is_empty() {
        return;
    }
    let store = state.store.clone();
    let written =
        tokio::task::spawn_blocking(move || rows.iter().try_for_each(|e| store.append_audit(e).map(|_| ()))).await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "could not audit a refused call"),
        Err(e) => tracing::error!(error = %e, "could not audit a refused call"),
    }
}
