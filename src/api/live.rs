//! What the dashboard reads: a rollout's summary (counts, approvals, ETA) and its
//! clusters a page at a time, so that a page never needs the full status document, and
//! the event stream of committed transitions (`/api/v1/events`).

use super::ApiState;
use super::auth::{Ctx, intersects};
use super::error::{ApiError, P, Q};
use super::rollouts::{approval_target, load, ring_state};
use crate::engine::{ClusterStatus, RingStatus, Rollout, StepStatus};
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// Most clusters one page holds.
pub const MAX_PAGE: usize = 500;

/// How long a computed ETA is reused for the same state: it runs the engine forward
/// over the rest of the rollout, far too costly for every summary call of every page.
const ETA_FRESH: Duration = Duration::from_secs(5);

/// An ETA computed for (rollout id, seq) at an instant.
type CachedEta = (String, u64, Instant, Option<Arc<crate::forecast::Eta>>);

/// The last ETA computed.
#[derive(Default)]
pub struct EtaCache(Mutex<Option<CachedEta>>);

impl EtaCache {
    fn get_or(
        &self,
        r: &Rollout,
        compute: impl FnOnce() -> Option<crate::forecast::Eta>,
    ) -> Option<Arc<crate::forecast::Eta>> {
        {
            let c = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((id, seq, at, eta)) = c.as_ref()
                && *id == r.id
                && *seq == r.seq
                && at.elapsed() < ETA_FRESH
            {
                return eta.clone();
            }
        }
        let eta = compute().map(Arc::new);
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((r.id.clone(), r.seq, Instant::now(), eta.clone()));
        eta
    }
}

/// Clusters by state: `{"pending": n, "running": n, ...}` with every state present.
fn counts<'a>(statuses: impl Iterator<Item = &'a ClusterStatus>) -> Value {
    let mut n = [0usize; ClusterStatus::LABELS.len()];
    let mut total = 0;
    for s in statuses {
        let i = ClusterStatus::LABELS.iter().position(|l| *l == s.label()).unwrap_or(0);
        n[i] += 1;
        total += 1;
    }
    let mut m = Map::new();
    for (l, v) in ClusterStatus::LABELS.iter().zip(n) {
        m.insert(l.to_string(), v.into());
    }
    m.insert("total".into(), total.into());
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
    let eta = if r.status.is_terminal() {
        None
    } else {
        let (st, r2) = (state.clone(), r.clone());
        tokio::task::spawn_blocking(move || st.eta_cache.get_or(&r2, || super::rollouts::eta(&st, &r2)))
            .await
            .ok()
            .flatten()
    };
    let mut pending = Vec::new();
    let rings: Vec<Value> = r
        .rings
        .iter()
        .enumerate()
        .map(|(ri, run)| {
            let needs = r.plan.rings.get(ri).is_some_and(|p| !p.approvers.is_empty());
            let rules = needs.then(|| state.control.ring_approval(&r.id, &run.name)).flatten();
            let approvers = rules.as_ref().map(|a| a.approvers.clone()).unwrap_or_default();
            let may_decide = intersects(&ctx.caller.groups, &approvers);
            let waiting = match run.status {
                RingStatus::AwaitingApproval { since } => Some(since),
                _ => None,
            };
            if let Some(since) = waiting {
                pending.push(json!({
                    "ring": run.name, "since": since, "approvers": approvers,
                    "expiresAfterSeconds": rules.as_ref().and_then(|a| a.expires_after).map(|d| d.as_secs()),
                    "mayApprove": may_decide,
                    "mayReject": may_decide || state.auth.is_operator(&ctx.caller),
                }));
            }
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
                "approvers": approvers,
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
fn step_view(s: &crate::engine::StepRun) -> Value {
    let (detail, until) = match &s.status {
        StepStatus::Gating { last, .. } => (last.clone(), None),
        StepStatus::Soaking { until } | StepStatus::Backoff { until } => (None, Some(*until)),
        StepStatus::Failed { reason } => (Some(reason.clone()), None),
        _ => (None, None),
    };
    json!({
        "what": crate::engine::describe(&s.kind),
        "state": s.status.label(),
        "detail": detail,
        "until": until,
        "attempts": s.attempts,
        "startedAt": s.started_at,
        "finishedAt": s.finished_at,
    })
}

fn reason_of(s: &ClusterStatus) -> Option<&str> {
    match s {
        ClusterStatus::Failed { reason } | ClusterStatus::RolledBack { reason } => Some(reason),
        ClusterStatus::Skipped { reason, .. } => Some(reason),
        _ => None,
    }
}

/// `GET /api/v1/rollouts/{id}/clusters`: clusters in plan order, a page at a time,
/// narrowed to a ring, a wave and a state.
pub(super) async fn clusters(
    State(state): State<ApiState>,
    P(id): P<String>,
    Q(p): Q<PageParams>,
) -> Result<Json<Value>, ApiError> {
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
    let forecast = r.forecast.clone();
    let matching = r.clusters().filter(|(at, c)| {
        let ring = &r.rings[at.ring];
        p.ring.as_ref().is_none_or(|x| *x == ring.name)
            && p.wave.as_ref().is_none_or(|x| *x == ring.waves[at.wave].name)
            && p.state.as_ref().is_none_or(|x| x == c.status.label())
    });
    let mut total = 0;
    let mut page = Vec::new();
    for (at, c) in matching {
        if total >= offset && page.len() < limit {
            let ring = &r.rings[at.ring];
            let forecast_end: Option<DateTime<Utc>> =
                forecast.as_ref().and_then(|f| f.clusters.get(&c.id.name).copied());
            page.push(json!({
                "name": c.id.name,
                "id": c.id,
                "ring": ring.name,
                "wave": ring.waves[at.wave].name,
                "state": c.status.label(),
                "reason": reason_of(&c.status),
                "paused": c.paused,
                "startedAt": c.started_at,
                "finishedAt": c.finished_at,
                "forecastEnd": forecast_end,
                "preflight": c.preflight.as_ref().map(|p| json!({
                    "passed": p.passed, "at": p.at, "findings": p.findings.len(),
                })),
                "pools": c.pools,
                "steps": c.steps.iter().map(step_view).collect::<Vec<_>>(),
            }));
        }
        total += 1;
    }
    Ok(Json(json!({
        "rolloutId": r.id,
        "seq": r.seq,
        "total": total,
        "offset": offset,
        "limit": limit,
        "clusters": page,
    })))
}

/// `GET /api/v1/events`: server-sent events, one `transition` per committed pass of the
/// running rollout (its seq, status and audit entries). A subscriber that falls
/// [`crate::events::CAPACITY`] events behind gets a `dropped` event and the stream
/// ends: the page then refetches the summary and subscribes again.
pub(super) async fn events(
    State(state): State<ApiState>,
) -> Sse<impl futures::Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = state.events.subscribe();
    let hello = SseEvent::default()
        .event("hello")
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
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
