//! Refused calls and sign-ins in the audit log, counted and sampled so that strangers
//! (and token holders) cannot grow it.
//!
//! Writing one audit row per 401 let anyone on the network fill the state disk (300
//! unauthenticated requests with 64 KiB paths grew the file by 79 MB in a second, and
//! the rollout stopped on "database or disk is full"). So an event is recorded per
//! *(source, action, status, reason)* per minute: the first one of a minute is written
//! at once, with its request as the example; the others are only counted, and one
//! `<action>.repeated` row with the count and the span of those repeats (first to last)
//! closes the minute. At most [`MAX_KEYS`] distinct keys per minute get rows of their
//! own; the rest share one `other` key. Every field is cut to a few hundred bytes, and a
//! denied path never becomes a rollout id. Worst case: `2 * (MAX_KEYS + 1)` rows of
//! under 1 KiB a minute, whatever is sent.
//!
//! The actions: `auth.denied` (a refused call), `session.created` and `session.ended`
//! (dashboard sign-in and sign-out: sampled the same way, so a flood of sign-ins is a
//! count, not a row each).
//!
//! The minute is the **wall clock's**, never the engine's: under a rehearsal's fast
//! clock (`--sim-clock` at 600x) a simulated minute is 0.1 s, and the sampling would
//! write a row a tenth of a second. The rows' times are wall-clock times too.
//!
//! The source is the caller's name when authenticated (403, sign-in) and the peer
//! address when not (401): an unauthenticated caller's claims are not a name.

use crate::store::AuditEntry;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

/// Distinct (source, status, reason) keys with rows of their own in one minute.
pub const MAX_KEYS: usize = 64;
/// Longest path kept in a denial row (bytes, cut at a character boundary).
pub const MAX_PATH: usize = 200;
/// Longest reason, source or method kept.
pub const MAX_TEXT: usize = 300;

/// `s` cut to at most `max` bytes (at a character boundary), `…` marking a cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// One refused call (or sign-in, sign-out), as the API saw it.
#[derive(Debug, Clone)]
pub struct Denial {
    /// `auth.denied`, `session.created` or `session.ended`.
    pub action: &'static str,
    /// The authenticated caller's name, `None` for an unauthenticated call.
    pub actor: Option<String>,
    /// Peer address (`ip`), or `unknown`.
    pub peer: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub reason: String,
    pub extra: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    source: String,
    action: &'static str,
    status: u16,
    reason: String,
}

#[derive(Debug)]
struct Bucket {
    actor: String,
    count: u64,
    /// When the first and the last of the repeats (the events after the first) came.
    repeats: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

#[derive(Debug, Default)]
struct Window {
    start: Option<DateTime<Utc>>,
    buckets: HashMap<Key, Bucket>,
}

/// The per-minute counters of refused calls. Cheap to share; one per API.
#[derive(Debug, Default)]
pub struct DenialLog {
    window: Mutex<Window>,
}

fn minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t)
}

impl DenialLog {
    /// Counts `d` at `now`; returns the rows to append: the closing rows of the previous
    /// minute when this one started, and `d` itself when it is the first of its key.
    pub fn record(&self, now: DateTime<Utc>, d: &Denial) -> Vec<AuditEntry> {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let start = minute(now);
        let mut out = match w.start {
            Some(s) if s != start => close(&mut w, now),
            _ => Vec::new(),
        };
        w.start = Some(start);
        let source = match &d.actor {
            Some(a) => cut(a, MAX_TEXT),
            None => cut(&d.peer, MAX_TEXT),
        };
        let mut key = Key {
            source,
            action: d.action,
            status: d.status,
            reason: cut(&d.reason, MAX_TEXT),
        };
        if !w.buckets.contains_key(&key) && w.buckets.len() >= MAX_KEYS {
            key = Key {
                source: "other".into(),
                action: d.action,
                status: 0,
                reason: "other".into(),
            };
        }
        let actor = d
            .actor
            .as_deref()
            .map_or_else(|| "anonymous".to_string(), |a| cut(a, MAX_TEXT));
        let bucket = w.buckets.entry(key.clone()).or_insert(Bucket {
            actor,
            count: 0,
            repeats: None,
        });
        bucket.count += 1;
        if bucket.count > 1 {
            let first = bucket.repeats.map_or(now, |(f, _)| f);
            bucket.repeats = Some((first, now));
        }
        if bucket.count == 1 {
            let (method, path) = (cut(&d.method, 16), cut(&d.path, MAX_PATH));
            out.push(AuditEntry {
                at: now,
                actor: bucket.actor.clone(),
                action: d.action.into(),
                rollout_id: None,
                subject: format!("{method} {path}"),
                reason: key.reason.clone(),
                detail: serde_json::json!({
                    "method": method,
                    "path": path,
                    "status": d.status,
                    "source": key.source,
                    "sampled": format!("the first of this source and reason this minute; more are counted in {}.repeated", d.action),
                    "extra": bounded(&d.extra),
                }),
            });
        }
        out
    }

    /// The closing rows of the current minute if it is over at `now` (the API calls this
    /// every minute, so a burst's count is written even when nothing follows it).
    pub fn flush(&self, now: DateTime<Utc>) -> Vec<AuditEntry> {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        match w.start {
            Some(s) if s != minute(now) => {
                w.start = None;
                close(&mut w, now)
            }
            _ => Vec::new(),
        }
    }

    /// The closing rows of the current minute, whether it is over or not (shutdown).
    pub fn flush_all(&self, now: DateTime<Utc>) -> Vec<AuditEntry> {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        w.start = None;
        close(&mut w, now)
    }
}

/// `extra` with long strings cut (it holds codes and group lists, but only ever short).
fn bounded(v: &serde_json::Value) -> serde_json::Value {
    let text = v.to_string();
    if text.len() <= MAX_TEXT {
        v.clone()
    } else {
        serde_json::Value::String(cut(&text, MAX_TEXT))
    }
}

/// The `.repeated` rows of the minute: one per key that repeated, at the last repeat,
/// spanning the repeats themselves (not the minute, nor when the row is written).
fn close(w: &mut Window, now: DateTime<Utc>) -> Vec<AuditEntry> {
    let mut rows: Vec<AuditEntry> = w
        .buckets
        .drain()
        .filter_map(|(k, b)| {
            let (from, to) = b.repeats.unwrap_or((now, now));
            (b.count > 1).then(|| AuditEntry {
                at: to,
                actor: b.actor,
                action: format!("{}.repeated", k.action),
                rollout_id: None,
                subject: k.source.clone(),
                reason: k.reason,
                detail: serde_json::json!({
                    "count": b.count - 1,
                    "status": k.status,
                    "source": k.source,
                    "from": from,
                    "to": to,
                }),
            })
        })
        .collect();
    rows.sort_by(|a, b| (&a.subject, &a.action, &a.reason).cmp(&(&b.subject, &b.action, &b.reason)));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(peer: &str, path: &str) -> Denial {
        Denial {
            action: "auth.denied",
            actor: None,
            peer: peer.into(),
            method: "GET".into(),
            path: path.into(),
            status: 401,
            reason: "no bearer token".into(),
            extra: serde_json::json!({"code": "missing_token"}),
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_flood_from_one_source_is_one_row_and_a_count() {
        let log = DenialLog::default();
        let long = format!("/api/v1/rollouts/{}", "x".repeat(64 * 1024));
        let mut rows = Vec::new();
        for i in 0..1000 {
            rows.extend(log.record(
                t("2026-12-02T10:00:00Z") + TimeDelta::milliseconds(i),
                &denial("127.0.0.1", &long),
            ));
        }
        assert_eq!(rows.len(), 1);
        assert!(rows[0].subject.len() <= MAX_PATH + 20, "{}", rows[0].subject.len());
        assert_eq!(rows[0].rollout_id, None, "a path is never a rollout id");
        let closing = log.flush(t("2026-12-02T10:01:00Z"));
        assert_eq!(closing.len(), 1);
        assert_eq!(closing[0].action, "auth.denied.repeated");
        assert_eq!(closing[0].detail["count"], 999);
        assert!(log.flush(t("2026-12-02T10:02:00Z")).is_empty());
    }

    #[test]
    fn many_sources_share_one_other_key_beyond_the_cap() {
        let log = DenialLog::default();
        let now = t("2026-12-02T10:00:00Z");
        let rows: usize = (0..10_000)
            .map(|i| {
                log.record(now, &denial(&format!("10.0.{}.{}", i / 256, i % 256), "/x"))
                    .len()
            })
            .sum();
        assert_eq!(rows, MAX_KEYS + 1);
        let closing = log.flush_all(now);
        assert_eq!(closing.len(), 1, "only the shared key repeated");
        assert_eq!(closing[0].subject, "other");
    }

    #[test]
    fn a_repeated_row_spans_its_repeats_not_the_minute_nor_the_flush() {
        let log = DenialLog::default();
        for at in ["2026-12-02T16:33:00Z", "2026-12-02T16:33:05Z", "2026-12-02T16:33:12Z"] {
            log.record(t(at), &denial("127.0.0.1", "/x"));
        }
        let rows = log.flush_all(t("2026-12-02T16:33:40Z"));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].action, "auth.denied.repeated");
        assert_eq!(rows[0].detail["count"], 2);
        assert_eq!(rows[0].detail["from"], "2026-12-02T16:33:05Z");
        assert_eq!(rows[0].detail["to"], "2026-12-02T16:33:12Z");
        assert_eq!(rows[0].at, t("2026-12-02T16:33:12Z"));
    }

    #[test]
    fn sign_ins_are_sampled_apart_from_refusals() {
        let log = DenialLog::default();
        let now = t("2026-12-02T10:00:00Z");
        let sign_in = Denial {
            action: "session.created",
            actor: Some("viewer".into()),
            status: 201,
            reason: "signed in with a token".into(),
            ..denial("127.0.0.1", "/api/v1/session")
        };
        let mut rows = Vec::new();
        for _ in 0..10_050 {
            rows.extend(log.record(now, &sign_in));
        }
        rows.extend(log.record(now, &denial("127.0.0.1", "/x")));
        let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, ["session.created", "auth.denied"]);
        let closing = log.flush_all(now);
        assert_eq!(closing.len(), 1);
        assert_eq!(closing[0].action, "session.created.repeated");
        assert_eq!(closing[0].detail["count"], 10_049);
    }

    #[test]
    fn cut_keeps_character_boundaries() {
        assert_eq!(cut("héllo", 3), "…");
        assert_eq!(cut("hello", 5), "hello");
        assert!(cut(&"é".repeat(100), 11).len() <= 11);
    }
}
