//! Managed clusters: the list (paged), the cluster PUT (create is refused; version,
//! channel and setting changes, with the upgrade it may start) and the user and admin
//! credentials (kubeconfigs).

use super::operations::lro_reply;
use super::write_checks::{busy, parse_body, preconditions, stopped, unsupported_version, version_field};
use super::{ArmReply, ArmRequest, RP, eq};
use crate::arm_json as j;
use crate::fleet::OpKind;
use crate::operation::{self, Phase, Target};
use crate::rules::{check_control_plane_upgrade, check_pool_upgrade};
use crate::shared::Shared;
use crate::version::KubeVersion;
use crate::world::World;
use base64::Engine;
use http::StatusCode;
use serde_json::{Map, Value, json};

pub(super) fn list_clusters(shared: &Shared, w: &World, r: &ArmRequest<'_>, sub: &str, rg: Option<&str>) -> ArmReply {
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

pub(super) fn put_cluster(shared: &Shared, w: &mut World, r: &ArmRequest<'_>, ci: usize) -> ArmReply {
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
        && let Err(e) = crate::protections::deprecated_apis(w, ci, cp_target, upgrade_settings.as_ref())
    {
        return e;
    }
    if !pool_targets.is_empty()
        && let Err(e) = crate::rules::check_unsatisfiable_pdbs(&crate::protections::unsatisfiable_pdbs(w, ci))
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

pub(super) fn available(w: &World, ci: usize) -> String {
    let c = &w.clusters[ci];
    let v: Vec<String> = w
        .control_plane_upgrades(&c.location, c.current_version)
        .iter()
        .map(|(v, _)| v.to_string())
        .collect();
    format!("[{}]", v.join(" "))
}

pub(super) fn credentials(shared: &Shared, w: &World, r: &ArmRequest<'_>, ci: usize, admin: bool) -> ArmReply {
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
            server = crate::auth::AKS_SERVER_APP,
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
