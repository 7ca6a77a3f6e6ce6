//! Every route: reachable, described in the OpenAPI document, protected (except
//! health), and each read and operator decision doing what it says.

use crate::harness::{ALICE, BOB, Harness, OPS, VIEWER, code};
use reqwest::{Method, StatusCode};
use ringmaster::clock::Clock;
use ringmaster::engine::{RingStatus, RolloutStatus, StepStatus};
use serde_json::json;

/// The route's path with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{id}", "r1")
        .replace("{ring}", "prod")
        .replace("{cluster}", "aks-prd-weu-01")
}

#[tokio::test]
async fn every_route_but_health_needs_a_token_and_refusals_change_nothing() {
    let h = Harness::start().await;
    let (s, v) = h.get(None, "/healthz").await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, v) = h.get(None, "/readyz").await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ready")));
    let before = h.observable();
    let mut protected = 0;
    for (method, path) in ringmaster::api::route_list() {
        // Health probes, and the dashboard's sign-in and "who am I" (they take no token).
        if path == "/healthz" || path == "/readyz" || (path == "/api/v1/session" && method != Method::DELETE) {
            continue;
        }
        protected += 1;
        let body = (method == Method::POST).then(|| json!({ "reason": "x", "comment": "x" }));
        let (s, headers, v) = h.call(method.clone(), None, &concrete(path), body).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path}: {v}");
        assert_eq!(code(&v), "missing_token", "{method} {path}");
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
    }
    assert_eq!(h.observable(), before, "a refused call changed something");
    // Counted and sampled: one row for the first refusal of this source and reason in
    // the minute, and one with the count when the minute closes.
    let denied = h.audit_actions("auth.denied");
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0].actor, "anonymous");
    assert_eq!(denied[0].rollout_id, None);
    assert_eq!(denied[0].detail["source"], "127.0.0.1");
    assert_eq!(
        h.metrics.get("ringmaster_api_denied_total", &[("status", "401")]),
        protected as f64
    );
    h.clock.advance(chrono::Duration::minutes(1));
    for e in h.denials.flush(h.clock.now()) {
        h.store.append_audit(&e).unwrap();
    }
    let repeated = h.audit_actions("auth.denied.repeated");
    assert_eq!(repeated.len(), 1);
    assert_eq!(repeated[0].detail["count"], protected as u64 - 1);
}

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_routes() {
    let h = Harness::start().await;
    let (s, doc) = h.get(Some(VIEWER), "/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let routes = ringmaster::api::route_list();
    for (method, path) in &routes {
        let op = &doc["paths"][*path][method.as_str().to_lowercase()];
        assert!(op.is_object(), "{method} {path} is not in /openapi.json");
        assert!(op["responses"].is_object(), "{method} {path} has no responses");
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        routes.len(),
        "the document describes routes the router lacks"
    );
    assert_eq!(doc["paths"]["/healthz"]["get"]["security"], json!([]));
}

#[tokio::test]
async fn reads_show_rings_clusters_steps_and_gate_reasons() {
    let h = Harness::start().await;
    h.standin.with("r1", |r| {
        let c = std::sync::Arc::make_mut(&mut r.rings[1].waves[0].clusters[0]);
        c.steps[0].status = StepStatus::Gating {
            since: r.created_at,
            passing_since: None,
            last: Some("shop/web: 1/3 Ready".into()),
        };
    });
    let (s, v) = h.get(Some(VIEWER), "/api/v1/rollouts").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["active"], serde_json::json!(["r1"]));
    assert_eq!(v["rollouts"][0]["id"], "r1");
    assert_eq!(v["rollouts"][0]["status"], "running");

    let (s, r) = h.get(Some(VIEWER), "/api/v1/rollouts/r1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["status"]["state"], "running");
    assert_eq!(r["approvalTarget"], "1.33.3");
    let names: Vec<&str> = r["rings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dev", "staging", "prod"]);
    assert_eq!(r["rings"][0]["status"]["state"], "passed");
    assert_eq!(r["rings"][1]["status"]["state"], "soaking");
    assert_eq!(r["rings"][2]["approvers"], json!(["platform-admins"]));
    assert_eq!(r["rings"][2]["approvalExpiresAfterSeconds"], 8 * 3600);
    let step = &r["rings"][1]["waves"][0]["clusters"][0]["steps"][0];
    assert_eq!(step["status"]["state"], "gating");
    assert_eq!(step["status"]["last"], "shop/web: 1/3 Ready");
    assert_eq!(r["rings"][2]["waves"][0]["clusters"][0]["status"]["state"], "pending");

    let (s, v) = h.get(Some(VIEWER), "/api/v1/rollouts/nope").await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "unknown_rollout"));
    let (s, v) = h.get(Some(VIEWER), "/api/v1/rollouts/r1/approvals").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["pending"], json!([]), "prod is not waiting yet");

    let (s, v) = h.get(Some(VIEWER), "/api/v1/audit?rollout=r1&limit=5").await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["entries"].is_array());
    let (s, v) = h.get(Some(VIEWER), "/api/v1/audit?limit=0").await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "bad_query"));
    let (s, v) = h.get(Some(VIEWER), "/api/v1/audit?limit=lots").await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "bad_query"));

    let (s, v) = h.get(Some(VIEWER), "/api/v1/nothing-here").await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, _, v) = h.call(Method::DELETE, Some(VIEWER), "/api/v1/rollouts", None).await;
    assert_eq!((s, code(&v)), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));

    let resp = h
        .http
        .get(format!("{}/metrics", h.base))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("ringmaster_api_requests_total{method=\"GET\",route=\"/api/v1/rollouts/{id}\",status=\"200\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn operators_pause_resume_skip_promote_abort_and_start() {
    let h = Harness::start().await;
    let p = |path: &str| format!("/api/v1/rollouts/r1{path}");
    // Not an operator: refused, audited, nothing sent.
    let (s, v) = h.post(Some(BOB), &p("/pause"), json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "forbidden"));
    assert!(v["error"]["message"].as_str().unwrap().contains("sre"));
    assert!(h.standin.sent.lock().unwrap().is_empty());
    assert_eq!(h.audit_actions("auth.denied")[0].actor, "bob");

    let (s, v) = h
        .post(Some(OPS), &p("/pause"), json!({ "reason": "change freeze" }))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], true);
    assert_eq!(v["result"], "applied");
    assert_eq!(v["status"]["state"], "paused");
    assert!(matches!(h.standin.rollout("r1").status, RolloutStatus::Paused { ref by, .. } if by == "ops"));
    // Pausing again changes nothing, says so, and is not recorded again.
    let (s, v) = h.post(Some(OPS), &p("/pause"), json!({})).await;
    assert_eq!((s, v["result"].as_str()), (StatusCode::OK, Some("unchanged")), "{v}");
    assert_eq!(v["status"]["state"], "paused");
    assert_eq!(h.audit_actions("api.pause").len(), 1);
    let (s, v) = h.post(Some(OPS), &p("/resume"), json!({})).await;
    assert_eq!((s, v["result"].as_str()), (StatusCode::OK, Some("applied")), "{v}");
    assert_eq!(h.standin.rollout("r1").status, RolloutStatus::Running);
    let (s, v) = h.post(Some(OPS), &p("/resume"), json!({})).await;
    assert_eq!((s, v["result"].as_str()), (StatusCode::OK, Some("unchanged")), "{v}");

    let (s, _) = h.post(Some(OPS), &p("/pause"), json!({ "ring": "prod" })).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h.standin.rollout("r1").rings[2].paused);
    let (s, _) = h.post(Some(OPS), &p("/resume"), json!({ "ring": "prod" })).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!h.standin.rollout("r1").rings[2].paused);
    let (s, _) = h
        .post(Some(OPS), &p("/pause"), json!({ "cluster": "aks-prd-weu-01" }))
        .await;
    assert_eq!(s, StatusCode::OK);
    let r = h.standin.rollout("r1");
    assert!(r.clusters().any(|(_, c)| c.id.name == "aks-prd-weu-01" && c.paused));
    let (s, v) = h
        .post(Some(OPS), &p("/pause"), json!({ "ring": "prod", "cluster": "x" }))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "bad_scope"));
    let (s, v) = h.post(Some(OPS), &p("/pause"), json!({ "ring": "qa" })).await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "unknown_ring"));
    let (s, v) = h.post(Some(OPS), &p("/pause"), json!({ "reson": "typo" })).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "bad_body"));

    let (s, v) = h.post(Some(OPS), &p("/clusters/aks-prd-weu-01/skip"), json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "missing_field"));
    let (s, _) = h
        .post(
            Some(OPS),
            &p("/clusters/aks-prd-weu-01/skip"),
            json!({ "reason": "decommissioned" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let r = h.standin.rollout("r1");
    assert!(
        r.clusters()
            .any(|(_, c)| c.id.name == "aks-prd-weu-01" && c.status.is_finished())
    );
    let (s, v) = h
        .post(
            Some(OPS),
            &p("/clusters/aks-prd-weu-01/skip"),
            json!({ "reason": "again" }),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "cluster_finished"));
    let (s, v) = h
        .post(Some(OPS), &p("/clusters/nope/skip"), json!({ "reason": "x" }))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "unknown_cluster"));

    let (s, v) = h
        .post(Some(OPS), &p("/rings/prod/promote-now"), json!({ "reason": "x" }))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "not_soaking"));
    let (s, _) = h
        .post(
            Some(OPS),
            &p("/rings/staging/promote-now"),
            json!({ "reason": "hotfix" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let r = h.standin.rollout("r1");
    assert_eq!(r.rings[1].status, RingStatus::Passed);
    assert!(matches!(r.rings[2].status, RingStatus::AwaitingApproval { .. }));

    let (s, v) = h.post(Some(OPS), &p("/abort"), json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "missing_field"));
    let (s, v) = h.post(Some(ALICE), "/api/v1/rollouts", json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "already_running"));
    let (s, _) = h
        .post(Some(OPS), &p("/abort"), json!({ "reason": "bad release" }))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(matches!(h.standin.rollout("r1").status, RolloutStatus::Aborted { .. }));
    let (s, v) = h.post(Some(OPS), &p("/pause"), json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "rollout_finished"));

    let (s, v) = h.post(Some(VIEWER), "/api/v1/rollouts", json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = h
        .call(Method::POST, Some(ALICE), "/api/v1/rollouts", None)
        .await
        .into_pair();
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["id"], "r2");

    // Who did what: the API's entries and the engine's.
    let actions: Vec<(String, String)> = h
        .audit()
        .into_iter()
        .filter(|e| e.action.starts_with("api."))
        .map(|e| (e.actor, e.action))
        .collect();
    for expected in [
        ("ops", "api.pause"),
        ("ops", "api.resume"),
        ("ops", "api.skip"),
        ("ops", "api.promote_now"),
        ("ops", "api.abort"),
        ("alice", "api.start"),
    ] {
        assert!(
            actions.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} not in {actions:?}"
        );
    }
    assert!(
        h.audit()
            .iter()
            .any(|e| e.action == "rollout.aborted" && e.actor == "ops")
    );
}

trait IntoPair {
    fn into_pair(self) -> (StatusCode, serde_json::Value);
}

impl IntoPair for (StatusCode, reqwest::header::HeaderMap, serde_json::Value) {
    fn into_pair(self) -> (StatusCode, serde_json::Value) {
        (self.0, self.2)
    }
}
