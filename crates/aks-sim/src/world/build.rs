//! Building the world from a compiled fleet: each cluster, its pools, its nodes and its
//! pods (already Ready at the start), and the nodes and pods made later as pools scale and
//! upgrade.

use super::cluster::{Cluster, Pool};
use super::events::Event;
use super::pods::pick_node;
use super::{World, base36_6, lower3};
use crate::clock::SimTime;
use crate::fleet::{ClusterDef, FaultKind, Fleet, OsType, Pdb, PoolDef, PoolMode, WorkloadDef};
use crate::kube_model::{ChangeType, KubeState, Node, Pod, PodPhase, Workload};
use crate::rng::Rng;
use crate::version::KubeVersion;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

impl World {
    /// Builds the world at `start`: every cluster, its nodes, and its pods already Ready.
    pub fn new(fleet: Fleet, start: SimTime, seed: u64) -> Self {
        let mut w = World {
            now: start,
            start,
            clusters: Vec::with_capacity(fleet.clusters.len()),
            by_key: BTreeMap::new(),
            by_fqdn: HashMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            rng: Rng::new(seed),
            ops: BTreeMap::new(),
            events_applied: 0,
            writes: Vec::new(),
            last_started: None,
            last_rollback: None,
            fleet,
        };
        let defs = std::mem::take(&mut w.fleet.clusters);
        for def in &defs {
            let c = w.build_cluster(def);
            let idx = w.clusters.len();
            w.by_key
                .insert(lower3(&c.subscription, &c.resource_group, &c.name), idx);
            w.by_fqdn.insert(c.fqdn.clone(), idx);
            w.clusters.push(c);
        }
        w.fleet.clusters = defs;
        for (i, f) in w.fleet.faults.clone().iter().enumerate() {
            if let FaultKind::AutoUpgrade { cluster, channel } = &f.what {
                for c in 0..w.clusters.len() {
                    if &w.clusters[c].name == cluster {
                        w.clusters[c].auto_upgrade_channel = channel.clone();
                        w.schedule(start.plus(f.from), Event::AutoUpgrade { c, fault: i });
                    }
                }
            }
        }
        w
    }

    fn build_cluster(&mut self, def: &ClusterDef) -> Cluster {
        let hash = self.rng.hex(8);
        let dns_prefix = format!("{}-dns", def.name.to_ascii_lowercase().replace('_', "-"));
        let fqdn = format!("{dns_prefix}-{hash}.hcp.{}.azmk8s.io", def.location);
        let mut extra_properties = Map::new();
        extra_properties.insert("dnsPrefix".into(), Value::String(dns_prefix.clone()));
        extra_properties.insert("enableRBAC".into(), Value::Bool(true));
        extra_properties.insert(
            "nodeResourceGroup".into(),
            Value::String(format!("MC_{}_{}_{}", def.resource_group, def.name, def.location)),
        );
        let mut network = serde_json::json!({
            "networkPlugin": def.conditions.network_plugin, "podCidr": "10.244.0.0/16",
            "serviceCidr": "10.0.0.0/16", "dnsServiceIP": "10.0.0.10", "outboundType": "loadBalancer",
            "loadBalancerSku": "standard"
        });
        if let Some(mode) = &def.conditions.network_plugin_mode {
            network["networkPluginMode"] = Value::String(mode.clone());
        }
        if def.conditions.classic_azure_cni() {
            // Classic Azure CNI gives pods subnet addresses: there is no pod CIDR.
            network.as_object_mut().map(|n| n.remove("podCidr"));
        }
        extra_properties.insert("networkProfile".into(), network);
        // The kubelet's identity AKS creates in the node resource group (`<name>-agentpool`)
        // for a cluster with a system-assigned identity: AKS's docs read it with `az aks
        // show --query identityProfile.kubeletidentity.objectId` (`create-valkey-infrastructure.md`),
        // shape as in `pre-created-kubelet-managed-identity.md`.
        let mut ids = Rng::keyed(&format!(
            "kubelet/{}/{}/{}",
            def.subscription, def.resource_group, def.name
        ));
        extra_properties.insert(
            "identityProfile".into(),
            serde_json::json!({ "kubeletidentity": {
                "resourceId": format!(
                    "/subscriptions/{}/resourcegroups/MC_{}_{}_{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}-agentpool",
                    def.subscription, def.resource_group, def.name, def.location, def.name
                ),
                "clientId": ids.guid(),
                "objectId": ids.guid(),
            } }),
        );
        let mut extra_top = Map::new();
        extra_top.insert("sku".into(), serde_json::json!({ "name": "Base", "tier": "Standard" }));
        extra_top.insert(
            "identity".into(),
            serde_json::json!({ "type": "SystemAssigned", "principalId": self.rng.guid(), "tenantId": self.fleet.tenant_id }),
        );
        let mut cluster = Cluster {
            subscription: def.subscription.clone(),
            resource_group: def.resource_group.clone(),
            name: def.name.clone(),
            location: def.location.clone(),
            tags: def.tags.clone(),
            kubernetes_version: def.kubernetes_version.to_string(),
            current_version: def.kubernetes_version,
            provisioning_state: if def.conditions.failed { "Failed" } else { "Succeeded" },
            etag: self.rng.hex(16),
            auto_upgrade_channel: def.auto_upgrade_channel.clone(),
            node_os_upgrade_channel: def.node_os_upgrade_channel.clone(),
            support_plan: def.support_plan.clone(),
            entra_id: def.entra_id,
            disable_local_accounts: def.disable_local_accounts,
            maintenance: def.maintenance.clone(),
            dns_prefix,
            fqdn,
            user_token: self.rng.hex(64),
            admin_token: self.rng.hex(64),
            pools: Vec::new(),
            extra_properties,
            extra_top,
            operation: None,
            kube: KubeState {
                cluster_created: self.start,
                server_version: Some(def.kubernetes_version),
                ..Default::default()
            },
            conditions: def.conditions.clone(),
            upgrade_settings: None,
        };
        for p in &def.pools {
            let pool = self.build_pool(&cluster, p);
            cluster.pools.push(pool);
        }
        // Nodes, then workloads with their pods already running and Ready.
        let seed = format!("{}/{}/{}", def.subscription, def.resource_group, def.name);
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let uid = cluster.kube.next_uid(&seed);
            cluster.kube.namespaces.insert(ns.into(), (uid, self.start));
        }
        let pools = cluster.pools.clone();
        for (pi, p) in pools.iter().enumerate() {
            for _ in 0..p.count {
                let node = self.new_node(&mut cluster, pi, &seed, p.current_version, p.node_image.clone(), true);
                cluster.kube.put_node(node, ChangeType::Added);
            }
        }
        // Every AKS cluster runs these in kube-system; gates see them like any workload.
        let system = |name: &str, replicas, pdb| WorkloadDef {
            name: name.into(),
            namespace: "kube-system".into(),
            replicas,
            readiness_delay: Duration::from_secs(5),
            pdb: Some(pdb),
            os: OsType::Linux,
            pool: None,
        };
        let mut defs = vec![
            system("coredns", 2, Pdb::MaxUnavailable(1)),
            system("metrics-server", 2, Pdb::MinAvailable(1)),
        ];
        defs.extend(def.workloads.iter().cloned());
        for WorkloadDef {
            name,
            namespace,
            replicas,
            readiness_delay,
            pdb,
            os,
            pool,
        } in defs
        {
            if !cluster.kube.namespaces.contains_key(&namespace) {
                let uid = cluster.kube.next_uid(&seed);
                cluster.kube.namespaces.insert(namespace.clone(), (uid, self.start));
            }
            let wl = Workload {
                name,
                namespace,
                replicas,
                readiness_delay,
                pdb,
                os,
                pool,
                uid: cluster.kube.next_uid(&seed),
                rs_hash: self.rng.kube_suffix(10),
                rs_uid: cluster.kube.next_uid(&seed),
                pdb_uid: cluster.kube.next_uid(&seed),
                created: self.start,
            };
            cluster.kube.workloads.push(wl);
            let w = cluster.kube.workloads.len() - 1;
            for _ in 0..replicas {
                let mut pod = self.new_pod(&mut cluster, w, &seed);
                if let Some(node) = pick_node(&cluster.kube, &cluster.kube.workloads[w]) {
                    pod.node = Some(node);
                    pod.phase = PodPhase::Running;
                    pod.ready = true;
                    pod.started = Some(self.start);
                    pod.ready_since = Some(self.start);
                }
                cluster.kube.put_pod(pod, ChangeType::Added);
            }
        }
        // Start watches from a clean history: the initial objects are the list, not changes.
        cluster.kube.history.clear();
        cluster.kube.history_floor = cluster.kube.rv;
        cluster
    }

    fn build_pool(&mut self, cluster: &Cluster, p: &PoolDef) -> Pool {
        let latest = self.latest_image(&cluster.location, &p.os_sku);
        let node_image = match (&p.node_image, &latest) {
            (Some(v), _) => format!("{}-{v}", self.image_family(&p.os_sku)),
            (None, Some(l)) => l.clone(),
            (None, None) => format!("{}-202401.01.0", self.image_family(&p.os_sku)),
        };
        Pool {
            name: p.name.clone(),
            mode: p.mode,
            os_type: p.os_type,
            os_sku: p.os_sku.clone(),
            count: p.count,
            orchestrator_version: p.version.to_string(),
            current_version: p.version,
            node_image,
            vm_size: p.vm_size.clone(),
            upgrade: p.upgrade.clone(),
            provisioning_state: "Succeeded",
            etag: self.rng.hex(16),
            extra: Map::new(),
            vmss: format!("{:08}", self.rng.next_u64() % 100_000_000),
            next_index: 0,
            subnet: p.subnet,
            vnet_subnet_id: p.subnet.map(|(vi, si)| {
                let v = &self.fleet.virtual_networks[vi];
                v.subnet_id(&v.subnets[si].name)
            }),
            max_pods: p.max_pods.unwrap_or_else(|| cluster.conditions.default_max_pods()),
            recent: Vec::new(),
        }
    }

    /// A new node for pool `pi`, named as AKS names VMSS nodes.
    pub fn new_node(
        &mut self,
        cluster: &mut Cluster,
        pi: usize,
        seed: &str,
        version: KubeVersion,
        image: String,
        ready: bool,
    ) -> Node {
        let pool = &mut cluster.pools[pi];
        let index = pool.next_index;
        pool.next_index += 1;
        let name = if pool.os_type == OsType::Windows {
            // Windows computer names are at most 15 characters: `akswin1000002`.
            format!("aks{}{:06}", pool.name, index)
        } else {
            format!("aks-{}-{}-vmss{}", pool.name, pool.vmss, base36_6(index))
        };
        Node {
            name,
            uid: cluster.kube.next_uid(seed),
            pool: pool.name.clone(),
            mode_system: pool.mode == PoolMode::System,
            os: pool.os_type,
            vm_size: pool.vm_size.clone(),
            created: self.now,
            rv: 0,
            unschedulable: false,
            ready,
            version,
            image,
            extra_labels: BTreeMap::new(),
            generation: 0,
        }
    }

    pub(super) fn new_pod(&mut self, cluster: &mut Cluster, w: usize, seed: &str) -> Pod {
        let wl = &cluster.kube.workloads[w];
        let name = format!("{}-{}-{}", wl.name, wl.rs_hash, self.rng.kube_suffix(5));
        Pod {
            namespace: wl.namespace.clone(),
            name,
            uid: cluster.kube.next_uid(seed),
            workload: w,
            node: None,
            phase: PodPhase::Unscheduled,
            ready: false,
            crash_looping: false,
            restarts: 0,
            created: self.now,
            started: None,
            ready_since: None,
            rv: 0,
        }
    }
}
