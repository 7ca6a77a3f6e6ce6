//! The simulated Kubernetes API end to end, with the clients ringmaster's users and
//! ringmaster itself use: kubectl (required: its tests fail, never skip, when it is not
//! installed, so a green run always means kubectl worked) and kube-rs, over real
//! HTTPS with the kubeconfig that ARM's `listClusterUserCredential` hands out.

mod common;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event as KEvent, Namespace, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, EvictParams, ListParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, Event};
use ringmaster::sim::Simulator;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

const SUB: &str = "3f2a8c1e-6b4d-4e7a-9c05-1d2e3f405a61";
const RG: &str = "rg-dev-weu";
const CLUSTER: &str = "aks-dev-weu-01";
/// Bound on every wall-clock wait for I/O.
const IO: Duration = Duration::from_secs(30);

/// The user kubeconfig of the dev cluster, as ARM returns it.
async fn kubeconfig(sim: &Simulator) -> String {
    let arm = common::Arm::new(sim).await;
    let r = arm
        .post(&format!(
            "{}/listClusterUserCredential",
            arm.cluster_path(SUB, RG, CLUSTER)
        ))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let b64 = r.body["kubeconfigs"][0]["value"].as_str().expect("kubeconfig");
    use base64::Engine;
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
}

fn cluster_index(sim: &Simulator) -> usize {
    sim.with_world(|w| w.cluster_index(SUB, RG, CLUSTER).expect("dev cluster"))
}

fn pod_count(sim: &Simulator, c: usize) -> usize {
    sim.with_world(|w| w.clusters[c].kube.pods.len())
}

/// A Ready pod of `shop/web` (evicting one is allowed by its PDB, minAvailable 2 of 3).
fn ready_web_pod(sim: &Simulator, c: usize) -> String {
    sim.with_world(|w| {
        let k = &w.clusters[c].kube;
        k.pods
            .values()
            .find(|p| p.ready && p.name.starts_with("web-"))
            .expect("a ready web pod")
            .name
            .clone()
    })
}

// ---------------------------------------------------------------- kubectl

/// What a kubectl test says when kubectl is missing: the command that installs it.
const KUBECTL_MISSING: &str = "kubectl is not installed (or not on PATH); the kubectl tests need it: \
install it with `apt-get install -y kubectl` (Debian/Ubuntu with the Kubernetes apt repository) \
or see https://kubernetes.io/docs/tasks/tools/";

/// Panics with [`KUBECTL_MISSING`] unless `program version --client` runs: a test that
/// silently passed without kubectl would claim compatibility nobody checked.
fn require_kubectl_at(program: &str) {
    let out = std::process::Command::new(program)
        .args(["version", "--client"])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "`{program} version --client` failed ({}): {}\n{KUBECTL_MISSING}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run `{program}`: {e}\n{KUBECTL_MISSING}"),
    }
}

fn require_kubectl() {
    require_kubectl_at("kubectl");
}

#[test]
fn a_missing_kubectl_fails_naming_the_install_command() {
    let err = std::panic::catch_unwind(|| require_kubectl_at("kubectl-not-installed-anywhere"))
        .expect_err("a missing kubectl must fail the test");
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(msg.contains("apt-get install -y kubectl"), "{msg}");
    assert!(msg.contains("kubectl-not-installed-anywhere"), "{msg}");
}

struct Kubectl {
    _dir: tempfile::TempDir,
    config: PathBuf,
    cache: PathBuf,
}

impl Kubectl {
    fn new(kubeconfig: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::write(&config, kubeconfig).unwrap();
        let cache = dir.path().join("cache");
        Self {
            _dir: dir,
            config,
            cache,
        }
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.config)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args);
        cmd.env_remove("KUBECONFIG")
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        cmd
    }

    /// Runs kubectl to completion; panics when it fails.
    async fn run(&self, args: &[&str]) -> String {
        let out = tokio::time::timeout(IO, self.command(args).output())
            .await
            .expect("kubectl timed out")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "kubectl {args:?} failed: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    }

    async fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.run(args).await).unwrap()
    }
}

/// JSON values from a stream of concatenated (pretty-printed) JSON documents.
fn json_stream(mut out: tokio::process::ChildStdout) -> mpsc::UnboundedReceiver<Value> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = match out.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            let mut it = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
            let mut consumed = 0;
            while let Some(Ok(v)) = it.next() {
                consumed = it.byte_offset();
                if tx.send(v).is_err() {
                    return;
                }
            }
            buf.drain(..consumed);
        }
    });
    rx
}

async fn next_value(rx: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(IO, rx.recv())
        .await
        .expect("kubectl watch silent")
        .expect("kubectl watch ended")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_and_watches() {
    require_kubectl();
    let sim = common::start(common::demo_fleet(), 1).await;
    let c = cluster_index(&sim);
    let k = Kubectl::new(&kubeconfig(&sim).await);

    let version = k.json(&["version", "-o", "json"]).await;
    assert_eq!(version["serverVersion"]["gitVersion"], "v1.32.7");

    let nodes = k.json(&["get", "nodes", "-o", "json"]).await;
    let mut names: Vec<&str> = nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    let want: Vec<String> = sim.with_world(|w| w.clusters[c].kube.nodes.keys().cloned().collect());
    assert_eq!(names, want);

    let pods = k.json(&["get", "pods", "-A", "-o", "json"]).await;
    assert_eq!(pods["items"].as_array().unwrap().len(), pod_count(&sim, c));
    // The server-side table: one header line, then a Running pod per line.
    let table = k.run(&["get", "pods", "-A"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("NAMESPACE") && lines[0].contains("STATUS"),
        "{table}"
    );
    assert_eq!(lines.len() - 1, pod_count(&sim, c));
    assert!(lines[1..].iter().all(|l| l.contains("Running")), "{table}");
    let shop = k
        .run(&["get", "pods", "-n", "shop", "-l", "app=web", "-o", "name"])
        .await;
    assert_eq!(shop.lines().count(), 3, "{shop}");
    for kind in ["deployments", "replicasets", "pdb", "namespaces", "events"] {
        k.run(&["get", kind, "-A"]).await;
    }

    // A watch sees an eviction: the pod DELETED, its replacement ADDED.
    let mut child = k
        .command(&["get", "pods", "-A", "--watch", "--output-watch-events", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut events = json_stream(child.stdout.take().unwrap());
    for _ in 0..pod_count(&sim, c) {
        assert_eq!(next_value(&mut events).await["type"], "ADDED");
    }
    let victim = ready_web_pod(&sim, c);
    sim.with_world(|w| w.evict(c, &("shop".into(), victim.clone())))
        .unwrap();
    let (mut deleted, mut added) = (false, false);
    while !(deleted && added) {
        let e = next_value(&mut events).await;
        let name = e["object"]["metadata"]["name"].as_str().unwrap_or_default();
        deleted |= e["type"] == "DELETED" && name == victim;
        added |= e["type"] == "ADDED" && name.starts_with("web-") && name != victim;
    }
    child.kill().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drains_a_node() {
    require_kubectl();
    let sim = common::start(common::demo_fleet(), 1).await;
    let c = cluster_index(&sim);
    let k = Kubectl::new(&kubeconfig(&sim).await);
    // The node with the most pods: draining it needs PDB retries while replacements start.
    let node = sim.with_world(|w| {
        let kube = &w.clusters[c].kube;
        let on = |n: &str| kube.pods.values().filter(|p| p.node.as_deref() == Some(n)).count();
        kube.nodes
            .keys()
            .max_by_key(|n| (on(n), n.to_string()))
            .unwrap()
            .clone()
    });
    let mut drain = k
        .command(&["drain", &node, "--ignore-daemonsets", "--timeout=60s"])
        .spawn()
        .unwrap();
    // Simulated time moves while kubectl works, so evicted pods' replacements become Ready.
    let status = loop {
        tokio::select! {
            s = drain.wait() => break s.unwrap(),
            () = tokio::time::sleep(Duration::from_millis(200)) => sim.advance(Duration::from_secs(10)),
        }
    };
    assert!(status.success(), "kubectl drain failed");
    sim.with_world(|w| {
        let kube = &w.clusters[c].kube;
        assert!(kube.nodes[&node].unschedulable, "drain cordons");
        assert!(
            kube.pods.values().all(|p| p.node.as_deref() != Some(node.as_str())),
            "drain empties the node"
        );
    });
    let out = k.run(&["uncordon", &node]).await;
    assert!(out.contains("uncordoned"), "{out}");
    sim.shutdown().await;
}

// ---------------------------------------------------------------- kube-rs

async fn kube_client(sim: &Simulator) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kc = Kubeconfig::from_yaml(&kubeconfig(sim).await).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    // kube 5 retries 429 and 503 by default with backoff up to ~5 minutes in total; a
    // refused eviction must come back as the 429 it is.
    config.default_retry = false;
    kube::Client::try_from(config).unwrap()
}

async fn next<S: futures::Stream + Unpin>(s: &mut S) -> S::Item {
    tokio::time::timeout(IO, s.next())
        .await
        .expect("stream silent")
        .expect("stream ended")
}

/// Reads a watcher until `InitDone`; returns how many objects the (re-)list had.
async fn until_init_done<S>(w: &mut S) -> usize
where
    S: futures::Stream<Item = Result<Event<Pod>, watcher::Error>> + Unpin,
{
    let mut n = 0;
    loop {
        match next(w).await.unwrap() {
            Event::InitApply(_) => n += 1,
            Event::InitDone => return n,
            Event::Init => n = 0,
            e => panic!("unexpected during init: {e:?}"),
        }
    }
}

#[tokio::test]
async fn kube_rs_reads_every_kind() {
    let sim = common::start(common::demo_fleet(), 1).await;
    let c = cluster_index(&sim);
    let client = kube_client(&sim).await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!((version.major.as_str(), version.minor.as_str()), ("1", "32"));
    let lp = ListParams::default();
    assert_eq!(
        Api::<Node>::all(client.clone()).list(&lp).await.unwrap().items.len(),
        sim.with_world(|w| w.clusters[c].kube.nodes.len())
    );
    assert_eq!(
        Api::<Deployment>::all(client.clone())
            .list(&lp)
            .await
            .unwrap()
            .items
            .len(),
        4
    );
    assert_eq!(
        Api::<ReplicaSet>::namespaced(client.clone(), "shop")
            .list(&lp)
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(
        Api::<PodDisruptionBudget>::all(client.clone())
            .list(&lp)
            .await
            .unwrap()
            .items
            .len(),
        4
    );
    assert!(Api::<Namespace>::all(client.clone()).get("shop").await.is_ok());
    Api::<KEvent>::all(client.clone()).list(&lp).await.unwrap();
    // Paging: every pod exactly once over pages of 2.
    let pods: Api<Pod> = Api::all(client.clone());
    let mut seen = Vec::new();
    let mut lp = ListParams::default().limit(2);
    loop {
        let page = pods.list(&lp).await.unwrap();
        seen.extend(page.items.into_iter().map(|p| p.metadata.name.unwrap()));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => break,
        }
    }
    assert_eq!(seen.len(), pod_count(&sim, c));
    let on_node = pods
        .list(&ListParams::default().fields(&format!(
            "spec.nodeName={}",
            sim.with_world(|w| w.clusters[c].kube.nodes.keys().next().unwrap().clone())
        )))
        .await
        .unwrap();
    assert!(!on_node.items.is_empty());
    let err = Api::<Pod>::namespaced(client, "shop").get("nope").await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 404));
    sim.shutdown().await;
}

#[tokio::test]
async fn kube_rs_watcher_follows_evictions_and_relists_after_410() {
    let sim = common::start(common::demo_fleet(), 1).await;
    let c = cluster_index(&sim);
    let client = kube_client(&sim).await;
    let pods: Api<Pod> = Api::all(client.clone());
    let shop: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let before = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();

    let mut w = watcher::watcher(pods.clone(), watcher::Config::default()).boxed();
    assert_eq!(until_init_done(&mut w).await, pod_count(&sim, c));

    let victim = ready_web_pod(&sim, c);
    shop.evict(&victim, &EvictParams::default()).await.unwrap();
    let (mut deleted, mut added) = (false, false);
    while !(deleted && added) {
        match next(&mut w).await.unwrap() {
            Event::Delete(p) => deleted |= p.metadata.name.as_deref() == Some(victim.as_str()),
            Event::Apply(p) => {
                added |= p
                    .metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("web-") && n != victim)
            }
            e => panic!("unexpected {e:?}"),
        }
    }
    // The budget now allows no more disruption: 429, as kubectl drain expects.
    let err = shop
        .evict(&ready_web_pod(&sim, c), &EvictParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 429 && s.reason == "TooManyRequests"),
        "{err:?}"
    );

    // A raw watch resumed from before the eviction replays it.
    let mut resumed = pods.watch(&WatchParams::default(), &before).await.unwrap().boxed();
    match next(&mut resumed).await.unwrap() {
        WatchEvent::Deleted(p) => assert_eq!(p.metadata.name.as_deref(), Some(victim.as_str())),
        e => panic!("expected the eviction first, got {e:?}"),
    }
    assert!(matches!(next(&mut resumed).await.unwrap(), WatchEvent::Added(_)));
    // Older than the history kept: 410 Expired, in the stream.
    let mut expired = pods.watch(&WatchParams::default(), "1").await.unwrap().boxed();
    assert!(matches!(next(&mut expired).await.unwrap(), WatchEvent::Error(e) if e.code == 410));

    // A burst bigger than the broadcast buffer and the history: the server ends the
    // lagging watch, the resumed watch gets 410, and the watcher lists again.
    sim.with_world(|w| {
        let kube = &mut w.clusters[c].kube;
        let node = kube.nodes.keys().next().unwrap().clone();
        for i in 0..5000 {
            kube.update_node(&node, |n| {
                n.extra_labels.insert("burst".into(), i.to_string());
            });
        }
    });
    let mut saw_410 = false;
    loop {
        match next(&mut w).await {
            Err(watcher::Error::WatchError(e)) if e.code == 410 => saw_410 = true,
            Ok(Event::Init) if saw_410 => break,
            other => panic!("expected 410 then a new list, got {other:?}"),
        }
    }
    assert_eq!(until_init_done(&mut w).await, pod_count(&sim, c));
    sim.shutdown().await;
}

#[tokio::test]
async fn kube_rs_streaming_list_and_manual_clock() {
    let sim = common::start(common::demo_fleet(), 1).await;
    let c = cluster_index(&sim);
    let client = kube_client(&sim).await;
    let shop: Api<Pod> = Api::namespaced(client, "shop");
    let cfg = watcher::Config::default().streaming_lists().labels("app=web");
    let mut w = watcher::watcher(shop.clone(), cfg).boxed();
    assert_eq!(until_init_done(&mut w).await, 3);
    let victim = ready_web_pod(&sim, c);
    shop.evict(&victim, &EvictParams::default()).await.unwrap();
    let mut replacement = None;
    while replacement.is_none() {
        if let Event::Apply(p) = next(&mut w).await.unwrap()
            && p.metadata.name.as_deref() != Some(victim.as_str())
        {
            replacement = p.metadata.name;
        }
    }
    // Simulated time (not wall-clock time) makes the replacement Ready.
    sim.advance(Duration::from_secs(120));
    loop {
        if let Event::Apply(p) = next(&mut w).await.unwrap()
            && p.metadata.name == replacement
            && p.status
                .and_then(|s| s.conditions)
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        {
            break;
        }
    }
    let names: Vec<String> = shop
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert!(names.contains(replacement.as_ref().unwrap()) && !names.contains(&victim));
    sim.shutdown().await;
}

/// Receivers of the dev cluster's change broadcast: one per open watch.
fn watchers(sim: &Simulator, c: usize) -> usize {
    sim.with_world(|w| w.clusters[c].kube.watchers.as_ref().map_or(0, |tx| tx.receiver_count()))
}

#[tokio::test]
async fn a_closed_connection_ends_its_watch() {
    let sim = common::start(common::demo_fleet(), 1).await;
    let c = cluster_index(&sim);
    let (fqdn, token) = sim.with_world(|w| (w.clusters[c].fqdn.clone(), w.clusters[c].user_token.clone()));
    let url = format!("{}/{fqdn}/api/v1/pods?watch=true", sim.info.kube_endpoint_base);
    for http1 in [true, false] {
        let pem = std::fs::read(sim.info.ca_cert.as_ref().unwrap()).unwrap();
        let mut b = reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        if http1 {
            b = b.http1_only();
        }
        let http = b.build().unwrap();
        let mut resp = http.get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.chunk().await.unwrap().expect("the first ADDED event");
        assert_eq!(watchers(&sim, c), 1);
        drop(resp);
        drop(http);
        let t = std::time::Instant::now();
        while watchers(&sim, c) > 0 {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "watch still open (http1: {http1})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    sim.shutdown().await;
}
