//! When to wake the rollout next: the earliest soak end, approval expiry, retry, step
//! start or gate deadline still ahead. Apart because it reads the whole rollout and
//! changes nothing.

use crate::domain::duration::later;
use crate::engine::model::*;
use crate::engine::settings::Settings;
use chrono::{DateTime, Utc};

/// The earliest time something is due.
pub(super) fn next_wake(r: &Rollout, s: &Settings, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if r.status.is_terminal() {
        return None;
    }
    let mut best: Option<DateTime<Utc>> = None;
    let mut consider = |t: DateTime<Utc>| {
        if t > now {
            best = Some(best.map_or(t, |b| b.min(t)));
        }
    };
    for ring in &r.rings {
        if let RingStatus::Soaking { until } = ring.status {
            consider(until);
        }
        if let (RingStatus::AwaitingApproval { .. } | RingStatus::Pending, Some(a)) = (&ring.status, &ring.approval)
            && let Some(e) = a.expires_at
        {
            consider(e);
        }
        for w in &ring.waves {
            for c in w.clusters.iter().filter(|c| !c.status.is_finished()) {
                if let Some(t) = c.retry_at {
                    consider(t);
                }
                if matches!(c.status, ClusterStatus::Pending)
                    && let Some(first) = c.steps.first()
                {
                    consider(first.earliest_start);
                }
                for st in &c.steps {
                    match &st.status {
                        StepStatus::Soaking { until } | StepStatus::Backoff { until } => consider(*until),
                        StepStatus::Gating {
                            since, passing_since, ..
                        } => {
                            consider(later(*since, s.gate_timeout));
                            if let Some(p) = passing_since {
                                consider(later(*p, s.gate_settle));
                            }
                        }
                        StepStatus::Pending if c.status == ClusterStatus::Running => consider(st.earliest_start),
                        _ => {}
                    }
                }
            }
        }
    }
    best
}
