//! `ringmaster run`: one rollout, driven to its end with durable state. If the state
//! file holds an unfinished rollout, it is resumed (in-flight Azure operations are
//! re-attached, never started again); otherwise the live fleet is discovered, planned
//! and a new rollout starts. SIGTERM/SIGINT stop starting steps and exit; the state
//! stays consistent at every instant, even under SIGKILL.

use crate::arm::AksClient;
use crate::clock::{Clock, ScaledClock, SystemClock};
use crate::engine::{Input, NotifyEvent, Rollout, RolloutStatus};
use crate::identity::{AzureConfig, AzureTokens};
use crate::runtime::{Notifier, Runtime};
use crate::store::Store;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub policy: PathBuf,
    pub state: PathBuf,
    pub azure: AzureConfig,
    pub subscriptions: Vec<String>,
    /// Run on a `ringmaster sim`'s scaled clock (rehearsals): soaks and gates in simulated time.
    pub sim_clock: bool,
    /// Approve every ring that asks, as this user (rehearsals and tests only).
    pub approve_as: Option<String>,
}

/// Discovers the fleet, compiles the policy against it, plans, and builds a new rollout
/// (with the snapshot it was planned from).
pub async fn new_rollout(
    client: &AksClient,
    policy: &std::path::Path,
    subscriptions: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Rollout, crate::domain::fleet::FleetSnapshot)> {
    let source = crate::embedded::PolicySource::read(policy)?;
    new_rollout_from(
        client,
        source,
        subscriptions,
        now,
        crate::forecast::DEFAULT_APPROVAL_AFTER,
    )
    .await
}

/// [`new_rollout`] for a policy already read (the demo's may be built in); its forecast
/// assumes each approval `approval_after` after it is asked.
pub async fn new_rollout_from(
    client: &AksClient,
    policy: crate::embedded::PolicySource,
    subscriptions: &[String],
    now: chrono::DateTime<chrono::Utc>,
    approval_after: std::time::Duration,
) -> Result<(Rollout, crate::domain::fleet::FleetSnapshot)> {
    let crate::embedded::PolicySource { name: file, text } = policy;
    let compiled = crate::policy::compile(&file, &text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let subs = if !compiled.fleet.subscriptions.is_empty() {
        compiled.fleet.subscriptions.clone()
    } else if !subscriptions.is_empty() {
        subscriptions.to_vec()
    } else {
        crate::discovery::list_subscriptions(client)
            .await
            .context("listing subscriptions")?
    };
    let mut d = crate::discovery::discover(client, &subs, now).await?;
    crate::discovery::fetch_maintenance(client, &mut d).await;
    for p in &d.problems {
        tracing::warn!(subject = %p.subject, "{}", p.reason);
    }
    let compiled =
        crate::policy::compile_with_snapshot(&file, &text, Some(&d.snapshot)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let plan = crate::plan::plan(&d.snapshot, &compiled, now);
    if let Some(p) = &plan.target.problem {
        bail!("no target to roll out: {p}");
    }
    let id = format!("{}-{}", compiled.name, now.format("%Y%m%dT%H%M%SZ"));
    let mut rollout = Rollout::new(id, file, text, plan, now);
    // The forecast made now is what lateness is measured against later.
    if rollout.clusters().count() <= crate::forecast::MAX_CLUSTERS {
        let assumptions = crate::forecast::Assumptions {
            history: Default::default(),
            model: crate::forecast::model::Model::default(),
            approval_after,
        };
        let settings = crate::engine::Settings::from_policy(&compiled);
        let pools = crate::forecast::pools_of(&d, &compiled);
        crate::forecast::at_start(&mut rollout, &settings, &pools, &assumptions, now);
    }
    Ok((rollout, d.snapshot))
}

/// The simulator's clock, read once and then run locally at its scale.
pub async fn sim_clock(client: &AksClient) -> Result<ScaledClock> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct SimClock {
        now: chrono::DateTime<chrono::Utc>,
        time_scale: Option<f64>,
    }
    let url = client.http().url("/_sim/clock");
    let c: SimClock = client
        .http()
        .get_json(&url)
        .await
        .context("reading the simulator's clock (is RINGMASTER_ARM_ENDPOINT a `ringmaster sim`?)")?;
    let scale = c
        .time_scale
        .context("the simulator runs a manual clock; start it with --time-scale")?;
    Ok(ScaledClock::new(c.now, scale))
}

/// The clock a command runs on: the wall clock, or with `--sim-clock` the simulator's,
/// because a rehearsal's fleet lives at the simulator's time (its maintenance windows,
/// soaks and forecasts are in that time), not at the wall clock's.
pub async fn command_clock(azure: &AzureConfig, sim: bool) -> Result<Arc<dyn Clock>> {
    let wall: Arc<dyn Clock> = Arc::new(SystemClock);
    if !sim {
        return Ok(wall);
    }
    let probe = crate::arm::connect(azure, wall)?;
    Ok(Arc::new(sim_clock(&probe).await?))
}

struct AutoApprove {
    tx: mpsc::UnboundedSender<(NotifyEvent, Option<String>, String)>,
}

impl Notifier for AutoApprove {
    fn notify(
        &self,
        event: NotifyEvent,
        ring: Option<&str>,
        _c: Option<&crate::domain::fleet::ClusterId>,
        message: &str,
    ) {
        tracing::info!(?event, "{message}");
        let _ = self.tx.send((event, ring.map(str::to_string), message.to_string()));
    }
}

/// How `run` ended.
pub struct RunOutcome {
    pub rollout: Rollout,
    pub interrupted: bool,
}

pub async fn run(o: RunOptions) -> Result<RunOutcome> {
    crate::identity::install_crypto_provider();
    let store = Arc::new(
        Store::open_daemon(&o.state, "run").with_context(|| format!("opening the state file {}", o.state.display()))?,
    );
    let clock = command_clock(&o.azure, o.sim_clock).await?;
    let client = Arc::new(crate::arm::connect(&o.azure, clock.clone())?);
    let tokens = Arc::new(AzureTokens::new(o.azure.clone(), o.azure.http_client()?)?);
    // A stored state that can't be read is an error, never "nothing stored": starting
    // a new rollout over it would drive the fleet twice.
    let unfinished = super::daemon::stored(&store)?
        .into_iter()
        .find(|r| !r.status.is_terminal());
    let (rollout, first, before) = match unfinished {
        Some(r) => {
            println!("resuming rollout {} (transition {})", r.id, r.seq);
            (r, Input::Resumed, None)
        }
        None => {
            let (r, before) = new_rollout(&client, &o.policy, &o.subscriptions, clock.now()).await?;
            println!(
                "starting rollout {}: target {}",
                r.id,
                r.plan.target.version.map_or("-".into(), |v| v.to_string())
            );
            (r, Input::Tick, Some(before))
        }
    };
    let real_start = std::time::Instant::now();
    let (tx, mut notes) = mpsc::unbounded_channel();
    let mut rt = Runtime::new(
        rollout,
        client.clone(),
        tokens,
        clock.clone(),
        Some(store),
        Arc::new(AutoApprove { tx }),
    )?;
    let control = rt.control();
    let mut audit = rt.audit_feed();
    let approve_as = o.approve_as.clone();
    // The printer is joined, not detached: the runtime's end drops the audit feed's
    // sender, so every entry it sent is printed before the summary (a detached printer
    // lost the rollback and the failed clusters to the process's exit).
    let printer = tokio::spawn(async move {
        let mut story = crate::summary::Story::default();
        loop {
            tokio::select! {
                a = audit.recv() => match a {
                    Some(a) => {
                        story.observe(&a);
                        if let Some(l) = crate::runtime::audit_line(&a) { println!("{l}") }
                    }
                    None => break,
                },
                Some((event, ring, _)) = notes.recv() => {
                    if let (NotifyEvent::ApprovalNeeded, Some(ring), Some(by)) = (event, ring, approve_as.clone()) {
                        control.send(Input::Approve { ring, by, comment: "approved by `ringmaster run --approve-as`".into(), expires_at: None });
                    }
                }
            }
        }
        story
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
        }
        let _ = stop_tx.send(());
    });
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = interrupted.clone();
    let rollout = rt
        .run(first, async move {
            if stop_rx.await.is_ok() {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        })
        .await?;
    let story = printer.await.context("the audit printer")?;
    let interrupted = interrupted.load(std::sync::atomic::Ordering::SeqCst);
    let mut subscriptions: Vec<String> = rollout.clusters().map(|(_, c)| c.id.subscription.clone()).collect();
    subscriptions.sort();
    subscriptions.dedup();
    // The fleet as it is now, for the summary's versions; without it the outcomes still print.
    let after = crate::discovery::discover(&client, &subscriptions, clock.now())
        .await
        .map_err(|e| tracing::warn!("discovering the fleet for the summary: {e}"))
        .ok()
        .map(|d| d.snapshot);
    crate::summary::print(
        &mut std::io::stdout(),
        before.as_ref(),
        after.as_ref(),
        &rollout,
        &story,
        real_start.elapsed(),
        clock.now(),
    );
    println!(
        "rollout {}: {}{}",
        rollout.id,
        rollout.status.label(),
        if interrupted {
            " (interrupted: run again to resume)"
        } else {
            ""
        }
    );
    if let RolloutStatus::Halted { reason } = &rollout.status {
        println!("halted: {reason}");
    }
    Ok(RunOutcome { rollout, interrupted })
}
