//! Watches of one cluster (kube-runtime watchers on pods, nodes and ReplicaSets, with
//! backoff and automatic re-list), folded into compact maps, plus a notification on
//! every change so gates react to events instead of polling.

use super::snapshot::{KubeSnapshot, NodeInfo, OwnerKey, PodInfo, node_info, owners, pod_info, replicaset_desired};
use crate::arm::ClusterId;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::watch as tokio_watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

#[derive(Debug, Default)]
struct State {
    pods: BTreeMap<(String, String), PodInfo>,
    nodes: BTreeMap<String, NodeInfo>,
    desired: BTreeMap<OwnerKey, u32>,
    /// Which of the three watches finished their first list.
    synced: [bool; 3],
    /// The last error of each watch, until that watch reads again (or, for an error
    /// that is not a refusal, until a probe shows the API server answering).
    watch_errors: [Option<WatchError>; 3],
    /// The last liveness probe failed: a watch connection can outlive its API server's
    /// health, so the API is also asked directly now and then.
    probe_error: Option<String>,
}

#[derive(Debug, Clone)]
struct WatchError {
    message: String,
    /// 403: the API answers but may not show us this resource (RBAC). A successful
    /// probe of `/version` says nothing about it, so only the watch itself clears it;
    /// otherwise the error would come and go and a gate could pass on stale pods.
    forbidden: bool,
}

impl State {
    /// The watch read something: its earlier error is over.
    fn watch_read(&mut self, index: usize) {
        self.watch_errors[index] = None;
    }

    /// A (re-)list begins. kube's watcher says so before it asks the API, so this
    /// proves nothing was read; until the list is done the watch holds a partial set:
    /// not synced (gates fail closed on that, and no baseline is taken from it).
    fn list_started(&mut self, index: usize) {
        self.synced[index] = false;
    }

    fn list_done(&mut self, index: usize) {
        self.synced[index] = true;
        self.watch_read(index);
    }

    fn watch_failed(&mut self, index: usize, message: String, forbidden: bool) {
        self.watch_errors[index] = Some(WatchError { message, forbidden });
    }

    /// Records a probe's result; true when what the snapshot reports changed.
    fn probed(&mut self, error: Option<String>) -> bool {
        let before = self.api_error();
        if error.is_none() {
            // The API server answers: a watch that failed on the connection and came
            // back may see no event for long; a refusal stays until its watch reads.
            for e in &mut self.watch_errors {
                if e.as_ref().is_some_and(|e| !e.forbidden) {
                    *e = None;
                }
            }
        }
        self.probe_error = error;
        self.api_error() != before
    }

    /// What makes the cluster unreadable now, if anything.
    fn api_error(&self) -> Option<String> {
        self.watch_errors
            .iter()
            .flatten()
            .map(|e| e.message.clone())
            .next()
            .or_else(|| self.probe_error.clone())
    }
}

/// Whether the API server refused a watch with 403.
fn forbidden(e: &watcher::Error) -> bool {
    let code = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.code,
        watcher::Error::WatchError(s) => s.code,
        _ => 0,
    };
    code == 403
}

/// The watches of one cluster. Dropping it stops them.
pub struct ClusterWatch {
    /// The client the watches use, for one-off reads of the same cluster (preflight).
    client: kube::Client,
    state: Arc<Mutex<State>>,
    changes: tokio_watch::Receiver<u64>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for ClusterWatch {
    // By hand: kube's client is not Debug (and says nothing worth printing).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterWatch")
            .field("state", &self.state)
            .field("tasks", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

impl Drop for ClusterWatch {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn lock(s: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs one watcher, applying its events to the shared state with `apply`.
fn spawn_watch<K, F>(
    api: Api<K>,
    state: Arc<Mutex<State>>,
    tx: Arc<tokio_watch::Sender<u64>>,
    index: usize,
    apply: F,
) -> JoinHandle<()>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    F: Fn(&mut State, Event<K>) + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(item) = stream.next().await {
            {
                let mut s = lock(&state);
                match item {
                    Ok(ev) => {
                        match ev {
                            Event::Init => s.list_started(index),
                            Event::InitDone => s.list_done(index),
                            _ => s.watch_read(index),
                        }
                        apply(&mut s, ev);
                    }
                    Err(e) => {
                        warn!(error = %e, "watch failed; the watcher retries with backoff");
                        s.watch_failed(index, e.to_string(), forbidden(&e));
                    }
                }
            }
            tx.send_modify(|n| *n += 1);
        }
        debug!("watch stream ended");
    })
}

/// How often the API server is probed while a cluster is watched.
pub const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl ClusterWatch {
    /// Starts watching pods, nodes and ReplicaSets of the whole cluster.
    pub fn start(client: kube::Client) -> Self {
        Self::start_with_probe(client, PROBE_EVERY)
    }

    /// As [`ClusterWatch::start`], probing the API server every `probe_every`.
    pub fn start_with_probe(client: kube::Client, probe_every: std::time::Duration) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, rx) = tokio_watch::channel(0u64);
        let tx = Arc::new(tx);
        let pods = spawn_watch(
            Api::<Pod>::all(client.clone()),
            state.clone(),
            tx.clone(),
            0,
            |s, ev| match ev {
                Event::Init => s.pods.clear(),
                Event::Apply(p) | Event::InitApply(p) => {
                    if let Some(i) = pod_info(&p) {
                        s.pods.insert((i.namespace.clone(), i.name.clone()), i);
                    }
                }
                Event::Delete(p) => {
                    if let (Some(ns), Some(n)) = (p.metadata.namespace, p.metadata.name) {
                        s.pods.remove(&(ns, n));
                    }
                }
                Event::InitDone => {}
            },
        );
        let nodes = spawn_watch(
            Api::<Node>::all(client.clone()),
            state.clone(),
            tx.clone(),
            1,
            |s, ev| match ev {
                Event::Init => s.nodes.clear(),
                Event::Apply(n) | Event::InitApply(n) => {
                    if let Some(i) = node_info(&n) {
                        s.nodes.insert(i.name.clone(), i);
                    }
                }
                Event::Delete(n) => {
                    if let Some(name) = n.metadata.name {
                        s.nodes.remove(&name);
                    }
                }
                Event::InitDone => {}
            },
        );
        let probe = {
            let (client, state, tx) = (client.clone(), state.clone(), tx.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(probe_every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    // A hung API server is as unreadable as a failing one.
                    let limit = (probe_every * 5).min(std::time::Duration::from_secs(10));
                    let new = match tokio::time::timeout(limit, client.apiserver_version()).await {
                        Ok(Ok(_)) => None,
                        Ok(Err(e)) => Some(e.to_string()),
                        Err(_) => Some(format!("the API server did not answer within {}s", limit.as_secs_f64())),
                    };
                    let changed = lock(&state).probed(new);
                    if changed {
                        tx.send_modify(|n| *n += 1);
                    }
                }
            })
        };
        let rs = spawn_watch(
            Api::<ReplicaSet>::all(client.clone()),
            state.clone(),
            tx,
            2,
            |s, ev| match ev {
                Event::Init => s.desired.clear(),
                Event::Apply(r) | Event::InitApply(r) => {
                    if let Some((k, d)) = replicaset_desired(&r) {
                        s.desired.insert(k, d);
                    }
                }
                Event::Delete(r) => {
                    if let Some((k, _)) = replicaset_desired(&r) {
                        s.desired.remove(&k);
                    }
                }
                Event::InitDone => {}
            },
        );
        Self {
            client,
            state,
            changes: rx,
            tasks: vec![pods, nodes, rs, probe],
        }
    }

    /// The cluster's client (cheap to clone): a read through it needs no new credential.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The current facts.
    pub fn snapshot(&self, now: DateTime<Utc>) -> KubeSnapshot {
        let s = lock(&self.state);
        KubeSnapshot {
            taken_at: now,
            synced: s.synced.iter().all(|x| *x),
            api_error: s.api_error(),
            owners: owners(&s.pods, &s.desired),
            nodes: s.nodes.values().cloned().collect(),
        }
    }

    /// Resolves on the next change seen by any watch (for event-driven gates).
    pub async fn changed(&mut self) {
        let _ = self.changes.changed().await;
    }

    /// A receiver that ticks on every change (for select loops).
    pub fn subscribe(&self) -> tokio_watch::Receiver<u64> {
        self.changes.clone()
    }
}

/// The watches of the clusters whose turn it is.
#[derive(Debug, Default)]
pub struct WatchSet {
    active: HashMap<ClusterId, ClusterWatch>,
}

impl WatchSet {
    pub fn start(&mut self, id: ClusterId, client: kube::Client) -> &mut ClusterWatch {
        self.active.entry(id).or_insert_with(|| ClusterWatch::start(client))
    }

    pub fn get(&self, id: &ClusterId) -> Option<&ClusterWatch> {
        self.active.get(id)
    }

    pub fn get_mut(&mut self, id: &ClusterId) -> Option<&mut ClusterWatch> {
        self.active.get_mut(id)
    }

    /// Stops a cluster's watches (its turn is over).
    pub fn stop(&mut self, id: &ClusterId) {
        self.active.remove(id);
    }

    pub fn len(&self) -> usize {
        self.active.len()
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_stays_until_its_watch_reads_and_a_probe_clears_only_connection_errors() {
        let mut s = State::default();
        s.watch_failed(0, "pods is forbidden".into(), true);
        s.watch_failed(1, "connection reset".into(), false);
        assert!(!s.probed(None), "the refusal still makes the cluster unreadable");
        assert_eq!(s.api_error().as_deref(), Some("pods is forbidden"));
        assert!(s.watch_errors[1].is_none(), "the probe cleared the connection error");
        // Another watch reading again does not clear the pods watch's refusal.
        s.watch_read(2);
        assert_eq!(s.api_error().as_deref(), Some("pods is forbidden"));
        s.watch_read(0);
        assert_eq!(s.api_error(), None);
        assert!(s.probed(Some("timeout".into())));
        assert!(s.probed(None));
        assert_eq!(s.api_error(), None);
    }

    /// kube's watcher retries a refused list by yielding `Init` first, before asking:
    /// that must neither clear the refusal nor leave the partial set looking synced.
    #[test]
    fn a_relist_is_not_synced_and_clears_no_error_until_it_is_done() {
        let mut s = State::default();
        for i in 0..3 {
            s.list_done(i);
        }
        s.watch_failed(0, "pods is forbidden".into(), true);
        s.list_started(0);
        assert_eq!(s.api_error().as_deref(), Some("pods is forbidden"));
        assert!(!s.synced[0]);
        s.list_done(0);
        assert_eq!(s.api_error(), None);
        assert!(s.synced.iter().all(|x| *x));
    }
}
