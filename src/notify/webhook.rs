//! [`WebhookNotifier`]: a bounded queue and one delivery task per webhook.

use super::payload::{self, Notification};
use super::{NotifyError, WebhookConfig, WebhookFormat};
use crate::clock::Clock;
use crate::domain::fleet::ClusterId;
use crate::engine::NotifyEvent;
use crate::identity::Redacted;
use crate::runtime::Notifier;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// How webhooks are delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOptions {
    /// Notifications waiting per webhook; beyond that new ones are dropped (and counted).
    pub queue_capacity: usize,
    /// Attempts per notification, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time, with jitter.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts (also caps a `Retry-After`).
    pub max_backoff: Duration,
    /// Whole request, from connecting to the end of the answer.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for DeliveryOptions {
    /// 256 queued per webhook; 6 attempts over about a minute and a half (1, 2, 4, 8,
    /// 16 s before jitter); 10 s per request.
    fn default() -> Self {
        DeliveryOptions {
            queue_capacity: 256,
            max_attempts: 6,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Totals over every webhook, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NotifyStats {
    /// Posts a webhook accepted (2xx).
    pub sent: u64,
    /// Notifications given up on (attempts exhausted, or refused with a 4xx).
    pub failed: u64,
    /// Notifications never queued (queue full, or delivery stopped).
    pub dropped: u64,
    /// Attempts after the first.
    pub retries: u64,
    /// Queued or being delivered now.
    pub pending: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    retries: AtomicU64,
    pending: AtomicU64,
    idle: tokio::sync::Notify,
}

impl Counters {
    fn done_one(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// What `notify` needs of one webhook.
struct Hook {
    index: usize,
    host: String,
    config: WebhookConfig,
    tx: mpsc::Sender<Arc<Notification>>,
    dropped: AtomicU64,
}

struct Inner {
    hooks: Vec<Hook>,
    counters: Arc<Counters>,
    clock: Arc<dyn Clock>,
}

/// Posts notifications to webhooks without ever making the caller wait.
///
/// Cheap to clone; clones share the queues. [`WebhookNotifier::for_rollout`] gives a
/// handle that stamps a rollout id into what it sends. Delivery tasks end when every
/// handle is gone and their queues are empty.
#[derive(Clone)]
pub struct WebhookNotifier {
    inner: Arc<Inner>,
    rollout: Option<Arc<str>>,
}

impl std::fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts: Vec<&str> = self.inner.hooks.iter().map(|h| h.host.as_str()).collect();
        f.debug_struct("WebhookNotifier")
            .field("webhooks", &hosts)
            .field("rollout", &self.rollout)
            .finish()
    }
}

impl WebhookNotifier {
    /// Validates every webhook and starts one delivery task per webhook (on the current
    /// tokio runtime). `clock` stamps the notifications' `at`.
    pub fn new(
        webhooks: Vec<WebhookConfig>,
        options: DeliveryOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, NotifyError> {
        for w in &webhooks {
            w.validate()?;
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| NotifyError::Client("webhook delivery needs a tokio runtime".into()))?;
        crate::identity::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(options.connect_timeout)
            // A webhook has no business redirecting; following one could carry the
            // payload somewhere the configuration never named.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ringmaster/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError::Client(e.without_url().to_string()))?;
        let counters = Arc::new(Counters::default());
        let options = Arc::new(options);
        let mut hooks = Vec::with_capacity(webhooks.len());
        for (index, config) in webhooks.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
            let host = config.host();
            let worker = Worker {
                index,
                host: host.clone(),
                url: config.url.clone(),
                format: config.format,
                client: client.clone(),
                options: options.clone(),
                counters: counters.clone(),
            };
            runtime.spawn(worker.run(rx));
            hooks.push(Hook {
                index,
                host,
                config,
                tx,
                dropped: AtomicU64::new(0),
            });
        }
        if !hooks.is_empty() {
            let hosts: Vec<&str> = hooks.iter().map(|h| h.host.as_str()).collect();
            info!(webhooks = ?hosts, "webhook notifications on");
        }
        Ok(WebhookNotifier {
            inner: Arc::new(Inner { hooks, counters, clock }),
            rollout: None,
        })
    }

    /// A handle that puts `rollout` in what it sends (same queues).
    pub fn for_rollout(&self, rollout: impl Into<String>) -> WebhookNotifier {
        WebhookNotifier {
            inner: self.inner.clone(),
            rollout: Some(Arc::from(rollout.into())),
        }
    }

    pub fn stats(&self) -> NotifyStats {
        let c = &self.inner.counters;
        NotifyStats {
            sent: c.sent.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            pending: c.pending.load(Ordering::Acquire),
        }
    }

    /// Waits until nothing is queued or in flight, at most `max` (at shutdown, to give
    /// pending notifications a chance). True when idle.
    pub async fn wait_idle(&self, max: Duration) -> bool {
        let c = &self.inner.counters;
        let deadline = tokio::time::Instant::now() + max;
        loop {
            let notified = c.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if c.pending.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return c.pending.load(Ordering::Acquire) == 0;
            }
        }
    }

    /// Queues a notification for every webhook that wants it. Never waits.
    pub fn send(&self, n: Notification) {
        let n = Arc::new(n);
        let c = &self.inner.counters;
        for hook in self.inner.hooks.iter().filter(|h| h.config.wants(n.event)) {
            c.pending.fetch_add(1, Ordering::AcqRel);
            if hook.tx.try_send(n.clone()).is_err() {
                c.done_one();
                c.dropped.fetch_add(1, Ordering::Relaxed);
                let k = hook.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // 1, 2, 4, 8, ...: a stuck webhook cannot flood the log either.
                if k.is_power_of_two() {
                    warn!(webhook = hook.index, host = %hook.host, event = payload::event_name(n.event), dropped = k,
                        "webhook queue full (the webhook is slow or failing): notification dropped");
                }
            }
        }
    }
}

impl Notifier for WebhookNotifier {
    fn notify(&self, event: NotifyEvent, ring: Option<&str>, cluster: Option<&ClusterId>, message: &str) {
        if !self.inner.hooks.iter().any(|h| h.config.wants(event)) {
            return;
        }
        self.send(Notification {
            event,
            rollout: self.rollout.as_deref().map(str::to_string),
            ring: ring.map(str::to_string),
            cluster: cluster.cloned(),
            message: message.to_string(),
            at: self.inner.clock.now(),
        });
    }
}

/// One webhook's delivery task.
struct Worker {
    index: usize,
    host: String,
    url: Redacted,
    format: WebhookFormat,
    client: reqwest::Client,
    options: Arc<DeliveryOptions>,
    counters: Arc<Counters>,
}

/// How one attempt went.
enum Attempt {
    Delivered,
    /// Worth another try; the reason (never with the URL), and the server's Retry-After.
    Retry(String, Option<Duration>),
    /// The webhook refused it for good (a 4xx other than 408/425/429, or a redirect).
    Refused(String),
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Arc<Notification>>) {
        while let Some(n) = rx.recv().await {
            self.deliver(&n).await;
            self.counters.done_one();
        }
    }

    async fn deliver(&self, n: &Notification) {
        let body = payload::render(n, self.format);
        let event = payload::event_name(n.event);
        let max = self.options.max_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=max {
            match self.attempt(&body).await {
                Attempt::Delivered => {
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    debug!(webhook = self.index, host = %self.host, event, attempt, "webhook notification delivered");
                    return;
                }
                Attempt::Refused(reason) => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    warn!(webhook = self.index, host = %self.host, event, error = %reason,
                        "webhook refused the notification; not retrying");
                    return;
                }
                Attempt::Retry(reason, retry_after) => {
                    if attempt < max {
                        let wait = self.backoff(attempt, retry_after);
                        debug!(webhook = self.index, host = %self.host, event, attempt, error = %reason,
                            wait_ms = wait.as_millis() as u64, "webhook delivery failed; retrying");
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(wait).await;
                    }
                    last = reason;
                }
            }
        }
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        warn!(webhook = self.index, host = %self.host, event, attempts = max, error = %last,
            "webhook delivery failed after every attempt; notification dropped");
    }

    async fn attempt(&self, body: &serde_json::Value) -> Attempt {
        let sent = self.client.post(self.url.0.trim()).json(body).send().await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return Attempt::Retry(self.describe(e), None),
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) if status.is_success() => return Attempt::Retry(self.describe(e), None),
            Err(_) => String::new(),
        };
        let said = scrub(&payload::truncate(text.trim(), 200), &self.url.0);
        let code = status.as_u16();
        if status.is_success() {
            // Teams connectors answer throttling with 200 and this text in the body.
            if text.contains("HTTP error 429") {
                return Attempt::Retry(format!("HTTP {code}, throttled: {said}"), retry_after);
            }
            return Attempt::Delivered;
        }
        let reason = if said.is_empty() {
            format!("HTTP {code}")
        } else {
            format!("HTTP {code}: {said}")
        };
        match code {
            408 | 425 | 429 | 500..=599 => Attempt::Retry(reason, retry_after),
            _ => Attempt::Refused(reason),
        }
    }

    /// A transport error, described without the URL.
    fn describe(&self, e: reqwest::Error) -> String {
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "request failed"
        };
        let e = e.without_url();
        let mut out = format!("{kind}: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            out.push_str(&format!(": {s}"));
            source = s.source();
        }
        scrub(&out, &self.url.0)
    }

    /// Exponential backoff with jitter: half the step fixed, half random, capped;
    /// a server's Retry-After is honoured up to the cap.
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let o = &self.options;
        let step = o
            .initial_backoff
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(o.max_backoff);
        let jittered = step / 2 + step.mul_f64(random_unit() / 2.0);
        retry_after.map_or(jittered, |r| r.max(jittered)).min(o.max_backoff)
    }
}

/// A number in [0, 1) that differs between calls (std's randomly keyed hasher; no
/// dependency for jitter).
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(SEQ.fetch_add(1, Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Removes the URL and its secret parts (path, query, and each longer path segment and
/// query value on its own) from a message, should any library have put them there.
/// Over-redacts rather than under.
fn scrub(msg: &str, url: &str) -> String {
    let mut out = msg.replace(url.trim(), "<webhook>");
    if let Ok(u) = reqwest::Url::parse(url.trim()) {
        let mut parts: Vec<String> = Vec::new();
        if u.path().len() > 1 {
            parts.push(u.path().to_string());
        }
        if let Some(q) = u.query().filter(|q| !q.is_empty()) {
            parts.push(q.to_string());
            for pair in q.split('&') {
                let value = pair.split_once('=').map_or(pair, |(_, v)| v);
                if value.len() >= 4 {
                    parts.push(value.to_string());
                }
            }
            for (_, v) in u.query_pairs() {
                if v.len() >= 4 {
                    parts.push(v.into_owned());
                }
            }
        }
        parts.extend(u.path().split('/').filter(|s| s.len() >= 6).map(str::to_string));
        if let Some(p) = u.password() {
            parts.push(p.to_string());
        }
        // Longest first, so a part is not broken up by a shorter one inside it.
        parts.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in parts {
            out = out.replace(&p, "<redacted>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_path_and_query() {
        let url = "https://prod-1.westeurope.logic.azure.com/workflows/abc123/triggers/manual/paths/invoke?api-version=2016-06-01&sig=SECRETSIG";
        let msg = format!("error for {url} and path /workflows/abc123/triggers/manual/paths/invoke and sig=SECRETSIG");
        let s = scrub(&msg, url);
        assert!(!s.contains("SECRETSIG") && !s.contains("abc123"), "{s}");
    }

    #[test]
    fn backoff_grows_has_jitter_and_is_capped() {
        let w = Worker {
            index: 0,
            host: "h".into(),
            url: Redacted("https://h/x".into()),
            format: WebhookFormat::Generic,
            client: {
                crate::identity::install_crypto_provider();
                reqwest::Client::new()
            },
            options: Arc::new(DeliveryOptions {
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                ..DeliveryOptions::default()
            }),
            counters: Arc::default(),
        };
        for attempt in 1..=10 {
            let step = Duration::from_millis(100 * (1 << (attempt - 1))).min(Duration::from_secs(1));
            let d = w.backoff(attempt, None);
            assert!(d >= step / 2 && d <= step, "attempt {attempt}: {d:?}");
        }
        let samples: std::collections::BTreeSet<Duration> = (0..20).map(|_| w.backoff(3, None)).collect();
        assert!(samples.len() > 1, "no jitter");
        assert_eq!(
            w.backoff(1, Some(Duration::from_secs(30))),
            Duration::from_secs(1),
            "Retry-After capped"
        );
        assert!(w.backoff(1, Some(Duration::from_millis(700))) >= Duration::from_millis(700));
    }
}
