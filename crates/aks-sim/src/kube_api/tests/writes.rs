//! Writes through the Kubernetes API handler: evictions that respect the budget, and
//! cordoning and labelling nodes.

use super::*;

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
