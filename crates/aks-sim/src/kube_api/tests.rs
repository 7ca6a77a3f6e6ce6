//! The handler exercised in-process: requests built by hand, no server, manual clock.
//! This file holds the harness (a one-cluster simulator, a watch reader); the tests sit
//! by subject in `tests/`.

use super::*;
use crate::clock::{SimClock, SimTime};
use crate::fleet;
use futures::StreamExt;

mod reads;
mod tables;
mod watch;
mod writes;

const FLEET: &str = r#"
start_time: 2026-11-30T07:00:00Z
subscriptions: [3f2a8c1e-6b4d-4e7a-9c05-1d2e3f405a61]
versions:
  - minor: "1.32"
    patches: ["1.32.7"]
    default: true
clusters:
  - name: c1
    resource_group: rg
    location: westeurope
    kubernetes_version: 1.32.7
    pools:
      - name: system
        mode: System
        count: 2
      - name: user1
        count: 2
    workloads:
      - name: web
        namespace: shop
        replicas: 3
        pdb: { min_available: 2 }
faults:
  - kind: api_unreachable
    cluster: c1
    from: 1h
    to: 2h
"#;

struct Sim {
    shared: Arc<Shared>,
    fqdn: String,
    token: String,
}

fn sim() -> Sim {
    let fleet = fleet::parse("test.yaml", FLEET).unwrap_or_else(|e| panic!("{e}"));
    let start = SimTime::from_datetime(fleet.start_time.expect("start_time"));
    let world = World::new(fleet, start, 7);
    let (fqdn, token) = (world.clusters[0].fqdn.clone(), world.clusters[0].user_token.clone());
    let shared = Shared::new(
        world,
        SimClock::manual(start),
        "https://127.0.0.1:1".into(),
        "s".into(),
        None,
    );
    Sim {
        shared: Arc::new(shared),
        fqdn,
        token,
    }
}

impl Sim {
    fn req(&self, method: &str, path: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(format!("/k8s/{}{path}", self.fqdn))
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
    }

    async fn send(&self, r: http::request::Builder, body: &str) -> (StatusCode, Value) {
        let resp = handle(self.shared.clone(), r.body(Body::from(body.to_string())).unwrap()).await;
        let status = resp.status();
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.req("GET", path), "").await
    }

    /// Opens a watch and returns its event stream.
    async fn watch(&self, path: &str) -> Watch {
        let resp = handle(self.shared.clone(), self.req("GET", path).body(Body::empty()).unwrap()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        Watch {
            body: resp.into_body().into_data_stream(),
            buf: Vec::new(),
        }
    }

    fn kube<R>(&self, f: impl FnOnce(&crate::kube_model::KubeState) -> R) -> R {
        f(&self.shared.world().clusters[0].kube)
    }

    fn ready_web_pod(&self) -> String {
        self.kube(|k| {
            k.pods
                .values()
                .find(|p| p.ready && p.namespace == "shop")
                .unwrap()
                .name
                .clone()
        })
    }
}

struct Watch {
    body: axum::body::BodyDataStream,
    buf: Vec<u8>,
}

impl Watch {
    /// The next event, or `None` when the stream ended; panics after 5 s of silence.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(serde_json::from_slice(&line).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.body.next())
                .await
                .expect("watch silent");
            match chunk {
                Some(c) => self.buf.extend_from_slice(&c.unwrap()),
                None => return None,
            }
        }
    }

    async fn types_until_quiet(&mut self, n: usize) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for _ in 0..n {
            let e = self.next().await.expect("event");
            out.push((
                e["type"].as_str().unwrap().to_string(),
                e["object"]["metadata"]["name"].as_str().unwrap_or_default().to_string(),
            ));
        }
        out
    }
}
