//! The wave level: a ring's current wave starts its clusters (never more at once than
//! the wave allows) and drives the running ones; the next wave's watches warm up once
//! every cluster of this one has started.

use super::{cluster::prepare, step::drive_cluster};
use crate::engine::input::Command;
use crate::engine::model::*;
use crate::engine::settings::Settings;
use chrono::{DateTime, Utc};

/// Drives the current wave of a ring; true when every wave is finished.
pub(super) fn drive_ring(
    r: &mut Rollout,
    s: &Settings,
    ri: usize,
    paused: bool,
    now: DateTime<Utc>,
    out: &mut Vec<Command>,
) -> bool {
    for wi in 0..r.rings[ri].waves.len() {
        if r.rings[ri].waves[wi].clusters.iter().all(|c| c.status.is_finished()) {
            continue;
        }
        let ring_paused = paused || r.rings[ri].paused;
        let max = r.rings[ri].waves[wi].max_parallel;
        for ci in 0..r.rings[ri].waves[wi].clusters.len() {
            let cref = ClusterRef {
                ring: ri,
                wave: wi,
                cluster: ci,
            };
            let active = r.rings[ri].waves[wi]
                .clusters
                .iter()
                .filter(|c| c.status.is_active())
                .count();
            let c = r.cluster(cref);
            match c.status {
                ClusterStatus::Pending => {
                    let first_due = c.steps.first().is_none_or(|s| s.earliest_start <= now);
                    if ring_paused || c.paused || active >= max || !first_due {
                        continue;
                    }
                    let id = c.id.clone();
                    let run = r.cluster_mut(cref);
                    run.status = ClusterStatus::Preparing;
                    run.started_at = Some(now);
                    out.push(Command::StartWatch { cluster: id });
                    prepare(r, s, cref, out);
                }
                ClusterStatus::Preparing if c.retry_at.is_some_and(|t| t <= now) => {
                    r.cluster_mut(cref).retry_at = None;
                    prepare(r, s, cref, out);
                }
                ClusterStatus::Running => drive_cluster(r, cref, ring_paused, now, out),
                _ => {}
            }
        }
        if !ring_paused {
            warm_next_wave(r, ri, wi, out);
        }
        return false;
    }
    true
}

/// Once every cluster of wave `wi` has started, starts the watches of the next wave's
/// clusters (once each): when their turn comes, the baseline is read from watches that
/// already listed, instead of every cluster of a wave connecting at the same moment.
fn warm_next_wave(r: &mut Rollout, ri: usize, wi: usize, out: &mut Vec<Command>) {
    let ring = &mut r.rings[ri];
    if wi + 1 >= ring.waves.len()
        || ring.waves[wi]
            .clusters
            .iter()
            .any(|c| c.status == ClusterStatus::Pending)
    {
        return;
    }
    for c in &mut ring.waves[wi + 1].clusters {
        if c.status == ClusterStatus::Pending && !c.paused && !c.warm {
            std::sync::Arc::make_mut(c).warm = true;
            out.push(Command::StartWatch { cluster: c.id.clone() });
        }
    }
}
