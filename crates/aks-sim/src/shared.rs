//! What every request handler of the simulator shares: the world behind one lock, the
//! clock, the token store, and where the server listens.

use super::auth::TokenStore;
use super::clock::SimClock;
use super::world::World;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;

#[derive(Debug)]
pub struct Shared {
    world: Mutex<World>,
    pub clock: SimClock,
    pub tokens: Mutex<TokenStore>,
    /// `https://127.0.0.1:PORT` (or http with `--plain-http`): the base of every URL we hand out.
    pub base_url: String,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// PEM of the CA that signed the serving certificate (None with plain HTTP).
    pub ca_pem: Option<String>,
    /// Wakes the driver task when the clock moved or an earlier event was scheduled.
    pub wake: Notify,
    /// How many mutating requests the world's log holds: a test can act at the moment
    /// AKS took a call and before its answer reached the client (a crash right there).
    pub writes_logged: tokio::sync::watch::Sender<usize>,
    /// Codes of the simulated Entra ID sign-in, not redeemed yet.
    pub sign_ins: super::sign_in::SignIns,
}

impl Shared {
    pub fn new(world: World, clock: SimClock, base_url: String, client_secret: String, ca_pem: Option<String>) -> Self {
        Self {
            tenant_id: world.fleet.tenant_id.clone(),
            client_id: world.fleet.client_id.clone(),
            world: Mutex::new(world),
            clock,
            tokens: Mutex::new(TokenStore::default()),
            base_url,
            client_secret,
            ca_pem,
            wake: Notify::new(),
            writes_logged: tokio::sync::watch::Sender::new(0),
            sign_ins: Default::default(),
        }
    }

    /// Locks the world and brings it up to the clock's now: every handler calls this.
    pub fn world(&self) -> MutexGuard<'_, World> {
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock.now();
        w.advance_to(now);
        w
    }

    pub fn tokens(&self) -> MutexGuard<'_, TokenStore> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Kubernetes API server URL of a cluster (what its kubeconfig points at).
    pub fn kube_server(&self, fqdn: &str) -> String {
        format!("{}/k8s/{fqdn}", self.base_url)
    }
}

impl Shared {
    /// Checks a request to a cluster's Kubernetes API: the local account tokens of the
    /// kubeconfigs (unless local accounts are disabled), or, on Entra-ID clusters, an
    /// Entra token for the AKS server application.
    pub fn kube_auth(
        &self,
        cluster: &super::world::Cluster,
        headers: &http::HeaderMap,
    ) -> Result<(), super::auth::TokenProblem> {
        use super::auth::{AKS_SERVER_APP, TokenProblem, bearer};
        let token = bearer(headers).ok_or(TokenProblem::Missing)?;
        if !cluster.disable_local_accounts && (token == cluster.user_token || token == cluster.admin_token) {
            return Ok(());
        }
        if cluster.entra_id {
            return self.tokens().check(Some(token), AKS_SERVER_APP).map(|_| ());
        }
        Err(TokenProblem::Invalid)
    }
}

/// A handle on a simulator's manual clock for a client running in step with it:
/// ringmaster's `Clock` is implemented for it on ringmaster's side (its `clock` module), so the
/// simulator knows nothing of ringmaster.
#[derive(Debug, Clone)]
pub struct ManualSimClock(pub std::sync::Arc<Shared>);

impl ManualSimClock {
    /// Simulated now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.clock.now().to_datetime()
    }

    /// Moves simulated time forward by `d` at once and brings the world up to it.
    pub fn advance(&self, d: std::time::Duration) {
        self.0.clock.advance(d);
        drop(self.0.world());
    }
}
