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

use super::version::{KubeVersion, MinorVersion};

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

// ---------------------------------------------------------------- preflight refusals
//
// What AKS refuses, or fails, for reasons outside versions: PDBs, deprecated APIs,
// quotas, subnets, stopped clusters. Troubleshooting articles are in
// MicrosoftDocs/SupportArticles-docs (`support/azure/azure-kubernetes/...`), published
// on learn.microsoft.com/troubleshoot/azure/azure-kubernetes.

/// Refuses an operation that drains nodes while a PDB has `maxUnavailable: 0`; `pdbs`
/// are their `namespace/name`.
///
/// `create-upgrade-delete/error-code-unsatisfiablepdb.md` (ms.date 2023-10-27): "Before starting an upgrade
/// operation, AKS checks the cluster for any existing Pod Disruption Budgets (PDBs) that
/// have the `maxUnavailable` parameter set to 0"; the answer is "Code: UnsatisfiablePDB
/// Message: 1 error occurred: * PDB <pdb-namespace>/<pdb-name> has maxunavailble == 0
/// can't proceed with put operation" (AKS's spelling). Only `maxUnavailable: 0` is
/// checked up front: a `minAvailable` equal to the replicas blocks at drain instead
/// ([`drain_failure`]). UNVERIFIED: whether AKS answers synchronously (the simulator
/// answers the PUT/POST with 400), whether it checks control-plane-only upgrades (the
/// simulator checks only operations that drain nodes: pool version and node image
/// upgrades), and whether `forceUpgrade` bypasses it (the simulator: no; the OpenAPI
/// names only "checking for deprecated API usage").
pub fn check_unsatisfiable_pdbs(pdbs: &[String]) -> Result<(), Refusal> {
    if pdbs.is_empty() {
        return Ok(());
    }
    let noun = if pdbs.len() == 1 { "error" } else { "errors" };
    let mut message = format!("{} {noun} occurred:", pdbs.len());
    for p in pdbs {
        message.push_str(&format!(
            "\n\t* PDB {p} has maxunavailble == 0 can't proceed with put operation"
        ));
    }
    message.push_str("\n\n");
    Err(refuse("UnsatisfiablePDB", message))
}

/// AKS's error when a drain stays blocked past `drainTimeoutInMinutes`: the pod and the
/// PDB that blocks it.
///
/// `create-upgrade-delete/error-code-poddrainfailure.md`, "Troubleshoot UpgradeFailed
/// errors due to eviction failures caused by PDBs" (ms.date 2026-06-09): "Code:
/// UpgradeFailed Message: Drain node aks-<nodepool-name>-xxxxxxxx-vmssxxxxxx failed when evicting pod <pod-name>
/// failed with Too Many Requests error. This error is often caused by a restrictive Pod
/// Disruption Budget (PDB) policy. See https://aka.ms/aks/debugdrainfailures. Original
/// error: Cannot evict pod as it would violate the pod's disruption budget.. PDB debug
/// info: <namespace>/<pod-name> blocked by pdb <pdb-name> with 0 unready pods." The
/// operation fails (asynchronously), the cluster or pool goes to `Failed`; its events:
/// "Warning Drain node/... Eviction blocked by Too Many Requests (usually a pdb):
/// <pod-name>" ([`drain_event`]).
pub fn drain_failure(node: &str, namespace: &str, pod: &str, pdb: &str, unready: u32) -> Refusal {
    refuse(
        "UpgradeFailed",
        format!(
            "Drain node {node} failed when evicting pod {pod} failed with Too Many Requests error. This error is often caused by a restrictive Pod Disruption Budget (PDB) policy. See https://aka.ms/aks/debugdrainfailures. Original error: Cannot evict pod as it would violate the pod's disruption budget.. PDB debug info: {namespace}/{pod} blocked by pdb {pdb} with {unready} unready pods."
        ),
    )
}

/// The node event AKS records while a drain is blocked (reason `Drain`, type Warning);
/// source as [`drain_failure`].
pub fn drain_event(pod: &str) -> String {
    format!("Eviction blocked by Too Many Requests (usually a pdb): {pod}")
}

/// Whether `upgradeSettings.overrideSettings` lets an upgrade starting at `now` bypass
/// the upgrade protections.
///
/// OpenAPI 2026-10-01 `UpgradeOverrideSettings`: `forceUpgrade` "Whether to force
/// upgrade the cluster. Note that this option instructs upgrade operation to bypass
/// upgrade protections such as checking for deprecated API usage"; `until` "Until when
/// the overrides are effective. Note that this only matches the start time of an
/// upgrade ... This field is not set by default. It must be set for the overrides to take
/// effect."
pub fn override_active(
    force_upgrade: bool,
    until: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    force_upgrade && until.is_some_and(|u| u > now)
}

/// Refuses a control-plane upgrade `from -> to` while a deprecated API that `to` removes
/// is in use (`calls`: API name and removed release), unless the override is active.
///
/// `stop-cluster-upgrade-api-breaking-changes.md`: AKS stops the upgrade when "The
/// upgrade operation is a Kubernetes minor version change for the cluster control
/// plane", "The Kubernetes version you're upgrading to is 1.26 or later" and the usage
/// was seen within 12 hours (in the simulator, usage is always recent). Its answer, a
/// 400: `{"code": "ValidationError", "message": "Control Plane upgrade is blocked due to
/// recent usage of a Kubernetes API deprecated in the specified version. Please refer to
/// https://kubernetes.io/docs/reference/using-api/deprecation-guide to migrate the usage.
/// To bypass this error, set enable-force-upgrade in upgradeSettings.overrideSettings.
/// Bypassing this error without migrating usage will result in the deprecated Kubernetes
/// API calls failing. Usage details: 1 error occurred:\n\t* usage has been detected on
/// API flowcontrol.apiserver.k8s.io.prioritylevelconfigurations.v1beta1, and was recently
/// seen at: 2023-03-23 20:57:18 +0000 UTC, which will be removed in 1.26\n\n",
/// "subcode": "UpgradeBlockedOnDeprecatedAPIUsage"}`. The bypass: [`override_active`].
pub fn check_deprecated_apis(
    from: KubeVersion,
    to: KubeVersion,
    calls: &[(String, MinorVersion)],
    seen_at: &str,
) -> Result<(), Refusal> {
    if to.minor_version() == from.minor_version() || to.minor_version() < MinorVersion::new(1, 26) {
        return Ok(());
    }
    let hits: Vec<&(String, MinorVersion)> = calls.iter().filter(|(_, r)| *r <= to.minor_version()).collect();
    if hits.is_empty() {
        return Ok(());
    }
    let noun = if hits.len() == 1 { "error" } else { "errors" };
    let mut details = format!("{} {noun} occurred:", hits.len());
    for (api, removed) in hits {
        details.push_str(&format!(
            "\n\t* usage has been detected on API {api}, and was recently seen at: {seen_at}, which will be removed in {removed}"
        ));
    }
    Err(Refusal {
        code: "ValidationError",
        message: format!(
            "Control Plane upgrade is blocked due to recent usage of a Kubernetes API deprecated in the specified version. Please refer to https://kubernetes.io/docs/reference/using-api/deprecation-guide to migrate the usage. To bypass this error, set enable-force-upgrade in upgradeSettings.overrideSettings. Bypassing this error without migrating usage will result in the deprecated Kubernetes API calls failing. Usage details: {details}\n\n"
        ),
        subcode: Some("UpgradeBlockedOnDeprecatedAPIUsage"),
    })
}

/// Fails the creation of `required` more vCPUs of `family` (or `cores`, the regional
/// total) in `location` when they would exceed the limit.
///
/// `create-upgrade-delete/error-code-quotaexceeded.md` (revision of ms.date 2026-10-08;
/// older revisions quote "Operation results in exceeding quota limits of Core"): during
/// an upgrade "AKS can
/// temporarily create extra surge nodes"; "If the AKS operation needs more vCPUs than are
/// available under either applicable quota [Total Regional vCPUs, VM-family vCPUs], the
/// operation can fail with a `QuotaExceeded` error", message "Create or update VMSS
/// <AKS-VM/VMSS-resource-ID> failed. Operation couldn't be completed because it results
/// in exceeding approved <SKU-family> Cores quota. Additional details - Deployment Model:
/// Resource Manager, Location: <region>, Current Limit: A, Current Usage: B, Additional
/// Required: C, (Minimum) New Limit Required: D." Azure's own wording, seen in public
/// issue threads (e.g. "Operation could not be completed as it results in exceeding
/// approved standardDSv2Family Cores quota ...", "... approved Total Regional Cores
/// quota ..."), is what the simulator answers, after "Create or update VMSS {id}
/// failed.". The operation fails asynchronously, when the surge nodes are created.
pub fn check_quota(family: &str, location: &str, u: super::quota::Usage, required: u64) -> Result<(), Refusal> {
    if u.current + required <= u.limit {
        return Ok(());
    }
    let what = if family == super::quota::REGIONAL {
        "Total Regional Cores".to_string()
    } else {
        format!("{family} Cores")
    };
    Err(refuse(
        "QuotaExceeded",
        format!(
            "Operation could not be completed as it results in exceeding approved {what} quota. Additional details - Deployment Model: Resource Manager, Location: {location}, Current Limit: {}, Current Usage: {}, Additional Required: {required}, (Minimum) New Limit Required: {}.",
            u.limit,
            u.current,
            u.current + required
        ),
    ))
}

/// Fails the creation of nodes needing `needed` addresses when the subnet has fewer
/// free (`limit` is its size less Azure's 5 reserved addresses, `used` what is taken).
///
/// `create-upgrade-delete/error-code-subnetisfull-upgrade.md`, "Troubleshoot the
/// SubnetIsFull error code during an AKS cluster upgrade" (ms.date 2026-04-21): "This
/// error occurs if
/// your cluster doesn't have enough IP addresses to create a new node"; message "Failed
/// to scale node pool '<AGENT POOL NAME>' in Kubernetes service '<NAME>'. Error:
/// VMSSAgentPoolReconciler retry failed: Code='SubnetIsFull' Message='<SUBNET NAME> with
/// address prefix <PREFIX> doesn't have enough capacity for IP addresses.' Details=[]";
/// the operation fails (asynchronously) when the surge nodes are created. What a node
/// needs: `network::addresses_per_node`. Not modelled: AKS's up-front
/// `InsufficientSubnetSize` validation (`connectivity/insufficientsubnetsize-error-advanced-networking.md`),
/// whose wording and timing are UNVERIFIED.
pub fn check_subnet(
    cluster: &str,
    pool: &str,
    subnet: &str,
    prefix: &str,
    limit: u64,
    used: u64,
    needed: u64,
) -> Result<(), Refusal> {
    if used + needed <= limit {
        return Ok(());
    }
    Err(refuse(
        "SubnetIsFull",
        format!(
            "Failed to scale node pool '{pool}' in Kubernetes service '{cluster}'. Error: VMSSAgentPoolReconciler retry failed: Code='SubnetIsFull' Message='{subnet} with address prefix {prefix} doesn't have enough capacity for IP addresses.' Details=[]"
        ),
    ))
}

/// Refuses every write but start on a stopped cluster.
///
/// `start-stop-cluster.md`: stopping "stop[s] your control plane and agent nodes
/// altogether". AKS's answer to any other write, a 400, as a public Terraform log shows
/// it (an agent pool CreateOrUpdate on a stopped cluster): `{"code":
/// "OperationNotAllowed", "details": null, "message": "An error has occurred in
/// subscription <sub>, resourceGroup: <rg> request: Managed Cluster is in stopped state,
/// no operations except for start are allowed.", "subcode": ""}`. UNVERIFIED in
/// Microsoft's docs (`create-upgrade-delete/operationnotallowed.md` documents only the
/// start/stop and pending-operation wordings); the simulator refuses cluster PUTs, pool
/// PUTs and node image upgrades alike.
pub fn check_not_stopped(stopped: bool, subscription: &str, resource_group: &str) -> Result<(), Refusal> {
    if !stopped {
        return Ok(());
    }
    Err(refuse(
        "OperationNotAllowed",
        format!(
            "An error has occurred in subscription {subscription}, resourceGroup: {resource_group} request: Managed Cluster is in stopped state, no operations except for start are allowed."
        ),
    ))
}

/// Checks that a pool may roll back while its cluster's Kubernetes auto-upgrade channel
/// is `channel`: `roll-back-node-pool-version.md` says the channel must be disabled
/// before a rollback (else AKS would upgrade the pool again). Unset and `none` are off.
/// UNVERIFIED: the article quotes no error; code `OperationNotAllowed` (400) is guessed
/// from AKS's other "not in this state" refusals ([`check_not_stopped`]).
pub fn check_rollback_channel(channel: &str) -> Result<(), Refusal> {
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
pub fn rollback_not_accepted(
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

    fn v(s: &str) -> KubeVersion {
        s.parse().unwrap()
    }

    fn code<T>(r: Result<T, Refusal>) -> &'static str {
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

    fn mv(s: &str) -> MinorVersion {
        s.parse().unwrap()
    }

    /// "The upgrade operation is a Kubernetes minor version change for the cluster control
    /// plane" and "The Kubernetes version you're upgrading to is 1.26 or later".
    #[test]
    fn deprecated_apis_block_only_minor_upgrades_that_remove_them() {
        let calls = [("policy.podsecuritypolicies.v1beta1".to_string(), mv("1.34"))];
        let seen = "2026-11-30 06:00:00 +0000 UTC";
        // A minor upgrade to the removing release, or past it, is refused.
        let e = check_deprecated_apis(v("1.33.2"), v("1.34.0"), &calls, seen).unwrap_err();
        assert_eq!(
            (e.code, e.subcode),
            ("ValidationError", Some("UpgradeBlockedOnDeprecatedAPIUsage"))
        );
        assert!(e.message.contains("Usage details: 1 error occurred:\n\t* usage has been detected on API policy.podsecuritypolicies.v1beta1, and was recently seen at: 2026-11-30 06:00:00 +0000 UTC, which will be removed in 1.34\n\n"), "{}", e.message);
        // Not a minor change, not yet the removing release, or a target before 1.26: passes.
        assert!(check_deprecated_apis(v("1.33.2"), v("1.33.5"), &calls, seen).is_ok());
        assert!(check_deprecated_apis(v("1.32.2"), v("1.33.0"), &calls, seen).is_ok());
        let old = [("x.v1beta1".to_string(), mv("1.25"))];
        assert!(check_deprecated_apis(v("1.24.2"), v("1.25.0"), &old, seen).is_ok());
    }

    /// `until` "must be set for the overrides to take effect", and it matches the start
    /// time of the upgrade.
    #[test]
    fn the_override_needs_force_and_a_future_until() {
        let now: chrono::DateTime<chrono::Utc> = "2026-11-30T07:00:00Z".parse().unwrap();
        let later = Some(now + chrono::Duration::hours(1));
        let earlier = Some(now - chrono::Duration::hours(1));
        assert!(override_active(true, later, now));
        assert!(!override_active(true, None, now));
        assert!(!override_active(true, earlier, now));
        assert!(!override_active(false, later, now));
    }

    #[test]
    fn quota_counts_family_and_regional_limits() {
        use super::super::quota::Usage;
        let u = Usage { limit: 18, current: 16 };
        assert!(check_quota("standardDSv3Family", "francecentral", u, 2).is_ok());
        let e = check_quota("standardDSv3Family", "francecentral", u, 4).unwrap_err();
        assert_eq!(e.code, "QuotaExceeded");
        assert_eq!(
            e.message,
            "Operation could not be completed as it results in exceeding approved standardDSv3Family Cores quota. Additional details - Deployment Model: Resource Manager, Location: francecentral, Current Limit: 18, Current Usage: 16, Additional Required: 4, (Minimum) New Limit Required: 20."
        );
        let e = check_quota("cores", "francecentral", u, 4).unwrap_err();
        assert!(
            e.message.contains("approved Total Regional Cores quota"),
            "{}",
            e.message
        );
    }

    #[test]
    fn subnets_and_pdbs_and_stopped_clusters() {
        assert!(check_subnet("c", "p", "s", "10.0.0.0/26", 59, 48, 11).is_ok());
        assert_eq!(
            check_subnet("c", "p", "s", "10.0.0.0/26", 59, 49, 11).unwrap_err().code,
            "SubnetIsFull"
        );
        assert!(check_unsatisfiable_pdbs(&[]).is_ok());
        let e = check_unsatisfiable_pdbs(&["a/x".into(), "b/y".into()]).unwrap_err();
        assert_eq!(
            e.message,
            "2 errors occurred:\n\t* PDB a/x has maxunavailble == 0 can't proceed with put operation\n\t* PDB b/y has maxunavailble == 0 can't proceed with put operation\n\n"
        );
        assert!(check_not_stopped(false, "s", "rg").is_ok());
        assert_eq!(
            check_not_stopped(true, "s", "rg").unwrap_err().code,
            "OperationNotAllowed"
        );
    }

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
