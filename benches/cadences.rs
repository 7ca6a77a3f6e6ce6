//! Two rollouts side by side against one (issue 28): the generated fleet
//! (`examples/fleets/large.yaml`, `count: BENCH_CLUSTERS`, default 1,000; node images one
//! release behind and left to ringmaster), in one in-process `Daemon` (what `serve`
//! runs) with a SQLite state file, against the in-process simulator over HTTPS on
//! tokio's paused clock. Run 1: the version policy alone. Run 2: the version policy and
//! a node-image policy over the same clusters at once (claims: they take turns on each
//! cluster). From the daemon's own metrics: the rollout loop's wall-clock cost per pass
//! and the commit's cost per save (goal for two: within 20% of one), the engine's share.
//!
//! ```text
//! cargo bench --bench cadences            # a few minutes on 2 cores
//! BENCH_CLUSTERS=300                      # a smaller fleet
//! ```

#[path = "common/generated.rs"]
mod generated;

use ringmaster::clock::{Clock, ScaledClock};
use ringmaster::engine::{Input, RingStatus};
use ringmaster::identity::{AzureConfig, AzureTokens};
use ringmaster::service::Control;
use ringmaster::service::daemon::Daemon;
use ringmaster::service::policies::PolicySet;
use ringmaster::sim::{ClockMode, SimOptions, Simulator, fleet};
use std::sync::Arc;
use std::time::Duration;

/// The loop's cost, from its metrics (wall clock: `Instant`, not tokio's paused time).
#[derive(Debug, Default)]
struct Cost {
    passes: f64,
    loop_s: f64,
    engine_s: f64,
    saves: f64,
    commit_s: f64,
    simulated_h: f64,
    wall_s: f64,
    outcomes: Vec<String>,
}

impl Cost {
    fn per_pass_ms(&self) -> f64 {
        self.loop_s * 1000.0 / self.passes.max(1.0)
    }
    fn commit_ms(&self) -> f64 {
        self.commit_s * 1000.0 / self.saves.max(1.0)
    }
    fn engine_ms(&self) -> f64 {
        self.engine_s * 1000.0 / self.passes.max(1.0)
    }
}

fn images_policy(waves: (u32, u32, u32)) -> String {
    let (dev, stg, prd) = waves;
    format!(
        "name: images\npriority: 0\non_busy: wait\ntarget:\n  channel: node-image\n  node_image: latest\nrings:\n  - name: dev\n    selector: {{ tags: {{ ring: dev }} }}\n    waves: [{{ name: batch, max_parallel: {dev} }}]\n    soak: 5m\n  - name: staging\n    selector: {{ tags: {{ ring: staging }} }}\n    waves: [{{ name: batch, max_parallel: {stg} }}]\n    soak: 5m\n  - name: prod\n    selector: {{ tags: {{ ring: prod }} }}\n    waves: [{{ name: batch, max_parallel: {prd} }}]\nsteps:\n  pool_soak: 30s\ngates:\n  pod_readiness:\n    min_ready_ratio: 1.0\n    exclude_namespaces: [kube-system]\n    settle: 20s\n    timeout: 10m\n  nodes_ready: true\nschedule:\n  time_zone: UTC\n  respect_aks_maintenance: true\n"
    )
}

/// The generated fleet with its pools one image behind and node images left to ringmaster.
fn fleet_text(n: usize) -> String {
    let text = generated::generated_fleet_text(n);
    let behind = text
        .replacen(
            "  kubernetes_version: 1.32.7\n  pools:\n",
            "  kubernetes_version: 1.32.7\n  node_os_upgrade_channel: Unmanaged\n  pools:\n",
            1,
        )
        .replace("      count: 2\n", "      count: 2\n      node_image: 202611.12.0\n");
    assert!(
        behind.contains("node_os_upgrade_channel: Unmanaged"),
        "large.yaml's template changed"
    );
    behind
}

async fn run(n: usize, with_images: bool) -> Cost {
    ringmaster::identity::install_crypto_provider();
    let fleet = fleet::parse("large.yaml (bench)", &fleet_text(n)).expect("fleet");
    let dir = tempfile::tempdir().expect("temp dir");
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    let waves = ((n / 40).max(1) as u32, (n / 20).max(1) as u32, (n / 10).max(1) as u32);
    std::fs::write(
        policies.join("versions.yaml"),
        format!(
            "{}priority: 10\n",
            generated::generated_policy("versions", waves.0, waves.1, waves.2)
        ),
    )
    .unwrap();
    if with_images {
        std::fs::write(policies.join("images.yaml"), images_policy(waves)).unwrap();
    }
    let sim = Simulator::start(SimOptions {
        fleet,
        listen: "127.0.0.1:0".parse().unwrap(),
        clock: ClockMode::Scaled(1.0),
        seed: 1,
        plain_http: false,
        state_dir: None,
    })
    .await
    .expect("simulator");
    let start = sim.shared().clock.now().to_datetime();
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(start, 1.0));
    let config = AzureConfig::for_simulator(&sim.info);
    let client = Arc::new(ringmaster::arm::connect(&config, clock.clone()).unwrap());
    let tokens = Arc::new(AzureTokens::new(config.clone(), config.http_client().unwrap()).unwrap());
    let store = Arc::new(ringmaster::store::Store::open_daemon(dir.path().join("state.db"), "bench").unwrap());
    let metrics = Arc::new(ringmaster::metrics::Metrics::default());
    let daemon = Daemon::new(
        store.clone(),
        client,
        tokens,
        clock.clone(),
        metrics.clone(),
        Arc::new(ringmaster::runtime::LogNotifier),
        PolicySet::Dir(policies),
        sim.info.subscription_ids.clone(),
    );
    for l in daemon.catalog.in_force() {
        daemon.start_now("bench", Some(&l.policy.name)).unwrap();
    }
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(daemon.clone().run(stop_rx));
    let wall = std::time::Instant::now();
    let horizon = start + chrono::Duration::days(3);
    let want = if with_images { 2 } else { 1 };
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let all = ringmaster::service::daemon::stored(&store).unwrap();
        if (all.len() == want && all.iter().all(|r| r.status.is_terminal())) || clock.now() >= horizon {
            let mut c = Cost {
                passes: metrics.get("ringmaster_loop_seconds_count", &[]),
                loop_s: metrics.get("ringmaster_loop_seconds_sum", &[]),
                engine_s: metrics.get("ringmaster_loop_engine_seconds_sum", &[]),
                saves: metrics.get("ringmaster_state_saves_total", &[]),
                commit_s: metrics.get("ringmaster_state_commit_seconds_sum", &[]),
                simulated_h: (clock.now() - start).num_seconds() as f64 / 3600.0,
                wall_s: wall.elapsed().as_secs_f64(),
                outcomes: all
                    .iter()
                    .map(|r| format!("{} {}", r.plan.policy, r.status.label()))
                    .collect(),
            };
            c.outcomes.sort();
            sim.shutdown().await;
            return c;
        }
        // Prod's approval, the moment it is asked.
        for id in daemon.active() {
            let Some(r) = daemon.get(&id).ok().flatten() else {
                continue;
            };
            for ring in &r.rings {
                if matches!(ring.status, RingStatus::AwaitingApproval { .. }) && ring.approval.is_none() {
                    let _ = daemon.send(
                        &id,
                        Input::Approve {
                            ring: ring.name.clone(),
                            by: "bench".into(),
                            comment: "bench".into(),
                            expires_at: None,
                        },
                    );
                }
            }
        }
    }
}

fn main() {
    let n: usize = std::env::var("BENCH_CLUSTERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    let one = rt.block_on(run(n, false));
    let two = rt.block_on(run(n, true));
    println!("cadences: {n} clusters, one rollout (versions) against two side by side (versions + node images)");
    for (label, c) in [("one", &one), ("two", &two)] {
        println!(
            "  {label}: {:.0} passes, loop {:.3} ms/pass (engine {:.3} ms), {:.0} saves, commit {:.3} ms/save; {:.1} simulated h in {:.0} s; {}",
            c.passes,
            c.per_pass_ms(),
            c.engine_ms(),
            c.saves,
            c.commit_ms(),
            c.simulated_h,
            c.wall_s,
            c.outcomes.join(", ")
        );
    }
    let loop_ratio = two.per_pass_ms() / one.per_pass_ms().max(1e-9);
    let commit_ratio = two.commit_ms() / one.commit_ms().max(1e-9);
    println!(
        "  two / one: loop per pass {loop_ratio:.2}, commit per save {commit_ratio:.2} (goal: each at most 1.20) -> {}",
        if loop_ratio <= 1.2 && commit_ratio <= 1.2 {
            "met"
        } else {
            "NOT met"
        }
    );
}
