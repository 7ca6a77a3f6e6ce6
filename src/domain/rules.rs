//! AKS's version rules, in one table that the planner and the simulator both use, so
//! that the plans ringmaster makes and the answers the simulator gives cannot drift apart.
//!
//! Sources: Microsoft Learn's AKS upgrade pages and the error codes AKS returns
//! (see `shared/design/aks-facts.md`). Where a rule is unverified it says so, and its
//! value is a constant here that is easy to change.

use super::version::KubeVersion;

/// The control plane moves at most one minor per upgrade (`1.32.x -> 1.33.y`).
pub const CONTROL_PLANE_MAX_MINOR_STEP: i64 = 1;

/// A pool moves at most this many minors per upgrade. *Unverified*: AKS's
/// `AgentPoolUpgradeVersionNotAllowed` message says one at a time, so that is the default.
pub const POOL_MAX_MINOR_STEP: i64 = 1;

/// A pool is at most this many minors behind its control plane (`NodePoolMcVersionIncompatible`).
pub const POOL_MAX_MINOR_LAG: i64 = 2;

/// Why AKS would refuse an upgrade. Each maps to the error code AKS answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleViolation {
    #[error("downgrading Kubernetes version {from} to {to} is not allowed")]
    Downgrade { from: KubeVersion, to: KubeVersion },
    #[error(
        "upgrading Kubernetes version {from} to {to} is not allowed: the control plane moves one minor version at a time"
    )]
    ControlPlaneMinorSkip { from: KubeVersion, to: KubeVersion },
    #[error(
        "upgrading the control plane to {to} would leave node pool {pool} on {pool_version}, more than {POOL_MAX_MINOR_LAG} minor versions behind"
    )]
    ControlPlaneLeavesPoolBehind {
        to: KubeVersion,
        pool: String,
        pool_version: KubeVersion,
    },
    #[error("node pool version {pool} cannot be newer than the control plane version {control_plane}")]
    PoolAheadOfControlPlane {
        pool: KubeVersion,
        control_plane: KubeVersion,
    },
    #[error(
        "node pool version {pool} is more than {POOL_MAX_MINOR_LAG} minor versions behind the control plane version {control_plane}"
    )]
    PoolTooFarBehind {
        pool: KubeVersion,
        control_plane: KubeVersion,
    },
    #[error("upgrading node pool version {from} to {to} is not allowed: node pools move one minor version at a time")]
    PoolMinorSkip { from: KubeVersion, to: KubeVersion },
}

impl RuleViolation {
    /// The AKS error code for this violation.
    pub fn aks_code(&self) -> &'static str {
        match self {
            RuleViolation::Downgrade { .. } | RuleViolation::ControlPlaneMinorSkip { .. } => "OperationNotAllowed",
            RuleViolation::ControlPlaneLeavesPoolBehind { .. }
            | RuleViolation::PoolAheadOfControlPlane { .. }
            | RuleViolation::PoolTooFarBehind { .. } => "NodePoolMcVersionIncompatible",
            RuleViolation::PoolMinorSkip { .. } => "AgentPoolUpgradeVersionNotAllowed",
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
    for (pool, pool_version) in pools {
        if to.minors_after(pool_version) > POOL_MAX_MINOR_LAG {
            return Err(RuleViolation::ControlPlaneLeavesPoolBehind {
                to,
                pool: pool.to_string(),
                pool_version,
            });
        }
    }
    Ok(())
}

/// Checks a pool upgrade `from -> to` under a control plane on `control_plane`.
pub fn check_pool_upgrade(from: KubeVersion, to: KubeVersion, control_plane: KubeVersion) -> Result<(), RuleViolation> {
    if to < from {
        return Err(RuleViolation::Downgrade { from, to });
    }
    if to > control_plane {
        return Err(RuleViolation::PoolAheadOfControlPlane {
            pool: to,
            control_plane,
        });
    }
    if control_plane.minors_after(to) > POOL_MAX_MINOR_LAG {
        return Err(RuleViolation::PoolTooFarBehind {
            pool: to,
            control_plane,
        });
    }
    if to.minors_after(from) > POOL_MAX_MINOR_STEP {
        return Err(RuleViolation::PoolMinorSkip { from, to });
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
        assert!(check_control_plane_upgrade(v("1.32.1"), v("1.33.0"), [("p", v("1.31.0"))]).is_ok());
        let e = check_control_plane_upgrade(v("1.32.1"), v("1.34.0"), []).unwrap_err();
        assert_eq!(e.aks_code(), "OperationNotAllowed");
        let e = check_control_plane_upgrade(v("1.32.1"), v("1.33.0"), [("p", v("1.30.5"))]).unwrap_err();
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
        assert_eq!(
            check_pool_upgrade(v("1.31.0"), v("1.33.1"), cp).unwrap_err().aks_code(),
            "AgentPoolUpgradeVersionNotAllowed"
        );
        assert_eq!(
            check_pool_upgrade(v("1.30.0"), v("1.30.1"), cp).unwrap_err().aks_code(),
            "NodePoolMcVersionIncompatible"
        );
    }
}
