//! `ringmaster demo`: the simulator in-process on the demo fleet with an accelerated
//! clock, one rollout of `policies/demo.yaml` ring by ring with live progress, the
//! approval before prod given as an operator would (or by you with `--interactive`),
//! and a summary. By default one injected fault shows a gate at work.

use crate::arm;
use crate::clock::Clock;
use crate::domain::fleet::ClusterId;
use crate::engine::{Input, NotifyEvent, Rollout, RolloutStatus, StepStatus};
use crate::identity::{AzureConfig, AzureTokens};
use crate::plan::StepKind;
use crate::runtime::{Notifier, Runtime};
use crate::sim::{ClockMode, SimOptions, Simulator, fleet};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The fleet file; `None` is the built-in demo fleet.
    pub fleet: Option<PathBuf>,
    /// The policy file; `None` is the built-in demo policy.
    pub policy: Option<PathBuf>,
    pub interactive: bool,
    pub faults: bool,
    pub time_scale: f64,
    pub state: Option<PathBuf>,
}

struct ChannelNotifier(mpsc::UnboundedSender<(NotifyEvent, Option<String>, String)>);

impl Notifier for ChannelNotifier {
    fn notify(&self, event: NotifyEvent, ring: Option<&str>, _cluster: Option<&ClusterId>, message: &str) {
        let _ = self.0.send((event, ring.map(str::to_string), message.to_string()));
    }
}

/// How the demo ended, for the exit code.
pub struct DemoOutcome {
    pub rollout: Rollout,
    pub as_policy_says: bool,
}

/// The ETA in one line: the current ring's end, the rollout's, late clusters.
fn eta_line(e: &crate::forecast::Eta) -> String {
    let hm = |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or("?".into(), |t| t.format("%H:%M").to_string());
    let ring = e
        .rings
        .first()
        .map(|r| format!("ring {} ends ~{}, ", r.name, hm(r.finish)))
        .unwrap_or_default();
    let late: Vec<String> = e.late.iter().map(|l| l.cluster.name.clone()).collect();
    format!(
        "forecast: {ring}rollout ~{}; late: {}",
        hm(e.finish),
        if late.is_empty() {
            "none".into()
        } else {
            late.join(", ")
        }
    )
}

/// How long after a ring asks the demo approves it (wall clock), and so what its forecast
/// assumes (simulated).
const APPROVE_AFTER_WALL: Duration = Duration::from_secs(1);

fn line(out: &mut impl Write, now: chrono::DateTime<chrono::Utc>, text: &str) {
    let _ = writeln!(out, "[{}] {text}", now.format("%H:%M"));
}

/// A simulated fleet in-process and a daemon's access to it, on one scaled clock: what
/// the demo, the rollout benchmark and the runtime's tests rehearse on.
pub struct Rehearsal {
    pub sim: Simulator,
    /// Simulated time, in step with the simulator's scaled clock.
    pub clock: Arc<dyn Clock>,
    pub client: Arc<arm::AksClient>,
    pub tokens: Arc<AzureTokens>,
}

impl Rehearsal {
    /// Starts the simulator on loopback (seed 1) at `scale` simulated seconds per
    /// wall-clock second; `state_dir` keeps its operation log.
    pub async fn start(fleet: fleet::Fleet, scale: f64, state_dir: Option<PathBuf>) -> Result<Rehearsal> {
        crate::identity::install_crypto_provider();
        let sim = Simulator::start(SimOptions {
            fleet,
            listen: "127.0.0.1:0".parse()?,
            clock: ClockMode::Scaled(scale),
            seed: 1,
            plain_http: false,
            state_dir,
        })
        .await
        .context("starting the simulator")?;
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::ScaledClock::new(
            sim.shared().clock.now().to_datetime(),
            scale,
        ));
        let config = AzureConfig::for_simulator(&sim.info);
        let client = Arc::new(arm::connect(&config, clock.clone())?);
        let tokens = Arc::new(AzureTokens::new(config.clone(), config.http_client()?)?);
        Ok(Rehearsal {
            sim,
            clock,
            client,
            tokens,
        })
    }
}

/// Runs the demo; prints to stdout.
pub async fn run(o: DemoOptions) -> Result<DemoOutcome> {
    let (_, mut fleet) = crate::embedded::fleet_or_demo(o.fleet.as_ref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let policy = crate::embedded::PolicySource::demo_or(o.policy.as_deref())?;
    let faulted: Vec<String> = if o.faults {
        fleet
            .faults
            .iter()
            .filter_map(|f| match &f.what {
                fleet::FaultKind::PodsNeverReady { cluster, .. } => Some(cluster.clone()),
                _ => None,
            })
            .collect()
    } else {
        fleet.faults.clear();
        Vec::new()
    };
    let Rehearsal {
        sim,
        clock,
        client,
        tokens,
    } = Rehearsal::start(fleet, o.time_scale, None).await?;
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "ringmaster demo: simulated AKS at {} ({}x time), {} subscriptions",
        sim.info.arm_endpoint,
        o.time_scale,
        sim.info.subscription_ids.len()
    );

    let now = clock.now();
    let (rollout, before) = crate::service::run::new_rollout_from(
        &client,
        policy,
        &sim.info.subscription_ids,
        now,
        APPROVE_AFTER_WALL.mul_f64(o.time_scale),
    )
    .await?;
    let settings = crate::engine::Settings::from_policy(
        &crate::policy::compile(&rollout.policy_file, &rollout.policy_text).map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let plan = &rollout.plan;
    let _ = writeln!(
        out,
        "plan: target {} for {} clusters in {} rings ({} steps, {} skipped)\n",
        plan.target.version.map_or("-".into(), |v| v.to_string()),
        plan.rings
            .iter()
            .flat_map(|r| &r.waves)
            .map(|w| w.clusters.len())
            .sum::<usize>(),
        plan.rings.len(),
        plan.steps().count(),
        plan.skipped.len()
    );
    let dir = tempfile_dir()?;
    let state_path = o.state.clone().unwrap_or_else(|| dir.join("ringmaster.db"));
    let store = Arc::new(crate::store::Store::open_daemon(&state_path, "demo")?);
    let (ntx, mut nrx) = mpsc::unbounded_channel();
    let events = crate::events::EventBus::default();
    let mut rt = Runtime::new(
        rollout,
        client.clone(),
        tokens,
        clock.clone(),
        Some(store.clone()),
        Arc::new(ChannelNotifier(ntx)),
    )?
    .with_events(events.clone());
    let control = rt.control();
    let mut audit = rt.audit_feed();
    let mut progress = rt.progress();
    let dashboard = serve_dashboard(&rt, store.clone(), clock.clone(), events, client.clone(), &sim).await?;
    let _ = writeln!(
        out,
        "dashboard: {dashboard}\n  (a one-off sign-in link for this run; the token after # never reaches a server log)\n"
    );
    let real_start = Instant::now();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(rt.run(Input::Tick, async {
        let _ = stop_rx.await;
    }));
    let mut story = crate::summary::Story::default();
    let mut last_bar = Instant::now();
    let interactive = o.interactive;
    let final_state = loop {
        tokio::select! {
            Some(a) = audit.recv() => {
                story.observe(&a);
                if let Some(l) = crate::runtime::audit_line(&a) {
                    let _ = writeln!(out, "{l}");
                }
                if a.action == "ring.started" {
                    let r = progress.borrow().clone();
                    if let Some(eta) = crate::forecast::eta(&r, &settings, clock.now()) {
                        line(&mut out, clock.now(), &eta_line(&eta));
                    }
                }
            }
            Some((event, ring, message)) = nrx.recv() => {
                if event == NotifyEvent::ApprovalNeeded && let Some(ring) = ring {
                    line(&mut out, clock.now(), &format!("approval needed: {message}"));
                    let control = control.clone();
                    if interactive {
                        // A thread, not a blocking task: approved from the dashboard, the
                        // question is left unanswered and must not hold the process.
                        std::thread::spawn(move || {
                            print!("Approve promoting the target into ring {ring}? [y/N] ");
                            let _ = std::io::stdout().flush();
                            let mut answer = String::new();
                            let _ = std::io::stdin().read_line(&mut answer);
                            if answer.trim().eq_ignore_ascii_case("y") {
                                control.send(Input::Approve { ring, by: whoami(), comment: "approved at the terminal".into(), expires_at: None });
                            } else {
                                control.send(Input::Reject { ring, by: whoami(), comment: "rejected at the terminal".into() });
                            }
                        });
                    } else {
                        tokio::spawn(async move {
                            tokio::time::sleep(APPROVE_AFTER_WALL).await;
                            control.send(Input::Approve { ring, by: "demo-operator".into(), comment: "staging looks healthy (auto-approved by the demo; --interactive to decide yourself)".into(), expires_at: None });
                        });
                    }
                }
            }
            changed = progress.changed() => {
                if changed.is_err() { break progress.borrow().clone(); }
                let r = progress.borrow().clone();
                if r.status.is_terminal() { break r; }
                if last_bar.elapsed() > Duration::from_secs(3) {
                    last_bar = Instant::now();
                    for bar in bars(&sim, &r) {
                        line(&mut out, clock.now(), &bar);
                    }
                }
            }
        }
    };
    let _ = stop_tx.send(());
    let _ = runner.await;
    // The last pass's entries (the rollout's end among them) were queued before its
    // progress said terminal: print them before the summary.
    while let Ok(a) = audit.try_recv() {
        story.observe(&a);
        if let Some(l) = crate::runtime::audit_line(&a) {
            let _ = writeln!(out, "{l}");
        }
    }
    let elapsed = real_start.elapsed();
    let after = crate::discovery::discover(&client, &sim.info.subscription_ids, clock.now())
        .await?
        .snapshot;
    crate::summary::print(
        &mut out,
        Some(&before),
        Some(&after),
        &final_state,
        &story,
        elapsed,
        clock.now(),
    );
    if let (Some(f), Some(end)) = (
        final_state.forecast.as_ref().and_then(|f| f.finish),
        final_state.rings.iter().filter_map(|x| x.finished_at).max(),
    ) {
        let took = (end - final_state.created_at).num_seconds().max(1) as f64;
        let _ = writeln!(
            out,
            "forecast at the start (docs/forecast.md; AKS's times from its model, not the simulator's): the rollout ends {}; it ended {} ({:.0}% of its duration off)",
            f.format("%H:%M"),
            end.format("%H:%M"),
            100.0 * ((f - end).num_seconds().abs() as f64) / took
        );
    }
    let failed: Vec<String> = final_state
        .clusters()
        .filter(|(_, c)| c.status.is_failure())
        .map(|(_, c)| c.id.name.clone())
        .collect();
    let mut expected_failed = faulted.clone();
    expected_failed.sort();
    let mut failed_sorted = failed.clone();
    failed_sorted.sort();
    let as_policy_says = final_state.status == RolloutStatus::Succeeded && failed_sorted == expected_failed;
    let _ = writeln!(
        out,
        "\nstate file: {} ({} bytes)",
        state_path.display(),
        store.file_size().unwrap_or(0)
    );
    let _ = writeln!(
        out,
        "outcome: {} ({})",
        final_state.status.label(),
        if as_policy_says {
            "as the policy says it must end"
        } else {
            "NOT as expected"
        }
    );
    sim.shutdown().await;
    Ok(DemoOutcome {
        rollout: final_state,
        as_policy_says,
    })
}

/// Serves the dashboard on loopback for this run: one token, made now, for whoever runs
/// the demo (every group of the policy's approvers, and operator). Returns the sign-in
/// link.
async fn serve_dashboard(
    rt: &Runtime,
    store: Arc<crate::store::Store>,
    clock: Arc<dyn Clock>,
    events: crate::events::EventBus,
    client: Arc<arm::AksClient>,
    sim: &Simulator,
) -> Result<String> {
    let r = rt.progress().borrow().clone();
    let policy = Arc::new(crate::policy::compile(&r.policy_file, &r.policy_text).map_err(|e| anyhow::anyhow!("{e}"))?);
    let mut groups: Vec<String> = policy
        .rings
        .iter()
        .filter_map(|x| x.approval.as_ref())
        .flat_map(|a| a.approvers.clone())
        .collect();
    groups.push(DEMO_OPERATORS.to_string());
    groups.sort();
    groups.dedup();
    let token = crate::api::auth::generate_token()?;
    let entry = crate::api::auth::token_entry_yaml(&whoami(), &groups, &token);
    let tokens = crate::api::auth::parse_tokens("demo", &format!("tokens:\n{entry}"))?;
    let auth = Arc::new(crate::api::Auth::new(tokens, None, vec![DEMO_OPERATORS.to_string()]));
    let control = Arc::new(crate::service::single::SingleRollout {
        progress: rt.progress(),
        control: rt.control(),
        policy: policy.clone(),
    });
    let mut state = crate::api::ApiState::new(control, store, auth, Default::default(), clock);
    state.events = events;
    state.arm = Some(client.clone());
    state.fleet = Some(Arc::new(crate::api::fleet::FleetSource::new(
        client,
        crate::api::fleet::PolicyOrigin::Text {
            file: r.policy_file.clone(),
            text: r.policy_text.clone(),
        },
        sim.info.subscription_ids.clone(),
        Default::default(),
    )));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(crate::api::serve(listener, state, std::future::pending::<()>()));
    Ok(format!("http://{addr}/#token={}", token.0))
}

/// The demo's operator group (its one token has it).
const DEMO_OPERATORS: &str = "demo-operators";

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("ringmaster-demo-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "operator".into())
}

fn bars(sim: &Simulator, r: &Rollout) -> Vec<String> {
    let mut v = Vec::new();
    for (_, c) in r.clusters() {
        for s in &c.steps {
            if !matches!(s.status, StepStatus::InFlight { .. }) {
                continue;
            }
            let (done, total, what) = sim.with_world(|w| {
                let Some(ci) = w.cluster_index(&c.id.subscription, &c.id.resource_group, &c.id.name) else {
                    return (0, 0, String::new());
                };
                let cl = &w.clusters[ci];
                match &s.kind {
                    StepKind::ControlPlane { to, .. } => (
                        usize::from(cl.current_version.to_string() == to.to_string()),
                        1,
                        format!("control plane -> {to}"),
                    ),
                    StepKind::PoolVersion { pool, to, .. } | StepKind::PoolRollback { pool, to, .. } => {
                        let nodes: Vec<_> = cl.kube.nodes.values().filter(|n| &n.pool == pool).collect();
                        (
                            nodes
                                .iter()
                                .filter(|n| n.version.to_string() == to.to_string() && n.ready && !n.unschedulable)
                                .count(),
                            nodes.len(),
                            format!("pool {pool} -> {to}"),
                        )
                    }
                    StepKind::NodeImage { pool, to, .. } => {
                        let nodes: Vec<_> = cl.kube.nodes.values().filter(|n| &n.pool == pool).collect();
                        (
                            nodes.iter().filter(|n| &n.image == to && n.ready).count(),
                            nodes.len(),
                            format!("pool {pool} image"),
                        )
                    }
                }
            });
            let width = 20;
            let filled = (done * width).checked_div(total).unwrap_or(0);
            v.push(format!(
                "  {:<16} {:<24} [{}{}] {done}/{total} nodes",
                c.id.name,
                what,
                "#".repeat(filled),
                ".".repeat(width - filled)
            ));
        }
    }
    v
}
