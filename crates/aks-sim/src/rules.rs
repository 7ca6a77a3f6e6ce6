//! AKS's version rules as the simulator enforces them: the test oracle of ringmaster.
//!
//! Written from AKS's documentation, not from ringmaster's planner (`domain::rules`), so
//! that a rule the planner gets wrong is refused here the way Azure would refuse it.
//! Each rule quotes its source; the docs are MicrosoftDocs/azure-aks-docs
//! (`articles/aks/...`, revision of 2026-08), published on learn.microsoft.com/azure/aks.
//! Error codes and messages are those AKS answers (seen in public issue threads, cited
//! beside each).
//!
//! Not modelled: the LTS and "unsupported recovery" paths that may skip minors
//! (`supported-kubernetes-versions.md`, "Can I skip multiple AKS versions during a
//! cluster upgrade?"); the simulator's catalogue has no LTS plans.
//!
//! This file holds the version rules (skew, upgrades, offers); `preflight` the refusals
//! for reasons outside versions, `rollback` those of a node pool rollback.

use super::version::{KubeVersion, MinorVersion};

mod preflight;
mod rollback;

pub(crate) use preflight::{
    check_deprecated_apis, check_not_stopped, check_quota, check_subnet, check_unsatisfiable_pdbs, drain_event,
    drain_failure, override_active,
};
pub(crate) use rollback::{check_rollback_channel, rollback_not_accepted};

/// The first minor from which a control plane may be three minors ahead of its pools.
///
/// `upgrade-aks-control-plane.md`, "Kubernetes version upgrade rules": "Starting with
/// Kubernetes 1.28, the control plane can be up to three minor versions ahead of node
/// pools. For example, if your control plane is at _1.35.x_, your node pools can be at
/// _1.32.x_, _1.33.x_, _1.34.x_, or _1.35.x_." (also `supported-kubernetes-versions.md`,
/// "What is the allowed difference in versions between the control plane and node
/// pools?"). Before 1.28, `upgrade-node-pools.md` (2023) says "within two minor versions".
pub const THREE_MINOR_SKEW_FROM: MinorVersion = MinorVersion::new(1, 28);

/// How many minors a pool may be behind a control plane on `control_plane`.
pub fn max_pool_lag(control_plane: KubeVersion) -> i64 {
    if control_plane.minor_version() >= THREE_MINOR_SKEW_FROM {
        3
    } else {
        2
    }
}

/// An upgrade AKS refuses: the HTTP 400 body's `code` and `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
    /// AKS's `subcode`, when it sends one (deprecated API usage).
    pub subcode: Option<&'static str>,
}

fn refuse(code: &'static str, message: String) -> Refusal {
    Refusal {
        code,
        message,
        subcode: None,
    }
}

/// Checks the skew between a pool on `pool` and a control plane on `control_plane`.
///
/// `upgrade-node-pools.md`, "Validation rules for upgrades": "The node pool version must
/// have the same _major_ version as the control plane", "The node pool version can't be
/// greater than the control `major.minor.patch` version"; the lag is [`max_pool_lag`].
/// AKS's answer (azure/terraform-azurerm-aks#465, rancher/rancher#33426):
/// `NodePoolMcVersionIncompatible` "Node pool version 1.20.5 and control plane version
/// 1.19.9 are incompatible. Minor version of node pool version 20 is bigger than control
/// plane version 19. For more information, please check https://aka.ms/version-skew-policy".
pub fn check_skew(pool: KubeVersion, control_plane: KubeVersion) -> Result<(), Refusal> {
    let why = if pool.major != control_plane.major {
        format!(
            "Major version of node pool version {} is different from control plane version {}",
            pool.major, control_plane.major
        )
    } else if pool > control_plane {
        format!(
            "Node pool version {pool} is newer than control plane version {control_plane} (minor {} vs {})",
            pool.minor, control_plane.minor
        )
    } else if control_plane.minors_after(pool) > max_pool_lag(control_plane) {
        format!(
            "Minor version of node pool version {} is more than {} minor versions behind control plane version {}",
            pool.minor,
            max_pool_lag(control_plane),
            control_plane.minor
        )
    } else {
        return Ok(());
    };
    Err(refuse(
        "NodePoolMcVersionIncompatible",
        format!(
            "Node pool version {pool} and control plane version {control_plane} are incompatible. {why}. For more information, please check https://aka.ms/version-skew-policy"
        ),
    ))
}

/// Checks a control-plane upgrade `from -> to` of a cluster whose pools will run
/// `pools` (name, version) afterwards. `from == to` is not an upgrade and passes.
///
/// `upgrade-aks-control-plane.md`: "When you upgrade a supported non-LTS AKS cluster, you
/// can't skip Kubernetes minor versions. You must perform all upgrades sequentially by
/// minor version number. For example, upgrades between _1.28.x_ -> _1.29.x_ or _1.29.x_
/// -> _1.30.x_ are allowed. _1.28.x_ -> _1.30.x_ isn't allowed." `upgrade-node-pools.md`:
/// "You can't downgrade the control plane or a node pool Kubernetes version." Patch
/// upgrades within a minor are upgrades like any other (the upgrade profile lists them).
/// AKS's answer: 400 `OperationNotAllowed` "Upgrading Kubernetes version 1.28.12 to
/// 1.30.2 is not allowed. Available upgrades: [...]" (aks-facts; the caller appends the
/// list). Pools left outside the skew: [`check_skew`].
pub fn check_control_plane_upgrade<'a>(
    from: KubeVersion,
    to: KubeVersion,
    pools: impl IntoIterator<Item = (&'a str, KubeVersion)>,
) -> Result<(), Refusal> {
    if to < from {
        return Err(refuse(
            "OperationNotAllowed",
            format!("Downgrading Kubernetes version {from} to {to} is not allowed."),
        ));
    }
    if to.major != from.major || to.minors_after(from) > 1 {
        return Err(refuse(
            "OperationNotAllowed",
            format!("Upgrading Kubernetes version {from} to {to} is not allowed."),
        ));
    }
    for (name, pool) in pools {
        check_skew(pool, to).map_err(|r| Refusal {
            message: format!("Agent pool {name}: {}", r.message),
            ..r
        })?;
    }
    Ok(())
}

/// Checks a pool upgrade `from -> to` under a control plane on `control_plane`.
///
/// The docs' node pool rules (`upgrade-node-pools.md`, "Validation rules for upgrades")
/// are the skew ([`check_skew`]) and "You can't downgrade the control plane or a node pool
/// Kubernetes version". They set no limit on the minors one pool upgrade crosses: a pool
/// behind its control plane may go straight to the control plane's version (`az aks
/// upgrade` "upgrades the control plane and all node pools in the cluster to the same
/// Kubernetes version", whatever minor each pool was on). A downgrade is refused with
/// `AgentPoolUpgradeVersionNotAllowed` "Upgrade agent pool version from 1.22.2 to 1.21.2
/// is not allowed" (kubernetes-sigs/cluster-api-provider-azure#1883).
pub fn check_pool_upgrade(from: KubeVersion, to: KubeVersion, control_plane: KubeVersion) -> Result<(), Refusal> {
    if to < from {
        return Err(refuse(
            "AgentPoolUpgradeVersionNotAllowed",
            format!(
                "Upgrade agent pool version from {from} to {to} is not allowed. Please use [az aks nodepool get-upgrades] command to get the supported upgrade versions."
            ),
        ));
    }
    check_skew(to, control_plane)
}

/// The control-plane upgrades `upgradeProfiles/default` lists from `current`, out of a
/// region's `patches` (version, is-preview): every later patch of the current minor and
/// of the next one, since those are exactly what [`check_control_plane_upgrade`] allows
/// (`az aks get-upgrades` is how the docs say to find the targets).
pub fn control_plane_offers(current: KubeVersion, patches: &[(KubeVersion, bool)]) -> Vec<(KubeVersion, bool)> {
    patches
        .iter()
        .copied()
        .filter(|(p, _)| *p > current && check_control_plane_upgrade(current, *p, []).is_ok())
        .collect()
}

/// The upgrades a pool's upgrade profile lists: every later patch the pool may move to
/// under its control plane ([`check_pool_upgrade`]).
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

/// The versions a new pool may be created with under a control plane on
/// `control_plane` (`availableAgentPoolVersions`): "Other node pools have their Kubernetes
/// version set when they are added to the cluster" (`upgrade-node-pools.md`), within the
/// same skew as any pool ([`check_skew`]).
pub fn new_pool_versions(control_plane: KubeVersion, patches: &[(KubeVersion, bool)]) -> Vec<(KubeVersion, bool)> {
    patches
        .iter()
        .copied()
        .filter(|(p, _)| check_skew(*p, control_plane).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn v(s: &str) -> KubeVersion {
        s.parse().unwrap()
    }

    pub(super) fn code<T>(r: Result<T, Refusal>) -> &'static str {
        r.err().map_or("accepted", |e| e.code)
    }

    /// "you can't skip Kubernetes minor versions ... _1.28.x_ -> _1.29.x_ ... allowed.
    /// _1.28.x_ -> _1.30.x_ isn't allowed."
    #[test]
    fn control_plane_moves_one_minor_at_a_time() {
        assert_eq!(
            code(check_control_plane_upgrade(v("1.28.5"), v("1.29.0"), [])),
            "accepted"
        );
        assert_eq!(
            code(check_control_plane_upgrade(v("1.28.5"), v("1.30.0"), [])),
            "OperationNotAllowed"
        );
        let e = check_control_plane_upgrade(v("1.28.12"), v("1.30.2"), []).unwrap_err();
        assert_eq!(
            e.message,
            "Upgrading Kubernetes version 1.28.12 to 1.30.2 is not allowed."
        );
    }

    /// Patch upgrades within a minor are allowed, and patches may be skipped.
    #[test]
    fn control_plane_patch_upgrades_are_allowed() {
        assert_eq!(
            code(check_control_plane_upgrade(v("1.33.1"), v("1.33.9"), [])),
            "accepted"
        );
        assert_eq!(
            code(check_control_plane_upgrade(v("1.33.1"), v("1.34.7"), [])),
            "accepted"
        );
    }

    /// "You can't downgrade the control plane or a node pool Kubernetes version."
    #[test]
    fn no_downgrades() {
        assert_eq!(
            code(check_control_plane_upgrade(v("1.33.2"), v("1.33.1"), [])),
            "OperationNotAllowed"
        );
        assert_eq!(
            code(check_control_plane_upgrade(v("1.33.2"), v("1.32.9"), [])),
            "OperationNotAllowed"
        );
        assert_eq!(
            code(check_pool_upgrade(v("1.33.2"), v("1.33.1"), v("1.34.0"))),
            "AgentPoolUpgradeVersionNotAllowed"
        );
    }

    /// "Starting with Kubernetes 1.28, the control plane can be up to three minor versions
    /// ahead of node pools ... if your control plane is at _1.35.x_, your node pools can be
    /// at _1.32.x_, _1.33.x_, _1.34.x_, or _1.35.x_."
    #[test]
    fn pools_may_be_three_minors_behind_from_1_28() {
        let cp = v("1.35.1");
        for pool in ["1.32.0", "1.33.4", "1.34.9", "1.35.1"] {
            assert_eq!(code(check_skew(v(pool), cp)), "accepted", "{pool}");
        }
        assert_eq!(code(check_skew(v("1.31.9"), cp)), "NodePoolMcVersionIncompatible");
        // A control plane upgrade that would leave a pool four minors behind is refused.
        let e = check_control_plane_upgrade(v("1.34.2"), v("1.35.1"), [("user1", v("1.31.9"))]).unwrap_err();
        assert_eq!(e.code, "NodePoolMcVersionIncompatible");
        assert!(
            e.message.starts_with("Agent pool user1: Node pool version 1.31.9"),
            "{}",
            e.message
        );
        assert_eq!(
            code(check_control_plane_upgrade(
                v("1.34.2"),
                v("1.35.1"),
                [("user1", v("1.32.0"))]
            )),
            "accepted"
        );
    }

    /// Before 1.28, "The node pool _minor_ version must be within two _minor_ versions of
    /// the control plane version."
    #[test]
    fn pools_may_be_two_minors_behind_before_1_28() {
        assert_eq!(code(check_skew(v("1.25.0"), v("1.27.3"))), "accepted");
        assert_eq!(
            code(check_skew(v("1.24.0"), v("1.27.3"))),
            "NodePoolMcVersionIncompatible"
        );
        // 1.28 is the first control plane with the wider window.
        assert_eq!(code(check_skew(v("1.25.0"), v("1.28.0"))), "accepted");
    }

    /// "The node pool version can't be greater than the control `major.minor.patch`
    /// version" (the patch counts too) and "must have the same _major_ version".
    #[test]
    fn pools_are_never_newer_than_the_control_plane() {
        assert_eq!(
            code(check_pool_upgrade(v("1.33.0"), v("1.34.0"), v("1.33.2"))),
            "NodePoolMcVersionIncompatible"
        );
        assert_eq!(
            code(check_pool_upgrade(v("1.33.0"), v("1.33.3"), v("1.33.2"))),
            "NodePoolMcVersionIncompatible"
        );
        assert_eq!(
            code(check_skew(v("2.33.0"), v("1.33.2"))),
            "NodePoolMcVersionIncompatible"
        );
        let e = check_pool_upgrade(v("1.33.0"), v("1.34.0"), v("1.33.2")).unwrap_err();
        assert!(
            e.message.contains("https://aka.ms/version-skew-policy"),
            "{}",
            e.message
        );
    }

    /// The docs give no per-upgrade minor limit for pools: a pool three minors behind may
    /// go straight to its control plane's version (what a full `az aks upgrade` does).
    #[test]
    fn a_pool_may_cross_several_minors_in_one_upgrade() {
        assert_eq!(
            code(check_pool_upgrade(v("1.32.0"), v("1.35.1"), v("1.35.1"))),
            "accepted"
        );
        assert_eq!(
            code(check_pool_upgrade(v("1.32.0"), v("1.34.0"), v("1.35.1"))),
            "accepted"
        );
        // ... but never to a version still outside the window.
        assert_eq!(
            code(check_pool_upgrade(v("1.30.0"), v("1.31.0"), v("1.35.1"))),
            "NodePoolMcVersionIncompatible"
        );
    }

    #[test]
    fn upgrade_profiles_offer_exactly_what_the_rules_allow() {
        let patches: Vec<(KubeVersion, bool)> = ["1.32.1", "1.33.1", "1.33.5", "1.34.0", "1.34.2", "1.35.0"]
            .into_iter()
            .map(|p| (v(p), p == "1.35.0"))
            .collect();
        let cp: Vec<String> = control_plane_offers(v("1.33.1"), &patches)
            .iter()
            .map(|(p, _)| p.to_string())
            .collect();
        assert_eq!(cp, ["1.33.5", "1.34.0", "1.34.2"]);
        let pool: Vec<String> = pool_offers(v("1.32.1"), v("1.34.0"), &patches)
            .iter()
            .map(|(p, _)| p.to_string())
            .collect();
        assert_eq!(pool, ["1.33.1", "1.33.5", "1.34.0"]);
        let new: Vec<String> = new_pool_versions(v("1.34.0"), &patches)
            .iter()
            .map(|(p, _)| p.to_string())
            .collect();
        assert_eq!(new, ["1.32.1", "1.33.1", "1.33.5", "1.34.0"]);
    }
}
