//! The HTTP server under the API: bounded in what a client can hold.
//!
//! `axum::serve` has no timeout on request heads or bodies and no connection limit, so
//! connections that sent half a header were kept forever (300 of them took the file
//! limit and `/healthz` with it), and one half-sent request kept SIGTERM from ending the
//! process. Here:
//! - a request head must arrive within [`Limits::header_timeout`] (hyper closes the
//!   connection otherwise; this also bounds an idle keep-alive connection), and a body
//!   within [`Limits::body_timeout`] (408, see `error::Body`);
//! - at most [`Limits::max_connections`] connections are open; more wait in the
//!   kernel's backlog (so the limit must stay below the file limit, see
//!   examples/deploy);
//! - heads are at most 64 KiB (hyper refuses larger with a bare 431: the one answer
//!   that is not JSON), URIs over [`Limits::max_uri`] get a JSON 414 and header sections
//!   over [`Limits::max_header_bytes`] a JSON 431;
//! - a connection whose writes make no progress for [`Limits::write_timeout`] (a client
//!   that reads nothing, an event subscriber that stalled) is closed
//!   (`super::write_timeout`), and event streams are capped in all and per caller and
//!   end after a lifetime (`super::streams`);
//! - the probes can have a listener of their own ([`serve_probes`]), which no user
//!   traffic can starve;
//! - on shutdown the server stops accepting, lets requests in flight finish for
//!   [`Limits::shutdown_grace`], then drops what is left and returns.

use super::{ApiError, ApiState};
use axum::extract::Request;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// What one client may hold of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// Largest request body (413 beyond).
    pub body_bytes: usize,
    pub max_uri: usize,
    pub max_header_bytes: usize,
    /// How long requests in flight get to finish at shutdown.
    pub shutdown_grace: Duration,
    /// How long a connection's writes may make no progress (a client that reads
    /// nothing) before it is closed (`write_timeout`).
    pub write_timeout: Duration,
    /// Most event streams open at once, and for one caller (`streams`).
    pub max_streams: usize,
    pub max_streams_per_caller: usize,
    /// How long one event stream lasts; the page then reconnects.
    pub stream_lifetime: Duration,
}

impl Default for Limits {
    /// Sized for an operator API with a handful of users and a few scrapers: 512
    /// connections (half of systemd's default soft file limit of 1024, leaving the rest
    /// to SQLite, ARM and the clusters' watches), 10 s to send a head or a body (a
    /// slow link sends 64 KiB in far less), 64 KiB bodies (the largest real body is a
    /// comment), 5 s of grace (Kubernetes' default grace period is 30 s). Event
    /// streams: 256 in all (half the connections: the other half always serve reads,
    /// decisions and probes), 8 per caller (a person's tabs), 10 minutes each (the page
    /// reconnects and refetches once), 30 s for a stalled write (an event every few
    /// seconds reaches a reader on any working link far sooner).
    fn default() -> Self {
        Limits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            body_bytes: 64 * 1024,
            max_uri: 8 * 1024,
            max_header_bytes: 16 * 1024,
            shutdown_grace: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
            max_streams: 256,
            max_streams_per_caller: 8,
            stream_lifetime: Duration::from_secs(600),
        }
    }
}

/// hyper's read buffer: the largest request head it parses (431 beyond, no body).
const MAX_HEAD: usize = 64 * 1024;

/// Serves `router(state)` on `listener` until `shutdown` resolves, then gives requests in
/// flight [`Limits::shutdown_grace`] and returns (connections still open are dropped).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let flusher = tokio::spawn(flush_denials(state.clone()));
    accept(listener, super::router(state.clone()), state.limits, shutdown).await;
    flusher.abort();
    super::sampled::write_denial_rows(&state, state.denials.flush_all(chrono::Utc::now())).await;
    Ok(())
}

/// Connections the probe listener serves at once: a kubelet probes one at a time, a
/// load balancer a few.
const PROBE_CONNECTIONS: usize = 16;

/// Serves only `/healthz` and `/readyz` on a listener of their own (`serve
/// --probe-listen`): no user traffic reaches it, so a flood of API connections or event
/// streams can never make the liveness probe fail and restart the pod.
pub async fn serve_probes(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = Limits {
        max_connections: PROBE_CONNECTIONS,
        ..state.limits
    };
    accept(listener, super::probe_router(state), limits, shutdown).await;
    Ok(())
}

/// The accept loop under both listeners: bounded connections, timeouts, graceful end.
async fn accept(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        while conns.try_join_next().is_some() {}
        conns.spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
            let stream = super::write_timeout::WriteTimeout::new(stream, limits.write_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let stopping = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            let stopped = tokio::select! {
                _ = conn.as_mut() => false,
                _ = stopping => true,
            };
            if stopped {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let grace = tokio::time::sleep(limits.shutdown_grace);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            next = conns.join_next() => if next.is_none() { break },
            _ = &mut grace => {
                tracing::warn!(open = conns.len(), "shutdown: dropping connections still open after the grace period");
                conns.abort_all();
                break;
            }
        }
    }
}

/// Writes the closing rows of each minute of refusals, so a burst's count is recorded
/// even if nothing follows it.
async fn flush_denials(state: ApiState) {
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    loop {
        tick.tick().await;
        let rows = state.denials.flush(chrono::Utc::now());
        super::sampled::write_denial_rows(&state, rows).await;
    }
}

/// The address a request came from (`unknown` without the server's connection info).
pub fn peer(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())
}

/// Refuses over-long URIs (414) and header sections (431) with the JSON error shape,
/// and puts the security headers on every answer: `nosniff` (a browser never runs a
/// JSON answer as something else) and `no-store` (audit data and rollout state stay out
/// of shared and browser caches).
pub(crate) async fn guard(
    axum::extract::State(state): axum::extract::State<ApiState>,
    req: Request,
    next: Next,
) -> Response {
    let limits = state.limits;
    let uri_len = req.uri().to_string().len();
    let header_bytes: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    let mut response = if uri_len > limits.max_uri {
        ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!(
                "the request URI is {uri_len} bytes; at most {} are accepted",
                limits.max_uri
            ),
        )
        .into_response()
    } else if header_bytes > limits.max_header_bytes {
        ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request headers are {header_bytes} bytes; at most {} are accepted",
                limits.max_header_bytes
            ),
        )
        .into_response()
    } else {
        next.run(req).await
    };
    let h = response.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
