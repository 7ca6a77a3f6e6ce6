//! `ringmaster`: command-line entry. Wiring only; the work is in the library.
//!
//! The command line's types and each command's work are in `cli/` (one file per group
//! of commands); this file sets up logging and dispatches.

mod cli;

use clap::Parser;
use cli::{Cli, Command};
use std::io::IsTerminal;
use std::process::ExitCode;

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
        Command::Sim(args) => cli::sim::run_sim(args).await,
        Command::Upgrades(args) => cli::reports::run_upgrades(args).await,
        Command::Validate { files } => {
            let (report, ok) = ringmaster::validate::validate_files(&files);
            print!("{report}");
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
        Command::Plan(args) => cli::plan::run_plan(args).await,
        Command::Preflight(args) => cli::plan::run_preflight(args).await,
        Command::Forecast(args) => cli::reports::run_forecast(args).await,
        Command::Snapshot(args) => cli::reports::run_snapshot(args).await,
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
        Command::Serve(a) => cli::serve::run_serve(*a).await,
        Command::State(c) => cli::state::run_state(c),
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
