//! How a rollout's state is laid out for the store, so that a save writes what
//! changed and not the whole fleet (`docs/architecture.md`, "Saving what changed").
//!
//! A state is one **head** document (the rollout's and rings' statuses, the waves'
//! shapes, `seq`: small, written at every save), part [`FIXED`] (the plan, the policy
//! text and the forecast: written once, they never change after creation) and one part
//! per cluster (`1..=n` in plan order), written only when that cluster changed.
//!
//! Finding what changed costs a pointer comparison per cluster: clusters are
//! copy-on-write (`WaveRun::clusters` holds `Arc`s and the engine changes them only
//! through `Arc::make_mut`), so a cluster the engine did not touch since the last save
//! is the very same allocation as in the saved copy. A touched one that ended equal is
//! compared by value and not written. Nothing is inferred: what is not written is
//! equal to what the store holds, so loading the parts gives back exactly the state
//! that was saved.
//!
//! The split is written with exhaustive destructuring: a field added to `Rollout`,
//! `RingRun` or `WaveRun` does not compile here until it is given a place.
//!
//! A document without `"layout": 2` is a whole state from before this layout (schema
//! 2 and older): it is read as it is, and the first save rewrites it in parts.

use super::model::{ClusterRun, ForecastRecord, RingRun, RingStatus, Rollout, RolloutStatus, WaveRun};
use crate::plan::Plan;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The part that holds what never changes after the rollout is created.
pub const FIXED: i64 = 0;

/// The layout this module writes (in the head, as `"layout"`).
const LAYOUT: u32 = 2;

/// A state as the store takes it: the head, and the parts to write (all of them, or
/// the changed ones).
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub head: String,
    pub parts: Vec<(i64, String)>,
    /// `parts` are every part of the state (the store drops any other it holds).
    pub whole: bool,
}

/// One rollout as the store keeps it (`store::rollouts`: a row and its parts). `status`
/// is a copy of the state's status, kept in its own column so the API can list rollouts
/// without parsing every state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutRecord {
    pub id: String,
    pub policy_name: String,
    pub status: String,
    /// The engine's serialized state (or its head, with `parts`); must be valid JSON.
    pub state_json: String,
    pub updated_at: DateTime<Utc>,
    /// Numbered parts of the state. Saving writes these (inserted or replaced) and
    /// leaves the rollout's other parts as they are; loading returns all of them, in
    /// order.
    pub parts: Vec<(i64, String)>,
    /// `parts` are the whole set: the rollout's other stored parts are deleted (a
    /// full save after a restart, or a state rewritten whole).
    pub replace_parts: bool,
}

/// A stored state that can't be read back.
#[derive(Debug, thiserror::Error)]
pub enum StoredError {
    #[error("its JSON does not decode: {0}")]
    Json(#[from] serde_json::Error),
    #[error("it is in layout {0}, which this version of ringmaster does not know (it knows 2): upgrade ringmaster")]
    Layout(u32),
    #[error("part {0} is missing")]
    Missing(i64),
    #[error("it has {found} cluster parts where its waves have {expected} clusters")]
    Shape { found: usize, expected: usize },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    layout: u32,
    id: String,
    status: RolloutStatus,
    rings: Vec<RingHead>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    seq: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RingHead {
    name: String,
    status: RingStatus,
    approval: Option<super::model::ApprovalRecord>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    paused: bool,
    waves: Vec<WaveHead>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WaveHead {
    name: String,
    max_parallel: usize,
    /// How many cluster parts belong to this wave (the parts are numbered in order).
    clusters: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FixedRef<'a> {
    policy_file: &'a str,
    policy_text: &'a str,
    plan: &'a Plan,
    forecast: Option<&'a ForecastRecord>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fixed {
    policy_file: String,
    policy_text: String,
    plan: Plan,
    forecast: Option<ForecastRecord>,
}

/// Just enough of a document to tell the layouts apart.
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    layout: u32,
}

fn head(r: &Rollout) -> Result<String, serde_json::Error> {
    let Rollout {
        id,
        policy_file: _,
        policy_text: _,
        plan: _,
        status,
        rings,
        created_at,
        updated_at,
        seq,
        forecast: _,
    } = r;
    let rings = rings
        .iter()
        .map(|ring| {
            let RingRun {
                name,
                status,
                waves,
                approval,
                started_at,
                finished_at,
                paused,
            } = ring;
            RingHead {
                name: name.clone(),
                status: status.clone(),
                approval: approval.clone(),
                started_at: *started_at,
                finished_at: *finished_at,
                paused: *paused,
                waves: waves
                    .iter()
                    .map(|w| {
                        let WaveRun {
                            name,
                            max_parallel,
                            clusters,
                        } = w;
                        WaveHead {
                            name: name.clone(),
                            max_parallel: *max_parallel,
                            clusters: clusters.len(),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    serde_json::to_string(&Head {
        layout: LAYOUT,
        id: id.clone(),
        status: status.clone(),
        rings,
        created_at: *created_at,
        updated_at: *updated_at,
        seq: *seq,
    })
}

fn fixed(r: &Rollout) -> Result<String, serde_json::Error> {
    serde_json::to_string(&FixedRef {
        policy_file: &r.policy_file,
        policy_text: &r.policy_text,
        plan: &r.plan,
        forecast: r.forecast.as_deref(),
    })
}

fn all_clusters(r: &Rollout) -> impl Iterator<Item = &Arc<ClusterRun>> {
    r.rings.iter().flat_map(|x| &x.waves).flat_map(|w| &w.clusters)
}

/// The whole state: head and every part (a new rollout's first save, a legacy
/// state's rewrite, a test's fixture).
pub fn encode(r: &Rollout) -> Result<Encoded, serde_json::Error> {
    let mut parts = vec![(FIXED, fixed(r)?)];
    for (i, c) in all_clusters(r).enumerate() {
        parts.push((i as i64 + 1, serde_json::to_string(&**c)?));
    }
    Ok(Encoded {
        head: head(r)?,
        parts,
        whole: true,
    })
}

/// What to write to bring the store from `saved` (the state its last save wrote) to
/// `now`: the head, and the clusters that differ. Without `saved`, everything.
pub fn encode_changes(now: &Rollout, saved: Option<&Rollout>) -> Result<Encoded, serde_json::Error> {
    let Some(saved) = saved.filter(|s| same_shape(now, s)) else {
        return encode(now);
    };
    let mut parts = Vec::new();
    if !Arc::ptr_eq(&now.plan, &saved.plan)
        || now.policy_text != saved.policy_text
        || now.policy_file != saved.policy_file
        || now.forecast != saved.forecast
    {
        parts.push((FIXED, fixed(now)?));
    }
    for (i, (a, b)) in all_clusters(now).zip(all_clusters(saved)).enumerate() {
        if !Arc::ptr_eq(a, b) && a != b {
            parts.push((i as i64 + 1, serde_json::to_string(&**a)?));
        }
    }
    Ok(Encoded {
        head: head(now)?,
        parts,
        whole: false,
    })
}

/// Same rings, waves and cluster counts: the part numbers mean the same clusters.
fn same_shape(a: &Rollout, b: &Rollout) -> bool {
    a.id == b.id
        && a.rings.len() == b.rings.len()
        && a.rings.iter().zip(&b.rings).all(|(x, y)| {
            x.waves.len() == y.waves.len()
                && x.waves
                    .iter()
                    .zip(&y.waves)
                    .all(|(v, w)| v.clusters.len() == w.clusters.len())
        })
}

/// The store's record of `now`, carrying what changed since `saved` (everything
/// without it), stamped `at`.
pub fn record(now: &Rollout, saved: Option<&Rollout>, at: DateTime<Utc>) -> Result<RolloutRecord, serde_json::Error> {
    let Encoded { head, parts, whole } = encode_changes(now, saved)?;
    Ok(RolloutRecord {
        id: now.id.clone(),
        policy_name: now.plan.policy.clone(),
        status: now.status.label().to_string(),
        state_json: head,
        updated_at: at,
        parts,
        replace_parts: whole,
    })
}

/// A stored record's state.
pub fn load(rec: &RolloutRecord) -> Result<Rollout, StoredError> {
    decode(&rec.state_json, &rec.parts)
}

/// Reads a stored state back: `head` and every part it has (any order).
pub fn decode(head: &str, parts: &[(i64, String)]) -> Result<Rollout, StoredError> {
    match serde_json::from_str::<Probe>(head)?.layout {
        // A whole document, from before parts (see the module's doc).
        0 => return Ok(serde_json::from_str(head)?),
        LAYOUT => {}
        other => return Err(StoredError::Layout(other)),
    }
    let h: Head = serde_json::from_str(head)?;
    let mut by_key: std::collections::HashMap<i64, &str> = parts.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let fixed: Fixed = serde_json::from_str(by_key.remove(&FIXED).ok_or(StoredError::Missing(FIXED))?)?;
    let expected: usize = h.rings.iter().flat_map(|r| &r.waves).map(|w| w.clusters).sum();
    if by_key.len() != expected {
        return Err(StoredError::Shape {
            found: by_key.len(),
            expected,
        });
    }
    let mut next = 1i64;
    let mut cluster = || -> Result<Arc<ClusterRun>, StoredError> {
        let key = next;
        next += 1;
        let json = by_key.get(&key).ok_or(StoredError::Missing(key))?;
        Ok(Arc::new(serde_json::from_str(json)?))
    };
    let mut rings = Vec::with_capacity(h.rings.len());
    for ring in h.rings {
        let mut waves = Vec::with_capacity(ring.waves.len());
        for w in ring.waves {
            waves.push(WaveRun {
                name: w.name,
                max_parallel: w.max_parallel,
                clusters: (0..w.clusters).map(|_| cluster()).collect::<Result<_, _>>()?,
            });
        }
        rings.push(RingRun {
            name: ring.name,
            status: ring.status,
            waves,
            approval: ring.approval,
            started_at: ring.started_at,
            finished_at: ring.finished_at,
            paused: ring.paused,
        });
    }
    Ok(Rollout {
        id: h.id,
        policy_file: fixed.policy_file,
        policy_text: fixed.policy_text,
        plan: Arc::new(fixed.plan),
        status: h.status,
        rings,
        created_at: h.created_at,
        updated_at: h.updated_at,
        seq: h.seq,
        forecast: fixed.forecast.map(Arc::new),
    })
}
