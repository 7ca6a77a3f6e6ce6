//! ARM reads per cluster per poll: ringmaster's discovery (cluster list + one
//! `kubernetesVersions` per region + one pool upgrade profile per region and OS SKU)
//! beside a per-cluster `get-upgrades` loop (the list, then each cluster's and each
//! pool's upgrade profile), for 10, 100, 1,000 and 5,000 simulated clusters.
//! Goal (issue 3): under 0.05 reads per cluster per poll at 1,000 clusters.
//!
//! Run: `cargo bench --bench discovery_reads`. Counts, not timings: the figures are
//! exact and do not depend on the machine.

use ringmaster::arm::{self, ClusterId};
use ringmaster::clock::Clock;
use ringmaster::identity::AzureConfig;
use ringmaster::sim::shared::ManualSimClock;
use ringmaster::sim::{ClockMode, SimOptions, Simulator, fleet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

fn fleet_of(n: usize) -> fleet::Fleet {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleets/large.yaml");
    let text = std::fs::read_to_string(&path).expect("large.yaml");
    let text = text.replacen("generate:\n  count: 5000\n", &format!("generate:\n  count: {n}\n"), 1);
    let mut f = fleet::parse("large.yaml", &text).expect("fleet compiles");
    // Lift ARM's throttling: this benchmark counts calls, it does not test pacing.
    f.arm.reads = fleet::Bucket {
        capacity: 100_000_000,
        per_second: 10_000_000.0,
    };
    f
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    ringmaster::identity::install_crypto_provider();
    println!(
        "{:>8} {:>10} {:>14} {:>12} {:>16} {:>8}",
        "clusters", "reads", "reads/cluster", "loop reads", "loop/cluster", "ratio"
    );
    for n in [10usize, 100, 1000, 5000] {
        let sim = Simulator::start(SimOptions {
            fleet: fleet_of(n),
            listen: "127.0.0.1:0".parse().unwrap(),
            clock: ClockMode::Manual,
            seed: 1,
            plain_http: false,
            state_dir: Some(std::env::temp_dir().join(format!("ringmaster-bench-{}", std::process::id()))),
        })
        .await
        .expect("simulator");
        let clock: Arc<dyn Clock> = Arc::new(ManualSimClock(sim.shared().clone()));
        let client = arm::connect(&AzureConfig::for_simulator(&sim.info), clock.clone()).expect("client");
        let subs = sim.info.subscription_ids.clone();
        let stats = &client.http().stats;

        let before = stats.reads.load(Ordering::Relaxed);
        let d = ringmaster::discovery::discover(&client, &subs, clock.now())
            .await
            .expect("discovery");
        assert_eq!(d.snapshot.clusters.len(), n);
        let reads = stats.reads.load(Ordering::Relaxed) - before;

        // The per-cluster loop, as a script around `az aks get-upgrades` would do it.
        let before = stats.reads.load(Ordering::Relaxed);
        for sub in &subs {
            for mc in client.list_clusters(sub).await.expect("list") {
                let id = ClusterId::from_arm_id(mc.id.as_deref().unwrap()).unwrap();
                client.cluster_upgrade_profile(&id).await.expect("profile");
                for p in &mc.properties.agent_pool_profiles {
                    client.pool_upgrade_profile(&id, &p.name).await.expect("pool profile");
                }
            }
        }
        let loop_reads = stats.reads.load(Ordering::Relaxed) - before;
        println!(
            "{:>8} {:>10} {:>14.4} {:>12} {:>16.2} {:>7.0}x",
            n,
            reads,
            reads as f64 / n as f64,
            loop_reads,
            loop_reads as f64 / n as f64,
            loop_reads as f64 / reads as f64
        );
        sim.shutdown().await;
    }
}
