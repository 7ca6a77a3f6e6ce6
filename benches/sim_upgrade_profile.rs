//! How fast the simulator serves ARM reads at fleet scale: starts it in-process on
//! `examples/fleets/large.yaml` (5,000 clusters), measures the process memory before
//! and after building the world, then drives `GET .../upgradeProfiles/default` over
//! HTTPS (HTTP/2, one connection per client) from a bounded number of concurrent
//! reqwest clients for a bounded time, across random clusters.
//!
//! ```text
//! cargo bench --bench sim_upgrade_profile
//! BENCH_SECONDS=5 BENCH_CLIENTS=8 cargo bench --bench sim_upgrade_profile
//! ```
//!
//! ARM's read throttle (250 bucket, 25/s per subscription and principal) would cap the
//! benchmark at 25 requests/s per subscription, so the fleet's `arm.reads` bucket is
//! raised before the simulator starts: the benchmark measures serving speed, and says
//! so in its output. Every answer must be 200; anything else fails the run.

use ringmaster::sim::fleet::{self, Bucket};
use ringmaster::sim::{ClockMode, SimOptions, Simulator};
use std::path::Path;
use std::time::{Duration, Instant};

const API: &str = "2026-10-01";
/// Raised read bucket: far above what two cores can serve, so no request is throttled.
const READS: Bucket = Bucket {
    capacity: 100_000_000,
    per_second: 10_000_000.0,
};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `VmRSS` and `VmHWM` of this process, in MiB.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// xorshift64*: enough randomness to pick clusters, no extra dependency.
struct Pick(u64);

impl Pick {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Worker {
    latencies: Vec<Duration>,
    bytes: u64,
    failures: Vec<String>,
}

async fn worker(
    http: reqwest::Client,
    token: std::sync::Arc<str>,
    urls: std::sync::Arc<Vec<String>>,
    seed: u64,
    until: Instant,
) -> Worker {
    let mut pick = Pick(seed | 1);
    let mut out = Worker {
        latencies: Vec::with_capacity(1 << 16),
        bytes: 0,
        failures: Vec::new(),
    };
    while Instant::now() < until {
        let url = &urls[pick.below(urls.len())];
        let t0 = Instant::now();
        let r = http.get(url).bearer_auth(&*token).send().await;
        let result = match r {
            Ok(resp) => {
                let status = resp.status();
                match resp.bytes().await {
                    Ok(body) if status == reqwest::StatusCode::OK => Ok(body.len()),
                    Ok(body) => Err(format!("{status}: {}", String::from_utf8_lossy(&body))),
                    Err(e) => Err(format!("reading the body: {e}")),
                }
            }
            Err(e) => Err(format!("request: {e}")),
        };
        let took = t0.elapsed();
        match result {
            Ok(n) => {
                out.latencies.push(took);
                out.bytes += n as u64;
            }
            Err(e) => {
                out.failures.push(e);
                if out.failures.len() >= 10 {
                    break;
                }
            }
        }
    }
    out
}

fn main() {
    let seconds: f64 = env_or("BENCH_SECONDS", 10.0);
    let clients: usize = env_or("BENCH_CLIENTS", 16);
    let threads: usize = env_or("BENCH_THREADS", 2);
    let fleet_path = std::env::var("BENCH_FLEET")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleets/large.yaml"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(fleet_path, seconds, clients, threads));
}

async fn run(fleet_path: std::path::PathBuf, seconds: f64, clients: usize, threads: usize) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (rss0, _) = memory_mib();

    let t = Instant::now();
    let mut fleet = fleet::load(&fleet_path).unwrap_or_else(|e| panic!("{}: {e}", fleet_path.display()));
    let parse_time = t.elapsed();
    let default_reads = fleet.arm.reads;
    fleet.arm.reads = READS;
    let (rss_parsed, _) = memory_mib();

    let state_dir = std::env::temp_dir().join(format!("ringmaster-bench-{}", std::process::id()));
    let t = Instant::now();
    let sim = Simulator::start(SimOptions {
        fleet,
        listen: "127.0.0.1:0".parse().unwrap(),
        // Simulated time runs at wall-clock speed: nothing is scheduled, and the raised
        // read bucket (not the clock) keeps throttling out of the way.
        clock: ClockMode::Scaled(1.0),
        seed: 1,
        plain_http: false,
        state_dir: Some(state_dir.clone()),
    })
    .await
    .expect("simulator starts");
    let build_time = t.elapsed();
    let (rss_world, hwm_world) = memory_mib();

    let (urls, clusters, pools, nodes, pods) = sim.with_world(|w| {
        let urls: Vec<String> = w
            .clusters
            .iter()
            .map(|c| {
                format!(
                    "{}{}/upgradeProfiles/default?api-version={API}",
                    sim.info.arm_endpoint,
                    c.id()
                )
            })
            .collect();
        let pools: usize = w.clusters.iter().map(|c| c.pools.len()).sum();
        let nodes: usize = w.clusters.iter().map(|c| c.kube.nodes.len()).sum();
        let pods: usize = w.clusters.iter().map(|c| c.kube.pods.len()).sum();
        (urls, w.clusters.len(), pools, nodes, pods)
    });
    assert!(!urls.is_empty(), "the fleet has no clusters");

    let pem = std::fs::read(sim.info.ca_cert.as_ref().expect("TLS on")).expect("CA certificate");
    let ca = reqwest::Certificate::from_pem(&pem).expect("CA certificate parses");
    let make_client = || {
        reqwest::Client::builder()
            .tls_certs_only([ca.clone()])
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client")
    };
    // One token for every client: the throttle is per subscription and principal anyway.
    let http = make_client();
    let token_url = format!("{}/{}/oauth2/v2.0/token", sim.info.authority_host, sim.info.tenant_id);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", sim.info.client_id.as_str()),
        ("client_secret", sim.info.client_secret.as_str()),
        ("scope", "https://management.azure.com/.default"),
    ];
    let resp = http.post(token_url).form(&form).send().await.expect("token request");
    assert!(resp.status().is_success(), "token: {}", resp.status());
    let body: serde_json::Value = resp.json().await.expect("token JSON");
    let token: std::sync::Arc<str> = body["access_token"].as_str().expect("access_token").into();
    let urls = std::sync::Arc::new(urls);

    // Warm-up, not measured: one request per client opens its TLS connection.
    let http_clients: Vec<reqwest::Client> = (0..clients).map(|_| make_client()).collect();
    for c in &http_clients {
        let r = c
            .get(&urls[0])
            .bearer_auth(&*token)
            .send()
            .await
            .expect("warm-up request");
        assert_eq!(
            r.status(),
            reqwest::StatusCode::OK,
            "warm-up: {}",
            r.text().await.unwrap_or_default()
        );
        let version = r.version();
        let _ = r.bytes().await;
        if std::ptr::eq(c, &http_clients[0]) {
            eprintln!("connection: {version:?} over TLS");
        }
    }

    let window = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let until = started + window;
    let tasks: Vec<_> = http_clients
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            tokio::spawn(worker(
                c,
                token.clone(),
                urls.clone(),
                0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1),
                until,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut bytes = 0u64;
    let mut failures = Vec::new();
    for t in tasks {
        let w = t.await.expect("worker");
        latencies.extend(w.latencies);
        bytes += w.bytes;
        failures.extend(w.failures);
    }
    let elapsed = started.elapsed();
    let (rss_end, hwm_end) = memory_mib();
    latencies.sort_unstable();
    let n = latencies.len();

    println!("sim_upgrade_profile: GET .../managedClusters/{{name}}/upgradeProfiles/default over HTTPS");
    println!("  fleet            {}", fleet_path.display());
    println!("  clusters         {clusters} ({pools} pools, {nodes} nodes, {pods} pods)");
    println!("  fleet parse      {:.1} ms", ms(parse_time));
    println!(
        "  world build      {:.1} ms (Simulator::start: world, TLS, listener)",
        ms(build_time)
    );
    println!(
        "  RSS              {rss0:.1} MiB before, {rss_parsed:.1} MiB after parsing, {rss_world:.1} MiB with the world (+{:.1} MiB; VmHWM {hwm_world:.1} MiB)",
        rss_world - rss0
    );
    println!("  RSS after load   {rss_end:.1} MiB (VmHWM {hwm_end:.1} MiB)");
    println!(
        "  throttling       arm.reads raised to bucket {} / {}/s (fleet had {} / {}/s); clock scaled x1",
        READS.capacity, READS.per_second, default_reads.capacity, default_reads.per_second
    );
    println!(
        "  load             {clients} concurrent clients (one HTTP/2 connection each), {threads} runtime threads shared with the simulator, {:.1} s",
        elapsed.as_secs_f64()
    );
    println!("  requests         {n} OK, {} failed", failures.len());
    println!(
        "  throughput       {:.0} requests/s, {:.1} MiB/s of JSON",
        n as f64 / elapsed.as_secs_f64(),
        bytes as f64 / elapsed.as_secs_f64() / (1024.0 * 1024.0)
    );
    if n > 0 {
        println!(
            "  latency          p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; mean body {} bytes",
            ms(percentile(&latencies, 0.50)),
            ms(percentile(&latencies, 0.90)),
            ms(percentile(&latencies, 0.99)),
            ms(latencies[n - 1]),
            bytes / n as u64
        );
    }
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&state_dir);
    if !failures.is_empty() {
        for f in failures.iter().take(5) {
            eprintln!("failure: {f}");
        }
        panic!("{} requests failed", failures.len());
    }
}
