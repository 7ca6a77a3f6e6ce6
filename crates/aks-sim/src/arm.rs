//! The ARM API of the simulator: Azure's paths (matched case-insensitively, as ARM
//! does), status codes, headers and error shapes. Every operation of the table in
//! `aks-facts.md`. Authentication, throttling and fault injection happen in
//! `server.rs` before a request gets here.

use super::arm_json as j;
use super::fleet::{OpKind, parse_count_or_percent};
use super::operation::{self, OpStatus, Phase, Target};
use super::rules::{Refusal, check_control_plane_upgrade, check_pool_upgrade};
use super::shared::Shared;
use super::version::{KubeVersion, VersionSpec};
use super::world::World;
use base64::Engine;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value, json};

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

/// `PUT .../maintenanceConfigurations/{name}` (200 when it replaced one, 201 when new):
/// the body's `properties` checked as ARM checks them, then stored as sent, so that a
/// GET (and ringmaster's schedule) sees exactly what was written.
fn put_maintenance(w: &mut World, r: &ArmRequest<'_>, ci: usize, name: &str) -> ArmReply {
    let body = match parse_body(r) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let props = body.get("properties").cloned().unwrap_or_else(|| json!({}));
    if let Err(problems) = super::maintenance::check(name, &props) {
        return ArmReply::rp_error(StatusCode::BAD_REQUEST, "InvalidParameter", problems.join("; "));
    }
    let name = super::maintenance::known_name(name).unwrap_or_default();
    let c = &mut w.clusters[ci];
    let existed = c.maintenance.insert(name.to_string(), props.clone()).is_some();
    let status = if existed { StatusCode::OK } else { StatusCode::CREATED };
    ArmReply::with(status, Some(j::maintenance_configuration(c, name, &props)))
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

fn pool_routes(shared: &Shared, w: &mut World, r: &ArmRequest<'_>, ci: usize, pool: &str, rest: &[&str]) -> ArmReply {
    let Some(p) = w.clusters[ci].pool(pool).cloned() else {
        return ArmReply::arm_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "Agent pool '{pool}' was not found in managed cluster '{}'",
                w.clusters[ci].name
            ),
        );
    };
    match (r.method.clone(), rest) {
        (Method::GET, []) => ArmReply::ok(j::agent_pool(&w.clusters[ci], &p)),
        (Method::PUT, []) => put_pool(shared, w, r, ci, &p.name),
        (Method::GET, ["upgradeprofiles", "default"]) => ArmReply::ok(j::pool_upgrade_profile(w, &w.clusters[ci], &p)),
        (Method::POST, ["upgradenodeimageversion"]) => node_image(shared, w, r, ci, &p.name),
        (Method::POST, ["abort"]) => abort(shared, w, r, ci, Target::Pool(p.name.clone())),
        (_, [] | ["upgradeprofiles", "default"] | ["upgradenodeimageversion"] | ["abort"]) => {
            method_not_allowed(r.method)
        }
        _ => not_found_path(r),
    }
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

fn list_clusters(shared: &Shared, w: &World, r: &ArmRequest<'_>, sub: &str, rg: Option<&str>) -> ArmReply {
    let all = w.clusters_in(sub, rg);
    let skip: usize = r.query("$skipToken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let size = w.fleet.arm.page_size;
    let page: Vec<Value> = all
        .iter()
        .skip(skip)
        .take(size)
        .map(|i| j::managed_cluster(&w.clusters[*i]))
        .collect();
    let mut body = json!({ "value": page });
    if skip + size < all.len() {
        let base = match rg {
            Some(rg) => format!(
                "{}/subscriptions/{sub}/resourceGroups/{rg}/providers/{RP}/managedClusters",
                shared.base_url
            ),
            None => format!("{}/subscriptions/{sub}/providers/{RP}/managedClusters", shared.base_url),
        };
        body["nextLink"] = json!(format!(
            "{base}?api-version={}&$skipToken={}",
            r.api_version,
            skip + size
        ));
    }
    ArmReply::ok(body)
}

// ---------------------------------------------------------------- long-running operations

fn op_urls(shared: &Shared, w: &World, r: &ArmRequest<'_>, ci: usize, id: &str) -> (String, String) {
    let c = &w.clusters[ci];
    let base = format!(
        "{}/subscriptions/{}/providers/{RP}/locations/{}",
        shared.base_url, c.subscription, c.location
    );
    (
        format!("{base}/operations/{id}?api-version={}", r.api_version),
        format!("{base}/operationresults/{id}?api-version={}", r.api_version),
    )
}

/// `Retry-After` for polls: the simulated poll interval in wall-clock time, whole
/// seconds (at least 1) plus `retry-after-ms` for clients that read it.
fn retry_headers(shared: &Shared, w: &World) -> Vec<(&'static str, String)> {
    let real = shared.clock.to_real(w.fleet.durations.poll_interval);
    vec![
        ("Retry-After", real.as_secs_f64().ceil().max(1.0).to_string()),
        ("retry-after-ms", real.as_millis().max(1).to_string()),
    ]
}

/// Adds the long-running-operation headers of operation `id` to `reply`.
fn lro_reply(
    shared: &Shared,
    w: &World,
    r: &ArmRequest<'_>,
    ci: usize,
    id: &str,
    mut reply: ArmReply,
    location: bool,
) -> ArmReply {
    let (async_url, loc_url) = op_urls(shared, w, r, ci, id);
    reply.headers.push(("Azure-AsyncOperation", async_url));
    if location {
        reply.headers.push(("Location", loc_url));
    }
    reply.headers.extend(retry_headers(shared, w));
    reply
}

fn find_op<'a>(w: &'a World, r: &ArmRequest<'_>, id: &str) -> Option<&'a operation::Operation> {
    let op = w.ops.get(id)?;
    // An operation is visible only under its own subscription.
    w.clusters[op.cluster]
        .subscription
        .eq_ignore_ascii_case(&r.segments[1])
        .then_some(op)
}

fn async_status(shared: &Shared, w: &World, r: &ArmRequest<'_>, id: &str) -> ArmReply {
    let Some(op) = find_op(w, r, id) else {
        return ArmReply::arm_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("Operation {id} was not found"),
        );
    };
    let mut reply = ArmReply::ok(j::operation_status(op));
    if !op.status.is_terminal() {
        reply.headers = retry_headers(shared, w);
    }
    reply
}

fn location_status(shared: &Shared, w: &World, r: &ArmRequest<'_>, id: &str) -> ArmReply {
    let Some(op) = find_op(w, r, id) else {
        return ArmReply::arm_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("Operation {id} was not found"),
        );
    };
    match op.status {
        OpStatus::InProgress | OpStatus::Canceling => {
            let (_, loc) = op_urls(shared, w, r, op.cluster, id);
            let mut headers = vec![("Location", loc)];
            headers.extend(retry_headers(shared, w));
            ArmReply {
                status: StatusCode::ACCEPTED,
                headers,
                body: None,
            }
        }
        OpStatus::Succeeded if op.location_returns_resource => {
            let c = &w.clusters[op.cluster];
            match &op.target {
                Target::Pool(p) => match c.pool(p) {
                    Some(pool) => ArmReply::ok(j::agent_pool(c, pool)),
                    None => ArmReply::ok(json!({})),
                },
                Target::Cluster => ArmReply::ok(j::managed_cluster(c)),
            }
        }
        OpStatus::Succeeded => ArmReply::with(StatusCode::NO_CONTENT, None),
        OpStatus::Failed | OpStatus::Canceled => {
            let (code, message) = op
                .error
                .clone()
                .unwrap_or_else(|| ("OperationCanceled".into(), "The operation was canceled.".into()));
            ArmReply::arm_error(StatusCode::BAD_REQUEST, &code, message)
        }
    }
}

// ---------------------------------------------------------------- writes

/// Checks `If-Match` / `If-None-Match` against a resource's eTag (412 on mismatch).
fn preconditions(r: &ArmRequest<'_>, etag: &str) -> Option<ArmReply> {
    let unquote = |v: &str| v.trim().trim_start_matches("W/").trim_matches('"').to_string();
    if let Some(m) = r.headers.get("if-match").and_then(|v| v.to_str().ok()) {
        let m = unquote(m);
        if m != "*" && m != etag {
            return Some(ArmReply::rp_error(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                format!(
                    "Operation failed: the eTag '{m}' in If-Match does not match the current eTag of the resource."
                ),
            ));
        }
    }
    if let Some(m) = r.headers.get("if-none-match").and_then(|v| v.to_str().ok())
        && unquote(m) == "*"
    {
        return Some(ArmReply::rp_error(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "Operation failed: the resource already exists (If-None-Match: *).",
        ));
    }
    None
}

fn parse_body(r: &ArmRequest<'_>) -> Result<Map<String, Value>, ArmReply> {
    match serde_json::from_slice::<Value>(r.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ArmReply::rp_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            "The request content must be a JSON object.",
        )),
        Err(e) => Err(ArmReply::rp_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: {e}"),
        )),
    }
}

fn version_field(v: Option<&Value>, field: &str) -> Result<Option<VersionSpec>, ArmReply> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| {
            ArmReply::rp_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                format!("The value '{s}' of parameter '{field}' is not a valid Kubernetes version."),
            )
        }),
        Some(other) => Err(ArmReply::rp_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            format!("Parameter '{field}' must be a string, got {other}."),
        )),
    }
}

fn unsupported_version(spec: VersionSpec, region: &str) -> ArmReply {
    ArmReply::rp_error(
        StatusCode::BAD_REQUEST,
        "K8sVersionNotSupported",
        format!(
            "Version {spec} is not supported in this region ({region}). Please use the kubernetesVersions API to find the versions available."
        ),
    )
}

/// AKS refuses every write but start on a stopped cluster (`rules::check_not_stopped`).
fn stopped(w: &World, ci: usize) -> Option<ArmReply> {
    let c = &w.clusters[ci];
    super::rules::check_not_stopped(c.stopped(), &c.subscription, &c.resource_group)
        .err()
        .map(|e| ArmReply::refusal(StatusCode::BAD_REQUEST, &e))
}

/// AKS refuses any write while an operation runs, before it looks at the request.
fn busy(w: &World, ci: usize) -> Option<ArmReply> {
    w.clusters[ci].operation.as_ref()?;
    let msg = operation::busy_message(w, ci);
    Some(ArmReply::rp_error(StatusCode::CONFLICT, "OperationNotAllowed", msg))
}

fn put_cluster(shared: &Shared, w: &mut World, r: &ArmRequest<'_>, ci: usize) -> ArmReply {
    if let Some(e) = busy(w, ci).or_else(|| stopped(w, ci)) {
        return e;
    }
    if let Some(e) = preconditions(r, &w.clusters[ci].etag) {
        return e;
    }
    let body = match parse_body(r) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let empty = Map::new();
    let props = body.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    let c = &w.clusters[ci];
    let region = c.location.clone();
    let requested_cp = match version_field(props.get("kubernetesVersion"), "properties.kubernetesVersion") {
        Ok(v) => v,
        Err(e) => return e,
    };
    let cp_target = match requested_cp {
        None => c.current_version,
        Some(spec) => match w.resolve_version(&region, spec, c.current_version) {
            Some(v) => v,
            None => return unsupported_version(spec, &region),
        },
    };
    // Pools: each profile in the body must name an existing pool; a changed
    // orchestratorVersion becomes a pool upgrade after the control plane.
    let mut pool_targets: Vec<(String, KubeVersion, String)> = Vec::new();
    if let Some(profiles) = props.get("agentPoolProfiles").and_then(Value::as_array) {
        for prof in profiles {
            let name = prof.get("name").and_then(Value::as_str).unwrap_or_default();
            let Some(pool) = c.pool(name) else {
                return ArmReply::rp_error(
                    StatusCode::BAD_REQUEST,
                    "NotSupportedBySimulator",
                    format!(
                        "Adding agent pool '{name}' through the managed cluster is not supported by the simulator."
                    ),
                );
            };
            let spec = match version_field(prof.get("orchestratorVersion"), "agentPoolProfiles.orchestratorVersion") {
                Ok(v) => v,
                Err(e) => return e,
            };
            if let Some(spec) = spec {
                let Some(v) = w.resolve_version(&region, spec, pool.current_version) else {
                    return unsupported_version(spec, &region);
                };
                if v != pool.current_version {
                    pool_targets.push((pool.name.clone(), v, spec.to_string()));
                }
            }
        }
    }
    let pools_after: Vec<(String, KubeVersion)> = c
        .pools
        .iter()
        .map(|p| {
            let v = pool_targets
                .iter()
                .find(|(n, _, _)| *n == p.name)
                .map_or(p.current_version, |t| t.1);
            (p.name.clone(), v)
        })
        .collect();
    if cp_target != c.current_version
        && let Err(e) = check_control_plane_upgrade(
            c.current_version,
            cp_target,
            pools_after.iter().map(|(n, v)| (n.as_str(), *v)),
        )
    {
        return ArmReply::rp_error(
            StatusCode::BAD_REQUEST,
            e.code,
            format!("{} Available upgrades: {}", e.message, available(w, ci)),
        );
    }
    for (name, v, _) in &pool_targets {
        let from = c.pool(name).map_or(*v, |p| p.current_version);
        if let Err(e) = check_pool_upgrade(from, *v, cp_target) {
            return ArmReply::rp_error(
                StatusCode::BAD_REQUEST,
                e.code,
                format!("Agent pool {name}: {}", e.message),
            );
        }
    }
    let upgrade_settings = match props.get("upgradeSettings") {
        None | Some(Value::Null) => c.upgrade_settings.clone(),
        Some(u) => Some(u.clone()),
    };
    if cp_target != c.current_version
        && let Err(e) = super::protections::deprecated_apis(w, ci, cp_target, upgrade_settings.as_ref())
    {
        return e;
    }
    if !pool_targets.is_empty()
        && let Err(e) = super::rules::check_unsatisfiable_pdbs(&super::protections::unsatisfiable_pdbs(w, ci))
    {
        return ArmReply::refusal(StatusCode::BAD_REQUEST, &e);
    }
    let mut phases = Vec::new();
    if cp_target != c.current_version {
        phases.push(Phase::ControlPlane(cp_target));
    }
    for (name, v, _) in &pool_targets {
        phases.push(Phase::PoolVersion {
            pool: name.clone(),
            version: *v,
        });
    }
    if phases.is_empty() {
        phases.push(Phase::Reconcile);
    }
    if let Err(busy) = operation::start(w, ci, Target::Cluster, phases, OpKind::ControlPlane) {
        return ArmReply::rp_error(StatusCode::CONFLICT, "OperationNotAllowed", busy.0);
    }
    // The request is accepted: record what it asked for.
    let c = &mut w.clusters[ci];
    if let Some(spec) = requested_cp {
        c.kubernetes_version = spec.to_string();
    }
    for (name, _, spec) in &pool_targets {
        if let Some(p) = c.pool_mut(name) {
            p.orchestrator_version = spec.clone();
        }
    }
    if let Some(tags) = body.get("tags").and_then(Value::as_object) {
        c.tags = tags
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
    }
    if let Some(ch) = props
        .get("autoUpgradeProfile")
        .and_then(|a| a.get("upgradeChannel"))
        .and_then(Value::as_str)
    {
        c.auto_upgrade_channel = ch.to_string();
    }
    if let Some(ch) = props
        .get("autoUpgradeProfile")
        .and_then(|a| a.get("nodeOSUpgradeChannel"))
        .and_then(Value::as_str)
    {
        c.node_os_upgrade_channel = ch.to_string();
    }
    c.upgrade_settings = upgrade_settings;
    c.extra_properties = props
        .iter()
        .filter(|(k, _)| !j::MODELED_CLUSTER_PROPS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    c.extra_top = body
        .iter()
        .filter(|(k, _)| !j::MODELED_CLUSTER_TOP.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let id = c.operation.clone().unwrap_or_default();
    let reply_body = j::managed_cluster(&w.clusters[ci]);
    lro_reply(shared, w, r, ci, &id, ArmReply::ok(reply_body), false)
}

fn available(w: &World, ci: usize) -> String {
    let c = &w.clusters[ci];
    let v: Vec<String> = w
        .control_plane_upgrades(&c.location, c.current_version)
        .iter()
        .map(|(v, _)| v.to_string())
        .collect();
    format!("[{}]", v.join(" "))
}

fn put_pool(shared: &Shared, w: &mut World, r: &ArmRequest<'_>, ci: usize, pool: &str) -> ArmReply {
    let c = &w.clusters[ci];
    let Some(p) = c.pool(pool).cloned() else {
        return not_found_path(r);
    };
    if let Some(e) = busy(w, ci).or_else(|| stopped(w, ci)) {
        return e;
    }
    if let Some(e) = preconditions(r, &p.etag) {
        return e;
    }
    let body = match parse_body(r) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let empty = Map::new();
    let props = body.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    if let Some(count) = props.get("count").and_then(Value::as_u64)
        && count != u64::from(p.count)
    {
        return ArmReply::rp_error(
            StatusCode::BAD_REQUEST,
            "NotSupportedBySimulator",
            "Scaling agent pools is not supported by the simulator.",
        );
    }
    let spec = match version_field(props.get("orchestratorVersion"), "properties.orchestratorVersion") {
        Ok(v) => v,
        Err(e) => return e,
    };
    let rollback = match rollback_request(w, ci, &p, props, spec) {
        None => None,
        Some((asked, answer)) => {
            w.last_rollback = Some(asked);
            match answer {
                Ok(to) => Some(to),
                Err(e) => return e,
            }
        }
    };
    let c = &w.clusters[ci];
    let target = match (&rollback, spec) {
        (Some(to), _) => to.version,
        (None, None) => p.current_version,
        (None, Some(s)) => match w.resolve_version(&c.location, s, p.current_version) {
            Some(v) => v,
            None => return unsupported_version(s, &c.location),
        },
    };
    // A rollback goes back on purpose: only the skew against the control plane applies.
    let version_check = match &rollback {
        Some(to) => super::rules::check_skew(to.version, c.current_version),
        None if target != p.current_version => check_pool_upgrade(p.current_version, target, c.current_version),
        None => Ok(()),
    };
    if let Err(e) = version_check {
        return ArmReply::rp_error(StatusCode::BAD_REQUEST, e.code, e.message);
    }
    if (target != p.current_version || rollback.is_some())
        && let Err(e) = super::rules::check_unsatisfiable_pdbs(&super::protections::unsatisfiable_pdbs(w, ci))
    {
        return ArmReply::refusal(StatusCode::BAD_REQUEST, &e);
    }
    // upgradeSettings are applied as sent (validated like the fleet file).
    let mut settings = p.upgrade.clone();
    if let Some(u) = props.get("upgradeSettings").and_then(Value::as_object) {
        if let Some(s) = u.get("maxSurge").and_then(Value::as_str) {
            if parse_count_or_percent(s).is_none() {
                return ArmReply::rp_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    format!("upgradeSettings.maxSurge '{s}' is not a count or a percentage."),
                );
            }
            settings.max_surge = s.to_string();
        }
        if let Some(s) = u.get("maxUnavailable").and_then(Value::as_str) {
            settings.max_unavailable = s.to_string();
        }
        if let Some(d) = u.get("drainTimeoutInMinutes").and_then(Value::as_u64) {
            settings.drain_timeout_minutes = d.clamp(1, 1440) as u32;
        }
        if let Some(d) = u.get("nodeSoakDurationInMinutes").and_then(Value::as_u64) {
            settings.node_soak_minutes = d.min(30) as u32;
        }
        if let Some(b) = u.get("undrainableNodeBehavior").and_then(Value::as_str) {
            settings.undrainable = if eq(b, "Cordon") {
                super::fleet::Undrainable::Cordon
            } else {
                super::fleet::Undrainable::Schedule
            };
        }
    }
    let phases = if let Some(to) = &rollback {
        vec![Phase::PoolRollback {
            pool: p.name.clone(),
            version: to.version,
            image: to.image.clone(),
        }]
    } else if target != p.current_version {
        vec![Phase::PoolVersion {
            pool: p.name.clone(),
            version: target,
        }]
    } else {
        vec![Phase::Reconcile]
    };
    if let Err(busy) = operation::start(w, ci, Target::Pool(p.name.clone()), phases, OpKind::Pool) {
        return ArmReply::rp_error(StatusCode::CONFLICT, "OperationNotAllowed", busy.0);
    }
    let c = &mut w.clusters[ci];
    if let Some(pm) = c.pool_mut(&p.name) {
        if let Some(to) = &rollback {
            pm.orchestrator_version = to.version.to_string();
        } else if let Some(s) = spec {
            pm.orchestrator_version = s.to_string();
        }
        pm.upgrade = settings;
        pm.extra = props
            .iter()
            .filter(|(k, _)| !j::MODELED_POOL_PROPS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    }
    let id = c.operation.clone().unwrap_or_default();
    let c = &w.clusters[ci];
    let reply_body = c.pool(&p.name).map(|pool| j::agent_pool(c, pool));
    lro_reply(shared, w, r, ci, &id, ArmReply::with(StatusCode::OK, reply_body), false)
}

/// Whether a pool PUT asks for a rollback: `None` when not, else the node image it asked
/// for and the rollback target it names or AKS's refusal.
///
/// api-version 2026-10-01, agent pool `properties.nodeImageVersion`: "Setting this value
/// triggers an agentPool rollback. Only values from `recentlyUsedVersions` are allowed."
/// So a `nodeImageVersion` other than the pool's own is a rollback request (a GET-then-PUT
/// sends the current one back: nothing). With the pool's own image, a request is a
/// rollback only when its exact `orchestratorVersion` names a target on that image
/// (an upgrade that kept the image left such a pair; UNVERIFIED, the article does not say
/// how AKS tells it apart). `latest` is not modelled: it changes nothing here.
/// The target must be served now (`World::rollback_targets`) and `orchestratorVersion`,
/// when sent, must be its version or minor; the cluster's auto-upgrade channel must be
/// off (`rules::check_rollback_channel`).
fn rollback_request(
    w: &World,
    ci: usize,
    p: &super::world::Pool,
    props: &Map<String, Value>,
    spec: Option<VersionSpec>,
) -> Option<(String, Result<super::world::RecentVersion, ArmReply>)> {
    let asked = props.get("nodeImageVersion").and_then(Value::as_str)?;
    if asked.eq_ignore_ascii_case("latest") {
        return None;
    }
    let c = &w.clusters[ci];
    let targets = w.rollback_targets(&c.location, p);
    let exact = match spec {
        Some(VersionSpec::Exact(v)) => Some(v),
        _ => None,
    };
    let same_pair_target = targets
        .iter()
        .any(|t| t.image == asked && exact == Some(t.version) && t.version != p.current_version);
    if asked == p.node_image && !same_pair_target {
        return None;
    }
    let refuse = |e: Refusal| ArmReply::refusal(StatusCode::BAD_REQUEST, &e);
    let answer = super::rules::check_rollback_channel(&c.auto_upgrade_channel)
        .map_err(refuse)
        .and_then(|()| {
            let found = targets
                .iter()
                .find(|t| t.image == asked && spec.is_none_or(|s| s.matches(t.version)));
            found.cloned().ok_or_else(|| {
                let listed: Vec<(KubeVersion, String)> = targets.iter().map(|t| (t.version, t.image.clone())).collect();
                let sent = spec.map(|s| s.to_string());
                refuse(super::rules::rollback_not_accepted(
                    asked,
                    sent.as_deref(),
                    &p.node_image,
                    &listed,
                ))
            })
        });
    Some((asked.to_string(), answer))
}

fn node_image(shared: &Shared, w: &mut World, r: &ArmRequest<'_>, ci: usize, pool: &str) -> ArmReply {
    let c = &w.clusters[ci];
    let Some(p) = c.pool(pool) else {
        return not_found_path(r);
    };
    if let Some(e) = stopped(w, ci) {
        return e;
    }
    let latest = w.latest_image(&c.location, &p.os_sku);
    if latest.as_deref().is_none_or(|l| l == p.node_image) && c.operation.is_none() {
        // Already on the latest image: nothing to do (unverified: AKS answers 200).
        return ArmReply::with(StatusCode::OK, None);
    }
    if c.operation.is_none()
        && let Err(e) = super::rules::check_unsatisfiable_pdbs(&super::protections::unsatisfiable_pdbs(w, ci))
    {
        return ArmReply::refusal(StatusCode::BAD_REQUEST, &e);
    }
    let name = p.name.clone();
    match operation::start(
        w,
        ci,
        Target::Pool(name.clone()),
        vec![Phase::NodeImage { pool: name.clone() }],
        OpKind::NodeImage,
    ) {
        Err(busy) => ArmReply::rp_error(StatusCode::CONFLICT, "OperationNotAllowed", busy.0),
        Ok(id) => {
            let c = &w.clusters[ci];
            let body = c.pool(&name).map(|pool| j::agent_pool(c, pool));
            lro_reply(shared, w, r, ci, &id, ArmReply::with(StatusCode::ACCEPTED, body), true)
        }
    }
}

fn abort(shared: &Shared, w: &mut World, r: &ArmRequest<'_>, ci: usize, target: Target) -> ArmReply {
    // A pool abort only cancels an operation on that pool.
    if let Target::Pool(p) = &target {
        let running_here = w.clusters[ci]
            .operation
            .as_ref()
            .and_then(|id| w.ops.get(id))
            .is_some_and(|op| op.target == Target::Pool(p.clone()));
        if !running_here {
            return ArmReply::with(StatusCode::NO_CONTENT, None);
        }
    }
    match operation::abort(w, ci, target) {
        None => ArmReply::with(StatusCode::NO_CONTENT, None),
        Some(id) => lro_reply(shared, w, r, ci, &id, ArmReply::with(StatusCode::ACCEPTED, None), true),
    }
}

fn credentials(shared: &Shared, w: &World, r: &ArmRequest<'_>, ci: usize, admin: bool) -> ArmReply {
    let c = &w.clusters[ci];
    if admin && c.disable_local_accounts {
        return ArmReply::rp_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Getting static credential is not allowed because this cluster is set to disable local accounts.",
        );
    }
    let user = format!(
        "cluster{}_{}_{}",
        if admin { "Admin" } else { "User" },
        c.resource_group,
        c.name
    );
    let use_exec = !admin && (c.entra_id || r.query("format").is_some_and(|f| eq(f, "exec")));
    let user_block = if use_exec {
        format!(
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubelogin\n      args:\n      - get-token\n      - --login\n      - spn\n      - --server-id\n      - {server}\n      - --client-id\n      - {client}\n      - --tenant-id\n      - {tenant}\n      - --environment\n      - AzurePublicCloud\n      interactiveMode: IfAvailable\n      provideClusterInfo: false\n",
            server = super::auth::AKS_SERVER_APP,
            client = shared.client_id,
            tenant = shared.tenant_id,
        )
    } else {
        format!("    token: {}\n", if admin { &c.admin_token } else { &c.user_token })
    };
    let ca = shared
        .ca_pem
        .as_ref()
        .map(|pem| {
            format!(
                "    certificate-authority-data: {}\n",
                base64::engine::general_purpose::STANDARD.encode(pem)
            )
        })
        .unwrap_or_default();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n{ca}    server: {server}\n  name: {name}\ncontexts:\n- context:\n    cluster: {name}\n    user: {user}\n  name: {name}\ncurrent-context: {name}\npreferences: {{}}\nusers:\n- name: {user}\n  user:\n{user_block}",
        server = shared.kube_server(&c.fqdn),
        name = c.name,
    );
    ArmReply::ok(json!({
        "kubeconfigs": [{
            "name": if admin { "clusterAdmin" } else { "clusterUser" },
            "value": base64::engine::general_purpose::STANDARD.encode(kubeconfig),
        }]
    }))
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
