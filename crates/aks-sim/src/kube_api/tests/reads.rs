//! Reads through the Kubernetes API handler: routing, authorisation and unreachable
//! clusters, version and discovery, lists, gets and selectors, paging with `continue`,
//! and events found by the object they name.

use super::*;

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
