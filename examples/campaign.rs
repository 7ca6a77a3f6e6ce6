//! The simulation campaign at scale: `cargo run --release --example campaign -- --seeds 1000`
//! runs that many seeds (see `tests/sim_campaign/mod.rs`) on one thread per core and
//! prints how each ended and how many invariant checks were made. A broken invariant
//! stops the run with its seed, its scenario and the daemon's audit trail.
//! `--from N` starts at seed N (the test runs seeds 1 to 24).

#[path = "../tests/sim_campaign/mod.rs"]
mod sim_campaign;

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
    println!(
        "{seeds} seeds ({from}..={}) in {:.1}s wall on {} threads\n{}",
        from + seeds - 1,
        t.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(2, |n| n.get()),
        sim_campaign::Totals::of(&reports)
    );
}
