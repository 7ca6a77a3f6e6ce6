//! Nodes over simulated time: a node becoming Ready, its removal, and the Kubernetes
//! events the world records for a cluster.

use super::World;
use crate::kube_model::KEvent;

impl World {
    // ---------------------------------------------------------------- nodes

    pub(super) fn node_ready(&mut self, c: usize, node: &str, generation: u64) {
        let Some(n) = self.clusters[c].kube.nodes.get(node) else {
            return;
        };
        if n.generation != generation || n.ready {
            return;
        }
        let (pool, version) = (n.pool.clone(), n.version);
        if self.node_stays_not_ready(c, &pool, version) {
            return;
        }
        self.clusters[c].kube.update_node(node, |n| n.ready = true);
        self.kube_event(
            c,
            "default",
            "Node",
            node,
            "NodeReady",
            &format!("Node {node} status is now: NodeReady"),
            "Normal",
        );
        self.kick_unscheduled(c);
        crate::operation::wake_cluster(self, c);
    }

    /// Deletes a node; its pods are deleted with it and replaced elsewhere.
    pub fn remove_node(&mut self, c: usize, node: &str) {
        let keys: Vec<(String, String)> = self.clusters[c]
            .kube
            .pods
            .iter()
            .filter(|(_, p)| p.node.as_deref() == Some(node))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            self.remove_pod(c, &k);
        }
        self.clusters[c].kube.delete_node(node);
        self.kick_unscheduled(c);
    }

    #[allow(clippy::too_many_arguments)]
    pub fn kube_event(
        &mut self,
        c: usize,
        ns: &str,
        kind: &'static str,
        name: &str,
        reason: &str,
        message: &str,
        typ: &'static str,
    ) {
        let seed = self.cluster_seed(c);
        let kube = &self.clusters[c].kube;
        let (involved_namespace, involved_uid) = match kind {
            "Node" => (String::new(), kube.nodes.get(name).map(|n| n.uid.clone())),
            _ => (
                ns.to_string(),
                kube.pods
                    .get(&(ns.to_string(), name.to_string()))
                    .map(|p| p.uid.clone()),
            ),
        };
        let involved_uid = involved_uid.unwrap_or_default();
        let uid = self.clusters[c].kube.next_uid(&seed);
        let suffix = self.rng.hex(16);
        let ev = KEvent {
            namespace: ns.to_string(),
            name: format!("{name}.{suffix}"),
            uid,
            reason: reason.to_string(),
            message: message.to_string(),
            involved_kind: kind,
            involved_name: name.to_string(),
            involved_namespace,
            involved_uid,
            typ,
            time: self.now,
            rv: 0,
        };
        self.clusters[c].kube.add_event(ev);
    }
}
