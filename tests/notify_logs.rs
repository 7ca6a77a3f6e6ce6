//! Webhook URLs are secrets: whatever goes wrong with a webhook, the logs (every level,
//! ringmaster's and its libraries', `log` records included) name its host only.
//! Its own binary: it installs the process-wide subscriber.

mod notify_support;

use notify_support::Receiver;
use ringmaster::clock::SystemClock;
use ringmaster::engine::NotifyEvent;
use ringmaster::notify::{DeliveryOptions, WebhookConfig, WebhookFormat, WebhookNotifier};
use ringmaster::runtime::Notifier;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

const SECRETS: [&str; 6] = [
    "PATHSECRET1",
    "PATHSECRET2",
    "PATHSECRET3",
    "PATHSECRET4",
    "SIGSECRET5",
    "PATHSECRET6",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_webhook_url_secret_in_any_log_line() {
    let logs = Captured::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish()
        .try_init()
        .expect("the only subscriber in this binary");

    let rx = Receiver::start().await;
    // A port nobody listens on: connection refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let hooks = vec![
        WebhookConfig::new(rx.url("/fail/services/T0/B0/PATHSECRET1"), WebhookFormat::Slack),
        WebhookConfig::new(rx.url("/bad/PATHSECRET2"), WebhookFormat::Generic),
        WebhookConfig::new(rx.url("/hang/PATHSECRET3"), WebhookFormat::Generic),
        WebhookConfig::new(format!("http://{closed}/PATHSECRET4"), WebhookFormat::Generic),
        WebhookConfig::new(
            rx.url("/fail/workflows/invoke?api-version=2016-06-01&sig=SIGSECRET5"),
            WebhookFormat::Teams,
        ),
        WebhookConfig::new(rx.url("/ok/PATHSECRET6"), WebhookFormat::Generic),
    ];
    let options = DeliveryOptions {
        queue_capacity: 1,
        max_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        request_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
    };
    let n = WebhookNotifier::new(hooks, options, Arc::new(SystemClock)).unwrap();
    // Enough to overflow the queues too (the "dropped" warnings).
    for _ in 0..5 {
        n.notify(NotifyEvent::GateFailed, Some("staging"), None, "gate failed");
    }
    assert!(n.wait_idle(Duration::from_secs(20)).await, "{:?}", n.stats());
    tracing::info!(notifier = ?n, "debug form of the notifier");

    let text = logs.text();
    for s in SECRETS {
        assert!(!text.contains(s), "secret {s} leaked into the logs:\n{text}");
    }
    // Sanity: the failures were logged, with the host.
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(text.contains("webhook delivery failed after every attempt"), "{text}");
    assert!(text.contains("webhook refused the notification"), "{text}");
    assert!(text.contains("notification dropped"), "{text}");
    let s = n.stats();
    assert!(s.failed >= 4 && s.sent >= 1 && s.dropped >= 1, "{s:?}");
}
