//! The forecast of the demo policy over the demo fleet: the timeline keeps the rules a
//! rollout keeps (steps in sequence, each after its earliest start; waves within
//! `max_parallel`; rings in order after their soak; prod after its approval), each
//! operation lasts what the model says, and the assumptions move the figures as they
//! must (a later approval moves prod by as much; slower nodes lengthen the rollout).

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
                    let shape = PoolShape {
                        count: d.count,
                        surge: 1,
                        soak_minutes: 0,
                    };
                    (p.name.clone(), shape)
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
                    None => model.control_plane,
                    Some(p) => model.pool(d.pools[&c.id][p]),
                };
                assert_eq!(op - st, secs(want), "{}: {}", c.id.name, s.step);
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
                Command::TakeBaseline { cluster, .. } => inputs.push(Input::BaselineTaken {
                    cluster,
                    baseline: serde_json::Value::Null,
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
                Command::TakeBaseline { cluster, .. } => {
                    let pools = r.cluster(cluster).pools.clone();
                    let baseline = serde_json::Value::Null;
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
