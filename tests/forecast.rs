//! The forecast of the demo policy over the demo fleet: the timeline keeps the rules a
//! rollout keeps (steps in sequence, each after its earliest start; waves within
//! `max_parallel`; rings in order after their soak; prod after its approval), each
//! operation lasts what the model says, and the assumptions move the figures as they
//! must (a later approval moves prod by as much; slower nodes lengthen the rollout).
//! Pools have the fleet file's shapes (maxSurge, node soak), and durations are checked
//! against the documented formula, not `Model::pool`. `forecast::pools_of` is tested on
//! ARM documents, and the `ringmaster forecast` command itself is run against
//! `ringmaster sim` for each output (table, json, svg, html), `--model` and `--history`.

mod common;
mod support;

use chrono::{DateTime, Duration, Utc};
use ringmaster::engine::{Rollout, Settings};
use ringmaster::forecast::model::{Model, PoolShape};
use ringmaster::forecast::{Assumptions, Pools, Timeline, forecast};
use std::collections::BTreeMap;

struct Demo {
    rollout: Rollout,
    settings: Settings,
    pools: Pools,
    plan: ringmaster::plan::Plan,
    start: DateTime<Utc>,
    soaks: BTreeMap<String, std::time::Duration>,
    settle: std::time::Duration,
}

fn demo() -> Demo {
    on_demo_fleet("policies/demo.yaml")
}

/// The demo fleet planned by the policy file `policy`.
fn on_demo_fleet(policy: &str) -> Demo {
    let fleet = support::demo_snapshot::load_fleet("demo.yaml");
    let snapshot = support::demo_snapshot::snapshot(&fleet);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(policy);
    let text = std::fs::read_to_string(&path).unwrap();
    let policy = ringmaster::policy::compile_with_snapshot("demo.yaml", &text, Some(&snapshot)).unwrap();
    let plan = ringmaster::plan::plan(&snapshot, &policy, snapshot.taken_at);
    let pools: Pools = snapshot
        .clusters
        .iter()
        .map(|c| {
            let def = fleet.clusters.iter().find(|d| d.name == c.id.name).unwrap();
            let pools = c
                .pools
                .iter()
                .map(|p| {
                    let d = def.pools.iter().find(|d| d.name == p.name).unwrap();
                    (p.name.clone(), aks_shape(d, None))
                })
                .collect();
            (c.id.clone(), pools)
        })
        .collect();
    Demo {
        rollout: Rollout::new("f".into(), "demo.yaml".into(), text, plan.clone(), snapshot.taken_at),
        settings: Settings::from_policy(&policy),
        pools,
        start: snapshot.taken_at,
        soaks: policy.rings.iter().map(|r| (r.name.clone(), r.soak)).collect(),
        settle: policy.gates.pod_readiness.settle,
        plan,
    }
}

/// A fleet file's pool as AKS upgrades it (docs/forecast.md, "The duration model"): a
/// surge of `maxSurge` nodes, a count or a percentage of the pool rounded up (the
/// policy's `max_surge` wins when it has one), at least 1; the pool's node soak.
/// Written out here from the documentation, not taken from `forecast::pools_of`.
fn aks_shape(pool: &ringmaster::sim::fleet::PoolDef, policy_max_surge: Option<&str>) -> PoolShape {
    let spec = policy_max_surge.unwrap_or(&pool.upgrade.max_surge);
    let surge = match spec.strip_suffix('%') {
        Some(pct) => (pool.count * pct.parse::<u32>().unwrap()).div_ceil(100),
        None => spec.parse().unwrap(),
    };
    PoolShape {
        count: pool.count,
        surge: surge.max(1),
        soak_minutes: pool.upgrade.node_soak_minutes,
    }
}

/// How long AKS takes to replace a pool's nodes, by the documented formula:
/// `node_provision + ceil(n / s) x (node_drain + soak + node_reimage) + node_drain + node_delete`.
fn pool_secs(m: &Model, p: PoolShape) -> u64 {
    let batches = u64::from(p.count.div_ceil(p.surge));
    let per_batch = m.node_drain.as_secs() + 60 * u64::from(p.soak_minutes) + m.node_reimage.as_secs();
    m.node_provision.as_secs() + batches * per_batch + m.node_drain.as_secs() + m.node_delete.as_secs()
}

fn run(d: &Demo, model: Model, approval_after: std::time::Duration) -> Timeline {
    let a = Assumptions {
        model,
        approval_after,
        history: Default::default(),
    };
    forecast(d.rollout.clone(), &d.settings, &d.pools, &a, d.start)
}

fn secs(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap()
}

#[test]
fn the_demo_forecast_keeps_the_rollout_s_rules_and_the_model_s_durations() {
    let d = demo();
    let model = Model::default();
    let tl = run(&d, model.clone(), std::time::Duration::from_secs(3600));
    let finish = tl.finish.expect("the rollout ends");
    assert_eq!(Some(finish), tl.rings.last().unwrap().finish);
    let planned: usize = d
        .plan
        .rings
        .iter()
        .flat_map(|r| &r.waves)
        .map(|w| w.clusters.len())
        .sum();
    assert_eq!(tl.rings.iter().map(|r| r.clusters.len()).sum::<usize>(), planned);
    for (ri, ring) in tl.rings.iter().enumerate() {
        let (start, end) = (ring.start.unwrap(), ring.finish.unwrap());
        if ri > 0 {
            assert!(
                start >= tl.rings[ri - 1].finish.unwrap(),
                "{} before the ring before it",
                ring.name
            );
        }
        if let Some(asked) = ring.approval_asked {
            let approved = ring.approved.unwrap();
            assert_eq!(approved - asked, Duration::hours(1), "{}", ring.name);
            assert!(start >= approved);
        }
        let last = ring.clusters.iter().filter_map(|c| c.finish).max().unwrap();
        assert_eq!(
            end,
            last + secs(d.soaks[&ring.name]),
            "{}: ends after its soak",
            ring.name
        );
        for c in &ring.clusters {
            let planned = d
                .plan
                .rings
                .iter()
                .flat_map(|r| &r.waves)
                .flat_map(|w| &w.clusters)
                .find(|p| p.id == c.id)
                .unwrap();
            for (i, s) in c.steps.iter().enumerate() {
                let (st, op, fin) = (s.start.unwrap(), s.operation_end.unwrap(), s.finish.unwrap());
                assert!(
                    st >= planned.steps[i].earliest_start,
                    "{}: {} before its earliest start",
                    c.id.name,
                    s.step
                );
                if i > 0 {
                    assert!(st >= c.steps[i - 1].finish.unwrap(), "{}: steps overlap", c.id.name);
                }
                let want = match planned.steps[i].kind.pool() {
                    None => model.control_plane.as_secs(),
                    Some(p) => pool_secs(&model, d.pools[&c.id][p]),
                };
                assert_eq!((op - st).num_seconds() as u64, want, "{}: {}", c.id.name, s.step);
                assert!(
                    fin >= op + secs(d.settle),
                    "{}: done before its gate settled",
                    c.id.name
                );
            }
        }
        // Never more clusters of a wave at work at once than it allows.
        for wave in d.plan.rings[ri].waves.iter() {
            let max = d.rollout.rings[ri]
                .waves
                .iter()
                .find(|w| w.name == wave.name)
                .unwrap()
                .max_parallel;
            let spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = ring
                .clusters
                .iter()
                .filter(|c| c.wave == wave.name)
                .map(|c| (c.start.unwrap(), c.finish.unwrap()))
                .collect();
            for (a, _) in &spans {
                let at_once = spans.iter().filter(|(s, e)| s <= a && a < e).count();
                assert!(
                    at_once <= max,
                    "{}/{}: {at_once} at once, max {max}",
                    ring.name,
                    wave.name
                );
            }
        }
    }
    let table = ringmaster::forecast::render::table(&tl);
    assert!(table.contains("prod") && table.contains("aks-prd-weu-01"), "{table}");
    assert!(table.lines().all(|l| l.chars().count() <= 100), "{table}");
    let json: serde_json::Value = serde_json::from_str(&ringmaster::forecast::render::json(&tl)).unwrap();
    assert_eq!(json["rings"].as_array().unwrap().len(), 3);
    assert!(json["assumptions"].as_array().unwrap().len() >= 3);
}

#[test]
fn the_assumptions_move_the_figures_as_they_must() {
    let d = demo();
    let base = run(&d, Model::default(), std::time::Duration::from_secs(3600));
    let later = run(&d, Model::default(), std::time::Duration::from_secs(4 * 3600));
    let prod = |t: &Timeline| t.rings.iter().find(|r| r.name == "prod").unwrap().finish.unwrap();
    let staging = |t: &Timeline| t.rings.iter().find(|r| r.name == "staging").unwrap().finish.unwrap();
    assert_eq!(staging(&later), staging(&base), "staging needs no approval");
    assert_eq!(
        prod(&later) - prod(&base),
        Duration::hours(3),
        "prod moves with its approval"
    );
    let slow = Model {
        node_reimage: std::time::Duration::from_secs(20 * 60),
        ..Model::default()
    };
    let slower = run(&d, slow, std::time::Duration::from_secs(3600));
    assert!(slower.finish.unwrap() > base.finish.unwrap() + Duration::hours(1));
}

/// The ETA of a rollout that has not moved equals the forecast made at its start; an
/// operation that runs two hours past its expected end makes its cluster late and moves
/// the rollout's end, before any gate could time out.
#[test]
fn the_eta_starts_as_the_forecast_and_a_slow_operation_makes_its_cluster_late() {
    use ringmaster::engine::{Command, Input, advance};
    let d = demo();
    let mut r = d.rollout.clone();
    let a = Assumptions {
        history: Default::default(),
        model: Model::default(),
        approval_after: std::time::Duration::from_secs(3600),
    };
    let tl = ringmaster::forecast::at_start(&mut r, &d.settings, &d.pools, &a, d.start);
    let f = r.forecast.clone().expect("recorded");
    assert_eq!(f.finish, tl.finish);
    assert!(
        r.clusters()
            .all(|(_, c)| c.steps.iter().all(|s| s.expected_secs.is_some()))
    );
    let eta = ringmaster::forecast::eta(&r, &d.settings, d.start).unwrap();
    assert_eq!(eta.finish, tl.finish, "nothing moved: the ETA is the forecast");
    assert!(eta.late.is_empty(), "{:?}", eta.late);

    // The first call is accepted; its operation never ends.
    let mut inputs = vec![Input::Tick];
    let mut hung = None;
    while hung.is_none() {
        let input = inputs.pop().expect("a call is made");
        for c in advance(&mut r, &d.settings, input, d.start) {
            match c {
                Command::RunPreflight { cluster, .. } => inputs.push(Input::PreflightDone {
                    cluster,
                    findings: vec![],
                }),
                Command::Claim { cluster, .. } => inputs.push(Input::Claimed { cluster }),
                Command::TakeBaseline { cluster, .. } => inputs.push(Input::BaselineTaken {
                    cluster,
                    baseline: Default::default(),
                    pools: Default::default(),
                }),
                Command::StartStep { step, .. } if hung.is_none() => {
                    hung = Some(step);
                    inputs.push(Input::StepAccepted { step, op: None });
                }
                _ => {}
            }
        }
    }
    let step = hung.unwrap();
    advance(&mut r, &d.settings, Input::StepAccepted { step, op: None }, d.start);
    let expected = Duration::seconds(r.step(step).expected_secs.unwrap() as i64);
    let now = d.start + expected + Duration::hours(2);
    let eta = ringmaster::forecast::eta(&r, &d.settings, now).unwrap();
    let id = r.cluster(step.cluster_ref()).id.clone();
    assert!(eta.late.iter().any(|l| l.cluster == id), "{id} is late: {:?}", eta.late);
    assert!(eta.finish.unwrap() > tl.finish.unwrap() + Duration::hours(1), "{eta:?}");
    // A paused rollout has no ETA: nothing moves until a person acts.
    advance(
        &mut r,
        &d.settings,
        Input::Pause {
            scope: ringmaster::engine::Scope::Rollout,
            by: "carol".into(),
            reason: "test".into(),
        },
        now,
    );
    assert!(ringmaster::forecast::eta(&r, &d.settings, now).is_none());
}

/// The Gantt chart says what the table says: one bar per step, titled with its cluster,
/// step and times, in order along its row; one approval marker for prod; the "now" line;
/// a well-formed SVG a browser opens, inside a page that needs nothing else.
#[test]
fn the_gantt_chart_has_a_bar_per_step_in_order_and_the_approval_and_now() {
    let d = demo();
    let tl = run(&d, Model::default(), std::time::Duration::from_secs(3600));
    let now = d.start + Duration::hours(1);
    let text = ringmaster::forecast::gantt::svg(&tl, now);
    let doc = roxmltree::Document::parse(&text).expect("well-formed SVG");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let title = |n: roxmltree::Node| -> String {
        n.children()
            .find(|c| c.has_tag_name("title"))
            .and_then(|t| t.text())
            .unwrap_or("")
            .to_string()
    };
    let class = |n: &roxmltree::Node, c: &str| n.attribute("class") == Some(c);
    let steps: Vec<roxmltree::Node> = root
        .descendants()
        .filter(|n| n.has_tag_name("rect") && class(n, "step"))
        .collect();
    let planned: usize = tl.rings.iter().flat_map(|r| &r.clusters).map(|c| c.steps.len()).sum();
    assert_eq!(steps.len(), planned);
    for c in tl.rings.iter().flat_map(|r| &r.clusters) {
        let bars: Vec<&roxmltree::Node> = steps
            .iter()
            .filter(|n| title(**n).starts_with(&format!("{}: ", c.id.name)))
            .collect();
        assert_eq!(bars.len(), c.steps.len(), "{}", c.id.name);
        let xs: Vec<f64> = bars
            .iter()
            .map(|n| n.attribute("x").unwrap().parse().unwrap())
            .collect();
        assert!(
            xs.windows(2).all(|w| w[0] <= w[1]),
            "{}: bars out of order {xs:?}",
            c.id.name
        );
        for (b, s) in bars.iter().zip(&c.steps) {
            let t = title(**b);
            assert!(t.contains(&s.step), "{t} / {}", s.step);
            assert!(t.contains(&s.start.unwrap().format("%m-%d %H:%M").to_string()), "{t}");
        }
    }
    let approvals: Vec<String> = root
        .descendants()
        .filter(|n| n.has_tag_name("polygon") && class(n, "approval"))
        .map(title)
        .collect();
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    assert!(approvals[0].starts_with("ring prod: approval"), "{approvals:?}");
    assert_eq!(
        root.descendants()
            .filter(|n| n.has_tag_name("line") && class(n, "now"))
            .count(),
        1
    );
    // Outside the timeline there is no "now" line.
    let later = ringmaster::forecast::gantt::svg(&tl, tl.finish.unwrap() + Duration::days(1));
    assert!(!later.contains("class=\"now\""));
    let page = ringmaster::forecast::gantt::html(&tl, now);
    assert!(page.starts_with("<!doctype html>") && page.contains("<svg") && page.contains("aks-prd-weu-01"));
    assert_eq!(
        fetches_or_runs(&page),
        Vec::<String>::new(),
        "the page needs nothing else"
    );
    // The check itself sees what it is there to see (else it proves nothing).
    for bad in [
        "<script src=\"http://x.example/a.js\"></script>",
        "<script>alert(1)</script>",
        "<img src=\"//cdn.example/a.png\">",
        "<link rel=\"stylesheet\" href=\"https://cdn.example/a.css\">",
        "<style>@import 'x.css';</style>",
        "<p style=\"background:url(a.png)\"></p>",
        "<p onclick = \"go()\">x</p>",
    ] {
        let spoiled = page.replacen("</body>", &format!("{bad}</body>"), 1);
        assert!(!fetches_or_runs(&spoiled).is_empty(), "{bad} is not seen");
    }
}

/// What in an HTML page runs or fetches something: scripts, event handlers, embedded
/// documents, anything with a `src` or `href`, CSS imports and `url()`, and any URL but
/// the SVG namespace (an identifier a browser never fetches). Empty for a page that
/// needs nothing else.
fn fetches_or_runs(page: &str) -> Vec<String> {
    let text = page
        .to_ascii_lowercase()
        .replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    let mut found: Vec<String> = [
        "<script",
        "<link",
        "<iframe",
        "<object",
        "<embed",
        "<img",
        "<image",
        "<use",
        "<base",
        "<meta http-equiv",
        "<form",
        "src=",
        "href=",
        "@import",
        "url(",
        "http:",
        "https:",
        "\"//",
        "'//",
        "javascript:",
    ]
    .iter()
    .filter(|p| text.contains(**p))
    .map(|p| p.to_string())
    .collect();
    // Event handler attributes: ` onload=`, ` onclick=` ...
    for (i, _) in text.match_indices(" on") {
        let name: String = text[i + 1..].chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        if name.len() > 2 && text[i + 1 + name.len()..].trim_start().starts_with('=') {
            found.push(name);
        }
    }
    found
}

/// History calibrates the model per kind of step: operations that took twice (pools) and
/// half (control planes) what the model said make a forecast expect as much. The
/// history is a rollout the engine ran and the audit entries it emitted (not subjects
/// written here), so a change of the engine's audit format that `history` no longer
/// reads fails this test instead of silently learning nothing.
#[test]
fn history_calibrates_the_model_per_kind_of_step() {
    use ringmaster::forecast::history;
    let d = demo();
    let a = Assumptions {
        model: Model::default(),
        approval_after: std::time::Duration::from_secs(3600),
        history: Default::default(),
    };
    let (past, audit) = rehearse(&d, &a);
    let steps = |kind: &str| {
        past.clusters()
            .flat_map(|(_, c)| &c.steps)
            .filter(|s| s.kind.name() == kind)
            .count()
    };
    let cal = history::learn(std::slice::from_ref(&past), &audit);
    // Every operation is learnt from: the audit's subjects are the engine's own.
    for kind in ["controlPlane", "poolVersion"] {
        assert!(steps(kind) > 0, "{kind}");
        assert_eq!(
            cal.kinds.get(kind).map(|f| f.samples),
            Some(steps(kind)),
            "{kind}: {cal:?}"
        );
    }
    assert!((cal.factor("poolVersion") - 2.0).abs() < 0.01, "{cal:?}");
    assert!((cal.factor("controlPlane") - 0.5).abs() < 0.01, "{cal:?}");
    assert_eq!(cal.factor("poolRollback"), 1.0, "no history: the model");
    let calibrated = Assumptions {
        history: cal,
        ..a.clone()
    };
    let plain = forecast(d.rollout.clone(), &d.settings, &d.pools, &a, d.start);
    let learned = forecast(d.rollout.clone(), &d.settings, &d.pools, &calibrated, d.start);
    let op = |t: &Timeline, kind: &str| -> i64 {
        let s = t
            .rings
            .iter()
            .flat_map(|r| &r.clusters)
            .flat_map(|c| &c.steps)
            .find(|s| s.kind == kind)
            .unwrap();
        (s.operation_end.unwrap() - s.start.unwrap()).num_seconds()
    };
    assert!((op(&learned, "poolVersion") - 2 * op(&plain, "poolVersion")).abs() <= 1);
    assert!((2 * op(&learned, "controlPlane") - op(&plain, "controlPlane")).abs() <= 1);
    assert!(
        learned
            .assumptions
            .iter()
            .any(|x| x.starts_with("history: poolVersion operations took 2.00x")),
        "{:?}",
        learned.assumptions
    );
}

/// The demo rollout run to its end through the engine (`engine::advance`), as the
/// runtime runs it, with AKS taking twice the model's time for pool operations and half
/// for control planes: the finished rollout and the audit log the runtime would have
/// written (each `Command::Audit` at the time it was emitted, as `runtime` records it).
/// The audit's subjects are the engine's, so `history` is tested against the format it
/// really gets.
fn rehearse(d: &Demo, a: &Assumptions) -> (Rollout, Vec<ringmaster::store::AuditEntry>) {
    use ringmaster::engine::{Command, Input, NotifyEvent, advance};
    let mut r = d.rollout.clone();
    ringmaster::forecast::at_start(&mut r, &d.settings, &d.pools, a, d.start);
    let mut audit = Vec::new();
    let mut queue: BTreeMap<(DateTime<Utc>, u64), Input> = BTreeMap::new();
    let mut seq = 0u64;
    let mut push = |q: &mut BTreeMap<(DateTime<Utc>, u64), Input>, at, input| {
        seq += 1;
        q.insert((at, seq), input);
    };
    push(&mut queue, d.start, Input::Tick);
    let mut asked = std::collections::BTreeSet::new();
    while let Some(((now, _), input)) = queue.pop_first() {
        assert!(now < d.start + Duration::days(30), "the rehearsal ends");
        for c in advance(&mut r, &d.settings, input, now) {
            match c {
                Command::RunPreflight { cluster, .. } => push(
                    &mut queue,
                    now,
                    Input::PreflightDone {
                        cluster,
                        findings: vec![],
                    },
                ),
                Command::Claim { cluster, .. } => push(&mut queue, now, Input::Claimed { cluster }),
                Command::TakeBaseline { cluster, .. } => {
                    let pools = r.cluster(cluster).pools.clone();
                    let baseline = Default::default();
                    push(
                        &mut queue,
                        now,
                        Input::BaselineTaken {
                            cluster,
                            baseline,
                            pools,
                        },
                    );
                }
                Command::StartStep { step, .. } => {
                    let st = r.step(step);
                    let factor = if st.kind.pool().is_some() { 2.0 } else { 0.5 };
                    let took = Duration::milliseconds((st.expected_secs.unwrap() as f64 * factor * 1000.0) as i64);
                    push(&mut queue, now, Input::StepAccepted { step, op: None });
                    push(
                        &mut queue,
                        now + took,
                        Input::OperationFinished { step, result: Ok(()) },
                    );
                }
                Command::Gate { step, .. } => push(
                    &mut queue,
                    now,
                    Input::GateObserved {
                        step,
                        healthy: true,
                        reasons: vec![],
                        at: now,
                    },
                ),
                Command::Notify {
                    event: NotifyEvent::ApprovalNeeded,
                    ring: Some(ring),
                    ..
                } if asked.insert(ring.clone()) => push(
                    &mut queue,
                    now,
                    Input::Approve {
                        ring,
                        by: "carol".into(),
                        comment: String::new(),
                        expires_at: None,
                    },
                ),
                Command::WakeAt { at } => push(&mut queue, at, Input::Tick),
                Command::Audit {
                    actor,
                    action,
                    subject,
                    reason,
                } => audit.push(ringmaster::store::AuditEntry {
                    at: now,
                    actor,
                    action,
                    rollout_id: Some(r.id.clone()),
                    subject,
                    reason,
                    detail: serde_json::Value::Null,
                }),
                _ => {}
            }
        }
        if r.status.is_terminal() {
            break;
        }
    }
    assert_eq!(r.status, ringmaster::engine::RolloutStatus::Succeeded);
    (r, audit)
}

/// `policies/default.yaml` over the demo fleet: office-hours windows, two approvals (given
/// four hours after each is asked), a year-end freeze. Every cluster's first step starts
/// at its planned earliest start (windows, freeze) or later, and the approvals come as
/// assumed.
#[test]
fn a_policy_with_windows_approvals_and_a_freeze_is_forecast_to_its_end() {
    let d = on_demo_fleet("policies/default.yaml");
    let tl = run(&d, Model::default(), std::time::Duration::from_secs(4 * 3600));
    assert!(tl.finish.is_some(), "it ends");
    for (ri, ring) in tl.rings.iter().enumerate() {
        if let Some(asked) = ring.approval_asked {
            assert_eq!(ring.approved.unwrap() - asked, Duration::hours(4), "{}", ring.name);
        }
        for c in &ring.clusters {
            let planned = d.plan.rings[ri]
                .waves
                .iter()
                .flat_map(|w| &w.clusters)
                .find(|p| p.id == c.id)
                .unwrap();
            assert!(
                c.steps[0].start.unwrap() >= planned.steps[0].earliest_start,
                "{}",
                c.id.name
            );
        }
    }
    assert!(tl.rings.iter().filter(|r| r.approval_asked.is_some()).count() == 2);
    let table = ringmaster::forecast::render::table(&tl);
    assert!(
        table.contains("staging") && table.contains("4h after it is asked"),
        "{table}"
    );
}

/// `forecast::pools_of` reads each pool's shape from the ARM documents discovery keeps:
/// its node count, its `maxSurge` (a count, a percentage rounded up, AKS's 10% when it
/// has none), its `nodeSoakDurationInMinutes`; and the policy's `steps.max_surge` wins
/// over every pool's.
#[test]
fn pools_of_reads_count_max_surge_node_soak_and_the_policy_s_override() {
    let fleet = support::demo_snapshot::load_fleet("demo.yaml");
    let snapshot = support::demo_snapshot::snapshot(&fleet);
    let id = snapshot.clusters[0].id.clone();
    let cluster: ringmaster::arm::models::ManagedCluster = serde_json::from_value(serde_json::json!({
        "location": "westeurope",
        "properties": { "agentPoolProfiles": [
            { "name": "plain", "count": 25 },
            { "name": "counted", "count": 4, "upgradeSettings": { "maxSurge": "2" } },
            { "name": "soaked", "count": 10,
              "upgradeSettings": { "maxSurge": "50%", "nodeSoakDurationInMinutes": 7 } },
        ]},
    }))
    .unwrap();
    let discovery = ringmaster::discovery::Discovery {
        snapshot,
        problems: vec![],
        raw: BTreeMap::from([(id.clone(), cluster)]),
    };
    let demo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/demo.yaml")).unwrap();
    let shapes = |text: &str| {
        let policy = ringmaster::policy::compile("p.yaml", text).unwrap();
        let pools = ringmaster::forecast::pools_of(&discovery, &policy);
        let mine = &pools[&id];
        ["plain", "counted", "soaked"].map(|p| {
            let s = mine[p];
            (s.count, s.surge, s.soak_minutes)
        })
    };
    assert_eq!(
        shapes(&demo),
        [(25, 3, 0), (4, 2, 0), (10, 5, 7)],
        "10% of 25 is 3 (rounded up); 2; 50% of 10 with a 7-minute soak"
    );
    let overridden = demo.replacen("steps:\n", "steps:\n  max_surge: \"100%\"\n", 1);
    assert_ne!(overridden, demo);
    assert_eq!(
        shapes(&overridden),
        [(25, 25, 0), (4, 4, 0), (10, 10, 7)],
        "the policy's max_surge wins; the soak is the pool's"
    );
}

/// The demo fleet file with two pools' surges changed so that the forecast command's
/// durations tell surges apart (in the demo fleet every pool's surge comes to 1 node):
/// aks-stg-weu-01's user1 (3 nodes) surges 3 (one batch), aks-prd-weu-01's user1
/// (3 nodes, 1-minute soak) 50%, so 2 (two batches).
fn surging_fleet(dir: &std::path::Path) -> (std::path::PathBuf, ringmaster::sim::fleet::Fleet) {
    let demo = std::fs::read_to_string(common::demo_fleet_path()).unwrap();
    let text = demo
        .replacen(
            "{ max_surge: \"1\", drain_timeout_minutes: 10 }",
            "{ max_surge: \"3\", drain_timeout_minutes: 10 }",
            1,
        )
        .replacen(
            "{ max_surge: \"33%\", node_soak_minutes: 1 }",
            "{ max_surge: \"50%\", node_soak_minutes: 1 }",
            1,
        );
    assert_eq!(text.matches("max_surge: \"3\"").count(), 1);
    assert_eq!(text.matches("max_surge: \"50%\"").count(), 1);
    let path = dir.join("fleet.yaml");
    std::fs::write(&path, text).unwrap();
    let fleet = ringmaster::sim::fleet::load(&path).unwrap();
    (path, fleet)
}

const DEMO_POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/demo.yaml");
/// The demo fleet's start: forecasts from it are the same whenever the test runs.
const FLEET_START: &str = "2026-11-30T07:00:00Z";

/// `ringmaster forecast` against `sim` from the fleet's start: its standard output.
fn forecast_cli(sim: &common::procs::Sim, extra: &[&str]) -> String {
    let mut args = vec!["forecast", "--policy", DEMO_POLICY, "--start", FLEET_START];
    args.extend_from_slice(extra);
    let out = common::procs::ringmaster(sim, &args).output().unwrap();
    assert!(
        out.status.success(),
        "forecast {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn time(v: &serde_json::Value) -> DateTime<Utc> {
    v.as_str().unwrap_or_else(|| panic!("a time: {v}")).parse().unwrap()
}

/// Every step of a `--output json` forecast: (cluster, kind, step in words, seconds
/// from its call to its operation's end).
fn step_secs(json: &serde_json::Value) -> Vec<(String, String, String, i64)> {
    let mut out = Vec::new();
    for ring in json["rings"].as_array().unwrap() {
        for c in ring["clusters"].as_array().unwrap() {
            for s in c["steps"].as_array().unwrap() {
                let secs = (time(&s["operationEnd"]) - time(&s["start"])).num_seconds();
                let (kind, step) = (s["kind"].as_str().unwrap(), s["step"].as_str().unwrap());
                out.push((c["id"]["name"].as_str().unwrap().into(), kind.into(), step.into(), secs));
            }
        }
    }
    out
}

/// What each step should take under `model` with the pools of `fleet` (`factor` per
/// kind of step: history's calibration), from the documented formula.
fn expected_secs(
    fleet: &ringmaster::sim::fleet::Fleet,
    model: &Model,
    factor: impl Fn(&str) -> f64,
    cluster: &str,
    kind: &str,
    step: &str,
) -> i64 {
    let secs = if kind == "controlPlane" {
        model.control_plane.as_secs()
    } else {
        // "pool user1 1.32.7 -> 1.33.3", "pool user1 node image -> ..."
        let pool = step.split_whitespace().nth(1).unwrap();
        let def = fleet.clusters.iter().find(|c| c.name == cluster).unwrap();
        pool_secs(
            model,
            aks_shape(def.pools.iter().find(|p| p.name == pool).unwrap(), None),
        )
    };
    (secs as f64 * factor(kind)).round() as i64
}

/// `ringmaster forecast` itself, run as a process against `ringmaster sim` on a fleet
/// whose pools surge differently: `--output json` has every step of the plan, each
/// lasting what the model says for its pool's real shape (maxSurge and node soak read
/// from ARM by `pools_of`), rings and the rollout ending when their last step and soak
/// do; `table` lists the same rings and clusters with the same times; `svg` has one bar
/// per step of the JSON; `html` holds that chart and the table and needs nothing else.
#[test]
fn the_forecast_command_prints_the_timeline_as_table_json_svg_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let (path, fleet) = surging_fleet(dir.path());
    let sim = common::procs::start_sim_on(dir.path(), path.to_str().unwrap(), "1");
    let json: serde_json::Value = serde_json::from_str(&forecast_cli(&sim, &["--output", "json"])).unwrap();
    assert_eq!(time(&json["start"]), FLEET_START.parse::<DateTime<Utc>>().unwrap());
    assert_eq!(
        json["model"]["control_plane"], "10m",
        "the default model: {}",
        json["model"]
    );
    let rings = json["rings"].as_array().unwrap();
    assert_eq!(
        rings.iter().map(|r| r["name"].as_str().unwrap()).collect::<Vec<_>>(),
        ["dev", "staging", "prod"]
    );
    let clusters: Vec<&serde_json::Value> = rings.iter().flat_map(|r| r["clusters"].as_array().unwrap()).collect();
    assert_eq!(clusters.len(), fleet.clusters.len(), "every cluster is upgraded");
    let last = rings.iter().map(|r| time(&r["finish"])).max().unwrap();
    assert_eq!(time(&json["finish"]), last);
    let steps = step_secs(&json);
    for (cluster, kind, step, secs) in &steps {
        let want = expected_secs(&fleet, &Model::default(), |_| 1.0, cluster, kind, step);
        assert_eq!(*secs, want, "{cluster}: {step}");
    }
    // The changed surges are in the figures: one batch of 3, two batches with a soak.
    let user1 = |cluster: &str| {
        steps
            .iter()
            .find(|(c, k, s, _)| c == cluster && k == "poolVersion" && s.starts_with("pool user1 "))
            .unwrap()
            .3
    };
    assert_eq!(user1("aks-stg-weu-01"), (4 + (2 + 4) + 2 + 1) * 60);
    assert_eq!(user1("aks-prd-weu-01"), (4 + 2 * (2 + 1 + 4) + 2 + 1) * 60);

    let table = forecast_cli(&sim, &[]);
    let t = |v: &serde_json::Value| time(v).format("%a %m-%d %H:%M").to_string();
    assert!(
        table
            .lines()
            .next()
            .unwrap()
            .contains(&format!("the rollout ends {} UTC", t(&json["finish"]))),
        "{table}"
    );
    for ring in rings {
        for c in ring["clusters"].as_array().unwrap() {
            let row = [
                ring["name"].as_str().unwrap().to_string(),
                c["wave"].as_str().unwrap().to_string(),
                c["id"]["name"].as_str().unwrap().to_string(),
                t(&c["start"]),
                t(&c["finish"]),
            ];
            assert!(
                table.lines().any(|l| {
                    let words: Vec<&str> = l.split_whitespace().collect();
                    words.len() > 8
                        && words[..3] == [&row[0][..], &row[1][..], &row[2][..]]
                        && l.contains(&row[3])
                        && l.contains(&row[4])
                        && words.last() == Some(&c["steps"].as_array().unwrap().len().to_string().as_str())
                }),
                "{row:?} in\n{table}"
            );
        }
    }

    let svg = forecast_cli(&sim, &["--output", "svg"]);
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let bars: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("class") == Some("step"))
        .map(|n| {
            n.children()
                .find(|c| c.has_tag_name("title"))
                .and_then(|t| t.text())
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(bars.len(), steps.len());
    for (cluster, _, step, _) in &steps {
        assert!(
            bars.iter().any(|b| b.starts_with(&format!("{cluster}: {step}"))),
            "{cluster}: {step} in {bars:?}"
        );
    }

    let html = forecast_cli(&sim, &["--output", "html"]);
    assert!(html.starts_with("<!doctype html>"), "{html}");
    let steps_in_page = html.matches("class=\"step\"").count();
    assert_eq!(steps_in_page, steps.len(), "the chart is in the page");
    let escaped = table.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    assert!(
        html.contains(&format!("<pre>{escaped}</pre>")),
        "the table is in the page"
    );
    assert_eq!(fetches_or_runs(&html), Vec::<String>::new());
}

/// `ringmaster forecast --model FILE` forecasts with the file's durations (the others
/// the defaults) and prints the model it used; `--history STATE` calibrates the model per
/// kind of step with a state file's finished operations and says so among the
/// assumptions. The state file holds a rollout the engine ran with pool operations
/// taking twice the model's time and control planes half, written as the runtime
/// writes it: the forecast then expects pool steps to take twice as long and control
/// planes half.
#[test]
fn the_forecast_command_takes_a_model_file_and_a_history() {
    let dir = tempfile::tempdir().unwrap();
    let (path, fleet) = surging_fleet(dir.path());
    let sim = common::procs::start_sim_on(dir.path(), path.to_str().unwrap(), "1");
    let json = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["--output", "json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&forecast_cli(&sim, &args)).unwrap()
    };

    let model_file = dir.path().join("model.yaml");
    std::fs::write(&model_file, "control_plane: 30m\nnode_reimage: 20m\n").unwrap();
    let slow = json(&["--model", model_file.to_str().unwrap()]);
    let model = Model {
        control_plane: std::time::Duration::from_secs(30 * 60),
        node_reimage: std::time::Duration::from_secs(20 * 60),
        ..Model::default()
    };
    assert_eq!(slow["model"]["control_plane"], "30m", "{}", slow["model"]);
    assert_eq!(slow["model"]["node_reimage"], "20m");
    assert_eq!(slow["model"]["node_drain"], "2m", "the defaults fill in");
    let steps = step_secs(&slow);
    assert!(steps.iter().any(|(_, k, _, _)| k == "controlPlane"));
    for (cluster, kind, step, secs) in &steps {
        let want = expected_secs(&fleet, &model, |_| 1.0, cluster, kind, step);
        assert_eq!(*secs, want, "--model: {cluster}: {step}");
    }

    // A state file as `run` leaves it: the rollout and its audit log.
    let d = demo();
    let a = Assumptions {
        model: Model::default(),
        approval_after: std::time::Duration::from_secs(3600),
        history: Default::default(),
    };
    let (past, audit) = rehearse(&d, &a);
    let state = dir.path().join("history.db");
    let store = ringmaster::store::Store::open(&state).unwrap();
    let record = ringmaster::engine::stored::record(&past, None, past.updated_at).unwrap();
    store.save_rollout_with_audit(&record, &audit).unwrap();
    drop(store);
    let learnt = json(&["--history", state.to_str().unwrap()]);
    let said: Vec<&str> = learnt["assumptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(
        said.iter()
            .any(|a| a.starts_with("history: poolVersion operations took 2.00x")),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|a| a.starts_with("history: controlPlane operations took 0.50x")),
        "{said:?}"
    );
    let factor = |kind: &str| match kind {
        "controlPlane" => 0.5,
        "poolVersion" => 2.0,
        _ => 1.0,
    };
    for (cluster, kind, step, secs) in step_secs(&learnt) {
        let want = expected_secs(&fleet, &Model::default(), factor, &cluster, &kind, &step);
        assert_eq!(secs, want, "--history: {cluster}: {step}");
    }
}
