//! The campaign with several policies at once: for each seed, the scenario's fleet (node
//! images left to ringmaster) under two policies that overlap on every cluster (the
//! scenario's version policy with its approvals, and a generated node-image policy with
//! its own waves, soak, pool filter, priority and `on_busy`), both in one in-process
//! `Daemon` (the code `serve` runs) on a SQLite state file, against the in-process
//! simulator over real HTTPS, on tokio's paused clock. The daemon is killed (every
//! rollout loop dropped where it is) and started again on the same file at the seed's
//! times.
//!
//! Judged from outside the daemon's decisions: per cluster, the span from each rollout's
//! first audit entry about it to its last never overlaps another rollout's; every
//! operation AKS accepted (the simulator's request log) falls in exactly one rollout's
//! span on its cluster; AKS refused nothing but conflicts, stale eTags and throttles;
//! and no claim or wait is left once both rollouts ended.

use super::scenario::{Answer, Rng, SUBSCRIPTION, Scenario};
use chrono::{DateTime, Utc};
use ringmaster::engine::{Input, RingStatus, Rollout};
use ringmaster::service::Control;
use ringmaster::service::daemon::Daemon;
use ringmaster::service::policies::PolicySet;
use ringmaster::sim::fleet;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What one seed did.
#[derive(Debug)]
pub struct MultiReport {
    pub seed: u64,
    /// Each policy's outcome (`succeeded`, `halted`, ... or `waiting`).
    pub outcomes: BTreeMap<String, String>,
    pub restarts: u32,
    /// Operations AKS accepted, each tied to the one rollout holding its cluster.
    pub operations: usize,
    /// Clusters both rollouts worked on (spans compared).
    pub shared_clusters: usize,
    /// `cluster.waiting` entries: a rollout found a cluster held by the other.
    pub waits: usize,
}

const HORIZON: Duration = Duration::from_secs(3 * 24 * 3600);

/// The node-image cadence of the seed, over the scenario's rings.
fn images_policy(g: &mut Rng, sc: &Scenario) -> String {
    let on_busy = if g.chance(0.3) { "skip" } else { "wait" };
    let mut p = format!(
        "name: images\npriority: {}\non_busy: {on_busy}\nfleet:\n  subscriptions: [{SUBSCRIPTION}]\ntarget:\n  channel: node-image\n  node_image: latest\n",
        g.range(0, 20)
    );
    if g.chance(0.4) {
        p.push_str("pools: { os_type: Linux }\n");
    }
    p.push_str("rings:\n");
    for r in &sc.rings {
        p.push_str(&format!(
            "  - name: {}\n    selector: {{ tags: {{ ring: {} }} }}\n    soak: {}s\n    waves: [{{ name: all, max_parallel: {} }}]\n    failure_budget: {{ on_failure: skip-and-continue, max_failed_clusters: 100 }}\n",
            r.name,
            r.name,
            g.range(0, 600),
            g.range(1, 3)
        ));
    }
    p.push_str(&format!(
        "steps:\n  pool_soak: {}s\n  node_image: true\ngates:\n  pod_readiness:\n    min_ready_ratio: 1.0\n    exclude_namespaces: [kube-system]\n    settle: 20s\n    timeout: 10m\n  nodes_ready: true\nschedule:\n  time_zone: UTC\n  respect_aks_maintenance: true\n",
        g.range(0, 60)
    ));
    p
}

/// Runs one seed on a fresh current-thread runtime with a paused clock; panics (with
/// the seed and what broke) when an invariant does not hold.
pub fn run_seed(seed: u64) -> MultiReport {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    rt.block_on(run(seed))
}

async fn run(seed: u64) -> MultiReport {
    let sc = Scenario::generate(seed);
    let mut g = Rng::new(seed ^ 0xCADE_2C35);
    // Node images are ringmaster's to refresh (on AKS's default channel it plans none).
    // Every pool one image behind, so that the image policy has work on every cluster.
    let fleet_yaml = sc
        .fleet_yaml
        .replace(
            "\n    kubernetes_version:",
            "\n    node_os_upgrade_channel: Unmanaged\n    kubernetes_version:",
        )
        .replace(
            "        mode: System\n",
            "        mode: System\n        node_image: 202611.12.0\n",
        )
        .replace(
            "      - name: user1\n",
            "      - name: user1\n        node_image: 202611.12.0\n",
        );
    let versions = format!(
        "{}priority: {}\non_busy: wait\n",
        sc.policy_yaml
            .replacen(&format!("name: campaign-{seed}\n"), "name: versions\n", 1),
        g.range(0, 20)
    );
    let images = images_policy(&mut g, &sc);
    let fail = |what: String| -> ! {
        panic!(
            "multi-policy campaign seed {seed}: {what}\n(replay: CAMPAIGN_SEED={seed} cargo test --test cadences_campaign)\n--- versions\n{versions}\n--- images\n{images}"
        )
    };
    ringmaster::identity::install_crypto_provider();
    let fleet = fleet::parse("campaign fleet", &fleet_yaml).unwrap_or_else(|e| fail(format!("fleet: {e}")));
    let dir = tempfile::tempdir().expect("temp dir");
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("versions.yaml"), &versions).unwrap();
    std::fs::write(policies.join("images.yaml"), &images).unwrap();
    let super::Azure {
        sim,
        start,
        clock,
        client,
        tokens,
    } = super::Azure::start(fleet, seed).await.unwrap_or_else(|e| fail(e));
    let state = dir.path().join("state.db");
    let daemon_on = |store: Arc<ringmaster::store::Store>| {
        Daemon::new(
            store,
            client.clone(),
            tokens.clone(),
            clock.clone(),
            Arc::new(ringmaster::metrics::Metrics::default()),
            Arc::new(ringmaster::runtime::LogNotifier),
            PolicySet::Dir(policies.clone()),
            vec![SUBSCRIPTION.to_string()],
        )
    };
    let store = Arc::new(ringmaster::store::Store::open(&state).unwrap());
    let mut previous = Arc::downgrade(&store);
    let mut daemon = daemon_on(store);
    for p in ["versions", "images"] {
        daemon
            .start_now("campaign", Some(p))
            .unwrap_or_else(|e| fail(format!("start {p}: {e}")));
    }
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut runner = tokio::spawn(daemon.clone().run(stop_rx.clone()));
    // Kills at the seed's times in the first hours, each down for a while.
    let mut kills: Vec<(DateTime<Utc>, Duration)> = (0..g.range(0, 2))
        .map(|_| {
            (
                start + chrono::Duration::seconds(g.range(120, 4 * 3600) as i64),
                Duration::from_secs(g.range(0, 900)),
            )
        })
        .collect();
    kills.sort();
    let mut restarts = 0;
    let mut answered: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let horizon = start + chrono::Duration::from_std(HORIZON).unwrap();
    let mut finals: BTreeMap<String, Rollout> = BTreeMap::new();
    loop {
        tokio::time::sleep(Duration::from_secs(30)).await;
        let now = clock.now();
        let all = ringmaster::service::daemon::stored(&daemon.store).unwrap_or_else(|e| fail(format!("state: {e}")));
        for r in &all {
            if r.status.is_terminal() {
                finals.insert(r.plan.policy.clone(), r.clone());
            }
        }
        if finals.len() == 2 && daemon.active().is_empty() || now >= horizon {
            break;
        }
        // The version rollout's approvals, answered as the scenario says.
        for id in daemon.active() {
            let Some(r) = daemon.get(&id).ok().flatten() else {
                continue;
            };
            for ring in &r.rings {
                if !matches!(ring.status, RingStatus::AwaitingApproval { .. }) || ring.approval.is_some() {
                    continue;
                }
                let asked = *answered.entry(format!("{id}/{}", ring.name)).or_insert(now);
                let input = match sc.answers.iter().find(|(n, _)| *n == ring.name).map(|(_, a)| *a) {
                    Some(Answer::Approve { after, .. })
                        if now >= asked + chrono::Duration::from_std(after).unwrap() =>
                    {
                        Input::Approve {
                            ring: ring.name.clone(),
                            by: "alice".into(),
                            comment: "campaign".into(),
                            expires_at: None,
                        }
                    }
                    Some(Answer::Reject { after }) if now >= asked + chrono::Duration::from_std(after).unwrap() => {
                        Input::Reject {
                            ring: ring.name.clone(),
                            by: "bob".into(),
                            comment: "campaign".into(),
                        }
                    }
                    _ => continue,
                };
                let _ = daemon.send(&id, input);
            }
        }
        if kills.first().is_some_and(|(t, _)| *t <= now) {
            let (_, down) = kills.remove(0);
            daemon.kill();
            runner.abort();
            let _ = (&mut runner).await;
            drop(daemon);
            restarts += 1;
            tokio::time::sleep(down).await;
            // The killed loops' writer threads may still finish the commit they took.
            let t = std::time::Instant::now();
            while previous.upgrade().is_some() {
                assert!(
                    t.elapsed() < Duration::from_secs(10),
                    "the killed daemon's store is still held"
                );
                tokio::task::yield_now().await;
                std::thread::sleep(Duration::from_millis(1));
            }
            let store =
                Arc::new(ringmaster::store::Store::open(&state).unwrap_or_else(|e| fail(format!("reopen: {e}"))));
            previous = Arc::downgrade(&store);
            daemon = daemon_on(store);
            runner = tokio::spawn(daemon.clone().run(stop_rx.clone()));
        }
    }
    // Whatever was started runs to its end in AKS before the checks.
    tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    let store = daemon.store.clone();
    let mut outcomes = BTreeMap::new();
    for r in ringmaster::service::daemon::stored(&store).unwrap() {
        let label = if r.status.is_terminal() {
            r.status.label().to_string()
        } else {
            "waiting".into()
        };
        outcomes.insert(r.plan.policy.clone(), label);
    }
    let both_ended = outcomes.values().all(|o| o != "waiting") && outcomes.len() == 2;
    if both_ended {
        let left = store.claims().unwrap();
        if !left.is_empty() {
            fail(format!("claims outlive their rollouts: {left:?}"));
        }
        let waits = store.claim_waits().unwrap();
        if !waits.is_empty() {
            fail(format!("waits outlive their rollouts: {waits:?}"));
        }
    }
    // Spans per (cluster, rollout) from the audit log.
    let mut entries = Vec::new();
    let mut since = 0;
    loop {
        let page = store
            .audit(&ringmaster::store::AuditQuery {
                rollout_id: None,
                since_id: Some(since),
                limit: 1000,
                filter: Default::default(),
            })
            .unwrap();
        let Some(last) = page.last().map(|(id, _)| *id) else {
            break;
        };
        since = last;
        entries.extend(page);
    }
    // A span in commit order (audit ids: a claim is taken only after the holder's
    // release committed, with its last entry) and in time.
    #[derive(Clone, Copy, Debug)]
    struct Span {
        ids: (i64, i64),
        at: (DateTime<Utc>, DateTime<Utc>),
    }
    let mut spans: BTreeMap<(String, String), Span> = BTreeMap::new();
    let mut waits = 0;
    for (id, e) in &entries {
        let Some(rollout) = &e.rollout_id else { continue };
        if e.action == "cluster.waiting" {
            waits += 1;
            continue;
        }
        if !(e.action.starts_with("cluster.") || e.action.starts_with("step.") || e.action.starts_with("gate.")) {
            continue;
        }
        let Some(cluster) = e.subject.split('/').nth(1).and_then(|c| c.split(' ').next()) else {
            continue;
        };
        let span = spans
            .entry((cluster.to_ascii_lowercase(), rollout.clone()))
            .or_insert(Span {
                ids: (*id, *id),
                at: (e.at, e.at),
            });
        span.ids = (span.ids.0.min(*id), span.ids.1.max(*id));
        span.at = (span.at.0.min(e.at), span.at.1.max(e.at));
    }
    let mut by_cluster: BTreeMap<&str, Vec<(&str, Span)>> = BTreeMap::new();
    for ((c, r), s) in &spans {
        by_cluster.entry(c.as_str()).or_default().push((r.as_str(), *s));
    }
    let mut shared = 0;
    for (c, of) in &by_cluster {
        if of.len() > 1 {
            shared += 1;
        }
        for (i, (ra, a)) in of.iter().enumerate() {
            for (rb, b) in &of[i + 1..] {
                if !(a.ids.1 < b.ids.0 || b.ids.1 < a.ids.0) {
                    fail(format!(
                        "{c}: rollout {ra} {a:?} and rollout {rb} {b:?} acted on it at the same time"
                    ));
                }
            }
        }
    }
    // Every operation AKS took falls in a rollout's span on its cluster, and in one
    // only but at a handover (the one's end and the other's start in the same second).
    let writes = sim.with_world(|w| w.writes.clone());
    let mut operations = 0;
    let second = chrono::Duration::seconds(1);
    for w in &writes {
        let refused = (400..500).contains(&w.status) && ![409, 412, 429].contains(&w.status);
        if refused {
            fail(format!("AKS refused {} {} with {}", w.method, w.path, w.status));
        }
        if w.operation.is_none() || !(200..300).contains(&w.status) {
            continue;
        }
        let Some(cluster) = super::check::cluster_of(w) else {
            continue;
        };
        let at = w.at.to_datetime();
        let holders: Vec<&(&str, Span)> = by_cluster
            .get(cluster.to_ascii_lowercase().as_str())
            .into_iter()
            .flatten()
            .filter(|(_, s)| s.at.0 - second <= at && at <= s.at.1 + second)
            .collect();
        let handover = holders.len() == 2 && {
            let (a, b) = (holders[0].1, holders[1].1);
            let (first, then) = if a.ids.1 < b.ids.0 { (a, b) } else { (b, a) };
            (then.at.0 - first.at.1).abs() <= second
                && ((at - first.at.1).abs() <= second || (at - then.at.0).abs() <= second)
        };
        if holders.is_empty() || (holders.len() > 1 && !handover) {
            let names: Vec<&str> = holders.iter().map(|(r, _)| *r).collect();
            fail(format!(
                "{} {} on {cluster} at {at}: held by {names:?}",
                w.method, w.path
            ));
        }
        operations += 1;
    }
    sim.shutdown().await;
    MultiReport {
        seed,
        outcomes,
        restarts,
        operations,
        shared_clusters: shared,
        waits,
    }
}
