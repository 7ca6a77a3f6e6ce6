//! The API probed as an attacker and an unlucky operator would (issue 12): refused calls
//! that cannot grow the state file, metric labels a client cannot multiply, slow
//! clients that cannot hold the server, decisions that say what they did, and answers
//! that carry the security headers and the JSON error shape whatever the status.

use crate::harness::{ALICE, Harness, OPS, code};
use reqwest::StatusCode;
use ringmaster::clock::Clock;
use ringmaster::engine::RolloutStatus;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Finding 1: 300 unauthenticated requests with 60 KiB paths used to add 300 rows of
/// ~180 KiB each (the path three times). Now: one row and a count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_calls_is_one_sampled_row_with_bounded_fields() {
    let h = Harness::start().await;
    h.store.checkpoint().unwrap();
    let before = h.store.file_size().unwrap();
    let long = format!("/api/v1/rollouts/{}/pause", "a".repeat(6 * 1024));
    for _ in 0..300 {
        let (s, _) = h.post(None, &long, json!({})).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let denied = h.audit_actions("auth.denied");
    assert_eq!(denied.len(), 1, "one row for one source and reason in a minute");
    let row = &denied[0];
    assert_eq!(row.rollout_id, None, "a refused path is never a rollout id");
    assert!(row.subject.len() <= 256, "subject is cut: {} bytes", row.subject.len());
    assert!(row.detail.to_string().len() <= 2048, "detail is bounded");
    assert_eq!(
        h.metrics.get("ringmaster_api_denied_total", &[("status", "401")]),
        300.0
    );
    // The minute closes: one more row with the count.
    h.clock.advance(chrono::Duration::minutes(1));
    for e in h.denials.flush(h.clock.now()) {
        h.store.append_audit(&e).unwrap();
    }
    let repeated = h.audit_actions("auth.denied.repeated");
    assert_eq!(repeated.len(), 1);
    assert_eq!(repeated[0].detail["count"], 299);
    h.store.checkpoint().unwrap();
    let grown = h.store.file_size().unwrap().saturating_sub(before);
    assert!(grown < 64 * 1024, "the state file grew by {grown} bytes");
}

/// Finding 3: the method label took whatever a client sent.
#[tokio::test]
async fn unknown_methods_fold_into_one_metric_series() {
    let h = Harness::start().await;
    for i in 0..50 {
        let m = reqwest::Method::from_bytes(format!("X{i}{}", "Y".repeat(100)).as_bytes()).unwrap();
        let (s, _, _) = h.call(m, None, "/healthz", None).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    }
    let text = h.metrics.render();
    let series = text
        .lines()
        .filter(|l| l.starts_with("ringmaster_api_requests_total"))
        .count();
    assert_eq!(series, 1, "{text}");
    assert!(text.contains("method=\"other\""), "{text}");
    assert!(!text.contains("YYYY"), "a client's method is no label value");
}

/// Finding 5: 25 concurrent pauses all said `accepted` while the engine applied one.
/// The engine here applies inputs a little later, as the daemon's loop does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pauses_apply_once_and_the_others_say_unchanged() {
    let h = std::sync::Arc::new(Harness::start().await);
    h.standin.defer.store(true, std::sync::atomic::Ordering::SeqCst);
    let engine = {
        let h = h.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                h.standin.flush();
            }
        })
    };
    let calls: Vec<_> = (0..25)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move {
                h.post(Some(OPS), "/api/v1/rollouts/r1/pause", json!({ "reason": "freeze" }))
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for c in calls {
        let (s, v) = c.await.unwrap();
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"]["state"], "paused", "the answer carries the state: {v}");
        results.push(v["result"].as_str().unwrap().to_string());
    }
    engine.abort();
    assert_eq!(results.iter().filter(|r| *r == "applied").count(), 1, "{results:?}");
    assert_eq!(results.iter().filter(|r| *r == "unchanged").count(), 24, "{results:?}");
    assert_eq!(h.audit_actions("api.pause").len(), 1, "recorded once");
    assert_eq!(h.audit_actions("paused").len(), 1, "applied once");
    assert_eq!(h.standin.sent.lock().unwrap().len(), 1, "sent once");
    assert!(matches!(h.standin.rollout("r1").status, RolloutStatus::Paused { .. }));
}

/// Finding 7: headers, and the JSON error shape for 413, 414, 415 and 431.
#[tokio::test]
async fn every_answer_has_security_headers_and_errors_are_json() {
    let h = Harness::start().await;
    let check = |what: &str, headers: &reqwest::header::HeaderMap| {
        assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(headers["cache-control"], "no-store", "{what}");
    };
    let (s, headers, _) = h.call(reqwest::Method::GET, None, "/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
    check("healthz", &headers);
    let (s, headers, _) = h.call(reqwest::Method::GET, Some(ALICE), "/api/v1/audit", None).await;
    assert_eq!(s, StatusCode::OK);
    check("audit", &headers);
    let (s, headers, v) = h.call(reqwest::Method::GET, None, "/api/v1/audit", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    check("401", &headers);
    assert_eq!(code(&v), "missing_token");

    // 10 MB body: 413, not 400.
    let resp = h
        .http
        .post(format!("{}/api/v1/rollouts/r1/pause", h.base))
        .bearer_auth(OPS)
        .header("content-type", "application/json")
        .body(vec![b' '; 10 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    check("413", resp.headers());
    let v: Value = resp.json().await.unwrap();
    assert_eq!(code(&v), "body_too_large");

    // A form body is not parsed as JSON.
    let resp = h
        .http
        .post(format!("{}/api/v1/rollouts/r1/pause", h.base))
        .bearer_auth(OPS)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{"reason":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(code(&v), "unsupported_media_type");
    assert!(h.standin.sent.lock().unwrap().is_empty(), "nothing was sent");

    // Long URI: JSON 414; large headers: JSON 431.
    let (s, headers, v) = h
        .call(
            reqwest::Method::GET,
            None,
            &format!("/healthz?{}", "q".repeat(20_000)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::URI_TOO_LONG);
    check("414", &headers);
    assert_eq!(code(&v), "uri_too_long");
    let resp = h
        .http
        .get(format!("{}/healthz", h.base))
        .header("x-filler", "f".repeat(30_000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(code(&v), "headers_too_large");
}

/// Audit reads are paged and bounded in bytes.
#[tokio::test]
async fn audit_pages_are_bounded_and_follow_on() {
    let h = Harness::start().await;
    let big = "r".repeat(60 * 1024);
    for i in 0..40 {
        h.store
            .append_audit(&ringmaster::store::AuditEntry {
                at: h.clock.now(),
                actor: "someone".into(),
                action: format!("test.{i}"),
                rollout_id: None,
                subject: "s".into(),
                reason: big.clone(),
                detail: Value::Null,
            })
            .unwrap();
    }
    let (s, v) = h.get(Some(ALICE), "/api/v1/audit?since=0&limit=1000").await;
    assert_eq!(s, StatusCode::OK);
    let n = v["entries"].as_array().unwrap().len();
    assert!(n < 40 && n > 0, "{n} entries in one page");
    assert!(v.to_string().len() < 1_200_000);
    assert_eq!(v["more"], true);
    let next = v["nextSince"].as_i64().unwrap();
    let (_, v2) = h
        .get(Some(ALICE), &format!("/api/v1/audit?since={next}&limit=1000"))
        .await;
    assert!(v2["entries"][0]["id"].as_i64().unwrap() > next);
}

/// `/readyz` says why the daemon is not ready; `/healthz` stays up (liveness).
#[tokio::test]
async fn readyz_is_503_with_the_reason_while_saves_fail_and_healthz_stays_up() {
    let h = Harness::start().await;
    h.health
        .persist_failed("database or disk is full".into(), h.clock.now());
    let (s, v) = h.get(None, "/readyz").await;
    assert_eq!((s, code(&v)), (StatusCode::SERVICE_UNAVAILABLE, "persist_failed"));
    assert!(v["error"]["message"].as_str().unwrap().contains("disk is full"), "{v}");
    let (s, _) = h.get(None, "/healthz").await;
    assert_eq!(s, StatusCode::OK);
    h.health.persisted();
    let (s, _) = h.get(None, "/readyz").await;
    assert_eq!(s, StatusCode::OK);
}

/// The body limit is the documented 64 KiB (`Limits::body_bytes`, docs and OpenAPI), not
/// axum's own 2 MB default: a JSON body of exactly 64 KiB is taken, one byte more is a
/// JSON 413 that sends nothing. (A 10 MB body, above, is refused by either limit.)
#[tokio::test]
async fn the_body_limit_is_64_kib_exactly() {
    let h = Harness::start().await;
    let limit = 64 * 1024;
    assert_eq!(ringmaster::api::Limits::default().body_bytes, limit);
    let padded = |len: usize| {
        let mut body = br#"{"reason":"a long comment"}"#.to_vec();
        body.resize(len, b' ');
        body
    };
    let pause = |body: Vec<u8>| {
        h.http
            .post(format!("{}/api/v1/rollouts/r1/pause", h.base))
            .bearer_auth(OPS)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let over = pause(padded(limit + 1)).await.unwrap();
    assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = over.json().await.unwrap();
    assert_eq!(code(&v), "body_too_large");
    assert!(h.standin.sent.lock().unwrap().is_empty(), "nothing was sent");
    let at = pause(padded(limit)).await.unwrap();
    assert_eq!(at.status(), StatusCode::OK, "{:?}", at.text().await);
    assert_eq!(h.standin.sent.lock().unwrap().len(), 1, "the pause was sent");
}

fn short_limits() -> ringmaster::api::Limits {
    ringmaster::api::Limits {
        max_connections: 64,
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        ..Default::default()
    }
}

/// Reads until the server closes the connection (or `within` passes: then false).
async fn closed_within(s: &mut tokio::net::TcpStream, within: Duration) -> (bool, String) {
    let mut buf = Vec::new();
    let r = tokio::time::timeout(within, s.read_to_end(&mut buf)).await;
    (r.is_ok(), String::from_utf8_lossy(&buf).to_string())
}

/// Finding 4: a connection that sends half a header is closed after the header timeout;
/// many of them don't keep `/healthz` from answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_heads_are_closed_and_do_not_starve_healthz() {
    let limits = ringmaster::api::Limits {
        max_connections: 512,
        ..short_limits()
    };
    let h = Harness::start_limited(limits).await;
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /api/v1/rollouts HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    let t = Instant::now();
    let (s, _) = h.get(None, "/healthz").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "healthz took {:?}",
        t.elapsed()
    );
    // Each half-sent head is dropped by the server within the timeout (+ slack).
    for s in &mut slow {
        let (closed, _) = closed_within(s, Duration::from_secs(5)).await;
        assert!(closed, "a half-sent request was kept open");
    }
    // A body that never finishes: 408 with the JSON shape.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/rollouts/r1/pause HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPS}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"reason\""
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (closed, answer) = closed_within(&mut s, Duration::from_secs(5)).await;
    assert!(closed, "a half-sent body was kept open");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    assert!(h.standin.sent.lock().unwrap().is_empty());
}

/// Connections beyond the limit wait for a slot instead of taking file descriptors; the
/// slots come back as the header timeout closes idle ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_wait_and_are_served_once_slots_free() {
    let limits = ringmaster::api::Limits {
        max_connections: 8,
        ..short_limits()
    };
    let h = Harness::start_limited(limits).await;
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let t = Instant::now();
    let (s, _) = h.get(None, "/healthz").await;
    assert_eq!(s, StatusCode::OK);
    let waited = t.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "served once the idle ones timed out ({waited:?})"
    );
}

/// An engine that does not apply a decision in time gets it once: the caller hears
/// `queued` (202), and asking again hears `queued` without a second record or send.
#[tokio::test]
async fn a_decision_not_applied_in_time_is_queued_once() {
    let h = Harness::start().await;
    h.standin.defer.store(true, std::sync::atomic::Ordering::SeqCst);
    let (s, v) = h.post(Some(OPS), "/api/v1/rollouts/r1/pause", json!({})).await;
    assert_eq!((s, v["result"].as_str()), (StatusCode::ACCEPTED, Some("queued")), "{v}");
    let (s, v) = h.post(Some(OPS), "/api/v1/rollouts/r1/pause", json!({})).await;
    assert_eq!((s, v["result"].as_str()), (StatusCode::ACCEPTED, Some("queued")), "{v}");
    assert_eq!(h.audit_actions("api.pause").len(), 1);
    assert_eq!(h.standin.sent.lock().unwrap().len(), 1);
    h.standin.flush();
    let (s, v) = h.post(Some(OPS), "/api/v1/rollouts/r1/pause", json!({})).await;
    assert_eq!((s, v["result"].as_str()), (StatusCode::OK, Some("unchanged")), "{v}");
}

/// Finding 2, the API side: a read the store fails is a 503 the caller sees, never an
/// empty list.
#[tokio::test]
async fn a_failing_state_read_is_503_not_an_empty_list() {
    let h = Harness::start().await;
    h.standin.fail_reads.store(true, std::sync::atomic::Ordering::SeqCst);
    for path in ["/api/v1/rollouts", "/api/v1/rollouts/r1"] {
        let (s, v) = h.get(Some(ALICE), path).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            "{path}: {v}"
        );
        assert!(v["error"]["message"].as_str().unwrap().contains("malformed"), "{v}");
    }
}

/// Opens `GET /api/v1/events` on a raw connection with `token` and reads the answer's
/// head; the connection stays open (and is never read again: a subscriber that stalls).
async fn open_stream(addr: &str, token: &str) -> (tokio::net::TcpStream, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read = async {
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("an answer's head within 5 s");
    (s, String::from_utf8_lossy(&head).to_string())
}

fn stream_limits() -> ringmaster::api::Limits {
    ringmaster::api::Limits {
        max_connections: 40,
        max_streams: 20,
        max_streams_per_caller: 100,
        ..short_limits()
    }
}

/// Issue 26, finding 1: event streams never end and counted against the connection
/// cap, so one viewer's 600 streams took every connection: `/healthz`, reads and an
/// operator's decision got no answer. Now streams have a cap of their own below the
/// connection cap (503 `too_many_streams`, with Retry-After), and the rest of the
/// connections serve everything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_cannot_take_every_connection() {
    let h = Harness::start_limited(stream_limits()).await;
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for i in 0..40 {
        let (s, head) = open_stream(&addr, crate::harness::VIEWER).await;
        if i < 20 {
            assert!(head.starts_with("HTTP/1.1 200"), "stream {i}: {head}");
            assert!(head.contains("text/event-stream"), "{head}");
        } else {
            assert!(head.starts_with("HTTP/1.1 503"), "stream {i}: {head}");
            assert!(head.to_ascii_lowercase().contains("retry-after: 30"), "{head}");
            assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
        }
        held.push(s);
    }
    // The held streams keep their connections, refused ones are closed: the rest
    // serve a probe, a read and a decision at once.
    let t = Instant::now();
    let (s, _) = h.get(None, "/healthz").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = h.get(Some(crate::harness::VIEWER), "/api/v1/rollouts").await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = h
        .post(Some(OPS), "/api/v1/rollouts/r1/pause", json!({"reason": "x"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(t.elapsed() < Duration::from_secs(5), "answered in {:?}", t.elapsed());
    let (s, v) = h.get(Some(ALICE), "/api/v1/events").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::SERVICE_UNAVAILABLE, "too_many_streams"),
        "{v}"
    );
    let (_, metrics) = h.get(Some(ALICE), "/metrics").await;
    let text = metrics.as_str().unwrap_or_default();
    assert!(text.contains("ringmaster_api_event_streams 20"), "{text}");
    assert!(
        text.contains("ringmaster_api_event_streams_refused_total{limit=\"total\"}"),
        "{text}"
    );
}

/// One caller cannot take the streams of everyone: beyond its own cap its streams are
/// refused while another caller still gets one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_caller_cannot_take_every_stream() {
    let limits = ringmaster::api::Limits {
        max_streams_per_caller: 2,
        ..stream_limits()
    };
    let h = Harness::start_limited(limits).await;
    let addr = h.base.trim_start_matches("http://").to_string();
    let (_a, first) = open_stream(&addr, crate::harness::VIEWER).await;
    let (_b, second) = open_stream(&addr, crate::harness::VIEWER).await;
    assert!(first.starts_with("HTTP/1.1 200") && second.starts_with("HTTP/1.1 200"));
    let (s, v) = h.get(Some(crate::harness::VIEWER), "/api/v1/events").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::SERVICE_UNAVAILABLE, "too_many_streams"),
        "{v}"
    );
    assert!(v["error"]["message"].as_str().unwrap().contains("this caller"), "{v}");
    let (_c, other) = open_stream(&addr, ALICE).await;
    assert!(other.starts_with("HTTP/1.1 200"), "{other}");
}

/// A stream ends after its lifetime even when its subscriber never reads: its slot
/// comes back (the browser reconnects; a stalled client is gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_after_its_lifetime_and_frees_its_slot() {
    let limits = ringmaster::api::Limits {
        max_streams: 3,
        stream_lifetime: Duration::from_secs(1),
        ..stream_limits()
    };
    let h = Harness::start_limited(limits).await;
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let (s, head) = open_stream(&addr, crate::harness::VIEWER).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        stalled.push(s);
    }
    let (_, refused) = open_stream(&addr, ALICE).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    let t = Instant::now();
    loop {
        let (_s, head) = open_stream(&addr, ALICE).await;
        if head.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no slot came back: {head}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And a reader sees its stream end (the page then reconnects).
    let (mut s, _) = open_stream(&addr, OPS).await;
    let (closed, body) = closed_within(&mut s, Duration::from_secs(10)).await;
    assert!(closed, "the stream did not end");
    assert!(body.contains("event: hello"), "{body}");
}

/// With `--probe-listen`, the probes have a listener no API connection can take: with
/// every API connection held, the probe still answers at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_listener_answers_when_every_api_connection_is_taken() {
    let limits = ringmaster::api::Limits {
        max_connections: 10,
        max_streams: 10,
        ..stream_limits()
    };
    let h = Harness::start_limited(limits).await;
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..10 {
        let (s, head) = open_stream(&addr, crate::harness::VIEWER).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        held.push(s);
    }
    for path in ["/healthz", "/readyz"] {
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            h.http.get(format!("{}{path}", h.probe_base)).send(),
        )
        .await
        .expect("the probe answers while the API is full")
        .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let r = h
        .http
        .get(format!("{}/api/v1/rollouts", h.probe_base))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "the probe listener serves probes only"
    );
}

/// A subscriber that falls more than `events::CAPACITY` events behind gets `dropped`
/// (with how many it missed) and its stream ends; the daemon never waits for it. On a
/// current-thread runtime the publishing below runs without letting the stream's task
/// read in between, so the subscriber is certain to fall behind.
#[tokio::test]
async fn a_subscriber_too_far_behind_is_told_dropped_and_cut() {
    let h = Harness::start().await;
    let mut r = h
        .http
        .get(format!("{}/api/v1/events", h.base))
        .bearer_auth(crate::harness::VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let first = r.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: hello"));
    let rollout = h.standin.rollout("r1");
    let extra = 100;
    for _ in 0..ringmaster::events::CAPACITY + extra {
        h.events.publish(&rollout, &[]);
    }
    let mut body = String::new();
    let read = async {
        while let Some(c) = r.chunk().await.unwrap() {
            body.push_str(&String::from_utf8_lossy(&c));
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the stream ends after `dropped`");
    assert!(body.contains("event: dropped"), "{body}");
    assert!(body.contains(&format!("\"missed\":{extra}")), "{body}");
    assert!(
        !body.contains("event: transition"),
        "nothing after the gap is sent as if whole"
    );
}
