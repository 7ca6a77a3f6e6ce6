//! The HTTP front of the simulator: accepting connections (HTTP or TLS), sending each
//! request to its route group by its first path segment, the cloud-metadata document, and
//! the small helpers every group uses (percent-decoding, query pairs, JSON responses).

use super::arm_routes::arm_entry;
use super::identity::identity;
use super::test_hooks::admin;
use super::{Ctx, DropConnection};
use crate::auth::ARM_AUDIENCE;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode};
use serde_json::json;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, warn};

pub(super) async fn serve(
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

pub(super) async fn entry(State(ctx): State<Arc<Ctx>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/k8s/") {
        return crate::kube_api::handle(ctx.shared.clone(), req).await;
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

pub(super) fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
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

pub(super) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}
