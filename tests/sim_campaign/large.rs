//! The state saved in parts on a fleet of hundreds of clusters (the seeded campaign's
//! fleets have at most 12): the generated fleet (`examples/fleets/large.yaml`'s
//! template) through the real runtime and executor with its SQLite state file, against
//! the in-process simulator on tokio's paused clock, killed at chosen points. At every
//! restart the state read back must equal, exactly, the one the killed runtime last
//! committed (or the one it was committing); the simulator's request log must show no
//! step accepted twice and no refusal but a conflict or a throttle.
//!
//! Bounded: prod's approval is never given, so the run ends when dev and staging are
//! done and prod waits; every cluster of the fleet is in the state all along.

use super::check;
use ringmaster::clock::{Clock, ScaledClock};
use ringmaster::engine::{Input, NotifyEvent, RingStatus, Rollout};
use ringmaster::identity::{AzureConfig, AzureTokens};
use ringmaster::runtime::{Notifier, Runtime};
use ringmaster::sim::{ClockMode, SimOptions, Simulator, fleet};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[path = "../../benches/common/generated.rs"]
mod generated;

struct Quiet;

impl Notifier for Quiet {
    fn notify(&self, _: NotifyEvent, _: Option<&str>, _: Option<&ringmaster::domain::fleet::ClusterId>, _: &str) {}
}

/// What a large run did.
#[derive(Debug)]
pub struct LargeReport {
    pub clusters: usize,
    /// Restarts whose recovered state was compared with the committed one, after the
    /// killed runtime had saved changes (parts) since its start.
    pub recovered: u32,
    pub operations: usize,
    /// Cluster parts in the state file at the end.
    pub parts: usize,
}

/// Runs the generated fleet of `n` clusters; kills the daemon once AKS has accepted
/// each of `kill_after` operations (counted over the whole run), and once more when
/// prod waits for its approval.
pub fn run_large(n: usize, kill_after: &[usize]) -> LargeReport {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    rt.block_on(run(n, kill_after.to_vec()))
}

async fn run(n: usize, mut kill_after: Vec<usize>) -> LargeReport {
    ringmaster::identity::install_crypto_provider();
    let fleet = fleet::parse("large.yaml", &generated::generated_fleet_text(n)).expect("the generated fleet");
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions {
        fleet,
        listen: "127.0.0.1:0".parse().unwrap(),
        clock: ClockMode::Scaled(1.0),
        seed: 7,
        plain_http: false,
        state_dir: None,
    })
    .await
    .expect("simulator");
    let start = sim.shared().clock.now().to_datetime();
    let clock: Arc<dyn Clock> = Arc::new(ScaledClock::new(start, 1.0));
    let config = AzureConfig::for_simulator(&sim.info);
    let client = Arc::new(ringmaster::arm::connect(&config, clock.clone()).unwrap());
    let tokens = Arc::new(AzureTokens::new(config.clone(), config.http_client().unwrap()).unwrap());
    let policy = ringmaster::embedded::PolicySource {
        name: "large.yaml".into(),
        text: generated::generated_policy("large", 6, 12, 24),
    };
    let (rollout, _) = ringmaster::service::run::new_rollout_from(
        &client,
        policy,
        &sim.info.subscription_ids,
        start,
        ringmaster::forecast::DEFAULT_APPROVAL_AFTER,
    )
    .await
    .expect("planning");
    let clusters = rollout.clusters().count();
    assert!(clusters >= n * 9 / 10, "{clusters} of {n} clusters planned");
    let state = dir.path().join("state.db");
    let notifier: Arc<dyn Notifier> = Arc::new(Quiet);
    let mut store = Some(Arc::new(ringmaster::store::Store::open(&state).unwrap()));
    let mut current = rollout;
    let mut first = Input::Tick;
    let mut started_from: Option<Rollout> = None;
    let mut recovered = 0;
    let mut logged = sim.shared().writes_logged.subscribe();
    let operations = |sim: &Simulator| sim.with_world(|w| w.writes.iter().filter(|x| x.operation.is_some()).count());
    let waiting_for_prod = |r: &Rollout| {
        r.rings
            .iter()
            .any(|x| x.name == "prod" && matches!(x.status, RingStatus::AwaitingApproval { .. }))
    };
    loop {
        let s = store.take().expect("a store");
        let previous = Arc::downgrade(&s);
        let runtime = Runtime::new(
            current,
            client.clone(),
            tokens.clone(),
            clock.clone(),
            Some(s),
            notifier.clone(),
        )
        .expect("runtime");
        let mut progress = runtime.progress();
        let commits = runtime.commits();
        let mut runner = tokio::spawn(runtime.run(first, std::future::pending()));
        let last_kill = kill_after.is_empty();
        // Runs until the next kill point.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3 * 24 * 3600);
        loop {
            if let Some(k) = kill_after.first()
                && operations(&sim) >= *k
            {
                kill_after.remove(0);
                break;
            }
            if last_kill && waiting_for_prod(&progress.borrow()) {
                break;
            }
            assert!(
                !progress.borrow().status.is_terminal(),
                "the rollout ended: {:?}",
                progress.borrow().status
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "no progress in 3 simulated days"
            );
            tokio::select! {
                _ = progress.changed() => {}
                _ = logged.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
        }
        // SIGKILL, in-process: the runtime and its tasks are dropped where they are.
        runner.abort();
        let _ = (&mut runner).await;
        let t = std::time::Instant::now();
        while previous.upgrade().is_some() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the killed runtime's store is still held"
            );
            tokio::task::yield_now().await;
            std::thread::sleep(Duration::from_millis(1));
        }
        let s = Arc::new(ringmaster::store::Store::open(&state).expect("reopen"));
        let stored = ringmaster::service::daemon::stored(&s).expect("the state after a kill");
        let r = stored
            .into_iter()
            .find(|r| !r.status.is_terminal())
            .expect("an unfinished rollout");
        let c = commits.borrow().clone();
        let candidates: Vec<&Rollout> = [c.saving.as_ref(), c.saved.as_ref().or(started_from.as_ref())]
            .into_iter()
            .flatten()
            .collect();
        if let Some(diff) = check::recovery_mismatch(&r, &candidates) {
            panic!("the recovered state is not the last committed one: {diff}");
        }
        if c.saved.is_some() {
            recovered += 1;
        }
        let done = last_kill;
        started_from = Some(r.clone());
        current = r;
        first = Input::Resumed;
        store = Some(s);
        if done {
            break;
        }
    }
    let writes = sim.with_world(|w| w.writes.clone());
    // From the request log: no refusal but a conflict or a throttle, no step twice.
    let mut accepted: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for w in &writes {
        let refused = (400..500).contains(&w.status) && ![409, 412, 429].contains(&w.status);
        assert!(!refused, "AKS refused {} {} with {}", w.method, w.path, w.status);
        if (200..300).contains(&w.status)
            && let Some(k) = check::step_key(w)
        {
            *accepted.entry(k).or_default() += 1;
        }
    }
    let twice: Vec<_> = accepted.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "steps accepted more than once: {twice:?}");
    let parts = {
        let conn = rusqlite::Connection::open(&state).unwrap();
        conn.query_row("SELECT count(*) FROM rollout_parts", [], |row| row.get::<_, i64>(0))
            .unwrap() as usize
    };
    let operations = operations(&sim);
    drop(store);
    sim.shutdown().await;
    LargeReport {
        clusters,
        recovered,
        operations,
        parts,
    }
}
