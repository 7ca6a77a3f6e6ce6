//! One daemon per state file. SQLite lets any number of processes write one file, and
//! two daemons on it each drive the rollout they read: they gated nodes the other was
//! surging, and a `run --approve-as` beside `serve` approved prod bypassing the policy.
//! So whatever writes rollout state (`serve`, `run`, the demo) and `state restore` take an
//! exclusive advisory lock on a sibling file, `state.db.lock`, for their whole life.
//!
//! - The lock is the kernel's (`flock`, through `std::fs::File::try_lock`): it goes
//!   with the process, so a SIGKILLed daemon never blocks its successor, and there is
//!   no stale-pid guessing.
//! - The file holds who took it (pid, host, program and role, since), for the refusal's
//!   message only: the lock, not the text, decides.
//! - The lock file is never deleted: a process that unlinked it while another waited
//!   would let two holders lock two different files of the same name.
//! - Readers (`state check`, `state backup`, forecast history) do not take it: SQLite's
//!   own locks make them safe beside a daemon.

use super::StoreError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Held for as long as this value lives; dropped (or the process ends), the lock is free.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

/// The lock file beside `state` (`state.db.lock`).
pub fn lock_path(state: &Path) -> PathBuf {
    super::files::sibling(state, ".lock")
}

impl StateLock {
    /// Takes the lock for `state` without waiting, as `role` (`serve`, `state restore`):
    /// [`StoreError::Locked`] naming the holder when another process has it.
    pub fn acquire(state: &Path, role: &str) -> Result<StateLock, StoreError> {
        let path = lock_path(state);
        let io = |source: std::io::Error| StoreError::Lock {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(StoreError::Locked {
                    state: state.to_path_buf(),
                    holder: describe(&text),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let text = format!(
            "pid={}\nhost={}\ncommand={} {role}\nsince={}\n",
            std::process::id(),
            hostname(),
            program(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(text.as_bytes()))
            .map_err(io)?;
        Ok(StateLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The holder as a person reads it: "pid 4242 on host-a, `ringmaster serve ...`, since ...".
fn describe(text: &str) -> String {
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .map(str::to_string)
    };
    match field("pid") {
        // Between its lock and its write, the holder's file may still be empty.
        None => "a process that has not written its pid yet".into(),
        Some(pid) => format!(
            "pid {pid}{}{}{}",
            field("host").map(|h| format!(" on {h}")).unwrap_or_default(),
            field("command").map(|c| format!(", `{c}`")).unwrap_or_default(),
            field("since").map(|s| format!(", since {s}")).unwrap_or_default(),
        ),
    }
}

/// The program's file name; not its arguments, which may hold a secret
/// (`--client-secret`), and the message goes to logs.
fn program() -> String {
    std::env::args_os()
        .next()
        .map(|a| {
            Path::new(&a)
                .file_name()
                .unwrap_or(a.as_os_str())
                .to_string_lossy()
                .into_owned()
        })
        .unwrap_or_else(|| "ringmaster".into())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_drops() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.db");
        let first = StateLock::acquire(&state, "serve").unwrap();
        let err = StateLock::acquire(&state, "run").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Locked { .. }), "{text}");
        assert!(text.contains(&format!("pid {}", std::process::id())), "{text}");
        assert!(text.contains(&state.display().to_string()), "{text}");
        drop(first);
        StateLock::acquire(&state, "run").unwrap();
        assert!(!state.exists(), "the lock writes nothing to the state file");
    }
}
