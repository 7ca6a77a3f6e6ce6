//! `RunPreflight`: the same checks as `ringmaster preflight`, for one cluster right
//! before its first step, with the wave's clusters ahead of it sharing its capacity.
//!
//! Reads: the cluster (ARM), its API server (PDBs, pods, nodes, `/metrics`, through the
//! client of the cluster's watch: no second credential read), the usages of its region
//! and subnets. The wave-mates' ARM documents come from a cache filled by
//! their own preflight (read once when missing), so a wave of n clusters costs O(n)
//! reads, not O(n²). A cluster or API server that cannot be read is not a finding here
//! (unless ARM shows why, e.g. the cluster is stopped): it goes the baseline's way
//! (retried, then the cluster fails), as before preflight.

use super::{Shared, send};
use crate::domain::fleet::{Catalogue, ClusterId};
use crate::engine::{ClusterRef, Input};
use crate::plan::ClusterPlan;
use crate::preflight::checks::{self, CheckSettings, Ctx, capacity};
use crate::preflight::facts::{ClusterFacts, FleetFacts, cluster_facts};
use crate::preflight::{Finding, read, sort_findings};

pub(super) async fn run(sh: &Shared, cluster: ClusterRef, plan: &ClusterPlan, wave: &str, others: &[ClusterPlan]) {
    let input = match findings(sh, plan, wave, others).await {
        Ok(findings) => Input::PreflightDone { cluster, findings },
        Err(reason) => Input::BaselineFailed {
            cluster,
            reason: format!("preflight: {reason}"),
        },
    };
    send(sh, input);
}

/// The ARM facts of a cluster (no Kubernetes part), from the cache or read.
async fn arm_facts(sh: &Shared, id: &ClusterId, fresh: bool) -> Result<ClusterFacts, String> {
    if !fresh && let Some(f) = sh.preflight_cache.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
        return Ok(f.clone());
    }
    let mc = sh.arm.get_cluster(id).await.map_err(|e| e.to_string())?;
    let state = crate::discovery::cluster_state(&id.subscription, &mc)?;
    let facts = cluster_facts(state, &mc, Err("not read".into()));
    sh.preflight_cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.clone(), facts.clone());
    Ok(facts)
}

async fn findings(sh: &Shared, plan: &ClusterPlan, wave: &str, others: &[ClusterPlan]) -> Result<Vec<Finding>, String> {
    let mut me = arm_facts(sh, &plan.id, true).await?;
    // Through the watch's client: its kubeconfig was read once, for both.
    me.kube = match super::exec::ensure_watch(sh, &plan.id).await {
        Ok(w) => read::kube_facts(w.client()).await,
        Err(e) => Err(e),
    };
    let mut mates = Vec::new();
    for o in others {
        // A wave-mate that cannot be read adds no need (its own preflight reported it).
        if let Ok(f) = arm_facts(sh, &o.id, false).await {
            mates.push((f, o));
        }
    }
    let mut fleet = FleetFacts::default();
    let all: Vec<&ClusterFacts> = std::iter::once(&me).chain(mates.iter().map(|(f, _)| f)).collect();
    read::usages(&sh.arm, &all, &mut fleet).await;
    let settings = CheckSettings::from_policy(&sh.policy);
    // No catalogue here: the plan was made from one, and AKS answers for the rest.
    let catalogue = Catalogue::default();
    let ctx = Ctx {
        facts: &me,
        plan,
        catalogue: &catalogue,
        fleet: &fleet,
        settings: &settings,
        now: sh.clock.now(),
        // Needs the catalogue too: the plan and `ringmaster preflight` warned already.
        rolls_back: false,
    };
    if let Err(e) = &me.kube {
        // What ARM alone shows may explain it (a stopped cluster's API server does not
        // answer): then that is the finding; else the baseline's way.
        let blocking: Vec<Finding> = checks::cluster::state(&ctx)
            .into_iter()
            .filter(|f| f.severity == crate::preflight::Severity::Blocks)
            .collect();
        return if blocking.is_empty() {
            Err(e.clone())
        } else {
            Ok(blocking)
        };
    }
    let mut out = checks::cluster_findings(&ctx);
    let mut members: Vec<(&ClusterFacts, &ClusterPlan)> = mates.iter().map(|(f, p)| (f, *p)).collect();
    members.push((&me, plan));
    out.extend(
        capacity::wave(&members, &fleet, &settings, wave)
            .into_iter()
            .filter(|f| f.cluster == plan.id),
    );
    sort_findings(&mut out);
    Ok(out)
}
