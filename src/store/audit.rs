//! The audit log: who did what, when and why, for every transition, approval,
//! pause, failure and refused call. Append-only: there is no update or delete here,
//! and the schema's triggers refuse them from anywhere else too.

use super::codec::{clamp_i64, json_from_sql, time_from_sql, time_to_sql};
use super::error::sql;
use super::{Store, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// `"ringmaster"` for the daemon's own decisions, else the authenticated user's name.
    pub actor: String,
    /// What happened, dotted: `step.started`, `gate.failed`, `ring.approved`,
    /// `rollout.paused`, `auth.denied`...
    pub action: String,
    /// `None` for entries about no rollout (a refused login, say).
    pub rollout_id: Option<String>,
    /// What it happened to: a ring, a cluster, a step.
    pub subject: String,
    pub reason: String,
    /// Anything else worth keeping (gate results, the operation URL, the request).
    pub detail: serde_json::Value,
}

/// Which entries [`Store::audit`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only entries of this rollout.
    pub rollout_id: Option<String>,
    /// `Some(n)`: the entries after id `n`, oldest first (to follow the log).
    /// `None`: the newest `limit` entries (to show its tail).
    pub since_id: Option<i64>,
    /// At most this many entries.
    pub limit: usize,
    /// Which entries (every entry by default).
    pub filter: AuditFilter,
}

/// Narrows the audit log to what one screen asks about (the dashboard's history).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Entries of this ring: the ring itself, and its clusters and steps (their
    /// subjects start with `ring/`).
    pub ring: Option<String>,
    /// Entries of this cluster (by name): subjects `ring/cluster`, `ring/cluster step
    /// ...`, or the bare name.
    pub cluster: Option<String>,
    /// Entries by this actor, exactly.
    pub actor: Option<String>,
    /// `Some(n)`: the newest entries before id `n` (to page back from a tail).
    pub before_id: Option<i64>,
}

impl Default for AuditQuery {
    /// The last 100 entries of every rollout.
    fn default() -> Self {
        AuditQuery {
            rollout_id: None,
            since_id: None,
            limit: 100,
            filter: AuditFilter::default(),
        }
    }
}

const INSERT: &str = "INSERT INTO audit (at, actor, action, rollout_id, subject, reason, detail)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Appends inside the caller's transaction; shared with `save_rollout_with_audit`.
pub(crate) fn insert(conn: &Connection, e: &AuditEntry) -> Result<i64, StoreError> {
    conn.prepare_cached(INSERT)
        .and_then(|mut stmt| {
            stmt.insert(params![
                time_to_sql(&e.at),
                e.actor,
                e.action,
                e.rollout_id,
                e.subject,
                e.reason,
                e.detail.to_string()
            ])
        })
        .map_err(sql("appending to the audit log"))
}

type RawEntry = (i64, String, String, String, Option<String>, String, String, String);

fn decode(
    (id, at, actor, action, rollout_id, subject, reason, detail): RawEntry,
) -> Result<(i64, AuditEntry), StoreError> {
    Ok((
        id,
        AuditEntry {
            at: time_from_sql(&at)?,
            actor,
            action,
            rollout_id,
            subject,
            reason,
            detail: json_from_sql("audit detail", &detail)?,
        },
    ))
}

impl Store {
    /// Appends one entry; returns its id (ids only grow, and are never reused).
    pub fn append_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError> {
        self.write("appending to the audit log", |tx| insert(tx, entry))
    }

    /// Entries matching `q`, newest last.
    pub fn audit(&self, q: &AuditQuery) -> Result<Vec<(i64, AuditEntry)>, StoreError> {
        // The inner query picks the window (ascending after a cursor, descending for a
        // tail); the outer one puts it in id order.
        // Each filter is either a real condition or a no-op on its (NULL) parameter, so
        // SQLite sees a plain `rollout_id = ?` and uses the (rollout_id, id) index.
        let by_rollout = if q.rollout_id.is_some() {
            "rollout_id = ?1"
        } else {
            "?1 IS NULL"
        };
        let (cursor, order) = match q.since_id {
            Some(_) => ("id > ?2", "ASC"),
            None => ("?2 IS NULL", "DESC"),
        };
        // The filters are no-ops on NULL too; subjects are matched by their shape
        // (`ring/cluster step n: ...`), LIKE's wildcards in a name escaped.
        let query = format!(
            "SELECT * FROM (
                 SELECT id, at, actor, action, rollout_id, subject, reason, detail FROM audit
                 WHERE {by_rollout} AND {cursor}
                   AND (?4 IS NULL OR subject = ?4 OR subject LIKE ?5 ESCAPE '\\')
                   AND (?6 IS NULL OR subject = ?6 OR subject LIKE ?7 ESCAPE '\\' OR subject LIKE ?8 ESCAPE '\\')
                   AND (?9 IS NULL OR actor = ?9)
                   AND (?10 IS NULL OR id < ?10)
                 ORDER BY id {order} LIMIT ?3
             ) ORDER BY id"
        );
        let f = &q.filter;
        let ring_like = f.ring.as_deref().map(|r| format!("{}/%", like_escape(r)));
        let cluster_whole = f.cluster.as_deref().map(|c| format!("%/{}", like_escape(c)));
        let cluster_step = f.cluster.as_deref().map(|c| format!("%/{} step %", like_escape(c)));
        let conn = self.conn();
        let raws: Vec<RawEntry> = conn
            .prepare_cached(&query)
            .and_then(|mut stmt| {
                stmt.query_map(
                    params![
                        q.rollout_id,
                        q.since_id,
                        clamp_i64(q.limit),
                        f.ring,
                        ring_like,
                        f.cluster,
                        cluster_whole,
                        cluster_step,
                        f.actor,
                        f.before_id
                    ],
                    |r| RawEntry::try_from(r),
                )?
                .collect()
            })
            .map_err(sql("reading the audit log"))?;
        raws.into_iter().map(decode).collect()
    }
}

/// `s` with LIKE's wildcards (and the escape character) escaped by `\\`.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}
