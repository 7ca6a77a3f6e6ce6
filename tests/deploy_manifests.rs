//! `examples/deploy/`: every YAML and JSON file parses, the Kubernetes objects have the
//! Kubernetes schema (a typed round trip loses no field), and the least-privilege
//! properties the README promises hold: non-root, read-only root file system, all
//! capabilities dropped, seccomp, probes, a single writer, workload identity, the
//! instance metadata endpoint blocked, an Azure role with exactly the ARM actions the
//! code calls, read-only access inside the clusters, a hardened systemd unit.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn deploy_dir() -> PathBuf {
    root().join("examples/deploy")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(deploy_dir().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// Every file under examples/deploy, relative, sorted.
fn files() -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, base, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(&deploy_dir(), &deploy_dir(), &mut out);
    out.sort();
    out
}

fn is_yaml(f: &str) -> bool {
    f.ends_with(".yaml") || f.ends_with(".yml")
}

/// The documents of a YAML file (empty documents skipped).
fn yaml_docs(rel: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn json(rel: &str) -> Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every Kubernetes object (has apiVersion and kind; not kustomize's own file), with its file.
fn objects() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for f in files().into_iter().filter(|f| is_yaml(f)) {
        for d in yaml_docs(&f) {
            if d.get("apiVersion").is_some() && d["kind"] != "Kustomization" {
                out.push((f.clone(), d));
            }
        }
    }
    out
}

fn of_kind(kind: &str) -> Vec<(String, Value)> {
    objects().into_iter().filter(|(_, o)| o["kind"] == kind).collect()
}

fn the_one(kind: &str, dir: &str) -> Value {
    let found: Vec<Value> = of_kind(kind)
        .into_iter()
        .filter(|(f, _)| f.starts_with(dir))
        .map(|(_, o)| o)
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind} under {dir}, found {}", found.len());
    found.into_iter().next().unwrap()
}

/// Deserializes into the typed Kubernetes object and checks that serializing it back
/// gives the same document: a misspelt or misplaced field would be lost on the way.
fn typed<T: DeserializeOwned + Serialize>(file: &str, v: &Value) -> T {
    let t: T = serde_json::from_value(v.clone())
        .unwrap_or_else(|e| panic!("{file}: {} {}: {e}", v["kind"], v["metadata"]["name"]));
    let back = serde_json::to_value(&t).unwrap();
    assert_eq!(
        &back, v,
        "{file}: {} {} has fields the Kubernetes schema does not know (or wrong types)",
        v["kind"], v["metadata"]["name"]
    );
    t
}

#[test]
fn every_yaml_and_json_file_parses() {
    let all = files();
    let (mut yaml, mut json_files) = (0, 0);
    for f in &all {
        if is_yaml(f) {
            assert!(!yaml_docs(f).is_empty(), "{f} holds no document");
            yaml += 1;
        } else if f.ends_with(".json") {
            assert!(json(f).is_object(), "{f}");
            json_files += 1;
        } else {
            assert!(
                f.ends_with(".md") || f.ends_with(".service") || f.ends_with(".env"),
                "unexpected file {f}: add a check for it"
            );
        }
    }
    // JSON: the two Azure roles and the Grafana dashboard (tests/metrics_series.rs
    // checks its queries).
    assert!(yaml >= 10 && json_files == 3, "{all:?}");
}

#[test]
fn kubernetes_objects_match_the_schema() {
    let mut kinds = BTreeMap::<String, usize>::new();
    for (f, o) in objects() {
        let kind = o["kind"].as_str().unwrap().to_string();
        match kind.as_str() {
            "Namespace" => drop(typed::<Namespace>(&f, &o)),
            "ServiceAccount" => drop(typed::<ServiceAccount>(&f, &o)),
            "ConfigMap" => drop(typed::<ConfigMap>(&f, &o)),
            "Secret" => drop(typed::<Secret>(&f, &o)),
            "PersistentVolumeClaim" => drop(typed::<PersistentVolumeClaim>(&f, &o)),
            "Deployment" => drop(typed::<Deployment>(&f, &o)),
            "Service" => drop(typed::<Service>(&f, &o)),
            "NetworkPolicy" => drop(typed::<NetworkPolicy>(&f, &o)),
            "ClusterRole" => drop(typed::<ClusterRole>(&f, &o)),
            "ClusterRoleBinding" => drop(typed::<ClusterRoleBinding>(&f, &o)),
            other => panic!("{f}: no schema check for kind {other}"),
        }
        *kinds.entry(kind).or_default() += 1;
    }
    for k in [
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "NetworkPolicy",
        "ClusterRole",
        "ClusterRoleBinding",
    ] {
        assert!(kinds.contains_key(k), "no {k} in examples/deploy");
    }
    // Everything in the management cluster lives in ringmaster's namespace.
    for (f, o) in objects().into_iter().filter(|(f, _)| f.starts_with("kubernetes/")) {
        if o["kind"] != "Namespace" {
            assert_eq!(
                o["metadata"]["namespace"], "ringmaster",
                "{f}: {}",
                o["metadata"]["name"]
            );
        }
    }
}

#[test]
fn kustomization_lists_every_management_manifest_but_the_secrets() {
    let k = &yaml_docs("kubernetes/kustomization.yaml")[0];
    let listed: BTreeSet<String> = k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let present: BTreeSet<String> = files()
        .into_iter()
        .filter_map(|f| f.strip_prefix("kubernetes/").map(str::to_string))
        .filter(|f| is_yaml(f) && f != "kustomization.yaml" && f != "secret.example.yaml")
        .collect();
    assert_eq!(listed, present);
}

fn deployment() -> Deployment {
    let o = the_one("Deployment", "kubernetes/");
    typed("kubernetes/deployment.yaml", &o)
}

#[test]
fn the_pod_runs_unprivileged_with_a_read_only_root() {
    let d = deployment();
    let pod = d.spec.unwrap().template.spec.unwrap();
    let psc = pod.security_context.clone().expect("pod securityContext");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.run_as_user, Some(65532));
    assert_eq!(psc.run_as_group, Some(65532));
    assert_eq!(
        psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );
    assert_ne!(pod.host_network, Some(true));
    assert_ne!(pod.host_pid, Some(true));
    assert_ne!(pod.host_ipc, Some(true));
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert!(pod.init_containers.is_none());
    assert_eq!(pod.containers.len(), 1);
    for c in &pod.containers {
        let sc = c.security_context.clone().expect("container securityContext");
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
        assert_ne!(sc.privileged, Some(true), "{}", c.name);
        assert_ne!(sc.run_as_non_root, Some(false), "{}", c.name);
        assert_ne!(sc.run_as_user, Some(0), "{}", c.name);
        let caps = sc.capabilities.expect("capabilities");
        assert_eq!(caps.drop, Some(vec!["ALL".to_string()]), "{}", c.name);
        assert!(caps.add.unwrap_or_default().is_empty(), "{}", c.name);
        if let Some(s) = sc.seccomp_profile {
            assert_eq!(s.type_, "RuntimeDefault");
        }
        let r = c.resources.clone().expect("resources");
        for (what, m) in [("requests", r.requests), ("limits", r.limits)] {
            let m = m.unwrap_or_else(|| panic!("no resource {what}"));
            assert!(m.contains_key("cpu") && m.contains_key("memory"), "{what}: {m:?}");
        }
    }
    // No volume type that reaches the node.
    for v in pod.volumes.clone().unwrap_or_default() {
        assert!(v.host_path.is_none(), "hostPath volume {}", v.name);
    }
}

#[test]
fn probes_hit_health_and_readiness_on_their_own_listener() {
    let d = deployment();
    let pod = d.spec.unwrap().template.spec.unwrap();
    let c = &pod.containers[0];
    let ports = c.ports.clone().unwrap_or_default();
    let port = |name: &str| {
        ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no port {name}"))
            .clone()
    };
    assert_eq!(ports.len(), 2, "the API port and the probes' port");
    let (api, probes) = (port("http"), port("probes"));
    let is_port = |p: &IntOrString, of: &k8s_openapi::api::core::v1::ContainerPort| match p {
        IntOrString::Int(n) => *n == of.container_port,
        IntOrString::String(s) => Some(s) == of.name.as_ref(),
    };
    let is_api_port = |p: &IntOrString| is_port(p, &api);
    for (what, probe, path) in [
        ("startup", c.startup_probe.clone(), "/healthz"),
        ("liveness", c.liveness_probe.clone(), "/healthz"),
        ("readiness", c.readiness_probe.clone(), "/readyz"),
    ] {
        let get = probe
            .and_then(|p| p.http_get)
            .unwrap_or_else(|| panic!("httpGet {what}Probe"));
        assert_eq!(get.path.as_deref(), Some(path), "{what}");
        assert!(is_port(&get.port, &probes), "the {what} probe on the probes' listener");
    }
    // RINGMASTER_LISTEN and RINGMASTER_PROBE_LISTEN listen on those ports.
    let env: BTreeMap<String, String> = c
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect();
    assert!(env["RINGMASTER_LISTEN"].ends_with(&format!(":{}", api.container_port)));
    assert!(env["RINGMASTER_PROBE_LISTEN"].ends_with(&format!(":{}", probes.container_port)));
    // And the Service sends traffic there.
    let svc: Service = typed("kubernetes/service.yaml", &the_one("Service", "kubernetes/"));
    let spec = svc.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    for p in spec.ports.unwrap() {
        assert!(is_api_port(p.target_port.as_ref().unwrap()));
    }
}

#[test]
fn one_writer_state_on_a_disk_tmp_in_an_empty_dir() {
    let d = deployment();
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.strategy.and_then(|s| s.type_).as_deref(), Some("Recreate"));
    let pod = spec.template.spec.unwrap();
    let volumes: BTreeMap<String, k8s_openapi::api::core::v1::Volume> =
        pod.volumes.unwrap().into_iter().map(|v| (v.name.clone(), v)).collect();
    let mounts: BTreeMap<String, String> = pod.containers[0]
        .volume_mounts
        .clone()
        .unwrap()
        .into_iter()
        .map(|m| (m.mount_path, m.name))
        .collect();
    assert!(volumes[&mounts["/tmp"]].empty_dir.is_some(), "/tmp is an emptyDir");
    let claim = volumes[&mounts["/var/lib/ringmaster"]]
        .persistent_volume_claim
        .clone()
        .expect("the state is a PVC")
        .claim_name;
    let pvc: PersistentVolumeClaim = typed("kubernetes/pvc.yaml", &the_one("PersistentVolumeClaim", "kubernetes/"));
    assert_eq!(pvc.metadata.name.as_deref(), Some(claim.as_str()));
    assert_eq!(pvc.spec.unwrap().access_modes, Some(vec!["ReadWriteOnce".to_string()]));
    // Config from the ConfigMap, tokens from a Secret, all read-only, nobody may write.
    let mut saw_configmap = false;
    let mut saw_secret = false;
    for m in pod.containers[0].volume_mounts.clone().unwrap() {
        let v = &volumes[&m.name];
        if let Some(cm) = &v.config_map {
            saw_configmap = true;
            assert_eq!(m.read_only, Some(true), "{}", m.name);
            assert_eq!(cm.default_mode.unwrap() & 0o222, 0, "{}", m.name);
        }
        if let Some(s) = &v.secret {
            saw_secret = true;
            assert_eq!(m.read_only, Some(true), "{}", m.name);
            assert_eq!(
                s.default_mode.unwrap() & 0o227,
                0,
                "{}: no write, nothing for others",
                m.name
            );
        }
    }
    assert!(saw_configmap && saw_secret);
    let env: BTreeMap<String, String> = pod.containers[0]
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect();
    assert!(env["RINGMASTER_STATE"].starts_with("/var/lib/ringmaster/"));
    assert!(
        env["RINGMASTER_TOKENS_FILE"]
            .starts_with(&mounts.iter().find(|(_, n)| *n == "api-tokens").unwrap().0.to_string())
    );
}

#[test]
fn workload_identity_is_wired_and_the_only_credential() {
    let d = deployment();
    let template = d.spec.unwrap().template;
    let labels = template.metadata.unwrap().labels.unwrap();
    assert_eq!(
        labels.get("azure.workload.identity/use").map(String::as_str),
        Some("true")
    );
    let pod = template.spec.unwrap();
    let sa_name = pod.service_account_name.expect("serviceAccountName");
    let sa: ServiceAccount = typed(
        "kubernetes/serviceaccount.yaml",
        &the_one("ServiceAccount", "kubernetes/"),
    );
    assert_eq!(sa.metadata.name.as_deref(), Some(sa_name.as_str()));
    let annotations = sa.metadata.annotations.unwrap();
    assert!(annotations.contains_key("azure.workload.identity/client-id"));
    assert_eq!(sa.automount_service_account_token, Some(false));
    let env: BTreeMap<String, Option<String>> = pod.containers[0]
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, e.value))
        .collect();
    assert_eq!(env["RINGMASTER_CREDENTIAL"].as_deref(), Some("workload-identity"));
    for k in env.keys() {
        assert!(
            !k.starts_with("AZURE_"),
            "{k}: the workload identity webhook injects the AZURE_* variables; no secrets in the pod spec"
        );
    }
}

/// IPv4 CIDR containment.
fn cidr_contains(cidr: &str, ip: &str) -> bool {
    let parse = |s: &str| s.parse::<std::net::Ipv4Addr>().map(u32::from);
    let (net, len) = cidr.split_once('/').unwrap();
    let (Ok(net), Ok(ip), Ok(len)) = (parse(net), parse(ip), len.parse::<u32>()) else {
        return false;
    };
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    net & mask == ip & mask
}

#[test]
fn network_policy_denies_by_default_and_never_reaches_the_metadata_endpoint() {
    let policies: Vec<NetworkPolicy> = of_kind("NetworkPolicy")
        .iter()
        .map(|(f, o)| typed::<NetworkPolicy>(f, o))
        .collect();
    // A namespace-wide default deny for both directions.
    assert!(policies.iter().any(|p| {
        let s = p.spec.clone().unwrap();
        s.pod_selector
            .as_ref()
            .is_none_or(|sel| sel.match_labels.is_none() && sel.match_expressions.is_none())
            && s.ingress.is_none()
            && s.egress.is_none()
            && s.policy_types == Some(vec!["Ingress".into(), "Egress".into()])
    }));
    let pod_labels = deployment().spec.unwrap().template.metadata.unwrap().labels.unwrap();
    let api_port = deployment().spec.unwrap().template.spec.unwrap().containers[0]
        .ports
        .clone()
        .unwrap()[0]
        .container_port;
    let mine: Vec<_> = policies
        .iter()
        .filter_map(|p| p.spec.clone())
        .filter(|s| {
            s.pod_selector
                .as_ref()
                .and_then(|sel| sel.match_labels.clone())
                .is_some_and(|m| m.iter().all(|(k, v)| pod_labels.get(k) == Some(v)))
        })
        .collect();
    assert_eq!(mine.len(), 1, "one policy for the ringmaster pod");
    let spec = &mine[0];
    assert_eq!(spec.policy_types, Some(vec!["Ingress".into(), "Egress".into()]));

    // In: only the API port, only from selected namespaces.
    for rule in spec.ingress.clone().unwrap() {
        let from = rule.from.expect("ingress from selected peers only");
        assert!(!from.is_empty());
        for peer in from {
            assert!(peer.ip_block.is_none(), "ingress by namespace, not address");
            let ns = peer.namespace_selector.expect("namespaceSelector");
            assert!(
                ns.match_labels.is_some() || ns.match_expressions.is_some(),
                "not every namespace"
            );
        }
        let ports = rule.ports.expect("ingress ports");
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, Some(IntOrString::Int(api_port)));
    }

    // Out: every rule names destinations; every address range that covers the metadata
    // endpoint excepts it.
    let egress = spec.egress.clone().unwrap();
    let mut excepted = false;
    let mut dns = BTreeSet::new();
    for rule in &egress {
        let to = rule
            .to
            .clone()
            .expect("an egress rule without `to` allows every destination");
        assert!(!to.is_empty(), "an empty `to` allows every destination");
        for peer in &to {
            if let Some(b) = &peer.ip_block
                && cidr_contains(&b.cidr, "169.254.169.254")
            {
                let except = b.except.clone().unwrap_or_default();
                assert!(
                    except.iter().any(|e| e == "169.254.169.254/32"),
                    "{} reaches the instance metadata endpoint",
                    b.cidr
                );
                excepted = true;
            }
        }
        for p in rule.ports.clone().unwrap_or_default() {
            if p.port == Some(IntOrString::Int(53)) {
                dns.insert(p.protocol.unwrap_or_else(|| "TCP".into()));
            }
        }
    }
    assert!(excepted, "egress to 0.0.0.0/0 with the metadata endpoint excepted");
    assert_eq!(dns, BTreeSet::from(["TCP".to_string(), "UDP".to_string()]), "DNS");
    let world = egress
        .iter()
        .flat_map(|r| r.to.clone().unwrap())
        .filter_map(|p| p.ip_block)
        .find(|b| b.cidr == "0.0.0.0/0")
        .expect("egress to 0.0.0.0/0");
    assert!(world.except.unwrap().contains(&"169.254.169.254/32".to_string()));
}

#[test]
fn no_pod_disruption_budget_for_a_single_replica() {
    assert!(of_kind("PodDisruptionBudget").is_empty());
    let readme = read("README.md");
    assert!(readme.contains("PodDisruptionBudget is **not** appropriate for a single replica"));
}

#[test]
fn the_configmap_holds_a_valid_policy_and_no_secret() {
    let cm: ConfigMap = typed("kubernetes/configmap.yaml", &the_one("ConfigMap", "kubernetes/"));
    let data = cm.data.unwrap();
    let policy = ringmaster::policy::compile("configmap:policy.yaml", &data["policy.yaml"]);
    assert!(policy.is_ok(), "{}", policy.unwrap_err());
    let config: Value = serde_saphyr::from_str(&data["config.yaml"]).unwrap();
    let hooks = config["webhooks"].as_array().expect("webhooks");
    assert!(!hooks.is_empty());
    for h in hooks {
        let url = h["url"].as_str().unwrap();
        assert!(
            url.starts_with("file:") || url.starts_with("env:"),
            "a webhook URL is a secret: refer to it, never inline it in a ConfigMap ({})",
            &url[..url.len().min(12)]
        );
    }
    // The rest of each entry is what ringmaster::notify::WebhookConfig accepts.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("url");
    std::fs::write(&file, "https://hooks.example.org/x").unwrap();
    for h in hooks {
        let mut h = h.clone();
        h["url"] = Value::String(format!("file:{}", file.display()));
        serde_json::from_value::<ringmaster::notify::WebhookConfig>(h.clone()).unwrap_or_else(|e| panic!("{h}: {e}"));
    }
    // Every webhook file it refers to is mounted from a Secret.
    let pod = deployment().spec.unwrap().template.spec.unwrap();
    let secret_mounts: Vec<String> = pod.containers[0]
        .volume_mounts
        .clone()
        .unwrap()
        .into_iter()
        .filter(|m| {
            pod.volumes
                .as_ref()
                .unwrap()
                .iter()
                .any(|v| v.name == m.name && v.secret.is_some())
        })
        .map(|m| m.mount_path)
        .collect();
    for h in hooks {
        let path = h["url"].as_str().unwrap().trim_start_matches("file:");
        assert!(
            secret_mounts.iter().any(|m| path.starts_with(&format!("{m}/"))),
            "{path}"
        );
    }
}

#[test]
fn example_secrets_are_placeholders_that_accept_nothing() {
    for (f, o) in of_kind("Secret") {
        assert!(f.ends_with(".example.yaml"), "{f}: real Secrets are not committed");
        let s: Secret = typed(&f, &o);
        for (k, v) in s.string_data.unwrap_or_default() {
            assert!(v.contains("REPLACE"), "{f}: {k} is not a placeholder");
            // No usable SHA-256 digest: an unedited copy must not accept any token.
            let hex64 = v.split(|c: char| !c.is_ascii_hexdigit()).any(|w| w.len() == 64);
            assert!(!hex64, "{f}: {k} holds a real-looking digest");
        }
        assert!(s.data.is_none(), "{f}: stringData placeholders only");
    }
}

/// Each ARM operation ringmaster has, and the actions it needs. Adding an operation to
/// `src/arm/client.rs` or `src/arm/lro.rs` fails this test until it is listed here, and so
/// until the role (and the README's table) has been reconsidered.
const ARM_CALLS: &[(&str, &[&str])] = &[
    ("compute_usages", &["Microsoft.Compute/locations/usages/read"]),
    ("vnet_usages", &["Microsoft.Network/virtualNetworks/read"]),
    ("list_clusters", &["Microsoft.ContainerService/managedClusters/read"]),
    ("get_cluster", &["Microsoft.ContainerService/managedClusters/read"]),
    (
        "list_pools",
        &["Microsoft.ContainerService/managedClusters/agentPools/read"],
    ),
    (
        "get_pool",
        &["Microsoft.ContainerService/managedClusters/agentPools/read"],
    ),
    (
        "cluster_upgrade_profile",
        &["Microsoft.ContainerService/managedClusters/upgradeProfiles/read"],
    ),
    (
        "pool_upgrade_profile",
        &["Microsoft.ContainerService/managedClusters/agentPools/upgradeProfiles/read"],
    ),
    (
        "kubernetes_versions",
        &["Microsoft.ContainerService/locations/kubernetesversions/read"],
    ),
    (
        "maintenance_configurations",
        &["Microsoft.ContainerService/managedClusters/maintenanceConfigurations/read"],
    ),
    (
        "user_kubeconfig",
        &["Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"],
    ),
    (
        "upgrade_control_plane",
        &[
            "Microsoft.ContainerService/managedClusters/read",
            "Microsoft.ContainerService/managedClusters/write",
        ],
    ),
    (
        // PUT guarded by the eTag of the cluster the caller read; reads it back after
        // an ambiguous failure.
        "upgrade_control_plane_from",
        &[
            "Microsoft.ContainerService/managedClusters/read",
            "Microsoft.ContainerService/managedClusters/write",
        ],
    ),
    (
        // AKS's node pool rollback: a PUT of the pool (nodeImageVersion from
        // recentlyUsedVersions), read back after an ambiguous failure.
        "rollback_pool_from",
        &[
            "Microsoft.ContainerService/managedClusters/agentPools/read",
            "Microsoft.ContainerService/managedClusters/agentPools/write",
        ],
    ),
    (
        "upgrade_pool_from",
        &[
            "Microsoft.ContainerService/managedClusters/agentPools/read",
            "Microsoft.ContainerService/managedClusters/agentPools/write",
        ],
    ),
    (
        "upgrade_pool",
        &[
            "Microsoft.ContainerService/managedClusters/agentPools/read",
            "Microsoft.ContainerService/managedClusters/agentPools/write",
        ],
    ),
    (
        "upgrade_pool_with",
        &[
            "Microsoft.ContainerService/managedClusters/agentPools/read",
            "Microsoft.ContainerService/managedClusters/agentPools/write",
        ],
    ),
    (
        "upgrade_node_image",
        &[
            "Microsoft.ContainerService/managedClusters/agentPools/upgradeNodeImageVersion/action",
            "Microsoft.ContainerService/managedClusters/agentPools/read",
        ],
    ),
    (
        "abort",
        &[
            "Microsoft.ContainerService/managedClusters/abort/action",
            "Microsoft.ContainerService/managedClusters/agentPools/abort/action",
        ],
    ),
    (
        "operation_status",
        &[
            "Microsoft.ContainerService/locations/operations/read",
            "Microsoft.ContainerService/locations/operationresults/read",
        ],
    ),
    (
        "poll_once",
        &[
            "Microsoft.ContainerService/locations/operations/read",
            "Microsoft.ContainerService/locations/operationresults/read",
        ],
    ),
    (
        "wait",
        &[
            "Microsoft.ContainerService/locations/operations/read",
            "Microsoft.ContainerService/locations/operationresults/read",
        ],
    ),
    ("list_subscriptions", &["Microsoft.Resources/subscriptions/read"]),
];

/// Names of `pub async fn`s in a source file.
fn pub_async_fns(rel: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(rel)).unwrap();
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("pub async fn "))
        .map(|rest| rest.split(['(', '<']).next().unwrap().to_string())
        .collect()
}

fn role_list(role: &Value, key: &str) -> Vec<String> {
    role[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} missing"))
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_azure_role_allows_exactly_the_arm_calls_ringmaster_makes() {
    let role = json("azure/ringmaster-role.json");
    assert_eq!(role["IsCustom"], true);
    let actions = role_list(&role, "Actions");
    let unique: BTreeSet<String> = actions.iter().cloned().collect();
    assert_eq!(unique.len(), actions.len(), "duplicate actions");
    for a in &actions {
        assert!(!a.contains('*'), "wildcard action {a}");
        assert!(!a.ends_with("/delete"), "ringmaster deletes nothing: {a}");
        assert!(!a.to_lowercase().contains("listclusteradmincredential"), "{a}");
        assert!(!a.to_lowercase().contains("runcommand"), "{a}");
    }
    for k in ["NotActions", "DataActions", "NotDataActions"] {
        assert!(role_list(&role, k).is_empty(), "{k} must be empty");
    }
    let expected: BTreeSet<String> = [
        "Microsoft.Resources/subscriptions/read",
        "Microsoft.ContainerService/managedClusters/read",
        "Microsoft.ContainerService/managedClusters/write",
        "Microsoft.ContainerService/managedClusters/upgradeProfiles/read",
        "Microsoft.ContainerService/managedClusters/maintenanceConfigurations/read",
        "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
        "Microsoft.ContainerService/managedClusters/abort/action",
        "Microsoft.ContainerService/managedClusters/agentPools/read",
        "Microsoft.ContainerService/managedClusters/agentPools/write",
        "Microsoft.ContainerService/managedClusters/agentPools/upgradeProfiles/read",
        "Microsoft.ContainerService/managedClusters/agentPools/upgradeNodeImageVersion/action",
        "Microsoft.ContainerService/managedClusters/agentPools/abort/action",
        "Microsoft.ContainerService/locations/kubernetesversions/read",
        "Microsoft.ContainerService/locations/operations/read",
        "Microsoft.ContainerService/locations/operationresults/read",
        "Microsoft.Compute/locations/usages/read",
        "Microsoft.Network/virtualNetworks/read",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(unique, expected);

    // The list is the union of what the code's ARM operations need...
    let table: BTreeMap<&str, &[&str]> = ARM_CALLS.iter().copied().collect();
    let derived: BTreeSet<String> = table.values().flat_map(|a| a.iter().map(|s| s.to_string())).collect();
    assert_eq!(derived, expected, "role vs. the actions of the code's calls");
    // ...and every ARM operation in the code is in the table.
    let mut ops = pub_async_fns("src/arm/client.rs");
    ops.extend(pub_async_fns("src/arm/lro.rs"));
    for op in &ops {
        assert!(
            table.contains_key(op.as_str()),
            "ARM operation `{op}` has no entry in ARM_CALLS: which action does it need?"
        );
    }
    // The one raw ARM request outside the client: the subscription list.
    let discovery = std::fs::read_to_string(root().join("src/discovery.rs")).unwrap();
    assert!(discovery.contains(".url(\"/subscriptions\")"));
    // The request paths the table stands for are still the ones the client sends.
    let client = std::fs::read_to_string(root().join("src/arm/client.rs")).unwrap();
    for path in [
        "/providers/Microsoft.ContainerService/managedClusters\"",
        "{}/agentPools",
        "{}/upgradeProfiles/default",
        "{}/agentPools/{pool}/upgradeProfiles/default",
        "/locations/{location}/kubernetesVersions",
        "{}/maintenanceConfigurations",
        "{}/listClusterUserCredential",
        "{}/agentPools/{pool}/upgradeNodeImageVersion",
        "{}/agentPools/{p}/abort",
        "{}/abort",
    ] {
        assert!(
            client.contains(path),
            "src/arm/client.rs no longer requests {path}: update the role"
        );
    }

    let scopes = role_list(&role, "AssignableScopes");
    assert_eq!(scopes.len(), 1);
    assert!(scopes[0].starts_with("/subscriptions/") && !scopes[0].contains("resourceGroups"));
    // The README explains every action.
    let readme = read("README.md");
    for a in &expected {
        assert!(readme.contains(&format!("`{a}`")), "README does not explain {a}");
    }
}

#[test]
fn access_inside_the_clusters_is_read_only() {
    // Kubernetes RBAC: list and watch pods, nodes, ReplicaSets; list PDBs; get /metrics.
    let (f, o) = of_kind("ClusterRole").pop().unwrap();
    let role: ClusterRole = typed(&f, &o);
    let mut granted = BTreeSet::new();
    for r in role.rules.unwrap() {
        for v in &r.verbs {
            assert!(["get", "list", "watch"].contains(&v.as_str()), "verb {v}");
        }
        for g in r.api_groups.clone().unwrap_or_default() {
            for res in r.resources.clone().unwrap_or_default() {
                assert!(!res.contains('*') && !g.contains('*'));
                granted.insert(format!("{g}/{res}"));
            }
        }
        assert!(r.resource_names.is_none());
        if let Some(urls) = &r.non_resource_urls {
            assert_eq!(urls, &["/metrics".to_string()], "only /metrics");
            assert_eq!(r.verbs, ["get"]);
            assert!(r.api_groups.is_none() && r.resources.is_none());
        }
    }
    assert_eq!(
        granted,
        BTreeSet::from([
            "/pods".to_string(),
            "/nodes".to_string(),
            "apps/replicasets".to_string(),
            "policy/poddisruptionbudgets".to_string()
        ])
    );
    let (f, o) = of_kind("ClusterRoleBinding").pop().unwrap();
    let binding: ClusterRoleBinding = typed(&f, &o);
    assert_eq!(binding.role_ref.name, role.metadata.name.unwrap());
    assert_eq!(binding.role_ref.kind, "ClusterRole");

    // Azure RBAC for Kubernetes: the same, as data actions.
    let reader = json("azure/ringmaster-kube-reader-role.json");
    assert!(role_list(&reader, "Actions").is_empty());
    let data: BTreeSet<String> = role_list(&reader, "DataActions").into_iter().collect();
    assert_eq!(
        data,
        BTreeSet::from([
            "Microsoft.ContainerService/managedClusters/pods/read".to_string(),
            "Microsoft.ContainerService/managedClusters/nodes/read".to_string(),
            "Microsoft.ContainerService/managedClusters/apps/replicasets/read".to_string(),
            "Microsoft.ContainerService/managedClusters/policy/poddisruptionbudgets/read".to_string(),
        ])
    );
}

/// `Key=value` lines of a systemd unit, by key (a key may repeat).
fn unit_keys(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') || line.starts_with('[') {
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("not key=value: {line}"));
        out.entry(k.trim().to_string()).or_default().push(v.trim().to_string());
    }
    out
}

#[test]
fn the_systemd_unit_is_hardened() {
    let text = read("systemd/ringmaster.service");
    for section in ["[Unit]", "[Service]", "[Install]"] {
        assert!(text.contains(section), "{section}");
    }
    let keys = unit_keys(&text);
    let one = |k: &str| -> String {
        let v = keys.get(k).unwrap_or_else(|| panic!("{k} missing"));
        v.last().unwrap().clone()
    };
    assert!(one("ExecStart").ends_with("ringmaster serve"));
    for (k, want) in [
        ("DynamicUser", "yes"),
        ("StateDirectory", "ringmaster"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("RestrictSUIDSGID", "yes"),
        ("Restart", "on-failure"),
        ("UMask", "0077"),
    ] {
        assert_eq!(one(k), want, "{k}");
    }
    let families: BTreeSet<&str> = one("RestrictAddressFamilies").leak().split_whitespace().collect();
    assert_eq!(families, BTreeSet::from(["AF_INET", "AF_INET6", "AF_UNIX"]));
    assert!(one("MemoryMax").ends_with('M') || one("MemoryMax").ends_with('G'));
    assert!(one("EnvironmentFile").starts_with("/etc/ringmaster/"));
    assert!(keys.contains_key("SystemCallFilter"));
    assert!(!keys.contains_key("User"), "DynamicUser, not a fixed user");
    // Secrets come as credentials, not as environment.
    let env = read("systemd/ringmaster.env");
    assert!(
        !env.to_uppercase().contains("SECRET="),
        "no secret in the environment file"
    );
    assert!(keys["LoadCredential"].iter().any(|c| c.starts_with("tokens.yaml:")));
}
