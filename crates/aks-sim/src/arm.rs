//! The ARM API of the simulator: Azure's paths (matched case-insensitively, as ARM
//! does), status codes, headers and error shapes. Every operation of the table in
//! `aks-facts.md`. Authentication, throttling and fault injection happen in
//! `server/arm_routes.rs` before a request gets here.
//!
//! This file holds the request and reply types and the routing; the handlers sit by
//! resource: `managed_clusters`, `agent_pools`, `maintenance_configurations`,
//! `operations` (long-running operations and abort), with the checks writes share in
//! `write_checks`.

use super::arm_json as j;
use super::operation::Target;
use super::rules::Refusal;
use super::shared::Shared;
use super::world::World;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

mod agent_pools;
mod maintenance_configurations;
mod managed_clusters;
mod operations;
mod write_checks;

use agent_pools::pool_routes;
use maintenance_configurations::put_maintenance;
use managed_clusters::{credentials, list_clusters, put_cluster};
use operations::{abort, async_status, location_status};

/// An ARM answer before it becomes an HTTP response.
#[derive(Debug)]
pub struct ArmReply {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Value>,
}

impl ArmReply {
    /// An answer with no extra headers.
    pub fn with(status: StatusCode, body: Option<Value>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body,
        }
    }

    pub fn ok(body: Value) -> Self {
        Self::with(StatusCode::OK, Some(body))
    }

    /// A resource-provider error: AKS answers these flat (`{code, message}`).
    pub fn rp_error(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self::with(status, Some(json!({ "code": code, "message": message.into() })))
    }

    /// A refusal of the simulator's rules (with AKS's `subcode` when it has one).
    pub fn refusal(status: StatusCode, r: &Refusal) -> Self {
        let mut body = json!({ "code": r.code, "message": r.message });
        if let Some(sub) = r.subcode {
            body["subcode"] = json!(sub);
        }
        Self::with(status, Some(body))
    }

    /// An ARM-level error, wrapped (`{error: {code, message}}`).
    pub fn arm_error(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self::with(
            status,
            Some(json!({ "error": { "code": code, "message": message.into() } })),
        )
    }
}

/// What a request asks, after the path was split.
pub struct ArmRequest<'a> {
    pub method: &'a Method,
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub api_version: String,
}

impl ArmRequest<'_> {
    pub(super) fn query(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(q, _)| q.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    }
}

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Matches `segments` against a pattern where `*` captures.
pub(super) fn capture<'a>(segments: &'a [String], pattern: &[&str]) -> Option<Vec<&'a str>> {
    if segments.len() != pattern.len() {
        return None;
    }
    let mut caps = Vec::new();
    for (s, p) in segments.iter().zip(pattern) {
        if *p == "*" {
            caps.push(s.as_str());
        } else if !eq(s, p) {
            return None;
        }
    }
    Some(caps)
}

const RP: &str = "Microsoft.ContainerService";

/// Routes one authenticated ARM request.
pub fn dispatch(shared: &Shared, w: &mut World, r: &ArmRequest<'_>) -> ArmReply {
    let s = &r.segments;
    let m = r.method;
    if let Some(reply) = super::arm_usages::route(shared, w, r) {
        return reply;
    }
    if let Some(c) = capture(s, &["subscriptions", "*", "providers", RP, "managedClusters"]) {
        return only_get(m, || list_clusters(shared, w, r, c[0], None));
    }
    if let Some(c) = capture(
        s,
        &[
            "subscriptions",
            "*",
            "providers",
            RP,
            "locations",
            "*",
            "kubernetesVersions",
        ],
    ) {
        return only_get(m, || ArmReply::ok(j::kubernetes_versions(w, c[1])));
    }
    if let Some(c) = capture(
        s,
        &[
            "subscriptions",
            "*",
            "providers",
            RP,
            "locations",
            "*",
            "operations",
            "*",
        ],
    ) {
        return only_get(m, || async_status(shared, w, r, c[2]));
    }
    if let Some(c) = capture(
        s,
        &[
            "subscriptions",
            "*",
            "providers",
            RP,
            "locations",
            "*",
            "operationresults",
            "*",
        ],
    ) {
        return only_get(m, || location_status(shared, w, r, c[2]));
    }
    if let Some(c) = capture(
        s,
        &[
            "subscriptions",
            "*",
            "resourceGroups",
            "*",
            "providers",
            RP,
            "managedClusters",
        ],
    ) {
        return only_get(m, || list_clusters(shared, w, r, c[0], Some(c[1])));
    }
    // Everything below is under one managed cluster.
    if s.len() < 8
        || capture(
            &s[..7],
            &[
                "subscriptions",
                "*",
                "resourceGroups",
                "*",
                "providers",
                RP,
                "managedClusters",
            ],
        )
        .is_none()
    {
        return not_found_path(r);
    }
    let (sub, rg, name) = (s[1].as_str(), s[3].as_str(), s[7].as_str());
    let Some(ci) = w.cluster_index(sub, rg, name) else {
        if !w.clusters_in(sub, Some(rg)).is_empty() || s.len() > 8 || m != Method::PUT {
            return ArmReply::arm_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!(
                    "The Resource '{RP}/managedClusters/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
                ),
            );
        }
        return ArmReply::rp_error(
            StatusCode::BAD_REQUEST,
            "NotSupportedBySimulator",
            "Creating clusters is not supported by the simulator; define them in the fleet file.",
        );
    };
    let rest: Vec<&str> = s[8..].iter().map(String::as_str).collect();
    let lower: Vec<String> = rest.iter().map(|x| x.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    match (m.clone(), lower.as_slice()) {
        (Method::GET, []) => ArmReply::ok(j::managed_cluster(&w.clusters[ci])),
        (Method::PUT, []) => put_cluster(shared, w, r, ci),
        (Method::GET, ["upgradeprofiles", "default"]) => ArmReply::ok(j::cluster_upgrade_profile(w, &w.clusters[ci])),
        (Method::GET, ["availableagentpoolversions"]) => {
            ArmReply::ok(j::available_agent_pool_versions(w, &w.clusters[ci]))
        }
        (Method::POST, ["abort"]) => abort(shared, w, r, ci, Target::Cluster),
        (Method::POST, [cred @ ("listclusterusercredential" | "listclusteradmincredential")]) => {
            credentials(shared, w, r, ci, *cred == "listclusteradmincredential")
        }
        (Method::GET, ["maintenanceconfigurations"]) => {
            let c = &w.clusters[ci];
            let value: Vec<Value> = c
                .maintenance
                .iter()
                .map(|(n, p)| j::maintenance_configuration(c, n, p))
                .collect();
            ArmReply::ok(json!({ "value": value }))
        }
        (Method::GET, ["maintenanceconfigurations", _]) => {
            let c = &w.clusters[ci];
            match c.maintenance.iter().find(|(n, _)| eq(n, rest[1])) {
                Some((n, p)) => ArmReply::ok(j::maintenance_configuration(c, n, p)),
                None => ArmReply::arm_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("Maintenance configuration {} not found", rest[1]),
                ),
            }
        }
        (Method::PUT, ["maintenanceconfigurations", _]) => put_maintenance(w, r, ci, rest[1]),
        (Method::DELETE, ["maintenanceconfigurations", _]) => {
            let c = &mut w.clusters[ci];
            match c.maintenance.keys().find(|n| eq(n, rest[1])).cloned() {
                Some(n) => {
                    c.maintenance.remove(&n);
                    ArmReply::with(StatusCode::OK, None)
                }
                None => ArmReply::with(StatusCode::NO_CONTENT, None),
            }
        }
        (Method::GET, ["agentpools"]) => {
            let c = &w.clusters[ci];
            ArmReply::ok(json!({ "value": c.pools.iter().map(|p| j::agent_pool(c, p)).collect::<Vec<_>>() }))
        }
        (_, ["agentpools", _, ..]) => pool_routes(shared, w, r, ci, rest[1], &lower[2..]),
        (_, [..]) if is_known_cluster_child(&lower) => method_not_allowed(m),
        _ => not_found_path(r),
    }
}

fn is_known_cluster_child(lower: &[&str]) -> bool {
    matches!(
        lower,
        [] | ["upgradeprofiles", "default"]
            | ["availableagentpoolversions"]
            | ["abort"]
            | ["listclusterusercredential"]
            | ["listclusteradmincredential"]
            | ["maintenanceconfigurations", ..]
            | ["agentpools"]
    )
}

pub(super) fn only_get(m: &Method, f: impl FnOnce() -> ArmReply) -> ArmReply {
    if m == Method::GET { f() } else { method_not_allowed(m) }
}

fn method_not_allowed(m: &Method) -> ArmReply {
    ArmReply::arm_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("The method '{m}' is not allowed on this resource."),
    )
}

fn not_found_path(r: &ArmRequest<'_>) -> ArmReply {
    ArmReply::arm_error(
        StatusCode::NOT_FOUND,
        "InvalidResourceType",
        format!(
            "The resource path '/{}' is not served by the AKS simulator.",
            r.segments.join("/")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_is_case_insensitive() {
        let s: Vec<String> = [
            "SUBSCRIPTIONS",
            "abc",
            "Providers",
            "microsoft.containerservice",
            "ManagedClusters",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        assert_eq!(
            capture(&s, &["subscriptions", "*", "providers", RP, "managedClusters"]),
            Some(vec!["abc"])
        );
        assert_eq!(capture(&s, &["subscriptions", "*", "providers", RP]), None);
    }
}
