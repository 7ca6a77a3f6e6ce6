//! Long-running operations as ARM shows them: the `Azure-AsyncOperation` and `Location`
//! URLs and their status endpoints, the 201/202 replies that start an operation, and
//! abort.

use super::{ArmReply, ArmRequest, RP};
use crate::arm_json as j;
use crate::operation::{self, OpStatus, Target};
use crate::shared::Shared;
use crate::world::World;
use http::StatusCode;
use serde_json::json;

// ---------------------------------------------------------------- long-running operations

fn op_urls(shared: &Shared, w: &World, r: &ArmRequest<'_>, ci: usize, id: &str) -> (String, String) {
    let c = &w.clusters[ci];
    let base = format!(
        "{}/subscriptions/{}/providers/{RP}/locations/{}",
        shared.base_url, c.subscription, c.location
    );
    (
        format!("{base}/operations/{id}?api-version={}", r.api_version),
        format!("{base}/operationresults/{id}?api-version={}", r.api_version),
    )
}

/// `Retry-After` for polls: the simulated poll interval in wall-clock time, whole
/// seconds (at least 1) plus `retry-after-ms` for clients that read it.
fn retry_headers(shared: &Shared, w: &World) -> Vec<(&'static str, String)> {
    let real = shared.clock.to_real(w.fleet.durations.poll_interval);
    vec![
        ("Retry-After", real.as_secs_f64().ceil().max(1.0).to_string()),
        ("retry-after-ms", real.as_millis().max(1).to_string()),
    ]
}

/// Adds the long-running-operation headers of operation `id` to `reply`.
pub(super) fn lro_reply(
    shared: &Shared,
    w: &World,
    r: &ArmRequest<'_>,
    ci: usize,
    id: &str,
    mut reply: ArmReply,
    location: bool,
) -> ArmReply {
    let (async_url, loc_url) = op_urls(shared, w, r, ci, id);
    reply.headers.push(("Azure-AsyncOperation", async_url));
    if location {
        reply.headers.push(("Location", loc_url));
    }
    reply.headers.extend(retry_headers(shared, w));
    reply
}

fn find_op<'a>(w: &'a World, r: &ArmRequest<'_>, id: &str) -> Option<&'a operation::Operation> {
    let op = w.ops.get(id)?;
    // An operation is visible only under its own subscription.
    w.clusters[op.cluster]
        .subscription
        .eq_ignore_ascii_case(&r.segments[1])
        .then_some(op)
}

pub(super) fn async_status(shared: &Shared, w: &World, r: &ArmRequest<'_>, id: &str) -> ArmReply {
    let Some(op) = find_op(w, r, id) else {
        return ArmReply::arm_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("Operation {id} was not found"),
        );
    };
    let mut reply = ArmReply::ok(j::operation_status(op));
    if !op.status.is_terminal() {
        reply.headers = retry_headers(shared, w);
    }
    reply
}

pub(super) fn location_status(shared: &Shared, w: &World, r: &ArmRequest<'_>, id: &str) -> ArmReply {
    let Some(op) = find_op(w, r, id) else {
        return ArmReply::arm_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("Operation {id} was not found"),
        );
    };
    match op.status {
        OpStatus::InProgress | OpStatus::Canceling => {
            let (_, loc) = op_urls(shared, w, r, op.cluster, id);
            let mut headers = vec![("Location", loc)];
            headers.extend(retry_headers(shared, w));
            ArmReply {
                status: StatusCode::ACCEPTED,
                headers,
                body: None,
            }
        }
        OpStatus::Succeeded if op.location_returns_resource => {
            let c = &w.clusters[op.cluster];
            match &op.target {
                Target::Pool(p) => match c.pool(p) {
                    Some(pool) => ArmReply::ok(j::agent_pool(c, pool)),
                    None => ArmReply::ok(json!({})),
                },
                Target::Cluster => ArmReply::ok(j::managed_cluster(c)),
            }
        }
        OpStatus::Succeeded => ArmReply::with(StatusCode::NO_CONTENT, None),
        OpStatus::Failed | OpStatus::Canceled => {
            let (code, message) = op
                .error
                .clone()
                .unwrap_or_else(|| ("OperationCanceled".into(), "The operation was canceled.".into()));
            ArmReply::arm_error(StatusCode::BAD_REQUEST, &code, message)
        }
    }
}

pub(super) fn abort(shared: &Shared, w: &mut World, r: &ArmRequest<'_>, ci: usize, target: Target) -> ArmReply {
    // A pool abort only cancels an operation on that pool.
    if let Target::Pool(p) = &target {
        let running_here = w.clusters[ci]
            .operation
            .as_ref()
            .and_then(|id| w.ops.get(id))
            .is_some_and(|op| op.target == Target::Pool(p.clone()));
        if !running_here {
            return ArmReply::with(StatusCode::NO_CONTENT, None);
        }
    }
    match operation::abort(w, ci, target) {
        None => ArmReply::with(StatusCode::NO_CONTENT, None),
        Some(id) => lro_reply(shared, w, r, ci, &id, ArmReply::with(StatusCode::ACCEPTED, None), true),
    }
}
