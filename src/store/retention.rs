//! Audit retention: old entries leave the state file for archive files, on a policy, by
//! the daemon itself.
//!
//! The audit log is append-only, and before this nothing could ever leave it: a flood
//! of refused calls filled the disk with no way back. Now entries older than
//! [`RetentionPolicy::max_age`], or beyond the newest [`RetentionPolicy::max_entries`],
//! are written as JSON Lines to `audit-<first id>-<last id>.jsonl` in the archive
//! directory (0600, fsynced, renamed into place), and only then removed, in one
//! transaction that moves the archive mark (`audit_archived.up_to`) forward. The schema's
//! trigger deletes nothing above the mark, so no other path can remove an entry that
//! was not archived first. Removing rows frees pages inside the file for reuse; the file
//! itself does not shrink.

use super::codec::{clamp_i64, time_from_sql, time_to_sql};
use super::error::sql;
use super::files::sibling;
use super::{Store, StoreError};
use crate::clock::Clock;
use crate::metrics::Metrics;
use chrono::{DateTime, Utc};
use rusqlite::params;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Entries moved per archive file (bounds one transaction and one file).
const BATCH: usize = 10_000;
/// How often the daemon applies the policy.
const EVERY: Duration = Duration::from_secs(3600);

/// When audit entries leave the state file, and where they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub max_age: chrono::TimeDelta,
    pub max_entries: u64,
    pub archive_dir: PathBuf,
}

/// `serve`'s retention flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RetentionArgs {
    /// Days an audit entry stays in the state file before it is archived.
    #[arg(long, env = "RINGMASTER_AUDIT_RETENTION_DAYS", default_value_t = 90)]
    pub audit_retention_days: u32,
    /// Most audit entries kept in the state file; older ones are archived first.
    #[arg(long, env = "RINGMASTER_AUDIT_MAX_ENTRIES", default_value_t = 1_000_000)]
    pub audit_max_entries: u64,
    /// Where archived entries go (JSON Lines, 0600). Default: `audit-archive` next to
    /// the state file.
    #[arg(long, env = "RINGMASTER_AUDIT_ARCHIVE_DIR")]
    pub audit_archive_dir: Option<PathBuf>,
}

impl RetentionArgs {
    pub fn policy(&self, state: &Path) -> RetentionPolicy {
        let dir = self.audit_archive_dir.clone().unwrap_or_else(|| {
            state
                .parent()
                .map_or_else(|| PathBuf::from("audit-archive"), |p| p.join("audit-archive"))
        });
        RetentionPolicy {
            max_age: chrono::TimeDelta::days(i64::from(self.audit_retention_days)),
            max_entries: self.audit_max_entries,
            archive_dir: dir,
        }
    }
}

/// What one pass archived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Archived {
    pub entries: u64,
    pub files: Vec<PathBuf>,
}

impl Store {
    /// The archive mark: every entry with an id at or below it has been archived.
    pub fn audit_archived_up_to(&self) -> Result<i64, StoreError> {
        self.conn()
            .query_row("SELECT up_to FROM audit_archived WHERE id = 1", [], |r| r.get(0))
            .map_err(sql("reading the audit archive mark"))
    }

    /// Archives and removes what `policy` says is due at `now`, in batches of
    /// [`BATCH`] entries per file.
    pub fn apply_retention(&self, policy: &RetentionPolicy, now: DateTime<Utc>) -> Result<Archived, StoreError> {
        let mut done = Archived::default();
        loop {
            let Some(up_to) = self.due(policy, now)? else {
                return Ok(done);
            };
            let (n, file) = self.archive_batch(up_to, &policy.archive_dir, now)?;
            if n == 0 {
                return Ok(done);
            }
            done.entries += n;
            done.files.push(file);
        }
    }

    /// The highest id due for archiving: older than the age limit, or beyond the count.
    fn due(&self, p: &RetentionPolicy, now: DateTime<Utc>) -> Result<Option<i64>, StoreError> {
        let conn = self.conn();
        let cutoff = time_to_sql(&(now - p.max_age));
        let by_age: Option<i64> = conn
            .query_row("SELECT max(id) FROM audit WHERE at < ?1", [cutoff], |r| r.get(0))
            .map_err(sql("finding audit entries due for archiving"))?;
        let by_count: Option<i64> = conn
            .query_row(
                "SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?1",
                [i64::try_from(p.max_entries).unwrap_or(i64::MAX)],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(sql("finding audit entries due for archiving"))?;
        Ok(by_age.max(by_count))
    }

    /// Archives the entries after the mark up to `up_to` (at most [`BATCH`]): written to
    /// a file first, then removed with the mark moved, in one transaction.
    fn archive_batch(&self, up_to: i64, dir: &Path, now: DateTime<Utc>) -> Result<(u64, PathBuf), StoreError> {
        let mark = self.audit_archived_up_to()?;
        let rows: Vec<(i64, String)> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare(
                    "SELECT id, json_object('id', id, 'at', at, 'actor', actor, 'action', action,
                            'rolloutId', rollout_id, 'subject', subject, 'reason', reason,
                            'detail', json(detail))
                     FROM audit WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3",
                )
                .map_err(sql("reading audit entries to archive"))?;
            stmt.query_map(params![mark, up_to, clamp_i64(BATCH)], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(sql("reading audit entries to archive"))?
        };
        let (Some(first), Some(last)) = (rows.first().map(|r| r.0), rows.last().map(|r| r.0)) else {
            return Ok((0, PathBuf::new()));
        };
        let file = dir.join(format!("audit-{first:012}-{last:012}.jsonl"));
        write_archive(&file, rows.iter().map(|r| r.1.as_str()))?;
        let file_text = file.display().to_string();
        let removed = self.write("archiving audit entries", |tx| {
            tx.execute(
                "UPDATE audit_archived SET up_to = ?1, file = ?2, at = ?3 WHERE id = 1",
                params![last, file_text, time_to_sql(&now)],
            )
            .map_err(sql("moving the audit archive mark"))?;
            tx.execute("DELETE FROM audit WHERE id > ?1 AND id <= ?2", params![mark, last])
                .map_err(sql("removing archived audit entries"))
        })?;
        Ok((removed as u64, file))
    }

    /// The time of the oldest entry still in the file (for `state check` and tests).
    pub fn oldest_audit(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let t: Option<String> = self
            .conn()
            .query_row("SELECT min(at) FROM audit", [], |r| r.get(0))
            .map_err(sql("reading the oldest audit entry"))?;
        t.as_deref().map(time_from_sql).transpose()
    }
}

/// Writes the lines to `file` through a temporary file: fsynced, 0600, renamed into
/// place, so an archive file is whole or absent.
fn write_archive<'a>(file: &Path, lines: impl Iterator<Item = &'a str>) -> Result<(), StoreError> {
    let io = |source: std::io::Error| StoreError::Permissions {
        path: file.to_path_buf(),
        source,
    };
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = sibling(file, ".tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    let mut w = std::io::BufWriter::new(&mut f);
    for line in lines {
        w.write_all(line.as_bytes()).map_err(io)?;
        w.write_all(b"\n").map_err(io)?;
    }
    w.flush().map_err(io)?;
    drop(w);
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, file).map_err(io)?;
    if let Some(dir) = file.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The daemon's retention job: applies `policy` at start and every hour until `stop`.
/// A failure is logged (ERROR) and counted; the next pass tries again.
pub async fn run(
    store: Arc<Store>,
    policy: RetentionPolicy,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    metrics.describe(
        "ringmaster_audit_archived_total",
        "counter",
        "Audit entries moved from the state file to archive files.",
    );
    loop {
        let (s, p, now) = (store.clone(), policy.clone(), clock.now());
        match tokio::task::spawn_blocking(move || s.apply_retention(&p, now)).await {
            Ok(Ok(a)) if a.entries > 0 => {
                metrics.add("ringmaster_audit_archived_total", &[], a.entries as f64);
                tracing::info!(entries = a.entries, files = ?a.files, "archived old audit entries");
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "audit retention failed; it runs again in an hour"),
            Err(e) => tracing::error!(error = %e, "audit retention failed; it runs again in an hour"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
