//! A seed's scenario: the fleet file, the policy, the faults, the operator's inputs and
//! the restarts, all drawn from one SplitMix64 stream, so a seed names its run.

use std::fmt::Write as _;
use std::time::Duration;

/// SplitMix64: the scenario is a function of the seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5EED_CA3A_1617_0001)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.next() as usize % xs.len()]
    }
}

pub const SUBSCRIPTION: &str = "3f2a8c1e-6b4d-4e7a-9c05-1d2e3f405a61";
/// Every scenario upgrades to this minor (its newest patch).
pub const TARGET_MINOR: &str = "1.33";
pub const TARGET: &str = "1.33.3";

#[derive(Debug, Clone)]
pub struct WaveSpec {
    pub name: String,
    /// Explicit members (a canary wave), or None: the ring's remaining clusters.
    pub clusters: Option<Vec<String>>,
    /// The policy's `max_parallel` (explicit waves run all their clusters at once).
    pub max_parallel: usize,
}

#[derive(Debug, Clone)]
pub struct RingSpec {
    pub name: String,
    pub clusters: Vec<String>,
    pub waves: Vec<WaveSpec>,
    pub soak: Duration,
    pub approval: bool,
    /// `skip-and-continue` with this many failures allowed, or None: `halt`.
    pub skip_budget: Option<u32>,
}

/// What a fault does to the outcome of the cluster it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The cluster must not end upgraded (its gate or its operation fails).
    Fails,
    /// Anything may happen to the cluster, but the safety rules still hold.
    Disturbs,
    /// Transient: a clean seed with it must still succeed.
    Transient,
}

#[derive(Debug, Clone)]
pub struct FaultSpec {
    pub yaml: String,
    pub cluster: Option<String>,
    pub effect: Effect,
}

/// An operator's input at a simulated time after the start.
#[derive(Debug, Clone)]
pub enum Action {
    PauseRollout,
    ResumeRollout,
    PauseRing(String),
    ResumeRing(String),
    PauseCluster(String),
    ResumeCluster(String),
    Skip(String),
    PromoteNow(String),
    Abort,
    /// Kill the daemon (drop its runtime and every task it started) and start a new one
    /// on the state file after it was down this long (AKS goes on meanwhile).
    Restart {
        down: Duration,
    },
}

/// Which accepted call a crash follows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum CrashAt {
    /// The n-th call (1-based) that started an operation, anywhere.
    NthOperation(usize),
    /// The first call that started an operation on this cluster (one whose fault fails
    /// its operations: the operation then fails while the daemon is down).
    FirstOperationOn(String),
    /// The first rollback call AKS accepted: the daemon dies before it hears that AKS
    /// took it, so the restart must adopt the running rollback, not send it again.
    FirstRollback,
}

/// How the operator answers a ring's approval request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// Approve after this long; the approval lapses after `expires` (None: never).
    Approve {
        after: Duration,
        expires: Option<Duration>,
    },
    Reject {
        after: Duration,
    },
    Never,
}

pub struct Scenario {
    pub seed: u64,
    pub fleet_yaml: String,
    pub policy_yaml: String,
    pub rings: Vec<RingSpec>,
    pub faults: Vec<FaultSpec>,
    pub actions: Vec<(Duration, Action)>,
    /// Kill the daemon the moment AKS took a call that started an operation, before
    /// the daemon saw the answer; then it stays down for the duration.
    pub crashes: Vec<(CrashAt, Duration)>,
    /// Per ring with an approval, in ring order: (ring, answer).
    pub answers: Vec<(String, Answer)>,
    /// No fault that changes an outcome and an operator who only approves in time,
    /// pauses and resumes, and restarts: the rollout must succeed.
    pub clean: bool,
}

impl Scenario {
    pub fn effect_on(&self, cluster: &str) -> Option<Effect> {
        self.faults
            .iter()
            .filter(|f| f.cluster.as_deref() == Some(cluster))
            .map(|f| f.effect)
            .min_by_key(|e| match e {
                Effect::Fails => 0,
                Effect::Disturbs => 1,
                Effect::Transient => 2,
            })
    }

    /// The policy wave a planned wave comes from (`rest-2` is a chunk of `rest`).
    pub fn policy_wave(&self, ring: &str, planned: &str) -> Option<&WaveSpec> {
        let r = self.rings.iter().find(|r| r.name == ring)?;
        r.waves.iter().find(|w| {
            planned == w.name
                || planned
                    .strip_prefix(&format!("{}-", w.name))
                    .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
        })
    }

    pub fn generate(seed: u64) -> Scenario {
        let mut g = Rng::new(seed);
        let ring_count = g.range(2, 3) as usize;
        let mut rings = Vec::new();
        let mut fleet = String::new();
        let mut n = 0;
        for ri in 0..ring_count {
            let name = format!("r{ri}");
            let size = g.range(1, 4) as usize;
            let clusters: Vec<String> = (0..size)
                .map(|_| {
                    n += 1;
                    format!("aks-{ri}-{n:02}")
                })
                .collect();
            for c in &clusters {
                cluster_yaml(&mut g, &mut fleet, c, &name);
            }
            let mut waves = Vec::new();
            if size > 1 && g.chance(0.4) {
                waves.push(WaveSpec {
                    name: "canary".into(),
                    clusters: Some(vec![clusters[0].clone()]),
                    max_parallel: 1,
                });
            }
            waves.push(WaveSpec {
                name: "rest".into(),
                clusters: None,
                max_parallel: g.range(1, 2) as usize,
            });
            rings.push(RingSpec {
                name,
                clusters,
                waves,
                soak: Duration::from_secs(g.range(0, 3) * 60),
                approval: ri > 0 && g.chance(0.5),
                skip_budget: if g.chance(0.5) {
                    Some(g.range(0, 1) as u32)
                } else {
                    None
                },
            });
        }
        let all: Vec<String> = rings.iter().flat_map(|r| r.clusters.clone()).collect();
        let faults = faults(&mut g, seed, &all);
        let mut clean = faults.iter().all(|f| f.effect == Effect::Transient);
        let mut answers = Vec::new();
        for r in rings.iter().filter(|r| r.approval) {
            let roll = g.range(0, 9);
            let a = match roll {
                0 => Answer::Reject {
                    after: Duration::from_secs(g.range(0, 3600)),
                },
                1 => Answer::Never,
                // Lapses before it can be used when the ring waits (blackout, window).
                2 => Answer::Approve {
                    after: Duration::from_secs(g.range(0, 600)),
                    expires: Some(Duration::from_secs(g.range(1, 120))),
                },
                _ => Answer::Approve {
                    // Up to 10 h late.
                    after: Duration::from_secs(g.range(0, 36_000)),
                    expires: g.chance(0.5).then_some(Duration::from_secs(8 * 3600)),
                },
            };
            if roll < 3 {
                clean = false;
            }
            answers.push((r.name.clone(), a));
        }
        let mut actions = Vec::new();
        let horizon = 4 * 3600;
        for _ in 0..g.range(0, 4) {
            let down = Duration::from_secs(*g.pick(&[0, 0, 30, 300, 1200]));
            actions.push((Duration::from_secs(g.range(1, horizon)), Action::Restart { down }));
        }
        if g.chance(0.3) {
            let at = g.range(1, horizon);
            let (pause, resume) = match g.range(0, 2) {
                0 => (Action::PauseRollout, Action::ResumeRollout),
                1 => {
                    let r = g.pick(&rings).name.clone();
                    (Action::PauseRing(r.clone()), Action::ResumeRing(r))
                }
                _ => {
                    let c = g.pick(&all).clone();
                    (Action::PauseCluster(c.clone()), Action::ResumeCluster(c))
                }
            };
            actions.push((Duration::from_secs(at), pause));
            if g.chance(0.9) {
                actions.push((Duration::from_secs(at + g.range(1, 7200)), resume));
            } else {
                clean = false;
            }
        }
        if g.chance(0.15) {
            let r = g.pick(&rings).name.clone();
            actions.push((Duration::from_secs(g.range(1, horizon)), Action::PromoteNow(r)));
        }
        if g.chance(0.1) {
            actions.push((
                Duration::from_secs(g.range(1, horizon)),
                Action::Skip(g.pick(&all).clone()),
            ));
            clean = false;
        }
        if g.chance(0.05) {
            actions.push((Duration::from_secs(g.range(1, horizon)), Action::Abort));
            clean = false;
        }
        actions.sort_by_key(|(t, _)| *t);
        let mut crashes: Vec<(CrashAt, Duration)> = (0..g.range(0, 2))
            .map(|_| {
                let down = Duration::from_secs(*g.pick(&[0, 30, 300, 1200]));
                (CrashAt::NthOperation(g.range(1, 15) as usize), down)
            })
            .collect();
        if let Some(c) = faults
            .iter()
            .find(|f| f.yaml.contains("operation_fails"))
            .and_then(|f| f.cluster.clone())
            && g.chance(0.7)
        {
            crashes.push((CrashAt::FirstOperationOn(c), Duration::from_secs(1200)));
        }
        // Seeds that roll back are killed the moment AKS takes their first rollback (no
        // draw: every other seed's scenario stays as it was); down 0 s, so the rollback
        // still runs when the daemon is back.
        if rolls_back(seed) {
            crashes.push((CrashAt::FirstRollback, Duration::ZERO));
        }
        let (policy_yaml, blackout) = policy_yaml(&mut g, seed, &rings);
        // An approval that lapses while a blackout holds its ring is never renewed.
        if blackout
            && answers
                .iter()
                .any(|(_, a)| matches!(a, Answer::Approve { expires: Some(_), .. }))
        {
            clean = false;
        }
        let mut fleet_yaml = fleet_header();
        fleet_yaml.push_str(&fleet);
        if !faults.is_empty() {
            fleet_yaml.push_str("faults:\n");
            for f in &faults {
                fleet_yaml.push_str(&f.yaml);
            }
        }
        Scenario {
            seed,
            fleet_yaml,
            policy_yaml,
            rings,
            faults,
            actions,
            crashes,
            answers,
            clean,
        }
    }
}

fn fleet_header() -> String {
    format!(
        r#"start_time: 2026-11-30T07:00:00Z
subscriptions: [{SUBSCRIPTION}]
versions:
  - minor: "1.31"
    patches: ["1.31.10", "1.31.11"]
  - minor: "1.32"
    patches: ["1.32.6", "1.32.7"]
  - minor: "1.33"
    patches: ["1.33.2", "1.33.3"]
    default: true
node_images:
  - os_sku: Ubuntu
    family: AKSUbuntu-2204gen2containerd
    releases:
      - {{ version: 202611.12.0, available: "2026-11-16" }}
      - {{ version: 202611.26.0, available: "2026-11-28" }}
  - os_sku: AzureLinux
    family: AKSAzureLinux-V3gen2
    releases:
      - {{ version: 202611.12.0, available: "2026-11-16" }}
      - {{ version: 202611.26.0, available: "2026-11-28" }}
  - os_sku: Windows2022
    family: AKSWindows-2022-containerd
    releases:
      - {{ version: 20348.4294.261014, available: "2026-10-21" }}
      - {{ version: 20348.4405.261111, available: "2026-11-18" }}
durations:
  control_plane_upgrade: 4m
  node_provision: 90s
  node_reimage: 2m
  node_delete: 30s
  pod_schedule: 2s
  pod_start: 5s
clusters:
"#
    )
}

fn cluster_yaml(g: &mut Rng, out: &mut String, name: &str, ring: &str) {
    let cp = *g.pick(&["1.31.11", "1.32.6", "1.32.7", "1.32.7"]);
    // Pools may lag their control plane (never lead it).
    let behind = "1.31.10";
    let region = *g.pick(&["westeurope", "northeurope"]);
    let _ = write!(
        out,
        "  - name: {name}\n    subscription: {SUBSCRIPTION}\n    resource_group: rg-{ring}\n    location: {region}\n    tags: {{ ring: {ring} }}\n    kubernetes_version: {cp}\n"
    );
    match g.range(0, 3) {
        // Open when the rollout starts (Monday 07:00).
        0 => out.push_str(
            "    maintenance:\n      aksManagedAutoUpgradeSchedule:\n        maintenanceWindow:\n          schedule: { weekly: { intervalWeeks: 1, dayOfWeek: Monday } }\n          durationHours: 12\n          utcOffset: \"+00:00\"\n          startTime: \"06:00\"\n",
        ),
        // Opens later that morning, every day.
        1 => out.push_str(
            "    maintenance:\n      aksManagedAutoUpgradeSchedule:\n        maintenanceWindow:\n          schedule: { daily: { intervalDays: 1 } }\n          durationHours: 6\n          utcOffset: \"+00:00\"\n          startTime: \"09:30\"\n",
        ),
        _ => {}
    }
    let _ = writeln!(
        out,
        "    pools:\n      - name: system\n        mode: System\n        count: {}",
        g.range(1, 2)
    );
    let _ = write!(out, "      - name: user1\n        count: {}\n", g.range(1, 3));
    if g.chance(0.3) {
        out.push_str("        os_sku: AzureLinux\n");
    }
    if g.chance(0.3) {
        let _ = writeln!(out, "        version: {behind}");
    }
    if g.chance(0.5) {
        out.push_str("        upgrade_settings: { max_surge: \"1\" }\n");
    }
    if g.chance(0.2) {
        out.push_str("      - name: win1\n        os_type: Windows\n        count: 1\n");
    }
    let _ = write!(
        out,
        "    workloads:\n      - name: web\n        namespace: shop\n        replicas: {}\n",
        g.range(1, 3)
    );
    if g.chance(0.5) {
        out.push_str("        pdb: { max_unavailable: 1 }\n");
    }
}

/// Seeds 1, 5, 9, ... roll a pool whose gate fails back, and their `pods_never_ready`
/// faults hit only the application's namespace (pods of every namespace never Ready
/// include coredns, whose PDB then fails the drain before any gate). From the seed, not
/// the generator: every other draw, and so every other seed's scenario (the regression
/// seeds' too), stays as it was.
fn rolls_back(seed: u64) -> bool {
    seed % 4 == 1
}

fn faults(g: &mut Rng, seed: u64, clusters: &[String]) -> Vec<FaultSpec> {
    let only_shop = if rolls_back(seed) { ", namespace: shop" } else { "" };
    let mut v = Vec::new();
    for _ in 0..g.range(0, 3) {
        let c = g.pick(clusters).clone();
        let from = g.range(0, 3 * 3600);
        let to = from + g.range(60, 1800);
        let (yaml, cluster, effect) = match g.range(0, 9) {
            0 => (
                format!("  - {{ kind: pods_never_ready, cluster: {c}, version: \"{TARGET_MINOR}\"{only_shop} }}\n"),
                Some(c),
                Effect::Fails,
            ),
            1 => {
                let op = *g.pick(&["control_plane", "pool"]);
                (
                    format!("  - {{ kind: operation_fails, cluster: {c}, operation: {op} }}\n"),
                    Some(c),
                    Effect::Fails,
                )
            }
            2 => (
                format!("  - {{ kind: nodes_not_ready, cluster: {c}, version: \"{TARGET_MINOR}\" }}\n"),
                Some(c),
                Effect::Fails,
            ),
            3 => (
                format!("  - {{ kind: pdb_blocks_drain, cluster: {c}, workload: web }}\n"),
                Some(c),
                Effect::Disturbs,
            ),
            4 => (
                format!("  - {{ kind: api_unreachable, cluster: {c}, from: {from}s, to: {to}s }}\n"),
                Some(c),
                Effect::Disturbs,
            ),
            5 => (
                format!("  - {{ kind: auto_upgrade, cluster: {c}, from: {from}s }}\n"),
                Some(c),
                Effect::Disturbs,
            ),
            6 => (
                format!("  - {{ kind: throttle_storm, from: {from}s, to: {}s }}\n", from + 120),
                None,
                Effect::Transient,
            ),
            7 => {
                let status = *g.pick(&["\"500\"", "\"503\"", "drop"]);
                (
                    format!("  - {{ kind: server_errors, rate: 0.1, status: {status}, from: {from}s, to: {to}s }}\n"),
                    None,
                    Effect::Transient,
                )
            }
            _ => continue,
        };
        v.push(FaultSpec { yaml, cluster, effect });
    }
    v
}

/// The policy, and whether it has a blackout.
fn policy_yaml(g: &mut Rng, seed: u64, rings: &[RingSpec]) -> (String, bool) {
    let on_gate_failure = if rolls_back(seed) { "rollback" } else { "hold" };
    let mut p = format!(
        "name: campaign-{seed}\nfleet:\n  subscriptions: [{SUBSCRIPTION}]\ntarget:\n  channel: pinned\n  version: \"{TARGET_MINOR}\"\n  node_image: latest\non_gate_failure: {on_gate_failure}\nrings:\n"
    );
    for r in rings {
        let _ = write!(
            p,
            "  - name: {}\n    selector: {{ tags: {{ ring: {} }} }}\n    soak: {}s\n    waves:\n",
            r.name,
            r.name,
            r.soak.as_secs()
        );
        for w in &r.waves {
            match &w.clusters {
                Some(cs) => {
                    let _ = writeln!(p, "      - name: {}\n        clusters: [{}]", w.name, cs.join(", "));
                }
                None => {
                    let _ = writeln!(p, "      - name: {}\n        max_parallel: {}", w.name, w.max_parallel);
                }
            }
        }
        if r.approval {
            p.push_str("    approval:\n      approvers: [platform-admins]\n      expires_after: 8h\n");
        }
        match r.skip_budget {
            Some(n) => {
                let _ = writeln!(
                    p,
                    "    failure_budget: {{ on_failure: skip-and-continue, max_failed_clusters: {n} }}"
                );
            }
            None => p.push_str("    failure_budget: { on_failure: halt }\n"),
        }
    }
    let _ = write!(
        p,
        "steps:\n  pool_soak: {}s\n  node_image: {}\n  drain_timeout: 10m\ngates:\n  pod_readiness:\n    min_ready_ratio: 1.0\n    exclude_namespaces: [kube-system]\n    settle: 20s\n    timeout: 10m\n  nodes_ready: true\n  no_regression: true\nschedule:\n  time_zone: UTC\n  respect_aks_maintenance: true\n",
        g.range(0, 30),
        g.chance(0.7)
    );
    let blackout = g.chance(0.2);
    if blackout {
        let r = &g.pick(rings).name;
        let _ = write!(
            p,
            "  blackouts:\n    - {{ name: freeze, from: \"2026-12-01\", rings: [{r}] }}\n"
        );
    }
    (p, blackout)
}
