//! Preflight of a whole fleet: ARM requests per cluster, Kubernetes requests per cluster,
//! and wall time, for 100 and 1,000 simulated clusters (examples/fleets/large.yaml's
//! template) with ARM's documented throttling left on: reads 250 per bucket refilled
//! at 25 a second, writes 200 refilled at 10 a second, per subscription and principal
//! (the simulator's defaults). Goal (issue 13): 1,000 clusters in one minute of wall
//! time, ARM requests per cluster reported.
//!
//! The simulator runs in-process on a real-time clock (scale 1.0), so its throttling
//! acts in wall time; every request still goes over HTTPS on loopback.
//!
//! Run: `cargo bench --bench preflight_reads`.

use ringmaster::clock::{Clock, SystemClock};
use ringmaster::identity::{AzureConfig, AzureTokens};
use ringmaster::sim::{ClockMode, SimOptions, Simulator, fleet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

const POLICY: &str = r#"
name: bench
target: { channel: pinned, version: "1.33" }
rings:
  - name: dev
    selector: { tags: { ring: dev } }
    waves: [{ name: all, max_parallel: 50 }]
  - name: staging
    selector: { tags: { ring: staging } }
    waves: [{ name: all, max_parallel: 50 }]
  - name: prod
    selector: { tags: { ring: prod } }
    waves: [{ name: all, max_parallel: 100 }]
schedule: { respect_aks_maintenance: false }
"#;

fn fleet_of(n: usize) -> fleet::Fleet {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleets/large.yaml");
    let text = std::fs::read_to_string(&path).expect("large.yaml");
    let text = text.replacen("generate:\n  count: 5000\n", &format!("generate:\n  count: {n}\n"), 1);
    fleet::parse("large.yaml", &text).expect("fleet compiles")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    ringmaster::identity::install_crypto_provider();
    println!(
        "{:>8} {:>10} {:>10} {:>12} {:>10} {:>12} {:>10} {:>9} {:>8}",
        "clusters", "checked", "ARM calls", "ARM/cluster", "ARM 429s", "kube calls", "kube/cl.", "wall s", "blocked"
    );
    for n in [100usize, 1000] {
        let sim = Simulator::start(SimOptions {
            fleet: fleet_of(n),
            listen: "127.0.0.1:0".parse().unwrap(),
            clock: ClockMode::Scaled(1.0),
            seed: 1,
            plain_http: false,
            state_dir: Some(std::env::temp_dir().join(format!("ringmaster-bench-pf-{}", std::process::id()))),
        })
        .await
        .expect("simulator");
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let azure = AzureConfig::for_simulator(&sim.info);
        let client = ringmaster::arm::connect(&azure, clock.clone()).expect("client");
        let tokens = Arc::new(AzureTokens::new(azure.clone(), azure.http_client().unwrap()).unwrap());
        let subs = sim.info.subscription_ids.clone();
        let policy = ringmaster::policy::compile("bench.yaml", POLICY).expect("policy");
        let settings = ringmaster::preflight::checks::CheckSettings::from_policy(&policy);

        let started = Instant::now();
        let now = clock.now();
        let discovery = ringmaster::discovery::discover(&client, &subs, now)
            .await
            .expect("discovery");
        let plan = ringmaster::plan::plan(&discovery.snapshot, &policy, now);
        let stats = &client.http().stats;
        let throttled_before = stats.throttled.load(Ordering::Relaxed);
        let report =
            ringmaster::preflight::run(&client, tokens, &discovery, &plan, &settings, Default::default(), now).await;
        let wall = started.elapsed().as_secs_f64();
        let checked = report.clusters.len();
        println!(
            "{:>8} {:>10} {:>10} {:>12.3} {:>10} {:>12} {:>10.1} {:>9.1} {:>8}",
            n,
            checked,
            report.reads.arm,
            report.reads.arm as f64 / checked.max(1) as f64,
            stats.throttled.load(Ordering::Relaxed) - throttled_before,
            report.reads.kube,
            report.reads.kube as f64 / checked.max(1) as f64,
            wall,
            report.blocked_clusters(),
        );
        sim.shutdown().await;
    }
    println!("(wall time includes the discovery poll; ARM calls are preflight's own, after it)");
}
