//! Checks of the cluster itself: its state, deprecated APIs against the target, whether
//! the target is offered, end of support, and AKS's own upgraders.

use super::Ctx;
use crate::domain::fleet::normalize_location;
use crate::domain::{KubeVersion, MinorVersion};
use crate::plan::StepKind;
use crate::preflight::{Check, Finding, Severity};

/// Provisioning states in which an operation is running.
fn in_progress(state: &str) -> bool {
    !matches!(state, "Succeeded" | "Failed" | "Canceled" | "Unknown" | "")
}

/// Stopped clusters (AKS refuses to upgrade them), clusters and pools in a failed state
/// (ringmaster does not stack an upgrade on a broken cluster), and operations in flight.
pub fn state(ctx: &Ctx<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let s = &ctx.facts.state;
    if ctx.facts.power_state.eq_ignore_ascii_case("Stopped") {
        out.push(
            ctx.finding(
                None,
                Check::ClusterState,
                Severity::Blocks,
                "powerState Stopped".into(),
                "AKS does not upgrade a stopped cluster: the upgrade is refused",
                "start the cluster (az aks start) or leave it out of the rollout",
            )
            .aks("OperationNotAllowed"),
        );
    }
    if matches!(s.provisioning_state.as_str(), "Failed" | "Canceled") {
        out.push(ctx.finding(
            None,
            Check::ClusterState,
            Severity::Blocks,
            format!("provisioningState {}", s.provisioning_state),
            "the last operation on the cluster did not succeed; an upgrade on top of it starts from an unknown state",
            "find the failed operation's error (az aks show), reconcile with `az aks update`, then re-run preflight",
        ));
    } else if in_progress(&s.provisioning_state) {
        out.push(ctx.finding(
            None,
            Check::ClusterState,
            Severity::Warns,
            format!("provisioningState {}", s.provisioning_state),
            "another operation is running; AKS refuses a second one until it ends (ringmaster waits and retries)",
            "let the operation finish",
        ));
    }
    let upgraded = super::upgraded_pools(ctx.plan);
    for p in &s.pools {
        if matches!(p.provisioning_state.as_str(), "Failed" | "Canceled") && upgraded.contains(p.name.as_str()) {
            out.push(ctx.finding(
                Some(&p.name),
                Check::ClusterState,
                Severity::Blocks,
                format!("pool provisioningState {}", p.provisioning_state),
                "the pool's last operation did not succeed",
                "reconcile the pool (az aks nodepool update) and re-run preflight",
            ));
        }
    }
    out
}

/// The minors the control plane reaches through the plan's control-plane steps.
fn control_plane_targets(ctx: &Ctx<'_>) -> Vec<(KubeVersion, KubeVersion)> {
    ctx.plan
        .steps
        .iter()
        .filter_map(|s| match s.kind {
            StepKind::ControlPlane { from, to } => Some((from, to)),
            _ => None,
        })
        .collect()
}

/// AKS blocks a control-plane **minor** upgrade while the cluster has called, within the
/// last 12 hours, an API that the new minor removes (`ValidationError`, subcode
/// `UpgradeBlockedOnDeprecatedAPIUsage`), unless `upgradeSettings.overrideSettings`
/// sets `forceUpgrade` with an `until` in the future.
pub fn deprecated_apis(ctx: &Ctx<'_>) -> Vec<Finding> {
    let minor_steps: Vec<MinorVersion> = control_plane_targets(ctx)
        .into_iter()
        .filter(|(f, t)| t.minor_version() > f.minor_version())
        .map(|(_, t)| t.minor_version())
        .collect();
    let Some(&highest) = minor_steps.iter().max() else {
        return Vec::new();
    };
    let kube = match &ctx.facts.kube {
        Ok(k) => k,
        Err(_) => return Vec::new(), // reported once by `workloads::nodes_and_pods`
    };
    let apis = match &kube.deprecated {
        Ok(a) => a,
        Err(e) => {
            return vec![ctx.finding(
                None,
                Check::Unreadable,
                Severity::Warns,
                format!("the API server's /metrics could not be read: {e}"),
                "deprecated API usage could not be checked; AKS may still block the control-plane upgrade",
                "grant `get` on the non-resource URL /metrics to ringmaster's identity",
            )];
        }
    };
    let mut out = Vec::new();
    for a in apis.iter().filter(|a| a.removed_release <= highest) {
        let step = minor_steps
            .iter()
            .copied()
            .filter(|m| *m >= a.removed_release)
            .min()
            .unwrap_or(highest);
        let seen = format!(
            "{} was requested; it is removed in {} (the plan upgrades the control plane to {step})",
            a.describe(),
            a.removed_release
        );
        let fix = format!(
            "move the clients of {} to its replacement and wait 12 hours without calls to it, or let ringmaster set AKS's override (policy `preflight.allow_force_upgrade: true`)",
            a.describe()
        );
        out.push(if ctx.settings.allow_force_upgrade {
            ctx.finding(
                None,
                Check::DeprecatedApi,
                Severity::Warns,
                seen,
                "the policy lets ringmaster set forceUpgrade: AKS will upgrade, and calls to the removed API will fail afterwards",
                fix,
            )
        } else {
            ctx.finding(
                None,
                Check::DeprecatedApi,
                Severity::Blocks,
                seen,
                "AKS refuses a control-plane minor upgrade while an API the new minor removes was used in the last 12 hours",
                fix,
            )
            .aks("UpgradeBlockedOnDeprecatedAPIUsage")
        });
    }
    out
}

/// Every version the plan installs must be offered in the cluster's region. Without the
/// region's catalogue (the engine's preflight has none: the plan was made from one)
/// there is nothing to compare with.
pub fn target_offered(ctx: &Ctx<'_>) -> Vec<Finding> {
    let loc = normalize_location(&ctx.facts.state.location);
    let Some(region) = ctx.catalogue.regions.get(&loc) else {
        return Vec::new();
    };
    let offered = |v: KubeVersion| region.minors.iter().any(|m| m.patches.contains(&v));
    let mut out = Vec::new();
    for s in &ctx.plan.steps {
        let (pool, to) = match &s.kind {
            StepKind::ControlPlane { to, .. } => (None, *to),
            StepKind::PoolVersion { pool, to, .. } => (Some(pool.as_str()), *to),
            StepKind::NodeImage { .. } | StepKind::PoolRollback { .. } => continue,
        };
        if !offered(to) {
            out.push(
                ctx.finding(
                    pool,
                    Check::TargetNotOffered,
                    Severity::Blocks,
                    format!("{to} is not offered in {loc}"),
                    "AKS refuses an upgrade to a version its region does not offer",
                    "pick a target every region offers (policy `target`), or wait for the region",
                )
                .aks("OperationNotAllowed"),
            );
        }
    }
    out
}

/// The current minor leaves AKS support before the plan's first step can start (the
/// windows and blackouts push it past the date): the cluster runs unsupported meanwhile.
pub fn end_of_support(ctx: &Ctx<'_>) -> Vec<Finding> {
    let minor = ctx.facts.state.control_plane.minor_version();
    let (Some(eos), Some(first)) = (ctx.fleet.support.get(&minor), ctx.plan.steps.first()) else {
        return Vec::new();
    };
    let start = first.earliest_start.date_naive();
    if start <= *eos {
        return Vec::new();
    }
    vec![ctx.finding(
        None,
        Check::EndOfSupport,
        Severity::Warns,
        format!(
            "{minor} leaves AKS support on {eos}; the first step can start on {start} at the earliest"
        ),
        "the windows and blackouts leave no slot before the end of support: the cluster runs an unsupported version until then",
        "open a maintenance window before that date, or move the cluster to an earlier ring",
    )]
}

/// AKS's own upgraders race ringmaster's steps.
pub fn channels(ctx: &Ctx<'_>) -> Vec<Finding> {
    let s = &ctx.facts.state;
    let mut out = Vec::new();
    let channel = s.auto_upgrade_channel.trim();
    if !channel.is_empty() && !channel.eq_ignore_ascii_case("none") {
        out.push(ctx.finding(
            None,
            Check::UpgradeChannel,
            Severity::Warns,
            format!("auto-upgrade channel {channel}"),
            "AKS's auto-upgrader may start its own upgrade in the cluster's window; ringmaster then waits for it and checks the version it left",
            "set the auto-upgrade channel to none on clusters ringmaster manages (az aks update --auto-upgrade-channel none)",
        ));
    }
    let os = s.node_os_upgrade_channel.trim();
    let images = ctx
        .plan
        .steps
        .iter()
        .any(|st| matches!(st.kind, StepKind::NodeImage { .. }));
    if images
        && ["NodeImage", "SecurityPatch"]
            .iter()
            .any(|c| c.eq_ignore_ascii_case(os))
    {
        out.push(ctx.finding(
            None,
            Check::UpgradeChannel,
            Severity::Warns,
            format!("node OS upgrade channel {os}"),
            "AKS updates node images itself; ringmaster's node-image steps may race it",
            "set the node OS upgrade channel to None or Unmanaged, or turn off `steps.node_image`",
        ));
    }
    out
}

/// Pools AKS could not roll back should their gate fail, in a ring that rolls back:
/// the cluster would then be held instead (see `plan::rollback`).
pub fn rollback(ctx: &Ctx<'_>) -> Vec<Finding> {
    if !ctx.rolls_back {
        return Vec::new();
    }
    let s = &ctx.facts.state;
    let region = ctx.catalogue.region(&s.location);
    crate::plan::rollback::not_rollbackable(s, ctx.plan, region)
        .into_iter()
        .map(|n| {
            ctx.finding(
                Some(&n.pool),
                Check::Rollback,
                Severity::Warns,
                n.seen,
                format!(
                    "{}; if the pool's gate fails the cluster is held, not rolled back",
                    n.why
                ),
                "upgrade the pool to a supported patch first, or accept a hold",
            )
        })
        .collect()
}
