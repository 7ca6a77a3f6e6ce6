//! The handler exercised in-process: requests built by hand, no server, manual clock.

use super::*;
use crate::clock::{SimClock, SimTime};
use crate::fleet;
use futures::StreamExt;

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

#[test]
fn routes() {
    assert_eq!(route("/version"), Route::Version);
    assert_eq!(route("/apis/apps/v1"), Route::ResourceList("apps"));
    assert_eq!(route("/apis/batch/v1"), Route::NotFound);
    assert_eq!(
        route("/api/v1/nodes/n1/status"),
        Route::Res {
            res: NODES,
            ns: None,
            name: Some("n1"),
            sub: Some("status"),
            legacy_watch: false
        }
    );
    assert_eq!(
        route("/api/v1/namespaces/shop"),
        Route::Res {
            res: &RESOURCES[0],
            ns: None,
            name: Some("shop"),
            sub: None,
            legacy_watch: false
        }
    );
    assert_eq!(
        route("/api/v1/namespaces/shop/status"),
        Route::Res {
            res: &RESOURCES[0],
            ns: None,
            name: Some("shop"),
            sub: Some("status"),
            legacy_watch: false
        }
    );
    assert_eq!(
        route("/api/v1/namespaces/shop/pods/p/eviction"),
        Route::Res {
            res: PODS,
            ns: Some("shop"),
            name: Some("p"),
            sub: Some("eviction"),
            legacy_watch: false
        }
    );
    assert_eq!(
        route("/api/v1/watch/namespaces/shop/pods"),
        Route::Res {
            res: PODS,
            ns: Some("shop"),
            name: None,
            sub: None,
            legacy_watch: true
        }
    );
    assert_eq!(
        route("/api/v1/namespaces/shop/nodes"),
        Route::NotFound,
        "nodes are not namespaced"
    );
    assert_eq!(
        route("/apis/apps/v1/deployments"),
        Route::Res {
            res: &RESOURCES[4],
            ns: None,
            name: None,
            sub: None,
            legacy_watch: false
        }
    );
}

#[tokio::test]
async fn unknown_cluster_unauthorised_and_unreachable() {
    let s = sim();
    let r = Request::builder()
        .uri("/k8s/nope.example/api/v1/pods")
        .body(Body::empty())
        .unwrap();
    assert_eq!(handle(s.shared.clone(), r).await.status(), StatusCode::NOT_FOUND);
    let no_auth = Request::builder().uri(format!("/k8s/{}/api/v1/pods", s.fqdn));
    let (code, body) = s.send(no_auth, "").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let want = json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401});
    assert_eq!(body, want);
    let bad = Request::builder()
        .uri(format!("/k8s/{}/api/v1/pods", s.fqdn))
        .header(header::AUTHORIZATION, "Bearer wrong");
    assert_eq!(s.send(bad, "").await.0, StatusCode::UNAUTHORIZED);
    s.shared.clock.advance(Duration::from_secs(3600));
    let (code, body) = s.get("/version").await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("ServiceUnavailable"))
    );
    s.shared.clock.advance(Duration::from_secs(3600));
    assert_eq!(s.get("/version").await.0, StatusCode::OK, "the fault ends after 2h");
}

#[tokio::test]
async fn version_and_discovery() {
    let s = sim();
    let (_, v) = s.get("/version").await;
    assert_eq!(
        (v["gitVersion"].as_str(), v["major"].as_str(), v["minor"].as_str()),
        (Some("v1.32.7"), Some("1"), Some("32"))
    );
    let (_, api) = s.get("/api").await;
    assert_eq!(api["versions"], json!(["v1"]));
    let (_, apis) = s.get("/apis").await;
    let groups: Vec<&str> = apis["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["apps", "policy"]);
    let (_, core) = s.get("/api/v1").await;
    let eviction = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods/eviction")
        .unwrap();
    assert_eq!(
        (&eviction["group"], &eviction["version"], &eviction["kind"]),
        (&json!("policy"), &json!("v1"), &json!("Eviction"))
    );
    let (_, policy) = s.get("/apis/policy/v1").await;
    assert_eq!(policy["resources"][0]["shortNames"], json!(["pdb"]));
    assert_eq!(s.get("/apis/batch/v1").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        s.send(s.req("POST", "/api"), "").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn list_get_and_selectors() {
    let s = sim();
    let (pods, rv) = s.kube(|k| (k.pods.len(), k.rv));
    let (code, list) = s.get("/api/v1/pods").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        (list["kind"].as_str(), list["metadata"]["resourceVersion"].as_str()),
        (Some("PodList"), Some(&*rv.to_string()))
    );
    assert_eq!(list["items"].as_array().unwrap().len(), pods);
    let (_, shop) = s.get("/api/v1/namespaces/shop/pods?labelSelector=app%3Dweb").await;
    assert_eq!(shop["items"].as_array().unwrap().len(), 3);
    let (_, none) = s
        .get("/api/v1/namespaces/shop/pods?labelSelector=app+notin+(web)")
        .await;
    assert_eq!(none["items"], json!([]));
    let node = list["items"][0]["spec"]["nodeName"].as_str().unwrap().to_string();
    let (_, on_node) = s
        .get(&format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{node}"))
        .await;
    assert!(
        on_node["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["spec"]["nodeName"] == node.as_str())
    );
    let (code, bad) = s.get("/api/v1/pods?labelSelector=app+in+web").await;
    assert_eq!(
        (code, bad["reason"].as_str()),
        (StatusCode::BAD_REQUEST, Some("BadRequest"))
    );

    let name = list["items"][0]["metadata"]["name"].as_str().unwrap();
    let ns = list["items"][0]["metadata"]["namespace"].as_str().unwrap();
    let (code, pod) = s.get(&format!("/api/v1/namespaces/{ns}/pods/{name}")).await;
    assert_eq!((code, &pod["metadata"]["name"]), (StatusCode::OK, &json!(name)));
    // A running pod has an address in the pod range, listed in podIPs too.
    let ip = pod["status"]["podIP"].as_str().unwrap_or_default();
    assert!(ip.starts_with("10.244."), "{pod}");
    assert_eq!(pod["status"]["podIPs"][0]["ip"], ip);
    let (code, missing) = s.get("/apis/apps/v1/namespaces/shop/deployments/nope").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(missing["message"], "deployments.apps \"nope\" not found");
    assert_eq!(
        missing["details"],
        json!({ "name": "nope", "kind": "deployments", "group": "apps" })
    );
    let (_, nodes) = s.get("/api/v1/nodes").await;
    assert_eq!(
        (nodes["kind"].as_str(), nodes["items"].as_array().unwrap().len()),
        (Some("NodeList"), 4)
    );
    let (_, namespace) = s.get("/api/v1/namespaces/shop").await;
    assert_eq!(namespace["kind"], "Namespace");
    let (_, pdbs) = s.get("/apis/policy/v1/poddisruptionbudgets").await;
    assert_eq!(pdbs["apiVersion"], "policy/v1");
    assert_eq!(
        s.send(s.req("DELETE", &format!("/api/v1/namespaces/{ns}/pods/{name}")), "")
            .await
            .0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        s.get("/api/v1/pods/nope").await.0,
        StatusCode::NOT_FOUND,
        "a namespaced get needs a namespace"
    );
}

#[tokio::test]
async fn paging_with_continue() {
    let s = sim();
    let (_, all) = s.get("/api/v1/pods").await;
    let all: Vec<Value> = all["items"].as_array().unwrap().clone();
    let (mut seen, mut path) = (Vec::new(), "/api/v1/pods?limit=2".to_string());
    let mut rvs = Vec::new();
    loop {
        let (code, page) = s.get(&path).await;
        assert_eq!(code, StatusCode::OK);
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["metadata"]["name"].clone()),
        );
        rvs.push(page["metadata"]["resourceVersion"].clone());
        match page["metadata"]["continue"].as_str() {
            Some(c) => {
                assert!(page["metadata"]["remainingItemCount"].as_u64().unwrap() > 0);
                path = format!("/api/v1/pods?limit=2&continue={c}");
                // Changes between pages do not change the list's resourceVersion.
                if rvs.len() == 1 {
                    let pod = s.ready_web_pod();
                    s.shared.world().evict(0, &("shop".into(), pod)).unwrap();
                }
            }
            None => break,
        }
    }
    assert!(seen.len() >= all.len() - 1, "every page came: {seen:?}");
    assert!(rvs.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        s.get("/api/v1/pods?limit=2&continue=garbage").await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn tables_for_kubectl() {
    let s = sim();
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    s.shared.clock.advance(Duration::from_secs(300));
    let (_, t) = s
        .send(s.req("GET", "/api/v1/nodes").header(header::ACCEPT, accept), "")
        .await;
    assert_eq!(t["kind"], "Table");
    let row = &t["rows"][0]["cells"];
    assert_eq!(
        (&row[1], &row[3], &row[4]),
        (&json!("Ready"), &json!("5m"), &json!("v1.32.7"))
    );
    let (_, one) = s
        .send(
            s.req("GET", "/api/v1/namespaces/shop/pods?limit=1")
                .header(header::ACCEPT, accept),
            "",
        )
        .await;
    let name = one["rows"][0]["cells"][0].as_str().unwrap();
    let (_, t) = s
        .send(
            s.req("GET", &format!("/api/v1/namespaces/shop/pods/{name}"))
                .header(header::ACCEPT, accept),
            "",
        )
        .await;
    assert_eq!(t["rows"][0]["cells"][1], "1/1");
    assert_eq!(t["rows"][0]["object"]["metadata"]["namespace"], "shop");
}

#[tokio::test]
async fn eviction_respects_the_budget() {
    let s = sim();
    let pod = s.ready_web_pod();
    let body =
        json!({ "apiVersion": "policy/v1", "kind": "Eviction", "metadata": { "name": pod, "namespace": "shop" } })
            .to_string();
    let path = format!("/api/v1/namespaces/shop/pods/{pod}/eviction");
    let (code, st) = s
        .send(
            s.req("POST", &path).header(header::CONTENT_TYPE, "application/json"),
            &body,
        )
        .await;
    assert_eq!((code, st["status"].as_str()), (StatusCode::CREATED, Some("Success")));
    assert!(s.kube(|k| !k.pods.contains_key(&("shop".to_string(), pod.clone()))));
    // Two of three ready left, minAvailable 2: the next eviction is refused.
    let pod2 = s.ready_web_pod();
    let (code, st) = s
        .send(
            s.req("POST", &format!("/api/v1/namespaces/shop/pods/{pod2}/eviction")),
            "",
        )
        .await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(st["reason"], "TooManyRequests");
    assert_eq!(
        st["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(st["details"]["causes"][0]["reason"], "DisruptionBudget");
    assert_eq!(
        st["details"]["causes"][0]["message"],
        "The disruption budget web needs 2 healthy pods and has 2 currently"
    );
    let dry = format!("/api/v1/namespaces/shop/pods/{pod2}/eviction?dryRun=All");
    assert_eq!(s.send(s.req("POST", &dry), "").await.0, StatusCode::CREATED);
    assert!(
        s.kube(|k| k.pods.contains_key(&("shop".to_string(), pod2.clone()))),
        "dry run keeps the pod"
    );
    let (code, st) = s
        .send(s.req("POST", "/api/v1/namespaces/shop/pods/nope/eviction"), "")
        .await;
    assert_eq!((code, st["reason"].as_str()), (StatusCode::NOT_FOUND, Some("NotFound")));
    let wrong = json!({ "metadata": { "name": "other" } }).to_string();
    assert_eq!(
        s.send(
            s.req("POST", &format!("/api/v1/namespaces/shop/pods/{pod2}/eviction")),
            &wrong
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn cordon_and_label_nodes() {
    let s = sim();
    let node = s.kube(|k| k.nodes.keys().next().unwrap().clone());
    let path = format!("/api/v1/nodes/{node}");
    let smp = s
        .req("PATCH", &path)
        .header(header::CONTENT_TYPE, "application/strategic-merge-patch+json");
    let (code, n) = s
        .send(
            smp,
            r#"{"spec":{"unschedulable":true},"metadata":{"labels":{"x":"1"}}}"#,
        )
        .await;
    assert_eq!(
        (code, &n["spec"]["unschedulable"], &n["metadata"]["labels"]["x"]),
        (StatusCode::OK, &json!(true), &json!("1"))
    );
    let (_, l) = s.get("/api/v1/nodes?fieldSelector=spec.unschedulable%3Dtrue").await;
    assert_eq!(l["items"].as_array().unwrap().len(), 1);
    let jp = s
        .req("PATCH", &path)
        .header(header::CONTENT_TYPE, "application/json-patch+json");
    let (code, n) = s
        .send(
            jp,
            r#"[{"op":"remove","path":"/spec/unschedulable"},{"op":"remove","path":"/metadata/labels/x"}]"#,
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    assert!(n["spec"].get("unschedulable").is_none() && n["metadata"]["labels"].get("x").is_none());
    let mp = s
        .req("PATCH", &path)
        .header(header::CONTENT_TYPE, "application/merge-patch+json");
    assert_eq!(
        s.send(mp, r#"{"spec":{"podCIDR":"x"}}"#).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let js = s.req("PATCH", &path).header(header::CONTENT_TYPE, "application/json");
    assert_eq!(s.send(js, "{}").await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let missing = s
        .req("PATCH", "/api/v1/nodes/nope")
        .header(header::CONTENT_TYPE, "application/merge-patch+json");
    assert_eq!(s.send(missing, "{}").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn watch_from_now_sees_an_eviction() {
    let s = sim();
    let rv = s.kube(|k| k.rv);
    let mut w = s
        .watch(&format!("/api/v1/namespaces/shop/pods?watch=true&resourceVersion={rv}"))
        .await;
    let pod = s.ready_web_pod();
    s.shared.world().evict(0, &("shop".into(), pod.clone())).unwrap();
    let events = w.types_until_quiet(2).await;
    assert_eq!(events[0], ("DELETED".to_string(), pod));
    assert_eq!(events[1].0, "ADDED");
    // The replacement is scheduled after `pod_schedule`: a MODIFIED once time passes.
    s.shared.clock.advance(Duration::from_secs(60));
    drop(s.shared.world());
    let e = w.next().await.unwrap();
    assert_eq!(
        (e["type"].as_str(), e["object"]["metadata"]["name"].as_str()),
        (Some("MODIFIED"), Some(&*events[1].1))
    );
}

#[tokio::test]
async fn watch_replays_and_expires() {
    let s = sim();
    let (_, list) = s.get("/api/v1/pods").await;
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let pod = s.ready_web_pod();
    s.shared.world().evict(0, &("shop".into(), pod.clone())).unwrap();
    // Resumed after the eviction: the watch replays it from history.
    let mut w = s.watch(&format!("/api/v1/pods?watch=1&resourceVersion={rv}")).await;
    let events = w.types_until_quiet(2).await;
    assert_eq!((events[0].0.as_str(), events[1].0.as_str()), ("DELETED", "ADDED"));
    // Older than the history: one ERROR with a 410 Status, then the end.
    let mut old = s.watch("/api/v1/pods?watch=true&resourceVersion=1").await;
    let e = old.next().await.unwrap();
    assert_eq!(e["type"], "ERROR");
    assert_eq!(
        (&e["object"]["code"], &e["object"]["reason"]),
        (&json!(410), &json!("Expired"))
    );
    assert!(
        e["object"]["message"]
            .as_str()
            .unwrap()
            .starts_with("too old resource version: 1 (")
    );
    assert!(old.next().await.is_none());
}

#[tokio::test]
async fn watch_initial_events_bookmark_and_legacy_path() {
    let s = sim();
    let n = s.kube(|k| k.nodes.len());
    let mut w = s.watch("/api/v1/nodes?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan").await;
    let events = w.types_until_quiet(n + 1).await;
    assert!(events[..n].iter().all(|(t, _)| t == "ADDED"));
    assert_eq!(events[n].0, "BOOKMARK");
    let mut w = s
        .watch("/api/v1/nodes?watch=true&sendInitialEvents=true&allowWatchBookmarks=true")
        .await;
    for _ in 0..n {
        w.next().await;
    }
    let b = w.next().await.unwrap();
    assert_eq!(
        b["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(b["object"]["kind"], "Node");
    // Legacy path with a name: only that object.
    let node = events[0].1.clone();
    let mut one = s.watch(&format!("/api/v1/watch/nodes/{node}")).await;
    assert_eq!(one.types_until_quiet(1).await, [("ADDED".to_string(), node)]);
}

#[tokio::test]
async fn watch_selector_transitions_and_timeout() {
    let s = sim();
    let node = s.kube(|k| k.nodes.keys().next().unwrap().clone());
    let rv = s.kube(|k| k.rv);
    let mut w = s
        .watch(&format!(
            "/api/v1/nodes?watch=true&resourceVersion={rv}&fieldSelector=spec.unschedulable%3Dfalse&timeoutSeconds=1"
        ))
        .await;
    s.shared.world().clusters[0]
        .kube
        .update_node(&node, |n| n.unschedulable = true);
    // The node stops matching: the client is told it is gone from its view.
    assert_eq!(w.types_until_quiet(1).await, [("DELETED".to_string(), node.clone())]);
    s.shared.world().clusters[0]
        .kube
        .update_node(&node, |n| n.unschedulable = false);
    assert_eq!(w.types_until_quiet(1).await, [("MODIFIED".to_string(), node)]);
    let t = std::time::Instant::now();
    assert!(w.next().await.is_none(), "timeoutSeconds ends the stream");
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn watch_bookmarks_and_ends_when_the_api_becomes_unreachable() {
    let s = sim();
    let (rv, node) = s.kube(|k| (k.rv, k.nodes.keys().next().unwrap().clone()));
    let mut w = s
        .watch(&format!(
            "/api/v1/nodes?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"
        ))
        .await;
    let b = w.next().await.unwrap();
    assert_eq!(
        (&b["type"], &b["object"]["metadata"]["resourceVersion"]),
        (&json!("BOOKMARK"), &json!(rv.to_string()))
    );
    assert!(b["object"]["metadata"].get("annotations").is_none());
    // A pod change is filtered out of a node watch, but the next bookmark covers it.
    let pod = s.ready_web_pod();
    s.shared.world().evict(0, &("shop".into(), pod)).unwrap();
    let rv = json!(s.kube(|k| k.rv).to_string());
    for i in 0.. {
        let b = w.next().await.unwrap();
        assert_eq!(b["type"], "BOOKMARK");
        if b["object"]["metadata"]["resourceVersion"] == rv {
            break;
        }
        assert!(i < 20, "no bookmark at {rv}");
    }
    s.shared.world().clusters[0]
        .kube
        .update_node(&node, |n| n.ready = false);
    loop {
        let e = w.next().await.unwrap();
        if e["type"] == "MODIFIED" {
            assert_eq!(e["object"]["metadata"]["name"], node.as_str());
            break;
        }
    }
    s.shared.clock.advance(Duration::from_secs(3600));
    while let Some(e) = w.next().await {
        assert_eq!(e["type"], "BOOKMARK", "only bookmarks until the fault is noticed");
    }
}

#[tokio::test]
async fn dropped_watch_releases_its_receiver() {
    let s = sim();
    let w = s.watch("/api/v1/pods?watch=true").await;
    let receivers = || s.kube(|k| k.watchers.as_ref().map_or(0, |tx| tx.receiver_count()));
    assert_eq!(receivers(), 1);
    drop(w);
    assert_eq!(receivers(), 0);
}

#[tokio::test]
async fn table_watch_for_kubectl_get_w() {
    let s = sim();
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let req = s
        .req("GET", "/api/v1/namespaces/shop/pods?watch=true")
        .header(header::ACCEPT, accept);
    let resp = handle(s.shared.clone(), req.body(Body::empty()).unwrap()).await;
    let mut w = Watch {
        body: resp.into_body().into_data_stream(),
        buf: Vec::new(),
    };
    let e = w.next().await.unwrap();
    assert_eq!((&e["type"], &e["object"]["kind"]), (&json!("ADDED"), &json!("Table")));
    assert_eq!(e["object"]["rows"].as_array().unwrap().len(), 1);
}

/// `kubectl describe pod` finds the pod's events by involvedObject name, namespace and
/// uid: an event names all three.
#[tokio::test]
async fn events_name_their_object_by_namespace_and_uid() {
    let s = sim();
    let pod = s.ready_web_pod();
    let uid = s.kube(|k| k.pods[&("shop".to_string(), pod.clone())].uid.clone());
    s.shared
        .world()
        .kube_event(0, "shop", "Pod", &pod, "BackOff", "Back-off restarting", "Warning");
    let (code, list) = s
        .get(&format!(
            "/api/v1/namespaces/shop/events?fieldSelector=involvedObject.name%3D{pod},involvedObject.namespace%3Dshop,involvedObject.uid%3D{uid}"
        ))
        .await;
    assert_eq!(code, StatusCode::OK, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["involvedObject"]["uid"], uid.as_str());
}
