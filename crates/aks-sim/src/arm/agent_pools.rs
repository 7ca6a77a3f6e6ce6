//! Agent pools: the routes under a cluster's `agentPools/{name}`, the pool PUT (upgrade,
//! scale, settings, and the rollback it may ask for) and the node image upgrade.

use super::operations::{abort, lro_reply};
use super::write_checks::{busy, parse_body, preconditions, stopped, unsupported_version, version_field};
use super::{ArmReply, ArmRequest, eq, method_not_allowed, not_found_path};
use crate::arm_json as j;
use crate::fleet::{OpKind, parse_count_or_percent};
use crate::operation::{self, Phase, Target};
use crate::rules::{Refusal, check_pool_upgrade};
use crate::shared::Shared;
use crate::version::{KubeVersion, VersionSpec};
use crate::world::World;
use http::{Method, StatusCode};
use serde_json::{Map, Value};

pub(super) fn pool_routes(
    shared: &Shared,
    w: &mut World,
    r: &ArmRequest<'_>,
    ci: usize,
    pool: &str,
    rest: &[&str],
) -> ArmReply {
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
        Some(to) => crate::rules::check_skew(to.version, c.current_version),
        None if target != p.current_version => check_pool_upgrade(p.current_version, target, c.current_version),
        None => Ok(()),
    };
    if let Err(e) = version_check {
        return ArmReply::rp_error(StatusCode::BAD_REQUEST, e.code, e.message);
    }
    if (target != p.current_version || rollback.is_some())
        && let Err(e) = crate::rules::check_unsatisfiable_pdbs(&crate::protections::unsatisfiable_pdbs(w, ci))
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
                crate::fleet::Undrainable::Cordon
            } else {
                crate::fleet::Undrainable::Schedule
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
    p: &crate::world::Pool,
    props: &Map<String, Value>,
    spec: Option<VersionSpec>,
) -> Option<(String, Result<crate::world::RecentVersion, ArmReply>)> {
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
    let answer = crate::rules::check_rollback_channel(&c.auto_upgrade_channel)
        .map_err(refuse)
        .and_then(|()| {
            let found = targets
                .iter()
                .find(|t| t.image == asked && spec.is_none_or(|s| s.matches(t.version)));
            found.cloned().ok_or_else(|| {
                let listed: Vec<(KubeVersion, String)> = targets.iter().map(|t| (t.version, t.image.clone())).collect();
                let sent = spec.map(|s| s.to_string());
                refuse(crate::rules::rollback_not_accepted(
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
        && let Err(e) = crate::rules::check_unsatisfiable_pdbs(&crate::protections::unsatisfiable_pdbs(w, ci))
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
