//! Helpers shared by the integration tests: start a simulator on loopback, and talk to
//! it over real HTTPS with reqwest, trusting only the simulator's CA.
#![allow(dead_code)]

pub mod daemon;
pub mod procs;
pub mod webdriver;
pub mod writes;

use reqwest::{Method, StatusCode};
use ringmaster::sim::{ClockMode, SimOptions, Simulator, fleet};
use serde_json::Value;
use std::time::Duration;

pub const API: &str = "2026-10-01";

/// Path of the demo fleet.
pub fn demo_fleet_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleets/demo.yaml")
}

pub fn demo_fleet() -> fleet::Fleet {
    fleet::load(&demo_fleet_path()).expect("demo fleet compiles")
}

/// Starts a simulator with a manual clock (tests move time explicitly; no sleeping).
pub async fn start(fleet: fleet::Fleet, seed: u64) -> Simulator {
    // reqwest is built without a crypto provider of its own: a test that builds its own
    // client must find ring installed, whichever test of the binary runs first.
    ringmaster::identity::install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir").keep();
    Simulator::start(SimOptions {
        fleet,
        listen: "127.0.0.1:0".parse().unwrap(),
        clock: ClockMode::Manual,
        seed,
        plain_http: false,
        state_dir: Some(dir),
    })
    .await
    .expect("simulator starts")
}

/// A reqwest client that trusts the simulator's CA and nothing else.
pub fn client(sim: &Simulator) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(sim.info.ca_cert.as_ref().expect("TLS on")).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A response: status, headers, JSON body (Null when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, k: &str) -> Option<String> {
        self.headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
}

/// An ARM client for tests: bearer token from the simulator's token endpoint.
pub struct Arm {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
    pub sub: String,
}

pub async fn token(http: &reqwest::Client, sim: &Simulator, scope: &str) -> Reply {
    let info = &sim.info;
    let url = format!("{}/{}/oauth2/v2.0/token", info.authority_host, info.tenant_id);
    let r = http
        .post(url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", info.client_id.as_str()),
            ("client_secret", info.client_secret.as_str()),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    to_reply(r).await
}

pub async fn to_reply(r: reqwest::Response) -> Reply {
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Reply { status, headers, body }
}

impl Arm {
    pub async fn new(sim: &Simulator) -> Arm {
        let http = client(sim);
        let t = token(&http, sim, "https://management.azure.com/.default").await;
        assert_eq!(t.status, StatusCode::OK, "{:?}", t.body);
        Arm {
            http,
            base: sim.info.arm_endpoint.clone(),
            token: t.body["access_token"].as_str().unwrap().to_string(),
            sub: sim.info.subscription_ids[0].clone(),
        }
    }

    /// A path under the first subscription's resource group `rg`, cluster `name`.
    pub fn cluster_path(&self, sub: &str, rg: &str, name: &str) -> String {
        format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}")
    }

    pub async fn call(
        &self,
        method: Method,
        path_or_url: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            let sep = if path_or_url.contains('?') { '&' } else { '?' };
            format!("{}{path_or_url}{sep}api-version={API}", self.base)
        };
        let mut req = self.http.request(method, url).bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        to_reply(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None, &[]).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::PUT, path, Some(body), &[]).await
    }

    pub async fn post(&self, path: &str) -> Reply {
        self.call(Method::POST, path, None, &[]).await
    }
}

/// Advances the manual clock in `step`s until `done` holds (or `max` simulated time
/// passed, which fails the test).
pub async fn advance_until<F, Fut>(sim: &Simulator, step: Duration, max: Duration, mut done: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut spent = Duration::ZERO;
    while !done().await {
        assert!(spent < max, "condition not reached within {max:?} of simulated time");
        sim.advance(step);
        spent += step;
    }
    spent
}
