//! Preflight: before ringmaster touches a cluster, what will make AKS refuse or fail the
//! upgrade the plan asks for, predicted from what can be read beforehand.
//!
//! Three layers, like the rest of ringmaster:
//! - [`facts`]: what was read (ARM's cluster, pool and usage documents, the cluster's
//!   PodDisruptionBudgets, pods, nodes and deprecated-API metric), as plain data;
//! - [`checks`]: pure functions from facts and the plan to [`Finding`]s, one module per
//!   kind of refusal, each naming the AKS behaviour it predicts (`docs/preflight.md`);
//! - [`read`]: the reads, fleet-wide, within ARM's read budget (one Compute usage read
//!   per subscription and region, one Network usage read per virtual network, one
//!   credential read per cluster; everything else comes from the discovery poll or the
//!   cluster's own API server).
//!
//! `ringmaster preflight` prints the [`Report`]; the engine runs the same checks for one
//! cluster right before its first step and acts on blocking findings as the policy says.

pub mod checks;
pub mod facts;
pub mod read;
pub mod render;
pub mod vm_sizes;

use crate::domain::fleet::ClusterId;
use serde::{Deserialize, Serialize};

/// Exit status of `ringmaster preflight` when at least one finding blocks.
pub const EXIT_BLOCKED: u8 = 3;

/// Whether a finding stops the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    /// AKS would refuse the upgrade or the upgrade would fail (or ringmaster will not
    /// start it, e.g. on a stopped cluster).
    Blocks,
    /// Worth knowing before the upgrade; it does not stop it.
    Warns,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Blocks => "blocks",
            Severity::Warns => "warns",
        }
    }
}

/// What a finding is about. One variant per check of `docs/preflight.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Check {
    /// A PodDisruptionBudget that cannot allow a drain of a pool the plan upgrades.
    Pdb,
    /// Recent use of a Kubernetes API that the target minor removes.
    DeprecatedApi,
    /// vCPU quota of the subscription and region for the surge nodes.
    Quota,
    /// Free addresses of a pool's subnet for the surge nodes (and their pods).
    Subnet,
    /// The cluster's or a pool's provisioning or power state.
    ClusterState,
    /// Nodes NotReady before the upgrade.
    NodesNotReady,
    /// Pods not Ready before the upgrade.
    WorkloadsUnhealthy,
    /// AKS's own upgraders (auto-upgrade, node OS channel) would compete.
    UpgradeChannel,
    /// The target is not offered in the cluster's region.
    TargetNotOffered,
    /// The current version leaves support before the plan can move the cluster.
    EndOfSupport,
    /// A pool AKS could not roll back should its gate fail (rings that roll back).
    Rollback,
    /// Something preflight needed could not be read (fail closed).
    Unreadable,
}

impl Check {
    pub fn label(self) -> &'static str {
        match self {
            Check::Pdb => "pdb",
            Check::DeprecatedApi => "deprecated-api",
            Check::Quota => "quota",
            Check::Subnet => "subnet",
            Check::ClusterState => "cluster-state",
            Check::NodesNotReady => "nodes-not-ready",
            Check::WorkloadsUnhealthy => "workloads-unhealthy",
            Check::UpgradeChannel => "upgrade-channel",
            Check::TargetNotOffered => "target-not-offered",
            Check::EndOfSupport => "end-of-support",
            Check::Rollback => "rollback",
            Check::Unreadable => "unreadable",
        }
    }

    /// Every check, in report order.
    pub const ALL: [Check; 12] = [
        Check::ClusterState,
        Check::Pdb,
        Check::DeprecatedApi,
        Check::Quota,
        Check::Subnet,
        Check::TargetNotOffered,
        Check::EndOfSupport,
        Check::UpgradeChannel,
        Check::NodesNotReady,
        Check::WorkloadsUnhealthy,
        Check::Rollback,
        Check::Unreadable,
    ];
}

/// One thing preflight found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub cluster: ClusterId,
    /// The pool it is about, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    pub check: Check,
    pub severity: Severity,
    /// The error AKS answers (or the operation fails) with, when it is an AKS refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aks_code: Option<String>,
    /// What was seen, with its numbers.
    pub seen: String,
    /// Why it matters for this upgrade.
    pub why: String,
    /// How to fix it.
    pub fix: String,
}

impl Finding {
    /// The error AKS answers with, when the finding predicts a refusal.
    pub fn aks(mut self, code: &str) -> Self {
        self.aks_code = Some(code.to_string());
        self
    }
}

/// Preflight of one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterReport {
    pub id: ClusterId,
    pub ring: String,
    pub wave: String,
    /// Blocking findings first, then by check and pool.
    pub findings: Vec<Finding>,
}

impl ClusterReport {
    pub fn blocking(&self) -> usize {
        self.findings.iter().filter(|f| f.severity == Severity::Blocks).count()
    }
}

/// Preflight of every cluster the plan would touch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub taken_at: chrono::DateTime<chrono::Utc>,
    pub target: Option<String>,
    pub clusters: Vec<ClusterReport>,
    /// Reads preflight made (ARM and Kubernetes), for the read budget.
    pub reads: read::ReadCounts,
}

impl Report {
    pub fn blocking(&self) -> usize {
        self.clusters.iter().map(ClusterReport::blocking).sum()
    }

    pub fn blocked_clusters(&self) -> usize {
        self.clusters.iter().filter(|c| c.blocking() > 0).count()
    }
}

/// Sorts findings the way reports show them: blocking first, then check order, pool.
pub fn sort_findings(f: &mut [Finding]) {
    let rank = |c: Check| Check::ALL.iter().position(|x| *x == c).unwrap_or(usize::MAX);
    f.sort_by(|a, b| (a.severity, rank(a.check), &a.pool, &a.seen).cmp(&(b.severity, rank(b.check), &b.pool, &b.seen)));
}

/// Preflight of every cluster `plan` touches: reads what the checks need (see [`read`])
/// and runs them.
pub async fn run(
    arm: &crate::arm::AksClient,
    tokens: std::sync::Arc<dyn crate::identity::TokenSource>,
    discovery: &crate::discovery::Discovery,
    plan: &crate::plan::Plan,
    settings: &checks::CheckSettings,
    support: crate::upgrades::SupportCalendar,
    now: chrono::DateTime<chrono::Utc>,
) -> Report {
    let ids: Vec<ClusterId> = plan
        .rings
        .iter()
        .flat_map(|r| &r.waves)
        .flat_map(|w| &w.clusters)
        .map(|c| c.id.clone())
        .collect();
    let (facts, reads) =
        read::read_fleet(arm, tokens, &discovery.snapshot.clusters, &discovery.raw, &ids, support).await;
    Report {
        taken_at: now,
        target: plan
            .target
            .version
            .map(|v| v.to_string())
            .or(Some(plan.target.channel.clone())),
        clusters: checks::run(plan, &facts, &discovery.snapshot.catalogue, settings, now),
        reads,
    }
}
