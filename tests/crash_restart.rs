//! Crash tests: the real `ringmaster run` (and `ringmaster serve`) is killed with SIGKILL
//! at seeded moments during a rollout against a separately running `ringmaster sim`, and
//! started again on the same state file each time, until the rollout ends.
//!
//! The fleet (`tests/fixtures/crash/fleet.yaml`) has clean clusters, a cluster whose pool
//! upgrades fail (fault `operation_fails`: AKS accepts the call, the operation ends
//! Failed) and a cluster whose pods never become Ready on the target (fault
//! `pods_never_ready`: the health gate fails it). The policy is `policies/demo.yaml` with
//! a longer gate timeout (`tests/fixtures/crash/policy.yaml`, which says why):
//! dev and staging each allow one failed cluster (skip and continue), prod needs an
//! approval (given by `--approve-as alice`, or through serve's API) and halts on its
//! first failure. One seed in three uses `fleet-halts.yaml` instead, where the prod
//! canary's control-plane upgrade fails too: the rollout ends `halted`.
//!
//! # What is checked
//! * **No duplicate call**, judged on the simulator's request log (`/_sim/requests`:
//!   every mutating ARM request that passed authentication, whatever it was answered).
//!   A request belongs to a *step*: the cluster (subscription, resource group, name) and
//!   what it changes: the control plane to `properties.kubernetesVersion` (PUT of the
//!   managed cluster), a pool to `properties.orchestratorVersion` (PUT of the agent
//!   pool), a pool's node image (POST `upgradeNodeImageVersion`: a rollout has at most
//!   one node-image step per pool; the target image is not in the request). Among the
//!   requests the simulator *processed* as a start or a conflict (answered 2xx, or 409
//!   "another operation is in progress", whether or not the answer reached the client),
//!   each step has **at most one**. The rule comes from the engine and the executor:
//!   - ringmaster records the step's intent (`Starting`) before its call; after a
//!     restart, a `Starting` step is *reconciled* (`src/runtime/exec.rs`, `start` with
//!     `reconcile`): the resource is read first, and a running operation is adopted, a
//!     resource already at the target ends the step, and a resource left `Failed` by an
//!     operation ends the step failed: none of them sends the call again;
//!   - an operation that ended Failed fails its step and its cluster
//!     (`Input::OperationFinished` with an error): the policy has no retry count for
//!     failed operations, so the number of calls allowed after a Failed operation is 0;
//!   - the engine's start retries (`Settings::max_start_attempts`, after
//!     `retry_after`) follow only *refusals*; a 429 or a 5xx was never processed, so
//!     its repeat is not a duplicate and is not counted. A 409 is counted: ringmaster
//!     reads the resource before each call and never calls while an operation runs,
//!     and nothing else writes to this fleet, so a 409 can only be ringmaster racing its
//!     own operation;
//!   - aborts (`…/abort`) are not steps; none is expected here and any is reported.
//! * **Outcomes**: one rollout in the state file (resumed, never started again), ended as
//!   the policy says (`succeeded`: each of dev and staging loses one cluster, within its
//!   budget; or `halted` on the halting fleet, `run` exiting 3); the faulted clusters
//!   `failed`, the clusters behind a halt never called (`pending`), every other `done`;
//!   and, read from the simulator's ARM, every clean cluster's control plane and pools
//!   on 1.33.3, the failing pool and the clusters behind a halt not.
//!
//! # Kill points
//! Seeded (xorshift from the seed), printed with the outcome of each kill on failure and
//! with `--nocapture`: "once the simulator has logged the k-th mutating request, plus a
//! delay". The targets k climb through the rollout's calls (kill i in the i-th slice),
//! so kills spread over the whole rollout whatever the machine's speed (the simulated
//! clock runs on while the daemon is down); half the delays are a few milliseconds
//! (between a call and the record of its answer), half up to 2 s (mid-operation, in a
//! gate, a soak, the prod approval or a maintenance-window wait). After each kill the
//! state file says where the rollout stood, and the campaign sums it up.
//!
//! `cargo test --test crash_restart` runs a bounded campaign (2 seeds, 4 kills each, one
//! with `serve`, one with `run`) and the regression test below. The full campaign is
//! ignored by default (even seeds drive `run`, odd ones `serve`):
//! `CRASH_SEEDS=10 CRASH_KILLS=10 cargo test --test crash_restart -- --ignored --nocapture`
//! (`CRASH_SEED=n`: first seed; `CRASH_TIME_SCALE`: the simulator's, default 600). See
//! the README's section on safety for its figures.

mod common;

use common::procs::{Serve, Sim, SimArm, ringmaster, spawn_serve_on, start_sim_on};
use common::writes::{duplicates, step_of};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const FLEET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/crash/fleet.yaml");
const FLEET_HALTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/crash/fleet-halts.yaml");
const POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/crash/policy.yaml");
/// The version every clean cluster ends on (1.33's latest GA patch in the fleet).
const TARGET: &str = "1.33.3";
/// A fleet and how the rollout on it ends.
#[derive(Debug)]
struct Scenario {
    fleet: &'static str,
    /// The rollout's final state (`succeeded`: `run` exits 0; `halted`: 3).
    ends: &'static str,
    /// Clusters that end failed.
    failed: &'static [&'static str],
    /// Clusters never called: their ring halted before their wave.
    untouched: &'static [&'static str],
    /// Mutating requests the rollout makes (measured; they mark its progress for the
    /// kill plan, and are not asserted).
    calls: usize,
}

/// Each of dev and staging loses one cluster (within its budget); prod upgrades.
const SUCCEEDS: Scenario = Scenario {
    fleet: FLEET,
    ends: "succeeded",
    failed: &["aks-dev-neu-01", "aks-stg-weu-01"],
    untouched: &[],
    calls: 22,
};

/// As `SUCCEEDS`, and prod's canary fails its control plane: prod halts before its
/// other wave.
const HALTS: Scenario = Scenario {
    fleet: FLEET_HALTS,
    ends: "halted",
    failed: &["aks-dev-neu-01", "aks-stg-weu-01", "aks-prd-weu-02"],
    untouched: &["aks-prd-weu-01", "aks-prd-neu-01"],
    calls: 13,
};

/// Seeds 2, 5, 8, ... (mod 3 = 2) halt; the others succeed.
fn scenario(seed: u64) -> &'static Scenario {
    if seed % 3 == 2 { &HALTS } else { &SUCCEEDS }
}

impl Scenario {
    fn exit_code(&self) -> i32 {
        if self.ends == "succeeded" { 0 } else { 3 }
    }
}
/// The cluster upgraded whose gate fails (pods_never_ready): it is on the target.
const GATE_FAILS: &str = "aks-stg-weu-01";
/// The pool whose upgrades fail (operation_fails).
const FAILING_POOL: (&str, &str) = ("aks-dev-neu-01", "user1");
/// Simulated seconds per wall second (`CRASH_TIME_SCALE` for the full campaign).
const TIME_SCALE: &str = "600";
/// How long one rollout may take to finish once the kills are over.
const FINISH_WITHIN: Duration = Duration::from_secs(240);
/// How long the operator of a `serve` campaign takes to approve prod (wall clock).
const APPROVAL_AFTER: Duration = Duration::from_millis(1500);
const ALICE: &str = "alice-token-0123456789abcdef0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Run,
    Serve,
}

/// Where a kill falls.
#[derive(Debug, Clone, Copy)]
struct KillAt {
    /// Kill once the simulator's log holds this many mutating requests (the rollout's
    /// progress, whatever the machine's speed) ...
    calls: usize,
    /// ... and this much later: a few milliseconds (between a call and the record of
    /// its answer) or up to 2 simulated-time-scaled seconds (mid-operation, in a gate, a
    /// soak, the approval or a maintenance window wait).
    delay: Duration,
    /// Or this long after the process's start, if the rollout gets no further.
    cap: Duration,
}

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn kill_plan(seed: u64, kills: usize, scale: f64) -> Vec<KillAt> {
    // The kills' targets climb through the rollout's calls (kill i aims at a call in the
    // i-th of `kills` equal slices of all but the last call), so they spread over the
    // whole rollout; half the delays are short, half long.
    let n = scenario(seed).calls.saturating_sub(1) as u64;
    let kills_u = kills.max(1) as u64;
    let scaled = |ms: u64| Duration::from_millis((ms as f64 * 600.0 / scale) as u64);
    let mut rng = Rng::new(seed);
    (0..kills_u)
        .map(|i| KillAt {
            calls: ((i * n + rng.below(n.max(1))) / kills_u) as usize,
            delay: if rng.below(2) == 0 {
                Duration::from_millis(rng.below(40))
            } else {
                scaled(100 + rng.below(1900))
            },
            // Above the policy's gate timeout (1h: 6 s at 600x): a daemon restarted more
            // often than that never times a gate out (each restart gives a gate its whole
            // timeout again, by design), and the never-Ready cluster would never fail.
            cap: scaled(9000),
        })
        .collect()
}

impl SimArm {
    async fn count_requests(&self) -> usize {
        self.requests().await.len()
    }
}

/// One kill's record, for the failure message and the figures.
struct Killed {
    at: KillAt,
    after: Duration,
    writes_seen: usize,
    /// Where the rollout stood, as the state file says after the kill.
    phase: Vec<String>,
}

struct Campaign {
    seed: u64,
    mode: Mode,
    kills: Vec<Killed>,
    /// The rollout ended within a process that was to be killed.
    ended_early: bool,
    writes: usize,
    wall: Duration,
    status: String,
}

impl Campaign {
    fn describe(&self) -> String {
        let mut s = format!(
            "seed {} ({:?}): {} kills, {} mutating requests, rollout {}, {:.1} s\n",
            self.seed,
            self.mode,
            self.kills.len(),
            self.writes,
            self.status,
            self.wall.as_secs_f64()
        );
        for (i, k) in self.kills.iter().enumerate() {
            let _ = writeln!(
                s,
                "  kill {i}: {:?} -> killed {} ms after start, {} new requests seen; {}",
                k.at,
                k.after.as_millis(),
                k.writes_seen,
                k.phase.join(", ")
            );
        }
        s
    }
}

fn spawn_run(sim: &Sim, state: &std::path::Path) -> Child {
    let mut c = ringmaster(
        sim,
        &[
            "run",
            "--policy",
            POLICY,
            "--sim-clock",
            "--approve-as",
            "alice",
            "--state",
        ],
    );
    c.arg(state).stdout(Stdio::null()).stderr(Stdio::null());
    c.spawn().expect("run starts")
}

/// A running daemon under test.
enum Proc {
    Run(Child),
    Serve(Serve),
}

impl Proc {
    fn child(&mut self) -> &mut Child {
        match self {
            Proc::Run(c) => c,
            Proc::Serve(s) => &mut s.child,
        }
    }
}

/// An authenticated request to serve, as the operator alice (10 s bound).
fn as_alice(s: &Serve, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, format!("{}{path}", s.url))
        .bearer_auth(ALICE)
        .timeout(Duration::from_secs(10))
}

/// A GET's JSON answer, or None if it could not be had.
async fn get_json(s: &Serve, path: &str) -> Option<Value> {
    as_alice(s, reqwest::Method::GET, path)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// Serve's view of its rollout (the first listed), or None before one exists.
async fn serve_rollout(s: &Serve) -> Option<Value> {
    let list = get_json(s, "/api/v1/rollouts").await?;
    let id = list["rollouts"].as_array()?.first()?["id"].as_str()?.to_string();
    get_json(s, &format!("/api/v1/rollouts/{id}")).await
}

/// Drives serve as an operator would: start a rollout when none exists (once per
/// process: `asked`), approve prod when it waits. Returns the rollout's state when it is
/// terminal.
async fn drive_serve(s: &Serve, asked: &mut bool, waiting_since: &mut Option<Instant>) -> Option<String> {
    let Some(r) = serve_rollout(s).await else {
        if std::mem::replace(asked, true) {
            return None;
        }
        let _ = as_alice(s, reqwest::Method::POST, "/api/v1/rollouts")
            .json(&json!({ "reason": "crash test" }))
            .send()
            .await;
        return None;
    };
    let state = r["status"]["state"].as_str().unwrap_or("").to_string();
    if matches!(state.as_str(), "succeeded" | "halted" | "aborted") {
        return Some(state);
    }
    let waiting = r["rings"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|x| x["name"] == "prod" && x["status"]["state"] == "awaitingApproval");
    // The operator takes a while (`APPROVAL_AFTER`): kills fall in the approval wait too.
    let since = *waiting_since.get_or_insert_with(Instant::now);
    if !waiting {
        *waiting_since = None;
    }
    if waiting
        && since.elapsed() >= APPROVAL_AFTER
        && let Some(id) = r["id"].as_str()
    {
        let _ = as_alice(
            s,
            reqwest::Method::POST,
            &format!("/api/v1/rollouts/{id}/rings/prod/approve"),
        )
        .json(&json!({ "comment": "crash test" }))
        .send()
        .await;
    }
    None
}

async fn start(mode: Mode, sim: &Sim, dir: &std::path::Path) -> Proc {
    match mode {
        Mode::Run => Proc::Run(spawn_run(sim, &dir.join("state.db"))),
        // spawn_serve blocks on serve's listen line.
        Mode::Serve => Proc::Serve(tokio::task::block_in_place(|| spawn_serve_on(sim, dir, POLICY, &[]))),
    }
}

/// A stored rollout's whole state as JSON (the store keeps it in parts).
fn whole_state(rec: &ringmaster::store::RolloutRecord) -> Value {
    ringmaster::engine::stored::load(rec)
        .ok()
        .and_then(|r| serde_json::to_value(r).ok())
        .unwrap_or_default()
}

/// Where a (dead) daemon left its rollout: the rings neither pending nor over
/// (`ring dev running`, `ring prod awaitingApproval`, ...) and the steps under way
/// (`step starting`, `step inFlight`, `step gating`, ...), or `no rollout yet`.
fn phase_at(state: &std::path::Path) -> Vec<String> {
    let Ok(store) = ringmaster::store::Store::open(state) else {
        return vec!["no state file yet".into()];
    };
    let Some(r) = store.load_rollouts().ok().and_then(|mut v| v.pop()) else {
        return vec!["no rollout yet".into()];
    };
    let v = whole_state(&r);
    let mut out = std::collections::BTreeSet::new();
    for ring in v["rings"].as_array().into_iter().flatten() {
        let rs = ring["status"]["state"].as_str().unwrap_or_default();
        if !matches!(rs, "pending" | "passed" | "failed") {
            out.insert(format!("ring {} {rs}", ring["name"].as_str().unwrap_or_default()));
        }
        for cl in ring["waves"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|w| w["clusters"].as_array().into_iter().flatten())
        {
            let cs = cl["status"]["state"].as_str().unwrap_or_default();
            if cs == "preparing" {
                out.insert("cluster preparing".into());
            }
            for st in cl["steps"].as_array().into_iter().flatten() {
                let ss = st["status"]["state"].as_str().unwrap_or_default();
                if !matches!(ss, "pending" | "done" | "failed") {
                    out.insert(format!("step {ss}"));
                }
            }
        }
    }
    if out.is_empty() {
        out.insert(format!("rollout {}", r.status));
    }
    out.into_iter().collect()
}

/// The rollout's status and every failed cluster's reason, from the state file.
fn outcome_detail(state: &std::path::Path) -> String {
    let Some(r) = ringmaster::store::Store::open(state)
        .ok()
        .and_then(|s| s.load_rollouts().ok())
        .and_then(|mut v| v.pop())
    else {
        return "no rollout in the state file".into();
    };
    let v = whole_state(&r);
    let mut out = format!("rollout {}", v["status"]);
    for ring in v["rings"].as_array().into_iter().flatten() {
        for cl in ring["waves"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|w| w["clusters"].as_array().into_iter().flatten())
        {
            if cl["status"]["state"] == "failed" {
                let _ = write!(out, "\n  {} failed: {}", cl["id"]["name"], cl["status"]["reason"]);
            }
        }
    }
    out
}

/// One seed: kill the daemon `kills` times at the seed's points, then let it finish,
/// then check everything the module docs list. Panics with the kill record on failure.
async fn campaign(seed: u64, kills: usize, mode: Mode) -> Campaign {
    let wall = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tokens.yaml"),
        format!(
            "tokens:\n  - name: alice\n    groups: [platform-admins]\n    sha256: {}\n",
            ringmaster::api::auth::token_digest_hex(ALICE)
        ),
    )
    .unwrap();
    let scale = std::env::var("CRASH_TIME_SCALE").unwrap_or_else(|_| TIME_SCALE.into());
    let sc = scenario(seed);
    let sim = start_sim_on(dir.path(), sc.fleet, &scale);
    let arm = SimArm::new(&sim).await;
    // When serve's prod ring was first seen waiting for its approval (across restarts).
    let mut waiting_since: Option<Instant> = None;
    let mut c = Campaign {
        seed,
        mode,
        kills: Vec::new(),
        ended_early: false,
        writes: 0,
        wall: Duration::ZERO,
        status: String::new(),
    };
    for at in kill_plan(seed, kills, scale.parse().expect("CRASH_TIME_SCALE is a number")) {
        let mut p = start(mode, &sim, dir.path()).await;
        let t = Instant::now();
        let w0 = arm.count_requests().await;
        let mut last_drive = Instant::now() - Duration::from_secs(1);
        let mut asked = false;
        let mut kill_at: Option<Instant> = None;
        let ended = loop {
            if let Some(status) = p.child().try_wait().unwrap() {
                // `run` ended before its kill: the rollout is over (checked below).
                assert!(
                    mode == Mode::Run && status.code() == Some(sc.exit_code()),
                    "the daemon exited by itself ({status:?}):\n{}",
                    c.describe()
                );
                break true;
            }
            if mode == Mode::Serve && last_drive.elapsed() >= Duration::from_millis(200) {
                last_drive = Instant::now();
                if let Proc::Serve(s) = &p
                    && drive_serve(s, &mut asked, &mut waiting_since).await.is_some()
                {
                    break true;
                }
            }
            let elapsed = t.elapsed();
            if kill_at.is_none() && arm.count_requests().await >= at.calls {
                kill_at = Some(Instant::now() + at.delay);
            }
            if elapsed >= at.cap || kill_at.is_some_and(|k| Instant::now() >= k) {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        };
        if ended {
            c.ended_early = true;
            break;
        }
        let after = t.elapsed();
        p.child().kill().unwrap(); // SIGKILL
        p.child().wait().unwrap();
        let writes_seen = arm.count_requests().await - w0;
        let phase = phase_at(&dir.path().join("state.db"));
        c.kills.push(Killed {
            at,
            after,
            writes_seen,
            phase,
        });
    }
    // Then let it finish.
    if !c.ended_early {
        let mut p = start(mode, &sim, dir.path()).await;
        let t = Instant::now();
        let mut asked = false;
        loop {
            match &mut p {
                Proc::Run(child) => {
                    if let Some(status) = child.try_wait().unwrap() {
                        assert_eq!(
                            status.code(),
                            Some(sc.exit_code()),
                            "the rollout ended as the policy says (exit {status:?}): {}\n{}",
                            outcome_detail(&dir.path().join("state.db")),
                            c.describe()
                        );
                        break;
                    }
                }
                Proc::Serve(s) => {
                    if drive_serve(s, &mut asked, &mut waiting_since).await.is_some() {
                        break;
                    }
                }
            }
            assert!(
                t.elapsed() < FINISH_WITHIN,
                "the resumed rollout did not finish within {FINISH_WITHIN:?}:\n{}",
                c.describe()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // serve keeps running; the state file is read below without it.
        let _ = p.child().kill();
        let _ = p.child().wait();
    }
    let writes = arm.requests().await;
    c.writes = writes.len();
    // No step's call processed twice.
    let dups = duplicates(&writes);
    assert!(
        dups.is_empty(),
        "duplicate calls (see the rule in the module docs):\n  {}\n{}",
        dups.join("\n  "),
        c.describe()
    );
    // The failing pool's upgrade was called (the fault was exercised), once.
    let failing = writes
        .iter()
        .filter(|w| {
            let k = step_of(w);
            k.contains(FAILING_POOL.0) && k.contains(&format!("pool {} -> \"", FAILING_POOL.1))
        })
        .filter(|w| w["status"].as_u64().is_some_and(|s| (200..300).contains(&s)))
        .count();
    assert_eq!(
        failing,
        1,
        "the failing pool's upgrade was called once:\n{}",
        c.describe()
    );
    // The state file: one rollout, ended as the policy says, faulted clusters failed.
    let store = ringmaster::store::Store::open(dir.path().join("state.db")).unwrap();
    let rollouts = store.load_rollouts().unwrap();
    assert_eq!(
        rollouts.len(),
        1,
        "one rollout, resumed, not restarted:\n{}",
        c.describe()
    );
    c.status = rollouts[0].status.clone();
    assert_eq!(
        c.status,
        sc.ends,
        "{}\n{}",
        outcome_detail(&dir.path().join("state.db")),
        c.describe()
    );
    let state = whole_state(&rollouts[0]);
    let mut clusters = BTreeMap::new();
    for ring in state["rings"].as_array().unwrap() {
        for wave in ring["waves"].as_array().unwrap() {
            for cl in wave["clusters"].as_array().unwrap() {
                let name = cl["id"]["name"].as_str().unwrap_or_default().to_string();
                clusters.insert(name, cl["status"]["state"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    assert_eq!(clusters.len(), 7, "every cluster in the rollout: {clusters:?}");
    for (name, st) in &clusters {
        let want: &[&str] = if sc.failed.contains(&name.as_str()) {
            &["failed"]
        } else if sc.untouched.contains(&name.as_str()) {
            &["pending", "skipped"]
        } else {
            &["done"]
        };
        assert!(
            want.contains(&st.as_str()),
            "{name} ended {st}, not {want:?}:\n{}",
            c.describe()
        );
    }
    // Clusters behind a halt: never called.
    for name in sc.untouched {
        let called: Vec<String> = writes.iter().map(step_of).filter(|k| k.contains(name)).collect();
        assert!(called.is_empty(), "{name} is behind the halt, yet called: {called:?}");
    }
    // The simulator: clean clusters on the target, the failing pool not.
    let subs: Value = arm.get("/subscriptions").await;
    for sub in subs["value"].as_array().unwrap() {
        let sub = sub["subscriptionId"].as_str().unwrap();
        let list = arm
            .get(&format!(
                "/subscriptions/{sub}/providers/Microsoft.ContainerService/managedClusters"
            ))
            .await;
        for mc in list["value"].as_array().unwrap() {
            let name = mc["name"].as_str().unwrap();
            let id = mc["id"].as_str().unwrap();
            let pools = arm.get(&format!("{id}/agentPools")).await;
            let versions: Vec<(String, String)> = pools["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap_or_default().to_string(),
                        p["properties"]["currentOrchestratorVersion"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect();
            if name == FAILING_POOL.0 {
                assert!(
                    versions.iter().any(|(p, v)| p == FAILING_POOL.1 && v != TARGET),
                    "{name}'s failing pool is not on {TARGET}: {versions:?}"
                );
            } else if sc.failed.contains(&name) || sc.untouched.contains(&name) {
                assert!(
                    name == GATE_FAILS || mc["properties"]["currentKubernetesVersion"].as_str() != Some(TARGET),
                    "{name} (failed or behind the halt) is not on {TARGET}:\n{}",
                    c.describe()
                );
            } else {
                assert_eq!(
                    mc["properties"]["currentKubernetesVersion"].as_str(),
                    Some(TARGET),
                    "{name}'s control plane:\n{}",
                    c.describe()
                );
                assert!(
                    versions.iter().all(|(_, v)| v == TARGET),
                    "{name}'s pools on {TARGET}: {versions:?}\n{}",
                    c.describe()
                );
            }
        }
    }
    c.wall = wall.elapsed();
    c
}

fn env_u64(k: &str, default: u64) -> u64 {
    std::env::var(k).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Runs `seeds` campaigns from `first`, alternating `run` (even seeds) and `serve`.
async fn campaigns(first: u64, seeds: u64, kills: usize) -> Vec<Campaign> {
    let mut out = Vec::new();
    for seed in first..first + seeds {
        let mode = if seed % 2 == 0 { Mode::Run } else { Mode::Serve };
        eprintln!("crash test: seed {seed} ({mode:?}), {kills} kills planned (CRASH_SEED={seed} to replay)");
        let c = campaign(seed, kills, mode).await;
        eprint!("{}", c.describe());
        out.push(c);
    }
    let killed: usize = out.iter().map(|c| c.kills.len()).sum();
    let wall: f64 = out.iter().map(|c| c.wall.as_secs_f64()).sum();
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &out {
        *outcomes.entry(c.status.as_str()).or_default() += 1;
    }
    let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
    for k in out.iter().flat_map(|c| &c.kills) {
        for p in &k.phase {
            *phases.entry(p.as_str()).or_default() += 1;
        }
    }
    eprintln!(
        "crash test: {} seeds, {killed} kills, 0 duplicates, rollouts {outcomes:?}, {wall:.0} s\n  kills that found (a kill counts under each): {phases:?}",
        out.len(),
    );
    out
}

/// The bounded campaign `cargo test` runs: 2 seeds (one `serve` that succeeds, one `run`
/// that halts), 4 kills each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_seeded_moments_the_rollout_ends_as_the_policy_says_and_no_step_is_called_twice() {
    // Seed 7: serve, succeeds; seed 8: run, halts (see `scenario`).
    let first = env_u64("CRASH_SEED", 7);
    let out = campaigns(first, 2, 4).await;
    for c in &out {
        assert!(
            c.kills.len() >= 2,
            "the test killed the daemon mid-rollout:\n{}",
            c.describe()
        );
    }
}

/// The full campaign: `CRASH_SEEDS` seeds (default 10) x `CRASH_KILLS` kills (default 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes: run with -- --ignored (see the module docs)"]
async fn full_campaign_hundreds_of_kills() {
    let first = env_u64("CRASH_SEED", 100);
    let seeds = env_u64("CRASH_SEEDS", 10);
    let kills = env_u64("CRASH_KILLS", 10) as usize;
    let out = campaigns(first, seeds, kills).await;
    let killed: usize = out.iter().map(|c| c.kills.len()).sum();
    assert!(
        killed as u64 >= seeds * kills as u64 * 9 / 10,
        "most planned kills happened before the rollouts ended ({killed})"
    );
}

/// The failing pool's step in a stored rollout state: (ring, wave, cluster, step).
fn failing_step(state: &Value) -> Option<(usize, usize, usize, usize)> {
    for (ri, ring) in state["rings"].as_array()?.iter().enumerate() {
        for (wi, wave) in ring["waves"].as_array()?.iter().enumerate() {
            for (ci, cl) in wave["clusters"].as_array()?.iter().enumerate() {
                if cl["id"]["name"] != FAILING_POOL.0 {
                    continue;
                }
                for (si, st) in cl["steps"].as_array()?.iter().enumerate() {
                    if st["kind"]["kind"] == "poolVersion" && st["kind"]["pool"] == FAILING_POOL.1 {
                        return Some((ri, wi, ci, si));
                    }
                }
            }
        }
    }
    None
}

/// Regression (found by the kills above): killed after AKS took a step's call but before
/// the daemon recorded the answer, ringmaster restarted on a step still `starting`; the
/// operation had meanwhile ended Failed, so the resource read "not at the target, nothing
/// running", and the call went out a second time (AKS took it, and it failed again).
///
/// The test kills `run` as soon as the simulator logs the failing pool's call. That the
/// kill falls before the daemon recorded the answer is a race, so the state file is then
/// put where such a kill leaves it (the step `starting`, as recorded before the call),
/// which is exactly what a kill a few milliseconds earlier leaves; the simulator's
/// operation is let fail before the restart. After it, no second call may reach AKS, and
/// the cluster must end failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_a_call_and_its_record_a_failed_operation_is_not_called_again() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim_on(dir.path(), FLEET, TIME_SCALE);
    let arm = SimArm::new(&sim).await;
    let state_path = dir.path().join("state.db");
    let is_failing_call = |w: &Value| {
        let k = step_of(w);
        k.contains(FAILING_POOL.0) && k.contains(&format!("pool {} -> \"", FAILING_POOL.1))
    };
    let mut child = spawn_run(&sim, &state_path);
    let t = Instant::now();
    loop {
        if arm.requests().await.iter().any(is_failing_call) {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            let keys: Vec<String> = arm.requests().await.iter().map(step_of).collect();
            panic!("run ended before the failing call: {keys:#?}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the failing pool's call did not come within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The operation fails 90 simulated seconds after it starts (the fleet's
    // node_provision): wait until the simulator says so.
    let t = Instant::now();
    loop {
        let ops = arm.get("/_sim/operations").await;
        let failed = ops["value"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|op| op["cluster"] == FAILING_POOL.0 && op["status"] == "Failed");
        if failed {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the failing operation did not fail"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Where a kill before the record leaves the state file.
    let store = ringmaster::store::Store::open(&state_path).unwrap();
    let mut rec = store.load_rollouts().unwrap().remove(0);
    let mut state = whole_state(&rec);
    let (r, w, c, s) = failing_step(&state).expect("the failing pool's step is in the plan");
    let step = &mut state["rings"][r]["waves"][w]["clusters"][c]["steps"][s];
    let was = step["status"]["state"].as_str().unwrap_or_default().to_string();
    assert!(
        was == "starting" || was == "inFlight",
        "killed right after the call, the step is starting or in flight, not {was}"
    );
    eprintln!("the kill found the step {was}; restarting from `starting`");
    let since = step["startedAt"].clone();
    step["status"] = json!({ "state": "starting", "since": since });
    let edited: ringmaster::engine::Rollout = serde_json::from_value(state).unwrap();
    rec = ringmaster::engine::stored::record(&edited, None, rec.updated_at).unwrap();
    store.save_rollout(&rec).unwrap();
    drop(store);
    // Restart: it must reconcile without calling again, and go on to the end.
    let mut child = spawn_run(&sim, &state_path);
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < FINISH_WITHIN, "the resumed rollout did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "the rollout ended as the policy says ({status:?})");
    let writes = arm.requests().await;
    let calls: Vec<&Value> = writes.iter().filter(|w| is_failing_call(w)).collect();
    assert_eq!(calls.len(), 1, "the failed operation's call went out once: {calls:?}");
    let dups = duplicates(&writes);
    assert!(dups.is_empty(), "duplicate calls: {dups:?}");
    let store = ringmaster::store::Store::open(&state_path).unwrap();
    let state = whole_state(&store.load_rollouts().unwrap()[0]);
    let (r, w, c, _) = failing_step(&state).unwrap();
    assert_eq!(
        state["rings"][r]["waves"][w]["clusters"][c]["status"]["state"], "failed",
        "{} ended failed",
        FAILING_POOL.0
    );
}
