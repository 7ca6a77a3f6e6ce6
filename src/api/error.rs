//! The API's one error shape, `{"error": {"code", "message"}}`, and extractors whose
//! rejections use it: a client (the CLI, a script) handles every refusal the same way,
//! whether axum, authentication or a handler refused.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// A refused or failed call. `code` is stable (scripts match on it); `message` is for
/// people and never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// For 401: the `WWW-Authenticate` challenge (RFC 6750).
    pub challenge: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            challenge: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "state store call failed");
        ApiError::unavailable("store_unavailable", format!("the state store failed: {e}"))
    }
}

impl From<crate::service::ControlError> for ApiError {
    fn from(e: crate::service::ControlError) -> Self {
        use crate::service::ControlError as E;
        let code = match &e {
            E::UnknownRollout(_) => return ApiError::not_found("unknown_rollout", e.to_string()),
            E::UnknownPolicy { .. } => return ApiError::not_found("unknown_policy", e.to_string()),
            E::PolicyRequired(_) => return ApiError::bad_request("policy_required", e.to_string()),
            E::NotRunning(_) => "not_running",
            E::AlreadyRunning(_) => "already_running",
            E::CannotStart(_) => "cannot_start",
            E::Store(_) => {
                tracing::error!(error = %e, "reading the state file failed");
                return ApiError::unavailable("store_unavailable", e.to_string());
            }
        };
        ApiError::conflict(code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(c) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        response
    }
}

/// A JSON request body; an empty body is `T::default()` (every field of every body is
/// optional or checked by the handler, so `curl -X POST` without `-d` works), unknown
/// fields are refused (a typo like `{"reson": ..}` should not pass silently).
///
/// A body must arrive within the server's body timeout (408), be at most its body limit
/// (413) and, when not empty, say `Content-Type: application/json` (415): a form or
/// text body is not parsed as JSON by accident.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<super::ApiState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &super::ApiState) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(is_json);
        let limits = state.limits;
        let bytes = tokio::time::timeout(limits.body_timeout, axum::body::Bytes::from_request(req, state))
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    format!(
                        "the request body did not arrive within {} s",
                        limits.body_timeout.as_secs()
                    ),
                )
            })?
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        format!("the request body is over {} bytes", limits.body_bytes),
                    )
                } else {
                    ApiError::bad_request("bad_body", format!("reading the request body: {e}"))
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(T::default()));
        }
        if json_type != Some(true) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON, with `Content-Type: application/json`",
            ));
        }
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError::bad_request("bad_body", format!("the request body is not valid: {e}")))
    }
}

/// `application/json`, or any `+json` type, with or without parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// `axum::extract::Path` with a JSON rejection.
pub struct P<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| P(p.0))
            .map_err(|e: PathRejection| ApiError::bad_request("bad_path", e.body_text()))
    }
}

/// `axum::extract::Query` with a JSON rejection.
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Q(q.0))
            .map_err(|e: QueryRejection| ApiError::bad_request("bad_query", e.body_text()))
    }
}
