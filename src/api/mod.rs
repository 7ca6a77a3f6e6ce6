//! The HTTP API of `ringmaster serve` (axum, JSON) and its command-line client.
//!
//! Reads come from the daemon ([`Control`]) and the store; every change goes to the
//! engine as an [`crate::engine::Input`] through [`Control::send`], after the caller was
//! authenticated ([`auth`]), allowed, and the request written to the audit log, so there
//! is no change without an audit entry naming who asked. Approvals are also recorded in
//! the store first, where a unique index makes two concurrent approvals one.
//!
//! The routes are one table ([`routes`]): the router is built from it, and the OpenAPI
//! document ([`openapi`]) is checked against it by a test, so the two can't drift.
//! Every answer, errors included, is JSON (`{"error": {"code", "message"}}`), except
//! `/metrics` (Prometheus text).

mod approvals;
pub mod auth;
mod claims;
pub mod cli;
mod client;
pub mod denials;
pub mod entra;
pub mod error;
pub mod fleet;
mod jwt;
mod live;
pub mod oidc;
pub mod openapi;
mod rollback;
mod rollouts;
mod sampled;
pub mod scrape;
pub mod server;
pub mod session;
pub mod streams;
pub mod table;
mod ui;
mod write_timeout;

pub use auth::{Auth, AuthArgs, Caller};
pub use error::ApiError;
pub use server::Limits;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::service::Control;
use crate::store::Store;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use std::sync::Arc;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub control: Arc<dyn Control>,
    pub store: Arc<Store>,
    pub auth: Arc<Auth>,
    pub metrics: Arc<Metrics>,
    /// The engine's clock: approvals expire on the same time line the engine checks.
    pub clock: Arc<dyn Clock>,
    /// Refused calls, counted per source and reason per minute.
    pub denials: Arc<denials::DenialLog>,
    /// What the runtime reports about persisting (for `/readyz`).
    pub health: Arc<crate::health::Health>,
    pub limits: Limits,
    /// ARM, for an operator's rollback (`None`: the server answers 503 to it).
    pub arm: Option<Arc<crate::arm::AksClient>>,
    /// Dashboard sessions (cookie sign-in).
    pub sessions: Arc<session::Sessions>,
    /// Signs the cookie of an Entra ID sign-in in progress.
    pub login_key: Arc<oidc::LoginKey>,
    /// Session cookies get `Secure`: the page is reached over HTTPS (an ingress).
    pub secure_cookies: bool,
    /// Committed transitions of the running rollout, for `/api/v1/events`.
    pub events: crate::events::EventBus,
    /// The event streams open now (capped: `streams`).
    pub streams: Arc<streams::Streams>,
    /// The ETA the summaries share (see [`live::EtaCache`]).
    pub eta_cache: Arc<live::EtaCache>,
    /// The fleet view's source (`None`: `/api/v1/fleet` answers 503).
    pub fleet: Option<Arc<fleet::FleetSource>>,
}

impl ApiState {
    /// The state with default limits, a new denial log and a healthy [`crate::health::Health`].
    pub fn new(
        control: Arc<dyn Control>,
        store: Arc<Store>,
        auth: Arc<Auth>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> ApiState {
        ApiState {
            control,
            store,
            auth,
            metrics,
            clock,
            denials: Default::default(),
            health: Default::default(),
            limits: Limits::default(),
            arm: None,
            sessions: Default::default(),
            login_key: Default::default(),
            secure_cookies: false,
            events: Default::default(),
            streams: Default::default(),
            eta_cache: Default::default(),
            fleet: None,
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No authentication (health probes: a kubelet has no token).
    Public,
    /// Any authenticated caller; handlers check groups where it matters.
    Authenticated,
}

/// One route of the API.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    handler: MethodRouter<ApiState>,
}

fn route(method: Method, path: &'static str, access: Access, handler: MethodRouter<ApiState>) -> Route {
    Route {
        method,
        path,
        access,
        handler,
    }
}

/// Every route, in the order the OpenAPI document lists them.
pub fn routes() -> Vec<Route> {
    use Access::*;
    use Method as M;
    vec![
        route(M::GET, "/healthz", Public, get(healthz)),
        route(M::GET, "/readyz", Public, get(readyz)),
        route(M::GET, "/metrics", Authenticated, get(metrics)),
        route(M::GET, "/openapi.json", Authenticated, get(openapi_doc)),
        route(M::POST, "/api/v1/session", Public, post(ui::sign_in)),
        route(M::GET, "/api/v1/session", Public, get(ui::current)),
        route(
            M::DELETE,
            "/api/v1/session",
            Authenticated,
            axum::routing::delete(ui::sign_out),
        ),
        route(M::GET, "/api/v1/events", Authenticated, get(live::events)),
        route(M::GET, "/api/v1/fleet", Authenticated, get(fleet::fleet)),
        route(M::GET, "/api/v1/rollouts", Authenticated, get(rollouts::list)),
        route(M::POST, "/api/v1/rollouts", Authenticated, post(rollouts::start)),
        route(M::GET, "/api/v1/rollouts/{id}", Authenticated, get(rollouts::show)),
        route(
            M::GET,
            "/api/v1/rollouts/{id}/summary",
            Authenticated,
            get(live::summary),
        ),
        route(
            M::GET,
            "/api/v1/rollouts/{id}/clusters",
            Authenticated,
            get(live::clusters),
        ),
        route(
            M::GET,
            "/api/v1/rollouts/{id}/approvals",
            Authenticated,
            get(approvals::pending),
        ),
        route(
            M::POST,
            "/api/v1/rollouts/{id}/rings/{ring}/approve",
            Authenticated,
            post(approvals::approve),
        ),
        route(
            M::POST,
            "/api/v1/rollouts/{id}/rings/{ring}/promote",
            Authenticated,
            post(approvals::approve),
        ),
        route(
            M::POST,
            "/api/v1/rollouts/{id}/rings/{ring}/reject",
            Authenticated,
            post(approvals::reject),
        ),
        route(
            M::POST,
            "/api/v1/rollouts/{id}/rings/{ring}/promote-now",
            Authenticated,
            post(rollouts::promote_now),
        ),
        route(
            M::POST,
            "/api/v1/rollouts/{id}/pause",
            Authenticated,
            post(rollouts::pause),
        ),
        route(
            M::POST,
            "/api/v1/rollouts/{id}/resume",
            Authenticated,
            post(rollouts::resume),
        ),
        route(
            M::POST,
            "/api/v1/rollouts/{id}/abort",
            Authenticated,
            post(rollouts::abort),
        ),
        route(
            M::POST,
            "/api/v1/rollouts/{id}/clusters/{cluster}/skip",
            Authenticated,
            post(rollouts::skip),
        ),
        route(
            M::POST,
            "/api/v1/clusters/{cluster}/rollback",
            Authenticated,
            post(rollback::rollback),
        ),
        route(M::GET, "/api/v1/audit", Authenticated, get(rollouts::audit)),
        route(M::GET, "/api/v1/policies", Authenticated, get(claims::policies)),
        route(M::GET, "/api/v1/claims", Authenticated, get(claims::list)),
        route(M::POST, "/api/v1/claims/release", Authenticated, post(claims::release)),
    ]
}

/// (method, path) of every route: what the OpenAPI document must describe.
pub fn route_list() -> Vec<(Method, &'static str)> {
    routes().into_iter().map(|r| (r.method, r.path)).collect()
}

/// The probes alone (`/healthz`, `/readyz`), for `serve --probe-listen`
/// (`server::serve_probes`). Unknown paths get JSON 404.
pub fn probe_router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(|| async { ApiError::not_found("not_found", "this listener serves /healthz and /readyz only") })
        .layer(middleware::from_fn_with_state(state.clone(), server::guard))
        .with_state(state)
}

/// The API. Unknown paths and methods get JSON 404 and 405.
pub fn router(state: ApiState) -> Router {
    describe_metrics(&state.metrics);
    let mut router = Router::new();
    for r in routes() {
        let handler = match r.access {
            Access::Public => r.handler,
            Access::Authenticated => r
                .handler
                .route_layer(middleware::from_fn_with_state(state.clone(), auth::require_auth)),
        };
        // Routes on the same path merge their methods.
        router = router.route(r.path, handler);
    }
    // The dashboard's files: public (they hold no data), not part of the API document.
    router
        .route("/", get(ui::index))
        .route("/ui/app.js", get(ui::script))
        .route("/ui/app.css", get(ui::style))
        .route("/ui/icon.svg", get(ui::icon))
        // Entra ID sign-in: browser navigations, not API calls (docs/dashboard.md).
        .route("/auth/login", get(oidc::login))
        .route("/auth/callback", get(oidc::callback))
        .fallback(|| async { ApiError::not_found("not_found", "no such endpoint (see /openapi.json)") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed here",
            )
        })
        .layer(axum::Extension(approvals::ApprovalLock::default()))
        .layer(axum::Extension(rollouts::OperatorLock::default()))
        .layer(axum::extract::DefaultBodyLimit::max(state.limits.body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(middleware::from_fn_with_state(state.clone(), server::guard))
        .with_state(state)
}

pub use server::{serve, serve_probes};

fn describe_metrics(m: &Metrics) {
    m.describe(
        "ringmaster_api_requests_total",
        "counter",
        "API requests by route, method and status.",
    );
    m.describe(
        "ringmaster_api_denied_total",
        "counter",
        "API calls refused by authentication (401) or authorisation (403).",
    );
    m.describe(
        "ringmaster_api_event_streams",
        "gauge",
        "Event streams (/api/v1/events) open now.",
    );
    m.describe(
        "ringmaster_api_event_streams_refused_total",
        "counter",
        "Event streams refused at a limit: in all (`total`) or one caller's (`caller`).",
    );
    m.describe(
        "ringmaster_rollout_eta_seconds",
        "gauge",
        "Seconds until the active rollout is forecast to end (-1: no rollout running, paused, or no end in sight).",
    );
    m.describe(
        "ringmaster_rollout_late_clusters",
        "gauge",
        "Unfinished clusters forecast to end over 5 minutes after the forecast made at the start.",
    );
    scrape::describe(m);
}

/// Counts requests by matched route (not raw path: ids would make unbounded labels)
/// and by method, folded to `other` for anything but the standard ones (a client picks
/// the method: 20,000 random ones made 20,000 series).
async fn count_requests(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let method = method_label(req.method());
    let response = next.run(req).await;
    state.metrics.inc(
        "ringmaster_api_requests_total",
        &[
            ("route", &route),
            ("method", method),
            ("status", response.status().as_str()),
        ],
    );
    response
}

/// A metric label for `m`: one of a fixed set.
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Liveness: the process answers. It never reads the store (see [`crate::health`]).
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the daemon can record what it does: the rollout loop's last save
/// succeeded and the state store answers. 503 with the reason otherwise.
async fn readyz(State(state): State<ApiState>) -> Result<Json<serde_json::Value>, ApiError> {
    if let Some(f) = state.health.failure() {
        return Err(ApiError::unavailable(
            f.code,
            format!(
                "the rollout cannot persist its state since {} ({} attempts; it retries): {}",
                f.since.to_rfc3339(),
                f.attempts,
                f.message
            ),
        ));
    }
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || store.stats())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::unavailable("not_ready", format!("the state store does not answer: {e}")))?;
    Ok(Json(
        serde_json::json!({ "status": "ready", "active": state.control.active() }),
    ))
}

async fn metrics(State(state): State<ApiState>) -> Response {
    // The active rollouts' ETAs, shared with their status (docs/forecast.md).
    let active: Vec<crate::engine::Rollout> = state
        .control
        .active()
        .iter()
        .filter_map(|id| state.control.get(id).ok().flatten())
        .collect();
    let now = state.clock.now();
    scrape::rollout_gauges(&state.metrics, &active, now);
    let ready = state.health.failure().is_none();
    state.metrics.set(scrape::READY, &[], if ready { 1.0 } else { 0.0 });
    state
        .metrics
        .set("ringmaster_api_event_streams", &[], state.streams.count() as f64);
    // With several rollouts: when the last of them is forecast to end, and their late
    // clusters together (per rollout: `GET /api/v1/rollouts/{id}`).
    let (mut remaining, mut late) = (-1.0_f64, 0.0);
    for r in &active {
        if let Some(e) = live::eta(&state, r).await {
            if let Some(f) = e.finish {
                remaining = remaining.max((f - now).num_seconds().max(0) as f64);
            }
            late += e.late.len() as f64;
        }
    }
    state.metrics.set("ringmaster_rollout_eta_seconds", &[], remaining);
    state.metrics.set("ringmaster_rollout_late_clusters", &[], late);
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}

async fn openapi_doc() -> Json<serde_json::Value> {
    Json(openapi::document())
}
