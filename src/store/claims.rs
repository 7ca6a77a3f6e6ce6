//! Claims: which rollout holds which cluster. One daemon runs a rollout per policy, at
//! the same time, and their fleets overlap (the weekly Linux images and the version
//! rollout both reach `aks-prd-weu-01`). A cluster belongs to at most one rollout from
//! the moment that rollout prepares it (preflight, baseline) to the save that records
//! its end there (done, failed, skipped, rolled back): the table's primary key is the
//! cluster, so two holders cannot be written, whatever the timing.
//!
//! A rollout that finds a cluster held queues for it in `claim_waits`; when the holder
//! lets go, the waiter with the highest priority, then the one that waited longest,
//! takes it. A waiter that stopped asking (paused, or gone) for [`WAIT_STALE`] no
//! longer stands in front of the others.
//!
//! Claims are kept with the step's intent: a save that records a step about to start
//! ([`ClaimChanges::hold`]) checks, in the same transaction, that its rollout holds
//! the cluster, and is refused otherwise ([`StoreError::ClaimHeld`]), so no code path
//! can send a step to a cluster another rollout holds. The save that records a
//! cluster's end releases it in that same transaction, so a claim never outlives it.

use super::codec::{time_from_sql, time_to_sql};
use super::error::sql;
use super::{Store, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

/// A waiter not seen for this long is ignored by the others (it asks every 30 s).
pub const WAIT_STALE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Who asks for a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimant<'a> {
    pub rollout_id: &'a str,
    pub policy: &'a str,
    pub priority: i32,
}

/// A cluster and the rollout that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    pub cluster: String,
    pub rollout_id: String,
    pub policy: String,
    pub priority: i32,
    pub since: DateTime<Utc>,
    /// What the holder does there, as of its last save that changed the cluster.
    pub doing: String,
}

/// A rollout waiting for a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimWait {
    pub cluster: String,
    pub rollout_id: String,
    pub policy: String,
    pub priority: i32,
    pub since: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
}

/// What [`Store::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The claimant holds the cluster (now, or already did).
    Held,
    /// Another rollout holds it; the claimant is queued.
    Busy(Claim),
    /// Nobody holds it, but a rollout with a higher priority (or an equal one that
    /// asked first) waits for it; the claimant is queued behind.
    Queued(ClaimWait),
}

impl ClaimOutcome {
    /// The reason a waiting cluster shows (`None` when held).
    pub fn reason(&self) -> Option<String> {
        match self {
            ClaimOutcome::Held => None,
            ClaimOutcome::Busy(c) => Some(format!(
                "held by rollout {} (policy {}) since {}: {}",
                c.rollout_id,
                c.policy,
                c.since.format("%Y-%m-%d %H:%M UTC"),
                c.doing
            )),
            ClaimOutcome::Queued(w) => Some(format!(
                "free, but rollout {} (policy {}, priority {}) waits for it first",
                w.rollout_id, w.policy, w.priority
            )),
        }
    }
}

/// What a save changes in the claims, beside the state (computed from the clusters the
/// save writes: `engine::claims`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimChanges {
    /// Clusters the rollout works on, with what it does there: each must be held by
    /// it (a step may be starting). One that nobody holds is taken (a state saved
    /// before claims existed); one held by another refuses the save.
    pub hold: Vec<(String, String)>,
    /// Clusters the rollout has finished with.
    pub release: Vec<String>,
    /// The rollout ended: every claim and wait of it goes.
    pub release_all: bool,
}

/// Claims are keyed by the cluster's resource path, which Azure compares ignoring case.
pub fn key(cluster: &str) -> String {
    cluster.to_ascii_lowercase()
}

type RawClaim = (String, String, String, i32, String, String);
type RawWait = (String, String, String, i32, String, String);

fn claim_of((cluster, rollout_id, policy, priority, since, doing): RawClaim) -> Result<Claim, StoreError> {
    Ok(Claim {
        cluster,
        rollout_id,
        policy,
        priority,
        since: time_from_sql(&since)?,
        doing,
    })
}

fn wait_of((cluster, rollout_id, policy, priority, since, seen_at): RawWait) -> Result<ClaimWait, StoreError> {
    Ok(ClaimWait {
        cluster,
        rollout_id,
        policy,
        priority,
        since: time_from_sql(&since)?,
        seen_at: time_from_sql(&seen_at)?,
    })
}

const CLAIM_COLUMNS: &str = "cluster, rollout_id, policy, priority, since, doing";
const WAIT_COLUMNS: &str = "cluster, rollout_id, policy, priority, since, seen_at";

fn holder(tx: &Transaction<'_>, cluster: &str) -> Result<Option<Claim>, StoreError> {
    const ACTION: &str = "reading a claim";
    tx.prepare_cached(&format!("SELECT {CLAIM_COLUMNS} FROM claims WHERE cluster = ?1"))
        .and_then(|mut s| s.query_row([cluster], |r| RawClaim::try_from(r)).optional())
        .map_err(sql(ACTION))?
        .map(claim_of)
        .transpose()
}

/// The claimant's wait for `cluster`, refreshed (or begun) at `now`.
fn wait(tx: &Transaction<'_>, cluster: &str, who: &Claimant<'_>, now: DateTime<Utc>) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO claim_waits (cluster, rollout_id, policy, priority, since, seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (cluster, rollout_id) DO UPDATE SET seen_at = excluded.seen_at, priority = excluded.priority",
    )
    .and_then(|mut s| {
        s.execute(params![
            cluster,
            who.rollout_id,
            who.policy,
            who.priority,
            time_to_sql(&now)
        ])
    })
    .map_err(sql("queueing for a claim"))?;
    Ok(())
}

impl Store {
    /// Takes `cluster` for the claimant, or says who has it (or waits before it) and
    /// queues the claimant. One transaction: two rollouts asking at once cannot both
    /// be told `Held`.
    pub fn claim(
        &self,
        cluster: &str,
        who: &Claimant<'_>,
        doing: &str,
        now: DateTime<Utc>,
    ) -> Result<ClaimOutcome, StoreError> {
        const ACTION: &str = "claiming a cluster";
        let cluster = key(cluster);
        self.write(ACTION, |tx| {
            if let Some(h) = holder(tx, &cluster)? {
                if h.rollout_id == who.rollout_id {
                    return Ok(ClaimOutcome::Held);
                }
                wait(tx, &cluster, who, now)?;
                return Ok(ClaimOutcome::Busy(h));
            }
            let mine: Option<String> = tx
                .prepare_cached("SELECT since FROM claim_waits WHERE cluster = ?1 AND rollout_id = ?2")
                .and_then(|mut s| s.query_row([&cluster, who.rollout_id], |r| r.get(0)).optional())
                .map_err(sql(ACTION))?;
            let mine = mine.as_deref().map(time_from_sql).transpose()?;
            let first: Option<RawWait> = tx
                .prepare_cached(&format!(
                    "SELECT {WAIT_COLUMNS} FROM claim_waits
                     WHERE cluster = ?1 AND rollout_id <> ?2 AND seen_at >= ?3
                     ORDER BY priority DESC, since, rollout_id LIMIT 1"
                ))
                .and_then(|mut s| {
                    s.query_row(
                        params![cluster, who.rollout_id, time_to_sql(&(now - WAIT_STALE))],
                        |r| RawWait::try_from(r),
                    )
                    .optional()
                })
                .map_err(sql(ACTION))?;
            if let Some(first) = first.map(wait_of).transpose()?
                && (first.priority > who.priority
                    || (first.priority == who.priority && mine.is_none_or(|m| first.since < m)))
            {
                wait(tx, &cluster, who, now)?;
                return Ok(ClaimOutcome::Queued(first));
            }
            tx.prepare_cached(&format!(
                "INSERT INTO claims ({CLAIM_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    cluster,
                    who.rollout_id,
                    who.policy,
                    who.priority,
                    time_to_sql(&now),
                    doing
                ])
            })
            .map_err(sql(ACTION))?;
            tx.prepare_cached("DELETE FROM claim_waits WHERE cluster = ?1 AND rollout_id = ?2")
                .and_then(|mut s| s.execute([&cluster, who.rollout_id]))
                .map_err(sql(ACTION))?;
            Ok(ClaimOutcome::Held)
        })
    }

    /// Every claim, by cluster.
    pub fn claims(&self) -> Result<Vec<Claim>, StoreError> {
        let conn = self.conn();
        let raws: Vec<RawClaim> = conn
            .prepare_cached(&format!("SELECT {CLAIM_COLUMNS} FROM claims ORDER BY cluster"))
            .and_then(|mut s| s.query_map([], |r| RawClaim::try_from(r))?.collect())
            .map_err(sql("listing claims"))?;
        raws.into_iter().map(claim_of).collect()
    }

    /// Every wait, by cluster then queue order.
    pub fn claim_waits(&self) -> Result<Vec<ClaimWait>, StoreError> {
        let conn = self.conn();
        let raws: Vec<RawWait> = conn
            .prepare_cached(&format!(
                "SELECT {WAIT_COLUMNS} FROM claim_waits ORDER BY cluster, priority DESC, since, rollout_id"
            ))
            .and_then(|mut s| s.query_map([], |r| RawWait::try_from(r))?.collect())
            .map_err(sql("listing claim waits"))?;
        raws.into_iter().map(wait_of).collect()
    }

    /// Drops the claim on `cluster` (an operator's release, for a holder that no
    /// longer runs: see the API). Returns what was dropped.
    pub fn release_claim(&self, cluster: &str) -> Result<Option<Claim>, StoreError> {
        let cluster = key(cluster);
        self.write("releasing a claim", |tx| {
            let h = holder(tx, &cluster)?;
            tx.prepare_cached("DELETE FROM claims WHERE cluster = ?1")
                .and_then(|mut s| s.execute([&cluster]))
                .map_err(sql("releasing a claim"))?;
            Ok(h)
        })
    }
}

/// Applies a save's claim changes inside its transaction (`save_rollout_with_audit`).
pub(super) fn apply(
    tx: &Transaction<'_>,
    rollout_id: &str,
    policy: &str,
    c: &ClaimChanges,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    const ACTION: &str = "saving claims";
    if c.release_all {
        for table in ["claims", "claim_waits"] {
            tx.prepare_cached(&format!("DELETE FROM {table} WHERE rollout_id = ?1"))
                .and_then(|mut s| s.execute([rollout_id]))
                .map_err(sql(ACTION))?;
        }
        return Ok(());
    }
    for cluster in &c.release {
        let cluster = key(cluster);
        for table in ["claims", "claim_waits"] {
            tx.prepare_cached(&format!("DELETE FROM {table} WHERE cluster = ?1 AND rollout_id = ?2"))
                .and_then(|mut s| s.execute([&cluster, rollout_id]))
                .map_err(sql(ACTION))?;
        }
    }
    for (cluster, doing) in &c.hold {
        let cluster = key(cluster);
        match holder(tx, &cluster)? {
            Some(h) if h.rollout_id != rollout_id => {
                return Err(StoreError::ClaimHeld {
                    cluster,
                    holder: h.rollout_id,
                    rollout: rollout_id.to_string(),
                });
            }
            Some(_) => {
                tx.prepare_cached("UPDATE claims SET doing = ?2 WHERE cluster = ?1")
                    .and_then(|mut s| s.execute([&cluster, doing]))
                    .map_err(sql(ACTION))?;
            }
            // A state from before claims (or a test's hand-made one): take it now.
            None => {
                tx.prepare_cached(&format!(
                    "INSERT INTO claims ({CLAIM_COLUMNS}) VALUES (?1, ?2, ?3, 0, ?4, ?5)"
                ))
                .and_then(|mut s| s.execute(params![cluster, rollout_id, policy, time_to_sql(&now), doing]))
                .map_err(sql(ACTION))?;
            }
        }
    }
    Ok(())
}
