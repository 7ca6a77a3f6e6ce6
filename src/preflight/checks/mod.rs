//! The checks: pure functions from [`super::facts`] and the plan to findings. Each names
//! the AKS behaviour it predicts; `docs/preflight.md` lists them with their sources.
//!
//! Per cluster: [`cluster`] (state, deprecated APIs, target offered, end of support,
//! AKS's own upgraders) and [`workloads`] (PDBs, nodes and pods before the upgrade).
//! Per wave: [`capacity`] (vCPU quota and subnet addresses), because clusters upgraded
//! at once in the same subscription and region share one quota.

pub mod capacity;
pub mod cluster;
#[cfg(test)]
mod tests;
pub mod workloads;

use super::facts::{ClusterFacts, FleetFacts, IntOrPercent, PoolFacts};
use super::{ClusterReport, Finding, Severity, sort_findings};
use crate::domain::fleet::{Catalogue, ClusterId};
use crate::plan::{ClusterPlan, Plan, StepKind};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// What the policy says that the checks need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckSettings {
    /// `steps.max_surge`: overrides every pool's own when set.
    pub max_surge: Option<String>,
    /// ringmaster may set AKS's deprecated-API override (`forceUpgrade` with `until`).
    pub allow_force_upgrade: bool,
    /// Rings whose `on_gate_failure` is `rollback`.
    pub rollback_rings: Vec<String>,
}

impl CheckSettings {
    pub fn from_policy(p: &crate::policy::Policy) -> Self {
        CheckSettings {
            max_surge: p.steps.max_surge.clone(),
            allow_force_upgrade: p.preflight.allow_force_upgrade,
            rollback_rings: p
                .rings
                .iter()
                .filter(|r| r.on_gate_failure == crate::policy::OnGateFailure::Rollback)
                .map(|r| r.name.clone())
                .collect(),
        }
    }
}

/// One cluster's inputs.
pub struct Ctx<'a> {
    pub facts: &'a ClusterFacts,
    pub plan: &'a ClusterPlan,
    pub catalogue: &'a Catalogue,
    pub fleet: &'a FleetFacts,
    pub settings: &'a CheckSettings,
    pub now: DateTime<Utc>,
    /// The cluster's ring rolls back a pool step whose gate fails (`on_gate_failure`).
    pub rolls_back: bool,
}

impl Ctx<'_> {
    pub fn id(&self) -> &ClusterId {
        &self.facts.state.id
    }

    /// A finding about this cluster (add the AKS code it predicts with [`Finding::aks`]).
    pub fn finding(
        &self,
        pool: Option<&str>,
        check: super::Check,
        severity: Severity,
        seen: String,
        why: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            cluster: self.id().clone(),
            pool: pool.map(str::to_string),
            check,
            severity,
            aks_code: None,
            seen,
            why: why.into(),
            fix: fix.into(),
        }
    }
}

/// Pools whose nodes the plan replaces (a version or node-image step): only their
/// drains, surges and addresses matter. A control-plane step touches no node.
pub fn upgraded_pools(plan: &ClusterPlan) -> BTreeSet<&str> {
    plan.steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::PoolVersion { pool, .. }
            | StepKind::NodeImage { pool, .. }
            | StepKind::PoolRollback { pool, .. } => Some(pool.as_str()),
            StepKind::ControlPlane { .. } => None,
        })
        .collect()
}

/// AKS's default `maxSurge` when a pool sets none (the API reference: 10%).
pub const DEFAULT_MAX_SURGE: &str = "10%";

/// Nodes AKS adds per batch: `maxSurge` as a count, or a percentage of the pool's nodes
/// rounded up (AKS: "rounded up to the nearest whole node").
pub fn surge_nodes(pool: &PoolFacts, settings: &CheckSettings) -> u32 {
    let spec = settings
        .max_surge
        .as_deref()
        .or(pool.max_surge.as_deref())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(DEFAULT_MAX_SURGE);
    match IntOrPercent::parse(spec) {
        Some(v) => v.scaled(i64::from(pool.count)).clamp(0, i64::from(u32::MAX)) as u32,
        None => 1,
    }
}

/// The per-cluster checks.
pub fn cluster_findings(ctx: &Ctx<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(cluster::state(ctx));
    out.extend(cluster::deprecated_apis(ctx));
    out.extend(cluster::target_offered(ctx));
    out.extend(cluster::end_of_support(ctx));
    out.extend(cluster::channels(ctx));
    out.extend(cluster::rollback(ctx));
    out.extend(workloads::pdbs(ctx));
    out.extend(workloads::nodes_and_pods(ctx));
    out
}

/// Preflight of every cluster the plan touches: per-cluster checks, then the capacity
/// checks wave by wave. Clusters whose facts were not read are reported unreadable.
pub fn run(
    plan: &Plan,
    fleet: &FleetFacts,
    catalogue: &Catalogue,
    settings: &CheckSettings,
    now: DateTime<Utc>,
) -> Vec<ClusterReport> {
    let mut out = Vec::new();
    for ring in &plan.rings {
        for wave in &ring.waves {
            let mut reports: Vec<ClusterReport> = Vec::new();
            let mut members = Vec::new();
            for c in &wave.clusters {
                let mut findings = Vec::new();
                match fleet.clusters.get(&c.id) {
                    Some(facts) => {
                        let ctx = Ctx {
                            facts,
                            plan: c,
                            catalogue,
                            fleet,
                            settings,
                            now,
                            rolls_back: settings.rollback_rings.contains(&ring.name),
                        };
                        findings = cluster_findings(&ctx);
                        members.push((facts, c));
                    }
                    None => findings.push(Finding {
                        cluster: c.id.clone(),
                        pool: None,
                        check: super::Check::Unreadable,
                        severity: Severity::Blocks,
                        aks_code: None,
                        seen: "the cluster was not in the discovery poll".into(),
                        why: "nothing about it could be checked".into(),
                        fix: "check that the identity can read it".into(),
                    }),
                }
                reports.push(ClusterReport {
                    id: c.id.clone(),
                    ring: ring.name.clone(),
                    wave: wave.name.clone(),
                    findings,
                });
            }
            for f in capacity::wave(&members, fleet, settings, &wave.name) {
                if let Some(r) = reports.iter_mut().find(|r| r.id == f.cluster) {
                    r.findings.push(f);
                }
            }
            for r in &mut reports {
                sort_findings(&mut r.findings);
            }
            out.extend(reports);
        }
    }
    out
}
