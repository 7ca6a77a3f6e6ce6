//! `ringmaster plan` and `ringmaster preflight`: their flags, and the discovery poll
//! and plan they share (with `upgrades --policy` and `forecast`).

use super::{Output, read_calendar};
use anyhow::{Context, Result};
use ringmaster::text::Escaped;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct PlanArgs {
    /// The rollout policy (YAML; see docs/policy.md).
    #[arg(long)]
    pub(crate) policy: PathBuf,
    /// Subscriptions to look at when the policy names none (repeat, or comma-separated).
    /// Default: every subscription the identity can see.
    #[arg(long = "subscription", env = "RINGMASTER_SUBSCRIPTION_IDS", value_delimiter = ',')]
    pub(crate) subscriptions: Vec<String>,
    /// table (for people) or json (stable, for scripts).
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) output: Output,
    /// Rehearsal against `ringmaster sim`: plan as of the simulator's clock, not the wall clock's.
    #[arg(long)]
    pub(crate) sim_clock: bool,
    #[command(flatten)]
    pub(crate) azure: ringmaster::identity::AzureConfig,
}

#[derive(clap::Args)]
pub(crate) struct PlanCmd {
    #[command(flatten)]
    plan: PlanArgs,
    /// Also run preflight (docs/preflight.md) and show each cluster's findings after
    /// the plan (JSON: a `preflight` field). Exit 3 when something blocks.
    #[arg(long)]
    preflight: bool,
}

#[derive(clap::Args)]
pub(crate) struct PreflightArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// YAML map of minor version to the day it leaves AKS support (`"1.31": 2026-12-15`),
    /// for the end-of-support check: ARM does not publish these dates.
    #[arg(long, env = "RINGMASTER_SUPPORT_CALENDAR")]
    support_calendar: Option<PathBuf>,
}

/// A discovery poll and the plan of a policy over it (what `plan` and `preflight` share).
pub(crate) struct Planned {
    pub(crate) client: ringmaster::arm::AksClient,
    pub(crate) discovery: ringmaster::discovery::Discovery,
    pub(crate) policy: ringmaster::policy::Policy,
    pub(crate) plan: ringmaster::plan::Plan,
    pub(crate) now: chrono::DateTime<chrono::Utc>,
    pub(crate) clock: std::sync::Arc<dyn ringmaster::clock::Clock>,
}

/// Compiles the policy (exit 2 on errors, printed), discovers the fleet, plans.
pub(crate) async fn plan_fleet(args: &PlanArgs) -> Result<Result<Planned, ExitCode>> {
    plan_fleet_at(args, None).await
}

/// [`plan_fleet`], planned as of `at` (default now).
pub(crate) async fn plan_fleet_at(
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

pub(crate) async fn run_plan(cmd: PlanCmd) -> Result<ExitCode> {
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

pub(crate) async fn run_preflight(args: PreflightArgs) -> Result<ExitCode> {
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
