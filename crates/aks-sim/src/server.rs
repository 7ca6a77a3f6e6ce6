//! The simulator's HTTP(S) server: one listener for ARM (`/subscriptions/...`), the
//! Entra token endpoint (`/{tenant}/oauth2/v2.0/token`), every cluster's Kubernetes
//! API (`/k8s/{fqdn}/...`) and a few test hooks (`/_sim/...`). Authentication,
//! fault injection and throttling wrap the ARM handlers here.
//!
//! This file starts and stops the simulator; `routes` accepts connections and routes
//! them, and each route group has its file: `arm_routes`, `identity`, `test_hooks`.

use super::clock::{SimClock, SimTime};
use super::fleet::Fleet;
use super::shared::Shared;
use super::throttle::Throttle;
use super::world::World;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

mod arm_routes;
mod identity;
mod routes;
mod test_hooks;

use routes::{entry, serve};

/// How the simulator's clock runs.
#[derive(Debug, Clone, Copy)]
pub enum ClockMode {
    /// Simulated time = wall clock x factor.
    Scaled(f64),
    /// Simulated time moves only through [`Simulator::advance`] or `POST /_sim/clock/advance`.
    Manual,
}

#[derive(Debug, Clone)]
pub struct SimOptions {
    pub fleet: Fleet,
    pub listen: SocketAddr,
    pub clock: ClockMode,
    pub seed: u64,
    pub plain_http: bool,
    /// Where to write `ca.pem`. Default: a fresh folder under the system temp dir.
    pub state_dir: Option<PathBuf>,
}

/// The one line the simulator prints when it is ready (and what tests read).
#[derive(Debug, Clone, Serialize)]
pub struct ReadyInfo {
    pub arm_endpoint: String,
    pub authority_host: String,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub ca_cert: Option<String>,
    pub subscription_ids: Vec<String>,
    pub kube_endpoint_base: String,
    pub manual_clock: bool,
    pub sim_start: String,
}

impl ReadyInfo {
    /// Environment variables that point ringmaster (and Azure SDKs) at the simulator.
    pub fn env_file(&self) -> String {
        let mut s = format!(
            "AZURE_TENANT_ID={}\nAZURE_CLIENT_ID={}\nAZURE_CLIENT_SECRET={}\nAZURE_AUTHORITY_HOST={}\nRINGMASTER_ARM_ENDPOINT={}\n",
            self.tenant_id, self.client_id, self.client_secret, self.authority_host, self.arm_endpoint
        );
        if let Some(ca) = &self.ca_cert {
            s.push_str(&format!("RINGMASTER_CA_CERT={ca}\n"));
        }
        s.push_str(&format!(
            "RINGMASTER_SUBSCRIPTION_IDS={}\n",
            self.subscription_ids.join(",")
        ));
        s
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the CA certificate to {path}")]
    WriteCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
    /// Refused before anything is built (`cost.rs`).
    #[error("the fleet is too large for the simulator: {0}")]
    TooLarge(#[from] super::cost::FleetTooLarge),
}

/// A running simulator.
pub struct Simulator {
    pub info: ReadyInfo,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

struct Ctx {
    shared: Arc<Shared>,
    throttle: Mutex<Throttle>,
}

/// Marks a response whose connection must be dropped instead (fault `server_errors: drop`).
#[derive(Clone, Copy)]
struct DropConnection;

impl Simulator {
    pub async fn start(opts: SimOptions) -> Result<Simulator, SimError> {
        // First: a fleet beyond the bound would take the machine's memory (`cost.rs`).
        super::cost::FleetCost::of(&opts.fleet).check()?;
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|source| SimError::Listen {
                addr: opts.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Listen {
            addr: opts.listen,
            source,
        })?;
        let tls = if opts.plain_http {
            None
        } else {
            Some(super::tls::generate(Some(addr.ip()))?)
        };
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base_url = format!("{scheme}://{host}:{}", addr.port());
        let ca_cert = match &tls {
            None => None,
            Some(t) => {
                let dir = opts.state_dir.clone().unwrap_or_else(|| {
                    std::env::temp_dir().join(format!("ringmaster-sim-{}-{}", std::process::id(), addr.port()))
                });
                let path = dir.join("ca.pem");
                std::fs::create_dir_all(&dir)
                    .and_then(|_| std::fs::write(&path, &t.ca_pem))
                    .map_err(|source| SimError::WriteCa {
                        path: path.clone(),
                        source,
                    })?;
                Some(path.display().to_string())
            }
        };
        let start = SimTime::from_datetime(opts.fleet.start_time.unwrap_or_else(chrono::Utc::now));
        let clock = match opts.clock {
            ClockMode::Scaled(f) => SimClock::scaled(start, f),
            ClockMode::Manual => SimClock::manual(start),
        };
        let secret = opts.fleet.client_secret.clone().unwrap_or_else(|| {
            let mut r = super::rng::Rng::new(start.0 as u64 ^ u64::from(std::process::id()) ^ random_seed());
            r.hex(40)
        });
        let subscription_ids = opts.fleet.subscriptions.clone();
        let world = World::new(opts.fleet, start, opts.seed);
        let shared = Arc::new(Shared::new(
            world,
            clock,
            base_url.clone(),
            secret,
            tls.as_ref().map(|t| t.ca_pem.clone()),
        ));
        let info = ReadyInfo {
            arm_endpoint: base_url.clone(),
            authority_host: base_url.clone(),
            tenant_id: shared.tenant_id.clone(),
            client_id: shared.client_id.clone(),
            client_secret: shared.client_secret.clone(),
            ca_cert,
            subscription_ids,
            kube_endpoint_base: format!("{base_url}/k8s"),
            manual_clock: shared.clock.is_manual(),
            sim_start: start.rfc3339(),
        };
        let (stop, stop_rx) = watch::channel(false);
        let ctx = Arc::new(Ctx {
            shared: shared.clone(),
            throttle: Mutex::new(Throttle::default()),
        });
        let router = axum::Router::new().fallback(entry).with_state(ctx);
        let mut tasks = vec![tokio::spawn(serve(
            listener,
            tls.map(|t| t.server_config),
            router,
            stop_rx.clone(),
        ))];
        if !shared.clock.is_manual() {
            tasks.push(tokio::spawn(drive(shared.clone(), stop_rx)));
        }
        info!(endpoint = %base_url, "simulator listening");
        Ok(Simulator {
            info,
            shared,
            stop,
            tasks,
        })
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Moves a manual clock forward and applies every event due.
    pub fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
        drop(self.shared.world());
    }

    /// Runs `f` on the world, brought up to now.
    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.shared.world())
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

/// Keeps a scaled-clock world moving between requests, so watches see pods and nodes
/// change on time even when nobody asks.
async fn drive(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let wait = {
            let w = shared.world();
            match w.next_due() {
                Some(t) => shared.clock.to_real(t.since(w.now)).min(Duration::from_millis(250)),
                None => Duration::from_millis(250),
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait.max(Duration::from_millis(1))) => {}
            _ = shared.wake.notified() => {}
            _ = stop.changed() => return,
        }
    }
}
