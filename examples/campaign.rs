//! The simulation campaign at scale: `cargo run --release --example campaign -- --seeds 1000`
//! runs that many seeds (see `tests/sim_campaign/mod.rs`) on one thread per core and
//! prints how each ended and how many invariant checks were made. A broken invariant
//! stops the run with its seed, its scenario and the daemon's audit trail.
//! `--from N` starts at seed N (the test runs seeds 1 to 24).

#[path = "../tests/sim_campaign/mod.rs"]
mod sim_campaign;

use sim_campaign::Outcome;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number, not {v}")))
            .unwrap_or(default)
    };
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("usage: campaign [--seeds N (default 1000)] [--from FIRST (default 1)]");
        return;
    }
    let (seeds, from) = (arg("--seeds", 1000), arg("--from", 1));
    let t = std::time::Instant::now();
    let reports = sim_campaign::run_seeds(from..=from + seeds - 1);
    let count = |o: Outcome| reports.iter().filter(|r| r.outcome == o).count();
    println!(
        "{seeds} seeds ({from}..={}) in {:.1}s wall on {} threads",
        from + seeds - 1,
        t.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(2, |n| n.get())
    );
    println!(
        "outcomes: {} succeeded, {} halted, {} aborted, {} still waiting at the horizon (approval never given or pause never lifted)",
        count(Outcome::Succeeded),
        count(Outcome::Halted),
        count(Outcome::Aborted),
        count(Outcome::Waiting)
    );
    println!(
        "clean seeds (must succeed): {}; clusters failed as their fault requires or otherwise: {}; daemon restarts: {}",
        reports.iter().filter(|r| r.clean).count(),
        reports.iter().map(|r| r.failed_clusters).sum::<usize>(),
        reports.iter().map(|r| r.restarts).sum::<u32>()
    );
    println!(
        "mutating requests judged: {}; invariant checks made: {}; broken: 0",
        reports.iter().map(|r| r.writes).sum::<usize>(),
        reports.iter().map(|r| r.checks).sum::<u64>()
    );
    let simulated: i64 = reports.iter().map(|r| r.simulated.num_seconds()).sum();
    println!("simulated time: {:.0} days", simulated as f64 / 86_400.0);
}
