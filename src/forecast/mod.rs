//! The forecast: when each cluster, ring and the rollout will be done, before the first
//! cluster is touched.
//!
//! Not a second copy of the engine's rules: [`forecast`] drives the pure engine
//! (`engine::advance`) itself on a virtual clock, answering its commands as AKS and the
//! people are predicted to answer (every preflight clear, every call accepted, each
//! operation ending after the [`model`]'s duration, workloads healthy as soon as it ends,
//! each approval given `approval_after` after it is asked). Plan order, one step at a time
//! per cluster, `max_parallel`, waves and rings in order, soaks, gate settle times, pool
//! soaks, earliest starts from maintenance windows and blackouts, approvals: all of it is
//! the engine's own doing, so the forecast cannot drift from what the daemon does.
//!
//! Pure: time, the plan and the pools' shapes are inputs. `docs/forecast.md` says what it
//! assumes and what it does not know.

pub mod gantt;
pub mod history;
pub mod model;
pub mod render;

use crate::domain::fleet::ClusterId;
use crate::engine::{self, Command, Input, NotifyEvent, Rollout, Settings};
use crate::plan::StepKind;
use chrono::{DateTime, Utc};
use model::{Model, PoolShape};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// What the forecast assumes beyond the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Assumptions {
    pub model: Model,
    /// How long after a ring asks for its approval it is given.
    pub approval_after: Duration,
    /// Factors learned from history, per kind of step (none: the model as it is).
    pub history: history::Calibration,
}

/// Each cluster's pools: their shapes (node count, surge, soak).
pub type Pools = BTreeMap<ClusterId, BTreeMap<String, PoolShape>>;

/// The timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub policy: String,
    pub start: DateTime<Utc>,
    /// When the last ring passes; `None` when the rollout does not end within the horizon
    /// (a window that never opens, ...).
    pub finish: Option<DateTime<Utc>>,
    pub rings: Vec<RingForecast>,
    /// What the figures rest on, in words.
    pub assumptions: Vec<String>,
    pub model: Model,
    /// The history the model was calibrated with (empty: none).
    pub history: history::Calibration,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RingForecast {
    pub name: String,
    /// When its approval is asked and given (rings that need one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_asked: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved: Option<DateTime<Utc>>,
    pub start: Option<DateTime<Utc>>,
    /// After its soak.
    pub finish: Option<DateTime<Utc>>,
    pub clusters: Vec<ClusterForecast>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterForecast {
    pub id: ClusterId,
    pub wave: String,
    pub start: Option<DateTime<Utc>>,
    pub finish: Option<DateTime<Utc>>,
    pub steps: Vec<StepForecast>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepForecast {
    /// `controlPlane`, `poolVersion`, `nodeImage` or `poolRollback`.
    pub kind: String,
    pub step: String,
    /// When its call is sent.
    pub start: Option<DateTime<Utc>>,
    /// When AKS's operation is predicted to end.
    pub operation_end: Option<DateTime<Utc>>,
    /// When the step is done (gate passed, pool soak over).
    pub finish: Option<DateTime<Utc>>,
}

/// How far ahead the forecast looks before it gives up on a rollout that does not end.
const HORIZON_DAYS: i64 = 400;

/// Rollouts of more clusters are not forecast at their creation, nor given an ETA: the
/// engine run costs about (clusters x steps)^2 (each transition scans the rollout).
pub const MAX_CLUSTERS: usize = 1000;

/// The approval delay a rollout's own forecast assumes (`forecast --approval-after`
/// sets another for a forecast printed).
pub const DEFAULT_APPROVAL_AFTER: Duration = Duration::from_secs(3600);

/// A cluster is late when its finish, forecast again now, is this much later than the
/// forecast made at the rollout's start said.
pub const LATE_AFTER: Duration = Duration::from_secs(5 * 60);

/// The forecast of a new rollout from `start`. Each step gets its expected duration
/// (`StepRun::expected_secs`) and the rollout the forecast (`Rollout::forecast`), so
/// that a running rollout's ETA ([`eta`]) and lateness come from the same figures.
pub fn at_start(r: &mut Rollout, s: &Settings, pools: &Pools, a: &Assumptions, start: DateTime<Utc>) -> Timeline {
    annotate(r, pools, a);
    let tl = timeline(&drive(r.clone(), s, Input::Tick, start, a), a, start);
    r.forecast = Some(std::sync::Arc::new(engine::ForecastRecord {
        made_at: start,
        finish: tl.finish,
        approval_after_secs: a.approval_after.as_secs(),
        rings: tl
            .rings
            .iter()
            .filter_map(|x| Some((x.name.clone(), x.finish?)))
            .collect(),
        clusters: tl
            .rings
            .iter()
            .flat_map(|x| &x.clusters)
            .filter_map(|c| Some((c.id.to_string(), c.finish?)))
            .collect(),
    }));
    tl
}

/// Drives the engine over `rollout` (new, as planned) from `start` to its end.
pub fn forecast(mut r: Rollout, s: &Settings, pools: &Pools, a: &Assumptions, start: DateTime<Utc>) -> Timeline {
    annotate(&mut r, pools, a);
    let run = drive(r, s, Input::Tick, start, a);
    timeline(&run, a, start)
}

/// Sets each step's expected operation duration from its pool's shape (the model's, as
/// history calibrates it).
fn annotate(r: &mut Rollout, pools: &Pools, a: &Assumptions) {
    for ring in &mut r.rings {
        for w in &mut ring.waves {
            for c in &mut w.clusters {
                let c = std::sync::Arc::make_mut(c);
                let shapes = pools.get(&c.id);
                for st in &mut c.steps {
                    let d = duration(&a.model, shapes, &st.kind).as_secs_f64() * a.history.factor(st.kind.name());
                    st.expected_secs = Some(d.round() as u64);
                }
            }
        }
    }
}

/// What remains of a running rollout, forecast now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Eta {
    pub at: DateTime<Utc>,
    /// `None`: not within the horizon (or the rollout waits for something the forecast
    /// cannot foresee, such as a pause).
    pub finish: Option<DateTime<Utc>>,
    /// Rings not passed yet, with their forecast finish.
    pub rings: Vec<RingEta>,
    /// Unfinished clusters now forecast to finish more than [`LATE_AFTER`] after the
    /// forecast made at the start said.
    pub late: Vec<Late>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RingEta {
    pub name: String,
    pub finish: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Late {
    pub cluster: ClusterId,
    /// What the forecast at the start said.
    pub forecast: DateTime<Utc>,
    /// What it says now (`None`: beyond the horizon).
    pub now: Option<DateTime<Utc>>,
}

/// The ETA of a running rollout at `now`: the engine driven on from the stored state (as
/// after a restart: operations in flight end when their expected duration says, gates
/// pass, approvals come as the forecast at the start assumed). `None` for a rollout that
/// has ended or is paused (nothing moves until a person acts).
pub fn eta(r: &Rollout, s: &Settings, now: DateTime<Utc>) -> Option<Eta> {
    if r.status.is_terminal()
        || matches!(r.status, engine::RolloutStatus::Paused { .. })
        || r.clusters().count() > MAX_CLUSTERS
    {
        return None;
    }
    let a = Assumptions {
        history: Default::default(),
        model: Model::default(),
        approval_after: r
            .forecast
            .as_ref()
            .map_or(DEFAULT_APPROVAL_AFTER, |f| Duration::from_secs(f.approval_after_secs)),
    };
    let run = drive(r.clone(), s, Input::Resumed, now, &a);
    let done = &run.rollout;
    let finish = done
        .status
        .is_terminal()
        .then(|| done.rings.iter().filter_map(|x| x.finished_at).max())
        .flatten();
    let rings = r
        .rings
        .iter()
        .zip(&done.rings)
        .filter(|(before, _)| before.status != engine::RingStatus::Passed)
        .map(|(_, after)| RingEta {
            name: after.name.clone(),
            finish: after.finished_at,
        })
        .collect();
    let late = match &r.forecast {
        None => Vec::new(),
        Some(f) => r
            .clusters()
            .filter(|(_, c)| !c.status.is_finished())
            .filter_map(|(cref, c)| {
                let forecast = *f.clusters.get(&c.id.to_string())?;
                let again = done.cluster(cref).finished_at;
                let late = again.is_none_or(|t| t > crate::domain::duration::later(forecast, LATE_AFTER));
                late.then(|| Late {
                    cluster: c.id.clone(),
                    forecast,
                    now: again,
                })
            })
            .collect(),
    };
    Some(Eta {
        at: now,
        finish,
        rings,
        late,
    })
}

/// An engine run to its end on the virtual clock.
struct Run {
    rollout: Rollout,
    op_end: BTreeMap<engine::StepRef, DateTime<Utc>>,
    asked: BTreeMap<String, DateTime<Utc>>,
}

/// Drives the engine from `first` at `start` until the rollout ends (or the horizon),
/// answering its commands as predicted. Each operation ends `expected_secs` after its
/// step started (not before `start`: one in flight ends now at the earliest).
fn drive(mut r: Rollout, s: &Settings, first: Input, start: DateTime<Utc>, a: &Assumptions) -> Run {
    let horizon = start + chrono::Duration::days(HORIZON_DAYS);
    // Inputs due at a time, in the order they were scheduled (the engine's answers come
    // in that order from a real executor too).
    let mut queue: BTreeMap<(DateTime<Utc>, u64), Input> = BTreeMap::new();
    let mut seq = 0u64;
    let mut push = |q: &mut BTreeMap<(DateTime<Utc>, u64), Input>, at: DateTime<Utc>, input: Input| {
        seq += 1;
        q.insert((at, seq), input);
    };
    push(&mut queue, start, first);
    let mut op_end: BTreeMap<engine::StepRef, DateTime<Utc>> = BTreeMap::new();
    let mut asked: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let pools = r
        .clusters()
        .map(|(_, c)| (c.id.clone(), c.pools.clone()))
        .collect::<BTreeMap<_, _>>();
    while let Some(((now, _), input)) = queue.pop_first() {
        if now > horizon || r.status.is_terminal() {
            break;
        }
        for c in engine::advance(&mut r, s, input, now) {
            match c {
                Command::RunPreflight { cluster, .. } => push(
                    &mut queue,
                    now,
                    Input::PreflightDone {
                        cluster,
                        findings: Vec::new(),
                    },
                ),
                Command::Claim { cluster, .. } => push(&mut queue, now, Input::Claimed { cluster }),
                Command::TakeBaseline { cluster, id } => {
                    // Versions matter only to rollbacks, which the forecast does not
                    // predict; a running rollout's are kept as they are.
                    let known = pools.get(&id).cloned().unwrap_or_default();
                    push(
                        &mut queue,
                        now,
                        Input::BaselineTaken {
                            cluster,
                            baseline: Default::default(),
                            pools: known,
                        },
                    );
                }
                Command::StartStep { step, .. }
                | Command::Reconcile { step, .. }
                | Command::FollowOperation { step, .. } => {
                    if op_end.contains_key(&step) {
                        continue;
                    }
                    let st = r.step(step);
                    let began = st.started_at.unwrap_or(now);
                    let expected = st
                        .expected_secs
                        .map_or_else(|| duration(&a.model, None, &st.kind), Duration::from_secs);
                    let end = crate::domain::duration::later(began, expected).max(now);
                    op_end.insert(step, end);
                    if matches!(st.status, engine::StepStatus::Starting { .. }) {
                        push(&mut queue, now, Input::StepAccepted { step, op: None });
                    }
                    push(&mut queue, end, Input::OperationFinished { step, result: Ok(()) });
                }
                Command::Gate { step, .. } => push(
                    &mut queue,
                    now,
                    Input::GateObserved {
                        step,
                        healthy: true,
                        reasons: Vec::new(),
                        at: now,
                    },
                ),
                Command::Notify {
                    event: NotifyEvent::ApprovalNeeded,
                    ring: Some(ring),
                    ..
                } if !asked.contains_key(&ring) => {
                    // Asked now, or (a running rollout) since the ring began to wait.
                    let since = r
                        .rings
                        .iter()
                        .find(|x| x.name == ring)
                        .and_then(|x| match x.status {
                            engine::RingStatus::AwaitingApproval { since } => Some(since),
                            _ => None,
                        })
                        .unwrap_or(now);
                    asked.insert(ring.clone(), since);
                    let at = crate::domain::duration::later(since, a.approval_after).max(now);
                    push(
                        &mut queue,
                        at,
                        Input::Approve {
                            ring,
                            by: "forecast".into(),
                            comment: "assumed".into(),
                            expires_at: None,
                        },
                    );
                }
                Command::WakeAt { at } => push(&mut queue, at, Input::Tick),
                _ => {}
            }
        }
    }
    Run {
        rollout: r,
        op_end,
        asked,
    }
}

/// The predicted duration of one step's AKS operation.
fn duration(m: &Model, pools: Option<&BTreeMap<String, PoolShape>>, kind: &StepKind) -> Duration {
    match kind.pool() {
        None => m.control_plane,
        Some(pool) => {
            let shape = pools.and_then(|p| p.get(pool)).copied().unwrap_or(PoolShape {
                count: 3,
                surge: 1,
                soak_minutes: 0,
            });
            m.pool(shape)
        }
    }
}

fn timeline(run: &Run, a: &Assumptions, start: DateTime<Utc>) -> Timeline {
    let (r, op_end, asked) = (&run.rollout, &run.op_end, &run.asked);
    let rings: Vec<RingForecast> = r
        .rings
        .iter()
        .enumerate()
        .map(|(ri, ring)| RingForecast {
            name: ring.name.clone(),
            approval_asked: asked.get(&ring.name).copied(),
            approved: ring.approval.as_ref().map(|x| x.at),
            start: ring.started_at,
            finish: ring.finished_at,
            clusters: ring
                .waves
                .iter()
                .enumerate()
                .flat_map(|(wi, w)| {
                    w.clusters.iter().enumerate().map(move |(ci, c)| ClusterForecast {
                        id: c.id.clone(),
                        wave: w.name.clone(),
                        start: c.started_at,
                        finish: c.finished_at,
                        steps: c
                            .steps
                            .iter()
                            .enumerate()
                            .map(|(si, st)| StepForecast {
                                kind: st.kind.name().into(),
                                step: engine::describe(&st.kind),
                                start: st.started_at,
                                operation_end: op_end
                                    .get(&engine::StepRef {
                                        ring: ri,
                                        wave: wi,
                                        cluster: ci,
                                        step: si,
                                    })
                                    .copied(),
                                finish: st.finished_at,
                            })
                            .collect(),
                    })
                })
                .collect(),
        })
        .collect();
    let finish = r
        .status
        .is_terminal()
        .then(|| rings.iter().filter_map(|x| x.finish).max())
        .flatten();
    let m = &a.model;
    let fmt = crate::domain::duration::format_duration;
    Timeline {
        policy: r.plan.policy.clone(),
        start,
        finish,
        rings,
        assumptions: vec![
            "every cluster passes its preflight and every gate: healthy as soon as its operation ends (then the policy's settle time)".into(),
            format!("each approval is given {} after it is asked", fmt(a.approval_after)),
            format!(
                "AKS's operations (estimates; see docs/forecast.md): control plane {}; a pool {} to provision its surge, then per batch of maxSurge nodes {} to drain and {} to reimage (plus nodeSoakDurationInMinutes), then {} to drain and delete the surge",
                fmt(m.control_plane),
                fmt(m.node_provision),
                fmt(m.node_drain),
                fmt(m.node_reimage),
                fmt(m.node_drain + m.node_delete)
            ),
            "each step starts at its earliest start (maintenance windows and blackouts, as planned) or when the step before it is done, whichever is later; ARM calls take no time".into(),
        ]
        .into_iter()
        .chain(a.history.kinds.iter().map(|(k, f)| {
            format!(
                "history: {k} operations took {:.2}x the model (median of {}; 10% took under {:.2}x, 10% over {:.2}x)",
                f.median, f.samples, f.p10, f.p90
            )
        }))
        .collect(),
        model: m.clone(),
        history: a.history.clone(),
    }
}

/// The pools' shapes and versions from the listed clusters (discovery keeps the ARM
/// documents), with the policy's `max_surge` override; only the pools the policy's
/// `pools` filter selects (the others get no step to time). A pool discovery did not
/// list is kept: nothing says it is not the policy's.
pub fn pools_of(d: &crate::discovery::Discovery, policy: &crate::policy::Policy) -> Pools {
    let settings = crate::preflight::checks::CheckSettings::from_policy(policy);
    let states: BTreeMap<&ClusterId, &crate::domain::fleet::ClusterState> =
        d.snapshot.clusters.iter().map(|c| (&c.id, c)).collect();
    let managed = |id: &ClusterId, pool: &str| {
        states
            .get(id)
            .and_then(|c| c.pools.iter().find(|p| p.name == pool))
            .is_none_or(|p| policy.pools.matches(p))
    };
    d.raw
        .iter()
        .map(|(id, mc)| {
            let pools = mc
                .properties
                .agent_pool_profiles
                .iter()
                .filter(|p| managed(id, &p.name))
                .map(|p| {
                    let props = &p.properties;
                    let facts = crate::preflight::facts::PoolFacts {
                        count: props.count.unwrap_or(1),
                        vm_size: None,
                        max_surge: props.upgrade_settings.as_ref().and_then(|u| u.max_surge.clone()),
                        max_unavailable: None,
                        max_pods: None,
                        subnet_id: None,
                    };
                    let shape = PoolShape {
                        count: facts.count,
                        surge: crate::preflight::checks::surge_nodes(&facts, &settings).max(1),
                        soak_minutes: props
                            .upgrade_settings
                            .as_ref()
                            .and_then(|u| u.node_soak_duration_in_minutes)
                            .unwrap_or(0),
                    };
                    (p.name.clone(), shape)
                })
                .collect();
            (id.clone(), pools)
        })
        .collect()
}
