//! `ringmaster snapshot`: a copy of the live fleet as a simulator fleet file, so that
//! `ringmaster sim --fleet` rehearses (and `ringmaster forecast` forecasts) what the real
//! rollout will do, on a copy of the real fleet.
//!
//! Read: from ARM what discovery reads (clusters, pools, versions, node images, upgrade
//! settings, maintenance configurations, tags, the region catalogue); from each cluster's
//! Kubernetes API its deployments (replicas, namespace, the pool their `nodeSelector`
//! pins) and the PDBs that select them. Written: the fleet file's own shape
//! (`docs/fleet.md`). No secret is read or written; `--anonymize` replaces every name
//! (clusters, resource groups, namespaces, workloads) by a hash. Tags are kept: the
//! policy's ring selectors need them to select the copy as they select the fleet.
//!
//! Not copied: subnets and quotas, deprecated API calls, pods' readiness delays, anything
//! but deployments (statefulsets, daemonsets). A minor's patches are the union of the
//! regions' (the fleet file lists a minor's patches once, for the regions it names).

use crate::arm::AksClient;
use crate::discovery::Discovery;
use crate::domain::fleet::ClusterId;
use crate::identity::TokenSource;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One deployment as the fleet file's `workloads` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    pub replicas: u32,
    pub pool: Option<String>,
    pub windows: bool,
    /// (minAvailable, maxUnavailable) of the PDB that selects it, as counts.
    pub pdb: Option<(Option<u32>, Option<u32>)>,
}

/// Reads the deployments and PDBs of one cluster.
pub async fn workloads(client: kube::Client) -> Result<Vec<Workload>, kube::Error> {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use kube::api::{Api, ListParams};
    let deployments = Api::<Deployment>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let pdbs = Api::<PodDisruptionBudget>::all(client)
        .list(&ListParams::default())
        .await?;
    let mut out = Vec::new();
    for d in deployments.items {
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        if ns == "kube-system" {
            continue;
        }
        let spec = d.spec.unwrap_or_default();
        let labels = spec.template.metadata.and_then(|m| m.labels).unwrap_or_default();
        let selector = spec.template.spec.and_then(|s| s.node_selector).unwrap_or_default();
        let pool = selector
            .get("kubernetes.azure.com/agentpool")
            .or_else(|| selector.get("agentpool"))
            .cloned();
        let windows = selector.get("kubernetes.io/os").is_some_and(|o| o == "windows");
        let count = |v: &Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>| match v {
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i)) => u32::try_from(*i).ok(),
            _ => None,
        };
        let pdb = pdbs
            .items
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
            .filter_map(|p| p.spec.as_ref())
            .find(|s| {
                s.selector
                    .as_ref()
                    .and_then(|sel| sel.match_labels.as_ref())
                    .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| labels.get(k) == Some(v)))
            })
            .map(|s| (count(&s.min_available), count(&s.max_unavailable)));
        out.push(Workload {
            name: d.metadata.name.unwrap_or_default(),
            namespace: ns,
            replicas: spec.replicas.unwrap_or(1).max(0) as u32,
            pool,
            windows,
            pdb,
        });
    }
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(out)
}

/// Names as written, or hashed (`--anonymize`): the same name always gives the same hash,
/// so that what refers to it (a wave naming a cluster, a workload's pool) still matches.
pub struct Names {
    anonymize: bool,
}

impl Names {
    pub fn new(anonymize: bool) -> Names {
        Names { anonymize }
    }

    fn name(&self, kind: &str, s: &str) -> String {
        if !self.anonymize {
            return s.to_string();
        }
        use sha2::Digest;
        let h = sha2::Sha256::digest(format!("{kind}/{s}").as_bytes());
        let hex: String = h.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!("{kind}-{hex}")
    }
}

/// The fleet file for `d` (with each cluster's workloads), as a YAML document.
pub fn fleet_file(d: &Discovery, workloads: &BTreeMap<ClusterId, Vec<Workload>>, names: &Names) -> Value {
    let snap = &d.snapshot;
    let subscriptions: BTreeSet<&str> = snap.clusters.iter().map(|c| c.id.subscription.as_str()).collect();
    // Minors: the union of the regions' patches, for the regions that offer the minor.
    #[derive(Default)]
    struct Minor {
        patches: BTreeSet<String>,
        regions: BTreeSet<String>,
        preview: bool,
        default: bool,
        end_of_support: Option<chrono::NaiveDate>,
    }
    let mut minors: BTreeMap<String, Minor> = BTreeMap::new();
    for (region, cat) in &snap.catalogue.regions {
        for m in &cat.minors {
            let e = minors.entry(m.minor.to_string()).or_default();
            e.patches.extend(m.patches.iter().map(|p| p.to_string()));
            e.regions.insert(region.clone());
            e.preview |= m.is_preview;
            e.default |= m.is_default;
            e.end_of_support = e.end_of_support.or(m.end_of_support);
        }
    }
    let versions: Vec<Value> = minors
        .into_iter()
        .map(|(minor, m)| {
            let mut v = json!({ "minor": minor, "patches": m.patches, "preview": m.preview, "default": m.default, "regions": m.regions });
            if let Some(d) = m.end_of_support {
                v["end_of_support"] = json!(d.format("%Y-%m-%d").to_string());
            }
            v
        })
        .collect();
    // Node images: per OS SKU, every version seen (pools' and regions' latest), each
    // available in the regions whose latest is that one or newer.
    let mut lines: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    let mut seen = |sku: &str, image: &str| {
        if let Some(v) = crate::domain::image::NodeImageVersion::parse(image) {
            let e = lines
                .entry(sku.to_string())
                .or_insert_with(|| (v.family.clone(), BTreeSet::new()));
            e.1.insert(v.version.clone());
        }
    };
    for c in &snap.clusters {
        for p in &c.pools {
            seen(&p.os_sku, &p.node_image);
        }
    }
    for cat in snap.catalogue.regions.values() {
        for (sku, image) in &cat.node_images {
            seen(sku, image);
        }
    }
    let day_before = (snap.taken_at - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let node_images: Vec<Value> = lines
        .into_iter()
        .map(|(sku, (family, versions))| {
            let releases: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let regions: BTreeMap<&String, &String> = snap
                        .catalogue
                        .regions
                        .iter()
                        .filter(|(_, cat)| {
                            cat.node_images
                                .get(&sku)
                                .and_then(|l| crate::domain::image::NodeImageVersion::parse(l))
                                .is_some_and(|l| {
                                    crate::domain::image::compare_versions(&l.version, v) != std::cmp::Ordering::Less
                                })
                        })
                        .map(|(r, _)| (r, &day_before))
                        .collect();
                    json!({ "version": v, "regions": regions })
                })
                .collect();
            json!({ "os_sku": sku, "family": family, "releases": releases })
        })
        .collect();
    let clusters: Vec<Value> = snap
        .clusters
        .iter()
        .map(|c| {
            let raw = d.raw.get(&c.id);
            let props = raw.map(|m| &m.properties);
            let pools: Vec<Value> = c
                .pools
                .iter()
                .map(|p| {
                    let rp = props
                        .and_then(|x| x.agent_pool_profiles.iter().find(|q| q.name == p.name))
                        .map(|q| &q.properties);
                    let up = rp.and_then(|x| x.upgrade_settings.as_ref());
                    let mut settings = serde_json::Map::new();
                    if let Some(s) = up.and_then(|u| u.max_surge.clone()) {
                        settings.insert("max_surge".into(), json!(s));
                    }
                    if let Some(s) = up.and_then(|u| u.max_unavailable.clone()) {
                        settings.insert("max_unavailable".into(), json!(s));
                    }
                    if let Some(m) = up.and_then(|u| u.drain_timeout_in_minutes) {
                        settings.insert("drain_timeout_minutes".into(), json!(m));
                    }
                    if let Some(m) = up.and_then(|u| u.node_soak_duration_in_minutes) {
                        settings.insert("node_soak_minutes".into(), json!(m));
                    }
                    let mut pool = json!({
                        "name": p.name,
                        "mode": format!("{:?}", p.mode),
                        "os_type": format!("{:?}", p.os_type),
                        "os_sku": p.os_sku,
                        "count": rp.and_then(|x| x.count).unwrap_or(1),
                        "version": p.version.to_string(),
                        // The fleet file names the version; the OS SKU gives the family.
                        "node_image": crate::domain::image::NodeImageVersion::parse(&p.node_image)
                            .map_or(p.node_image.clone(), |v| v.version),
                        "upgrade_settings": settings,
                    });
                    if let Some(size) = rp.and_then(|x| x.vm_size.clone()) {
                        pool["vm_size"] = json!(size);
                    }
                    if let Some(m) = rp.and_then(|x| x.max_pods) {
                        pool["max_pods"] = json!(m);
                    }
                    pool
                })
                .collect();
            let wl: Vec<Value> = workloads
                .get(&c.id)
                .into_iter()
                .flatten()
                .map(|w| {
                    let mut v = json!({
                        "name": names.name("app", &w.name),
                        "namespace": names.name("ns", &w.namespace),
                        "replicas": w.replicas,
                    });
                    if let Some(p) = &w.pool {
                        v["pool"] = json!(p);
                    }
                    if w.windows {
                        v["os"] = json!("Windows");
                    }
                    if let Some((min, max)) = w.pdb {
                        v["pdb"] = json!({ "min_available": min, "max_unavailable": max });
                    }
                    v
                })
                .collect();
            let maintenance: BTreeMap<&str, Value> = c
                .maintenance
                .iter()
                .map(|m| {
                    (
                        m.name.as_str(),
                        serde_json::to_value(&m.properties).unwrap_or(Value::Null),
                    )
                })
                .collect();
            let mut cluster = json!({
                "name": names.name("aks", &c.id.name),
                "subscription": c.id.subscription,
                "resource_group": names.name("rg", &c.id.resource_group),
                "location": c.location,
                "tags": c.tags,
                "kubernetes_version": c.control_plane.to_string(),
                "auto_upgrade_channel": c.auto_upgrade_channel,
                "node_os_upgrade_channel": c.node_os_upgrade_channel,
                "entra_id": props.is_some_and(|x| x.aad_profile.is_some()),
                "disable_local_accounts": props.and_then(|x| x.disable_local_accounts).unwrap_or(false),
                "maintenance": maintenance,
                "pools": pools,
                "workloads": wl,
            });
            if let Some(net) = props.and_then(|x| x.network_profile.as_ref())
                && let Some(plugin) = net.network_plugin.clone()
            {
                // Classic Azure CNI (no mode) gives pods subnet addresses; the fleet
                // file's default with `azure` is overlay, so the mode is always written.
                if plugin.eq_ignore_ascii_case("azure") {
                    cluster["network_plugin_mode"] =
                        json!(net.network_plugin_mode.clone().unwrap_or_else(|| "none".into()));
                }
                cluster["network_plugin"] = json!(plugin);
            }
            // A stopped cluster accepts no upgrade: the rehearsal must see it stopped.
            if let Some(code) = props
                .and_then(|x| x.power_state.as_ref())
                .and_then(|p| p.code.clone())
                .filter(|c| !c.eq_ignore_ascii_case("Running"))
            {
                cluster["power_state"] = json!(code);
            }
            cluster
        })
        .collect();
    json!({
        "start_time": snap.taken_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "subscriptions": subscriptions,
        "versions": versions,
        "node_images": node_images,
        "clusters": clusters,
    })
}

/// Discovers the fleet and reads every cluster's workloads (a cluster whose API server
/// cannot be read is copied without workloads, and said on stderr).
pub async fn read(
    arm: &AksClient,
    tokens: Arc<dyn TokenSource>,
    subscriptions: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(Discovery, BTreeMap<ClusterId, Vec<Workload>>)> {
    let mut d = crate::discovery::discover(arm, subscriptions, now).await?;
    crate::discovery::fetch_maintenance(arm, &mut d).await;
    let mut all = BTreeMap::new();
    for c in &d.snapshot.clusters {
        let read = async {
            let client = crate::kube::client_for(arm, tokens.clone(), &c.id)
                .await
                .map_err(|e| e.to_string())?;
            workloads(client).await.map_err(|e| e.to_string())
        };
        match read.await {
            Ok(w) => {
                all.insert(c.id.clone(), w);
            }
            Err(e) => eprintln!("warning: {}: workloads not read: {e}", c.id.name),
        }
    }
    Ok((d, all))
}
