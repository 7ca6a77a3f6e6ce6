//! The dashboard: a page, a script and a stylesheet embedded in the binary (no CDN, no
//! build step), and the sign-in that turns a token into a session cookie.
//!
//! Why a static page over the JSON API rather than server-rendered templates: the page
//! reads exactly what scripts and the CLI read (`/summary`, paged `/clusters`, the
//! audit log, `/api/v1/events`), so there is one API to secure, test and keep in the
//! OpenAPI document, and the browser builds its DOM with `textContent` only (nothing a
//! cluster name or a comment holds can become markup). The Content-Security-Policy
//! allows scripts and styles from this origin only, and no inline ones.

use super::ApiState;
use super::error::{ApiError, Body};
use super::sampled::record_denied;
use super::session::{self, Issued};
use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::HeaderMap;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

const INDEX: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/app.css");
const ICON: &str = include_str!("ui/icon.svg");

/// The page's policy: this origin's scripts, styles and API only; no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

pub(super) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub(super) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

pub(super) async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignIn {
    token: Option<String>,
}

fn who(state: &ApiState, ctx_caller: &super::Caller, csrf: &str) -> serde_json::Value {
    json!({
        "signedIn": true,
        "name": ctx_caller.name,
        "groups": ctx_caller.groups,
        "operator": state.auth.is_operator(ctx_caller),
        "csrf": csrf,
        "entraSignIn": state.auth.sign_in().is_some(),
    })
}

/// `POST /api/v1/session`: a token in, a session cookie out (and the CSRF token the
/// page sends with every change). A refused token is audited as any refused call.
pub(super) async fn sign_in(State(state): State<ApiState>, req: Request) -> Result<Response, ApiError> {
    let peer = super::server::peer(&req);
    let Body(body) = Body::<SignIn>::from_request(req, &state).await?;
    let token = super::rollouts::required("token", body.token)?;
    let header = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
        .map_err(|_| ApiError::bad_request("bad_token", "the token is not printable text"))?;
    let caller = match state.auth.authenticate(Some(&header)).await {
        Ok(c) => c,
        Err(d) => {
            record_denied(&state, &d, &peer, "POST", "/api/v1/session").await;
            return Err(ApiError::new(d.status, d.code, d.message));
        }
    };
    let (Issued { id, csrf }, evicted) = state.sessions.create(caller.clone()).map_err(|e| match e {
        session::CreateError::Full => ApiError::unavailable("sessions_full", e.to_string()),
        session::CreateError::Random(_) => ApiError::internal(e.to_string()),
    })?;
    let how = if evicted {
        "signed in with a token (the caller's oldest session ended)"
    } else {
        "signed in with a token"
    };
    super::sampled::record_session(
        &state,
        "session.created",
        &caller,
        &peer,
        ("POST", "/api/v1/session"),
        how,
    )
    .await;
    let mut r = (StatusCode::CREATED, Json(who(&state, &caller, &csrf))).into_response();
    let cookie = session::set_cookie(Some(&id), state.secure_cookies);
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    Ok(r)
}

/// `GET /api/v1/session`: who this session is and its CSRF token (the page reads it
/// after a reload; another site's page cannot read it), or `{"signedIn": false}`.
/// Public, so that a page opened before sign-in gets an answer and not an error.
pub(super) async fn current(State(state): State<ApiState>, headers: HeaderMap) -> Json<serde_json::Value> {
    match session::cookie_value(&headers).and_then(|id| state.sessions.get(&id)) {
        Some((caller, csrf)) => Json(who(&state, &caller, &csrf)),
        None => Json(json!({ "signedIn": false, "entraSignIn": state.auth.sign_in().is_some() })),
    }
}

/// `DELETE /api/v1/session`: signs out (the cookie is cleared and forgotten).
pub(super) async fn sign_out(State(state): State<ApiState>, req: Request) -> Response {
    let peer = super::server::peer(&req);
    if let Some(caller) = session::cookie_value(req.headers()).and_then(|id| state.sessions.remove(&id)) {
        super::sampled::record_session(
            &state,
            "session.ended",
            &caller,
            &peer,
            ("DELETE", "/api/v1/session"),
            "signed out",
        )
        .await;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(None, state.secure_cookies)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}
