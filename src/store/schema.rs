//! The schema and its forward migrations. The version lives in a one-row
//! `schema_version` table; each migration runs in its own IMMEDIATE transaction
//! together with the version bump, so a crash mid-migration leaves the file at the
//! previous version, whole. A file newer than this binary is refused rather than
//! misread. Migrations are append-only: never edit a released one, add the next.
//!
//! Design notes on v1:
//! - `STRICT` tables, so a wrong type is an error, not a silent conversion.
//! - Times are fixed-width RFC 3339 text (see `codec`): comparable in SQL.
//! - JSON columns are `CHECK (json_valid(..))`: the store doesn't interpret them,
//!   but it refuses to persist text nobody could read back after a restart.
//! - `audit` and `intents` ids are `AUTOINCREMENT`, so an id is never reused and a
//!   reader can page with "everything after id N".
//! - Triggers make the audit log append-only, and intents and approvals never
//!   deleted; a closed intent's outcome is final; an approval can only go from live
//!   to not live.

use super::StoreError;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

/// `(version, SQL)`; versions start at 1 and have no gaps.
const MIGRATIONS: &[(u32, &str)] = &[(1, V1), (2, V2), (3, V3), (4, V4)];

/// The newest schema this binary knows.
pub const SCHEMA_VERSION: u32 = 4;

/// v4: claims (`store::claims`). One daemon runs rollouts of several policies; a
/// cluster belongs to at most one of them from its baseline to its end (the primary
/// key says so), and the rollouts that wait for it queue in `claim_waits` (highest
/// priority first, then first come).
const V4: &str = r#"
CREATE TABLE claims (
    cluster    TEXT PRIMARY KEY,
    rollout_id TEXT NOT NULL,
    policy     TEXT NOT NULL,
    priority   INTEGER NOT NULL,
    since      TEXT NOT NULL,
    doing      TEXT NOT NULL
) STRICT;
CREATE INDEX claims_by_rollout ON claims (rollout_id);
CREATE TABLE claim_waits (
    cluster    TEXT NOT NULL,
    rollout_id TEXT NOT NULL,
    policy     TEXT NOT NULL,
    priority   INTEGER NOT NULL,
    since      TEXT NOT NULL,
    seen_at    TEXT NOT NULL,
    PRIMARY KEY (cluster, rollout_id)
) STRICT;
CREATE INDEX claim_waits_by_rollout ON claim_waits (rollout_id);
"#;

/// v3: a rollout's state in parts, so that a save writes what changed
/// (`engine::stored`): `rollouts.state_json` holds the head, `rollout_parts` the rest,
/// each part replaced only when it changed. Rows saved before v3 keep their whole
/// state in `state_json` and no parts; they read as they are, and the next save
/// writes them in parts.
const V3: &str = r#"
CREATE TABLE rollout_parts (
    rollout_id TEXT NOT NULL REFERENCES rollouts(id),
    part       INTEGER NOT NULL CHECK (part >= 0),
    json       TEXT NOT NULL CHECK (json_valid(json)),
    PRIMARY KEY (rollout_id, part)
) STRICT;
"#;

/// v2: the audit log gets a retention path. Entries are still never updated, and
/// deleted only up to the archive mark, which only the retention job moves, and only
/// after the entries are written to an archive file (`store::retention`). The mark only
/// moves forward; the trigger refuses any other delete.
const V2: &str = r#"
CREATE TABLE audit_archived (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    up_to INTEGER NOT NULL CHECK (up_to >= 0),
    file  TEXT NOT NULL,
    at    TEXT NOT NULL
) STRICT;
INSERT INTO audit_archived (id, up_to, file, at) VALUES (1, 0, '', '');
CREATE TRIGGER audit_archived_forward BEFORE UPDATE ON audit_archived
WHEN NEW.id <> OLD.id OR NEW.up_to < OLD.up_to
BEGIN SELECT RAISE(ABORT, 'the audit archive mark only moves forward'); END;
CREATE TRIGGER audit_archived_kept BEFORE DELETE ON audit_archived
BEGIN SELECT RAISE(ABORT, 'the audit archive mark is never deleted'); END;
DROP TRIGGER audit_no_delete;
CREATE TRIGGER audit_delete_archived_only BEFORE DELETE ON audit
WHEN OLD.id > (SELECT up_to FROM audit_archived WHERE id = 1)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only; only archived entries are removed, by the retention job'); END;
"#;

const V1: &str = r#"
CREATE TABLE rollouts (
    id          TEXT PRIMARY KEY NOT NULL,
    policy_name TEXT NOT NULL,
    status      TEXT NOT NULL,
    state_json  TEXT NOT NULL CHECK (json_valid(state_json)),
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE intents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    rollout_id  TEXT NOT NULL REFERENCES rollouts(id),
    cluster     TEXT NOT NULL,
    step        INTEGER NOT NULL CHECK (step >= 0),
    kind        TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    operation   TEXT CHECK (operation IS NULL OR json_valid(operation)),
    outcome     TEXT CHECK (outcome IS NULL OR outcome <> ''),
    UNIQUE (rollout_id, cluster, step, kind)
) STRICT;
CREATE INDEX intents_open ON intents (rollout_id, id) WHERE outcome IS NULL;
CREATE TRIGGER intents_never_deleted BEFORE DELETE ON intents
BEGIN SELECT RAISE(ABORT, 'intents are never deleted'); END;
CREATE TRIGGER intents_identity_fixed
BEFORE UPDATE OF id, rollout_id, cluster, step, kind, recorded_at ON intents
BEGIN SELECT RAISE(ABORT, 'an intent''s identity never changes'); END;
CREATE TRIGGER intents_outcome_final BEFORE UPDATE ON intents WHEN OLD.outcome IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a closed intent is final'); END;

CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL CHECK (actor <> ''),
    action     TEXT NOT NULL CHECK (action <> ''),
    rollout_id TEXT,
    subject    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    detail     TEXT NOT NULL CHECK (json_valid(detail))
) STRICT;
CREATE INDEX audit_by_rollout ON audit (rollout_id, id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- Approvals and rejections of a ring's promotion to a target. `live` matters for
-- approvals only: 1 until the approval expires (noticed when the next one is
-- recorded) or a rejection revokes it. The partial unique index is what makes two
-- concurrent approvals record once.
CREATE TABLE approvals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    rollout_id  TEXT NOT NULL REFERENCES rollouts(id),
    ring        TEXT NOT NULL,
    target      TEXT NOT NULL,
    decision    TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    decided_by  TEXT NOT NULL CHECK (decided_by <> ''),
    groups_json TEXT NOT NULL CHECK (json_valid(groups_json)),
    comment     TEXT NOT NULL,
    decided_at  TEXT NOT NULL,
    expires_at  TEXT CHECK (expires_at IS NULL OR expires_at > decided_at),
    live        INTEGER NOT NULL CHECK (live IN (0, 1))
) STRICT;
CREATE UNIQUE INDEX approvals_one_live ON approvals (rollout_id, ring, target)
    WHERE decision = 'approve' AND live = 1;
CREATE INDEX approvals_by_rollout ON approvals (rollout_id, id);
CREATE TRIGGER approvals_never_deleted BEFORE DELETE ON approvals
BEGIN SELECT RAISE(ABORT, 'approvals are never deleted'); END;
CREATE TRIGGER approvals_only_end BEFORE UPDATE ON approvals
WHEN NOT (OLD.live = 1 AND NEW.live = 0 AND NEW.id = OLD.id AND NEW.rollout_id = OLD.rollout_id
          AND NEW.ring = OLD.ring AND NEW.target = OLD.target AND NEW.decision = OLD.decision
          AND NEW.decided_by = OLD.decided_by AND NEW.groups_json = OLD.groups_json
          AND NEW.comment = OLD.comment AND NEW.decided_at = OLD.decided_at
          AND NEW.expires_at IS OLD.expires_at)
BEGIN SELECT RAISE(ABORT, 'an approval only ever stops being live'); END;
"#;

/// The file's schema version, `None` when it has no `schema_version` table: a read,
/// for a read-only connection (`state check`).
pub(crate) fn stored_version(conn: &Connection) -> rusqlite::Result<Option<u32>> {
    let has_table: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'",
        [],
        |r| r.get(0),
    )?;
    if !has_table {
        return Ok(None);
    }
    conn.query_row("SELECT version FROM schema_version WHERE id = 1", [], |r| r.get(0))
        .optional()
}

/// Brings the file up to [`SCHEMA_VERSION`], one migration per transaction.
pub(crate) fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(super::error::sql("locking the state file to migrate it"))?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 id INTEGER PRIMARY KEY CHECK (id = 1),
                 version INTEGER NOT NULL
             ) STRICT;",
        )
        .map_err(super::error::sql("creating the schema_version table"))?;
        let current: u32 = tx
            .query_row("SELECT version FROM schema_version WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(super::error::sql("reading the schema version"))?
            .unwrap_or(0);
        if current > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found: current,
                supported: SCHEMA_VERSION,
            });
        }
        let Some(&(to, sql)) = MIGRATIONS.iter().find(|(v, _)| *v == current + 1) else {
            // Nothing to do; committing the (possibly new) empty version table is harmless.
            tx.commit()
                .map_err(super::error::sql("committing the schema version"))?;
            return Ok(current);
        };
        let failed = |source| StoreError::Migrate {
            from: current,
            to,
            source,
        };
        tx.execute_batch(sql).map_err(failed)?;
        tx.execute(
            "INSERT INTO schema_version (id, version) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            [to],
        )
        .map_err(failed)?;
        tx.commit().map_err(failed)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (i, (v, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v as usize, i + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
    }

    #[test]
    fn migrating_twice_is_a_no_op_and_a_newer_file_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), SCHEMA_VERSION);
        assert_eq!(migrate(&mut conn).unwrap(), SCHEMA_VERSION);
        conn.execute("UPDATE schema_version SET version = 99", []).unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(StoreError::SchemaTooNew { found: 99, .. })
        ));
    }
}
