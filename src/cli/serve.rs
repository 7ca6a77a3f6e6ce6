//! `ringmaster serve`: the daemon's flags (policies, state, listen addresses, auth,
//! HTTP limits, retention, Azure) and its start, run and orderly stop.

use super::{read_calendar, wait_for_signal};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// One rollout policy (YAML; see docs/policy.md).
    #[arg(
        long,
        env = "RINGMASTER_POLICY",
        required_unless_present = "policies",
        conflicts_with = "policies"
    )]
    policy: Option<PathBuf>,
    /// A directory of policies (every *.yaml / *.yml in it): each on its own schedule,
    /// their rollouts at the same time, never two on one cluster (e.g. policies/cadences).
    #[arg(long, env = "RINGMASTER_POLICIES")]
    policies: Option<PathBuf>,
    /// SQLite state file (created if missing).
    #[arg(long, env = "RINGMASTER_STATE", default_value = "ringmaster.db")]
    state: PathBuf,
    /// Address of the HTTP API.
    #[arg(long, env = "RINGMASTER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// A second address serving only `/healthz` and `/readyz`, for the kubelet's and a
    /// load balancer's probes: API traffic (event streams, floods) cannot starve it.
    /// The API's own address serves them too.
    #[arg(long, env = "RINGMASTER_PROBE_LISTEN")]
    probe_listen: Option<SocketAddr>,
    /// Subscriptions when the policy names none (default: every visible subscription).
    #[arg(long = "subscription", env = "RINGMASTER_SUBSCRIPTION_IDS", value_delimiter = ',')]
    subscriptions: Vec<String>,
    /// Rehearsal against `ringmaster sim`: run on the simulator's scaled clock.
    #[arg(long)]
    sim_clock: bool,
    /// Start a rollout of every policy right away instead of waiting for their schedules.
    #[arg(long)]
    start_now: bool,
    /// Service configuration (YAML): `webhooks:` for notifications (see
    /// examples/deploy/kubernetes/configmap.yaml).
    #[arg(long, env = "RINGMASTER_CONFIG")]
    config: Option<PathBuf>,
    /// Mark the dashboard's session cookie `Secure`: set it when people reach the
    /// dashboard over HTTPS (a TLS-terminating ingress in front of `serve`).
    #[arg(long, env = "RINGMASTER_SECURE_COOKIES")]
    secure_cookies: bool,
    /// YAML map of minor version to the day it leaves AKS support (`"1.31": 2026-12-15`),
    /// for the dashboard's fleet view (days of support left).
    #[arg(long, env = "RINGMASTER_SUPPORT_CALENDAR")]
    support_calendar: Option<PathBuf>,
    #[command(flatten)]
    auth: ringmaster::api::AuthArgs,
    #[command(flatten)]
    http: HttpLimitArgs,
    #[command(flatten)]
    retention: ringmaster::store::RetentionArgs,
    #[command(flatten)]
    azure: ringmaster::identity::AzureConfig,
}

/// `serve`'s HTTP limits (see `ringmaster::api::Limits` for why these defaults).
#[derive(clap::Args)]
struct HttpLimitArgs {
    /// Most open API connections; more wait in the listen backlog. Keep it well under
    /// the process's file limit.
    #[arg(long, env = "RINGMASTER_MAX_CONNECTIONS", default_value_t = 512)]
    max_connections: usize,
    /// Seconds a client has to send a request's head (and an idle connection stays open).
    #[arg(long, env = "RINGMASTER_HEADER_TIMEOUT", default_value_t = 10)]
    header_timeout: u64,
    /// Seconds a client has to send a request's body.
    #[arg(long, env = "RINGMASTER_BODY_TIMEOUT", default_value_t = 10)]
    body_timeout: u64,
    /// Seconds requests in flight get to finish after SIGTERM.
    #[arg(long, env = "RINGMASTER_SHUTDOWN_GRACE", default_value_t = 5)]
    shutdown_grace: u64,
}

impl HttpLimitArgs {
    fn limits(&self) -> ringmaster::api::Limits {
        use std::time::Duration;
        ringmaster::api::Limits {
            max_connections: self.max_connections.max(1),
            header_timeout: Duration::from_secs(self.header_timeout.max(1)),
            body_timeout: Duration::from_secs(self.body_timeout.max(1)),
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
            ..Default::default()
        }
    }
}

pub(crate) async fn run_serve(a: ServeArgs) -> Result<ExitCode> {
    use std::sync::Arc;
    ringmaster::identity::install_crypto_provider();
    // Fail fast on a broken policy: at start every file must compile (a file that
    // breaks later keeps its last good version, see service::policies).
    let policy_set = match (&a.policy, &a.policies) {
        (Some(f), _) => ringmaster::service::policies::PolicySet::File(f.clone()),
        (None, Some(d)) => ringmaster::service::policies::PolicySet::Dir(d.clone()),
        (None, None) => anyhow::bail!("give --policy FILE or --policies DIR"),
    };
    let catalog = ringmaster::service::policies::Catalog::default();
    let problems = catalog.reload(&policy_set);
    if !problems.is_empty() {
        eprintln!("{}", problems.join("\n"));
        return Ok(ExitCode::from(2));
    }
    let first_policy = catalog
        .in_force()
        .first()
        .map(|l| l.path.clone())
        .context("no policy")?;
    let calendar = match read_calendar(a.support_calendar.as_ref())? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let store = Arc::new(
        ringmaster::store::Store::open_daemon(&a.state, "serve")
            .with_context(|| format!("opening {}", a.state.display()))?,
    );
    // Read what the file holds before anything else: a state that can't be read stops
    // here, with the reason, instead of looking like "no rollouts".
    match ringmaster::service::daemon::stored(&store) {
        Ok(all) => {
            for r in all.iter().filter(|r| !r.status.is_terminal()) {
                // The rollout resumes with the policy it was started with. One this binary
                // refuses (e.g. stored before a bound was added) stops serve here: neither
                // resumed nor left unfinished beside a new rollout that could collide with it.
                if let Err(e) = ringmaster::policy::compile(&r.policy_file, &r.policy_text) {
                    anyhow::bail!(
                        "the unfinished rollout `{}` was started with a policy this ringmaster refuses, so it cannot be resumed:\n{e}\nfinish or abort it with the ringmaster version that started it, or restore a backup (`ringmaster state restore`)",
                        r.id
                    );
                }
                tracing::info!(rollout = %r.id, "the state file holds an unfinished rollout; resuming it");
            }
        }
        Err(e) => anyhow::bail!("{e}; see `ringmaster state check --state {}`", a.state.display()),
    }
    let clock = ringmaster::service::run::command_clock(&a.azure, a.sim_clock).await?;
    let client = Arc::new(ringmaster::arm::connect(&a.azure, clock.clone())?);
    let http = a.azure.http_client()?;
    let tokens = Arc::new(ringmaster::identity::AzureTokens::new(a.azure.clone(), http.clone())?);
    let auth = Arc::new(a.auth.build(http)?);
    let metrics = Arc::new(ringmaster::metrics::Metrics::default());
    let notifier: Arc<dyn ringmaster::runtime::Notifier> = match &a.config {
        None => Arc::new(ringmaster::runtime::LogNotifier),
        Some(path) => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct ServiceConfig {
                #[serde(default)]
                webhooks: Vec<ringmaster::notify::WebhookConfig>,
            }
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let cfg: ServiceConfig = match ringmaster::yaml::parse(&path.display().to_string(), &text) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let hooks = ringmaster::notify::WebhookNotifier::new(cfg.webhooks, Default::default(), clock.clone())?;
            Arc::new(ringmaster::notify::Fanout(vec![
                Arc::new(ringmaster::runtime::LogNotifier),
                Arc::new(hooks),
            ]))
        }
    };
    let daemon = ringmaster::service::daemon::Daemon::new(
        store.clone(),
        client,
        tokens,
        clock.clone(),
        metrics.clone(),
        notifier,
        policy_set,
        a.subscriptions.clone(),
    );
    let mut state = ringmaster::api::ApiState::new(daemon.clone(), store.clone(), auth, metrics.clone(), clock.clone());
    state.health = daemon.health.clone();
    state.limits = a.http.limits();
    state.arm = Some(daemon.client.clone());
    state.events = daemon.events.clone();
    state.secure_cookies = a.secure_cookies || state.auth.public_url_is_https();
    state.fleet = Some(Arc::new(ringmaster::api::fleet::FleetSource::new(
        daemon.client.clone(),
        // The fleet view plans with the first policy (highest priority).
        ringmaster::api::fleet::PolicyOrigin::File(first_policy),
        a.subscriptions.clone(),
        calendar,
    )));
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("listening on {}", a.listen))?;
    let addr = listener.local_addr()?;
    let probes = match a.probe_listen {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("listening for probes on {at}"))?,
        ),
        None => None,
    };
    let probe_addr = probes.as_ref().map(|l| l.local_addr()).transpose()?;
    println!(
        "{}",
        serde_json::json!({ "listen": addr.to_string(), "probes": probe_addr.map(|p| p.to_string()) })
    );
    tracing::info!(%addr, probes = ?probe_addr, "ringmaster API listening");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if a.start_now {
        use ringmaster::service::Control;
        for l in daemon.catalog.in_force() {
            let _ = daemon.start_now("serve --start-now", Some(&l.policy.name));
        }
    }
    let daemon_task = tokio::spawn(daemon.clone().run(stop_rx.clone()));
    let retention = tokio::spawn(ringmaster::store::retention::run(
        store.clone(),
        a.retention.policy(&a.state),
        clock.clone(),
        metrics.clone(),
        stop_rx.clone(),
    ));
    if let Some(l) = probes {
        let mut probe_stop = stop_rx.clone();
        tokio::spawn(ringmaster::api::serve_probes(l, state.clone(), async move {
            let _ = probe_stop.wait_for(|s| *s).await;
        }));
    }
    let mut api_stop = stop_rx.clone();
    let api = tokio::spawn(ringmaster::api::serve(listener, state, async move {
        let _ = api_stop.wait_for(|s| *s).await;
    }));
    let reloads = daemon.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
        while hup.recv().await.is_some() {
            reloads.reload();
        }
    });
    wait_for_signal().await;
    tracing::info!(
        "stopping: no new steps; operations in flight continue in Azure and are re-attached at the next start"
    );
    let _ = stop_tx.send(true);
    // The API gets its grace period, the rollout loop saves and stops; past the
    // deadline the process exits anyway (what was committed is what a restart resumes).
    let deadline = a.http.limits().shutdown_grace + std::time::Duration::from_secs(5);
    let all = async {
        let _ = tokio::join!(daemon_task, api, retention);
    };
    if tokio::time::timeout(deadline, all).await.is_err() {
        tracing::warn!("shutdown: gave up waiting after {} s", deadline.as_secs());
    }
    if let Err(e) = store.checkpoint() {
        tracing::warn!(error = %e, "checkpointing the state file at shutdown");
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
