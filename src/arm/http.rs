//! The ARM transport: bearer tokens, the client-side budget, and retries.
//!
//! - 429: wait what `retry-after-ms` / `Retry-After` says (the request was not
//!   processed, so sending it again is safe), for reads and writes alike.
//! - 5xx and connection errors on reads: exponential backoff with jitter and a cap.
//! - A write is never re-sent blindly: after a 5xx or a connection error that may have
//!   reached the server, the error goes back to the caller, who reads the resource
//!   first (see `client.rs`).
//! - 401: one retry with a freshly obtained token.
//!
//! Only URLs on the configured ARM host are called with a token: a `nextLink` or an
//! operation URL pointing elsewhere is refused.

use super::budget::Budget;
use super::error::{ArmError, parse_error_body};
use crate::clock::Clock;
use crate::identity::{ARM_SCOPE, TokenSource};
use crate::metrics::Metrics;
use bytes::Bytes;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing::{debug, warn};

/// How hard to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts for a read that meets 5xx or connection errors.
    pub max_attempts: u32,
    /// 429 answers tolerated for one call before giving up.
    pub max_throttled: u32,
    pub base: Duration,
    pub cap: Duration,
    /// Wait for a 429 that names no Retry-After.
    pub default_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            max_throttled: 50,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            default_retry_after: Duration::from_secs(10),
        }
    }
}

/// Counters, for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct ArmStats {
    pub calls: AtomicU64,
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub throttled: AtomicU64,
    pub retries: AtomicU64,
    pub token_refreshes: AtomicU64,
}

impl ArmStats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// A raw answer.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// How long the server asked us to wait (`retry-after-ms` first, then `Retry-After`),
    /// at most [`MAX_RETRY_AFTER`]; a value that is not a number of seconds is ignored.
    pub fn retry_after(&self) -> Option<Duration> {
        if let Some(ms) = self
            .header("retry-after-ms")
            .or(self.header("x-ms-retry-after-ms"))
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Some(Duration::from_millis(ms).min(MAX_RETRY_AFTER));
        }
        self.header("retry-after")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(MAX_RETRY_AFTER.as_secs_f64())))
    }
}

/// The longest wait a `Retry-After` can impose (a broken or hostile value must not park
/// a step for ever).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub struct ArmHttp {
    http: reqwest::Client,
    base: String,
    host: String,
    tokens: Arc<dyn TokenSource>,
    clock: Arc<dyn Clock>,
    budget: Budget,
    policy: RetryPolicy,
    pub stats: ArmStats,
    jitter: AtomicU64,
    /// Where each request's latency goes ([`super::telemetry`]); unset, nowhere.
    metrics: OnceLock<Arc<Metrics>>,
}

/// The subscription a path or URL belongs to (for the budget).
fn subscription_of(url: &str) -> &str {
    let lower = url.find("/subscriptions/").map(|i| &url[i + "/subscriptions/".len()..]);
    lower.and_then(|s| s.split(['/', '?']).next()).unwrap_or("")
}

fn path_of(url: &str) -> String {
    let no_query = url.split('?').next().unwrap_or(url);
    match no_query.find("://") {
        Some(i) => no_query[i + 3..]
            .find('/')
            .map_or("/".into(), |j| no_query[i + 3 + j..].to_string()),
        None => no_query.to_string(),
    }
}

impl ArmHttp {
    pub fn new(
        http: reqwest::Client,
        base: &str,
        tokens: Arc<dyn TokenSource>,
        clock: Arc<dyn Clock>,
        budget: Budget,
        policy: RetryPolicy,
    ) -> Self {
        let base = base.trim_end_matches('/').to_string();
        let host = base
            .split("://")
            .nth(1)
            .unwrap_or(&base)
            .split('/')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        Self {
            http,
            base,
            host,
            tokens,
            clock,
            budget,
            policy,
            stats: ArmStats::default(),
            jitter: AtomicU64::new(0x2545_F491_4F6C_DD1D),
            metrics: OnceLock::new(),
        }
    }

    /// Times every request from now on in `m` (the daemon's metrics). A client is
    /// built before the metrics that observe it, and shared: only the first call counts.
    pub fn set_metrics(&self, m: Arc<Metrics>) {
        super::telemetry::describe(&m);
        let _ = self.metrics.set(m);
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// A full URL for an ARM path, with the api-version.
    pub fn url(&self, path: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{sep}api-version={}", self.base, super::API_VERSION)
    }

    /// A URL for a path that carries its own `api-version` (another resource provider's).
    pub fn url_as_is(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    fn check_host(&self, url: &str, method: &Method) -> Result<(), ArmError> {
        let host = url
            .split("://")
            .nth(1)
            .unwrap_or("")
            .split('/')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if host != self.host {
            return Err(ArmError::Decode {
                method: method.to_string(),
                path: path_of(url),
                message: format!("refusing to send credentials to {host}, which is not the ARM endpoint"),
            });
        }
        Ok(())
    }

    /// A random factor in [0.5, 1) for backoff jitter (xorshift; no clock, no OS entropy).
    fn jitter(&self) -> f64 {
        let mut x = self.jitter.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter.store(x, Ordering::Relaxed);
        0.5 + (x >> 11) as f64 / (1u64 << 53) as f64 / 2.0
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .policy
            .base
            .saturating_mul(1u32 << attempt.min(16).saturating_sub(1));
        exp.min(self.policy.cap).mul_f64(self.jitter())
    }

    /// Sends one logical call, retrying as the module doc says.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<RawResponse, ArmError> {
        self.check_host(url, &method)?;
        let write = method != Method::GET && method != Method::HEAD;
        let sub = subscription_of(url).to_string();
        let path = path_of(url);
        let operation = super::telemetry::operation(&method, &path);
        let mut attempts = 0u32;
        let mut throttled = 0u32;
        let mut refreshed = false;
        let mut refresh_next = false;
        loop {
            attempts += 1;
            self.budget.acquire(&sub, write).await;
            let token = self
                .tokens
                .token(ARM_SCOPE, std::mem::take(&mut refresh_next))
                .await
                .map_err(|e| ArmError::Auth(e.to_string()))?;
            let mut req = self.http.request(method.clone(), url).bearer_auth(token.secret());
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(b) = body {
                req = req.json(b);
            } else if write {
                req = req.header("content-length", "0");
            }
            self.stats.calls.fetch_add(1, Ordering::Relaxed);
            if write { &self.stats.writes } else { &self.stats.reads }.fetch_add(1, Ordering::Relaxed);
            // The answer in full (status, headers, body), or the error that cut it short.
            let sent = std::time::Instant::now();
            let result = async {
                let r = req.send().await?;
                let (status, headers) = (r.status().as_u16(), r.headers().clone());
                Ok::<_, reqwest::Error>(RawResponse {
                    status,
                    headers,
                    body: r.bytes().await?,
                })
            }
            .await;
            if let Some(m) = self.metrics.get() {
                let class = super::telemetry::status_class(result.as_ref().ok().map(|r| r.status));
                m.observe(
                    super::telemetry::REQUEST_DURATION,
                    &[("operation", operation), ("status_class", class)],
                    sent.elapsed().as_secs_f64(),
                );
            }
            let raw = match result {
                Err(e) => {
                    // A failure to connect never reached ARM; anything later may have.
                    let maybe_sent = !e.is_connect();
                    let message = without_url(e);
                    if write && maybe_sent {
                        return Err(ArmError::Transport {
                            method: method.to_string(),
                            path,
                            message,
                            maybe_sent,
                        });
                    }
                    if attempts >= self.policy.max_attempts {
                        return Err(ArmError::Exhausted {
                            method: method.to_string(),
                            path,
                            attempts,
                            last: message,
                        });
                    }
                    let wait = self.backoff(attempts);
                    warn!(%method, %path, attempt = attempts, wait_ms = wait.as_millis() as u64, error = %message, "ARM call failed; retrying");
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    self.clock.sleep(wait).await;
                    continue;
                }
                Ok(raw) => raw,
            };
            let status = raw.status;
            let remaining_header = if write {
                "x-ms-ratelimit-remaining-subscription-writes"
            } else {
                "x-ms-ratelimit-remaining-subscription-reads"
            };
            if let Some(n) = raw.header(remaining_header).and_then(|v| v.parse::<u32>().ok()) {
                self.budget.observe_remaining(&sub, write, n);
            }
            match status {
                401 if !refreshed => {
                    refreshed = true;
                    refresh_next = true;
                    attempts -= 1;
                    self.stats.token_refreshes.fetch_add(1, Ordering::Relaxed);
                    debug!(%method, %path, "401: getting a fresh token");
                    continue;
                }
                429 => {
                    throttled += 1;
                    attempts -= 1;
                    self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                    if throttled > self.policy.max_throttled {
                        let (code, _, message) = parse_error_body(&raw.body);
                        return Err(ArmError::Exhausted {
                            method: method.to_string(),
                            path,
                            attempts: throttled,
                            last: format!("{code}: {message}"),
                        });
                    }
                    debug!(%method, %path, retry_after = ?raw.retry_after(), "429: waiting as ARM asked");
                    self.wait_as_told(raw.retry_after(), self.policy.default_retry_after)
                        .await;
                    continue;
                }
                500..=599 if !write && attempts < self.policy.max_attempts => {
                    warn!(%method, %path, status, attempt = attempts, "ARM server error; retrying");
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    self.wait_as_told(raw.retry_after(), self.backoff(attempts)).await;
                    continue;
                }
                _ => return Ok(raw),
            }
        }
    }

    /// Waits what the server said (wall-clock time, as `Retry-After` means it), or our
    /// own `fallback` (on the injected clock) when it said nothing.
    pub(crate) async fn wait_as_told(&self, server: Option<Duration>, fallback: Duration) {
        match server {
            Some(d) => self.clock.sleep_wall(d).await,
            None => self.clock.sleep(fallback).await,
        }
    }

    /// Turns a non-2xx answer into an [`ArmError::Service`].
    pub fn error_for(method: &Method, url: &str, raw: &RawResponse) -> ArmError {
        let (code, subcode, message) = parse_error_body(&raw.body);
        ArmError::Service {
            method: method.to_string(),
            path: path_of(url),
            status: raw.status,
            code,
            subcode,
            message,
        }
    }

    /// GET and decode JSON; any non-2xx is an error.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, ArmError> {
        let raw = self.send(Method::GET, url, None, &[]).await?;
        if !(200..300).contains(&raw.status) {
            return Err(Self::error_for(&Method::GET, url, &raw));
        }
        decode(&Method::GET, url, &raw)
    }
}

pub fn decode<T: serde::de::DeserializeOwned>(method: &Method, url: &str, raw: &RawResponse) -> Result<T, ArmError> {
    serde_json::from_slice(&raw.body).map_err(|e| ArmError::Decode {
        method: method.to_string(),
        path: path_of(url),
        message: e.to_string(),
    })
}

/// reqwest's error text without the URL (which could carry a query we don't log).
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_and_path() {
        let u = "https://management.azure.com/subscriptions/abc/resourceGroups/rg?api-version=1";
        assert_eq!(subscription_of(u), "abc");
        assert_eq!(path_of(u), "/subscriptions/abc/resourceGroups/rg");
        assert_eq!(subscription_of("/providers/x"), "");
    }

    fn answer(headers: &[(&'static str, &str)]) -> RawResponse {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, v.parse().unwrap());
        }
        RawResponse {
            status: 429,
            headers: h,
            body: Bytes::new(),
        }
    }

    /// Milliseconds win; nonsense is ignored, not a panic; a huge wait is capped.
    #[test]
    fn retry_after_is_read_safely() {
        let ra = |h: &[(&'static str, &str)]| answer(h).retry_after();
        assert_eq!(
            ra(&[("retry-after", "7"), ("retry-after-ms", "250")]),
            Some(Duration::from_millis(250))
        );
        assert_eq!(ra(&[("retry-after", "1.5")]), Some(Duration::from_millis(1500)));
        for bad in ["-1", "NaN", "inf", "soon"] {
            assert_eq!(ra(&[("retry-after", bad)]), None, "{bad}");
        }
        assert_eq!(ra(&[("retry-after", "1e12")]), Some(MAX_RETRY_AFTER));
        assert_eq!(ra(&[("retry-after-ms", "99999999999")]), Some(MAX_RETRY_AFTER));
    }
}
