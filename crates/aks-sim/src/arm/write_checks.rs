//! The checks every ARM write shares before it acts: eTag preconditions, a JSON body,
//! version fields, and refusals for a stopped cluster or one with an operation running.

use super::{ArmReply, ArmRequest};
use crate::operation::{self};
use crate::version::VersionSpec;
use crate::world::World;
use http::StatusCode;
use serde_json::{Map, Value};

/// Checks `If-Match` / `If-None-Match` against a resource's eTag (412 on mismatch).
pub(super) fn preconditions(r: &ArmRequest<'_>, etag: &str) -> Option<ArmReply> {
    let unquote = |v: &str| v.trim().trim_start_matches("W/").trim_matches('"').to_string();
    if let Some(m) = r.headers.get("if-match").and_then(|v| v.to_str().ok()) {
        let m = unquote(m);
        if m != "*" && m != etag {
            return Some(ArmReply::rp_error(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                format!(
                    "Operation failed: the eTag '{m}' in If-Match does not match the current eTag of the resource."
                ),
            ));
        }
    }
    if let Some(m) = r.headers.get("if-none-match").and_then(|v| v.to_str().ok())
        && unquote(m) == "*"
    {
        return Some(ArmReply::rp_error(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "Operation failed: the resource already exists (If-None-Match: *).",
        ));
    }
    None
}

pub(super) fn parse_body(r: &ArmRequest<'_>) -> Result<Map<String, Value>, ArmReply> {
    match serde_json::from_slice::<Value>(r.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ArmReply::rp_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            "The request content must be a JSON object.",
        )),
        Err(e) => Err(ArmReply::rp_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: {e}"),
        )),
    }
}

pub(super) fn version_field(v: Option<&Value>, field: &str) -> Result<Option<VersionSpec>, ArmReply> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| {
            ArmReply::rp_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                format!("The value '{s}' of parameter '{field}' is not a valid Kubernetes version."),
            )
        }),
        Some(other) => Err(ArmReply::rp_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            format!("Parameter '{field}' must be a string, got {other}."),
        )),
    }
}

pub(super) fn unsupported_version(spec: VersionSpec, region: &str) -> ArmReply {
    ArmReply::rp_error(
        StatusCode::BAD_REQUEST,
        "K8sVersionNotSupported",
        format!(
            "Version {spec} is not supported in this region ({region}). Please use the kubernetesVersions API to find the versions available."
        ),
    )
}

/// AKS refuses every write but start on a stopped cluster (`rules::check_not_stopped`).
pub(super) fn stopped(w: &World, ci: usize) -> Option<ArmReply> {
    let c = &w.clusters[ci];
    crate::rules::check_not_stopped(c.stopped(), &c.subscription, &c.resource_group)
        .err()
        .map(|e| ArmReply::refusal(StatusCode::BAD_REQUEST, &e))
}

/// AKS refuses any write while an operation runs, before it looks at the request.
pub(super) fn busy(w: &World, ci: usize) -> Option<ArmReply> {
    w.clusters[ci].operation.as_ref()?;
    let msg = operation::busy_message(w, ci);
    Some(ArmReply::rp_error(StatusCode::CONFLICT, "OperationNotAllowed", msg))
}
