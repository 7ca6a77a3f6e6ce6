//! Issue 26's stream storm: 600 event streams opened with one viewer's token, half of
//! them read, half never read, against the same daemon twice: a server with the stream
//! caps lifted (what every release before issue 26 did) and one with the default caps
//! (raised per caller, since one bench token stands for many users). While the storm
//! holds, `/healthz` (on the API's own listener and on `--probe-listen`'s) and an
//! authenticated read are called five times a second for ten seconds, each with a
//! 1-second deadline: how many got an answer, and how fast.

use super::TOKEN;
use ringmaster::api::{ApiState, Limits};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What one storm showed.
struct Storm {
    accepted: usize,
    refused: usize,
    unanswered: usize,
    healthz: (usize, usize, f64),
    probe: (usize, usize, f64),
    reads: (usize, usize, f64),
}

/// Runs the storm against `state` served with `limits`; prints one block.
pub async fn storm(label: &str, state: &ApiState, limits: Limits, read_path: &str) {
    let mut state = state.clone();
    state.limits = limits;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let probes = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let probe_addr = probes.local_addr().unwrap().to_string();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (mut a, mut b) = (stop_rx.clone(), stop_rx);
    tokio::spawn(ringmaster::api::serve(listener, state.clone(), async move {
        let _ = a.wait_for(|s| *s).await;
    }));
    tokio::spawn(ringmaster::api::serve_probes(probes, state, async move {
        let _ = b.wait_for(|s| *s).await;
    }));
    let opens: Vec<_> = (0..600).map(|i| tokio::spawn(open(addr.clone(), i % 2 == 0))).collect();
    let mut held = Vec::new();
    let (mut accepted, mut refused, mut unanswered) = (0, 0, 0);
    for o in opens {
        match o.await.unwrap() {
            (Some(status), conn) => {
                if status == 200 {
                    accepted += 1;
                } else {
                    refused += 1;
                }
                held.push(conn);
            }
            (None, conn) => {
                unanswered += 1;
                held.push(conn);
            }
        }
    }
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let (mut healthz, mut probe, mut reads) = (Vec::new(), Vec::new(), Vec::new());
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        healthz.push(call(&http, &format!("http://{addr}/healthz"), false).await);
        probe.push(call(&http, &format!("http://{probe_addr}/healthz"), false).await);
        reads.push(call(&http, &format!("http://{addr}{read_path}"), true).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let s = Storm {
        accepted,
        refused,
        unanswered,
        healthz: summary(&mut healthz),
        probe: summary(&mut probe),
        reads: summary(&mut reads),
    };
    println!("stream storm: {label}");
    println!(
        "  600 streams (300 reading, 300 never reading): {} accepted, {} refused (503), {} no answer within 2 s",
        s.accepted, s.refused, s.unanswered
    );
    for (what, (ok, n, p99)) in [
        ("/healthz on the API listener", s.healthz),
        ("/healthz on --probe-listen", s.probe),
        ("authenticated summary read", s.reads),
    ] {
        println!("  {what:<30} {ok} of {n} answered within 1 s, p99 {p99:.1} ms");
    }
    let _ = stop_tx.send(true);
    for (conn, reader) in held.into_iter().flatten() {
        drop(conn);
        if let Some(r) = reader {
            r.abort();
        }
    }
}

type Held = Option<(Option<tokio::net::TcpStream>, Option<tokio::task::JoinHandle<()>>)>;

/// Opens one stream: its status (None: no answer within 2 s) and what holds it open (a
/// reading task, or the idle connection of a subscriber that never reads).
async fn open(addr: String, reads: bool) -> (Option<u16>, Held) {
    let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await else {
        return (None, None);
    };
    let req = format!("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return (None, None);
    }
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let got = tokio::time::timeout(Duration::from_secs(2), async {
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
    })
    .await;
    let status = got
        .ok()
        .and_then(|_| String::from_utf8_lossy(&head).split_whitespace().nth(1)?.parse().ok());
    if reads && status == Some(200) {
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
        });
        return (status, Some((None, Some(task))));
    }
    (status, Some((Some(s), None)))
}

/// One call with a 1-second deadline: its latency, or None without an answer.
async fn call(http: &reqwest::Client, url: &str, auth: bool) -> Option<Duration> {
    let t = Instant::now();
    let mut req = http.get(url).timeout(Duration::from_secs(1));
    if auth {
        req = req.bearer_auth(TOKEN);
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => Some(t.elapsed()),
        _ => None,
    }
}

/// (answered, calls, p99 of the answered in ms).
fn summary(lat: &mut [Option<Duration>]) -> (usize, usize, f64) {
    let mut ok: Vec<Duration> = lat.iter().flatten().copied().collect();
    ok.sort();
    let p99 = ok
        .get(((ok.len() as f64 * 0.99) as usize).min(ok.len().saturating_sub(1)))
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
    (ok.len(), lat.len(), p99)
}
