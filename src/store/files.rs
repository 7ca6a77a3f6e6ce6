//! The state file as a file: who may read it, whether it is whole, and copies of it.
//!
//! - Private: the file holds who approved what and the rollout's state; it is created
//!   0600, and an existing file (with its `-wal` and `-shm`) is tightened to 0600.
//! - Whole: `PRAGMA quick_check` at open. A damaged file read as far as it goes looked
//!   like an empty one (no rollouts, nothing resumed, `/readyz` ready); now it is refused.
//! - Copies: SQLite's online backup API, which copies a consistent snapshot even while
//!   a daemon writes (`ringmaster state backup`), and restores through a temporary
//!   file renamed into place, so a failed restore leaves the old file as it was.

use super::{Store, StoreError};
use rusqlite::Connection;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Pages copied per backup step (the source is locked only during a step).
const BACKUP_PAGES_PER_STEP: std::ffi::c_int = 1024;

/// Creates `path` empty with mode 0600 if it does not exist (SQLite would create it with
/// the umask's mode, usually 0644). When it can't be created (missing directory, no
/// permission), SQLite's own open fails next with the error callers expect.
pub(super) fn create_private(path: &Path) {
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
}

/// The file with `suffix` appended (`state.db-wal`).
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Sets the file, its `-wal` and `-shm` to 0600 where they are looser.
pub(super) fn tighten(path: &Path) -> Result<(), StoreError> {
    for p in [path.to_path_buf(), sibling(path, "-wal"), sibling(path, "-shm")] {
        let Ok(meta) = std::fs::metadata(&p) else { continue };
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
                StoreError::Permissions {
                    path: p.clone(),
                    source,
                }
            })?;
            tracing::warn!(file = %p.display(), "the state file was readable by others; it is now 0600");
        }
    }
    Ok(())
}

/// `PRAGMA quick_check` on a just-opened connection: [`StoreError::Damaged`] when it
/// finds problems or the file is not a SQLite database.
pub(super) fn check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let damaged = |problems: Vec<String>| StoreError::Damaged {
        path: path.to_path_buf(),
        problems,
    };
    let rows: Result<Vec<String>, rusqlite::Error> = conn
        .prepare("PRAGMA quick_check(20)")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect());
    match rows {
        Ok(rows) if rows == ["ok"] => Ok(()),
        Ok(rows) => Err(damaged(rows)),
        Err(rusqlite::Error::SqliteFailure(e, msg))
            if matches!(
                e.code,
                rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
            ) =>
        {
            Err(damaged(vec![msg.unwrap_or_else(|| e.to_string())]))
        }
        Err(source) => Err(StoreError::Open {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// What `ringmaster state check` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub schema_version: u32,
    pub rollouts: usize,
    pub unfinished: Vec<String>,
    pub audit_entries: i64,
    pub file_bytes: u64,
}

impl Store {
    /// A full `PRAGMA integrity_check` (slower than the quick check done at open) and a
    /// summary of what the file holds.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let conn = self.conn();
        let path = self.path.clone().unwrap_or_else(|| PathBuf::from(":memory:"));
        let rows: Vec<String> = conn
            .prepare("PRAGMA integrity_check(20)")
            .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
            .map_err(super::error::sql("checking the state file"))?;
        if rows != ["ok"] {
            return Err(StoreError::Damaged { path, problems: rows });
        }
        let schema_version: u32 = conn
            .query_row("SELECT version FROM schema_version WHERE id = 1", [], |r| r.get(0))
            .map_err(super::error::sql("reading the schema version"))?;
        let audit_entries: i64 = conn
            .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
            .map_err(super::error::sql("counting audit entries"))?;
        drop(conn);
        let all = self.load_rollouts()?;
        let unfinished = all
            .iter()
            .filter(|r| !matches!(r.status.as_str(), "succeeded" | "halted" | "aborted"))
            .map(|r| r.id.clone())
            .collect();
        Ok(CheckReport {
            schema_version,
            rollouts: all.len(),
            unfinished,
            audit_entries,
            file_bytes: self.file_size()?,
        })
    }

    /// Copies a consistent snapshot of the file to `to` (created 0600; must not exist),
    /// with SQLite's online backup API: safe while a daemon writes.
    pub fn backup_to(&self, to: &Path) -> Result<(), StoreError> {
        let from = self.path.clone().unwrap_or_else(|| PathBuf::from(":memory:"));
        let fail = |message: String| StoreError::Backup {
            from: from.clone(),
            to: to.to_path_buf(),
            message,
        };
        if to.exists() {
            return Err(fail("the destination exists; remove it or pick another name".into()));
        }
        create_private(to);
        let mut dst = Connection::open(to).map_err(|e| fail(e.to_string()))?;
        let conn = self.conn();
        let backup = rusqlite::backup::Backup::new(&conn, &mut dst).map_err(|e| fail(e.to_string()))?;
        backup
            .run_to_completion(BACKUP_PAGES_PER_STEP, std::time::Duration::from_millis(10), None)
            .map_err(|e| fail(e.to_string()))?;
        Ok(())
    }
}

/// Replaces the state file at `state` by the backup at `from`, after checking the
/// backup. Only while no daemon uses `state`: it takes the file's lock first
/// ([`StoreError::Locked`] naming the daemon otherwise) and holds it to the end, so no
/// daemon starts on the file half-way either. (A daemon under the restore kept its
/// open files, now deleted ones, stayed ready, and lost all it saved after.) The copy goes to `state.restore` and
/// is renamed into place, and the old `-wal` and `-shm` are removed (they belong to the
/// old file and would be replayed over the restored one).
pub fn restore(from: &Path, state: &Path) -> Result<CheckReport, StoreError> {
    let _lock = super::StateLock::acquire(state, "state restore")?;
    if !from.exists() {
        return Err(StoreError::Backup {
            from: from.to_path_buf(),
            to: state.to_path_buf(),
            message: "the backup does not exist".into(),
        });
    }
    let report = Store::open(from)?.check()?;
    let tmp = sibling(state, ".restore");
    let _ = std::fs::remove_file(&tmp);
    Store::open(from)?.backup_to(&tmp)?;
    for stale in [sibling(state, "-wal"), sibling(state, "-shm")] {
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StoreError::Permissions { path: stale, source }),
        }
    }
    std::fs::rename(&tmp, state).map_err(|e| StoreError::Backup {
        from: tmp.clone(),
        to: state.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(report)
}

/// `file:///abs/path?immutable=1` when neither `-wal` nor `-shm` is beside `path` (see
/// `Store::open_read_only`), else `None`.
pub(super) fn immutable_uri(path: &Path) -> Option<String> {
    if sibling(path, "-wal").exists() || sibling(path, "-shm").exists() {
        return None;
    }
    let mut url = url::Url::from_file_path(std::path::absolute(path).ok()?).ok()?;
    url.set_query(Some("immutable=1"));
    Some(url.to_string())
}

/// Whether the file looks like it lost its WAL, and why: the `-shm` index (which
/// survives a SIGKILL: it is a shared mapping of a file) says the WAL holds frames
/// not yet copied into the main file (`mxFrame > nBackfill`), and the `-wal` beside it
/// is missing, shorter than those frames, or another WAL (its salt differs). Those
/// frames are commits the main file lacks: reading it alone would show an older state
/// (a new file: no state at all) as if it were the whole.
///
/// Why this heuristic: it uses SQLite's own bookkeeping, so it has no false positive
/// beside a live daemon (frames are written to the WAL before the index counts them),
/// after a clean stop (the last close checkpoints and removes both files), or after a
/// crash with the WAL in place. It cannot see a main file copied alone, without its
/// `-shm`: nothing beside it tells what it lacks. For that case the daemon checkpoints
/// after every commit ([`Store::open_daemon`]), so the main file alone is at most the
/// commit in flight behind. `None` when nothing says the WAL is lost.
pub(super) fn lost_wal(path: &Path) -> Option<String> {
    let mut shm = [0u8; 136];
    {
        use std::io::Read;
        std::fs::File::open(sibling(path, "-shm"))
            .ok()?
            .read_exact(&mut shm)
            .ok()?;
    }
    // Two copies of the 48-byte index header, then the checkpoint info (nBackfill first);
    // all native-endian. Copies that differ are a write in progress: no verdict.
    let hdr = &shm[..48];
    if shm[48..96] != *hdr || hdr[12] != 1 {
        return None;
    }
    let u32_at = |b: &[u8], at: usize| u32::from_ne_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]));
    let raw_page = u32::from(u16::from_ne_bytes([hdr[14], hdr[15]]));
    let page_size = u64::from(if raw_page == 1 { 65_536 } else { raw_page });
    let (frames, backfilled) = (u32_at(hdr, 16), u32_at(&shm, 96));
    if frames <= backfilled {
        return None;
    }
    let pending = frames - backfilled;
    let wal_path = sibling(path, "-wal");
    let Ok(wal) = std::fs::File::open(&wal_path) else {
        return Some(format!(
            "its -shm says {pending} WAL frames are not in the main file yet, and there is no -wal file"
        ));
    };
    let len = wal.metadata().map(|m| m.len()).unwrap_or(0);
    let needed = 32 + u64::from(frames) * (24 + page_size);
    if len < needed {
        return Some(format!(
            "its -shm says the WAL holds {frames} frames ({pending} not in the main file yet), and the -wal file \
             has {len} bytes, fewer than the {needed} they take"
        ));
    }
    let mut head = [0u8; 32];
    if std::io::Read::read_exact(&mut &wal, &mut head).is_ok() && head[16..24] != hdr[32..40] {
        return Some(format!(
            "its -shm says {pending} WAL frames are not in the main file yet, and the -wal file beside it is \
             another WAL (its salt differs)"
        ));
    }
    None
}
