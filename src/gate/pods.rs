//! Pod checks, per owner (namespace/kind/name) in the selected namespaces.
//!
//! **Per owner, not overall.** `min_ready_ratio` applies to each owner's Ready pods over
//! its desired replicas. An overall ratio lets one workload go fully down behind many
//! healthy ones (a 3-replica API at 0/3 in a 200-pod cluster is still 98.5% Ready); the
//! gate exists to catch exactly that. The price is strictness for small owners (at 0.98
//! a 3-replica owner needs 3/3), which is what a rollout gate should ask for anyway; a
//! namespace that cannot meet it is excluded in the policy.
//!
//! **Desired, not existing.** Pods evicted by a drain and not rescheduled do not exist,
//! so a ratio over existing pods would look perfect. How many are desired depends on
//! the owner's kind, since the snapshot only knows ReplicaSets' replicas ([`DesiredFrom`]).

use super::baseline::{Baseline, OwnerBaseline};
use super::reason::{MAX_PODS_LISTED, OwnerRef, Reason};
use super::snapshot::{KubeSnapshot, OwnerPods};
use super::{GateSpec, selects_namespace};
use std::collections::BTreeMap;

/// Slack for comparing ratios of counts with ratios from the policy. A parsed `0.98`
/// and `49/50` round to the same float, but a computed ratio (`0.1 + 0.2`) may not; no
/// ratio of real replica counts is within 1e-9 of a policy value without being meant
/// as equal.
const EPS: f64 = 1e-9;

/// Where an owner's desired replica count comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DesiredFrom {
    /// ReplicaSets (Deployments' pods): the snapshot has `spec.replicas`. An owner gone
    /// since the baseline was deleted on purpose (nothing is desired any more).
    Owner,
    /// DaemonSets and mirror pods (owner kind `Node`): their count follows the nodes,
    /// which an upgrade replaces, so the pods that exist are what is desired.
    Existing,
    /// Everything else (StatefulSets, bare pods, custom controllers): the snapshot
    /// knows only the pods that exist, so at least as many as in the baseline are
    /// desired, and an owner gone since the baseline is 0 Ready out of its baseline.
    /// An evicted bare pod never comes back: that is a loss the gate must report.
    AtLeastBaseline,
    /// Jobs run to completion and their finished pods are never Ready: readiness and
    /// regression are not checked (crash loops still are).
    Skip,
}

impl DesiredFrom {
    pub fn of_kind(kind: &str) -> DesiredFrom {
        match kind {
            "ReplicaSet" => DesiredFrom::Owner,
            "DaemonSet" | "Node" => DesiredFrom::Existing,
            "Job" => DesiredFrom::Skip,
            _ => DesiredFrom::AtLeastBaseline,
        }
    }
}

/// What the pod checks counted, for [`super::Healthy`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct PodTotals {
    pub owners: u32,
    pub ready: u32,
    pub desired: u32,
}

/// An owner now, as the checks see it (absent owners carried from the baseline are 0/0).
struct Now {
    desired: u32,
    existing: u32,
    ready: u32,
    crash_looping: u32,
    restarts: u32,
    not_ready_pods: Vec<String>,
}

fn now_of(o: Option<&OwnerPods>) -> Now {
    match o {
        Some(o) => Now {
            desired: o.desired,
            existing: o.existing,
            ready: o.ready,
            crash_looping: o.crash_looping,
            restarts: o.restarts,
            not_ready_pods: o.not_ready_pods.iter().take(MAX_PODS_LISTED).cloned().collect(),
        },
        None => Now {
            desired: 0,
            existing: 0,
            ready: 0,
            crash_looping: 0,
            restarts: 0,
            not_ready_pods: Vec::new(),
        },
    }
}

/// Ready over desired; nothing desired is fully ready.
fn ratio(ready: u32, desired: u32) -> f64 {
    if desired == 0 {
        1.0
    } else {
        f64::from(ready.min(desired)) / f64::from(desired)
    }
}

/// Runs the readiness, crash-loop and regression checks on every selected owner, now or
/// in the baseline, in owner order; reasons are appended per owner.
pub(super) fn check(
    snap: &KubeSnapshot,
    spec: &GateSpec,
    baseline: Option<&Baseline>,
    reasons: &mut Vec<Reason>,
) -> PodTotals {
    let mut merged: BTreeMap<OwnerRef, (Option<&OwnerPods>, Option<&OwnerBaseline>)> = BTreeMap::new();
    for o in &snap.owners {
        if selects_namespace(spec, &o.owner.namespace) {
            merged.entry(OwnerRef::from(&o.owner)).or_default().0 = Some(o);
        }
    }
    for b in baseline.map_or(&[][..], |b| &b.owners[..]) {
        if selects_namespace(spec, &b.owner.namespace) {
            merged.entry(b.owner.clone()).or_default().1 = Some(b);
        }
    }
    let mut totals = PodTotals::default();
    for (owner, (current, base)) in merged {
        let from = DesiredFrom::of_kind(&owner.kind);
        if current.is_none() && from != DesiredFrom::AtLeastBaseline {
            continue;
        }
        let now = now_of(current);
        check_crash_loop(&owner, &now, base, reasons);
        if from == DesiredFrom::Skip {
            continue;
        }
        let desired = match (from, base) {
            (DesiredFrom::AtLeastBaseline, Some(b)) => now.desired.max(b.desired),
            _ => now.desired,
        };
        totals.owners += 1;
        totals.ready += now.ready.min(desired);
        totals.desired += desired;
        check_ready(spec, &owner, &now, desired, reasons);
        if spec.no_regression
            && let Some(b) = base
        {
            check_regression(spec, &owner, &now, desired, b, reasons);
        }
    }
    totals
}

fn check_ready(spec: &GateSpec, owner: &OwnerRef, now: &Now, desired: u32, reasons: &mut Vec<Reason>) {
    let required = spec.pod_readiness.min_ready_ratio;
    let r = ratio(now.ready, desired);
    if r + EPS < required {
        reasons.push(Reason::PodsNotReady {
            owner: owner.clone(),
            ready: now.ready,
            desired,
            existing: now.existing,
            ratio: r,
            required,
            not_ready_pods: now.not_ready_pods.clone(),
            not_ready: now.existing.saturating_sub(now.ready),
        });
    }
}

/// New crash loops only: a pod that was already crash-looping before the step is the
/// workload's problem, not the upgrade's (its readiness is still judged by the ratio).
fn check_crash_loop(owner: &OwnerRef, now: &Now, base: Option<&OwnerBaseline>, reasons: &mut Vec<Reason>) {
    let (before, restarts_before) = base.map_or((0, 0), |b| (b.crash_looping, b.restarts));
    if now.crash_looping > before {
        reasons.push(Reason::NewCrashLoop {
            owner: owner.clone(),
            crash_looping: now.crash_looping,
            baseline_crash_looping: before,
            restarts: now.restarts,
            baseline_restarts: restarts_before,
        });
    }
}

fn check_regression(
    spec: &GateSpec,
    owner: &OwnerRef,
    now: &Now,
    desired: u32,
    base: &OwnerBaseline,
    reasons: &mut Vec<Reason>,
) {
    let r = ratio(now.ready, desired);
    let before = ratio(base.ready, base.desired);
    if r + spec.regression_tolerance + EPS < before {
        reasons.push(Reason::ReadinessRegression {
            owner: owner.clone(),
            ready: now.ready,
            desired,
            ratio: r,
            baseline_ready: base.ready,
            baseline_desired: base.desired,
            baseline_ratio: before,
            tolerance: spec.regression_tolerance,
        });
    }
}
