//! How an operator's decision is made: under the [`OperatorLock`], `unchanged` when the
//! rollout already is as asked, `queued` while the same decision waits for the engine,
//! else recorded, sent, and answered once applied. Apart from the handlers because
//! every decision goes through it the same way.

use super::shared::{load, record};
use crate::api::ApiState;
use crate::api::auth::Ctx;
use crate::api::error::ApiError;
use crate::engine::{Input, Rollout, RolloutStatus, Scope};
use axum::Json;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

/// Serializes operator decisions: two concurrent `pause` calls must not both see the
/// rollout running and both say they paused it. One lock for the API is enough (these
/// calls are rare and short). It holds the decisions sent but not yet applied (answered
/// `queued`), so asking again while the engine is busy is not recorded or sent twice.
#[derive(Clone, Default)]
pub(in crate::api) struct OperatorLock(pub(super) Arc<tokio::sync::Mutex<std::collections::HashSet<String>>>);

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
pub(super) async fn decide(
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
pub(super) fn paused_in(r: &Rollout, scope: &Scope) -> bool {
    match scope {
        Scope::Rollout => matches!(r.status, RolloutStatus::Paused { .. }),
        Scope::Ring(name) => r.rings.iter().any(|x| &x.name == name && x.paused),
        Scope::Cluster(id) => r.find(id).is_some_and(|c| r.cluster(c).paused),
    }
}
