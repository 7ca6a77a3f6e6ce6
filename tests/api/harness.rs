//! The API under test: the real router on 127.0.0.1:0, a real store on a temp SQLite
//! file, and a stand-in daemon ([`StandIn`]) that drives a real engine `Rollout` of the
//! demo fleet synchronously (no AKS: it never runs the engine's commands), persisting
//! each state with its audit entries as the daemon does.

use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use reqwest::StatusCode;
use ringmaster::api::auth::{Auth, parse_tokens, token_digest_hex};
use ringmaster::api::entra::{EntraConfig, EntraValidator};
use ringmaster::api::{ApiState, serve, serve_probes};
use ringmaster::clock::Clock;
use ringmaster::engine::{self, ClusterStatus, Input, RingStatus, Rollout, Settings, StepStatus};
use ringmaster::metrics::Metrics;
use ringmaster::service::{Control, ControlError, RingApproval, RolloutSummary, StartRequest};
use ringmaster::store::{AuditEntry, AuditQuery, RolloutRecord, Store};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Static tokens: (token, name, groups). Approvers of prod are `platform-admins`; the
/// operators are `sre`.
pub const ALICE: &str = "rmt_alice-approver-and-operator";
pub const BOB: &str = "rmt_bob-approver";
pub const OPS: &str = "rmt_ops-operator";
pub const VIEWER: &str = "rmt_viewer-reads-only";

pub fn tokens_yaml() -> String {
    let entries = [
        (ALICE, "alice", "[platform-admins, sre]"),
        (BOB, "bob", "[platform-admins]"),
        (OPS, "ops", "[sre]"),
        (VIEWER, "viewer", "[readers]"),
    ];
    let mut out = String::from("tokens:\n");
    for (token, name, groups) in entries {
        out.push_str(&format!(
            "  - name: {name}\n    groups: {groups}\n    sha256: {}\n",
            token_digest_hex(token)
        ));
    }
    out
}

/// A clock tests move by hand.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
    fn sleep(&self, _d: std::time::Duration) -> BoxFuture<'static, ()> {
        Box::pin(std::future::pending())
    }
}

/// The daemon, as far as the API can tell.
pub struct StandIn {
    pub store: Arc<Store>,
    pub clock: Arc<ManualClock>,
    pub rollouts: Mutex<BTreeMap<String, Rollout>>,
    settings: Settings,
    template: Rollout,
    /// Every input the API sent, in order.
    pub sent: Mutex<Vec<(String, Input)>>,
    /// When set, inputs wait in `queued` until [`StandIn::flush`], as they wait in the
    /// real daemon's channel until its loop takes them.
    pub defer: std::sync::atomic::AtomicBool,
    /// When set, reads fail as a damaged state file makes them fail.
    pub fail_reads: std::sync::atomic::AtomicBool,
    queued: Mutex<Vec<(String, Input)>>,
}

impl StandIn {
    fn persist(&self, r: &Rollout, cmds: &[engine::Command]) {
        let now = self.clock.now();
        let audits: Vec<AuditEntry> = cmds
            .iter()
            .filter_map(|c| match c {
                engine::Command::Audit {
                    actor,
                    action,
                    subject,
                    reason,
                } => Some(AuditEntry {
                    at: now,
                    actor: actor.clone(),
                    action: action.clone(),
                    rollout_id: Some(r.id.clone()),
                    subject: subject.clone(),
                    reason: reason.clone(),
                    detail: Value::Null,
                }),
                _ => None,
            })
            .collect();
        let record = ringmaster::engine::stored::record(r, None, now).unwrap();
        self.store.save_rollout_with_audit(&record, &audits).unwrap();
    }

    /// Applies `input` as the daemon would (also used by tests for time passing).
    pub fn apply(&self, id: &str, input: Input) -> Result<(), ControlError> {
        let mut all = self.rollouts.lock().unwrap();
        let r = all.get_mut(id).ok_or_else(|| ControlError::UnknownRollout(id.into()))?;
        if r.status.is_terminal() {
            return Err(ControlError::NotRunning(id.into()));
        }
        let cmds = engine::advance(r, &self.settings, input, self.clock.now());
        self.persist(r, &cmds);
        Ok(())
    }

    fn read_fails(&self) -> Result<(), ControlError> {
        if self.fail_reads.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ControlError::Store("database disk image is malformed".into()));
        }
        Ok(())
    }

    /// Applies the inputs that were deferred.
    pub fn flush(&self) {
        let queued: Vec<_> = self.queued.lock().unwrap().drain(..).collect();
        for (id, input) in queued {
            self.apply(&id, input).unwrap();
        }
    }

    pub fn rollout(&self, id: &str) -> Rollout {
        self.rollouts.lock().unwrap()[id].clone()
    }

    pub fn with(&self, id: &str, f: impl FnOnce(&mut Rollout)) {
        let mut all = self.rollouts.lock().unwrap();
        let r = all.get_mut(id).unwrap();
        f(r);
        self.persist(r, &[]);
    }
}

impl Control for StandIn {
    fn list(&self) -> Result<Vec<RolloutSummary>, ControlError> {
        self.read_fails()?;
        Ok(self
            .rollouts
            .lock()
            .unwrap()
            .values()
            .map(|r| RolloutSummary {
                id: r.id.clone(),
                policy: r.plan.policy.clone(),
                status: r.status.label().into(),
                updated_at: r.updated_at,
            })
            .collect())
    }
    fn get(&self, id: &str) -> Result<Option<Rollout>, ControlError> {
        self.read_fails()?;
        Ok(self.rollouts.lock().unwrap().get(id).cloned())
    }
    fn active(&self) -> Vec<String> {
        let all = self.rollouts.lock().unwrap();
        all.values()
            .filter(|r| !r.status.is_terminal())
            .map(|r| r.id.clone())
            .collect()
    }
    fn send(&self, id: &str, input: Input) -> Result<(), ControlError> {
        self.sent.lock().unwrap().push((id.to_string(), input.clone()));
        if self.defer.load(std::sync::atomic::Ordering::SeqCst) {
            self.queued.lock().unwrap().push((id.to_string(), input));
            return Ok(());
        }
        self.apply(id, input)
    }
    fn ring_approval(&self, _id: &str, ring: &str) -> Option<RingApproval> {
        let r = self.settings.ring(ring)?;
        Some(RingApproval {
            approvers: r.approvers.clone()?,
            expires_after: r.approval_expires_after,
        })
    }
    fn can_start(&self, _policy: Option<&str>) -> Result<(), ControlError> {
        match self.active().into_iter().next() {
            Some(a) => Err(ControlError::AlreadyRunning(a)),
            None => Ok(()),
        }
    }
    fn start_now(&self, _actor: &str, policy: Option<&str>) -> Result<StartRequest, ControlError> {
        self.can_start(policy)?;
        let mut r = self.template.clone();
        let id = format!("r{}", self.rollouts.lock().unwrap().len() + 1);
        r.id = id.clone();
        self.rollouts.lock().unwrap().insert(id.clone(), r);
        self.apply(&id, Input::Tick)?;
        Ok(StartRequest::Started(id))
    }
}

/// `r1` of the demo policy at the demo fleet's start time: dev passed, staging soaking
/// for an hour, prod (approval by platform-admins, 8 h expiry) pending.
fn fixture() -> (Rollout, Settings, DateTime<Utc>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("policies/demo.yaml")).unwrap();
    let fleet = crate::support::demo_snapshot::load_fleet("demo.yaml");
    let snapshot = crate::support::demo_snapshot::snapshot(&fleet);
    let now = snapshot.taken_at;
    let policy = ringmaster::policy::compile_with_snapshot("policies/demo.yaml", &text, Some(&snapshot)).unwrap();
    let plan = ringmaster::plan::plan(&snapshot, &policy, now);
    let settings = Settings::from_policy(&policy);
    let mut r = Rollout::new("r1".into(), "policies/demo.yaml".into(), text, plan, now);
    assert_eq!(r.rings.len(), 3, "the demo policy has dev, staging, prod");
    for ring in &mut r.rings[..2] {
        for w in &mut ring.waves {
            for c in &mut w.clusters {
                let c = std::sync::Arc::make_mut(c);
                c.status = ClusterStatus::Done;
                c.steps.iter_mut().for_each(|s| s.status = StepStatus::Done);
            }
        }
    }
    r.rings[0].status = RingStatus::Passed;
    r.rings[1].status = RingStatus::Soaking {
        until: now + Duration::hours(1),
    };
    (r, settings, now)
}

pub struct Harness {
    pub base: String,
    /// The probe listener (`serve --probe-listen`): `/healthz` and `/readyz` only.
    pub probe_base: String,
    pub http: reqwest::Client,
    pub standin: Arc<StandIn>,
    pub store: Arc<Store>,
    pub clock: Arc<ManualClock>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<ringmaster::health::Health>,
    pub denials: Arc<ringmaster::api::denials::DenialLog>,
    /// What the runtime publishes to `/api/v1/events`.
    pub events: ringmaster::events::EventBus,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(None).await
    }

    /// With `entra`, Entra ID tokens are accepted too.
    pub async fn start_with(entra: Option<EntraConfig>) -> Harness {
        Self::start_full(entra, ringmaster::api::Limits::default()).await
    }

    /// With the server's limits set (short timeouts for the slow-client tests).
    pub async fn start_limited(limits: ringmaster::api::Limits) -> Harness {
        Self::start_full(None, limits).await
    }

    async fn start_full(entra: Option<EntraConfig>, limits: ringmaster::api::Limits) -> Harness {
        ringmaster::identity::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("state.db")).unwrap());
        let (rollout, settings, now) = fixture();
        let clock = Arc::new(ManualClock(Mutex::new(now)));
        let standin = Arc::new(StandIn {
            store: store.clone(),
            clock: clock.clone(),
            rollouts: Mutex::new(BTreeMap::new()),
            settings,
            template: rollout.clone(),
            sent: Mutex::new(Vec::new()),
            defer: Default::default(),
            fail_reads: Default::default(),
            queued: Mutex::new(Vec::new()),
        });
        standin.rollouts.lock().unwrap().insert("r1".into(), rollout.clone());
        standin.persist(&rollout, &[]);
        let tokens = parse_tokens("tokens.yaml", &tokens_yaml()).unwrap();
        let http = reqwest::Client::new();
        let entra = entra.map(|c| EntraValidator::new(c, http.clone()));
        let metrics = Arc::new(Metrics::default());
        let state = ApiState::new(
            standin.clone(),
            store.clone(),
            Arc::new(Auth::new(tokens, entra, vec!["sre".into()])),
            metrics.clone(),
            clock.clone(),
        );
        let mut state = state;
        state.limits = limits;
        let health = state.health.clone();
        let denials = state.denials.clone();
        let events = state.events.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let probes = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let probe_base = format!("http://{}", probes.local_addr().unwrap());
        let probe_state = state.clone();
        tokio::spawn(async move { serve_probes(probes, probe_state, std::future::pending()).await.unwrap() });
        tokio::spawn(async move { serve(listener, state, std::future::pending()).await.unwrap() });
        Harness {
            base,
            probe_base,
            http,
            standin,
            store,
            clock,
            metrics,
            health,
            denials,
            events,
            _dir: dir,
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        token: Option<&str>,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, v)
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.call(reqwest::Method::GET, token, path, None).await;
        (s, v)
    }

    pub async fn post(&self, token: Option<&str>, path: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self.call(reqwest::Method::POST, token, path, Some(body)).await;
        (s, v)
    }

    /// Every audit entry, oldest first.
    pub fn audit(&self) -> Vec<AuditEntry> {
        let q = AuditQuery {
            limit: 10_000,
            ..Default::default()
        };
        self.store.audit(&q).unwrap().into_iter().map(|(_, e)| e).collect()
    }

    pub fn audit_actions(&self, action: &str) -> Vec<AuditEntry> {
        self.audit().into_iter().filter(|e| e.action == action).collect()
    }

    /// Everything but the audit log: rollouts and approval decisions, and the inputs sent.
    pub fn observable(&self) -> (Vec<RolloutRecord>, String, usize) {
        let approvals = self.store.approvals("r1").unwrap();
        let rejections = self.store.rejections("r1").unwrap();
        (
            self.store.load_rollouts().unwrap(),
            format!("{approvals:?}{rejections:?}"),
            self.standin.sent.lock().unwrap().len(),
        )
    }
}

/// The error code of an API error body.
pub fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error code>")
}
