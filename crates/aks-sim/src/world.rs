//! The simulated world: every cluster (ARM view and Kubernetes view), the version
//! catalogue, node images, running operations, and a queue of timed events.
//!
//! It is a discrete-event simulation: nothing happens between events, and
//! [`World::advance_to`] applies every event due up to a time, in (time, sequence)
//! order. Requests lock the world, advance it to the clock's now, then act; so the
//! same seed, fleet and requests give the same results whatever the wall clock did.
//!
//! This file holds the world itself and its lookups; `cluster` the cluster and pool
//! records, `build` their construction, `catalogue` versions and images by region,
//! `events` the event queue, `pods` and `nodes` what events do to them.

use super::clock::SimTime;
use super::fleet::{ClusterConditions, Fleet};
use super::kube_model::KubeState;
use super::operation::Operation;
use super::rng::Rng;
use super::version::KubeVersion;
use serde_json::Map;
use std::collections::{BTreeMap, HashMap};

mod build;
mod catalogue;
mod cluster;
mod events;
mod nodes;
mod pods;

pub use cluster::{Cluster, Pool, RecentVersion};
pub use events::Event;
pub use pods::EvictError;

/// The whole simulated Azure.
#[derive(Debug)]
pub struct World {
    pub now: SimTime,
    pub start: SimTime,
    pub fleet: Fleet,
    pub clusters: Vec<Cluster>,
    by_key: BTreeMap<(String, String, String), usize>,
    by_fqdn: HashMap<String, usize>,
    queue: BTreeMap<(SimTime, u64), Event>,
    seq: u64,
    pub rng: Rng,
    pub ops: BTreeMap<String, Operation>,
    /// Counts events applied (a cheap progress figure for benchmarks and logs).
    pub events_applied: u64,
    /// Every mutating ARM request that got past authentication, whatever it was
    /// answered (throttled, refused, 409, a no-op 200): the record the safety tests
    /// judge ringmaster by, since an operation log alone misses refused repeats.
    pub writes: Vec<WriteRecord>,
    /// The operation started last (the write log names the operation a request began).
    pub last_started: Option<String>,
    /// The node image the current request asked to roll back to (the write log's
    /// `rollbackTo`), set by the pool PUT that judged it a rollback request.
    pub last_rollback: Option<String>,
}

/// One mutating ARM request as the simulator saw it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteRecord {
    pub at: SimTime,
    pub method: String,
    /// The path as sent (no query).
    pub path: String,
    /// The answer's status; for an injected dropped connection, what was processed.
    pub status: u16,
    /// The request body when it was JSON (a PUT's resource).
    pub body: Option<serde_json::Value>,
    /// The answer never reached the client (injected fault).
    pub dropped: bool,
    /// The operation this request started, if it started one.
    pub operation: Option<String>,
    /// For a pool PUT the simulator took as a rollback request (its `nodeImageVersion`
    /// named another pair than the pool's own): the node image it asked for, accepted or
    /// refused with 400. `null` for every other request, and for one refused before its
    /// body is read (409 busy, 412 eTag, stopped cluster): its `body` still shows it.
    pub rollback_to: Option<String>,
}

fn lower3(sub: &str, rg: &str, name: &str) -> (String, String, String) {
    (
        sub.to_ascii_lowercase(),
        rg.to_ascii_lowercase(),
        name.to_ascii_lowercase(),
    )
}

impl World {
    pub fn cluster_index(&self, sub: &str, rg: &str, name: &str) -> Option<usize> {
        self.by_key.get(&lower3(sub, rg, name)).copied()
    }

    pub fn cluster_by_fqdn(&self, fqdn: &str) -> Option<usize> {
        self.by_fqdn.get(fqdn).copied()
    }

    /// Clusters of a subscription (optionally one resource group), in name order.
    pub fn clusters_in(&self, sub: &str, rg: Option<&str>) -> Vec<usize> {
        let sub = sub.to_ascii_lowercase();
        let rg = rg.map(str::to_ascii_lowercase);
        self.by_key
            .iter()
            .filter(|((s, r, _), _)| *s == sub && rg.as_ref().is_none_or(|g| g == r))
            .map(|(_, i)| *i)
            .collect()
    }

    pub fn has_subscription(&self, sub: &str) -> bool {
        self.fleet.subscriptions.iter().any(|s| s.eq_ignore_ascii_case(sub))
    }
}

fn base36_6(mut n: u32) -> String {
    const D: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 6];
    for i in (0..6).rev() {
        out[i] = D[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A cheap empty cluster, swapped in while a real one is borrowed mutably.
fn placeholder() -> Cluster {
    Cluster {
        subscription: String::new(),
        resource_group: String::new(),
        name: String::new(),
        location: String::new(),
        tags: BTreeMap::new(),
        kubernetes_version: String::new(),
        current_version: KubeVersion::new(0, 0, 0),
        provisioning_state: "Succeeded",
        etag: String::new(),
        auto_upgrade_channel: String::new(),
        node_os_upgrade_channel: String::new(),
        support_plan: String::new(),
        entra_id: false,
        disable_local_accounts: false,
        maintenance: BTreeMap::new(),
        dns_prefix: String::new(),
        fqdn: String::new(),
        user_token: String::new(),
        admin_token: String::new(),
        pools: Vec::new(),
        extra_properties: Map::new(),
        extra_top: Map::new(),
        operation: None,
        kube: KubeState::default(),
        conditions: ClusterConditions::default(),
        upgrade_settings: None,
    }
}

/// Swaps a cluster out of the world so that `f` can use both mutably.
pub fn with_cluster<R>(w: &mut World, c: usize, f: impl FnOnce(&mut World, &mut Cluster) -> R) -> R {
    let mut cluster = std::mem::replace(&mut w.clusters[c], placeholder());
    let r = f(w, &mut cluster);
    w.clusters[c] = cluster;
    r
}
