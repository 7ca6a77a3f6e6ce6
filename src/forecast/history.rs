//! Durations learned from history: how long AKS really took, against what the model
//! expected, per kind of step. Each finished step of a stored rollout has its expected
//! duration (`StepRun::expected_secs`, set at the rollout's creation) and, in the audit
//! log, the moment its operation ended (`step.operation_done`); the intent
//! (`started_at`) is right before the call. Their ratio, per kind, calibrates the model:
//! the median is the factor a forecast applies, and the spread (10th and 90th
//! percentiles) says how far to trust it.

use crate::engine::Rollout;
use crate::store::AuditEntry;
use serde::Serialize;
use std::collections::BTreeMap;

/// Per kind of step (`controlPlane`, `poolVersion`, `nodeImage`, `poolRollback`): how
/// the real durations compare with the model's.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Calibration {
    pub kinds: BTreeMap<String, Factor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Factor {
    /// Operations seen.
    pub samples: usize,
    /// Median of actual / expected: what a forecast multiplies the model's duration by.
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
}

impl Calibration {
    /// The factor for `kind`, 1 when history has none.
    pub fn factor(&self, kind: &str) -> f64 {
        self.kinds.get(kind).map_or(1.0, |f| f.median)
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Learns from stored rollouts and their audit entries (`step.operation_done`).
pub fn learn(rollouts: &[Rollout], audit: &[AuditEntry]) -> Calibration {
    let mut ratios: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in rollouts {
        for (cref, c) in r.clusters() {
            let ring = &r.rings[cref.ring].name;
            for (i, st) in c.steps.iter().enumerate() {
                let (Some(started), Some(expected)) = (st.started_at, st.expected_secs) else {
                    continue;
                };
                let subject = format!("{ring}/{} step {}: ", c.id.name, i + 1);
                // The first operation end of this step after it started (a restart may
                // audit it again).
                let done = audit
                    .iter()
                    .filter(|a| {
                        a.action == "step.operation_done"
                            && a.rollout_id.as_deref() == Some(r.id.as_str())
                            && a.subject.starts_with(&subject)
                            && a.at >= started
                    })
                    .map(|a| a.at)
                    .min();
                if let Some(end) = done
                    && expected > 0
                {
                    let actual = (end - started).num_milliseconds() as f64 / 1000.0;
                    ratios
                        .entry(st.kind.name().to_string())
                        .or_default()
                        .push(actual / expected as f64);
                }
            }
        }
    }
    Calibration {
        kinds: ratios
            .into_iter()
            .map(|(k, mut v)| {
                v.sort_by(f64::total_cmp);
                let f = Factor {
                    samples: v.len(),
                    median: quantile(&v, 0.5),
                    p10: quantile(&v, 0.1),
                    p90: quantile(&v, 0.9),
                };
                (k, f)
            })
            .collect(),
    }
}

/// Every stored rollout and its audit entries, from a state file.
pub fn load(store: &crate::store::Store) -> Result<(Vec<Rollout>, Vec<AuditEntry>), crate::store::StoreError> {
    let mut rollouts = Vec::new();
    let mut audit = Vec::new();
    for rec in store.load_rollouts()? {
        let Ok(r) = crate::engine::stored::load(&rec) else {
            continue;
        };
        let mut since = 0;
        loop {
            let page = store.audit(&crate::store::AuditQuery {
                rollout_id: Some(r.id.clone()),
                since_id: Some(since),
                limit: 1000,
                ..Default::default()
            })?;
            let Some(last) = page.last().map(|(id, _)| *id) else {
                break;
            };
            audit.extend(page.into_iter().map(|(_, a)| a));
            since = last;
        }
        rollouts.push(r);
    }
    Ok((rollouts, audit))
}
