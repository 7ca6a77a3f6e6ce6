//! What the dashboard reads: a rollout's summary (counts, approvals, ETA) and its
//! clusters a page at a time, so that a page never needs the full status document, and
//! the event stream of committed transitions (`/api/v1/events`).

use super::ApiState;
use super::approvals::{Deciders, waiting_for_approval};
use super::auth::Ctx;
use super::error::{ApiError, P, Q};
use super::rollouts::{approval_target, load, ring_state};
use crate::engine::{ClusterStatus, Rollout, StepStatus};
use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// Most clusters one page holds.
pub const MAX_PAGE: usize = 500;

/// How long a computed ETA is reused while the rollout's rings stay as they were: it
/// runs the engine forward over the rest of the rollout (most of a second of CPU for
/// 1,000 clusters), while a busy rollout commits several passes a second and every open
/// page asks for a summary after each. An estimate of hours a few seconds old is still
/// right; one made before a ring passed is not, so a ring's change recomputes at once.
const ETA_FRESH: Duration = Duration::from_secs(5);

/// The last ETA computed: for which rollout in which phase, and when.
struct Cached {
    id: String,
    phase: Vec<&'static str>,
    at: Instant,
    eta: Option<Arc<crate::forecast::Eta>>,
}

/// The ETA the status and the summaries share. One computation runs at a time: callers
/// that miss the cache meanwhile wait for it and take its answer instead of running
/// the same forecast again.
#[derive(Default)]
pub struct EtaCache {
    last: Mutex<Option<Cached>>,
    computing: Mutex<()>,
}

impl EtaCache {
    /// The cached ETA of rollout `id` in `phase` (its status and its rings' states),
    /// if it is fresh.
    fn fresh(&self, id: &str, phase: &[&'static str]) -> Option<Option<Arc<crate::forecast::Eta>>> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .filter(|c| c.id == id && c.phase == phase && c.at.elapsed() < ETA_FRESH)
            .map(|c| c.eta.clone())
    }

    /// Blocks while another caller computes: call it off the async workers.
    pub(super) fn get_or(
        &self,
        id: &str,
        phase: Vec<&'static str>,
        compute: impl FnOnce() -> Option<crate::forecast::Eta>,
    ) -> Option<Arc<crate::forecast::Eta>> {
        if let Some(eta) = self.fresh(id, &phase) {
            return eta;
        }
        let _one = self.computing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(eta) = self.fresh(id, &phase) {
            return eta;
        }
        let eta = compute().map(Arc::new);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Cached {
            id: id.to_string(),
            phase,
            at: Instant::now(),
            eta: eta.clone(),
        });
        eta
    }
}

/// What makes an ETA stale at once when it changes: the rollout's status and each
/// ring's state.
fn phase(r: &Rollout) -> Vec<&'static str> {
    std::iter::once(r.status.label())
        .chain(r.rings.iter().map(|x| ring_state(&x.status)))
        .collect()
}

/// The ETA of `r` from the shared cache, computed off the async workers; none once it
/// has ended.
pub(super) async fn eta(state: &ApiState, r: &Rollout) -> Option<Arc<crate::forecast::Eta>> {
    if r.status.is_terminal() {
        return None;
    }
    let (st, r) = (state.clone(), r.clone());
    tokio::task::spawn_blocking(move || st.eta_cache.get_or(&r.id, phase(&r), || super::rollouts::eta(&st, &r)))
        .await
        .ok()
        .flatten()
}

/// Clusters by state: `{"pending": n, "running": n, ...}` with every state present.
fn counts<'a>(statuses: impl Iterator<Item = &'a ClusterStatus>) -> Value {
    let n = ClusterStatus::count(statuses);
    let mut m: Map<String, Value> = ClusterStatus::LABELS
        .iter()
        .zip(n)
        .map(|(l, v)| (l.to_string(), v.into()))
        .collect();
    m.insert("total".into(), n.iter().sum::<usize>().into());
    Value::Object(m)
}

/// `GET /api/v1/rollouts/{id}/summary`: rings and waves with their counts, what waits
/// for approval and whether the caller may decide it, the ETA. Its size does not grow
/// with the fleet (a 5,000-cluster rollout answers in a few KiB).
pub(super) async fn summary(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    P(id): P<String>,
) -> Result<Json<Value>, ApiError> {
    let r = load(&state, &id)?;
    let now = state.clock.now();
    let eta = eta(&state, &r).await;
    let mut pending = Vec::new();
    let rings: Vec<Value> = r
        .rings
        .iter()
        .enumerate()
        .map(|(ri, run)| {
            let d = Deciders::of(&state, &r, ri, &ctx.caller);
            pending.extend(waiting_for_approval(&r, ri, &d, now));
            let waves: Vec<Value> = run
                .waves
                .iter()
                .map(|w| {
                    json!({
                        "name": w.name, "maxParallel": w.max_parallel,
                        "counts": counts(w.clusters.iter().map(|c| &c.status)),
                    })
                })
                .collect();
            json!({
                "name": run.name,
                "state": ring_state(&run.status),
                "status": run.status,
                "paused": run.paused,
                "startedAt": run.started_at,
                "finishedAt": run.finished_at,
                "approvers": d.approvers,
                "approval": run.approval,
                "counts": counts(run.waves.iter().flat_map(|w| &w.clusters).map(|c| &c.status)),
                "waves": waves,
            })
        })
        .collect();
    Ok(Json(json!({
        "id": r.id,
        "policy": r.plan.policy,
        "status": r.status,
        "state": r.status.label(),
        "target": approval_target(&r),
        "createdAt": r.created_at,
        "updatedAt": r.updated_at,
        "seq": r.seq,
        "now": now,
        "counts": counts(r.clusters().map(|(_, c)| &c.status)),
        "skipped": r.plan.skipped.len(),
        "rings": rings,
        "pendingApprovals": pending,
        "eta": eta,
        "you": {
            "name": ctx.caller.name,
            "groups": ctx.caller.groups,
            "operator": state.auth.is_operator(&ctx.caller),
        },
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PageParams {
    ring: Option<String>,
    wave: Option<String>,
    /// Only clusters in this state (a [`ClusterStatus::label`]).
    state: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

/// A step as a page shows it: what, its state, the reason in words.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StepView<'a> {
    what: String,
    state: &'static str,
    detail: Option<&'a str>,
    until: Option<DateTime<Utc>>,
    attempts: u32,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl<'a> StepView<'a> {
    fn of(s: &'a crate::engine::StepRun) -> Self {
        let (detail, until) = match &s.status {
            StepStatus::Gating { last, .. } => (last.as_deref(), None),
            StepStatus::Soaking { until } | StepStatus::Backoff { until } => (None, Some(*until)),
            StepStatus::Failed { reason } => (Some(reason.as_str()), None),
            _ => (None, None),
        };
        StepView {
            what: crate::engine::describe(&s.kind),
            state: s.status.label(),
            detail,
            until,
            attempts: s.attempts,
            started_at: s.started_at,
            finished_at: s.finished_at,
        }
    }
}

/// A cluster's preflight as a page shows it: the verdict and how many findings.
#[derive(Serialize)]
struct PreflightView {
    passed: bool,
    at: DateTime<Utc>,
    findings: usize,
}

/// A cluster as a page shows it, serialized straight from the rollout's state (a page
/// of 100 builds no intermediate JSON tree).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterView<'a> {
    name: &'a str,
    id: &'a crate::domain::fleet::ClusterId,
    ring: &'a str,
    wave: &'a str,
    state: &'static str,
    reason: Option<&'a str>,
    paused: bool,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    forecast_end: Option<DateTime<Utc>>,
    preflight: Option<PreflightView>,
    pools: &'a std::collections::BTreeMap<String, crate::engine::PoolVersions>,
    steps: Vec<StepView<'a>>,
}

fn reason_of(s: &ClusterStatus) -> Option<&str> {
    match s {
        ClusterStatus::Failed { reason } | ClusterStatus::RolledBack { reason } => Some(reason),
        ClusterStatus::Skipped { reason, .. } => Some(reason),
        _ => None,
    }
}

/// A page of clusters and where it sits in the list.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page<'a> {
    rollout_id: &'a str,
    seq: u64,
    total: usize,
    offset: usize,
    limit: usize,
    clusters: Vec<ClusterView<'a>>,
}

/// `GET /api/v1/rollouts/{id}/clusters`: clusters in plan order, a page at a time,
/// narrowed to a ring, a wave and a state.
pub(super) async fn clusters(
    State(state): State<ApiState>,
    P(id): P<String>,
    Q(p): Q<PageParams>,
) -> Result<Response, ApiError> {
    let limit = p.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("`limit` must be 1..={MAX_PAGE}"),
        ));
    }
    if let Some(s) = &p.state
        && !ClusterStatus::LABELS.contains(&s.as_str())
    {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("`state` must be one of {}", ClusterStatus::LABELS.join(", ")),
        ));
    }
    let r = load(&state, &id)?;
    if let Some(ring) = &p.ring
        && !r.rings.iter().any(|x| &x.name == ring)
    {
        return Err(ApiError::not_found(
            "unknown_ring",
            format!("no ring `{ring}` in rollout `{id}`"),
        ));
    }
    let offset = p.offset.unwrap_or(0);
    let forecast = r.forecast.as_deref();
    let matching = r.clusters().filter(|(at, c)| {
        let ring = &r.rings[at.ring];
        p.ring.as_ref().is_none_or(|x| *x == ring.name)
            && p.wave.as_ref().is_none_or(|x| *x == ring.waves[at.wave].name)
            && p.state.as_ref().is_none_or(|x| x == c.status.label())
    });
    let mut total = 0;
    let mut clusters = Vec::new();
    for (at, c) in matching {
        if total >= offset && clusters.len() < limit {
            let ring = &r.rings[at.ring];
            clusters.push(ClusterView {
                name: &c.id.name,
                id: &c.id,
                ring: &ring.name,
                wave: &ring.waves[at.wave].name,
                state: c.status.label(),
                reason: reason_of(&c.status),
                paused: c.paused,
                started_at: c.started_at,
                finished_at: c.finished_at,
                // The forecast keys clusters by their full id (`subscription/group/name`).
                forecast_end: forecast.and_then(|f| f.clusters.get(&c.id.to_string()).copied()),
                preflight: c.preflight.as_ref().map(|p| PreflightView {
                    passed: p.passed,
                    at: p.at,
                    findings: p.findings.len(),
                }),
                pools: &c.pools,
                steps: c.steps.iter().map(StepView::of).collect(),
            });
        }
        total += 1;
    }
    let page = Page {
        rollout_id: &r.id,
        seq: r.seq,
        total,
        offset,
        limit,
        clusters,
    };
    serde_json::to_vec(&page)
        .map(|body| ([(header::CONTENT_TYPE, "application/json")], body).into_response())
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `GET /api/v1/events`: server-sent events, one `transition` per committed pass of the
/// running rollout (its seq, status and audit entries). A subscriber that falls
/// [`crate::events::CAPACITY`] events behind gets a `dropped` event and the stream
/// ends: the page then refetches the summary and subscribes again. Streams are capped in
/// all and per caller (503 `too_many_streams` beyond), and each ends after
/// [`super::Limits::stream_lifetime`] (`super::streams`).
pub(super) async fn events(State(state): State<ApiState>, Extension(ctx): Extension<Ctx>) -> Response {
    let limits = state.limits;
    let slot = match state
        .streams
        .open(&ctx.caller.name, limits.max_streams, limits.max_streams_per_caller)
    {
        Ok(slot) => slot,
        Err(refused) => {
            state.metrics.inc(
                "ringmaster_api_event_streams_refused_total",
                &[("limit", refused.label())],
            );
            let mut r = ApiError::unavailable("too_many_streams", refused.to_string()).into_response();
            let h = r.headers_mut();
            h.insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
            // A refused subscriber's connection is not kept alive: a client opening
            // streams in a loop would otherwise hold idle connections (up to the
            // header timeout each) beside the streams it has.
            h.insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            return r;
        }
    };
    let rx = state.events.subscribe();
    // `retry`: how long the browser waits before it reconnects, at the lifetime's end.
    let hello = SseEvent::default()
        .event("hello")
        .retry(Duration::from_secs(2))
        .data(json!({ "active": state.control.active() }).to_string());
    let stream = futures::stream::unfold((Some(hello), Some(rx)), |(first, rx)| async move {
        if let Some(h) = first {
            return Some((Ok(h), (None, rx)));
        }
        let mut rx = rx?;
        match rx.recv().await {
            Ok(ev) => {
                let e = SseEvent::default()
                    .event("transition")
                    .id(ev.seq.to_string())
                    .data(ev.json.as_str());
                Some((Ok(e), (None, Some(rx))))
            }
            Err(RecvError::Lagged(n)) => {
                let e = SseEvent::default()
                    .event("dropped")
                    .data(json!({ "missed": n }).to_string());
                Some((Ok(e), (None, None)))
            }
            Err(RecvError::Closed) => None,
        }
    });
    // The slot lives as long as the stream: freed when it ends or the client goes.
    let stream = futures::StreamExt::map(
        futures::StreamExt::take_until(stream, tokio::time::sleep(limits.stream_lifetime)),
        move |e: Result<SseEvent, Infallible>| {
            let _held = &slot;
            e
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eta(minute: u32) -> crate::forecast::Eta {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 3, 8, minute, 0).unwrap();
        crate::forecast::Eta {
            at,
            finish: Some(at),
            rings: vec![],
            late: vec![],
        }
    }

    fn at(e: Option<Arc<crate::forecast::Eta>>) -> Option<DateTime<Utc>> {
        e.map(|e| e.at)
    }

    #[test]
    fn an_eta_is_reused_while_its_rollouts_rings_stay_as_they_were() {
        let cache = EtaCache::default();
        let running = || vec!["running", "passed", "running", "pending"];
        assert_eq!(at(cache.get_or("r1", running(), || Some(eta(1)))), Some(eta(1).at));
        // Fresh, same rings: reused however many clusters moved, without computing.
        let again = cache.get_or("r1", running(), || panic!("computed while fresh"));
        assert_eq!(at(again), Some(eta(1).at));
        // A ring passed: the old ETA still counted it, so a new one is computed.
        let next = vec!["running", "passed", "passed", "awaiting approval"];
        assert_eq!(at(cache.get_or("r1", next, || Some(eta(2)))), Some(eta(2).at));
        // Another rollout computes its own.
        assert_eq!(at(cache.get_or("r2", running(), || Some(eta(3)))), Some(eta(3).at));
        // A computation that panics does not block the next one.
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cache.get_or("r3", running(), || panic!("boom"))
        }));
        assert!(caught.is_err());
        assert_eq!(at(cache.get_or("r3", running(), || Some(eta(4)))), Some(eta(4).at));
    }
}
