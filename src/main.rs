//! `ringmaster`: command-line entry. Wiring only; the work is in the library.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ringmaster::sim::{ClockMode, SimOptions, Simulator};
use ringmaster::text::Escaped;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Keeps fleets of AKS clusters upgraded, ring by ring, safely.
#[derive(Parser)]
#[command(name = "ringmaster", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
struct ServeArgs {
    /// One rollout policy (YAML; see docs/policy.md).
    #[arg(
        long,
        env = "RINGMASTER_POLICY",
        required_unless_present = "policies",
        conflicts_with = "policies"
    )]
    policy: Option<PathBuf>,
    /// A directory of policies (every *.yaml / *.yml in it): each on its own schedule,
    /// their rollouts at the same time, never two on one cluster (e.g. policies/cadences).
    #[arg(long, env = "RINGMASTER_POLICIES")]
    policies: Option<PathBuf>,
    /// SQLite state file (created if missing).
    #[arg(long, env = "RINGMASTER_STATE", default_value = "ringmaster.db")]
    state: PathBuf,
    /// Address of the HTTP API.
    #[arg(long, env = "RINGMASTER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// A second address serving only `/healthz` and `/readyz`, for the kubelet's and a
    /// load balancer's probes: API traffic (event streams, floods) cannot starve it.
    /// The API's own address serves them too.
    #[arg(long, env = "RINGMASTER_PROBE_LISTEN")]
    probe_listen: Option<SocketAddr>,
    /// Subscriptions when the policy names none (default: every visible subscription).
    #[arg(long = "subscription", env = "RINGMASTER_SUBSCRIPTION_IDS", value_delimiter = ',')]
    subscriptions: Vec<String>,
    /// Rehearsal against `ringmaster sim`: run on the simulator's scaled clock.
    #[arg(long)]
    sim_clock: bool,
    /// Start a rollout of every policy right away instead of waiting for their schedules.
    #[arg(long)]
    start_now: bool,
    /// Service configuration (YAML): `webhooks:` for notifications (see
    /// examples/deploy/kubernetes/configmap.yaml).
    #[arg(long, env = "RINGMASTER_CONFIG")]
    config: Option<PathBuf>,
    /// Mark the dashboard's session cookie `Secure`: set it when people reach the
    /// dashboard over HTTPS (a TLS-terminating ingress in front of `serve`).
    #[arg(long, env = "RINGMASTER_SECURE_COOKIES")]
    secure_cookies: bool,
    /// YAML map of minor version to the day it leaves AKS support (`"1.31": 2026-12-15`),
    /// for the dashboard's fleet view (days of support left).
    #[arg(long, env = "RINGMASTER_SUPPORT_CALENDAR")]
    support_calendar: Option<PathBuf>,
    #[command(flatten)]
    auth: ringmaster::api::AuthArgs,
    #[command(flatten)]
    http: HttpLimitArgs,
    #[command(flatten)]
    retention: ringmaster::store::RetentionArgs,
    #[command(flatten)]
    azure: ringmaster::identity::AzureConfig,
}

#[derive(Subcommand)]
enum StateCommand {
    /// Full integrity check and a summary (rollouts, unfinished ones, audit entries),
    /// read-only, every rollout decoded as `serve` does. Exit 0 when `serve` would take
    /// the file; 1 when damaged, empty, not a state file, undecodable, or its WAL looks lost.
    Check {
        #[arg(long, env = "RINGMASTER_STATE", default_value = "ringmaster.db")]
        state: PathBuf,
    },
    /// Copies a consistent snapshot of the state file to `--to` (created 0600).
    Backup {
        #[arg(long, env = "RINGMASTER_STATE", default_value = "ringmaster.db")]
        state: PathBuf,
        #[arg(long)]
        to: PathBuf,
    },
    /// Replaces the state file by a checked backup. Refused while a daemon holds the file.
    Restore {
        #[arg(long)]
        from: PathBuf,
        #[arg(long, env = "RINGMASTER_STATE", default_value = "ringmaster.db")]
        state: PathBuf,
    },
}

/// `serve`'s HTTP limits (see `ringmaster::api::Limits` for why these defaults).
#[derive(clap::Args)]
struct HttpLimitArgs {
    /// Most open API connections; more wait in the listen backlog. Keep it well under
    /// the process's file limit.
    #[arg(long, env = "RINGMASTER_MAX_CONNECTIONS", default_value_t = 512)]
    max_connections: usize,
    /// Seconds a client has to send a request's head (and an idle connection stays open).
    #[arg(long, env = "RINGMASTER_HEADER_TIMEOUT", default_value_t = 10)]
    header_timeout: u64,
    /// Seconds a client has to send a request's body.
    #[arg(long, env = "RINGMASTER_BODY_TIMEOUT", default_value_t = 10)]
    body_timeout: u64,
    /// Seconds requests in flight get to finish after SIGTERM.
    #[arg(long, env = "RINGMASTER_SHUTDOWN_GRACE", default_value_t = 5)]
    shutdown_grace: u64,
}

impl HttpLimitArgs {
    fn limits(&self) -> ringmaster::api::Limits {
        use std::time::Duration;
        ringmaster::api::Limits {
            max_connections: self.max_connections.max(1),
            header_timeout: Duration::from_secs(self.header_timeout.max(1)),
            body_timeout: Duration::from_secs(self.body_timeout.max(1)),
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
            ..Default::default()
        }
    }
}

#[derive(clap::Args)]
struct RunArgs {
    /// The rollout policy (YAML; see docs/policy.md).
    #[arg(long)]
    policy: PathBuf,
    /// SQLite state file (created if missing).
    #[arg(long, env = "RINGMASTER_STATE", default_value = "ringmaster.db")]
    state: PathBuf,
    /// Subscriptions when the policy names none (default: every visible subscription).
    #[arg(long = "subscription", env = "RINGMASTER_SUBSCRIPTION_IDS", value_delimiter = ',')]
    subscriptions: Vec<String>,
    /// Rehearsal against `ringmaster sim`: run on the simulator's scaled clock.
    #[arg(long)]
    sim_clock: bool,
    /// Approve every ring that asks, as this name (rehearsals and tests only).
    #[arg(long)]
    approve_as: Option<String>,
    #[command(flatten)]
    azure: ringmaster::identity::AzureConfig,
}

#[derive(clap::Args)]
struct DemoArgs {
    /// The fleet file (default: the demo fleet built into the binary, a copy of
    /// examples/fleets/demo.yaml).
    #[arg(long)]
    fleet: Option<PathBuf>,
    /// The rollout policy (default: the demo policy built into the binary, a copy of
    /// policies/demo.yaml).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Wait for you to approve the promotion to prod instead of approving it.
    #[arg(long)]
    interactive: bool,
    /// Run without the fleet file's faults (by default one staging cluster's pods never
    /// become Ready after the upgrade, to show a gate at work).
    #[arg(long)]
    no_faults: bool,
    /// Simulated seconds per wall-clock second.
    #[arg(long, default_value_t = 240.0)]
    time_scale: f64,
    /// SQLite state file (default: a new one in the temp dir).
    #[arg(long)]
    state: Option<PathBuf>,
}

#[derive(clap::Args)]
struct PlanArgs {
    /// The rollout policy (YAML; see docs/policy.md).
    #[arg(long)]
    policy: PathBuf,
    /// Subscriptions to look at when the policy names none (repeat, or comma-separated).
    /// Default: every subscription the identity can see.
    #[arg(long = "subscription", env = "RINGMASTER_SUBSCRIPTION_IDS", value_delimiter = ',')]
    subscriptions: Vec<String>,
    /// table (for people) or json (stable, for scripts).
    #[arg(long, value_enum, default_value = "table")]
    output: Output,
    /// Rehearsal against `ringmaster sim`: plan as of the simulator's clock, not the wall clock's.
    #[arg(long)]
    sim_clock: bool,
    #[command(flatten)]
    azure: ringmaster::identity::AzureConfig,
}

#[derive(clap::Args)]
struct PlanCmd {
    #[command(flatten)]
    plan: PlanArgs,
    /// Also run preflight (docs/preflight.md) and show each cluster's findings after
    /// the plan (JSON: a `preflight` field). Exit 3 when something blocks.
    #[arg(long)]
    preflight: bool,
}

#[derive(clap::Args)]
struct ForecastArgs {
    /// The rollout policy (YAML; see docs/policy.md).
    #[arg(long)]
    policy: PathBuf,
    /// Subscriptions to look at when the policy names none (repeat, or comma-separated).
    /// Default: every subscription the identity can see.
    #[arg(long = "subscription", env = "RINGMASTER_SUBSCRIPTION_IDS", value_delimiter = ',')]
    subscriptions: Vec<String>,
    /// table (for people), json (for scripts), svg (a Gantt chart) or html (the chart
    /// and the table in one page that needs nothing else).
    #[arg(long, value_enum, default_value = "table")]
    output: ForecastOutput,
    #[command(flatten)]
    azure: ringmaster::identity::AzureConfig,
    /// When the rollout starts (RFC 3339, e.g. 2026-12-07T08:00:00Z). Default: now
    /// (the simulator's now with --sim-clock).
    #[arg(long)]
    start: Option<chrono::DateTime<chrono::Utc>>,
    /// Rehearsal against `ringmaster sim`: start at the simulator's clock, not the wall clock's.
    #[arg(long)]
    sim_clock: bool,
    /// How long after a ring asks for its approval it is given (e.g. 4h, 1d).
    #[arg(long, default_value = "1h", value_parser = parse_cli_duration)]
    approval_after: std::time::Duration,
    /// YAML file of AKS operation durations overriding the model's estimates
    /// (control_plane, node_provision, node_drain, node_reimage, node_delete).
    #[arg(long)]
    model: Option<PathBuf>,
    /// A state file (of `run` or `serve`) whose finished operations calibrate the model:
    /// per kind of step, the median of how long AKS took against what the model said.
    #[arg(long)]
    history: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SnapshotArgs {
    /// Where to write the fleet file (`-`: standard output).
    #[arg(long, short)]
    output: PathBuf,
    /// Replace cluster, resource group, namespace, workload and tag value names by hashes.
    #[arg(long)]
    anonymize: bool,
    /// Subscriptions to copy (repeat, or comma-separated). Default: every subscription
    /// the identity can see.
    #[arg(long = "subscription", env = "RINGMASTER_SUBSCRIPTION_IDS", value_delimiter = ',')]
    subscriptions: Vec<String>,
    #[command(flatten)]
    azure: ringmaster::identity::AzureConfig,
}

fn parse_cli_duration(s: &str) -> Result<std::time::Duration, String> {
    ringmaster::domain::duration::parse_bounded(s, "a flag", "")
}

#[derive(clap::Args)]
struct PreflightArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// YAML map of minor version to the day it leaves AKS support (`"1.31": 2026-12-15`),
    /// for the end-of-support check: ARM does not publish these dates.
    #[arg(long, env = "RINGMASTER_SUPPORT_CALENDAR")]
    support_calendar: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ForecastOutput {
    Table,
    Json,
    Svg,
    Html,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(clap::Args)]
struct UpgradesArgs {
    /// Subscriptions to look at (repeat, or comma-separated). Default: every subscription
    /// the identity can see.
    #[arg(long = "subscription", env = "RINGMASTER_SUBSCRIPTION_IDS", value_delimiter = ',')]
    subscriptions: Vec<String>,
    /// table (for people) or json (stable, for scripts).
    #[arg(long, value_enum, default_value = "table")]
    output: Output,
    /// YAML map of minor version to the day it leaves AKS support (`"1.31": 2026-12-15`),
    /// for the days-left column: ARM does not publish these dates.
    #[arg(long, env = "RINGMASTER_SUPPORT_CALENDAR")]
    support_calendar: Option<PathBuf>,
    /// A rollout policy: adds a BLOCKS column, the blocking preflight findings of each
    /// cluster against the policy's plan (`ringmaster preflight` has the details).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Rehearsal against `ringmaster sim`: support days left as of the simulator's clock.
    #[arg(long)]
    sim_clock: bool,
    #[command(flatten)]
    azure: ringmaster::identity::AzureConfig,
}

#[derive(clap::Args)]
struct SimArgs {
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

/// Logs to stderr (JSON when it is not a terminal); `RINGMASTER_LOG` overrides `default`.
/// Every line goes through [`SafeLogs`]: logged values (names from files, requests, ARM)
/// cannot forge lines or send escape sequences to the terminal. Without colours on a
/// terminal, since the writer cannot tell the formatter's from a value's.
fn init_logs(default: &str) {
    use ringmaster::text::{LogFormat, SafeLogs};
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RINGMASTER_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false);
    if std::io::stderr().is_terminal() {
        builder
            .with_writer(SafeLogs::new(std::io::stderr, LogFormat::Text))
            .init();
    } else {
        builder
            .with_writer(SafeLogs::new(std::io::stderr, LogFormat::Json))
            .json()
            .init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo draws its own progress: the in-process simulator's and daemon's info
    // lines would only interleave with it.
    init_logs(match cli.command {
        Command::Demo(_) => "warn",
        // Reports: an API server that does not answer is a finding in the report, not
        // also an ERROR line from kube's client.
        Command::Preflight(_) | Command::Plan(_) | Command::Upgrades(_) | Command::Forecast(_) => {
            "info,kube_client=off"
        }
        _ => "info",
    });
    let result = match cli.command {
        Command::Sim(args) => run_sim(args).await,
        Command::Upgrades(args) => run_upgrades(args).await,
        Command::Validate { files } => {
            let (report, ok) = ringmaster::validate::validate_files(&files);
            print!("{report}");
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
        Command::Plan(args) => run_plan(args).await,
        Command::Preflight(args) => run_preflight(args).await,
        Command::Forecast(args) => run_forecast(args).await,
        Command::Snapshot(args) => run_snapshot(args).await,
        Command::Run(a) => ringmaster::service::run::run(ringmaster::service::run::RunOptions {
            policy: a.policy,
            state: a.state,
            azure: a.azure,
            subscriptions: a.subscriptions,
            sim_clock: a.sim_clock,
            approve_as: a.approve_as,
        })
        .await
        .map(|o| match (&o.rollout.status, o.interrupted) {
            (ringmaster::engine::RolloutStatus::Succeeded, _) => ExitCode::SUCCESS,
            (_, true) => ExitCode::from(4),
            _ => ExitCode::from(3),
        }),
        Command::Serve(a) => run_serve(*a).await,
        Command::State(c) => run_state(c),
        Command::Client(c) => Ok(ringmaster::api::cli::run(c).await),
        Command::Demo(a) => {
            let outcome = ringmaster::demo::run(ringmaster::demo::DemoOptions {
                fleet: a.fleet,
                policy: a.policy,
                interactive: a.interactive,
                faults: !a.no_faults,
                time_scale: a.time_scale,
                state: a.state,
            })
            .await;
            outcome.map(|o| {
                if o.as_policy_says {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            })
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Errors quote names and answers: escaped, keeping the lines of a report.
            eprintln!("error: {}", ringmaster::text::escape_lines(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

async fn run_sim(args: SimArgs) -> Result<ExitCode> {
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

/// The subscriptions given, or every one the identity can see.
async fn given_or_all(client: &ringmaster::arm::AksClient, given: &[String]) -> Result<Vec<String>> {
    if given.is_empty() {
        ringmaster::discovery::list_subscriptions(client)
            .await
            .context("listing subscriptions")
    } else {
        Ok(given.to_vec())
    }
}

async fn run_upgrades(args: UpgradesArgs) -> Result<ExitCode> {
    let clock = ringmaster::service::run::command_clock(&args.azure, args.sim_clock).await?;
    let client = ringmaster::arm::connect(&args.azure, clock.clone()).context("connecting to Azure")?;
    let calendar = match read_calendar(args.support_calendar.as_ref())? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let subscriptions = given_or_all(&client, &args.subscriptions).await?;
    let now = clock.now();
    let discovery = ringmaster::discovery::discover(&client, &subscriptions, now).await?;
    let mut report = ringmaster::upgrades::build(&discovery, &calendar, now);
    if let Some(policy) = &args.policy {
        let plan_args = PlanArgs {
            policy: policy.clone(),
            subscriptions: subscriptions.clone(),
            output: args.output,
            sim_clock: args.sim_clock,
            azure: args.azure.clone(),
        };
        let p = match plan_fleet(&plan_args).await? {
            Ok(p) => p,
            Err(code) => return Ok(code),
        };
        let tokens = std::sync::Arc::new(ringmaster::identity::AzureTokens::new(
            args.azure.clone(),
            args.azure.http_client()?,
        )?);
        let settings = ringmaster::preflight::checks::CheckSettings::from_policy(&p.policy);
        let pf = ringmaster::preflight::run(&p.client, tokens, &p.discovery, &p.plan, &settings, calendar, p.now).await;
        for c in &mut report.clusters {
            c.blocking_findings = pf.clusters.iter().find(|r| r.id == c.id).map(|r| r.blocking());
        }
    }
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Table => print!("{}", ringmaster::upgrades::render_table(&report)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--support-calendar` file (empty without one); exit 2 (errors printed) when it
/// does not parse.
fn read_calendar(path: Option<&PathBuf>) -> Result<Result<ringmaster::upgrades::SupportCalendar, ExitCode>> {
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

/// A discovery poll and the plan of a policy over it (what `plan` and `preflight` share).
struct Planned {
    client: ringmaster::arm::AksClient,
    discovery: ringmaster::discovery::Discovery,
    policy: ringmaster::policy::Policy,
    plan: ringmaster::plan::Plan,
    now: chrono::DateTime<chrono::Utc>,
    clock: std::sync::Arc<dyn ringmaster::clock::Clock>,
}

/// Compiles the policy (exit 2 on errors, printed), discovers the fleet, plans.
async fn plan_fleet(args: &PlanArgs) -> Result<Result<Planned, ExitCode>> {
    plan_fleet_at(args, None).await
}

/// [`plan_fleet`], planned as of `at` (default now).
async fn plan_fleet_at(
    args: &PlanArgs,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Result<Planned, ExitCode>> {
    let text = std::fs::read_to_string(&args.policy).with_context(|| format!("reading {}", args.policy.display()))?;
    let file = args.policy.display().to_string();
    // Compile once without the fleet to fail fast on a broken policy.
    let policy = match ringmaster::policy::compile(&file, &text) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Ok(Err(ExitCode::from(2)));
        }
    };
    let clock = ringmaster::service::run::command_clock(&args.azure, args.sim_clock).await?;
    let client = ringmaster::arm::connect(&args.azure, clock.clone()).context("connecting to Azure")?;
    let subscriptions = if !policy.fleet.subscriptions.is_empty() {
        policy.fleet.subscriptions.clone()
    } else if !args.subscriptions.is_empty() {
        args.subscriptions.clone()
    } else {
        ringmaster::discovery::list_subscriptions(&client)
            .await
            .context("listing subscriptions")?
    };
    let now = at.unwrap_or_else(|| clock.now());
    let mut discovery = ringmaster::discovery::discover(&client, &subscriptions, now).await?;
    ringmaster::discovery::fetch_maintenance(&client, &mut discovery).await;
    for p in &discovery.problems {
        eprintln!("warning: {}: {}", Escaped(&p.subject), Escaped(&p.reason));
    }
    // Compile again against the fleet: rings that overlap on real clusters are errors.
    let policy = match ringmaster::policy::compile_with_snapshot(&file, &text, Some(&discovery.snapshot)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Ok(Err(ExitCode::from(2)));
        }
    };
    let plan = ringmaster::plan::plan(&discovery.snapshot, &policy, now);
    Ok(Ok(Planned {
        client,
        discovery,
        policy,
        plan,
        now,
        clock,
    }))
}

async fn run_plan(cmd: PlanCmd) -> Result<ExitCode> {
    let args = &cmd.plan;
    let p = match plan_fleet(args).await? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let report = if cmd.preflight {
        ringmaster::identity::install_crypto_provider();
        let tokens = std::sync::Arc::new(ringmaster::identity::AzureTokens::new(
            args.azure.clone(),
            args.azure.http_client()?,
        )?);
        let settings = ringmaster::preflight::checks::CheckSettings::from_policy(&p.policy);
        Some(
            ringmaster::preflight::run(
                &p.client,
                tokens,
                &p.discovery,
                &p.plan,
                &settings,
                Default::default(),
                p.now,
            )
            .await,
        )
    } else {
        None
    };
    match (args.output, &report) {
        (Output::Json, None) => println!("{}", ringmaster::plan::render::json(&p.plan)),
        (Output::Json, Some(r)) => {
            let mut v = serde_json::to_value(&p.plan)?;
            v["preflight"] = serde_json::to_value(r)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        (Output::Table, _) => {
            print!("{}", ringmaster::plan::render::table(&p.plan));
            if let Some(r) = &report {
                println!("\npreflight:");
                print!("{}", ringmaster::preflight::render::table(r));
            }
        }
    }
    Ok(match report {
        Some(r) if r.blocking() > 0 => ExitCode::from(ringmaster::preflight::EXIT_BLOCKED),
        _ => ExitCode::SUCCESS,
    })
}

async fn run_snapshot(args: SnapshotArgs) -> Result<ExitCode> {
    use ringmaster::clock::{Clock, SystemClock};
    ringmaster::identity::install_crypto_provider();
    let clock: std::sync::Arc<dyn Clock> = std::sync::Arc::new(SystemClock);
    let client = ringmaster::arm::connect(&args.azure, clock.clone()).context("connecting to Azure")?;
    let tokens = std::sync::Arc::new(ringmaster::identity::AzureTokens::new(
        args.azure.clone(),
        args.azure.http_client()?,
    )?);
    let subscriptions = given_or_all(&client, &args.subscriptions).await?;
    let (d, workloads) = ringmaster::snapshot::read(&client, tokens, &subscriptions, clock.now()).await?;
    let doc = ringmaster::snapshot::fleet_file(&d, &workloads, &ringmaster::snapshot::Names::new(args.anonymize));
    let text = format!(
        "# A copy of the live fleet by `ringmaster snapshot` ({} clusters): `ringmaster sim --fleet` loads it.\n{}",
        d.snapshot.clusters.len(),
        serde_saphyr::to_string(&doc).context("writing YAML")?
    );
    if args.output.as_os_str() == "-" {
        print!("{text}");
    } else {
        std::fs::write(&args.output, text).with_context(|| format!("writing {}", args.output.display()))?;
        eprintln!(
            "wrote {} ({} clusters)",
            args.output.display(),
            d.snapshot.clusters.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_forecast(args: ForecastArgs) -> Result<ExitCode> {
    let model = match &args.model {
        None => ringmaster::forecast::model::Model::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            match ringmaster::forecast::model::Model::parse(&path.display().to_string(), &text) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(2));
                }
            }
        }
    };
    let plan_args = PlanArgs {
        policy: args.policy.clone(),
        subscriptions: args.subscriptions.clone(),
        output: Output::Table,
        sim_clock: args.sim_clock,
        azure: args.azure.clone(),
    };
    let p = match plan_fleet_at(&plan_args, args.start).await? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    if let Some(problem) = &p.plan.target.problem {
        eprintln!("no target to roll out: {}", Escaped(problem));
        return Ok(ExitCode::from(2));
    }
    let text = std::fs::read_to_string(&args.policy)?;
    let rollout = ringmaster::engine::Rollout::new(
        "forecast".into(),
        args.policy.display().to_string(),
        text,
        p.plan.clone(),
        p.now,
    );
    let settings = ringmaster::engine::Settings::from_policy(&p.policy);
    let pools = ringmaster::forecast::pools_of(&p.discovery, &p.policy);
    let history = match &args.history {
        None => Default::default(),
        Some(path) if !path.exists() => anyhow::bail!("no state file at {}", path.display()),
        Some(path) => {
            let store = ringmaster::store::Store::open(path).with_context(|| format!("opening {}", path.display()))?;
            let (rollouts, audit) = ringmaster::forecast::history::load(&store)?;
            ringmaster::forecast::history::learn(&rollouts, &audit)
        }
    };
    let assumptions = ringmaster::forecast::Assumptions {
        history,
        model,
        approval_after: args.approval_after,
    };
    let tl = ringmaster::forecast::forecast(rollout, &settings, &pools, &assumptions, p.now);
    // The chart's "now" on the clock the fleet was read at (the simulator's with --sim-clock).
    let now = p.clock.now();
    match args.output {
        ForecastOutput::Json => println!("{}", ringmaster::forecast::render::json(&tl)),
        ForecastOutput::Table => print!("{}", ringmaster::forecast::render::table(&tl)),
        ForecastOutput::Svg => print!("{}", ringmaster::forecast::gantt::svg(&tl, now)),
        ForecastOutput::Html => print!("{}", ringmaster::forecast::gantt::html(&tl, now)),
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_preflight(args: PreflightArgs) -> Result<ExitCode> {
    use ringmaster::preflight;
    ringmaster::identity::install_crypto_provider();
    let support = match read_calendar(args.support_calendar.as_ref())? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let p = match plan_fleet(&args.plan).await? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let tokens = std::sync::Arc::new(ringmaster::identity::AzureTokens::new(
        args.plan.azure.clone(),
        args.plan.azure.http_client()?,
    )?);
    let settings = preflight::checks::CheckSettings::from_policy(&p.policy);
    let report = preflight::run(&p.client, tokens, &p.discovery, &p.plan, &settings, support, p.now).await;
    match args.plan.output {
        Output::Json => println!("{}", preflight::render::json(&report)),
        Output::Table => print!("{}", preflight::render::table(&report)),
    }
    Ok(if report.blocking() > 0 {
        ExitCode::from(preflight::EXIT_BLOCKED)
    } else {
        ExitCode::SUCCESS
    })
}

async fn run_serve(a: ServeArgs) -> Result<ExitCode> {
    use std::sync::Arc;
    ringmaster::identity::install_crypto_provider();
    // Fail fast on a broken policy: at start every file must compile (a file that
    // breaks later keeps its last good version, see service::policies).
    let policy_set = match (&a.policy, &a.policies) {
        (Some(f), _) => ringmaster::service::policies::PolicySet::File(f.clone()),
        (None, Some(d)) => ringmaster::service::policies::PolicySet::Dir(d.clone()),
        (None, None) => anyhow::bail!("give --policy FILE or --policies DIR"),
    };
    let catalog = ringmaster::service::policies::Catalog::default();
    let problems = catalog.reload(&policy_set);
    if !problems.is_empty() {
        eprintln!("{}", problems.join("\n"));
        return Ok(ExitCode::from(2));
    }
    let first_policy = catalog
        .in_force()
        .first()
        .map(|l| l.path.clone())
        .context("no policy")?;
    let calendar = match read_calendar(a.support_calendar.as_ref())? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let store = Arc::new(
        ringmaster::store::Store::open_daemon(&a.state, "serve")
            .with_context(|| format!("opening {}", a.state.display()))?,
    );
    // Read what the file holds before anything else: a state that can't be read stops
    // here, with the reason, instead of looking like "no rollouts".
    match ringmaster::service::daemon::stored(&store) {
        Ok(all) => {
            for r in all.iter().filter(|r| !r.status.is_terminal()) {
                // The rollout resumes with the policy it was started with. One this binary
                // refuses (e.g. stored before a bound was added) stops serve here: neither
                // resumed nor left unfinished beside a new rollout that could collide with it.
                if let Err(e) = ringmaster::policy::compile(&r.policy_file, &r.policy_text) {
                    anyhow::bail!(
                        "the unfinished rollout `{}` was started with a policy this ringmaster refuses, so it cannot be resumed:\n{e}\nfinish or abort it with the ringmaster version that started it, or restore a backup (`ringmaster state restore`)",
                        r.id
                    );
                }
                tracing::info!(rollout = %r.id, "the state file holds an unfinished rollout; resuming it");
            }
        }
        Err(e) => anyhow::bail!("{e}; see `ringmaster state check --state {}`", a.state.display()),
    }
    let clock = ringmaster::service::run::command_clock(&a.azure, a.sim_clock).await?;
    let client = Arc::new(ringmaster::arm::connect(&a.azure, clock.clone())?);
    let http = a.azure.http_client()?;
    let tokens = Arc::new(ringmaster::identity::AzureTokens::new(a.azure.clone(), http.clone())?);
    let auth = Arc::new(a.auth.build(http)?);
    let metrics = Arc::new(ringmaster::metrics::Metrics::default());
    let notifier: Arc<dyn ringmaster::runtime::Notifier> = match &a.config {
        None => Arc::new(ringmaster::runtime::LogNotifier),
        Some(path) => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct ServiceConfig {
                #[serde(default)]
                webhooks: Vec<ringmaster::notify::WebhookConfig>,
            }
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let cfg: ServiceConfig = match ringmaster::yaml::parse(&path.display().to_string(), &text) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let hooks = ringmaster::notify::WebhookNotifier::new(cfg.webhooks, Default::default(), clock.clone())?;
            Arc::new(ringmaster::notify::Fanout(vec![
                Arc::new(ringmaster::runtime::LogNotifier),
                Arc::new(hooks),
            ]))
        }
    };
    let daemon = ringmaster::service::daemon::Daemon::new(
        store.clone(),
        client,
        tokens,
        clock.clone(),
        metrics.clone(),
        notifier,
        policy_set,
        a.subscriptions.clone(),
    );
    let mut state = ringmaster::api::ApiState::new(daemon.clone(), store.clone(), auth, metrics.clone(), clock.clone());
    state.health = daemon.health.clone();
    state.limits = a.http.limits();
    state.arm = Some(daemon.client.clone());
    state.events = daemon.events.clone();
    state.secure_cookies = a.secure_cookies || state.auth.public_url_is_https();
    state.fleet = Some(Arc::new(ringmaster::api::fleet::FleetSource::new(
        daemon.client.clone(),
        // The fleet view plans with the first policy (highest priority).
        ringmaster::api::fleet::PolicyOrigin::File(first_policy),
        a.subscriptions.clone(),
        calendar,
    )));
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("listening on {}", a.listen))?;
    let addr = listener.local_addr()?;
    let probes = match a.probe_listen {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("listening for probes on {at}"))?,
        ),
        None => None,
    };
    let probe_addr = probes.as_ref().map(|l| l.local_addr()).transpose()?;
    println!(
        "{}",
        serde_json::json!({ "listen": addr.to_string(), "probes": probe_addr.map(|p| p.to_string()) })
    );
    tracing::info!(%addr, probes = ?probe_addr, "ringmaster API listening");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if a.start_now {
        use ringmaster::service::Control;
        for l in daemon.catalog.in_force() {
            let _ = daemon.start_now("serve --start-now", Some(&l.policy.name));
        }
    }
    let daemon_task = tokio::spawn(daemon.clone().run(stop_rx.clone()));
    let retention = tokio::spawn(ringmaster::store::retention::run(
        store.clone(),
        a.retention.policy(&a.state),
        clock.clone(),
        metrics.clone(),
        stop_rx.clone(),
    ));
    if let Some(l) = probes {
        let mut probe_stop = stop_rx.clone();
        tokio::spawn(ringmaster::api::serve_probes(l, state.clone(), async move {
            let _ = probe_stop.wait_for(|s| *s).await;
        }));
    }
    let mut api_stop = stop_rx.clone();
    let api = tokio::spawn(ringmaster::api::serve(listener, state, async move {
        let _ = api_stop.wait_for(|s| *s).await;
    }));
    let reloads = daemon.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
        while hup.recv().await.is_some() {
            reloads.reload();
        }
    });
    wait_for_signal().await;
    tracing::info!(
        "stopping: no new steps; operations in flight continue in Azure and are re-attached at the next start"
    );
    let _ = stop_tx.send(true);
    // The API gets its grace period, the rollout loop saves and stops; past the
    // deadline the process exits anyway (what was committed is what a restart resumes).
    let deadline = a.http.limits().shutdown_grace + std::time::Duration::from_secs(5);
    let all = async {
        let _ = tokio::join!(daemon_task, api, retention);
    };
    if tokio::time::timeout(deadline, all).await.is_err() {
        tracing::warn!("shutdown: gave up waiting after {} s", deadline.as_secs());
    }
    if let Err(e) = store.checkpoint() {
        tracing::warn!(error = %e, "checkpointing the state file at shutdown");
    }
    tracing::info!("stopped");
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

fn run_state(c: StateCommand) -> Result<ExitCode> {
    use ringmaster::store::Store;
    let show = |r: &ringmaster::store::CheckReport| {
        println!(
            "ok: schema v{}, {} rollouts ({} unfinished{}), {} audit entries, {} bytes",
            r.schema_version,
            r.rollouts,
            r.unfinished.len(),
            if r.unfinished.is_empty() {
                String::new()
            } else {
                format!(": {}", r.unfinished.join(", "))
            },
            r.audit_entries,
            r.file_bytes
        )
    };
    match c {
        StateCommand::Check { state } => {
            if !state.exists() {
                anyhow::bail!("{} does not exist", state.display());
            }
            // Read-only, and every rollout decoded by the function `serve` uses: `ok`
            // here means `serve` would start on this file.
            let checked = Store::open_read_only(&state)
                .and_then(|s| Ok((s.check()?, s)))
                .map_err(anyhow::Error::from)
                .and_then(|(r, s)| {
                    ringmaster::service::daemon::stored(&s)?;
                    Ok(r)
                });
            match checked {
                Ok(r) => {
                    show(&r);
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        StateCommand::Backup { state, to } => {
            if !state.exists() {
                anyhow::bail!("{} does not exist", state.display());
            }
            Store::open(&state)?.backup_to(&to)?;
            let r = Store::open(&to)?.check()?;
            print!("{}: ", to.display());
            show(&r);
            Ok(ExitCode::SUCCESS)
        }
        StateCommand::Restore { from, state } => {
            let r = ringmaster::store::restore(&from, &state)?;
            print!("{} restored from {}: ", state.display(), from.display());
            show(&r);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
