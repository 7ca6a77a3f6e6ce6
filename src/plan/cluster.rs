//! One cluster's steps: whether it may be planned at all, its version steps (ordered as
//! the module docs of `plan` explain), its node image steps, and their earliest starts.

use super::target::compare_images;
use super::{ClusterPlan, ResolvedTarget, StepKind, timing};
use crate::domain::fleet::{Catalogue, ClusterState, PoolMode, PoolState, RegionCatalogue};
use crate::domain::rules::{check_control_plane_upgrade, check_pool_upgrade, pool_max_minor_lag};
use crate::domain::{KubeVersion, MinorVersion};
use crate::policy::{Channel, NodeImageMode, Policy, Ring};
use chrono::{DateTime, Utc};
use std::cmp::Ordering;

pub(super) struct Ctx<'a> {
    pub policy: &'a Policy,
    pub catalogue: &'a Catalogue,
    pub target: &'a ResolvedTarget,
    pub ring: &'a Ring,
    /// The ring's lower bound for every step.
    pub not_before: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// The cluster's plan, or why it is skipped.
pub(super) fn plan_cluster(c: &ClusterState, ctx: &Ctx) -> Result<ClusterPlan, String> {
    if !c.provisioning_state.eq_ignore_ascii_case("Succeeded") {
        return Err(format!(
            "provisioning state is {}, not Succeeded: an operation is running or failed; planned again once it is Succeeded",
            c.provisioning_state
        ));
    }
    if let Some(p) = c
        .pools
        .iter()
        .find(|p| !p.provisioning_state.eq_ignore_ascii_case("Succeeded"))
    {
        return Err(format!(
            "pool {} is {}, not Succeeded; planned again once it is",
            p.name, p.provisioning_state
        ));
    }
    let channel = c.auto_upgrade_channel.trim();
    if !(channel.is_empty() || channel.eq_ignore_ascii_case("none")) {
        return Err(format!(
            "AKS auto-upgrade channel `{channel}` is on: AKS upgrades this cluster itself and two upgraders would fight; \
             set the channel to none to let ringmaster manage it"
        ));
    }
    let region = ctx
        .catalogue
        .region(&c.location)
        .ok_or_else(|| format!("the catalogue has nothing for region {}", c.location))?;
    for p in &c.pools {
        if p.version > c.control_plane {
            return Err(format!(
                "pool {} runs {}, ahead of the control plane {}: AKS's state is inconsistent, fix it by hand",
                p.name, p.version, c.control_plane
            ));
        }
        let lag = pool_max_minor_lag(c.control_plane);
        if c.control_plane.minors_after(p.version) > lag {
            return Err(format!(
                "pool {} runs {}, more than {lag} minors behind the control plane {}: no upgrade AKS allows fixes that",
                p.name, p.version, c.control_plane
            ));
        }
    }
    // Pool steps only for the pools the policy's `pools` filter selects; the others
    // still count for AKS's skew rules when the control plane moves (`version_steps`).
    let (pools, excluded): (Vec<&PoolState>, Vec<&PoolState>) = ordered_pools(c, &ctx.policy.steps.pool_order)
        .into_iter()
        .partition(|p| ctx.policy.pools.matches(p));
    let mut kinds: Vec<(StepKind, String)> = Vec::new();
    let mut notes = Vec::new();
    if let Some(target) = version_target(c, ctx)? {
        kinds = version_steps(c, &pools, &excluded, target, region, ctx)?;
        // Said when the control plane moves: the pools left out fall behind it.
        let control_plane_moves = kinds.iter().any(|(k, _)| k.pool().is_none());
        let behind: Vec<String> = excluded
            .iter()
            .filter(|p| p.version < target)
            .map(|p| format!("{} ({})", p.name, p.version))
            .collect();
        if control_plane_moves && !behind.is_empty() {
            notes.push(format!(
                "pools {} stay where they are: the policy's `pools` ({}) leaves them out",
                behind.join(", "),
                ctx.policy.pools.describe()
            ));
        }
    }
    kinds.extend(node_image_steps(c, &pools, &kinds, region, ctx, &mut notes));
    let steps = timing::schedule_steps(c, kinds, ctx)?;
    let mut plan = ClusterPlan {
        id: c.id.clone(),
        location: c.location.clone(),
        steps,
        notes,
    };
    if ctx.ring.on_gate_failure == crate::policy::OnGateFailure::Rollback {
        for n in super::rollback::not_rollbackable(c, &plan, Some(region)) {
            plan.notes.push(format!(
                "pool {} could not be rolled back if its gate fails: {} ({}); the cluster would be held instead",
                n.pool, n.seen, n.why
            ));
        }
    }
    Ok(plan)
}

/// The version this cluster moves to; `None` for channel node-image.
fn version_target(c: &ClusterState, ctx: &Ctx) -> Result<Option<KubeVersion>, String> {
    let cp = c.control_plane;
    let t = match ctx.policy.target.channel {
        Channel::NodeImage => return Ok(None),
        Channel::Patch => match ctx.target.patch_versions.get(&cp.minor_version()) {
            Some(v) => *v,
            None => {
                return Err(ctx.target.problem.clone().unwrap_or_else(|| {
                    format!(
                        "channel patch: no allowed GA patch of {} is offered in every region",
                        cp.minor_version()
                    )
                }));
            }
        },
        _ => match (ctx.target.version, &ctx.target.problem) {
            (Some(v), _) => v,
            (None, Some(p)) => return Err(format!("no target: {p}")),
            (None, None) => return Err("no target version".into()),
        },
    };
    if cp > t {
        return Err(format!(
            "control plane runs {cp}, newer than the target {t}; ringmaster never downgrades"
        ));
    }
    Ok(Some(t))
}

/// Pools in upgrade order: `pool_order` names first, in that order; then system pools,
/// then user pools, each by name.
pub(super) fn ordered_pools<'a>(c: &'a ClusterState, order: &[String]) -> Vec<&'a PoolState> {
    let mut pools: Vec<&PoolState> = c.pools.iter().collect();
    pools.sort_by_key(|p| {
        let explicit = order
            .iter()
            .position(|o| o.eq_ignore_ascii_case(&p.name))
            .unwrap_or(usize::MAX);
        (explicit, p.mode != PoolMode::System, p.name.clone())
    });
    pools
}

/// The version to install for `minor` on the way to `target`: the target itself on its
/// minor, else the newest GA patch of `minor` in the region that the policy does not deny.
fn via(
    minor: MinorVersion,
    target: KubeVersion,
    region: &RegionCatalogue,
    ctx: &Ctx,
    location: &str,
) -> Result<KubeVersion, String> {
    if minor == target.minor_version() {
        return Ok(target);
    }
    region
        .minors
        .iter()
        .filter(|m| m.minor == minor && (ctx.policy.target.allow_preview || !m.is_preview))
        .flat_map(|m| m.patches.iter().copied())
        .filter(|v| !ctx.policy.target.denies(*v))
        .max()
        .ok_or_else(|| {
            format!(
                "the way to {target} passes {minor} (one minor at a time), and {location} offers no GA patch of it that the policy allows"
            )
        })
}

/// Every pool with the version it has at this point of the plan: the filter's pools as
/// planned so far (`pv`), the others as they are.
fn every_pool<'a>(
    pools: &[&'a PoolState],
    pv: &[KubeVersion],
    excluded: &[&'a PoolState],
) -> Vec<(&'a str, KubeVersion)> {
    let planned = pools.iter().map(|p| p.name.as_str()).zip(pv.iter().copied());
    planned
        .chain(excluded.iter().map(|p| (p.name.as_str(), p.version)))
        .collect()
}

fn rule_err(e: crate::domain::rules::RuleViolation) -> String {
    format!("no upgrade path within AKS's rules: {e}")
}

/// A control-plane move to `next` must leave no pool more than AKS's lag behind, and
/// AKS checks every pool, also those the policy's `pools` filter leaves out; the planner
/// cannot move those out of the way, so such a move makes the cluster unplannable, with
/// the pool, the rule and the ways out named.
fn excluded_pools_allow(excluded: &[&PoolState], next: KubeVersion, ctx: &Ctx) -> Result<(), String> {
    let lag = pool_max_minor_lag(next);
    match excluded.iter().find(|p| next.minors_after(p.version) > lag) {
        None => Ok(()),
        Some(p) => Err(format!(
            "the control plane's move to {next} would leave pool {} on {}, more than {lag} minors behind \
             (AKS refuses that: NodePoolMcVersionIncompatible), and the policy's `pools` ({}) leaves that pool out; \
             upgrade the pool first or widen `pools`",
            p.name,
            p.version,
            ctx.policy.pools.describe()
        )),
    }
}

/// The version steps of the pools the filter selects (`pools`, in upgrade order); the
/// `excluded` pools get none but stay in every control-plane check.
fn version_steps(
    c: &ClusterState,
    pools: &[&PoolState],
    excluded: &[&PoolState],
    target: KubeVersion,
    region: &RegionCatalogue,
    ctx: &Ctx,
) -> Result<Vec<(StepKind, String)>, String> {
    if target.major != c.control_plane.major || pools.iter().any(|p| p.version.major != target.major) {
        return Err(format!(
            "a major version change to {target} is not something AKS offers"
        ));
    }
    let mut out = Vec::new();
    let mut cp = c.control_plane;
    let mut pv: Vec<KubeVersion> = pools.iter().map(|p| p.version).collect();
    let today = ctx.now.date_naive();
    let support_note = |v: KubeVersion| {
        region
            .minors
            .iter()
            .find(|m| m.minor == v.minor_version())
            .and_then(|m| m.end_of_support)
            .map(|eos| {
                if eos <= today {
                    format!("; {} is out of AKS support since {eos}", v.minor_version())
                } else {
                    format!("; {} leaves AKS support on {eos}", v.minor_version())
                }
            })
            .unwrap_or_default()
    };
    while cp.minor_version() < target.minor_version() {
        let next = via(cp.minor_version().next(), target, region, ctx, &c.location)?;
        // Only the pools this move would leave too far behind, each straight to the
        // control plane's version (one upgrade may cross several minors).
        let lag = pool_max_minor_lag(next);
        for (i, p) in pools.iter().enumerate() {
            if next.minors_after(pv[i]) > lag {
                let to = cp;
                check_pool_upgrade(pv[i], to, cp).map_err(rule_err)?;
                out.push((
                    StepKind::PoolVersion {
                        pool: p.name.clone(),
                        from: pv[i],
                        to,
                    },
                    format!("before the control plane moves to {next}: a pool may be at most {lag} minors behind it"),
                ));
                pv[i] = to;
            }
        }
        excluded_pools_allow(excluded, next, ctx)?;
        check_control_plane_upgrade(cp, next, every_pool(pools, &pv, excluded)).map_err(rule_err)?;
        let why = if next == target {
            format!("control plane first, to the target {target}")
        } else {
            format!("control plane first, one minor at a time: {next} on the way to {target}")
        };
        out.push((
            StepKind::ControlPlane { from: cp, to: next },
            format!("{why}{}", support_note(cp)),
        ));
        cp = next;
    }
    if cp < target {
        excluded_pools_allow(excluded, target, ctx)?;
        check_control_plane_upgrade(cp, target, every_pool(pools, &pv, excluded)).map_err(rule_err)?;
        out.push((
            StepKind::ControlPlane { from: cp, to: target },
            format!("control plane first, patch to the target {target}"),
        ));
        cp = target;
    }
    // Then every pool still behind follows, in pool order, straight to the target: one
    // upgrade (one drain) per pool, whatever minor it starts from.
    for (i, p) in pools.iter().enumerate() {
        if pv[i] >= target {
            continue;
        }
        check_pool_upgrade(pv[i], target, cp).map_err(rule_err)?;
        out.push((
            StepKind::PoolVersion {
                pool: p.name.clone(),
                from: pv[i],
                to: target,
            },
            format!("pool follows the control plane to {target} (and gets the region's latest node image)"),
        ));
        pv[i] = target;
    }
    Ok(out)
}

/// The image a pool should run: the region's latest for its OS SKU, or with `consistent`
/// the first ring's image (or the region's latest while the carried image has not reached
/// the region yet: a later plan carries it on).
fn desired_image(c: &ClusterState, p: &PoolState, region: &RegionCatalogue, ctx: &Ctx) -> Option<(String, String)> {
    let latest = region.node_images.get(&p.os_sku)?;
    let first = ctx.policy.rings.first().map_or("", |r| r.name.as_str());
    if ctx.policy.target.node_image == NodeImageMode::Consistent
        && let Some(carried) = ctx.target.consistent_images.get(&p.os_sku)
    {
        return Some(match compare_images(carried, latest) {
            Some(Ordering::Less | Ordering::Equal) => (
                carried.clone(),
                format!("{carried}, the image ring `{first}` runs (node_image: consistent)"),
            ),
            Some(Ordering::Greater) => (
                latest.clone(),
                format!(
                    "{latest}, the latest in {}; ring `{first}`'s image has not reached it yet",
                    c.location
                ),
            ),
            None => (
                latest.clone(),
                format!(
                    "{latest}, the latest in {} (ring `{first}` runs another family)",
                    c.location
                ),
            ),
        });
    }
    Some((
        latest.clone(),
        format!("{latest}, the latest {} image in {}", p.os_sku, c.location),
    ))
}

fn node_image_steps(
    c: &ClusterState,
    pools: &[&PoolState],
    version_steps: &[(StepKind, String)],
    region: &RegionCatalogue,
    ctx: &Ctx,
    notes: &mut Vec<String>,
) -> Vec<(StepKind, String)> {
    if !ctx.policy.steps.node_image {
        return Vec::new();
    }
    let mut out = Vec::new();
    for p in pools {
        let upgraded = version_steps
            .iter()
            .any(|(k, _)| matches!(k, StepKind::PoolVersion { pool, .. } if *pool == p.name));
        if upgraded {
            continue;
        }
        let Some((want, why)) = desired_image(c, p, region, ctx) else {
            continue;
        };
        let behind = match compare_images(&p.node_image, &want) {
            Some(o) => o == Ordering::Less,
            None => p.node_image != want,
        };
        if behind {
            out.push((
                StepKind::NodeImage {
                    pool: p.name.clone(),
                    from: p.node_image.clone(),
                    to: want,
                },
                format!("node image after the version: behind {why}"),
            ));
        }
    }
    let os_channel = c.node_os_upgrade_channel.trim();
    if !out.is_empty()
        && ["NodeImage", "SecurityPatch"]
            .iter()
            .any(|ch| ch.eq_ignore_ascii_case(os_channel))
    {
        let pools: Vec<String> = out
            .iter()
            .filter_map(|(k, _)| match k {
                StepKind::NodeImage { pool, .. } => Some(pool.clone()),
                _ => None,
            })
            .collect();
        notes.push(format!(
            "node images of {} are behind, but the node OS upgrade channel is {os_channel}: AKS updates them itself \
             in its own window, so ringmaster plans no node image steps",
            pools.join(", ")
        ));
        return Vec::new();
    }
    out
}
