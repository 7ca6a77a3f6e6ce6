//! Earliest starts: the policy's start cron, the ring's lower bound (earlier rings'
//! soaks), the cluster's AKS maintenance window, the policy's own windows and blackouts.
//!
//! Which AKS configuration governs which step (when `respect_aks_maintenance` is on):
//! version steps follow `aksManagedAutoUpgradeSchedule`, else `default`; node image steps
//! follow `aksManagedNodeOSUpgradeSchedule`, else `aksManagedAutoUpgradeSchedule`, else
//! `default`. That is when the cluster's owners said upgrades may disrupt them.

use super::cluster::Ctx;
use super::{Step, StepKind};
use crate::domain::duration::{days, later, later_by};
use crate::domain::fleet::{
    AUTO_UPGRADE_SCHEDULE, ClusterState, DEFAULT_MAINTENANCE, MaintenanceConfig, NODE_OS_UPGRADE_SCHEDULE,
};
use crate::policy::{Policy, applies_to};
use crate::schedule::{AnyOf, Blackouts, Calendar, DEFAULT_HORIZON_DAYS, earliest_start, maintenance_calendar};
use chrono::{DateTime, Utc};

/// When the rollout may start: the first fire of `schedule.start` at or after `now`.
pub(super) fn rollout_start(policy: &Policy, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match &policy.schedule.start {
        None => Some(now),
        Some(cron) => cron.next_fire(now, later_by(now, days(DEFAULT_HORIZON_DAYS))),
    }
}

fn config<'a>(c: &'a ClusterState, names: &[&str]) -> Option<&'a MaintenanceConfig> {
    names.iter().find_map(|n| c.maintenance_config(n))
}

type Cal = Box<dyn Calendar + Send + Sync>;
/// A calendar with the name a reason shows for it.
type Named = Option<(String, Cal)>;

/// The cluster's AKS calendars for version steps and node image steps.
fn aks_calendars(c: &ClusterState) -> Result<(Named, Named), String> {
    let build = |names: &[&str]| -> Result<Named, String> {
        match config(c, names) {
            None => Ok(None),
            Some(m) => maintenance_calendar(m)
                .map(|cal| Some((format!("AKS maintenance window {}", m.name), cal)))
                .map_err(|e| {
                    format!(
                        "maintenance configuration {} cannot be used ({e}); not planned, to be safe",
                        m.name
                    )
                }),
        }
    };
    Ok((
        build(&[AUTO_UPGRADE_SCHEDULE, DEFAULT_MAINTENANCE])?,
        build(&[NODE_OS_UPGRADE_SCHEDULE, AUTO_UPGRADE_SCHEDULE, DEFAULT_MAINTENANCE])?,
    ))
}

/// Gives each step its earliest start: no earlier than the step before it (plus the pool
/// soak after a pool step), inside every applicable window, outside every blackout.
pub(super) fn schedule_steps(c: &ClusterState, kinds: Vec<(StepKind, String)>, ctx: &Ctx) -> Result<Vec<Step>, String> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    let schedule = &ctx.policy.schedule;
    let (version_cal, image_cal) = if schedule.respect_aks_maintenance {
        aks_calendars(c)?
    } else {
        (None, None)
    };
    let own: Vec<&dyn Calendar> = schedule
        .windows
        .iter()
        .filter(|w| applies_to(&w.rings, &ctx.ring.name))
        .map(|w| &w.window as &dyn Calendar)
        .collect();
    let own_names: Vec<&str> = schedule
        .windows
        .iter()
        .filter(|w| applies_to(&w.rings, &ctx.ring.name))
        .map(|w| w.name.as_str())
        .collect();
    let own = (!own.is_empty()).then_some(AnyOf(own));
    let blackouts = Blackouts::new(
        schedule
            .blackouts
            .iter()
            .filter(|b| applies_to(&b.rings, &ctx.ring.name))
            .map(|b| b.span)
            .collect(),
    );
    let pool_soak = ctx.policy.steps.pool_soak;
    let horizon = days(DEFAULT_HORIZON_DAYS);

    let mut at = ctx.not_before;
    let mut out = Vec::new();
    for (kind, reason) in kinds {
        let aks = match kind {
            StepKind::NodeImage { .. } => image_cal.as_ref(),
            _ => version_cal.as_ref(),
        };
        let mut cals: Vec<(String, &dyn Calendar)> = Vec::new();
        if let Some(own) = &own {
            cals.push((format!("own window {}", own_names.join(" / ")), own));
        }
        if let Some((name, cal)) = aks {
            cals.push((name.clone(), cal.as_ref()));
        }
        if !blackouts.is_empty() {
            cals.push(("a blackout".into(), &blackouts));
        }
        let refs: Vec<&dyn Calendar> = cals.iter().map(|(_, c)| *c).collect();
        let window = earliest_start(at, &refs, horizon).ok_or_else(|| {
            let names: Vec<&str> = cals.iter().map(|(n, _)| n.as_str()).collect();
            format!(
                "no time within {DEFAULT_HORIZON_DAYS} days when all of these allow a start: {}",
                names.join(", ")
            )
        })?;
        let mut reason = reason;
        if window.start > at {
            let until = later_by(at, horizon);
            let waiting: Vec<&str> = cals
                .iter()
                .filter(|(_, c)| c.next_open(at, until).is_none_or(|w| w.start > at))
                .map(|(n, _)| n.as_str())
                .collect();
            if !waiting.is_empty() {
                reason = format!("{reason}; waits for {}", waiting.join(", "));
            }
        }
        let soak_after = matches!(kind, StepKind::PoolVersion { .. } | StepKind::NodeImage { .. });
        out.push(Step {
            kind,
            reason,
            earliest_start: window.start,
            window_end: window.bounded_end(),
        });
        at = if soak_after {
            later(window.start, pool_soak)
        } else {
            window.start
        };
    }
    Ok(out)
}
