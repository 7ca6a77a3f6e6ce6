//! AKS's preflight refusals as the simulator enforces them: what AKS refuses, or fails,
//! for reasons outside versions (PDBs, drains, deprecated APIs and their override,
//! quotas, subnets, stopped clusters), each with its source and AKS's wording, and
//! their tests.

use super::{Refusal, refuse};
use crate::version::{KubeVersion, MinorVersion};

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
pub(crate) fn check_unsatisfiable_pdbs(pdbs: &[String]) -> Result<(), Refusal> {
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
pub(crate) fn drain_failure(node: &str, namespace: &str, pod: &str, pdb: &str, unready: u32) -> Refusal {
    refuse(
        "UpgradeFailed",
        format!(
            "Drain node {node} failed when evicting pod {pod} failed with Too Many Requests error. This error is often caused by a restrictive Pod Disruption Budget (PDB) policy. See https://aka.ms/aks/debugdrainfailures. Original error: Cannot evict pod as it would violate the pod's disruption budget.. PDB debug info: {namespace}/{pod} blocked by pdb {pdb} with {unready} unready pods."
        ),
    )
}

/// The node event AKS records while a drain is blocked (reason `Drain`, type Warning);
/// source as [`drain_failure`].
pub(crate) fn drain_event(pod: &str) -> String {
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
pub(crate) fn override_active(
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
pub(crate) fn check_deprecated_apis(
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
pub(crate) fn check_quota(family: &str, location: &str, u: crate::quota::Usage, required: u64) -> Result<(), Refusal> {
    if u.current + required <= u.limit {
        return Ok(());
    }
    let what = if family == crate::quota::REGIONAL {
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
pub(crate) fn check_subnet(
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
pub(crate) fn check_not_stopped(stopped: bool, subscription: &str, resource_group: &str) -> Result<(), Refusal> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::v;

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
        use crate::quota::Usage;
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
}
