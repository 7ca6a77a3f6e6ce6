//! Rollout records: the engine's state as JSON, one row per rollout (its head,
//! overwritten at every save) and numbered parts beside it, each replaced only when a
//! save carries it (`engine::stored` decides what goes where). The store keeps the last
//! committed state only; the history of how it got there is the audit log.

use super::codec::{time_from_sql, time_to_sql};
use super::error::sql;
use super::{AuditEntry, Store, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// Plain data of the core (`engine::stored` fills it in and reads it back); the rows are here.
pub use crate::engine::stored::RolloutRecord;

const UPSERT: &str = "INSERT INTO rollouts (id, policy_name, status, state_json, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (id) DO UPDATE SET
         policy_name = excluded.policy_name,
         status = excluded.status,
         state_json = excluded.state_json,
         updated_at = excluded.updated_at";

const SELECT: &str = "SELECT id, policy_name, status, state_json, updated_at FROM rollouts";

fn upsert(conn: &Connection, r: &RolloutRecord) -> Result<(), StoreError> {
    conn.prepare_cached(UPSERT)
        .and_then(|mut stmt| {
            stmt.execute(params![
                r.id,
                r.policy_name,
                r.status,
                r.state_json,
                time_to_sql(&r.updated_at)
            ])
        })
        .map_err(sql("saving a rollout"))?;
    if r.replace_parts {
        conn.prepare_cached("DELETE FROM rollout_parts WHERE rollout_id = ?1")
            .and_then(|mut stmt| stmt.execute([&r.id]))
            .map_err(sql("replacing a rollout's parts"))?;
    }
    for (part, json) in &r.parts {
        conn.prepare_cached(
            "INSERT INTO rollout_parts (rollout_id, part, json) VALUES (?1, ?2, ?3)
             ON CONFLICT (rollout_id, part) DO UPDATE SET json = excluded.json",
        )
        .and_then(|mut stmt| stmt.execute(params![r.id, part, json]))
        .map_err(sql("saving a rollout's part"))?;
    }
    Ok(())
}

/// Every part of the rollout, in order.
fn parts(conn: &Connection, id: &str) -> Result<Vec<(i64, String)>, StoreError> {
    conn.prepare_cached("SELECT part, json FROM rollout_parts WHERE rollout_id = ?1 ORDER BY part")
        .and_then(|mut stmt| stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(sql("loading a rollout's parts"))
}

/// Reads the columns as text first; times are decoded after, outside rusqlite's
/// row callback, so a bad time is a `Corrupt` error, not a SQLite one.
type RawRollout = (String, String, String, String, String);

fn raw(row: &Row<'_>) -> rusqlite::Result<RawRollout> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
}

fn decode(
    conn: &Connection,
    (id, policy_name, status, state_json, updated_at): RawRollout,
) -> Result<RolloutRecord, StoreError> {
    Ok(RolloutRecord {
        parts: parts(conn, &id)?,
        replace_parts: false,
        id,
        policy_name,
        status,
        state_json,
        updated_at: time_from_sql(&updated_at)?,
    })
}

impl Store {
    /// Inserts or replaces the rollout's record, in one transaction.
    pub fn save_rollout(&self, record: &RolloutRecord) -> Result<(), StoreError> {
        self.write("saving a rollout", |tx| upsert(tx, record))
    }

    /// Saves the state and appends its audit entries in one transaction: after a
    /// crash either both are there or neither, so the log never tells of a
    /// transition the state doesn't have, nor the other way round.
    pub fn save_rollout_with_audit(
        &self,
        record: &RolloutRecord,
        entries: &[AuditEntry],
    ) -> Result<Vec<i64>, StoreError> {
        self.save_rollout_with_claims(record, entries, &super::ClaimChanges::default())
    }

    /// [`Store::save_rollout_with_audit`], with the claims the save takes, checks and
    /// releases (`store::claims`) in the same transaction: a step's intent is never
    /// committed on a cluster its rollout does not hold, and a cluster's end never
    /// without its release.
    pub fn save_rollout_with_claims(
        &self,
        record: &RolloutRecord,
        entries: &[AuditEntry],
        claims: &super::ClaimChanges,
    ) -> Result<Vec<i64>, StoreError> {
        self.write("saving a rollout with its audit entries", |tx| {
            upsert(tx, record)?;
            super::claims::apply(tx, &record.id, &record.policy_name, claims, record.updated_at)?;
            entries.iter().map(|e| super::audit::insert(tx, e)).collect()
        })
    }

    /// Every rollout, ordered by id.
    pub fn load_rollouts(&self) -> Result<Vec<RolloutRecord>, StoreError> {
        let conn = self.conn();
        // One read transaction: heads and parts from the same commit, even while
        // another process writes the file.
        let conn = conn.unchecked_transaction().map_err(sql("loading rollouts"))?;
        let raws: Vec<RawRollout> = conn
            .prepare_cached(&format!("{SELECT} ORDER BY id"))
            .and_then(|mut stmt| stmt.query_map([], raw)?.collect())
            .map_err(sql("loading rollouts"))?;
        raws.into_iter().map(|r| decode(&conn, r)).collect()
    }

    /// Every rollout's id, policy, status and time, without its state: for listings.
    pub fn rollout_summaries(&self) -> Result<Vec<RolloutRecord>, StoreError> {
        let conn = self.conn();
        let raws: Vec<RawRollout> = conn
            .prepare_cached("SELECT id, policy_name, status, '{}', updated_at FROM rollouts ORDER BY id")
            .and_then(|mut stmt| stmt.query_map([], raw)?.collect())
            .map_err(sql("listing rollouts"))?;
        raws.into_iter()
            .map(|(id, policy_name, status, state_json, updated_at)| {
                Ok(RolloutRecord {
                    id,
                    policy_name,
                    status,
                    state_json,
                    updated_at: time_from_sql(&updated_at)?,
                    parts: vec![],
                    replace_parts: false,
                })
            })
            .collect()
    }

    /// One rollout, `None` when there is none with that id.
    pub fn load_rollout(&self, id: &str) -> Result<Option<RolloutRecord>, StoreError> {
        let conn = self.conn();
        let conn = conn.unchecked_transaction().map_err(sql("loading a rollout"))?;
        let raw = conn
            .query_row(&format!("{SELECT} WHERE id = ?1"), [id], raw)
            .optional()
            .map_err(sql("loading a rollout"))?;
        raw.map(|r| decode(&conn, r)).transpose()
    }
}
