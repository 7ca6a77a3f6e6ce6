//! The other reports on the live fleet: `upgrades` (what AKS offers each cluster),
//! `forecast` (when the rollout would be done) and `snapshot` (a copy of the fleet for
//! the simulator). Their flags and their work; none changes anything.

use super::plan::{PlanArgs, plan_fleet, plan_fleet_at};
use super::{Output, given_or_all, parse_cli_duration, read_calendar};
use anyhow::{Context, Result};
use ringmaster::text::Escaped;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct UpgradesArgs {
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

pub(crate) async fn run_upgrades(args: UpgradesArgs) -> Result<ExitCode> {
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

#[derive(clap::Args)]
pub(crate) struct ForecastArgs {
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

#[derive(Clone, Copy, clap::ValueEnum)]
enum ForecastOutput {
    Table,
    Json,
    Svg,
    Html,
}

pub(crate) async fn run_forecast(args: ForecastArgs) -> Result<ExitCode> {
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

#[derive(clap::Args)]
pub(crate) struct SnapshotArgs {
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

pub(crate) async fn run_snapshot(args: SnapshotArgs) -> Result<ExitCode> {
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
