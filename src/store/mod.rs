//! Durable state: one SQLite file (WAL, `synchronous=FULL`) holding every rollout's
//! state, the intents of mutating ARM calls, the audit log, approvals, and which
//! rollout holds which cluster (claims).
//!
//! Why SQLite: the daemon can be SIGKILLed at any instant, and a committed
//! transaction in WAL mode with `synchronous=FULL` survives that (and a power cut);
//! an uncommitted one vanishes whole. So each store call is one transaction, and
//! calls that must go together ([`Store::save_rollout_with_audit`]) share one.
//!
//! The API is synchronous and the connection sits behind a mutex: calls are short,
//! and the async runtime wraps them in `spawn_blocking` where latency matters. The
//! store does not interpret the engine's state (it is JSON text to it); it only
//! guarantees that what was committed comes back, and that the append-only parts
//! (audit log, intents, approvals) stay append-only, enforced by triggers in the
//! schema rather than by convention.

mod approvals;
mod audit;
pub mod claims;
mod codec;
mod error;
mod files;
mod intents;
mod lock;
pub mod retention;
mod rollouts;
mod schema;
mod writer;

pub use approvals::{Approval, ApprovalOutcome, Rejection};
pub use audit::{AuditEntry, AuditFilter, AuditQuery};
pub use claims::{Claim, ClaimChanges, ClaimOutcome, ClaimWait, Claimant};
pub use error::StoreError;
pub use files::{CheckReport, restore};
pub use intents::{Intent, IntentOutcome, IntentRow};
pub use lock::{StateLock, lock_path};
pub use retention::{RetentionArgs, RetentionPolicy};
pub use rollouts::RolloutRecord;
pub use schema::SCHEMA_VERSION;
pub use writer::{StoreWriter, WriterGone};

use error::sql;
use rusqlite::{Connection, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How long a call waits for another process holding the write lock (a CLI reading
/// the file, a second daemon by mistake) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// After a checkpoint the WAL file is truncated to at most this size, so a burst of
/// large writes doesn't leave a large file behind.
const JOURNAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;

/// The durable store. `Send + Sync`; share it in an `Arc`.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    /// `None` for an in-memory store.
    path: Option<PathBuf>,
    /// A daemon's store holds the file's lock for its whole life ([`Store::open_daemon`]).
    lock: Option<StateLock>,
    /// Checkpoint after every commit batch (a daemon's store): see [`Store::open_daemon`].
    checkpoint_each_commit: bool,
    /// Commits the writer thread made since its last checkpoint.
    uncheckpointed: AtomicBool,
}

thread_local! {
    /// Set on the [`StoreWriter`] thread: its commits are checkpointed once its queue is
    /// empty (one checkpoint per batch), not one by one.
    static ON_WRITER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Sizes of the state file, for the benchmark and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    pub page_size: u64,
    pub page_count: u64,
    /// Pages inside the file that hold nothing (reused before the file grows).
    pub freelist_count: u64,
    /// Bytes of the main file on disk (`page_size * page_count` for an in-memory store).
    pub file_bytes: u64,
    /// Bytes of the `-wal` file (committed work not yet checkpointed into the main file).
    pub wal_bytes: u64,
}

impl Store {
    /// Opens the state file, creating it if missing (its directory must exist), and
    /// brings its schema up to date.
    ///
    /// The file (and its `-wal` and `-shm`, which SQLite creates with the main file's
    /// mode) is private to the owner: 0600, tightened if it was looser. A file that
    /// fails `PRAGMA quick_check`, or is not a SQLite file, is refused with
    /// [`StoreError::Damaged`], which says how to recover.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        files::create_private(&path);
        let conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        files::check(&conn, &path)?;
        let store = Self::setup(conn, Some(path.clone()))?;
        files::tighten(&path)?;
        Ok(store)
    }

    /// Opens the state file for a process that writes rollout state (`serve`, `run`, the
    /// demo): first takes the file's lock ([`StateLock`]), so a second such process is
    /// refused before it writes anything, and holds it as long as the store lives. A
    /// file that looks like it lost its WAL ([`files::lost_wal`]) is refused: started on
    /// it, a daemon took the older main file for the whole state (a new file: none).
    ///
    /// The store then checkpoints (`PRAGMA wal_checkpoint(PASSIVE)`) after every commit
    /// batch: committed data is durable in the WAL alone, but a main file copied or kept
    /// without its `-wal` used to be an empty store (the schema and every rollout were
    /// still in the WAL). The [`StoreWriter`] thread checkpoints when its queue is empty,
    /// so a burst of saves pays one checkpoint (an fsync of the main file) and a lone
    /// save one, after its caller has its answer; other commits (the API's) checkpoint
    /// at once. PASSIVE never waits for a reader (an online backup); what it could not
    /// copy goes with the next one. Cost: `tests/store.rs`'s `checkpoint_cost`.
    pub fn open_daemon(path: impl AsRef<Path>, role: &str) -> Result<Store, StoreError> {
        let path = path.as_ref();
        let lock = StateLock::acquire(path, role)?;
        // Before SQLite opens it: opening resets the `-shm`, the only evidence.
        if let Some(why) = files::lost_wal(path) {
            return Err(StoreError::LostWal {
                path: path.to_path_buf(),
                why,
            });
        }
        let mut store = Store::open(path)?;
        store.lock = Some(lock);
        store.checkpoint_each_commit = true;
        // The schema a new file just got is in the WAL only: into the main file with it.
        store.checkpoint_passive();
        Ok(store)
    }

    /// Opens the file read-only (`SQLITE_OPEN_READ_ONLY`), for `state check`: no schema
    /// is created, nothing is migrated or written. Refuses, with what is wrong, a file
    /// that is not a SQLite database, damaged, or not a ringmaster state file
    /// (empty, or without a schema), and one that looks like it lost its WAL
    /// ([`files::lost_wal`]).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(why) = files::lost_wal(&path) {
            return Err(StoreError::LostWal { path, why });
        }
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let opened = match files::immutable_uri(&path) {
            // No `-wal` and no `-shm`: no process has the file open in WAL mode. Read as
            // immutable, SQLite creates neither beside it (it would for a WAL file) and
            // takes no lock; a daemon starting mid-check could at worst make the check
            // report damage, never be disturbed by it.
            Some(uri) => Connection::open_with_flags(uri, flags | rusqlite::OpenFlags::SQLITE_OPEN_URI),
            None => Connection::open_with_flags(&path, flags),
        };
        let conn = opened.map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| StoreError::Configure {
            setting: "busy_timeout",
            message: e.to_string(),
        })?;
        files::check(&conn, &path)?;
        let version = schema::stored_version(&conn).map_err(sql("reading the schema version"))?;
        match version {
            None => {
                let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                return Err(StoreError::NotAStateFile {
                    path,
                    why: if bytes == 0 {
                        "it is empty (0 bytes)".into()
                    } else {
                        format!("it is a SQLite database of {bytes} bytes without ringmaster's schema")
                    },
                });
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::SchemaTooNew {
                    found: v,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(v) if v < SCHEMA_VERSION => return Err(StoreError::SchemaOld { path, found: v }),
            Some(_) => {}
        }
        Ok(Store {
            conn: Mutex::new(conn),
            path: Some(path),
            lock: None,
            checkpoint_each_commit: false,
            uncheckpointed: AtomicBool::new(false),
        })
    }

    /// A store that vanishes when dropped: for unit tests only (no WAL, no durability).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: PathBuf::from(":memory:"),
            source,
        })?;
        Self::setup(conn, None)
    }

    fn setup(mut conn: Connection, path: Option<PathBuf>) -> Result<Store, StoreError> {
        let configure = |setting: &'static str| {
            move |e: rusqlite::Error| StoreError::Configure {
                setting,
                message: e.to_string(),
            }
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(configure("busy_timeout"))?;
        if path.is_some() {
            // WAL: readers don't block the writer, and a commit is one append + fsync.
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                .map_err(configure("journal_mode"))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Configure {
                    setting: "journal_mode",
                    message: format!("SQLite kept journal mode {mode:?} instead of WAL"),
                });
            }
            conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
                .map_err(configure("journal_size_limit"))?;
        }
        // FULL: the WAL is fsynced at every commit, so a commit survives power loss,
        // not only a process kill (NORMAL in WAL mode may lose the last commits).
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(configure("synchronous"))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(configure("foreign_keys"))?;
        let fk: bool = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .map_err(configure("foreign_keys"))?;
        if !fk {
            return Err(StoreError::Configure {
                setting: "foreign_keys",
                message: "SQLite was built without foreign key support".into(),
            });
        }
        schema::migrate(&mut conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
            path,
            lock: None,
            checkpoint_each_commit: false,
            uncheckpointed: AtomicBool::new(false),
        })
    }

    /// The file this store writes, `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The connection. A panic in another thread while it held the lock can't have
    /// left a half-done transaction behind (rusqlite rolls back on drop), so a
    /// poisoned lock is safe to take over.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in one IMMEDIATE transaction (the write lock is taken at BEGIN, so two
    /// writers never deadlock upgrading a read lock) and commits it; on any error
    /// nothing of it is kept.
    fn write<T>(
        &self,
        action: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(action))?;
        let out = f(&tx)?;
        tx.commit().map_err(sql(action))?;
        if self.checkpoint_each_commit {
            if ON_WRITER.get() {
                self.uncheckpointed.store(true, Ordering::Relaxed);
            } else {
                passive_checkpoint(&conn);
            }
        }
        Ok(out)
    }

    fn checkpoint_passive(&self) {
        passive_checkpoint(&self.conn());
    }

    /// The writer thread's end of a batch: checkpoints its commits since the last one.
    pub(crate) fn end_of_batch(&self) {
        if self.uncheckpointed.swap(false, Ordering::Relaxed) {
            self.checkpoint_passive();
        }
    }

    /// Whether this store holds the state file's lock (a daemon's store).
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }

    /// Sizes of the state file. Cheap: two pragmas and two `stat` calls.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let conn = self.conn();
        let pragma = |name: &str| -> Result<u64, StoreError> {
            let v: i64 = conn
                .pragma_query_value(None, name, |r| r.get(0))
                .map_err(sql("reading page statistics"))?;
            Ok(u64::try_from(v).unwrap_or(0))
        };
        let (page_size, page_count, freelist_count) =
            (pragma("page_size")?, pragma("page_count")?, pragma("freelist_count")?);
        let (file_bytes, wal_bytes) = match &self.path {
            None => (page_size * page_count, 0),
            Some(path) => {
                let size = |p: &Path| match std::fs::metadata(p) {
                    Ok(m) => Ok(m.len()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
                    Err(source) => Err(StoreError::Stat {
                        path: p.to_path_buf(),
                        source,
                    }),
                };
                let mut wal = path.clone().into_os_string();
                wal.push("-wal");
                (size(path)?, size(Path::new(&wal))?)
            }
        };
        Ok(StoreStats {
            page_size,
            page_count,
            freelist_count,
            file_bytes,
            wal_bytes,
        })
    }

    /// Bytes on disk: the main file plus its WAL (both are "the state file" to an
    /// operator sizing a volume).
    pub fn file_size(&self) -> Result<u64, StoreError> {
        let s = self.stats()?;
        Ok(s.file_bytes + s.wal_bytes)
    }

    /// Copies the WAL into the main file and truncates the WAL: for a clean shutdown
    /// and before measuring the file. Committed data is durable without it.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(sql("checkpointing the WAL"))
    }

    /// Caps the file at `pages` pages (`PRAGMA max_page_count`, this connection only):
    /// a write that would grow it further fails as on a full disk. Returns the cap now
    /// in force (SQLite never sets it below the current size). Tests use it to make
    /// writes fail on demand and come back.
    pub fn set_max_pages(&self, pages: u64) -> Result<u64, StoreError> {
        let v: i64 = self
            .conn()
            .pragma_update_and_check(None, "max_page_count", pages as i64, |r| r.get(0))
            .map_err(sql("setting max_page_count"))?;
        Ok(u64::try_from(v).unwrap_or(0))
    }

    /// Checks the file's integrity (`PRAGMA quick_check`): `Ok(())` or the problems.
    pub fn quick_check(&self) -> Result<Result<(), Vec<String>>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("PRAGMA quick_check")
            .map_err(sql("checking the state file"))?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(sql("checking the state file"))?;
        Ok(if rows == ["ok"] { Ok(()) } else { Err(rows) })
    }
}

/// Copies what it can of the WAL into the main file without waiting for anyone. A
/// failure is only logged: the commit before it is durable in the WAL either way.
fn passive_checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "checkpointing the state file");
    }
}

#[cfg(test)]
mod claim_tests;
#[cfg(test)]
mod tests;
