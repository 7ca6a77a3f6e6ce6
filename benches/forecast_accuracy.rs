//! How good the forecast is: the demo fleet (`examples/fleets/demo.yaml` without its
//! fault, `policies/demo.yaml`) forecast at the start, then rehearsed in-process (the
//! simulator on a scaled clock, the real runtime with a state file, each approval given
//! one wall-clock second after it is asked, which the forecast assumes too). Printed, for
//! the rollout and each ring: the forecast and actual time from the start to its end,
//! and |forecast - actual| / actual. Issue 15's goal: within 10% with the model alone.
//!
//! Two models: the defaults (`docs/forecast.md`: estimates for AKS, knowing nothing of
//! this fleet), and the defaults calibrated with the fleet file's own `durations` (what
//! a team does with `forecast --model` once it knows its fleet's times). The simulator's
//! durations stay its own: it runs its surge algorithm with drains, pod restarts and
//! watch latency; the model is a formula.
//!
//! Then the same for a generated fleet of 120 clusters (`examples/fleets/large.yaml`'s
//! template, dev 6 / staging 18 / prod 96 in waves of 6, 6 and 12), with an approval
//! before prod, a daily 08:00-18:00 window for prod and a blackout of prod on Tuesday.
//!
//! Last, the default model calibrated with history (`forecast --history`): each fleet's
//! forecast with the other fleet's rehearsal as history (held out: the run judged is not
//! the one learned from), and, for comparison, with its own (which flatters it: the
//! simulator's durations do not depend on its seed, so a second rehearsal of the same
//! fleet replays the first one exactly).
//!
//! Run: `cargo bench --bench forecast_accuracy` (about 10 minutes).

use ringmaster::demo::Rehearsal;
use ringmaster::domain::fleet::ClusterId;
use ringmaster::engine::{Input, NotifyEvent, Rollout, Settings};
use ringmaster::forecast::model::Model;
use ringmaster::forecast::{Assumptions, Timeline};
use ringmaster::runtime::{Notifier, Runtime};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

#[path = "common/generated.rs"]
mod generated;

/// Simulated seconds per wall-clock second: the demo fleet, the generated one (whose
/// rollout spans two simulated days of windows and a blackout).
const SCALE: f64 = 120.0;
const GENERATED_SCALE: f64 = 600.0;

struct Asks(mpsc::UnboundedSender<String>);

impl Notifier for Asks {
    fn notify(&self, e: NotifyEvent, ring: Option<&str>, _: Option<&ClusterId>, _: &str) {
        if e == NotifyEvent::ApprovalNeeded
            && let Some(r) = ring
        {
            let _ = self.0.send(r.to_string());
        }
    }
}

/// (name, forecast end, actual end), the rollout first.
fn compare(tl: &Timeline, done: &Rollout) -> Vec<(String, f64, f64)> {
    let start = done.created_at;
    let h = |t: chrono::DateTime<chrono::Utc>| (t - start).num_seconds() as f64 / 3600.0;
    let actual_end = done.rings.iter().filter_map(|r| r.finished_at).max().unwrap();
    let mut v = vec![("rollout".to_string(), h(tl.finish.unwrap()), h(actual_end))];
    for (f, a) in tl.rings.iter().zip(&done.rings) {
        v.push((
            format!("ring {}", f.name),
            h(f.finish.unwrap()),
            h(a.finished_at.unwrap()),
        ));
    }
    v
}

/// A rehearsal: the finished rollout, its state file's directory, and what a forecast at
/// its start needs (the fresh rollout, settings, pools, start, approval delay).
struct Rehearsed {
    done: Rollout,
    state: tempfile::TempDir,
    fresh: Rollout,
    settings: Settings,
    pools: ringmaster::forecast::Pools,
    start: chrono::DateTime<chrono::Utc>,
    approval_after: Duration,
}

impl Rehearsed {
    /// The forecast at the rehearsal's start with `model` and `history`.
    fn forecast(&self, model: Model, history: ringmaster::forecast::history::Calibration) -> Timeline {
        let a = Assumptions {
            model,
            approval_after: self.approval_after,
            history,
        };
        ringmaster::forecast::forecast(self.fresh.clone(), &self.settings, &self.pools, &a, self.start)
    }

    /// What the rehearsal's state file teaches the model.
    fn history(&self) -> ringmaster::forecast::history::Calibration {
        let store = ringmaster::store::Store::open(self.state.path().join("state.db")).unwrap();
        let (rollouts, audit) = ringmaster::forecast::history::load(&store).unwrap();
        ringmaster::forecast::history::learn(&rollouts, &audit)
    }
}

/// A rehearsal of `fleet` from its start.
async fn rehearse(scale: f64, fleet: ringmaster::sim::fleet::Fleet, policy_path: &std::path::Path) -> Rehearsed {
    let Rehearsal {
        sim,
        clock,
        client,
        tokens,
    } = Rehearsal::start(fleet, scale, None).await.expect("simulator");
    let approval_after = Duration::from_secs_f64(scale);
    let now = clock.now();
    let source = ringmaster::embedded::PolicySource::read(policy_path).unwrap();
    let (rollout, _) =
        ringmaster::service::run::new_rollout_from(&client, source, &sim.info.subscription_ids, now, approval_after)
            .await
            .expect("plan");
    let policy = ringmaster::policy::compile("demo.yaml", &rollout.policy_text).unwrap();
    let settings = Settings::from_policy(&policy);
    let discovery = ringmaster::discovery::discover(&client, &sim.info.subscription_ids, now)
        .await
        .expect("discovery");
    let pools = ringmaster::forecast::pools_of(&discovery, &policy);
    let fresh = Rollout::new(
        rollout.id.clone(),
        rollout.policy_file.clone(),
        rollout.policy_text.clone(),
        (*rollout.plan).clone(),
        now,
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ringmaster::store::Store::open(dir.path().join("state.db")).unwrap());
    let (tx, mut asks) = mpsc::unbounded_channel();
    let rt = Runtime::new(rollout, client, tokens, clock.clone(), Some(store), Arc::new(Asks(tx))).unwrap();
    let control = rt.control();
    let mut progress = rt.progress();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(rt.run(Input::Tick, async {
        let _ = stop_rx.await;
    }));
    let done = loop {
        tokio::select! {
            Some(ring) = asks.recv() => {
                let control = control.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    control.send(Input::Approve { ring, by: "bench".into(), comment: "as forecast".into(), expires_at: None });
                });
            }
            changed = progress.changed() => {
                let r = progress.borrow().clone();
                if changed.is_err() || r.status.is_terminal() { break r; }
            }
            _ = tokio::time::sleep(Duration::from_secs(1200)) => panic!("the rehearsal did not end in 20 minutes"),
        }
    };
    let _ = stop_tx.send(());
    let _ = runner.await;
    sim.shutdown().await;
    Rehearsed {
        done,
        state: dir,
        fresh,
        settings,
        pools,
        start: now,
        approval_after,
    }
}

fn print(done: &Rollout, forecasts: &[(&str, Timeline)]) {
    for (name, tl) in forecasts {
        println!("\n{name}:");
        println!("{:<14} {:>9} {:>9} {:>7}", "", "forecast", "actual", "error");
        let mut worst: f64 = 0.0;
        for (what, f, a) in compare(tl, done) {
            let e = (f - a).abs() / a;
            worst = worst.max(e);
            println!("{what:<14} {f:>8.2}h {a:>8.2}h {:>6.1}%", 100.0 * e);
        }
        println!("worst {:.1}%", 100.0 * worst);
    }
}

/// The model a team writes from a fleet file's own durations. Draining a node is
/// rescheduling its pods there: a few seconds each.
fn by_hand(f: &ringmaster::sim::fleet::Fleet) -> Model {
    let d = &f.durations;
    Model {
        control_plane: d.control_plane_upgrade,
        node_provision: d.node_provision,
        node_drain: d.pod_schedule + d.pod_start + Duration::from_secs(10),
        node_reimage: d.node_reimage,
        node_delete: d.node_delete,
    }
}

/// A rehearsal of a fleet, forecast with the default and the by-hand model.
async fn measure(what: &str, scale: f64, fleet: ringmaster::sim::fleet::Fleet, policy: &std::path::Path) -> Rehearsed {
    let wall = std::time::Instant::now();
    let by_hand = by_hand(&fleet);
    let r = rehearse(scale, fleet, policy).await;
    println!(
        "\n{what}, {} clusters, rehearsed at {scale}x in {:.0} s; hours from the start to each end",
        r.done.clusters().count(),
        wall.elapsed().as_secs_f64()
    );
    let forecasts = vec![
        (
            "default model (goal 10%)",
            r.forecast(Model::default(), Default::default()),
        ),
        (
            "model calibrated by hand with the fleet file's durations",
            r.forecast(by_hand, Default::default()),
        ),
    ];
    print(&r.done, &forecasts);
    for (k, f) in &r.history().kinds {
        println!(
            "history: {k}: {} operations, {:.2}x the model (p10 {:.2}, p90 {:.2})",
            f.samples, f.median, f.p10, f.p90
        );
    }
    r
}

/// `r` forecast with the history of `other` (held out) and with its own (a replay).
fn with_history(what: &str, r: &Rehearsed, other: (&str, &Rehearsed)) {
    println!("\n{what} with history:");
    let forecasts = [
        (
            format!(
                "default model with the {} rehearsal's history, held out (goal 5%)",
                other.0
            ),
            r.forecast(Model::default(), other.1.history()),
        ),
        (
            "default model with its own rehearsal's history (the run it learned from)".to_string(),
            r.forecast(Model::default(), r.history()),
        ),
    ];
    let named: Vec<(&str, Timeline)> = forecasts.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    print(&r.done, &named);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    ringmaster::identity::install_crypto_provider();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut demo_fleet = ringmaster::sim::fleet::load(&root.join("examples/fleets/demo.yaml")).expect("fleet");
    demo_fleet.faults.clear();
    let demo = measure("demo fleet", SCALE, demo_fleet, &root.join("policies/demo.yaml")).await;

    // A generated fleet with windows, an approval and a blackout.
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("generated.yaml");
    let text = generated::generated_policy("accuracy-120", 6, 6, 12)
        + "  windows:\n    - name: day\n      cron: \"0 8 * * *\"\n      duration: 10h\n      rings: [prod]\n  blackouts:\n    - name: tuesday\n      from: \"2026-12-01\"\n      rings: [prod]\n";
    std::fs::write(&policy, text).unwrap();
    let generated_fleet =
        ringmaster::sim::fleet::parse("large.yaml (120)", &generated::generated_fleet_text(120)).expect("fleet");
    let generated = measure("generated fleet", GENERATED_SCALE, generated_fleet, &policy).await;

    with_history("demo fleet", &demo, ("generated fleet", &generated));
    with_history("generated fleet", &generated, ("demo fleet", &demo));
}
