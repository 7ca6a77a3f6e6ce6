//! Notifications: webhooks told when a ring needs approval, a gate failed, a ring is
//! done, or a rollout finished or halted.
//!
//! [`WebhookNotifier`] implements [`crate::runtime::Notifier`]. `notify` never waits:
//! it renders the payload once and puts it on a bounded queue per webhook (when a queue
//! is full the notification is dropped and counted). One background task per webhook
//! posts them in order, with a timeout per request and a bounded number of attempts
//! spaced by exponential backoff with jitter. A webhook that fails, hangs or refuses
//! costs the rollout nothing.
//!
//! Webhook URLs are secrets (Slack's and Teams' URLs are bearer credentials in their
//! path or query): they live in [`Redacted`], and logs name a webhook by its host and
//! its position in the configuration only. In a configuration file a URL can be given
//! as `env:NAME` or `file:/path` so the secret itself stays in a Kubernetes Secret or
//! a credentials file rather than in the (readable) configuration.
//!
//! Formats: [`WebhookFormat::Generic`] (a stable JSON document, see
//! [`payload::generic`]), [`WebhookFormat::Slack`] (incoming-webhook `text` + `blocks`)
//! and [`WebhookFormat::Teams`] (a `message` with one Adaptive Card attachment, which
//! Teams incoming webhooks and Workflows "when a webhook request is received" accept).

pub mod payload;
mod webhook;

pub use payload::Notification;
pub use webhook::{DeliveryOptions, NotifyStats, WebhookNotifier};

use crate::domain::fleet::ClusterId;
use crate::engine::NotifyEvent;
use crate::identity::Redacted;
use crate::runtime::Notifier;
use serde::{Deserialize, Deserializer};
use std::sync::Arc;

/// The shape of what is posted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WebhookFormat {
    /// ringmaster's own JSON document: `version, event, rollout, ring, cluster, message, at`.
    #[default]
    Generic,
    /// A Slack incoming webhook: `text` (the notification fallback) and Block Kit `blocks`.
    Slack,
    /// A Microsoft Teams incoming webhook or Workflows webhook: a `message` with one
    /// Adaptive Card attachment.
    Teams,
}

/// One webhook, as the service configuration lists it.
///
/// ```yaml
/// webhooks:
///   - url: file:/etc/ringmaster/secrets/slack-webhook-url
///     format: slack
///     events: [approvalNeeded, gateFailed, rolloutHalted]
///   - url: env:RINGMASTER_TEAMS_WEBHOOK_URL
///     format: teams
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookConfig {
    /// Where to post: an `https://` URL, or `env:NAME` (read from the environment
    /// variable) or `file:/path` (read from the file, surrounding whitespace trimmed)
    /// when loading the configuration. A secret: never logged or printed. Plain `http://`
    /// is refused unless the host is loopback or `allowHttp` is set.
    #[serde(deserialize_with = "webhook_url")]
    pub url: Redacted,
    /// `generic` (default), `slack` or `teams`.
    #[serde(default)]
    pub format: WebhookFormat,
    /// Which events to post (`approvalNeeded`, `gateFailed`, `ringDone`, `rolloutFinished`,
    /// `rolloutHalted`, `preflightBlocked`, `rollbackStarted`, `rollbackFinished`,
    /// `stateNotSaved`, `stateSaved`); empty or absent: all of them.
    #[serde(default)]
    pub events: Vec<NotifyEvent>,
    /// Allow a plain `http://` URL to a non-loopback host (the URL, a secret, then
    /// crosses the network in clear text). Off by default.
    #[serde(default)]
    pub allow_http: bool,
}

impl WebhookConfig {
    /// A webhook for every event in `format`.
    pub fn new(url: impl Into<String>, format: WebhookFormat) -> Self {
        WebhookConfig {
            url: Redacted(url.into()),
            format,
            events: Vec::new(),
            allow_http: false,
        }
    }

    /// Whether this webhook wants `event`.
    pub fn wants(&self, event: NotifyEvent) -> bool {
        self.events.is_empty() || self.events.contains(&event)
    }

    /// The URL's host, which is all logs may say about a webhook.
    pub fn host(&self) -> String {
        host_of(&self.url.0)
    }

    /// Checks the URL (parsable, http(s), https unless loopback or `allow_http`).
    /// Errors never contain the URL.
    pub fn validate(&self) -> Result<(), NotifyError> {
        let url = reqwest::Url::parse(self.url.0.trim()).map_err(|_| NotifyError::BadUrl {
            reason: "not a valid URL".into(),
        })?;
        match url.scheme() {
            "https" => Ok(()),
            "http" if self.allow_http || is_loopback(&url) => Ok(()),
            "http" => Err(NotifyError::BadUrl {
                reason: format!(
                    "plain http to {} would send the webhook's secret in clear text (use https, or set allowHttp)",
                    url.host_str().unwrap_or("?")
                ),
            }),
            other => Err(NotifyError::BadUrl {
                reason: format!("scheme `{other}` is not http or https"),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// The reason never quotes the URL.
    #[error("webhook URL refused: {reason}")]
    BadUrl { reason: String },
    #[error("building the HTTP client for webhooks: {0}")]
    Client(String),
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else { return false };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

/// The host of a URL, or `?` (never any other part of it).
pub(crate) fn host_of(url: &str) -> String {
    reqwest::Url::parse(url.trim())
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Deserializes a webhook URL, resolving `env:NAME` and `file:/path`. Error messages
/// name the variable or the file, never the value.
fn webhook_url<'de, D: Deserializer<'de>>(d: D) -> Result<Redacted, D::Error> {
    use serde::de::Error;
    let raw = String::deserialize(d)?;
    let value = if let Some(name) = raw.strip_prefix("env:") {
        std::env::var(name.trim()).map_err(|_| {
            D::Error::custom(format!(
                "webhook URL: environment variable `{}` is not set",
                name.trim()
            ))
        })?
    } else if let Some(path) = raw.strip_prefix("file:") {
        std::fs::read_to_string(path.trim())
            .map_err(|e| D::Error::custom(format!("webhook URL: reading `{}`: {}", path.trim(), e.kind())))?
    } else {
        raw
    };
    let value = value.trim().to_string();
    if value.is_empty() {
        return Err(D::Error::custom("webhook URL is empty"));
    }
    let cfg = WebhookConfig::new(value, WebhookFormat::Generic);
    // Scheme and syntax are checked here; the http/loopback rule needs `allowHttp`,
    // so [`WebhookConfig::validate`] (run by the notifier) checks that.
    match reqwest::Url::parse(&cfg.url.0) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(cfg.url),
        Ok(_) => Err(D::Error::custom("webhook URL: the scheme must be https (or http)")),
        Err(_) => Err(D::Error::custom("webhook URL is not a valid URL")),
    }
}

/// Sends every notification to each of several notifiers (e.g. the log and webhooks).
pub struct Fanout(pub Vec<Arc<dyn Notifier>>);

impl Notifier for Fanout {
    fn notify(&self, event: NotifyEvent, ring: Option<&str>, cluster: Option<&ClusterId>, message: &str) {
        for n in &self.0 {
            n.notify(event, ring, cluster, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_from_yaml_with_defaults_and_event_filter() {
        let yaml = "- url: https://hooks.slack.com/services/T0/B0/s3cr3t\n  format: slack\n  events: [approvalNeeded, gateFailed]\n- url: https://example.org/hook\n";
        let hooks: Vec<WebhookConfig> = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(hooks[0].format, WebhookFormat::Slack);
        assert!(hooks[0].wants(NotifyEvent::GateFailed));
        assert!(!hooks[0].wants(NotifyEvent::RingDone));
        assert_eq!(hooks[1].format, WebhookFormat::Generic);
        assert!(hooks[1].wants(NotifyEvent::RingDone), "no events listed: all of them");
        assert_eq!(hooks[0].host(), "hooks.slack.com");
        let debug = format!("{hooks:?}");
        assert!(!debug.contains("s3cr3t") && !debug.contains("/services/"), "{debug}");
    }

    #[test]
    fn config_from_json_and_unknown_fields_refused() {
        let ok: WebhookConfig = serde_json::from_str(
            r#"{"url":"https://x.example/a?sig=abc","format":"teams","events":["rolloutHalted"]}"#,
        )
        .unwrap();
        assert_eq!(ok.format, WebhookFormat::Teams);
        assert!(serde_json::from_str::<WebhookConfig>(r#"{"url":"https://x.example/a","colour":"red"}"#).is_err());
        assert!(serde_json::from_str::<WebhookConfig>(r#"{"url":"https://x.example/a","events":["nope"]}"#).is_err());
    }

    #[test]
    fn bad_urls_are_refused_without_quoting_them() {
        for bad in ["ftp://h.example/s3cr3t", "not a url s3cr3t", ""] {
            let err = serde_json::from_str::<WebhookConfig>(&format!(r#"{{"url":"{bad}"}}"#)).unwrap_err();
            assert!(!err.to_string().contains("s3cr3t"), "{err}");
        }
        let clear = WebhookConfig::new("http://hooks.example/s3cr3t", WebhookFormat::Generic);
        let err = clear.validate().unwrap_err();
        assert!(!err.to_string().contains("s3cr3t") && err.to_string().contains("hooks.example"));
        assert!(
            WebhookConfig {
                allow_http: true,
                ..clear
            }
            .validate()
            .is_ok()
        );
        assert!(
            WebhookConfig::new("http://127.0.0.1:9/x", WebhookFormat::Slack)
                .validate()
                .is_ok()
        );
        assert!(
            WebhookConfig::new("http://[::1]:9/x", WebhookFormat::Slack)
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn url_from_a_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hook");
        std::fs::write(&path, "https://hooks.example/from-file\n").unwrap();
        let c: WebhookConfig =
            serde_json::from_value(serde_json::json!({ "url": format!("file:{}", path.display()) })).unwrap();
        assert_eq!(c.url.0, "https://hooks.example/from-file");
        let missing = serde_json::from_value::<WebhookConfig>(
            serde_json::json!({ "url": "env:RINGMASTER_TEST_SURELY_UNSET_VAR" }),
        )
        .unwrap_err();
        assert!(missing.to_string().contains("RINGMASTER_TEST_SURELY_UNSET_VAR"));
    }
}
