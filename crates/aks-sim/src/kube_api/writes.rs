//! The two writes the simulator serves: pod eviction (what `kubectl drain` and AKS's
//! own drain do, refused while a PodDisruptionBudget allows no disruption) and node
//! patches limited to cordon and labels.

use super::{ApiError, NODES, PODS, Req, Result, json_response, object_key, status_value};
use crate::kube_model::{Kind, render_node};
use crate::world::{EvictError, World};
use axum::response::Response;
use http::{StatusCode, header};
use serde_json::{Value, json};

pub(super) fn evict(world: &mut World, c: usize, ns: &str, name: &str, req: &Req<'_>) -> Result<Response> {
    let body: Value = if req.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&req.body).map_err(|e| ApiError::bad_request(format!("invalid Eviction: {e}")))?
    };
    if body["metadata"]["name"].as_str().is_some_and(|n| n != name) {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let dry_run = req.q("dryRun").is_some()
        || body["deleteOptions"]["dryRun"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
    let key = (ns.to_string(), name.to_string());
    let result = if dry_run {
        // A dry run only checks that the pod exists: it does not consult the budget.
        if world.clusters[c].kube.pods.contains_key(&key) {
            Ok(())
        } else {
            Err(EvictError::NotFound)
        }
    } else {
        world.evict(c, &key)
    };
    match result {
        Ok(()) => Ok(json_response(
            StatusCode::CREATED,
            &status_value("Success", StatusCode::CREATED),
        )),
        Err(EvictError::NotFound) => Err(ApiError::not_found(PODS, name)),
        Err(EvictError::Pdb(pdb)) => {
            let (pdb_ns, pdb_name) = pdb.split_once('/').unwrap_or((ns, pdb.as_str()));
            let status = world.clusters[c]
                .kube
                .render_all(Kind::PodDisruptionBudget)
                .into_iter()
                .find(|p| object_key(p) == (pdb_ns.to_string(), pdb_name.to_string()))
                .map(|p| p["status"].clone())
                .unwrap_or_default();
            let cause = format!(
                "The disruption budget {pdb_name} needs {} healthy pods and has {} currently",
                status["desiredHealthy"].as_u64().unwrap_or(0),
                status["currentHealthy"].as_u64().unwrap_or(0)
            );
            let msg = "Cannot evict pod as it would violate the pod's disruption budget.";
            Err(ApiError {
                details: Some(json!({ "causes": [{ "reason": "DisruptionBudget", "message": cause }] })),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", msg)
            })
        }
    }
}

/// What a node patch may change: the simulator models cordon and labels only.
#[derive(Debug, Default, PartialEq)]
struct NodePatch {
    unschedulable: Option<bool>,
    labels: Vec<(String, Option<String>)>,
}

const NODE_PATCH_SCOPE: &str = "the simulator can patch only spec.unschedulable and metadata.labels of a node";

impl NodePatch {
    /// A JSON merge patch or strategic merge patch (same thing for these fields).
    fn from_merge(p: &Value) -> Result<Self> {
        let mut out = NodePatch::default();
        let obj = p
            .as_object()
            .ok_or_else(|| ApiError::bad_request("a merge patch must be a JSON object"))?;
        for (k, v) in obj {
            match (k.as_str(), v) {
                ("kind" | "apiVersion", _) => {}
                ("spec", Value::Object(spec)) => {
                    for (sk, sv) in spec {
                        match (sk.as_str(), sv) {
                            ("unschedulable", Value::Bool(b)) => out.unschedulable = Some(*b),
                            ("unschedulable", Value::Null) => out.unschedulable = Some(false),
                            _ => return Err(ApiError::invalid(NODE_PATCH_SCOPE)),
                        }
                    }
                }
                ("metadata", Value::Object(meta)) => {
                    for (mk, mv) in meta {
                        match (mk.as_str(), mv) {
                            ("name" | "resourceVersion", _) => {}
                            ("labels", Value::Object(l)) => {
                                for (lk, lv) in l {
                                    out.labels.push((lk.clone(), label_value(lv)?));
                                }
                            }
                            _ => return Err(ApiError::invalid(NODE_PATCH_SCOPE)),
                        }
                    }
                }
                _ => return Err(ApiError::invalid(NODE_PATCH_SCOPE)),
            }
        }
        Ok(out)
    }

    /// A JSON patch (RFC 6902) of `add`, `replace` and `remove` operations.
    fn from_json_patch(p: &Value) -> Result<Self> {
        let mut out = NodePatch::default();
        let ops = p
            .as_array()
            .ok_or_else(|| ApiError::bad_request("a JSON patch must be an array"))?;
        for op in ops {
            let (o, path) = (
                op["op"].as_str().unwrap_or_default(),
                op["path"].as_str().unwrap_or_default(),
            );
            let remove = o == "remove";
            if !matches!(o, "add" | "replace" | "remove") {
                return Err(ApiError::invalid(format!("unsupported JSON patch operation {o:?}")));
            }
            if path == "/spec/unschedulable" {
                out.unschedulable = Some(!remove && op["value"].as_bool().unwrap_or(false));
            } else if let Some(k) = path.strip_prefix("/metadata/labels/") {
                let k = k.replace("~1", "/").replace("~0", "~");
                out.labels
                    .push((k, if remove { None } else { label_value(&op["value"])? }));
            } else {
                return Err(ApiError::invalid(NODE_PATCH_SCOPE));
            }
        }
        Ok(out)
    }
}

fn label_value(v: &Value) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(ApiError::invalid("label values must be strings")),
    }
}

pub(super) fn patch_node(world: &mut World, c: usize, name: &str, req: &Req<'_>) -> Result<Response> {
    if !world.clusters[c].kube.nodes.contains_key(name) {
        return Err(ApiError::not_found(NODES, name));
    }
    let ct = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let ct = ct.split(';').next().unwrap_or_default().trim();
    let value: Value =
        serde_json::from_slice(&req.body).map_err(|e| ApiError::bad_request(format!("invalid patch: {e}")))?;
    let patch = match ct {
        "application/json-patch+json" => NodePatch::from_json_patch(&value)?,
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => NodePatch::from_merge(&value)?,
        _ => {
            let msg = format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {ct:?})"
            );
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                msg,
            ));
        }
    };
    let was_unschedulable = world.clusters[c].kube.nodes[name].unschedulable;
    if patch != NodePatch::default() {
        world.clusters[c].kube.update_node(name, |n| {
            if let Some(u) = patch.unschedulable {
                n.unschedulable = u;
            }
            for (k, v) in &patch.labels {
                match v {
                    Some(v) => n.extra_labels.insert(k.clone(), v.clone()),
                    None => n.extra_labels.remove(k),
                };
            }
        });
    }
    if was_unschedulable && patch.unschedulable == Some(false) {
        // Pending pods get another chance on the uncordoned node.
        world.kick_unscheduled(c);
    }
    Ok(json_response(
        StatusCode::OK,
        &render_node(&world.clusters[c].kube.nodes[name]),
    ))
}
