//! Each simulated cluster's Kubernetes API server, at `/k8s/{fqdn}/...` (the `server:`
//! of its kubeconfigs): version, discovery, get/list/watch of the modelled kinds,
//! pod eviction and node cordon.
//!
//! The goal is that kubectl and kube-rs work against it unchanged, so the shapes are
//! the API server's own: `Status` errors, list metadata with `resourceVersion` and
//! `continue`, server-side `Table`s for kubectl's printing, watch events as JSON lines.
//! Everything else answers 404 (or 405 for a verb the simulator does not serve).

use super::fleet::FaultKind;
use super::kube_model::Kind;
use super::kube_watch::{self, WatchRequest};
use super::selector::{FieldSelector, LabelSelector, SelectorError};
use super::shared::Shared;
use super::world::World;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

mod table;
mod writes;

pub(super) use table::TableOpts;

/// Largest request body read (evictions and patches are tiny).
const MAX_BODY: usize = 1 << 20;
/// How long a watch lasts without `timeoutSeconds` (the API server picks 30-60 min).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// One served resource, as discovery describes it.
#[derive(Debug, PartialEq, Eq)]
pub struct Resource {
    pub group: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind_name: &'static str,
    pub kind: Kind,
    pub short: &'static [&'static str],
    /// Only verbs the simulator serves: kubectl trusts discovery when it picks requests.
    pub verbs: &'static [&'static str],
}

const READ: &[&str] = &["get", "list", "watch"];

#[rustfmt::skip]
pub const RESOURCES: &[Resource] = &[
    Resource { group: "", plural: "namespaces", singular: "namespace", kind_name: "Namespace", kind: Kind::Namespace, short: &["ns"], verbs: READ },
    Resource { group: "", plural: "nodes", singular: "node", kind_name: "Node", kind: Kind::Node, short: &["no"], verbs: &["get", "list", "patch", "watch"] },
    Resource { group: "", plural: "pods", singular: "pod", kind_name: "Pod", kind: Kind::Pod, short: &["po"], verbs: READ },
    Resource { group: "", plural: "events", singular: "event", kind_name: "Event", kind: Kind::Event, short: &["ev"], verbs: READ },
    Resource { group: "apps", plural: "deployments", singular: "deployment", kind_name: "Deployment", kind: Kind::Deployment, short: &["deploy"], verbs: READ },
    Resource { group: "apps", plural: "replicasets", singular: "replicaset", kind_name: "ReplicaSet", kind: Kind::ReplicaSet, short: &["rs"], verbs: READ },
    Resource { group: "policy", plural: "poddisruptionbudgets", singular: "poddisruptionbudget", kind_name: "PodDisruptionBudget", kind: Kind::PodDisruptionBudget, short: &["pdb"], verbs: READ },
];

const NODES: &Resource = &RESOURCES[1];
const PODS: &Resource = &RESOURCES[2];

/// API groups besides the core one, in discovery order.
const GROUPS: &[&str] = &["apps", "policy"];

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            "v1".into()
        } else {
            format!("{}/v1", self.group)
        }
    }

    fn find(group: &str, plural: &str) -> Option<&'static Resource> {
        RESOURCES.iter().find(|r| r.group == group && r.plural == plural)
    }

    /// `pods` or `deployments.apps`, as the API server names resources in messages.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.into()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

// ---------------------------------------------------------------- errors

/// A failed request, answered as a Kubernetes `Status`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: StatusCode,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

type Result<T, E = ApiError> = std::result::Result<T, E>;

impl ApiError {
    fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    fn not_found(res: &Resource, name: &str) -> Self {
        let mut details = json!({ "name": name, "kind": res.plural });
        if !res.group.is_empty() {
            details["group"] = json!(res.group);
        }
        Self {
            details: Some(details),
            ..Self::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{} \"{name}\" not found", res.qualified()),
            )
        }
    }

    fn path_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    fn method_not_allowed() -> Self {
        let msg = "the server does not allow this method on the requested resource";
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", msg)
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message)
    }

    pub fn status(&self) -> Value {
        let mut s = status_value("Failure", self.code);
        s["message"] = json!(self.message);
        s["reason"] = json!(self.reason);
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }

    fn into_response(self) -> Response {
        json_response(self.code, &self.status())
    }
}

impl From<SelectorError> for ApiError {
    fn from(e: SelectorError) -> Self {
        Self::bad_request(e.to_string())
    }
}

/// A `Status` object without message (the caller fills in the rest).
pub(super) fn status_value(status: &str, code: StatusCode) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": status, "code": code.as_u16() })
}

pub(super) fn json_response(code: StatusCode, body: &Value) -> Response {
    let mut r = Response::new(Body::from(serde_json::to_vec(body).unwrap_or_default()));
    *r.status_mut() = code;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

// ---------------------------------------------------------------- routing

#[derive(Debug, PartialEq)]
enum Route<'a> {
    Version,
    Health,
    /// `/metrics`: Prometheus text, with `apiserver_requested_deprecated_apis`.
    Metrics,
    Api,
    Apis,
    Group(&'a str),
    ResourceList(&'a str),
    Res {
        res: &'static Resource,
        ns: Option<&'a str>,
        name: Option<&'a str>,
        sub: Option<&'a str>,
        legacy_watch: bool,
    },
    NotFound,
}

fn route(path: &str) -> Route<'_> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz"] => Route::Health,
        ["metrics"] => Route::Metrics,
        ["api"] => Route::Api,
        ["apis"] => Route::Apis,
        ["api", "v1"] => Route::ResourceList(""),
        ["apis", g] if GROUPS.contains(g) => Route::Group(g),
        ["apis", g, "v1"] if GROUPS.contains(g) => Route::ResourceList(g),
        ["api", "v1", rest @ ..] => resource_route("", rest),
        ["apis", g, "v1", rest @ ..] if GROUPS.contains(g) => resource_route(g, rest),
        _ => Route::NotFound,
    }
}

fn resource_route<'a>(group: &str, rest: &[&'a str]) -> Route<'a> {
    let (legacy_watch, rest) = match rest {
        ["watch", r @ ..] => (true, r),
        r => (false, r),
    };
    // `namespaces/{ns}/status` is the namespace's own subresource, not a namespaced list.
    let (ns, rest) = match rest {
        ["namespaces", ns, r @ ..] if !r.is_empty() && !matches!(r[0], "status" | "finalize") => (Some(*ns), r),
        r => (None, r),
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(*n), None),
        [p, n, s] => (*p, Some(*n), Some(*s)),
        _ => return Route::NotFound,
    };
    match Resource::find(group, plural) {
        Some(res) if ns.is_none() || res.kind.namespaced() => Route::Res {
            res,
            ns,
            name,
            sub,
            legacy_watch,
        },
        _ => Route::NotFound,
    }
}

/// Whether this cluster's API server is down now: the fault `api_unreachable`, or the
/// cluster is stopped (`start-stop-cluster.md`: stopping "stop[s] your control plane").
pub(super) fn api_unreachable(world: &World, c: usize) -> bool {
    let name = &world.clusters[c].name;
    world.clusters[c].stopped()
        || world
            .active_faults()
            .any(|f| matches!(&f.what, FaultKind::ApiUnreachable { cluster } if cluster == name))
}

/// Serves one request whose path starts with `/k8s/`.
pub async fn handle(shared: Arc<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = if matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) {
        match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => {
                let e = ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLarge",
                    "request body too large",
                );
                return e.into_response();
            }
        }
    } else {
        Bytes::new()
    };
    let query = axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let req = Req {
        method: &parts.method,
        headers: &parts.headers,
        query: &query,
        body,
    };
    let path = parts.uri.path();
    let Some((fqdn, kpath)) = path.strip_prefix("/k8s/").map(|r| r.split_once('/').unwrap_or((r, ""))) else {
        return ApiError::path_not_found().into_response();
    };
    let mut world = shared.world();
    let Some(c) = world.cluster_by_fqdn(fqdn) else {
        return ApiError::path_not_found().into_response();
    };
    if api_unreachable(&world, c) {
        let msg = if world.clusters[c].stopped() {
            "the API server is unreachable: the cluster is stopped"
        } else {
            "the API server is unreachable (injected fault)"
        };
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", msg).into_response();
    }
    if shared.kube_auth(&world.clusters[c], &parts.headers).is_err() {
        return ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized").into_response();
    }
    serve(&shared, &mut world, c, route(kpath), &req).unwrap_or_else(ApiError::into_response)
}

/// The parts of a request the handlers look at.
struct Req<'a> {
    method: &'a Method,
    headers: &'a HeaderMap,
    query: &'a HashMap<String, String>,
    body: Bytes,
}

impl Req<'_> {
    fn q(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }
}

fn serve(shared: &Arc<Shared>, world: &mut World, c: usize, route: Route<'_>, req: &Req<'_>) -> Result<Response> {
    let read_only = |v: Value| {
        if req.method == Method::GET {
            Ok(json_response(StatusCode::OK, &v))
        } else {
            Err(ApiError::method_not_allowed())
        }
    };
    match route {
        Route::Version => read_only(version(world, c)),
        Route::Health => {
            let mut r = Response::new(Body::from("ok"));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            Ok(r)
        }
        Route::Metrics if req.method == Method::GET => {
            let cl = &world.clusters[c];
            let v = cl.kube.server_version.unwrap_or(cl.current_version);
            let text = super::metrics::render(&cl.conditions.deprecated_api_calls, cl.kube.pods.len() as u64, v);
            let mut r = Response::new(Body::from(text));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            Ok(r)
        }
        Route::Metrics => Err(ApiError::method_not_allowed()),
        Route::Api => read_only(json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": format!("{}:443", world.clusters[c].fqdn) }],
        })),
        Route::Apis => read_only(json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": GROUPS.iter().map(|g| api_group(g)).collect::<Vec<_>>(),
        })),
        Route::Group(g) => read_only(api_group(g)),
        Route::ResourceList(g) => read_only(resource_list(g)),
        Route::Res {
            res,
            ns,
            name,
            sub,
            legacy_watch,
        } => match (req.method.as_str(), name, sub) {
            ("GET", None, None) => {
                let watch = legacy_watch || matches!(req.q("watch"), Some("true" | "1"));
                if watch {
                    start_watch(shared, world, c, res, ns, None, req)
                } else {
                    list(world, c, res, ns, req)
                }
            }
            ("GET", Some(name), None) if legacy_watch => start_watch(shared, world, c, res, ns, Some(name), req),
            ("GET", Some(name), None | Some("status")) if !legacy_watch => get(world, c, res, ns, name, req),
            ("POST", Some(name), Some("eviction")) if res.kind == Kind::Pod && ns.is_some() => {
                writes::evict(world, c, ns.unwrap_or_default(), name, req)
            }
            ("PATCH", Some(name), None) if res.kind == Kind::Node => writes::patch_node(world, c, name, req),
            (_, _, None | Some("status")) if !legacy_watch => Err(ApiError::method_not_allowed()),
            _ => Err(ApiError::path_not_found()),
        },
        Route::NotFound => Err(ApiError::path_not_found()),
    }
}

// ---------------------------------------------------------------- version and discovery

fn version(world: &World, c: usize) -> Value {
    let cl = &world.clusters[c];
    let v = cl.kube.server_version.unwrap_or(cl.current_version);
    json!({
        "major": v.major.to_string(),
        "minor": v.minor.to_string(),
        "gitVersion": format!("v{v}"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn api_group(g: &str) -> Value {
    let gv = json!({ "groupVersion": format!("{g}/v1"), "version": "v1" });
    json!({ "kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": [gv], "preferredVersion": gv })
}

fn resource_list(group: &str) -> Value {
    let mut out = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group) {
        let mut v = json!({
            "name": r.plural, "singularName": r.singular, "namespaced": r.kind.namespaced(),
            "kind": r.kind_name, "verbs": r.verbs,
        });
        if !r.short.is_empty() {
            v["shortNames"] = json!(r.short);
        }
        if matches!(r.kind, Kind::Pod | Kind::Deployment | Kind::ReplicaSet) {
            v["categories"] = json!(["all"]);
        }
        out.push(v);
        let sub = |name: &str, kind: &str, verbs: &[&str]| json!({ "name": name, "singularName": "", "namespaced": r.kind.namespaced(), "kind": kind, "verbs": verbs });
        match r.kind {
            Kind::Pod => {
                // `kubectl drain` finds the Eviction API by this entry's group and version.
                let mut e = sub("pods/eviction", "Eviction", &["create"]);
                e["group"] = json!("policy");
                e["version"] = json!("v1");
                out.push(e);
                out.push(sub("pods/status", "Pod", &["get"]));
            }
            Kind::Node => out.push(sub("nodes/status", "Node", &["get"])),
            _ => {}
        }
    }
    let gv = if group.is_empty() {
        "v1".to_string()
    } else {
        format!("{group}/v1")
    };
    json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out })
}

// ---------------------------------------------------------------- get, list

/// `(namespace, name)` of a rendered object: the API server's storage order.
pub(super) fn object_key(obj: &Value) -> (String, String) {
    let m = |k: &str| obj["metadata"][k].as_str().unwrap_or_default().to_string();
    (m("namespace"), m("name"))
}

/// Objects of a kind in a namespace (all namespaces with `None`), in storage order.
fn objects(world: &World, c: usize, res: &Resource, ns: Option<&str>) -> Vec<Value> {
    let mut items: Vec<Value> = world.clusters[c].kube.render_all(res.kind);
    if let Some(ns) = ns {
        items.retain(|o| o["metadata"]["namespace"].as_str() == Some(ns));
    }
    items.sort_by_cached_key(object_key);
    items
}

fn get(world: &World, c: usize, res: &Resource, ns: Option<&str>, name: &str, req: &Req<'_>) -> Result<Response> {
    if res.kind.namespaced() && ns.is_none() {
        return Err(ApiError::path_not_found());
    }
    let obj = objects(world, c, res, ns)
        .into_iter()
        .find(|o| o["metadata"]["name"].as_str() == Some(name))
        .ok_or_else(|| ApiError::not_found(res, name))?;
    match TableOpts::from_request(req.headers, req.query) {
        Some(t) => {
            let meta = json!({ "resourceVersion": obj["metadata"]["resourceVersion"] });
            Ok(json_response(StatusCode::OK, &t.table(res, &[obj], world.now, meta)))
        }
        None => Ok(json_response(StatusCode::OK, &obj)),
    }
}

/// A list page's continue token: the list's resourceVersion and the last key sent.
/// Later pages show the objects as they are now but keep the first page's
/// resourceVersion, so a watch from it replays whatever changed in between.
fn encode_continue(rv: u64, last: &(String, String)) -> String {
    B64.encode(json!({ "v": "meta.k8s.io/v1", "rv": rv, "start": [last.0, last.1] }).to_string())
}

fn decode_continue(token: &str) -> Result<(u64, (String, String))> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let v: Value = B64
        .decode(token)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(bad)?;
    let rv = v["rv"].as_u64().ok_or_else(bad)?;
    let s = |i: usize| v["start"][i].as_str().map(str::to_string).ok_or_else(bad);
    Ok((rv, (s(0)?, s(1)?)))
}

fn list(world: &World, c: usize, res: &Resource, ns: Option<&str>, req: &Req<'_>) -> Result<Response> {
    let labels = LabelSelector::parse(req.q("labelSelector").unwrap_or_default())?;
    let fields = FieldSelector::parse(req.q("fieldSelector").unwrap_or_default())?;
    let mut items = objects(world, c, res, ns);
    items.retain(|o| labels.matches(o) && fields.matches(o));
    let mut rv = world.clusters[c].kube.rv;
    if let Some(token) = req.q("continue").filter(|t| !t.is_empty()) {
        let (first_rv, start) = decode_continue(token)?;
        rv = first_rv;
        items.retain(|o| object_key(o) > start);
    }
    let mut meta = json!({ "resourceVersion": rv.to_string() });
    let limit = req.q("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(0);
    if limit > 0 && items.len() > limit {
        meta["remainingItemCount"] = json!(items.len() - limit);
        items.truncate(limit);
        meta["continue"] = json!(encode_continue(rv, &object_key(&items[limit - 1])));
    }
    let body = match TableOpts::from_request(req.headers, req.query) {
        Some(t) => t.table(res, &items, world.now, meta),
        None => {
            json!({ "kind": format!("{}List", res.kind_name), "apiVersion": res.api_version(), "metadata": meta, "items": items })
        }
    };
    Ok(json_response(StatusCode::OK, &body))
}

// ---------------------------------------------------------------- watch

fn start_watch(
    shared: &Arc<Shared>,
    world: &mut World,
    c: usize,
    res: &'static Resource,
    ns: Option<&str>,
    name: Option<&str>,
    req: &Req<'_>,
) -> Result<Response> {
    let mut fields = req.q("fieldSelector").unwrap_or_default().to_string();
    if let Some(name) = name {
        // The legacy `/watch/.../{name}` path is a watch on one object.
        fields = if fields.is_empty() {
            format!("metadata.name={name}")
        } else {
            format!("{fields},metadata.name={name}")
        };
    }
    let rv = match req.q("resourceVersion").unwrap_or_default() {
        "" | "0" => None,
        s => Some(
            s.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {s}")))?,
        ),
    };
    let flag = |k: &str| req.q(k).map(|v| matches!(v, "true" | "1"));
    let timeout = req
        .q("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
    let w = WatchRequest {
        res,
        ns: ns.map(str::to_string),
        labels: LabelSelector::parse(req.q("labelSelector").unwrap_or_default())?,
        fields: FieldSelector::parse(&fields)?,
        rv,
        send_initial: flag("sendInitialEvents"),
        bookmarks: flag("allowWatchBookmarks").unwrap_or(false),
        timeout,
        table: TableOpts::from_request(req.headers, req.query),
    };
    Ok(kube_watch::start(shared.clone(), world, c, w))
}

#[cfg(test)]
mod tests;
