//! Committed transitions, for whoever follows them live: the API's event stream
//! (`/api/v1/events`) and through it the dashboard.
//!
//! The runtime publishes one event per saved pass of its loop, after the commit (an
//! event never announces a state a crash could lose). Each event is serialized once and
//! shared by every subscriber. The buffer is a bounded broadcast ring: a subscriber that
//! falls more than [`CAPACITY`] events behind is told so and dropped; the daemon never
//! waits for a reader.

use crate::engine::Rollout;
use crate::store::AuditEntry;
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events a subscriber may fall behind before it is dropped. A 5,000-cluster rollout
/// commits a few passes per second at its busiest, so this is minutes of slack.
pub const CAPACITY: usize = 1024;

/// One committed pass, serialized once.
#[derive(Debug)]
pub struct Event {
    pub rollout_id: String,
    pub seq: u64,
    /// The JSON the stream sends as the event's data.
    pub json: String,
}

/// What an event says: enough for a page to update its counts and know what to refetch.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    rollout_id: &'a str,
    seq: u64,
    status: &'a str,
    /// The engine's time of the transition (the simulator's, in a rehearsal).
    at: chrono::DateTime<chrono::Utc>,
    /// Wall-clock milliseconds since the Unix epoch when the commit was acknowledged:
    /// what a subscriber's delivery latency is measured from.
    committed_at_ms: i64,
    entries: Vec<Entry<'a>>,
}

#[derive(Serialize)]
struct Entry<'a> {
    actor: &'a str,
    action: &'a str,
    subject: &'a str,
    reason: &'a str,
}

/// The publishing side; clones share one channel.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl EventBus {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Publishes a committed pass; costs nothing when nobody listens.
    pub fn publish(&self, r: &Rollout, audits: &[AuditEntry]) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let body = Body {
            rollout_id: &r.id,
            seq: r.seq,
            status: r.status.label(),
            at: r.updated_at,
            committed_at_ms: chrono::Utc::now().timestamp_millis(),
            entries: audits
                .iter()
                .map(|a| Entry {
                    actor: &a.actor,
                    action: &a.action,
                    subject: &a.subject,
                    reason: &a.reason,
                })
                .collect(),
        };
        let Ok(json) = serde_json::to_string(&body) else {
            return;
        };
        let _ = self.tx.send(Arc::new(Event {
            rollout_id: r.id.clone(),
            seq: r.seq,
            json,
        }));
    }
}
