//! The command line's types (clap) and what the commands share: the top-level
//! [`Cli`] and its [`Command`]s, output formats, the subscriptions and support calendar
//! the reports read, and waiting for a signal. Each group of commands has its file
//! (`sim`, `plan` and `preflight`, the `reports` on the live fleet, `serve`, `state`);
//! `main.rs` only dispatches. Apart from `main.rs` so that no file of the binary holds
//! every command's flags and work at once.

pub(crate) mod plan;
pub(crate) mod reports;
pub(crate) mod serve;
pub(crate) mod sim;
pub(crate) mod state;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use plan::{PlanCmd, PreflightArgs};
use reports::{ForecastArgs, SnapshotArgs, UpgradesArgs};
use serve::ServeArgs;
use sim::SimArgs;
use state::StateCommand;
use std::path::PathBuf;
use std::process::ExitCode;

/// Keeps fleets of AKS clusters upgraded, ring by ring, safely.
#[derive(Parser)]
#[command(name = "ringmaster", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the AKS fleet simulator: ARM, Entra ID tokens and every cluster's Kubernetes
    /// API over HTTPS on loopback, on a virtual clock.
    ///
    /// When ready it prints one line of JSON on stdout (endpoints, credentials, CA
    /// path); logs go to stderr. It serves until SIGINT or SIGTERM.
    Sim(SimArgs),
    /// Show, for every cluster, what `az aks get-upgrades` would: the control-plane
    /// upgrades AKS offers, each pool's version and node image against the latest,
    /// support status and warnings. One discovery poll for the whole fleet.
    Upgrades(UpgradesArgs),
    /// Check rollout policy files; print every error as file:line:col: message.
    /// Exit 0 when all are valid, 2 otherwise.
    Validate {
        /// Policy files (YAML; see docs/policy.md).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Plan a rollout for the live fleet: every step with its reason and earliest
    /// start, every skipped cluster with why. Changes nothing.
    Plan(PlanCmd),
    /// Predict what would make AKS refuse or fail the plan's upgrades, for every cluster
    /// the plan touches: PDBs that allow no drain, deprecated APIs the target removes,
    /// vCPU quota and subnet addresses for the surge (per wave), stopped or failed
    /// clusters, competing auto-upgraders, end of support (docs/preflight.md).
    /// Changes nothing. Exit 0 when nothing blocks, 3 when something does, 2 for a bad
    /// policy.
    Preflight(PreflightArgs),
    /// Forecast when each cluster, ring and the rollout will be done: the engine itself
    /// driven on a virtual clock over the plan, with AKS's operation times from a model
    /// (docs/forecast.md) and each approval given --approval-after after it is asked.
    /// Changes nothing.
    Forecast(ForecastArgs),
    /// Copy the live fleet into a simulator fleet file (clusters, pools, versions, node
    /// images, upgrade settings, maintenance windows, tags, deployments and their PDBs),
    /// so that `ringmaster sim --fleet FILE` rehearses the real rollout on a copy. No
    /// secrets; --anonymize hashes every name.
    Snapshot(SnapshotArgs),
    /// Run a whole rollout on a simulated fleet: the simulator in-process with an
    /// accelerated clock, ring by ring, with live progress, the approval before prod,
    /// and a summary. Exits 0 when the rollout ended as the policy says it must.
    Demo(DemoArgs),
    /// Run one rollout to its end with durable state: resumes the unfinished rollout in
    /// the state file if there is one (re-attaching to Azure operations in flight),
    /// else discovers, plans and starts a new one. SIGTERM/SIGINT stop starting steps.
    /// Prints every audit line, then a summary per cluster. Exits 0 when the rollout
    /// succeeded (as its policy says), 3 when it halted or was aborted, 4 when interrupted.
    Run(RunArgs),
    /// The daemon: drives rollouts on the policy's schedule (or when asked), resumes an
    /// unfinished one at start, serves the HTTP API (/api/v1, /metrics, /healthz,
    /// /readyz, /openapi.json). One policy (--policy) or a directory of them
    /// (--policies), each on its own schedule, their rollouts side by side and never two
    /// on one cluster. SIGTERM stops starting steps and exits; SIGHUP re-reads the
    /// policies for the next rollouts.
    Serve(Box<ServeArgs>),
    /// The state file: check it, back it up (online, safe while `serve` runs), or
    /// restore a backup (only while nothing uses the file).
    #[command(subcommand)]
    State(StateCommand),
    #[command(flatten)]
    Client(ringmaster::api::cli::ClientCommand),
}

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The rollout policy (YAML; see docs/policy.md).
    #[arg(long)]
    pub(crate) policy: PathBuf,
    /// SQLite state file (created if missing).
    #[arg(long, env = "RINGMASTER_STATE", default_value = "ringmaster.db")]
    pub(crate) state: PathBuf,
    /// Subscriptions when the policy names none (default: every visible subscription).
    #[arg(long = "subscription", env = "RINGMASTER_SUBSCRIPTION_IDS", value_delimiter = ',')]
    pub(crate) subscriptions: Vec<String>,
    /// Rehearsal against `ringmaster sim`: run on the simulator's scaled clock.
    #[arg(long)]
    pub(crate) sim_clock: bool,
    /// Approve every ring that asks, as this name (rehearsals and tests only).
    #[arg(long)]
    pub(crate) approve_as: Option<String>,
    #[command(flatten)]
    pub(crate) azure: ringmaster::identity::AzureConfig,
}

#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// The fleet file (default: the demo fleet built into the binary, a copy of
    /// examples/fleets/demo.yaml).
    #[arg(long)]
    pub(crate) fleet: Option<PathBuf>,
    /// The rollout policy (default: the demo policy built into the binary, a copy of
    /// policies/demo.yaml).
    #[arg(long)]
    pub(crate) policy: Option<PathBuf>,
    /// Wait for you to approve the promotion to prod instead of approving it.
    #[arg(long)]
    pub(crate) interactive: bool,
    /// Run without the fleet file's faults (by default one staging cluster's pods never
    /// become Ready after the upgrade, to show a gate at work).
    #[arg(long)]
    pub(crate) no_faults: bool,
    /// Simulated seconds per wall-clock second.
    #[arg(long, default_value_t = 240.0)]
    pub(crate) time_scale: f64,
    /// SQLite state file (default: a new one in the temp dir).
    #[arg(long)]
    pub(crate) state: Option<PathBuf>,
}

pub(crate) fn parse_cli_duration(s: &str) -> Result<std::time::Duration, String> {
    ringmaster::domain::duration::parse_bounded(s, "a flag", "")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    Table,
    Json,
}

/// The subscriptions given, or every one the identity can see.
pub(crate) async fn given_or_all(client: &ringmaster::arm::AksClient, given: &[String]) -> Result<Vec<String>> {
    if given.is_empty() {
        ringmaster::discovery::list_subscriptions(client)
            .await
            .context("listing subscriptions")
    } else {
        Ok(given.to_vec())
    }
}

/// The `--support-calendar` file (empty without one); exit 2 (errors printed) when it
/// does not parse.
pub(crate) fn read_calendar(path: Option<&PathBuf>) -> Result<Result<ringmaster::upgrades::SupportCalendar, ExitCode>> {
    let Some(path) = path else {
        return Ok(Ok(Default::default()));
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(
        ringmaster::upgrades::parse_calendar(&path.display().to_string(), &text).map_err(|e| {
            eprintln!("{e}");
            ExitCode::from(2)
        }),
    )
}

pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
