//! AKS's rules for a node pool rollback as the simulator enforces them
//! (`roll-back-node-pool-version.md`): the auto-upgrade channel must be off, and a target
//! must be one the pool offers; with their tests.

use super::{Refusal, refuse};
use crate::version::KubeVersion;

/// Checks that a pool may roll back while its cluster's Kubernetes auto-upgrade channel
/// is `channel`: `roll-back-node-pool-version.md` says the channel must be disabled
/// before a rollback (else AKS would upgrade the pool again). Unset and `none` are off.
/// UNVERIFIED: the article quotes no error; code `OperationNotAllowed` (400) is guessed
/// from AKS's other "not in this state" refusals ([`check_not_stopped`]).
pub(crate) fn check_rollback_channel(channel: &str) -> Result<(), Refusal> {
    if channel.is_empty() || channel.eq_ignore_ascii_case("none") {
        return Ok(());
    }
    Err(refuse(
        "OperationNotAllowed",
        format!(
            "Node pool rollback is not allowed while the cluster's Kubernetes auto-upgrade channel is '{channel}'. Set autoUpgradeProfile.upgradeChannel to 'none' first."
        ),
    ))
}

/// A rollback target the pool does not offer: `asked` (with `version`, the
/// orchestratorVersion sent, if any) is not among `targets` (version, image), the
/// pool's `recentlyUsedVersions`. The message extends the one AKS error
/// `roll-back-node-pool-version.md` quotes: "NodeImageVersion
/// 'AKSUbuntu-2204gen2containerd-202602.13.5' is not accepted. NodeImageVersion can only
/// be current version 'AKSAzureLinux-V3gen2-202602.13.5' or 'latest'", with the rollback
/// targets listed. UNVERIFIED: the code (`InvalidParameter`, AKS's code for a bad
/// property value) and the listing of the targets.
pub(crate) fn rollback_not_accepted(
    asked: &str,
    version: Option<&str>,
    current: &str,
    targets: &[(KubeVersion, String)],
) -> Refusal {
    let with = version.map_or_else(String::new, |v| format!(" with orchestratorVersion '{v}'"));
    let listed: Vec<String> = targets
        .iter()
        .map(|(v, img)| format!("'{img}' (orchestratorVersion '{v}')"))
        .collect();
    let recent = if listed.is_empty() {
        ". No recently used version is available for rollback.".to_string()
    } else {
        format!(", or a recently used version for rollback: {}.", listed.join(", "))
    };
    refuse(
        "InvalidParameter",
        format!(
            "NodeImageVersion '{asked}'{with} is not accepted. NodeImageVersion can only be current version '{current}' or 'latest'{recent}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::code;

    #[test]
    fn a_rollback_needs_the_kubernetes_auto_upgrade_channel_off() {
        for off in ["", "none", "None"] {
            assert_eq!(check_rollback_channel(off), Ok(()), "{off:?}");
        }
        for on in ["patch", "stable", "rapid", "node-image"] {
            assert_eq!(code(check_rollback_channel(on)), "OperationNotAllowed", "{on}");
        }
    }
}
