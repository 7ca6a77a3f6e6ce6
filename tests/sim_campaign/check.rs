//! The campaign's invariants, judged from outside the engine: from the simulator's log
//! of mutating requests and its operations (what AKS saw), and from every rollout state
//! the daemon publishes. Each check counts itself, so a run reports how many it made.
//!
//! No rule here comes from `ringmaster::domain::rules`: version rules are the
//! simulator's to enforce (a request that breaks one is refused, and any refusal other
//! than a conflict or a throttle fails the run), and the order rules are written from
//! the policy the scenario generated.

use super::Outcome;
use super::scenario::{Effect, Scenario, TARGET};
use chrono::{DateTime, Utc};
use ringmaster::engine::{ClusterStatus, Input, RingStatus, Rollout, StepStatus};
use ringmaster::sim::clock::SimTime;
use ringmaster::sim::world::{World, WriteRecord};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// What the simulator holds (at the start, at the end): versions and operations.
pub struct WorldView {
    /// Cluster name -> (control plane, [(pool, version)]).
    pub clusters: BTreeMap<String, (String, Vec<(String, String)>)>,
    /// (cluster, pool), lower case -> (Kubernetes version, node image).
    pub pools: BTreeMap<(String, String), (String, String)>,
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone)]
pub struct Op {
    pub id: String,
    pub cluster: String,
    pub start: SimTime,
    pub end: Option<SimTime>,
    pub status: String,
}

impl WorldView {
    pub fn of(w: &World) -> WorldView {
        WorldView {
            clusters: w
                .clusters
                .iter()
                .map(|c| {
                    (
                        c.name.clone(),
                        (
                            c.current_version.to_string(),
                            c.pools
                                .iter()
                                .map(|p| (p.name.clone(), p.current_version.to_string()))
                                .collect(),
                        ),
                    )
                })
                .collect(),
            pools: w
                .clusters
                .iter()
                .flat_map(|c| {
                    c.pools.iter().map(|p| {
                        (
                            (c.name.to_ascii_lowercase(), p.name.to_ascii_lowercase()),
                            (p.current_version.to_string(), p.node_image.clone()),
                        )
                    })
                })
                .collect(),
            ops: w
                .ops
                .values()
                .map(|o| Op {
                    id: o.id.clone(),
                    cluster: w.clusters[o.cluster].name.clone(),
                    start: o.start,
                    end: o.end,
                    status: o.status.as_str().to_string(),
                })
                .collect(),
        }
    }
}

/// Where a cluster sits in the plan, and the limits that apply to it.
#[derive(Debug, Clone)]
struct Place {
    ring: usize,
    chunk: usize,
    /// (ring, policy wave) it counts against, and that wave's `max_parallel`.
    wave_key: (usize, String),
    max_parallel: usize,
}

/// An approval the campaign delivered: (when, when it lapses).
type Delivered = (DateTime<Utc>, Option<DateTime<Utc>>);

pub struct Checker {
    places: BTreeMap<String, Place>,
    soaks: Vec<Duration>,
    approval: Vec<bool>,
    promoted: BTreeSet<String>,
    ring_names: Vec<String>,
    effects: BTreeMap<String, Effect>,
    clean: bool,
    /// Every cluster of the fleet.
    all: Vec<String>,
    /// Per ring, the approvals the campaign delivered to the daemon: (when, lapses at).
    approvals_given: BTreeMap<String, Vec<Delivered>>,
    /// What AKS held before the daemon's first call.
    initial: Option<WorldView>,
    pub checks: u64,
}

/// Whether AKS is running a rollback ringmaster sent (an operation started by a pool PUT
/// the simulator took as a rollback, not ended yet).
pub fn rollback_running(sim: &ringmaster::sim::Simulator) -> bool {
    sim.with_world(|w| {
        w.writes
            .iter()
            .filter(|x| x.rollback_to.is_some())
            .filter_map(|x| x.operation.as_deref())
            .any(|id| w.ops.get(id).is_some_and(|o| o.end.is_none()))
    })
}

/// The pool a logged request was for (lower case), when it was a pool's.
fn pool_of(w: &WriteRecord) -> Option<(String, String)> {
    match cluster_and_rest(w)? {
        (c, rest) if rest.len() >= 2 && rest[0] == "agentpools" => Some((c, rest[1].clone())),
        _ => None,
    }
}

/// The resource and the desired state a mutating request asks for: two accepted
/// requests with the same key are the same step sent twice.
pub fn step_key(w: &WriteRecord) -> Option<(String, String, String)> {
    let (cluster, rest) = cluster_and_rest(w)?;
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let props = w.body.as_ref().and_then(|b| b.get("properties"));
    match rest.as_slice() {
        [] => Some((
            cluster,
            "control-plane".into(),
            props?.get("kubernetesVersion")?.as_str()?.to_string(),
        )),
        ["agentpools", pool] => Some((
            cluster,
            format!("pool/{pool}"),
            props?.get("orchestratorVersion")?.as_str()?.to_string(),
        )),
        ["agentpools", pool, "upgradenodeimageversion"] => {
            Some((cluster, format!("pool/{pool}/node-image"), String::new()))
        }
        _ => None,
    }
}

/// The cluster a logged request was for (lower case).
pub fn cluster_of(w: &WriteRecord) -> Option<String> {
    cluster_and_rest(w).map(|(c, _)| c)
}

/// A request path's cluster and the segments after it, in lower case.
fn cluster_and_rest(w: &WriteRecord) -> Option<(String, Vec<String>)> {
    let lower = w.path.to_ascii_lowercase();
    let mut segs = lower.trim_matches('/').split('/');
    segs.by_ref().find(|s| *s == "managedclusters")?;
    let cluster = segs.next()?.to_string();
    Some((cluster, segs.map(str::to_string).collect()))
}

/// POSTs to `list...` actions (credentials) read; everything else in the log writes.
fn mutating(w: &WriteRecord) -> bool {
    let last = w.path.rsplit('/').next().unwrap_or_default().to_ascii_lowercase();
    !(w.method == "POST" && last.starts_with("list"))
}

fn is_abort(w: &WriteRecord) -> bool {
    w.path.to_ascii_lowercase().ends_with("/abort")
}

fn at(t: SimTime) -> String {
    t.rfc3339_millis()
}

impl Checker {
    pub fn new(sc: &Scenario, r: &Rollout) -> Checker {
        let mut places = BTreeMap::new();
        for (ri, ring) in r.rings.iter().enumerate() {
            for (wi, wave) in ring.waves.iter().enumerate() {
                let spec = sc.policy_wave(&ring.name, &wave.name);
                let (key, max) = match spec {
                    Some(s) if s.clusters.is_none() => (s.name.clone(), s.max_parallel),
                    Some(s) => (s.name.clone(), usize::MAX),
                    None => panic!("seed {}: planned wave {} in no policy wave", sc.seed, wave.name),
                };
                for c in &wave.clusters {
                    places.insert(
                        c.id.name.to_ascii_lowercase(),
                        Place {
                            ring: ri,
                            chunk: wi,
                            wave_key: (ri, key.clone()),
                            max_parallel: max,
                        },
                    );
                }
            }
        }
        Checker {
            places,
            soaks: sc.rings.iter().map(|r| r.soak).collect(),
            approval: sc.rings.iter().map(|r| r.approval).collect(),
            promoted: BTreeSet::new(),
            ring_names: sc.rings.iter().map(|r| r.name.clone()).collect(),
            effects: sc
                .rings
                .iter()
                .flat_map(|r| r.clusters.iter())
                .filter_map(|c| sc.effect_on(c).map(|e| (c.clone(), e)))
                .collect(),
            clean: sc.clean,
            all: sc.rings.iter().flat_map(|r| r.clusters.clone()).collect(),
            approvals_given: BTreeMap::new(),
            initial: None,
            checks: 0,
        }
    }

    /// What AKS held before the daemon's first call.
    pub fn initial(&mut self, w: WorldView) {
        self.initial = Some(w);
    }

    /// The campaign handed the daemon an operator's answer at `at`.
    pub fn delivered(&mut self, input: &Input, at: DateTime<Utc>) {
        if let Input::Approve { ring, expires_at, .. } = input {
            self.approvals_given
                .entry(ring.clone())
                .or_default()
                .push((at, *expires_at));
        }
    }

    /// Whether an approval the campaign delivered for `ring` was valid at `t`.
    fn approved_at(&self, ring: &str, t: DateTime<Utc>) -> bool {
        self.approvals_given
            .get(ring)
            .is_some_and(|v| v.iter().any(|(at, exp)| *at <= t && exp.is_none_or(|e| e > t)))
    }

    /// An operator ended this ring's soak early: the next ring may start before it.
    pub fn promoted(&mut self, ring: &str) {
        self.promoted.insert(ring.to_string());
    }

    fn ensure(&mut self, ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
        self.checks += 1;
        if ok { Ok(()) } else { Err(what()) }
    }

    /// After every state the daemon publishes.
    pub fn on_state(&mut self, r: &Rollout, writes: &[WriteRecord]) -> Result<(), String> {
        self.engine_state(r)?;
        self.requests(writes)
    }

    fn engine_state(&mut self, r: &Rollout) -> Result<(), String> {
        for (ri, ring) in r.rings.iter().enumerate() {
            let Some(started) = ring.started_at else { continue };
            if ri > 0 {
                let prev = &r.rings[ri - 1];
                self.ensure(prev.status == RingStatus::Passed, || {
                    format!(
                        "ring {} started at {started} while ring {} is {:?}",
                        ring.name, prev.name, prev.status
                    )
                })?;
                // The ring's soak counts from its last cluster's end (the ring's own
                // `finished_at` is the soak's end).
                // A ring whose clusters the planner all skipped soaks from its start.
                let done = prev
                    .waves
                    .iter()
                    .flat_map(|w| &w.clusters)
                    .filter_map(|c| c.finished_at)
                    .max()
                    .or(prev
                        .started_at
                        .filter(|_| prev.waves.iter().all(|w| w.clusters.is_empty())));
                if !self.promoted.contains(&prev.name) {
                    let soak = chrono::Duration::from_std(self.soaks[ri - 1]).unwrap();
                    let ok =
                        done.is_some_and(|f| started >= f + soak) && prev.finished_at.is_some_and(|f| started >= f);
                    self.ensure(ok, || {
                        let states: Vec<String> = prev.waves.iter().flat_map(|w| &w.clusters).map(|c| format!("{}: {:?} {:?}", c.id.name, c.status, c.finished_at)).collect();
                        format!("ring {} started at {started}, before ring {} was done ({done:?}: {states:?}) and soaked {soak}", ring.name, prev.name)
                    })?;
                }
            }
            if self.approval[ri] {
                // From what the campaign delivered and when, not from the engine's own
                // record of the approval (an engine that made one up would pass that).
                let ok = self.approved_at(&ring.name, started);
                let given = self.approvals_given.get(&ring.name).cloned();
                self.ensure(ok, || {
                    format!(
                        "ring {} started at {started} without a valid approval delivered (delivered: {given:?}; the engine records {:?})",
                        ring.name, ring.approval
                    )
                })?;
            }
            for wi in 1..ring.waves.len() {
                let started_here = ring.waves[wi].clusters.iter().find(|c| c.started_at.is_some());
                if let Some(c) = started_here {
                    let unfinished: Vec<_> = ring.waves[wi - 1]
                        .clusters
                        .iter()
                        .filter(|p| !p.status.is_finished())
                        .map(|p| p.id.name.clone())
                        .collect();
                    self.ensure(unfinished.is_empty(), || {
                        format!(
                            "{} of wave {} started while wave {} has unfinished {unfinished:?}",
                            c.id.name,
                            ring.waves[wi].name,
                            ring.waves[wi - 1].name
                        )
                    })?;
                }
            }
        }
        let mut active: BTreeMap<(usize, String), Vec<String>> = BTreeMap::new();
        for (_, c) in r.clusters() {
            if c.status.is_active() {
                let p = &self.places[&c.id.name.to_ascii_lowercase()];
                active.entry(p.wave_key.clone()).or_default().push(c.id.name.clone());
            }
            if c.status == ClusterStatus::Done {
                let open: Vec<&str> = c
                    .steps
                    .iter()
                    .filter(|s| !matches!(s.status, StepStatus::Done))
                    .map(|s| s.status.label())
                    .collect();
                self.ensure(open.is_empty(), || format!("{} is done with steps {open:?}", c.id.name))?;
            }
        }
        for (key, names) in active {
            let max = self
                .places
                .values()
                .find(|p| p.wave_key == key)
                .map_or(usize::MAX, |p| p.max_parallel);
            self.ensure(names.len() <= max, || {
                format!(
                    "wave {key:?} has {} clusters active ({names:?}), max_parallel {max}",
                    names.len()
                )
            })?;
        }
        Ok(())
    }

    /// From the request log alone: no refusal but a conflict or a throttle (a request
    /// that breaks AKS's rules is refused by the simulator), and no step accepted twice.
    fn requests(&mut self, writes: &[WriteRecord]) -> Result<(), String> {
        let mut accepted: BTreeMap<(String, String, String), Vec<&WriteRecord>> = BTreeMap::new();
        for w in writes {
            let refused = (400..500).contains(&w.status) && ![409, 412, 429].contains(&w.status);
            self.ensure(!refused, || {
                format!(
                    "AKS refused {} {} at {} with {}: {}",
                    w.method,
                    w.path,
                    at(w.at),
                    w.status,
                    w.body.as_ref().map(|b| b.to_string()).unwrap_or_default()
                )
            })?;
            if (200..300).contains(&w.status)
                && let Some(k) = step_key(w)
            {
                accepted.entry(k).or_default().push(w);
            }
        }
        for (k, ws) in accepted {
            self.ensure(ws.len() <= 1, || {
                let times: Vec<String> = ws.iter().map(|w| format!("{} -> {}", at(w.at), w.status)).collect();
                format!("step {k:?} accepted {} times: {times:?}", ws.len())
            })?;
        }
        Ok(())
    }

    /// At the end, with the simulator's operations and versions.
    pub fn finish(
        &mut self,
        r: &Rollout,
        writes: &[WriteRecord],
        world: &WorldView,
        outcome: Outcome,
    ) -> Result<u64, String> {
        self.on_state(r, writes)?;
        // The operations ringmaster started (not the simulator's auto-upgrader's).
        let own: BTreeMap<&str, &Op> = world.ops.iter().map(|o| (o.id.as_str(), o)).collect();
        let mine: Vec<&Op> = writes
            .iter()
            .filter_map(|w| w.operation.as_deref())
            .filter_map(|id| own.get(id).copied())
            .collect();
        let running = |o: &Op, t: SimTime| o.start <= t && o.end.is_none_or(|e| t < e);
        // No mutating request to a cluster while an operation ringmaster started there
        // runs (an abort is the one request meant for a running operation).
        // Log order decides within one millisecond: a request refused just before the one
        // that started an operation did not come while it ran.
        let started_by: BTreeMap<&str, usize> = writes
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.operation.as_deref().map(|o| (o, i)))
            .collect();
        for (j, w) in writes.iter().enumerate().filter(|(_, w)| mutating(w) && !is_abort(w)) {
            let Some(c) = cluster_of(w) else { continue };
            let busy: Vec<&&Op> = mine
                .iter()
                .filter(|o| o.cluster.eq_ignore_ascii_case(&c) && started_by[o.id.as_str()] < j)
                .filter(|o| o.end.is_none_or(|e| w.at < e))
                .collect();
            self.ensure(busy.is_empty(), || {
                format!(
                    "{} {} at {} (answered {}) while operation {:?} ran",
                    w.method,
                    w.path,
                    at(w.at),
                    w.status,
                    busy
                )
            })?;
        }
        // Per cluster: first request, end of its last own operation.
        let mut first: BTreeMap<String, SimTime> = BTreeMap::new();
        for w in writes.iter().filter(|w| mutating(w)) {
            if let Some(c) = cluster_of(w) {
                first.entry(c).or_insert(w.at);
            }
        }
        let mut last_end: BTreeMap<String, SimTime> = BTreeMap::new();
        for o in &mine {
            let end = o.end.unwrap_or(SimTime(i64::MAX));
            let e = last_end.entry(o.cluster.to_ascii_lowercase()).or_insert(end);
            *e = (*e).max(end);
        }
        for (c, t) in &first {
            let Some(p) = self.places.get(c).cloned() else { continue };
            for (other, q) in self.places.clone() {
                let Some(end) = last_end.get(&other) else { continue };
                // Waves in order within a ring; rings in order, after the soak.
                let before = if q.ring == p.ring {
                    q.chunk < p.chunk
                } else {
                    q.ring < p.ring
                };
                if !before {
                    continue;
                }
                let mut limit = *end;
                if q.ring + 1 == p.ring && !self.promoted.contains(&self.ring_names[q.ring]) {
                    limit = limit.plus(self.soaks[q.ring]);
                }
                self.ensure(*t >= limit, || {
                    format!(
                        "{c} got its first request at {} before {other} (earlier wave or ring) was done with AKS at {}",
                        at(*t),
                        at(limit)
                    )
                })?;
            }
        }
        // A ring that needs an approval: AKS hears nothing about its clusters before an
        // approval the campaign delivered (from the request log, not the engine's state).
        for (c, t) in &first {
            let Some(p) = self.places.get(c) else { continue };
            if !self.approval[p.ring] {
                continue;
            }
            let ring = self.ring_names[p.ring].clone();
            let first_given = self
                .approvals_given
                .get(&ring)
                .and_then(|v| v.iter().map(|(at, _)| *at).min());
            let ok = first_given.is_some_and(|g| t.to_datetime() >= g);
            self.ensure(ok, || {
                format!(
                    "{c} of ring {ring} got its first request at {} while the campaign had delivered no approval ({first_given:?})",
                    at(*t)
                )
            })?;
        }
        // Never more clusters of a policy wave with an operation at once than its
        // max_parallel.
        for o in &mine {
            let Some(p) = self.places.get(&o.cluster.to_ascii_lowercase()).cloned() else {
                continue;
            };
            let busy: BTreeSet<String> = mine
                .iter()
                .filter(|x| running(x, o.start))
                .filter(|x| {
                    self.places
                        .get(&x.cluster.to_ascii_lowercase())
                        .is_some_and(|q| q.wave_key == p.wave_key)
                })
                .map(|x| x.cluster.clone())
                .collect();
            self.ensure(busy.len() <= p.max_parallel, || {
                format!(
                    "at {} clusters {busy:?} of wave {:?} had operations at once (max_parallel {})",
                    at(o.start),
                    p.wave_key,
                    p.max_parallel
                )
            })?;
        }
        // Outcomes.
        for (_, c) in r.clusters() {
            let name = &c.id.name;
            if self.effects.get(name) == Some(&Effect::Fails) {
                self.ensure(c.status != ClusterStatus::Done, || {
                    format!("{name}'s fault fails its upgrade, but it ended Done")
                })?;
                // A rollout that succeeded went through the cluster: its budget took
                // the failure (or an operator skipped it).
                let ok = outcome != Outcome::Succeeded
                    || matches!(
                        c.status,
                        ClusterStatus::Failed { .. } | ClusterStatus::Skipped { .. } | ClusterStatus::RolledBack { .. }
                    );
                self.ensure(ok, || {
                    format!(
                        "the rollout succeeded, and {name}, whose fault fails its upgrade, ended {:?}",
                        c.status
                    )
                })?;
            }
            if matches!(c.status, ClusterStatus::RolledBack { .. }) {
                self.rolled_back_in_aks(name, writes, world)?;
            }
            if c.status == ClusterStatus::Done {
                let (cp, pools) = &world.clusters[name];
                let behind: Vec<&(String, String)> = pools.iter().filter(|(_, v)| v != TARGET).collect();
                self.ensure(cp == TARGET && behind.is_empty(), || {
                    format!("{name} is Done but AKS shows control plane {cp}, pools {pools:?}")
                })?;
            }
        }
        if self.clean {
            // Progress: a planner that skipped clusters would leave them out of the
            // rollout; a clean fleet has no reason to skip any.
            let planned: BTreeSet<String> = r.clusters().map(|(_, c)| c.id.name.clone()).collect();
            let missing: Vec<String> = self.all.iter().filter(|c| !planned.contains(*c)).cloned().collect();
            self.ensure(missing.is_empty(), || {
                format!("a clean seed's plan left out {missing:?}")
            })?;
            let not_done: Vec<String> = r
                .clusters()
                .filter(|(_, c)| c.status != ClusterStatus::Done)
                .map(|(_, c)| format!("{}: {:?}", c.id.name, c.status))
                .collect();
            self.ensure(outcome == Outcome::Succeeded && not_done.is_empty(), || {
                format!(
                    "a clean seed ended {outcome:?} ({:?}) with clusters not done: {not_done:?}",
                    r.status
                )
            })?;
        }
        Ok(self.checks)
    }
}

impl Checker {
    /// A cluster the daemon says is `rolledBack`: AKS accepted a rollback of one of its
    /// pools, and every pool it accepted one for is back on the version and node image
    /// AKS showed before the rollout.
    fn rolled_back_in_aks(&mut self, name: &str, writes: &[WriteRecord], world: &WorldView) -> Result<(), String> {
        let lower = name.to_ascii_lowercase();
        let rolled: BTreeSet<(String, String)> = writes
            .iter()
            .filter(|w| w.rollback_to.is_some() && (200..300).contains(&w.status))
            .filter_map(pool_of)
            .filter(|(c, _)| *c == lower)
            .collect();
        self.ensure(!rolled.is_empty(), || {
            format!("{name} is rolledBack, but AKS accepted no rollback of its pools")
        })?;
        for key in rolled {
            let before = self
                .initial
                .as_ref()
                .expect("the initial world is recorded")
                .pools
                .get(&key)
                .cloned();
            let after = world.pools.get(&key).cloned();
            self.ensure(before.is_some() && before == after, || {
                format!(
                    "{name} is rolledBack, but AKS shows pool {} on {after:?}, not on what it had, {before:?}",
                    key.1
                )
            })?;
        }
        Ok(())
    }
}

/// `None` when `recovered` equals one of `candidates` exactly; otherwise where it first
/// differs from the last of them (the rollout's fields, then cluster by cluster).
pub fn recovery_mismatch(recovered: &Rollout, candidates: &[&Rollout]) -> Option<String> {
    if candidates.contains(&recovered) {
        return None;
    }
    let Some(want) = candidates.last() else {
        return Some("nothing was committed, yet a state was recovered".into());
    };
    for ((at, a), (_, b)) in recovered.clusters().zip(want.clusters()) {
        if a != b {
            return Some(format!("cluster {at:?}:\nrecovered {a:#?}\ncommitted {b:#?}"));
        }
    }
    let head = |r: &Rollout| {
        format!(
            "seq {} status {:?} updated {} rings {:?}",
            r.seq,
            r.status,
            r.updated_at,
            r.rings
                .iter()
                .map(|x| (&x.name, &x.status, &x.approval, x.paused))
                .collect::<Vec<_>>()
        )
    };
    Some(format!("recovered {}\ncommitted {}", head(recovered), head(want)))
}
