//! `ringmaster sim`: its flags, checking a fleet file (`--check`), and running the
//! simulator until a signal (with its env file written owner-only).

use super::wait_for_signal;
use anyhow::{Context, Result};
use ringmaster::sim::{ClockMode, SimOptions, Simulator};
use ringmaster::text::Escaped;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct SimArgs {
    /// The fleet file (YAML; see docs/fleet.md). Default: the demo fleet built into the
    /// binary (a copy of examples/fleets/demo.yaml).
    #[arg(long)]
    fleet: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Simulated seconds per wall-clock second (60: an hour of upgrades takes a minute).
    #[arg(long, default_value_t = 60.0)]
    time_scale: f64,
    /// Simulated time moves only through `POST /_sim/clock/advance?seconds=N` (for tests).
    #[arg(long, conflicts_with = "time_scale")]
    manual_clock: bool,
    /// Seed for every random choice (names, ids, injected faults): same seed, same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Serve plain HTTP instead of HTTPS (Azure SDKs refuse bearer tokens over HTTP).
    #[arg(long)]
    plain_http: bool,
    /// Also write the environment variables that point ringmaster and Azure SDKs at the
    /// simulator (AZURE_TENANT_ID, AZURE_CLIENT_ID, ..., RINGMASTER_ARM_ENDPOINT) here.
    #[arg(long)]
    env_file: Option<PathBuf>,
    /// Folder for the CA certificate (default: a new folder under the temp dir).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Only validate the fleet file and print a summary (with its estimated simulator
    /// memory); exit 0 when valid, 2 when not or when it is too large for the simulator
    /// (over 1 GiB, see docs/fleet.md).
    #[arg(long)]
    check: bool,
}

pub(crate) async fn run_sim(args: SimArgs) -> Result<ExitCode> {
    let (fleet_name, fleet) = match ringmaster::embedded::fleet_or_demo(args.fleet.as_ref()) {
        Ok(f) => f,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::from(2));
        }
    };
    // What the fleet costs, before anything is built: `--check` refuses what `sim` would
    // refuse, with the same function (`ringmaster::sim::cost`).
    let cost = ringmaster::sim::cost::FleetCost::of(&fleet);
    if let Err(e) = cost.check() {
        eprintln!("{}: too large for the simulator: {e}", Escaped(&fleet_name));
        return Ok(ExitCode::from(2));
    }
    if args.check {
        let pools: usize = fleet.clusters.iter().map(|c| c.pools.len()).sum();
        println!(
            "{}: valid: {} subscriptions, {} clusters, {} pools, {} nodes, {} pods, {} faults; about {} MiB of simulator memory (limit {} MiB)",
            Escaped(&fleet_name),
            fleet.subscriptions.len(),
            fleet.clusters.len(),
            pools,
            cost.nodes,
            cost.pods,
            fleet.faults.len(),
            cost.bytes().div_ceil(1 << 20),
            ringmaster::sim::cost::MAX_BYTES >> 20
        );
        return Ok(ExitCode::SUCCESS);
    }
    if args.time_scale.is_nan() || args.time_scale <= 0.0 {
        anyhow::bail!("--time-scale must be more than 0");
    }
    let clock = if args.manual_clock {
        ClockMode::Manual
    } else {
        ClockMode::Scaled(args.time_scale)
    };
    let sim = Simulator::start(SimOptions {
        fleet,
        listen: args.listen,
        clock,
        seed: args.seed,
        plain_http: args.plain_http,
        state_dir: args.state_dir,
    })
    .await
    .context("starting the simulator")?;
    if let Some(path) = &args.env_file {
        write_private(path, sim.info.env_file().as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(&sim.info)?)?;
    out.flush()?;
    drop(out);
    wait_for_signal().await;
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to `path` readable by the owner only (0600, also when it existed):
/// the simulator's env file holds a client secret.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()
}
