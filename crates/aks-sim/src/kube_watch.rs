//! Watches (`?watch=true`): a streaming response of one JSON event per line, fed by the
//! cluster's change broadcast.
//!
//! The replay (`changes_since`) or the initial ADDED burst is read and the broadcast is
//! subscribed under one world lock, so no change falls between the two. The stream owns
//! everything it needs and lives in the response body: when the client goes away, hyper
//! drops the body and with it the receiver; no task is left behind.

use super::clock::SimTime;
use super::kube_api::{ApiError, Resource, TableOpts, api_unreachable, json_response, object_key};
use super::kube_model::{Change, ChangeType};
use super::selector::{FieldSelector, LabelSelector};
use super::shared::Shared;
use super::world::World;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};
use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::{Instant, Interval, MissedTickBehavior};

/// How often (wall clock) a watch sends a BOOKMARK and checks that its API server is
/// still reachable (faster in unit tests, which must not wait seconds).
const TICK: Duration = if cfg!(test) {
    Duration::from_millis(100)
} else {
    Duration::from_secs(5)
};

/// A parsed watch request.
#[derive(Debug)]
pub struct WatchRequest {
    pub res: &'static Resource,
    pub ns: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// `None` for an absent or `"0"` resourceVersion: start with the current objects.
    pub rv: Option<u64>,
    pub send_initial: Option<bool>,
    pub bookmarks: bool,
    pub timeout: Duration,
    pub table: Option<TableOpts>,
}

/// Which changes a watch passes on, and in which shape.
#[derive(Debug)]
struct Filter {
    res: &'static Resource,
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    table: Option<TableOpts>,
    /// Objects the client holds as matching: a change that makes one stop matching is
    /// sent as DELETED, as the API server does. (After a resume this starts from the
    /// objects matching now, an approximation of what the client held.)
    known: HashSet<(String, String)>,
}

impl Filter {
    fn selects(&self, obj: &Value) -> bool {
        self.ns
            .as_deref()
            .is_none_or(|ns| obj["metadata"]["namespace"].as_str() == Some(ns))
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }

    /// The event type the client sees for a change, if any.
    fn pass(&mut self, change: &Change) -> Option<&'static str> {
        if change.kind != self.res.kind {
            return None;
        }
        let key = object_key(&change.object);
        let selected = self.selects(&change.object);
        match change.typ {
            ChangeType::Deleted => (self.known.remove(&key) || selected).then_some("DELETED"),
            _ if selected => {
                self.known.insert(key);
                Some(change.typ.as_str())
            }
            _ => self.known.remove(&key).then_some("DELETED"),
        }
    }

    fn line(&self, typ: &str, obj: &Value, now: SimTime) -> Bytes {
        match &self.table {
            Some(t) => {
                let meta = json!({ "resourceVersion": obj["metadata"]["resourceVersion"] });
                event_line(typ, &t.table(self.res, std::slice::from_ref(obj), now, meta))
            }
            None => event_line(typ, obj),
        }
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({ "resourceVersion": rv.to_string() });
        if initial_end {
            meta["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        event_line(
            "BOOKMARK",
            &json!({ "kind": self.res.kind_name, "apiVersion": self.res.api_version(), "metadata": meta }),
        )
    }
}

/// `{"type":TYPE,"object":OBJ}` and a newline, without copying the object into a new Value.
fn event_line(typ: &str, obj: &Value) -> Bytes {
    let mut v = Vec::with_capacity(1024);
    v.extend_from_slice(b"{\"type\":\"");
    v.extend_from_slice(typ.as_bytes());
    v.extend_from_slice(b"\",\"object\":");
    // Serialising a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut v, obj);
    v.extend_from_slice(b"}\n");
    Bytes::from(v)
}

fn streaming(body: Body) -> Response {
    let mut r = json_response(StatusCode::OK, &Value::Null);
    *r.body_mut() = body;
    r
}

/// Starts a watch on cluster `c`; the caller holds the world lock.
pub fn start(shared: Arc<Shared>, world: &mut World, c: usize, req: WatchRequest) -> Response {
    let now = world.now;
    let kube = &mut world.clusters[c].kube;
    let mut filter = Filter {
        res: req.res,
        ns: req.ns,
        labels: req.labels,
        fields: req.fields,
        table: req.table,
        known: HashSet::new(),
    };
    let mut current: Vec<Value> = kube
        .render_all(req.res.kind)
        .into_iter()
        .filter(|o| filter.selects(o))
        .collect();
    current.sort_by_cached_key(object_key);
    filter.known = current.iter().map(object_key).collect();
    let mut pending = VecDeque::new();
    if req.send_initial.unwrap_or(req.rv.is_none()) {
        pending.extend(current.iter().map(|o| filter.line("ADDED", o, now)));
        if req.send_initial == Some(true) {
            pending.push_back(filter.bookmark(kube.rv, true));
        }
    } else if let Some(rv) = req.rv {
        let Some(changes) = kube.changes_since(rv) else {
            // Too old: one ERROR event, then the end; the client lists again.
            let status = ApiError {
                code: StatusCode::GONE,
                reason: "Expired",
                message: format!("too old resource version: {rv} ({})", kube.history_floor),
                details: None,
            }
            .status();
            return streaming(Body::from(event_line("ERROR", &status)));
        };
        for ch in changes {
            if let Some(typ) = filter.pass(&ch) {
                pending.push_back(filter.line(typ, &ch.object, now));
            }
        }
    }
    let start = Instant::now();
    // A client that reads slowly gets one bookmark late, not a burst of them.
    let mut tick = tokio::time::interval_at(start + TICK, TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let live = Live {
        rx: kube.subscribe(),
        last_rv: kube.rv.max(req.rv.unwrap_or(0)),
        shared,
        c,
        filter,
        bookmarks: req.bookmarks,
        tick,
        deadline: start + req.timeout,
        pending,
    };
    streaming(Body::from_stream(futures::stream::unfold(live, next)))
}

/// A running watch: what is queued for the client, and where the rest comes from.
struct Live {
    shared: Arc<Shared>,
    c: usize,
    rx: broadcast::Receiver<Arc<Change>>,
    filter: Filter,
    /// The newest change seen (sent or filtered out): what a BOOKMARK may promise.
    last_rv: u64,
    bookmarks: bool,
    tick: Interval,
    deadline: Instant,
    pending: VecDeque<Bytes>,
}

async fn next(mut s: Live) -> Option<(Result<Bytes, Infallible>, Live)> {
    loop {
        if let Some(b) = s.pending.pop_front() {
            return Some((Ok(b), s));
        }
        tokio::select! {
            () = tokio::time::sleep_until(s.deadline) => return None,
            _ = s.tick.tick() => {
                if api_unreachable(&s.shared.world(), s.c) {
                    return None;
                }
                if s.bookmarks {
                    s.pending.push_back(s.filter.bookmark(s.last_rv, false));
                }
            }
            r = s.rx.recv() => match r {
                Ok(ch) => {
                    s.last_rv = s.last_rv.max(ch.rv);
                    if let Some(typ) = s.filter.pass(&ch) {
                        let now = s.shared.clock.now();
                        s.pending.push_back(s.filter.line(typ, &ch.object, now));
                    }
                }
                // Lagged or closed: end the stream; the client watches again from its
                // last resourceVersion (or lists again after a 410).
                Err(_) => return None,
            },
        }
    }
}
