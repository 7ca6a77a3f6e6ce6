//! `ringmaster serve` wired in one process: a daemon driving `policies/demo.yaml`
//! against a rehearsal, its state in a real SQLite file, and its API on loopback.

use ringmaster::api::{ApiState, Auth};
use ringmaster::demo::Rehearsal;
use ringmaster::metrics::Metrics;
use ringmaster::runtime::Notifier;
use ringmaster::service::Control;
use ringmaster::service::daemon::Daemon;
use ringmaster::store::Store;
use std::sync::Arc;

/// A running daemon with its API; dropping it stops the daemon's loop.
pub struct Served {
    pub sim: ringmaster::sim::Simulator,
    pub daemon: Arc<Daemon>,
    pub base: String,
    _stop: tokio::sync::watch::Sender<bool>,
}

/// Starts the demo policy's rollout now on `rehearsal`'s fleet. `tweak` sets what the
/// test needs of the API (its limits, say) before it listens.
pub async fn serve_demo(
    rehearsal: Rehearsal,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    notifier: Arc<dyn Notifier>,
    auth: Auth,
    tweak: impl FnOnce(&mut ApiState),
) -> Served {
    let Rehearsal {
        sim,
        clock,
        client,
        tokens,
    } = rehearsal;
    let policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/demo.yaml");
    let daemon = Daemon::new(
        store.clone(),
        client,
        tokens,
        clock.clone(),
        metrics.clone(),
        notifier,
        policy,
        sim.info.subscription_ids.clone(),
    );
    let mut state = ApiState::new(daemon.clone(), store, Arc::new(auth), metrics, clock);
    state.health = daemon.health.clone();
    tweak(&mut state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ringmaster::api::serve(listener, state, std::future::pending()));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    daemon.start_now("test", None).unwrap();
    tokio::spawn(daemon.clone().run(stop_rx));
    Served {
        sim,
        daemon,
        base,
        _stop: stop,
    }
}
