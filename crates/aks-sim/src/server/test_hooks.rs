//! The test hooks (`/_sim/...`): the simulator's own endpoints for tests and the demo
//! (the clock and advancing it, operations, pods' readiness, the request log, expiring
//! tokens), behind an ARM token like ARM itself.

use super::Ctx;
use super::arm_routes::{reply_to_response, unauthorized};
use super::routes::{json_response, query_pairs};
use crate::auth::{self, ARM_AUDIENCE};
use axum::extract::Request;
use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

pub(super) async fn admin(ctx: &Ctx, req: Request, segments: &[String]) -> Response {
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
                        "target": match &op.target { crate::operation::Target::Cluster => "cluster".to_string(), crate::operation::Target::Pool(p) => format!("pool/{p}") },
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
            let mut latest: std::collections::BTreeMap<&str, crate::clock::SimTime> = Default::default();
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
