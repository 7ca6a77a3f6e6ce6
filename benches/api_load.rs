//! How many status calls per second the API sustains while a 1,000-cluster rollout runs,
//! and their p99 latency. Bounded load on loopback: the simulator (1,000 clusters from
//! `examples/fleets/large.yaml`), the daemon (`service::daemon::Daemon`, the runtime and
//! a SQLite state file) and the API run in this process; a fixed number of clients call
//! `GET /api/v1/rollouts/{id}` (the full status of every ring, wave, cluster and step)
//! and `GET /api/v1/rollouts` for a fixed time. Two cores serve both the rollout and
//! the load, so the figures are a floor.
//!
//! `cargo bench --bench api_load` (BENCH_SECONDS, BENCH_CLIENTS to change the load).

use ringmaster::api::{ApiState, Auth};
use ringmaster::demo::Rehearsal;
use ringmaster::service::Control;
use ringmaster::sim::fleet;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token-0123456789abcdef0123456789";

const POLICY: &str = r#"
name: bench
fleet:
  include: [{ tags: { ring: dev } }, { tags: { ring: staging } }, { tags: { ring: prod } }]
target:
  channel: pinned
  version: "1.33"
rings:
  - name: dev
    selector: { tags: { ring: dev } }
    waves: [{ name: all, max_parallel: 25 }]
  - name: staging
    selector: { tags: { ring: staging } }
    waves: [{ name: all, max_parallel: 50 }]
  - name: prod
    selector: { tags: { ring: prod } }
    waves: [{ name: all, max_parallel: 100 }]
gates:
  pod_readiness: { min_ready_ratio: 1.0, settle: 10s, timeout: 10m }
"#;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let clients: usize = env_or("BENCH_CLIENTS", 8);
    let scale = 60.0;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleets/large.yaml");
    let text =
        std::fs::read_to_string(path)
            .unwrap()
            .replacen("generate:\n  count: 5000\n", "generate:\n  count: 1000\n", 1);
    let mut f = fleet::parse("large.yaml", &text).expect("fleet");
    f.arm.reads = fleet::Bucket {
        capacity: 100_000_000,
        per_second: 10_000_000.0,
    };
    f.arm.writes = fleet::Bucket {
        capacity: 100_000_000,
        per_second: 10_000_000.0,
    };
    let dir = tempfile::tempdir().unwrap();
    let Rehearsal {
        sim,
        clock,
        client,
        tokens,
    } = Rehearsal::start(f, scale, Some(dir.path().to_path_buf()))
        .await
        .expect("simulator");
    let policy = dir.path().join("bench.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let store = Arc::new(ringmaster::store::Store::open(dir.path().join("state.db")).unwrap());
    let metrics = Arc::new(ringmaster::metrics::Metrics::default());
    let daemon = ringmaster::service::daemon::Daemon::new(
        store.clone(),
        client,
        tokens,
        clock.clone(),
        metrics.clone(),
        Arc::new(ringmaster::runtime::LogNotifier),
        policy,
        sim.info.subscription_ids.clone(),
    );
    let token_line = format!(
        "tokens:\n  - name: bench\n    groups: [ops]\n    sha256: {}\n",
        ringmaster::api::auth::token_digest_hex(TOKEN)
    );
    let auth = Arc::new(Auth::new(
        ringmaster::api::auth::parse_tokens("tokens", &token_line).unwrap(),
        None,
        vec!["ops".into()],
    ));
    let state = ApiState::new(daemon.clone(), store, auth, metrics, clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ringmaster::api::serve(listener, state, std::future::pending()));
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let _ = daemon.start_now("bench");
    tokio::spawn(daemon.clone().run(stop_rx));
    // Wait for the rollout to be running with clusters in flight.
    let t0 = Instant::now();
    let id = loop {
        if let Some(id) = daemon.active() {
            break id;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no rollout started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let clusters = daemon.get(&id).ok().flatten().map_or(0, |r| r.clusters().count());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (base, id) = (base.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut lat = Vec::new();
            let mut bytes = 0usize;
            while Instant::now() < deadline {
                let url = if i % 4 == 3 {
                    format!("{base}/api/v1/rollouts")
                } else {
                    format!("{base}/api/v1/rollouts/{id}")
                };
                let t = Instant::now();
                let r = http.get(url).bearer_auth(TOKEN).send().await.expect("answer");
                assert_eq!(r.status().as_u16(), 200);
                bytes += r.bytes().await.unwrap().len();
                lat.push(t.elapsed());
            }
            (lat, bytes)
        }));
    }
    let mut lat = Vec::new();
    let mut bytes = 0;
    for t in tasks {
        let (l, b) = t.await.unwrap();
        lat.extend(l);
        bytes += b;
    }
    lat.sort();
    let n = lat.len();
    let pct = |p: f64| lat[((n as f64 * p) as usize).min(n - 1)].as_secs_f64() * 1000.0;
    let r = daemon.get(&id).unwrap().unwrap();
    let active = r.clusters().filter(|(_, c)| c.status.is_active()).count();
    let done = r.clusters().filter(|(_, c)| c.status.is_finished()).count();
    println!(
        "API status calls while a {clusters}-cluster rollout runs ({clients} clients, {seconds} s, 2 cores shared with the rollout and the simulator)"
    );
    println!("requests        {n}");
    println!("requests/second {:.0}", n as f64 / seconds as f64);
    println!(
        "p50 / p99 / max {:.1} / {:.1} / {:.1} ms",
        pct(0.5),
        pct(0.99),
        lat[n - 1].as_secs_f64() * 1000.0
    );
    println!("mean body       {:.0} KiB", bytes as f64 / n as f64 / 1024.0);
    println!(
        "rollout at end  {active} clusters active, {done} finished, status {}",
        r.status.label()
    );
}
