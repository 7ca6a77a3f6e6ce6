//! Approvals and rejections of a ring's promotion to a target version: who, when,
//! with which groups (as they were when the decision was made), and until when.
//!
//! At most one live approval per (rollout, ring, target), enforced by a partial
//! UNIQUE index and `INSERT .. ON CONFLICT DO NOTHING` followed by a read-back in
//! the same transaction: two approvers clicking at once (or two daemons, or a retry)
//! record one approval, and the second learns who approved first. An approval stops
//! being live when it expires (noticed when the next approval is recorded) or when a
//! rejection of the same ring and target revokes it; nothing is deleted.

use super::codec::{json_from_sql, opt_time_from_sql, time_from_sql, time_to_sql};
use super::error::sql;
use super::{Store, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

/// An approval to promote `target` into `ring`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub rollout_id: String,
    pub ring: String,
    /// The version approved (a Kubernetes version or a node image).
    pub target: String,
    pub approved_by: String,
    /// The approver's groups at the time, which made the approval allowed.
    pub groups: Vec<String>,
    pub comment: String,
    pub approved_at: DateTime<Utc>,
    /// After this the approval no longer lets the ring start; `None`: never expires.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A refusal to promote `target` into `ring`; it revokes a live approval of the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub rollout_id: String,
    pub ring: String,
    pub target: String,
    pub rejected_by: String,
    pub groups: Vec<String>,
    pub comment: String,
    pub rejected_at: DateTime<Utc>,
}

/// What [`Store::record_approval`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalOutcome {
    /// This approval was recorded, with its id.
    Recorded(i64),
    /// A live approval of the same ring and target was there first; nothing was written.
    AlreadyApproved(Approval),
}

const SELECT_APPROVALS: &str =
    "SELECT rollout_id, ring, target, decided_by, groups_json, comment, decided_at, expires_at
     FROM approvals WHERE decision = 'approve'";

const SAME_RING: &str = "rollout_id = ?1 AND ring = ?2 AND target = ?3";

type RawDecision = (String, String, String, String, String, String, String, Option<String>);

fn decode((rollout_id, ring, target, by, groups, comment, at, expires): RawDecision) -> Result<Approval, StoreError> {
    Ok(Approval {
        rollout_id,
        ring,
        target,
        approved_by: by,
        groups: json_from_sql("approver groups", &groups)?,
        comment,
        approved_at: time_from_sql(&at)?,
        expires_at: opt_time_from_sql(expires)?,
    })
}

fn select(
    conn: &Connection,
    action: &'static str,
    filter: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<Approval>, StoreError> {
    let raws: Vec<RawDecision> = conn
        .prepare_cached(&format!("{SELECT_APPROVALS} AND {filter} ORDER BY id"))
        .and_then(|mut stmt| stmt.query_map(p, |r| RawDecision::try_from(r))?.collect())
        .map_err(sql(action))?;
    raws.into_iter().map(decode).collect()
}

fn groups_json(groups: &[String]) -> String {
    serde_json::Value::from(groups.to_vec()).to_string()
}

impl Store {
    /// Records an approval unless a live one of the same (rollout, ring, target) is
    /// there; one that expired by `approval.approved_at` is retired first, so
    /// approving again after expiry works.
    pub fn record_approval(&self, a: &Approval) -> Result<ApprovalOutcome, StoreError> {
        const ACTION: &str = "recording an approval";
        self.write(ACTION, |tx| {
            let now = time_to_sql(&a.approved_at);
            tx.execute(
                &format!(
                    "UPDATE approvals SET live = 0 WHERE {SAME_RING} AND decision = 'approve' AND live = 1
                     AND expires_at IS NOT NULL AND expires_at <= ?4"
                ),
                params![a.rollout_id, a.ring, a.target, now],
            )
            .map_err(sql(ACTION))?;
            let inserted = tx
                .execute(
                    "INSERT INTO approvals (rollout_id, ring, target, decision, decided_by, groups_json,
                                            comment, decided_at, expires_at, live)
                     VALUES (?1, ?2, ?3, 'approve', ?4, ?5, ?6, ?7, ?8, 1)
                     ON CONFLICT DO NOTHING",
                    params![
                        a.rollout_id,
                        a.ring,
                        a.target,
                        a.approved_by,
                        groups_json(&a.groups),
                        a.comment,
                        now,
                        a.expires_at.as_ref().map(time_to_sql)
                    ],
                )
                .map_err(sql(ACTION))?;
            if inserted == 1 {
                return Ok(ApprovalOutcome::Recorded(tx.last_insert_rowid()));
            }
            let existing = select(
                tx,
                ACTION,
                &format!("{SAME_RING} AND live = 1"),
                params![a.rollout_id, a.ring, a.target],
            )?;
            existing
                .into_iter()
                .next()
                .map(ApprovalOutcome::AlreadyApproved)
                .ok_or(StoreError::Corrupt {
                    what: "approval",
                    message: "an approval conflicted with one that can't be read back".into(),
                })
        })
    }

    /// Records a rejection and revokes the live approval of the same ring and
    /// target, if any, in one transaction. Returns the rejection's id.
    pub fn record_rejection(&self, r: &Rejection) -> Result<i64, StoreError> {
        const ACTION: &str = "recording a rejection";
        self.write(ACTION, |tx| {
            tx.execute(
                &format!("UPDATE approvals SET live = 0 WHERE {SAME_RING} AND decision = 'approve' AND live = 1"),
                params![r.rollout_id, r.ring, r.target],
            )
            .map_err(sql(ACTION))?;
            tx.execute(
                "INSERT INTO approvals (rollout_id, ring, target, decision, decided_by, groups_json,
                                        comment, decided_at, expires_at, live)
                 VALUES (?1, ?2, ?3, 'reject', ?4, ?5, ?6, ?7, NULL, 0)",
                params![
                    r.rollout_id,
                    r.ring,
                    r.target,
                    r.rejected_by,
                    groups_json(&r.groups),
                    r.comment,
                    time_to_sql(&r.rejected_at)
                ],
            )
            .map_err(sql(ACTION))?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Every approval of the rollout, oldest first, including expired and revoked ones.
    pub fn approvals(&self, rollout_id: &str) -> Result<Vec<Approval>, StoreError> {
        select(&self.conn(), "reading approvals", "rollout_id = ?1", [rollout_id])
    }

    /// Every rejection of the rollout, oldest first.
    pub fn rejections(&self, rollout_id: &str) -> Result<Vec<Rejection>, StoreError> {
        let conn = self.conn();
        let raws: Vec<RawDecision> = conn
            .prepare_cached(
                "SELECT rollout_id, ring, target, decided_by, groups_json, comment, decided_at, expires_at
                 FROM approvals WHERE decision = 'reject' AND rollout_id = ?1 ORDER BY id",
            )
            .and_then(|mut stmt| stmt.query_map([rollout_id], |r| RawDecision::try_from(r))?.collect())
            .map_err(sql("reading rejections"))?;
        raws.into_iter()
            .map(|raw| {
                let a = decode(raw)?;
                Ok(Rejection {
                    rollout_id: a.rollout_id,
                    ring: a.ring,
                    target: a.target,
                    rejected_by: a.approved_by,
                    groups: a.groups,
                    comment: a.comment,
                    rejected_at: a.approved_at,
                })
            })
            .collect()
    }

    /// The approval that lets `target` into `ring` at `now`: live (not revoked by a
    /// rejection) and not expired.
    pub fn valid_approval(
        &self,
        rollout_id: &str,
        ring: &str,
        target: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Approval>, StoreError> {
        let found = select(
            &self.conn(),
            "reading a valid approval",
            &format!("{SAME_RING} AND live = 1 AND (expires_at IS NULL OR expires_at > ?4)"),
            params![rollout_id, ring, target, time_to_sql(&now)],
        )?;
        Ok(found.into_iter().next())
    }
}
