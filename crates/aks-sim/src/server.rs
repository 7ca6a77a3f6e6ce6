//! The simulator's HTTP(S) server: one listener for ARM (`/subscriptions/...`), the
//! Entra token endpoint (`/{tenant}/oauth2/v2.0/token`), every cluster's Kubernetes
//! API (`/k8s/{fqdn}/...`) and a few test hooks (`/_sim/...`). Authentication,
//! fault injection and throttling wrap the ARM handlers here.

use super::arm::{self, ArmReply, ArmRequest};
use super::auth::{self, ARM_AUDIENCE, TokenProblem};
use super::clock::{SimClock, SimTime};
use super::fleet::{FaultKind, Fleet, ServerErrorKind};
use super::shared::Shared;
use super::throttle::{Take, Throttle};
use super::world::{World, WriteRecord};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use serde::Serialize;
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// How the simulator's clock runs.
#[derive(Debug, Clone, Copy)]
pub enum ClockMode {
    /// Simulated time = wall clock x factor.
    Scaled(f64),
    /// Simulated time moves only through [`Simulator::advance`] or `POST /_sim/clock/advance`.
    Manual,
}

#[derive(Debug, Clone)]
pub struct SimOptions {
    pub fleet: Fleet,
    pub listen: SocketAddr,
    pub clock: ClockMode,
    pub seed: u64,
    pub plain_http: bool,
    /// Where to write `ca.pem`. Default: a fresh folder under the system temp dir.
    pub state_dir: Option<PathBuf>,
}

/// The one line the simulator prints when it is ready (and what tests read).
#[derive(Debug, Clone, Serialize)]
pub struct ReadyInfo {
    pub arm_endpoint: String,
    pub authority_host: String,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub ca_cert: Option<String>,
    pub subscription_ids: Vec<String>,
    pub kube_endpoint_base: String,
    pub manual_clock: bool,
    pub sim_start: String,
}

impl ReadyInfo {
    /// Environment variables that point ringmaster (and Azure SDKs) at the simulator.
    pub fn env_file(&self) -> String {
        let mut s = format!(
            "AZURE_TENANT_ID={}\nAZURE_CLIENT_ID={}\nAZURE_CLIENT_SECRET={}\nAZURE_AUTHORITY_HOST={}\nRINGMASTER_ARM_ENDPOINT={}\n",
            self.tenant_id, self.client_id, self.client_secret, self.authority_host, self.arm_endpoint
        );
        if let Some(ca) = &self.ca_cert {
            s.push_str(&format!("RINGMASTER_CA_CERT={ca}\n"));
        }
        s.push_str(&format!(
            "RINGMASTER_SUBSCRIPTION_IDS={}\n",
            self.subscription_ids.join(",")
        ));
        s
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the CA certificate to {path}")]
    WriteCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
    /// Refused before anything is built (`cost.rs`).
    #[error("the fleet is too large for the simulator: {0}")]
    TooLarge(#[from] super::cost::FleetTooLarge),
}

/// A running simulator.
pub struct Simulator {
    pub info: ReadyInfo,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

struct Ctx {
    shared: Arc<Shared>,
    throttle: Mutex<Throttle>,
}

/// Marks a response whose connection must be dropped instead (fault `server_errors: drop`).
#[derive(Clone, Copy)]
struct DropConnection;

impl Simulator {
    pub async fn start(opts: SimOptions) -> Result<Simulator, SimError> {
        // First: a fleet beyond the bound would take the machine's memory (`cost.rs`).
        super::cost::FleetCost::of(&opts.fleet).check()?;
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|source| SimError::Listen {
                addr: opts.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Listen {
            addr: opts.listen,
            source,
        })?;
        let tls = if opts.plain_http {
            None
        } else {
            Some(super::tls::generate(Some(addr.ip()))?)
        };
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base_url = format!("{scheme}://{host}:{}", addr.port());
        let ca_cert = match &tls {
            None => None,
            Some(t) => {
                let dir = opts.state_dir.clone().unwrap_or_else(|| {
                    std::env::temp_dir().join(format!("ringmaster-sim-{}-{}", std::process::id(), addr.port()))
                });
                let path = dir.join("ca.pem");
                std::fs::create_dir_all(&dir)
                    .and_then(|_| std::fs::write(&path, &t.ca_pem))
                    .map_err(|source| SimError::WriteCa {
                        path: path.clone(),
                        source,
                    })?;
                Some(path.display().to_string())
            }
        };
        let start = SimTime::from_datetime(opts.fleet.start_time.unwrap_or_else(chrono::Utc::now));
        let clock = match opts.clock {
            ClockMode::Scaled(f) => SimClock::scaled(start, f),
            ClockMode::Manual => SimClock::manual(start),
        };
        let secret = opts.fleet.client_secret.clone().unwrap_or_else(|| {
            let mut r = super::rng::Rng::new(start.0 as u64 ^ u64::from(std::process::id()) ^ random_seed());
            r.hex(40)
        });
        let subscription_ids = opts.fleet.subscriptions.clone();
        let world = World::new(opts.fleet, start, opts.seed);
        let shared = Arc::new(Shared::new(
            world,
            clock,
            base_url.clone(),
            secret,
            tls.as_ref().map(|t| t.ca_pem.clone()),
        ));
        let info = ReadyInfo {
            arm_endpoint: base_url.clone(),
            authority_host: base_url.clone(),
            tenant_id: shared.tenant_id.clone(),
            client_id: shared.client_id.clone(),
            client_secret: shared.client_secret.clone(),
            ca_cert,
            subscription_ids,
            kube_endpoint_base: format!("{base_url}/k8s"),
            manual_clock: shared.clock.is_manual(),
            sim_start: start.rfc3339(),
        };
        let (stop, stop_rx) = watch::channel(false);
        let ctx = Arc::new(Ctx {
            shared: shared.clone(),
            throttle: Mutex::new(Throttle::default()),
        });
        let router = axum::Router::new().fallback(entry).with_state(ctx);
        let mut tasks = vec![tokio::spawn(serve(
            listener,
            tls.map(|t| t.server_config),
            router,
            stop_rx.clone(),
        ))];
        if !shared.clock.is_manual() {
            tasks.push(tokio::spawn(drive(shared.clone(), stop_rx)));
        }
        info!(endpoint = %base_url, "simulator listening");
        Ok(Simulator {
            info,
            shared,
            stop,
            tasks,
        })
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Moves a manual clock forward and applies every event due.
    pub fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
        drop(self.shared.world());
    }

    /// Runs `f` on the world, brought up to now.
    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.shared.world())
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

/// Keeps a scaled-clock world moving between requests, so watches see pods and nodes
/// change on time even when nobody asks.
async fn drive(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let wait = {
            let w = shared.world();
            match w.next_due() {
                Some(t) => shared.clock.to_real(t.since(w.now)).min(Duration::from_millis(250)),
                None => Duration::from_millis(250),
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait.max(Duration::from_millis(1))) => {}
            _ = shared.wake.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tower::ServiceExt;
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => { warn!(error = %e, "accept failed"); continue; }
            },
            _ = stop.changed() => return,
        };
        // Small answers (operation status polls) must not wait for Nagle + delayed ACKs.
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let acceptor = acceptor.clone();
        let mut conn_stop = stop.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let router = router.clone();
                async move {
                    let resp = router.oneshot(req.map(Body::new)).await.unwrap_or_else(|e| match e {});
                    if resp.extensions().get::<DropConnection>().is_some() {
                        return Err(std::io::Error::other("connection dropped (injected fault)"));
                    }
                    Ok::<_, std::io::Error>(resp)
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let result = match acceptor {
                Some(a) => match a.accept(tcp).await {
                    Ok(stream) => {
                        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                        tokio::select! { r = conn => r, _ = conn_stop.changed() => Ok(()) }
                    }
                    Err(e) => {
                        debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                },
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), svc);
                    tokio::select! { r = conn => r, _ = conn_stop.changed() => Ok(()) }
                }
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

async fn entry(State(ctx): State<Arc<Ctx>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/k8s/") {
        return super::kube_api::handle(ctx.shared.clone(), req).await;
    }
    if path == "/healthz" {
        return (StatusCode::OK, "ok").into_response();
    }
    let segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    if segments
        .first()
        .is_some_and(|s| s.eq_ignore_ascii_case("subscriptions"))
    {
        return arm_entry(&ctx, req, segments).await;
    }
    if segments.first().is_some_and(|s| s == "_sim") {
        return admin(&ctx, req, &segments).await;
    }
    if req.method() == Method::GET
        && segments.len() == 2
        && segments[0].eq_ignore_ascii_case("metadata")
        && segments[1].eq_ignore_ascii_case("endpoints")
    {
        return json_response(StatusCode::OK, &cloud_metadata(&ctx.shared.base_url));
    }
    identity(&ctx, req, &segments).await
}

/// `GET /metadata/endpoints?api-version=2022-09-01`: the cloud-metadata document Azure
/// tools read to configure a custom cloud (azure-cli's `ARM_CLOUD_METADATA_URL`, the SDKs'
/// cloud settings). Since api-version 2019-05-01 ARM answers an array of clouds; azure-cli
/// (`azure/cli/core/cloud.py`, `_arm_to_cli_mapper`) reads `name`, `resourceManager`,
/// `authentication.loginEndpoint`, `authentication.audiences[0]` (the scope it asks tokens
/// for), `graph`, `graphAudience`, `portal`, ... and `suffixes`. Here every endpoint is the
/// simulator itself; the first audience is the one its ARM accepts tokens for.
fn cloud_metadata(base_url: &str) -> serde_json::Value {
    let base = format!("{base_url}/");
    let host = base_url.split("://").nth(1).unwrap_or(base_url);
    json!([{
        "name": "AksSimulator",
        "portal": base,
        "resourceManager": base,
        "authentication": {
            "loginEndpoint": base,
            "audiences": [format!("{ARM_AUDIENCE}/"), "https://management.core.windows.net/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "graph": base,
        "graphAudience": base,
        "microsoftGraphResourceId": base,
        "media": base,
        "batch": base,
        "sqlManagement": base,
        "gallery": base,
        "activeDirectoryDataLake": base,
        "suffixes": {
            "azureDataLakeStoreFileSystem": host,
            "acrLoginServer": host,
            "sqlServerHostname": host,
            "azureDataLakeAnalyticsCatalogAndJob": host,
            "keyVaultDns": host,
            "storage": host,
            "azureFrontDoorEndpointSuffix": host,
        },
    }])
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 3 <= b.len())
            .then(|| {
                std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .flatten();
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

fn reply_to_response(reply: ArmReply, request_id: &str) -> Response {
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

fn unauthorized(problem: TokenProblem, tenant: &str, base: &str) -> ArmReply {
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

async fn read_body(req: Request) -> Result<(http::request::Parts, Bytes), Response> {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, 4 << 20).await {
        Ok(b) => Ok((parts, b)),
        Err(_) => Err(json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({"error": {"code": "RequestTooLarge", "message": "The request body is too large."}}),
        )),
    }
}

async fn arm_entry(ctx: &Ctx, req: Request, segments: Vec<String>) -> Response {
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

// ---------------------------------------------------------------- identity

async fn identity(ctx: &Ctx, req: Request, segments: &[String]) -> Response {
    let shared = &ctx.shared;
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (req.method().clone(), seg.as_slice()) {
        (Method::POST, [tenant, "oauth2", "v2.0", "token"]) => {
            let tenant = tenant.to_string();
            let (_, body) = match read_body(req).await {
                Ok(x) => x,
                Err(r) => return r,
            };
            token(shared, &tenant, &body)
        }
        (Method::GET, [tenant, "oauth2", "v2.0", "authorize"]) if tenant.eq_ignore_ascii_case(&shared.tenant_id) => {
            super::sign_in::form(shared, &query_pairs(req.uri().query()))
        }
        (Method::POST, [tenant, "oauth2", "v2.0", "authorize"]) if tenant.eq_ignore_ascii_case(&shared.tenant_id) => {
            match read_body(req).await {
                Ok((_, body)) => super::sign_in::submit(shared, &query_pairs(Some(&String::from_utf8_lossy(&body)))),
                Err(r) => r,
            }
        }
        (Method::GET, [tenant, "discovery", "v2.0", "keys"]) if tenant.eq_ignore_ascii_case(&shared.tenant_id) => {
            json_response(StatusCode::OK, &super::sign_in::jwks())
        }
        (
            Method::GET,
            [tenant, "v2.0", ".well-known", "openid-configuration"] | [tenant, ".well-known", "openid-configuration"],
        ) => {
            let base = format!("{}/{tenant}", shared.base_url);
            json_response(
                StatusCode::OK,
                &json!({
                    "token_endpoint": format!("{base}/oauth2/v2.0/token"),
                    "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
                    "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
                    "issuer": format!("{base}/v2.0"),
                    "jwks_uri": format!("{base}/discovery/v2.0/keys"),
                    "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                    "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                    "subject_types_supported": ["pairwise"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "scopes_supported": ["openid", "profile", "email", "offline_access"],
                    "tenant_region_scope": "EU",
                    "cloud_instance_name": "microsoftonline.com",
                }),
            )
        }
        (Method::GET, ["common", "discovery", "instance"]) => json_response(
            StatusCode::OK,
            &json!({ "tenant_discovery_endpoint": format!("{}/common/v2.0/.well-known/openid-configuration", shared.base_url), "api-version": "1.1", "metadata": [] }),
        ),
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": { "code": "NotFound", "message": format!("No route for {}", req.uri().path()) } }),
        ),
    }
}

fn aad_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({ "error": error, "error_description": description, "error_codes": [], "timestamp": chrono::Utc::now().to_rfc3339() }),
    )
}

fn token(shared: &Shared, tenant: &str, body: &[u8]) -> Response {
    let form = query_pairs(Some(&String::from_utf8_lossy(body)));
    let get = |k: &str| form.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
    if !tenant.eq_ignore_ascii_case(&shared.tenant_id) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("AADSTS90002: Tenant '{tenant}' not found."),
        );
    }
    let grant_type = get("grant_type");
    if !matches!(grant_type, Some("client_credentials" | "authorization_code")) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The simulator supports the client_credentials and authorization_code grants only.",
        );
    }
    if get("client_id") != Some(shared.client_id.as_str()) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "AADSTS700016: Application not found in the directory.",
        );
    }
    let secret_ok =
        get("client_secret").is_some_and(|s| constant_time_eq(s.as_bytes(), shared.client_secret.as_bytes()));
    // Workload identity sends a federated assertion instead of a secret.
    let assertion_ok = get("client_assertion_type") == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        && get("client_assertion").is_some_and(|a| a.split('.').count() == 3);
    if !secret_ok && !assertion_ok {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        );
    }
    if grant_type == Some("authorization_code") {
        // A dashboard's sign-in: an ID token for the user who signed in.
        return match super::sign_in::redeem(shared, &form) {
            Ok(answer) => json_response(StatusCode::OK, &answer),
            Err((error, description)) => aad_error(StatusCode::BAD_REQUEST, error, &description),
        };
    }
    let Some(audience) = get("scope").and_then(auth::audience_of_scope) else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS70011: The provided scope is not valid; use '{resource}/.default'.",
        );
    };
    let lifetime = shared.world().fleet.arm.token_lifetime;
    let mut r = super::rng::Rng::new(random_seed());
    let token = format!("sim.{}", r.hex(64));
    let grant = shared
        .tokens()
        .issue(token, audience, shared.client_id.clone(), lifetime);
    json_response(
        StatusCode::OK,
        &json!({ "token_type": "Bearer", "expires_in": grant.expires_in, "ext_expires_in": grant.expires_in, "access_token": grant.access_token }),
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------- test hooks

async fn admin(ctx: &Ctx, req: Request, segments: &[String]) -> Response {
    let shared = &ctx.shared;
    if let Err(p) = shared.tokens().check(auth::bearer(req.headers()), ARM_AUDIENCE) {
        return reply_to_response(unauthorized(p, &shared.tenant_id, &shared.base_url), "sim");
    }
    let q = query_pairs(req.uri().query());
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (req.method().clone(), &seg[1..]) {
        (Method::GET, ["clock"]) => {
            let w = shared.world();
            json_response(
                StatusCode::OK,
                &json!({ "now": w.now.rfc3339_millis(), "manual": shared.clock.is_manual(), "timeScale": shared.clock.scale(), "events_applied": w.events_applied }),
            )
        }
        (Method::GET, ["operations"]) => {
            // Every operation the simulator ever started: tests check that no step ran twice.
            let w = shared.world();
            let ops: Vec<serde_json::Value> = w
                .ops
                .values()
                .map(|op| {
                    let c = &w.clusters[op.cluster];
                    json!({
                        "id": op.id,
                        "cluster": c.name,
                        "target": match &op.target { super::operation::Target::Cluster => "cluster".to_string(), super::operation::Target::Pool(p) => format!("pool/{p}") },
                        "work": op.work,
                        "kind": format!("{:?}", op.kind),
                        "abortOf": op.abort_of,
                        "status": op.status.as_str(),
                        "start": op.start.rfc3339_millis(),
                        "end": op.end.map(|e| e.rfc3339_millis()),
                    })
                })
                .collect();
            json_response(StatusCode::OK, &json!({ "value": ops }))
        }
        (Method::GET, ["pods-ready"]) => {
            // Per namespace, when the last of a cluster's Ready pods became Ready: what a
            // benchmark in another process needs to tell workload time from engine time.
            let w = shared.world();
            let name = q
                .iter()
                .find(|(k, _)| k == "cluster")
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            let Some(c) = w.clusters.iter().find(|c| c.name.eq_ignore_ascii_case(name)) else {
                return json_response(
                    StatusCode::NOT_FOUND,
                    &json!({ "error": { "code": "NotFound", "message": format!("No cluster named {name:?}.") } }),
                );
            };
            let mut latest: std::collections::BTreeMap<&str, super::clock::SimTime> = Default::default();
            for p in c.kube.pods.values().filter(|p| p.ready) {
                if let Some(t) = p.ready_since {
                    let e = latest.entry(p.namespace.as_str()).or_insert(t);
                    *e = (*e).max(t);
                }
            }
            let out: serde_json::Map<String, serde_json::Value> = latest
                .into_iter()
                .map(|(ns, t)| (ns.to_string(), json!(t.rfc3339_millis())))
                .collect();
            json_response(
                StatusCode::OK,
                &json!({ "now": w.now.rfc3339_millis(), "namespaces": out }),
            )
        }
        (Method::GET, ["requests"]) => {
            // Every mutating ARM request, whatever it was answered: duplicates that AKS
            // refused (409) or took as a no-op (200) are visible here, not in `operations`.
            let w = shared.world();
            json_response(StatusCode::OK, &json!({ "value": w.writes }))
        }
        (Method::POST, ["clock", "advance"]) => {
            if !shared.clock.is_manual() {
                return json_response(
                    StatusCode::CONFLICT,
                    &json!({ "error": { "code": "ClockNotManual", "message": "Start the simulator with --manual-clock to advance time by hand." } }),
                );
            }
            let secs: f64 = q
                .iter()
                .find(|(k, _)| k == "seconds")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0.0);
            shared.clock.advance(Duration::from_secs_f64(secs.max(0.0)));
            let w = shared.world();
            json_response(StatusCode::OK, &json!({ "now": w.now.rfc3339_millis() }))
        }
        (Method::POST, ["tokens", "expire"]) => {
            shared.tokens().expire_all();
            json_response(StatusCode::OK, &json!({ "expired": true }))
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": { "code": "NotFound", "message": "Unknown simulator hook." } }),
        ),
    }
}
