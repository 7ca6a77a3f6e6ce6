//! The ARM route group (`/subscriptions/...`): authentication, api-version checks,
//! throttling and injected faults around `arm::dispatch`, the request log, and how an ARM
//! answer becomes an HTTP response.

use super::routes::{json_response, query_pairs};
use super::{Ctx, DropConnection};
use crate::arm::{self, ArmReply, ArmRequest};
use crate::auth::{self, ARM_AUDIENCE, TokenProblem};
use crate::fleet::{FaultKind, ServerErrorKind};
use crate::shared::Shared;
use crate::throttle::Take;
use crate::world::{World, WriteRecord};
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use serde_json::json;
use std::time::Duration;
use tracing::{debug, info, warn};

pub(super) fn reply_to_response(reply: ArmReply, request_id: &str) -> Response {
    let mut r = match &reply.body {
        Some(b) => json_response(reply.status, b),
        None => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = reply.status;
            r
        }
    };
    let h = r.headers_mut();
    for (k, v) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-ms-request-id", v.clone());
        h.insert("x-ms-correlation-request-id", v);
    }
    r
}

pub(super) fn unauthorized(problem: TokenProblem, tenant: &str, base: &str) -> ArmReply {
    let (code, msg) = match problem {
        TokenProblem::Missing => (
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        ),
        TokenProblem::Invalid => ("InvalidAuthenticationToken", "The access token is invalid."),
        TokenProblem::Expired => (
            "ExpiredAuthenticationToken",
            "The access token expiry UTC time is earlier than current UTC time.",
        ),
        TokenProblem::WrongAudience => (
            "InvalidAuthenticationTokenAudience",
            "The access token has been obtained for wrong audience or resource.",
        ),
    };
    let mut r = ArmReply::arm_error(StatusCode::UNAUTHORIZED, code, msg);
    r.headers.push((
        "WWW-Authenticate",
        format!("Bearer authorization_uri=\"{base}/{tenant}\", error=\"invalid_token\", error_description=\"{msg}\""),
    ));
    r
}

pub(super) async fn read_body(req: Request) -> Result<(http::request::Parts, Bytes), Response> {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, 4 << 20).await {
        Ok(b) => Ok((parts, b)),
        Err(_) => Err(json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({"error": {"code": "RequestTooLarge", "message": "The request body is too large."}}),
        )),
    }
}

pub(super) async fn arm_entry(ctx: &Ctx, req: Request, segments: Vec<String>) -> Response {
    let shared = &ctx.shared;
    let (parts, body) = match read_body(req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let query = query_pairs(parts.uri.query());
    let mut w = shared.world();
    let request_id = w.rng.guid();
    let api_version = query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("api-version"))
        .map(|(_, v)| v.clone());
    let Some(api_version) = api_version else {
        let r = ArmReply::arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
        return reply_to_response(r, &request_id);
    };
    if !valid_api_version(&api_version) {
        let r = ArmReply::arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{api_version}' is invalid. The supported format is 'YYYY-MM-DD' or 'YYYY-MM-DD-preview'."
            ),
        );
        return reply_to_response(r, &request_id);
    }
    let principal = match shared.tokens().check(auth::bearer(&parts.headers), ARM_AUDIENCE) {
        Ok(p) => p,
        Err(problem) => {
            info!(method = %parts.method, path = %parts.uri.path(), status = 401, "ARM request refused: {problem:?}");
            return reply_to_response(unauthorized(problem, &shared.tenant_id, &shared.base_url), &request_id);
        }
    };
    if segments.len() == 1 && parts.method == Method::GET {
        // `GET /subscriptions`: what this principal can see.
        let value: Vec<serde_json::Value> = w
            .fleet
            .subscriptions
            .iter()
            .map(|s| json!({ "id": format!("/subscriptions/{s}"), "subscriptionId": s, "displayName": format!("simulated {}", &s[..8.min(s.len())]), "state": "Enabled", "tenantId": shared.tenant_id }))
            .collect();
        return reply_to_response(ArmReply::ok(json!({ "value": value })), &request_id);
    }
    let sub = segments.get(1).cloned().unwrap_or_default();
    if !w.has_subscription(&sub) {
        let r = ArmReply::arm_error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{sub}' could not be found."),
        );
        return reply_to_response(r, &request_id);
    }
    let write = parts.method != Method::GET && parts.method != Method::HEAD;
    w.last_started = None;
    w.last_rollback = None;
    let resp = arm_answer(
        ctx,
        &mut w,
        &parts,
        &body,
        segments,
        query,
        api_version,
        principal,
        &request_id,
    );
    if write {
        let record = WriteRecord {
            at: w.now,
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            status: resp.status().as_u16(),
            body: serde_json::from_slice(&body).ok(),
            dropped: resp.extensions().get::<DropConnection>().is_some(),
            operation: w.last_started.take(),
            rollback_to: w.last_rollback.take(),
        };
        w.writes.push(record);
        shared.writes_logged.send_replace(w.writes.len());
    }
    drop(w);
    shared.wake.notify_one();
    resp
}

/// The answer to an authenticated ARM request to a known subscription: injected
/// faults, throttling, then the resource provider.
#[allow(clippy::too_many_arguments)]
fn arm_answer(
    ctx: &Ctx,
    w: &mut World,
    parts: &http::request::Parts,
    body: &Bytes,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    api_version: String,
    principal: String,
    request_id: &str,
) -> Response {
    let shared = &ctx.shared;
    let sub = segments.get(1).cloned().unwrap_or_default();
    let write = parts.method != Method::GET && parts.method != Method::HEAD;
    // Faults that answer before the request is processed.
    let mut drop_after = false;
    let storm = w.active_faults().any(|f| matches!(&f.what, FaultKind::ThrottleStorm { subscription } if subscription.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(&sub))));
    if storm {
        return throttled(shared, w, Duration::from_secs(5), request_id, write);
    }
    let server_fault = w.active_faults().find_map(|f| match f.what {
        FaultKind::ServerErrors { rate, status } => Some((rate, status)),
        _ => None,
    });
    if let Some((rate, status)) = server_fault
        && w.rng.unit() < rate
    {
        match status {
            ServerErrorKind::Drop => drop_after = true,
            s => {
                let (code, st) = if s == ServerErrorKind::Status503 {
                    ("ServiceUnavailable", StatusCode::SERVICE_UNAVAILABLE)
                } else {
                    ("InternalServerError", StatusCode::INTERNAL_SERVER_ERROR)
                };
                warn!(method = %parts.method, path = %parts.uri.path(), status = st.as_u16(), "injected server error");
                return reply_to_response(
                    ArmReply::arm_error(st, code, "An internal error occurred (injected fault)."),
                    request_id,
                );
            }
        }
    }
    let bucket = if write { w.fleet.arm.writes } else { w.fleet.arm.reads };
    let now = w.now;
    let take = ctx
        .throttle
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take(&sub, &principal, write, bucket, now);
    let remaining = match take {
        Take::Allowed { remaining } => remaining,
        Take::Throttled { retry_after } => return throttled(shared, w, retry_after, request_id, write),
    };
    let r = ArmRequest {
        method: &parts.method,
        segments,
        query,
        headers: &parts.headers,
        body,
        api_version,
    };
    let mut reply = arm::dispatch(shared, w, &r);
    let header = if write {
        "x-ms-ratelimit-remaining-subscription-writes"
    } else {
        "x-ms-ratelimit-remaining-subscription-reads"
    };
    reply.headers.push((header, remaining.to_string()));
    if write {
        info!(method = %parts.method, path = %parts.uri.path(), status = reply.status.as_u16(), "ARM write");
    } else {
        debug!(method = %parts.method, path = %parts.uri.path(), status = reply.status.as_u16(), "ARM read");
    }
    let mut resp = reply_to_response(reply, request_id);
    if drop_after {
        warn!(method = %parts.method, path = %parts.uri.path(), "dropping the connection after processing (injected fault)");
        resp.extensions_mut().insert(DropConnection);
    }
    resp
}

fn throttled(shared: &Shared, w: &World, retry_after_sim: Duration, request_id: &str, write: bool) -> Response {
    let real = shared.clock.to_real(retry_after_sim);
    let kind = if write { "writes" } else { "reads" };
    let mut r = ArmReply::arm_error(
        StatusCode::TOO_MANY_REQUESTS,
        "SubscriptionRequestsThrottled",
        format!(
            "Number of '{kind}' requests for subscription exceeded the limit. Please try again after '{}' seconds.",
            real.as_secs_f64().ceil().max(1.0)
        ),
    );
    r.headers
        .push(("Retry-After", real.as_secs_f64().ceil().max(1.0).to_string()));
    r.headers.push(("retry-after-ms", real.as_millis().max(1).to_string()));
    r.headers.push(if write {
        ("x-ms-ratelimit-remaining-subscription-writes", "0".into())
    } else {
        ("x-ms-ratelimit-remaining-subscription-reads", "0".into())
    });
    let _ = w;
    debug!(kind, "ARM request throttled");
    reply_to_response(r, request_id)
}

fn valid_api_version(v: &str) -> bool {
    let date = v.strip_suffix("-preview").unwrap_or(v);
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok() && date.len() == 10
}
