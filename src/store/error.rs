//! The one error type of the store. Every variant names the action that failed, so a
//! log line says what ringmaster was doing, and [`StoreError::label`] gives a short,
//! fixed string for a metric label.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened or created (missing directory, permissions, not a
    /// SQLite file).
    #[error("opening the state file {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A pragma the store's durability depends on could not be set, or SQLite
    /// refused it (WAL on a file system that can't do shared memory, for example).
    #[error("configuring the state file ({setting}): {message}")]
    Configure { setting: &'static str, message: String },
    /// A forward migration failed; its transaction was rolled back, the file is as
    /// it was at `from`.
    #[error("migrating the state file from schema v{from} to v{to}: {source}")]
    Migrate {
        from: u32,
        to: u32,
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer ringmaster: refusing it is safer than
    /// misreading it.
    #[error("the state file has schema v{found}; this ringmaster knows up to v{supported}")]
    SchemaTooNew { found: u32, supported: u32 },
    /// A statement failed; `action` says which store call it was part of. Nothing of
    /// that call's transaction was committed.
    #[error("{action}: {source}")]
    Sqlite {
        action: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// A stored value could not be decoded (a timestamp or JSON that the store
    /// itself wrote): the file was changed by something else.
    #[error("the state file holds a bad {what}: {message}")]
    Corrupt { what: &'static str, message: String },
    #[error("intent {id} is not in the state file")]
    IntentNotFound { id: i64 },
    /// An intent keeps its first outcome: closing it again with another one means
    /// two parts of the daemon disagree about what happened.
    #[error("intent {id} was already closed as {outcome:?}")]
    IntentClosed { id: i64, outcome: String },
    /// The file fails SQLite's integrity check (or is not a SQLite file at all): the
    /// store refuses it rather than take what it can read for the whole state.
    #[error(
        "the state file {path} is damaged ({}); ringmaster will not start on it. Stop \
         every ringmaster using it, then restore a backup: `ringmaster state restore --from BACKUP --state {path}` \
         (backups are made with `ringmaster state backup`). Without a backup, move the file away to start with \
         no state: unfinished rollouts are then forgotten, so check their clusters in Azure first",
        problems.join("; ")
    )]
    Damaged { path: PathBuf, problems: Vec<String> },
    /// Copying the file with SQLite's online backup (`ringmaster state backup|restore`).
    #[error("copying {from} to {to}: {message}")]
    Backup {
        from: PathBuf,
        to: PathBuf,
        message: String,
    },
    #[error("setting the permissions of {path}: {source}")]
    Permissions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A step was about to start on a cluster another rollout holds (`store::claims`):
    /// the save that records its intent is refused, so nothing is sent.
    #[error("cluster {cluster} is held by rollout {holder}: rollout {rollout} may not start a step on it")]
    ClaimHeld {
        cluster: String,
        holder: String,
        rollout: String,
    },
    /// Another process holds the state file's lock (`store::lock`): a second daemon
    /// would drive the same rollouts, a restore would pull the file from under it.
    #[error(
        "the state file {state} is in use by another ringmaster ({holder}); stop it first, or give this one \
         another --state"
    )]
    Locked { state: PathBuf, holder: String },
    /// The lock file itself could not be opened or locked.
    #[error("locking the state file through {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `state check` on a file that is no ringmaster state (empty, or no schema): it
    /// says so instead of creating a schema in it.
    #[error("{path} is not a ringmaster state file: {why}")]
    NotAStateFile { path: PathBuf, why: String },
    /// `state check` on a file of an older schema: the daemon migrates it when it opens
    /// it; the check, read-only, migrates nothing and so cannot decode it as the daemon will.
    #[error(
        "{path} has schema v{found}, which `serve` migrates to v{} when it starts; `state check` is read-only \
         and reads v{} only: check a backup of it (`ringmaster state backup`) once `serve` has migrated it",
        super::SCHEMA_VERSION,
        super::SCHEMA_VERSION
    )]
    SchemaOld { path: PathBuf, found: u32 },
    /// The `-shm` index says the WAL holds commits the main file lacks, and the `-wal`
    /// file is missing or too short to hold them (`files::lost_wal`).
    #[error(
        "{path} looks like it lost its WAL: {why}. The commits since the last checkpoint are not in the main \
         file; put the -wal file back beside it if you have it, else restore a backup \
         (`ringmaster state restore`), or delete the -shm file to go on with the main file as it is"
    )]
    LostWal { path: PathBuf, why: String },
    #[error("reading the size of the state file {path}: {source}")]
    Stat {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// A short fixed label for metrics (`store_errors_total{error="..."}`).
    pub fn label(&self) -> &'static str {
        match self {
            StoreError::Open { .. } => "open",
            StoreError::Configure { .. } => "configure",
            StoreError::Migrate { .. } => "migrate",
            StoreError::SchemaTooNew { .. } => "schema_too_new",
            StoreError::Sqlite { action, .. } => action,
            StoreError::Corrupt { .. } => "corrupt",
            StoreError::IntentNotFound { .. } => "intent_not_found",
            StoreError::IntentClosed { .. } => "intent_closed",
            StoreError::Stat { .. } => "stat",
            StoreError::Damaged { .. } => "damaged",
            StoreError::Backup { .. } => "backup",
            StoreError::Permissions { .. } => "permissions",
            StoreError::Locked { .. } => "locked",
            StoreError::ClaimHeld { .. } => "claim_held",
            StoreError::Lock { .. } => "lock",
            StoreError::NotAStateFile { .. } => "not_a_state_file",
            StoreError::SchemaOld { .. } => "schema_old",
            StoreError::LostWal { .. } => "lost_wal",
        }
    }

    /// True when the failure was a constraint violation (a UNIQUE, CHECK or foreign
    /// key): the caller sent something the schema forbids, retrying won't help.
    pub fn is_constraint(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } if e.code == rusqlite::ErrorCode::ConstraintViolation
        )
    }
}

/// Attaches the action to a rusqlite error: `stmt.execute(..).map_err(sql("saving a rollout"))`.
pub(crate) fn sql(action: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { action, source }
}
