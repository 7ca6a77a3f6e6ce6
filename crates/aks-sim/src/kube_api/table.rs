//! Server-side printing: the `Table` kubectl asks for (`Accept: ...;as=Table`) so that
//! `kubectl get` shows the usual columns. Ages are counted on the simulated clock, which
//! kubectl could not do itself (it would compare simulated timestamps to its wall clock).

use super::Resource;
use crate::clock::SimTime;
use crate::kube_model::Kind;
use chrono::DateTime;
use http::{HeaderMap, header};
use serde_json::{Value, json};
use std::collections::HashMap;

/// What `?includeObject=` asks each row to carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Include {
    None,
    Metadata,
    Object,
}

/// A request for a `Table` instead of the objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOpts {
    include: Include,
    api_version: &'static str,
}

impl TableOpts {
    /// Whether the client prefers a Table: the first media type of `Accept` that we
    /// serve decides (kubectl lists Table v1, Table v1beta1, then plain JSON).
    pub fn from_request(headers: &HeaderMap, query: &HashMap<String, String>) -> Option<Self> {
        let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
        for media in accept.split(',') {
            let params: Vec<&str> = media.split(';').map(str::trim).collect();
            if !matches!(params[0], "application/json" | "*/*" | "application/*") {
                continue;
            }
            if params.contains(&"as=Table") {
                let include = match query.get("includeObject").map(String::as_str) {
                    Some("None") => Include::None,
                    Some("Object") => Include::Object,
                    _ => Include::Metadata,
                };
                let api_version = if params.contains(&"v=v1beta1") {
                    "meta.k8s.io/v1beta1"
                } else {
                    "meta.k8s.io/v1"
                };
                return Some(Self { include, api_version });
            }
            if params
                .iter()
                .skip(1)
                .all(|p| p.starts_with("q=") || p.starts_with("charset="))
            {
                return None;
            }
        }
        None
    }

    /// The objects as a `Table` with list metadata `meta`.
    pub fn table(&self, res: &Resource, items: &[Value], now: SimTime, meta: Value) -> Value {
        let columns: Vec<Value> = columns(res.kind)
            .iter()
            .map(|(name, typ, format, priority)| {
                json!({ "name": name, "type": typ, "format": format, "description": "", "priority": priority })
            })
            .collect();
        let rows: Vec<Value> = items
            .iter()
            .map(|o| {
                let mut row = json!({ "cells": cells(res.kind, o, now) });
                match self.include {
                    Include::None => {}
                    Include::Metadata => {
                        row["object"] = json!({
                            "kind": "PartialObjectMetadata",
                            "apiVersion": "meta.k8s.io/v1",
                            "metadata": o["metadata"],
                        });
                    }
                    Include::Object => row["object"] = o.clone(),
                }
                row
            })
            .collect();
        json!({ "kind": "Table", "apiVersion": self.api_version, "metadata": meta, "columnDefinitions": columns, "rows": rows })
    }
}

type Column = (&'static str, &'static str, &'static str, u8);

/// kubectl's own columns per kind: (name, type, format, priority; 1 = only with `-o wide`).
fn columns(kind: Kind) -> &'static [Column] {
    match kind {
        Kind::Pod => &[
            ("Name", "string", "name", 0),
            ("Ready", "string", "", 0),
            ("Status", "string", "", 0),
            ("Restarts", "string", "", 0),
            ("Age", "string", "", 0),
            ("IP", "string", "", 1),
            ("Node", "string", "", 1),
            ("Nominated Node", "string", "", 1),
            ("Readiness Gates", "string", "", 1),
        ],
        Kind::Node => &[
            ("Name", "string", "name", 0),
            ("Status", "string", "", 0),
            ("Roles", "string", "", 0),
            ("Age", "string", "", 0),
            ("Version", "string", "", 0),
            ("Internal-IP", "string", "", 1),
            ("External-IP", "string", "", 1),
            ("OS-Image", "string", "", 1),
            ("Kernel-Version", "string", "", 1),
            ("Container-Runtime", "string", "", 1),
        ],
        Kind::Deployment => &[
            ("Name", "string", "name", 0),
            ("Ready", "string", "", 0),
            ("Up-to-date", "integer", "", 0),
            ("Available", "integer", "", 0),
            ("Age", "string", "", 0),
            ("Selector", "string", "", 1),
        ],
        Kind::ReplicaSet => &[
            ("Name", "string", "name", 0),
            ("Desired", "integer", "", 0),
            ("Current", "integer", "", 0),
            ("Ready", "integer", "", 0),
            ("Age", "string", "", 0),
            ("Selector", "string", "", 1),
        ],
        Kind::PodDisruptionBudget => &[
            ("Name", "string", "name", 0),
            ("Min Available", "string", "", 0),
            ("Max Unavailable", "string", "", 0),
            ("Allowed Disruptions", "integer", "", 0),
            ("Age", "string", "", 0),
        ],
        Kind::Namespace => &[
            ("Name", "string", "name", 0),
            ("Status", "string", "", 0),
            ("Age", "string", "", 0),
        ],
        Kind::Event => &[
            ("Last Seen", "string", "", 0),
            ("Type", "string", "", 0),
            ("Reason", "string", "", 0),
            ("Object", "string", "", 0),
            ("Message", "string", "", 0),
            ("Name", "string", "name", 1),
        ],
    }
}

fn cells(kind: Kind, o: &Value, now: SimTime) -> Vec<Value> {
    let s = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    let n = |p: &str| o.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let or_none = |v: String| if v.is_empty() { "<none>".to_string() } else { v };
    let name = s("/metadata/name");
    let age = age(&s("/metadata/creationTimestamp"), now);
    let selector = || {
        let m = o.pointer("/spec/selector/matchLabels").and_then(Value::as_object);
        m.map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
    };
    match kind {
        Kind::Pod => {
            let statuses = o.pointer("/status/containerStatuses").and_then(Value::as_array);
            let containers = o
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses.map_or(0, |c| c.iter().filter(|c| c["ready"] == true).count());
            let restarts: u64 = statuses.map_or(0, |c| c.iter().filter_map(|c| c["restartCount"].as_u64()).sum());
            let waiting = statuses.and_then(|c| {
                c.iter()
                    .find_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str))
            });
            let status = waiting.map_or_else(|| s("/status/phase"), str::to_string);
            let ip = or_none(s("/status/podIP"));
            let node = or_none(s("/spec/nodeName"));
            vec![
                json!(name),
                json!(format!("{ready}/{containers}")),
                json!(status),
                json!(restarts),
                json!(age),
                json!(ip),
                json!(node),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        Kind::Node => {
            let conditions = o.pointer("/status/conditions").and_then(Value::as_array);
            let ready = conditions
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .map(|c| c["status"] == "True");
            let mut status = if ready == Some(true) { "Ready" } else { "NotReady" }.to_string();
            if o.pointer("/spec/unschedulable") == Some(&Value::Bool(true)) {
                status.push_str(",SchedulingDisabled");
            }
            let mut roles: Vec<String> = o
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|l| {
                    l.iter()
                        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
                            Some(r) if !r.is_empty() => Some(r.to_string()),
                            _ if k == "kubernetes.io/role" => v.as_str().map(str::to_string),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            roles.sort();
            roles.dedup();
            let roles = if roles.is_empty() {
                "<none>".to_string()
            } else {
                roles.join(",")
            };
            let info = |k: &str| s(&format!("/status/nodeInfo/{k}"));
            vec![
                json!(name),
                json!(status),
                json!(roles),
                json!(age),
                json!(info("kubeletVersion")),
                json!("<none>"),
                json!("<none>"),
                json!(info("osImage")),
                json!(info("kernelVersion")),
                json!(info("containerRuntimeVersion")),
            ]
        }
        Kind::Deployment => vec![
            json!(name),
            json!(format!("{}/{}", n("/status/readyReplicas"), n("/spec/replicas"))),
            json!(n("/status/updatedReplicas")),
            json!(n("/status/availableReplicas")),
            json!(age),
            json!(selector()),
        ],
        Kind::ReplicaSet => vec![
            json!(name),
            json!(n("/spec/replicas")),
            json!(n("/status/replicas")),
            json!(n("/status/readyReplicas")),
            json!(age),
            json!(selector()),
        ],
        Kind::PodDisruptionBudget => {
            let spec = |k: &str| {
                o["spec"]
                    .get(k)
                    .map_or("N/A".to_string(), |v| v.to_string().replace('"', ""))
            };
            vec![
                json!(name),
                json!(spec("minAvailable")),
                json!(spec("maxUnavailable")),
                json!(n("/status/disruptionsAllowed")),
                json!(age),
            ]
        }
        Kind::Namespace => vec![json!(name), json!(s("/status/phase")), json!(age)],
        Kind::Event => {
            let object = format!(
                "{}/{}",
                s("/involvedObject/kind").to_lowercase(),
                s("/involvedObject/name")
            );
            vec![
                json!(self::age(&s("/lastTimestamp"), now)),
                json!(s("/type")),
                json!(s("/reason")),
                json!(object),
                json!(s("/message")),
                json!(name),
            ]
        }
    }
}

/// Time since an RFC 3339 timestamp on the simulated clock, as kubectl prints ages.
fn age(ts: &str, now: SimTime) -> String {
    match DateTime::parse_from_rfc3339(ts) {
        Ok(t) => human_duration((now.0 - t.timestamp_millis()) / 1000),
        Err(_) => "<unknown>".into(),
    }
}

/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration`, from seconds.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let secs = secs.max(0);
    let (minutes, hours) = (secs / 60, secs / 3600);
    let two = |a: i64, ua: &str, b: i64, ub: &str| {
        if b == 0 {
            format!("{a}{ua}")
        } else {
            format!("{a}{ua}{b}{ub}")
        }
    };
    match () {
        () if secs < 120 => format!("{secs}s"),
        () if minutes < 10 => two(minutes, "m", secs % 60, "s"),
        () if minutes < 180 => format!("{minutes}m"),
        () if hours < 8 => two(hours, "h", minutes % 60, "m"),
        () if hours < 48 => format!("{hours}h"),
        () if hours < 24 * 8 => two(hours / 24, "d", hours % 24, "h"),
        () if hours < 24 * 365 * 2 => format!("{}d", hours / 24),
        () if hours < 24 * 365 * 8 => two(hours / 24 / 365, "y", (hours / 24) % 365, "d"),
        () => format!("{}y", hours / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn opts(accept: &str, include: Option<&str>) -> Option<TableOpts> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        let q: HashMap<String, String> = include
            .map(|i| ("includeObject".to_string(), i.to_string()))
            .into_iter()
            .collect();
        TableOpts::from_request(&h, &q)
    }

    #[test]
    fn accept_header_decides() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        let t = opts(kubectl, None).unwrap();
        assert_eq!((t.include, t.api_version), (Include::Metadata, "meta.k8s.io/v1"));
        assert_eq!(opts(kubectl, Some("Object")).unwrap().include, Include::Object);
        assert_eq!(opts("application/json", None), None);
        assert_eq!(
            opts("application/json, application/json;as=Table;v=v1;g=meta.k8s.io", None),
            None
        );
        assert_eq!(
            opts("application/vnd.kubernetes.protobuf, application/json", None),
            None
        );
        let old = opts("application/json;as=Table;v=v1beta1;g=meta.k8s.io", None).unwrap();
        assert_eq!(old.api_version, "meta.k8s.io/v1beta1");
    }

    #[test]
    fn ages_print_like_kubectl() {
        for (secs, want) in [
            (-5, "<invalid>"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60 * 5, "3h5m"),
            (30 * 3600, "30h"),
            (3 * 86400 + 3600, "3d1h"),
            (40 * 86400, "40d"),
            (3 * 365 * 86400 + 86400, "3y1d"),
            (9 * 365 * 86400, "9y"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    fn node_and_pod_cells() {
        let now = SimTime::from_datetime(DateTime::parse_from_rfc3339("2026-01-01T01:00:00Z").unwrap().into());
        let node = json!({
            "metadata": { "name": "n1", "creationTimestamp": "2026-01-01T00:00:00Z", "labels": { "kubernetes.io/role": "agent" } },
            "spec": { "unschedulable": true },
            "status": { "conditions": [{ "type": "Ready", "status": "True" }], "nodeInfo": { "kubeletVersion": "v1.33.2" } },
        });
        let c = cells(Kind::Node, &node, now);
        assert_eq!(
            c[..5],
            [
                json!("n1"),
                json!("Ready,SchedulingDisabled"),
                json!("agent"),
                json!("60m"),
                json!("v1.33.2")
            ]
        );
        let pod = json!({
            "metadata": { "name": "p", "creationTimestamp": "2026-01-01T00:59:00Z" },
            "spec": { "containers": [{ "name": "app" }], "nodeName": "n1" },
            "status": { "phase": "Running", "containerStatuses": [{ "ready": false, "restartCount": 3, "state": { "waiting": { "reason": "CrashLoopBackOff" } } }] },
        });
        let c = cells(Kind::Pod, &pod, now);
        assert_eq!(
            c[..5],
            [
                json!("p"),
                json!("0/1"),
                json!("CrashLoopBackOff"),
                json!(3),
                json!("60s")
            ]
        );
        assert_eq!(c[6], json!("n1"));
        let t = opts("application/json;as=Table;v=v1;g=meta.k8s.io", None).unwrap();
        let res = super::super::PODS;
        let table = t.table(res, &[pod], now, json!({ "resourceVersion": "7" }));
        assert_eq!(table["kind"], "Table");
        assert_eq!(
            table["columnDefinitions"].as_array().unwrap().len(),
            table["rows"][0]["cells"].as_array().unwrap().len()
        );
        assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(table["rows"][0]["object"]["metadata"]["name"], "p");
    }
}
