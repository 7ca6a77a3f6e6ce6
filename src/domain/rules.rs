//! AKS's version rules as ringmaster's planner and CLI apply them.
//!
//! The simulator has its own reading of the same rules (`sim::rules`), written from AKS's
//! docs separately, so that a rule the planner gets wrong is refused by the simulator
//! rather than agreed with (`tests/oracle.rs` compares the two tables). Sources: AKS's
//! docs, `upgrade-aks-control-plane.md` ("Kubernetes version upgrade rules"),
//! `upgrade-node-pools.md` ("Validation rules for upgrades"), `supported-kubernetes-versions.md`.

use super::version::{KubeVersion, MinorVersion};

/// The control plane moves at most one minor per upgrade (`1.32.x -> 1.33.y`): "When you
/// upgrade a supported non-LTS AKS cluster, you can't skip Kubernetes minor versions."
pub const CONTROL_PLANE_MAX_MINOR_STEP: i64 = 1;

/// The first control-plane minor that may be three minors ahead of its pools: "Starting
/// with Kubernetes 1.28, the control plane can be up to three minor versions ahead of node
/// pools" (`upgrade-aks-control-plane.md`); before, two.
pub const THREE_MINOR_LAG_FROM: MinorVersion = MinorVersion::new(1, 28);

/// How many minors a pool may be behind a control plane on `control_plane`
/// (`NodePoolMcVersionIncompatible` beyond). A pool upgrade may cross any number of minors
/// within this window: AKS's docs set no per-upgrade limit for pools (an earlier reading
/// here, one minor per pool upgrade, had no source and is gone). The 2026-10-01 OpenAPI's
/// `orchestratorVersion` text still says "within two minor versions"; if AKS enforced
/// that, a 1.28+ control-plane step leaving a pool 3 behind would be refused (a failed
/// step, never a broken cluster): to confirm against a real subscription.
pub fn pool_max_minor_lag(control_plane: KubeVersion) -> i64 {
    if control_plane.minor_version() >= THREE_MINOR_LAG_FROM {
        3
    } else {
        2
    }
}

/// Why AKS would refuse an upgrade. Each maps to the error code AKS answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleViolation {
    #[error("downgrading Kubernetes version {from} to {to} is not allowed")]
    Downgrade { from: KubeVersion, to: KubeVersion },
    #[error("downgrading node pool version {from} to {to} is not allowed")]
    PoolDowngrade { from: KubeVersion, to: KubeVersion },
    #[error(
        "upgrading Kubernetes version {from} to {to} is not allowed: the control plane moves one minor version at a time"
    )]
    ControlPlaneMinorSkip { from: KubeVersion, to: KubeVersion },
    #[error(
        "upgrading the control plane to {to} would leave node pool {pool} on {pool_version}, more than {lag} minor versions behind"
    )]
    ControlPlaneLeavesPoolBehind {
        to: KubeVersion,
        pool: String,
        pool_version: KubeVersion,
        lag: i64,
    },
    #[error("node pool version {pool} cannot be newer than the control plane version {control_plane}")]
    PoolAheadOfControlPlane {
        pool: KubeVersion,
        control_plane: KubeVersion,
    },
    #[error(
        "node pool version {pool} is more than {lag} minor versions behind the control plane version {control_plane}"
    )]
    PoolTooFarBehind {
        pool: KubeVersion,
        control_plane: KubeVersion,
        lag: i64,
    },
}

impl RuleViolation {
    /// The AKS error code for this violation.
    pub fn aks_code(&self) -> &'static str {
        match self {
            RuleViolation::Downgrade { .. } | RuleViolation::ControlPlaneMinorSkip { .. } => "OperationNotAllowed",
            RuleViolation::PoolDowngrade { .. } => "AgentPoolUpgradeVersionNotAllowed",
            RuleViolation::ControlPlaneLeavesPoolBehind { .. }
            | RuleViolation::PoolAheadOfControlPlane { .. }
            | RuleViolation::PoolTooFarBehind { .. } => "NodePoolMcVersionIncompatible",
        }
    }
}

/// Checks a control-plane upgrade `from -> to` for a cluster whose pools run `pools`
/// (name, version). Equal versions are fine (nothing to do).
pub fn check_control_plane_upgrade<'a>(
    from: KubeVersion,
    to: KubeVersion,
    pools: impl IntoIterator<Item = (&'a str, KubeVersion)>,
) -> Result<(), RuleViolation> {
    if to < from {
        return Err(RuleViolation::Downgrade { from, to });
    }
    if to.minors_after(from) > CONTROL_PLANE_MAX_MINOR_STEP {
        return Err(RuleViolation::ControlPlaneMinorSkip { from, to });
    }
    let lag = pool_max_minor_lag(to);
    for (pool, pool_version) in pools {
        // "The node pool version can't be greater than the control `major.minor.patch`
        // version" holds after the upgrade too (found by `tests/oracle.rs`).
        if pool_version > to {
            return Err(RuleViolation::PoolAheadOfControlPlane {
                pool: pool_version,
                control_plane: to,
            });
        }
        if to.minors_after(pool_version) > lag {
            return Err(RuleViolation::ControlPlaneLeavesPoolBehind {
                to,
                pool: pool.to_string(),
                pool_version,
                lag,
            });
        }
    }
    Ok(())
}

/// Checks a pool upgrade `from -> to` under a control plane on `control_plane`.
pub fn check_pool_upgrade(from: KubeVersion, to: KubeVersion, control_plane: KubeVersion) -> Result<(), RuleViolation> {
    if to < from {
        return Err(RuleViolation::PoolDowngrade { from, to });
    }
    if to > control_plane {
        return Err(RuleViolation::PoolAheadOfControlPlane {
            pool: to,
            control_plane,
        });
    }
    let lag = pool_max_minor_lag(control_plane);
    if control_plane.minors_after(to) > lag {
        return Err(RuleViolation::PoolTooFarBehind {
            pool: to,
            control_plane,
            lag,
        });
    }
    Ok(())
}

/// Control-plane upgrades AKS offers from `current`, out of a region's `patches`
/// (version, is-preview): later patches of the same minor and the patches of the next
/// minor. What `upgradeProfiles/default` lists, and what the planner may pick from.
pub fn control_plane_offers(current: KubeVersion, patches: &[(KubeVersion, bool)]) -> Vec<(KubeVersion, bool)> {
    patches
        .iter()
        .copied()
        .filter(|(p, _)| *p > current && p.minors_after(current) <= CONTROL_PLANE_MAX_MINOR_STEP)
        .collect()
}

/// Pool upgrades AKS offers for a pool on `pool` under a control plane on `control_plane`.
pub fn pool_offers(
    pool: KubeVersion,
    control_plane: KubeVersion,
    patches: &[(KubeVersion, bool)],
) -> Vec<(KubeVersion, bool)> {
    patches
        .iter()
        .copied()
        .filter(|(p, _)| *p > pool && check_pool_upgrade(pool, *p, control_plane).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KubeVersion {
        s.parse().unwrap()
    }

    #[test]
    fn control_plane_rules() {
        assert!(check_control_plane_upgrade(v("1.32.1"), v("1.32.9"), []).is_ok());
        assert!(check_control_plane_upgrade(v("1.32.1"), v("1.33.0"), [("p", v("1.30.0"))]).is_ok());
        let e = check_control_plane_upgrade(v("1.32.1"), v("1.34.0"), []).unwrap_err();
        assert_eq!(e.aks_code(), "OperationNotAllowed");
        let e = check_control_plane_upgrade(v("1.32.1"), v("1.33.0"), [("p", v("1.29.5"))]).unwrap_err();
        assert_eq!(e.aks_code(), "NodePoolMcVersionIncompatible");
        assert!(check_control_plane_upgrade(v("1.32.2"), v("1.32.1"), []).is_err());
    }

    #[test]
    fn pool_rules() {
        let cp = v("1.33.2");
        assert!(check_pool_upgrade(v("1.32.0"), v("1.33.2"), cp).is_ok());
        assert_eq!(
            check_pool_upgrade(v("1.33.0"), v("1.34.0"), cp).unwrap_err().aks_code(),
            "NodePoolMcVersionIncompatible"
        );
        // Several minors in one pool upgrade, within the window.
        assert!(check_pool_upgrade(v("1.30.0"), v("1.33.1"), cp).is_ok());
        assert_eq!(
            check_pool_upgrade(v("1.33.1"), v("1.33.0"), cp).unwrap_err().aks_code(),
            "AgentPoolUpgradeVersionNotAllowed"
        );
        assert_eq!(
            check_pool_upgrade(v("1.29.0"), v("1.29.1"), cp).unwrap_err().aks_code(),
            "NodePoolMcVersionIncompatible"
        );
        // Before 1.28, two minors.
        assert_eq!(
            check_pool_upgrade(v("1.24.0"), v("1.24.1"), v("1.27.0"))
                .unwrap_err()
                .aks_code(),
            "NodePoolMcVersionIncompatible"
        );
    }
}
