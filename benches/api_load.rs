//! How many status calls per second the API sustains while a 1,000-cluster rollout runs,
//! and their p99 latency: the full status document, then what the dashboard reads (the
//! summary, pages of 100 clusters) while 100 clients follow the event stream, with the
//! delay from each commit to each subscriber and whether every subscriber got every
//! event. Bounded load on loopback: the simulator (1,000 clusters from
//! `examples/fleets/large.yaml`), the daemon (`service::daemon::Daemon`, the runtime and
//! a SQLite state file) and the API run in this process; a fixed number of clients call
//! `GET /api/v1/rollouts/{id}` (the full status of every ring, wave, cluster and step)
//! and `GET /api/v1/rollouts` for a fixed time. Two cores serve both the rollout and
//! the load, so the figures are a floor.
//!
//! Last, issue 26's stream storm (`streams`): 600 event streams against the same daemon
//! with the stream caps lifted and with the defaults.
//!
//! `cargo bench --bench api_load` (BENCH_SECONDS, BENCH_CLIENTS to change the load;
//! BENCH_ONLY=storm for the storm alone).

#[path = "api_load/streams.rs"]
mod streams;

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
    let mut state = ApiState::new(daemon.clone(), store, auth, metrics, clock);
    state.events = daemon.events.clone();
    // One bench token stands for every subscriber: no per-caller stream cap here.
    state.limits.max_streams_per_caller = usize::MAX;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ringmaster::api::serve(listener, state.clone(), std::future::pending()));
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let _ = daemon.start_now("bench", None);
    tokio::spawn(daemon.clone().run(stop_rx));
    // Wait for the rollout to be running with clusters in flight.
    let t0 = Instant::now();
    let id = loop {
        if let Some(id) = daemon.active().into_iter().next() {
            break id;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no rollout started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    if std::env::var("BENCH_ONLY").as_deref() == Ok("storm") {
        return storms(&state, &id).await;
    }
    let clusters = daemon.get(&id).ok().flatten().map_or(0, |r| r.clusters().count());
    let (mut lat, bytes) = load(
        &base,
        &[
            format!("/api/v1/rollouts/{id}"),
            format!("/api/v1/rollouts/{id}"),
            format!("/api/v1/rollouts/{id}"),
            "/api/v1/rollouts".into(),
        ],
        clients,
        seconds,
    )
    .await;
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
    println!();
    // What the dashboard reads, while 100 clients follow the event stream.
    let subscribers: usize = env_or("BENCH_SUBSCRIBERS", 100);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut followers = Vec::new();
    for _ in 0..subscribers {
        followers.push(tokio::spawn(follow(base.clone(), stop.clone())));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (mut sl, _) = load(&base, &[format!("/api/v1/rollouts/{id}/summary")], clients, seconds).await;
    report(&format!("summary ({clients} clients, {seconds} s)"), &mut sl, 20.0);
    let pages: Vec<String> = (0..clusters.div_ceil(100))
        .map(|p| format!("/api/v1/rollouts/{id}/clusters?offset={}&limit=100", p * 100))
        .collect();
    let (mut pl, _) = load(&base, &pages, clients, seconds).await;
    report(
        &format!("page of 100 clusters ({clients} clients, {seconds} s)"),
        &mut pl,
        30.0,
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut delays = Vec::new();
    let mut seen: Vec<Vec<u64>> = Vec::new();
    let mut dropped = 0;
    for f in followers {
        let (d, seqs, was_dropped) = f.await.unwrap();
        delays.extend(d);
        seen.push(seqs);
        dropped += usize::from(was_dropped);
    }
    // Every subscriber was connected from the latest first event to the earliest last
    // one: within that span each must have every transition any of them got.
    let from = seen.iter().filter_map(|s| s.first()).max().copied().unwrap_or(0);
    let to = seen.iter().filter_map(|s| s.last()).min().copied().unwrap_or(0);
    let span = |s: &Vec<u64>| -> Vec<u64> { s.iter().copied().filter(|q| (from..=to).contains(q)).collect() };
    let mut all: Vec<u64> = seen.iter().flat_map(span).collect();
    all.sort();
    all.dedup();
    let complete = seen.iter().filter(|s| span(s) == all).count();
    println!(
        "event stream    {subscribers} subscribers; seq {from}..={to}: {} transitions, {complete} subscribers got every one, {dropped} dropped",
        all.len()
    );
    report("delivery after commit", &mut delays, 100.0);
    println!(
        "rollout at end  {active} clusters active, {done} finished, status {}",
        r.status.label()
    );
    println!();
    storms(&state, &id).await;
}

/// The stream storm with the caps lifted (as before issue 26), then with the defaults.
async fn storms(state: &ApiState, id: &str) {
    let read = format!("/api/v1/rollouts/{id}/summary");
    let lifted = ringmaster::api::Limits {
        max_streams: usize::MAX,
        max_streams_per_caller: usize::MAX,
        stream_lifetime: Duration::from_secs(3600),
        write_timeout: Duration::from_secs(3600),
        ..Default::default()
    };
    streams::storm("caps lifted (before issue 26)", state, lifted, &read).await;
    let defaults = ringmaster::api::Limits {
        max_streams_per_caller: usize::MAX,
        ..Default::default()
    };
    streams::storm("default caps (256 streams of 512 connections)", state, defaults, &read).await;
}

/// Calls `paths` in turn from `clients` clients for `seconds`: latencies and bytes.
async fn load(base: &str, paths: &[String], clients: usize, seconds: u64) -> (Vec<Duration>, usize) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (base, paths) = (base.to_string(), paths.to_vec());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut lat, mut bytes, mut n) = (Vec::new(), 0usize, i);
            while Instant::now() < deadline {
                let url = format!("{base}{}", paths[n % paths.len()]);
                n += 1;
                let t = Instant::now();
                let r = http.get(url).bearer_auth(TOKEN).send().await.expect("answer");
                assert_eq!(r.status().as_u16(), 200);
                bytes += r.bytes().await.unwrap().len();
                lat.push(t.elapsed());
            }
            (lat, bytes)
        }));
    }
    let (mut lat, mut bytes) = (Vec::new(), 0);
    for t in tasks {
        let (l, b) = t.await.unwrap();
        lat.extend(l);
        bytes += b;
    }
    (lat, bytes)
}

/// One line: p50 / p99 / max against the goal for p99.
fn report(what: &str, lat: &mut [Duration], goal_ms: f64) {
    lat.sort();
    let n = lat.len();
    if n == 0 {
        println!("{what:<40} no samples");
        return;
    }
    let pct = |p: f64| lat[((n as f64 * p) as usize).min(n - 1)].as_secs_f64() * 1000.0;
    let p99 = pct(0.99);
    println!(
        "{what:<40} {n} samples, p50 / p99 / max {:.1} / {p99:.1} / {:.1} ms (goal p99 < {goal_ms} ms: {})",
        pct(0.5),
        lat[n - 1].as_secs_f64() * 1000.0,
        if p99 < goal_ms { "met" } else { "NOT met" }
    );
}

/// Follows `/api/v1/events` until `stop`: each transition's delay from its commit, how
/// many arrived, and whether the server dropped this subscriber.
async fn follow(base: String, stop: Arc<std::sync::atomic::AtomicBool>) -> (Vec<Duration>, Vec<u64>, bool) {
    let http = reqwest::Client::new();
    let mut r = http
        .get(format!("{base}/api/v1/events"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("event stream");
    let (mut delays, mut seen, mut buf) = (Vec::new(), Vec::new(), String::new());
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let chunk = match tokio::time::timeout(Duration::from_millis(500), r.chunk()).await {
            Ok(Ok(Some(c))) => c,
            Ok(_) => return (delays, seen, true),
            Err(_) => continue,
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if event.contains("event: dropped") {
                return (delays, seen, true);
            }
            if !event.contains("event: transition") {
                continue;
            }
            let data = event.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("{}");
            let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
            if let (Some(at), Some(seq)) = (v["committedAtMs"].as_i64(), v["seq"].as_u64()) {
                let ms = (chrono::Utc::now().timestamp_millis() - at).max(0) as u64;
                delays.push(Duration::from_millis(ms));
                seen.push(seq);
            }
        }
    }
    (delays, seen, false)
}
