//! `ringmaster state`: check, back up or restore the state file.

use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub(crate) enum StateCommand {
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

pub(crate) fn run_state(c: StateCommand) -> Result<ExitCode> {
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
