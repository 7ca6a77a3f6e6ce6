//! The simulation campaign with two policies in one daemon (`tests/sim_campaign/multi.rs`):
//! 6 seeds by default (about a minute and a half in a debug build on 2 cores). `CAMPAIGN_SEED=<n>` replays one seed; `CAMPAIGN_SEEDS=<n>` runs
//! that many (`cargo test --release --test cadences_campaign` with `CAMPAIGN_SEEDS=1000`
//! for the long run).

mod sim_campaign;

use sim_campaign::multi::run_seed;

#[test]
fn two_policies_in_one_daemon_never_act_on_one_cluster_at_once() {
    if let Some(seed) = std::env::var("CAMPAIGN_SEED").ok().and_then(|s| s.parse().ok()) {
        eprintln!("{:?}", run_seed(seed));
        return;
    }
    let seeds: u64 = std::env::var("CAMPAIGN_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let t = std::time::Instant::now();
    let next = std::sync::Mutex::new(1..=seeds);
    let reports = std::sync::Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(seed) = { next.lock().unwrap().next() } {
                    let r = run_seed(seed);
                    reports.lock().unwrap().push(r);
                }
            });
        }
    });
    let reports = reports.into_inner().unwrap();
    let ops: usize = reports.iter().map(|r| r.operations).sum();
    let shared: usize = reports.iter().map(|r| r.shared_clusters).sum();
    let waits: usize = reports.iter().map(|r| r.waits).sum();
    let restarts: u32 = reports.iter().map(|r| r.restarts).sum();
    let mut outcomes: std::collections::BTreeMap<String, usize> = Default::default();
    for r in &reports {
        for (p, o) in &r.outcomes {
            *outcomes.entry(format!("{p} {o}")).or_default() += 1;
        }
    }
    eprintln!(
        "{seeds} seeds in {:.1}s: operations tied to one holder {ops}, clusters both rollouts worked on {shared}, waits for a held cluster {waits}, daemon kills {restarts}; outcomes {outcomes:?}",
        t.elapsed().as_secs_f64()
    );
    // The campaign exercises what it claims: both rollouts on the same clusters, one
    // waiting for the other, kills.
    assert!(shared > 0 && waits > 0 && restarts > 0, "{reports:#?}");
}
