//! Intents of mutating ARM calls, for crash safety: the intent is committed before
//! the call, the operation's URL right after it, the outcome when it ends. After a
//! restart, an open intent with an operation means "reattach to that operation"; an
//! open intent without one means "the call may or may not have reached ARM: look
//! before acting". Nothing here is ever deleted, and the uniqueness of
//! (rollout, cluster, step, kind) means a step's call can't be recorded twice, so a
//! restarted daemon that tries finds the first record instead.

use super::codec::{time_from_sql, time_to_sql};
use super::error::sql;
use super::{Store, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// What the daemon is about to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub rollout_id: String,
    pub cluster: String,
    /// The step's index in the cluster's plan.
    pub step: u32,
    /// What call: `upgrade_control_plane`, `upgrade_pool`, `abort`...
    pub kind: String,
    pub recorded_at: DateTime<Utc>,
}

/// An intent as stored, with what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentRow {
    pub id: i64,
    pub intent: Intent,
    /// The operation reference (JSON) ARM returned, once recorded.
    pub operation: Option<String>,
    /// How it ended (`succeeded`, `failed`, `canceled`...); `None` while open.
    pub outcome: Option<String>,
}

/// What [`Store::record_intent`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntentOutcome {
    /// A new intent, with its id.
    Recorded(i64),
    /// The same (rollout, cluster, step, kind) was recorded before: here it is, with
    /// its operation and outcome, and nothing was written.
    Existing(IntentRow),
}

impl IntentOutcome {
    /// The intent's id, new or existing.
    pub fn id(&self) -> i64 {
        match self {
            IntentOutcome::Recorded(id) => *id,
            IntentOutcome::Existing(row) => row.id,
        }
    }
}

const SELECT: &str = "SELECT id, rollout_id, cluster, step, kind, recorded_at, operation, outcome FROM intents";

type RawIntent = (i64, String, String, u32, String, String, Option<String>, Option<String>);

fn decode(
    (id, rollout_id, cluster, step, kind, recorded_at, operation, outcome): RawIntent,
) -> Result<IntentRow, StoreError> {
    Ok(IntentRow {
        id,
        intent: Intent {
            rollout_id,
            cluster,
            step,
            kind,
            recorded_at: time_from_sql(&recorded_at)?,
        },
        operation,
        outcome,
    })
}

fn select(
    conn: &Connection,
    action: &'static str,
    filter: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<IntentRow>, StoreError> {
    let raws: Vec<RawIntent> = conn
        .prepare_cached(&format!("{SELECT} WHERE {filter} ORDER BY id"))
        .and_then(|mut stmt| stmt.query_map(p, |r| RawIntent::try_from(r))?.collect())
        .map_err(sql(action))?;
    raws.into_iter().map(decode).collect()
}

/// The intent's current outcome, or `IntentNotFound`.
fn outcome_of(conn: &Connection, action: &'static str, id: i64) -> Result<Option<String>, StoreError> {
    conn.query_row("SELECT outcome FROM intents WHERE id = ?1", [id], |r| r.get(0))
        .optional()
        .map_err(sql(action))?
        .ok_or(StoreError::IntentNotFound { id })
}

impl Store {
    /// Records an intent before its call, or finds the one recorded before.
    pub fn record_intent(&self, intent: &Intent) -> Result<IntentOutcome, StoreError> {
        const ACTION: &str = "recording an intent";
        self.write(ACTION, |tx| {
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO intents (rollout_id, cluster, step, kind, recorded_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (rollout_id, cluster, step, kind) DO NOTHING",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        intent.rollout_id,
                        intent.cluster,
                        intent.step,
                        intent.kind,
                        time_to_sql(&intent.recorded_at)
                    ])
                })
                .map_err(sql(ACTION))?;
            if inserted == 1 {
                return Ok(IntentOutcome::Recorded(tx.last_insert_rowid()));
            }
            let existing = select(
                tx,
                ACTION,
                "rollout_id = ?1 AND cluster = ?2 AND step = ?3 AND kind = ?4",
                params![intent.rollout_id, intent.cluster, intent.step, intent.kind],
            )?;
            existing
                .into_iter()
                .next()
                .map(IntentOutcome::Existing)
                .ok_or(StoreError::Corrupt {
                    what: "intent",
                    message: "an intent conflicted with one that can't be read back".into(),
                })
        })
    }

    /// Records the operation ARM returned for an open intent (JSON: the operation's
    /// URL and whatever the poller needs to reattach). A later call replaces it, as
    /// long as the intent is open.
    pub fn record_operation(&self, intent_id: i64, op_json: &str) -> Result<(), StoreError> {
        const ACTION: &str = "recording an operation";
        self.write(ACTION, |tx| {
            if let Some(outcome) = outcome_of(tx, ACTION, intent_id)? {
                return Err(StoreError::IntentClosed { id: intent_id, outcome });
            }
            tx.execute(
                "UPDATE intents SET operation = ?2 WHERE id = ?1",
                params![intent_id, op_json],
            )
            .map_err(sql(ACTION))?;
            Ok(())
        })
    }

    /// Closes an intent with its outcome. Closing again with the same outcome is a
    /// no-op (a restarted daemon may redo it); with another one it is an error.
    pub fn close_intent(&self, intent_id: i64, outcome: &str) -> Result<(), StoreError> {
        const ACTION: &str = "closing an intent";
        self.write(ACTION, |tx| match outcome_of(tx, ACTION, intent_id)? {
            Some(existing) if existing == outcome => Ok(()),
            Some(existing) => Err(StoreError::IntentClosed {
                id: intent_id,
                outcome: existing,
            }),
            None => {
                tx.execute(
                    "UPDATE intents SET outcome = ?2 WHERE id = ?1",
                    params![intent_id, outcome],
                )
                .map_err(sql(ACTION))?;
                Ok(())
            }
        })
    }

    /// The rollout's intents that have no outcome yet, oldest first: what a
    /// restarted daemon must reattach to or look up.
    pub fn open_intents(&self, rollout_id: &str) -> Result<Vec<IntentRow>, StoreError> {
        select(
            &self.conn(),
            "reading open intents",
            "rollout_id = ?1 AND outcome IS NULL",
            [rollout_id],
        )
    }

    /// All the rollout's intents, oldest first.
    pub fn intents(&self, rollout_id: &str) -> Result<Vec<IntentRow>, StoreError> {
        select(&self.conn(), "reading intents", "rollout_id = ?1", [rollout_id])
    }

    /// One intent by id.
    pub fn intent(&self, id: i64) -> Result<Option<IntentRow>, StoreError> {
        Ok(select(&self.conn(), "reading an intent", "id = ?1", [id])?
            .into_iter()
            .next())
    }
}
