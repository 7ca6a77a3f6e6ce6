//! What a notification says, and how each webhook format spells it. Pure: no I/O.
//!
//! Generic document (version 1; fields are never removed or renamed within a version,
//! absent values are `null`):
//! ```json
//! { "version": 1, "source": "ringmaster", "event": "gateFailed", "title": "Gate failed",
//!   "rollout": "r-20260105-0200", "ring": "staging",
//!   "cluster": { "subscription": "...", "resourceGroup": "...", "name": "..." },
//!   "message": "...", "at": "2026-01-05T02:13:00Z" }
//! ```
//! Slack: `{ "text": fallback, "blocks": [header, section (message), section (fields),
//! context (time)] }`, with `&`, `<`, `>` escaped as Slack asks and texts cut to Block
//! Kit's limits (header 150, section text 3,000, field 2,000 characters).
//! Teams: `{ "type": "message", "attachments": [{ "contentType":
//! "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": AdaptiveCard
//! 1.2 with a title TextBlock, the message and a FactSet }] }`.

use super::WebhookFormat;
use crate::domain::fleet::ClusterId;
use crate::engine::NotifyEvent;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// Version of the generic document.
pub const GENERIC_VERSION: u32 = 1;

const SLACK_HEADER_MAX: usize = 150;
const SLACK_SECTION_MAX: usize = 3000;
const SLACK_FIELD_MAX: usize = 2000;
/// Teams refuses payloads over about 28 KB; keep the message well below.
const TEAMS_MESSAGE_MAX: usize = 8000;

/// One notification, as the runtime raised it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub event: NotifyEvent,
    pub rollout: Option<String>,
    pub ring: Option<String>,
    pub cluster: Option<ClusterId>,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// The event's name on the wire (`gateFailed`, ...), as in the configuration.
pub fn event_name(e: NotifyEvent) -> &'static str {
    match e {
        NotifyEvent::ApprovalNeeded => "approvalNeeded",
        NotifyEvent::GateFailed => "gateFailed",
        NotifyEvent::RingDone => "ringDone",
        NotifyEvent::RolloutFinished => "rolloutFinished",
        NotifyEvent::RolloutHalted => "rolloutHalted",
        NotifyEvent::StateNotSaved => "stateNotSaved",
        NotifyEvent::StateSaved => "stateSaved",
        NotifyEvent::PreflightBlocked => "preflightBlocked",
        NotifyEvent::RollbackStarted => "rollbackStarted",
        NotifyEvent::RollbackFinished => "rollbackFinished",
    }
}

/// A short human title.
pub fn title(e: NotifyEvent) -> &'static str {
    match e {
        NotifyEvent::ApprovalNeeded => "Approval needed",
        NotifyEvent::GateFailed => "Gate failed",
        NotifyEvent::RingDone => "Ring done",
        NotifyEvent::RolloutFinished => "Rollout finished",
        NotifyEvent::RolloutHalted => "Rollout halted",
        NotifyEvent::StateNotSaved => "State not saved: rollout waiting",
        NotifyEvent::StateSaved => "State saved again: rollout going on",
        NotifyEvent::PreflightBlocked => "Preflight blocked a cluster",
        NotifyEvent::RollbackStarted => "Rolling a node pool back",
        NotifyEvent::RollbackFinished => "Node pool rollback finished",
    }
}

fn slack_emoji(e: NotifyEvent) -> &'static str {
    match e {
        NotifyEvent::ApprovalNeeded => ":raised_hand:",
        NotifyEvent::GateFailed => ":warning:",
        NotifyEvent::RingDone => ":white_check_mark:",
        NotifyEvent::RolloutFinished => ":checkered_flag:",
        NotifyEvent::RolloutHalted => ":octagonal_sign:",
        NotifyEvent::StateNotSaved => ":rotating_light:",
        NotifyEvent::StateSaved => ":white_check_mark:",
        NotifyEvent::PreflightBlocked => ":no_entry:",
        NotifyEvent::RollbackStarted => ":rewind:",
        NotifyEvent::RollbackFinished => ":leftwards_arrow_with_hook:",
    }
}

/// Adaptive Card TextBlock colour for the title.
fn teams_color(e: NotifyEvent) -> &'static str {
    match e {
        NotifyEvent::ApprovalNeeded
        | NotifyEvent::PreflightBlocked
        | NotifyEvent::RollbackStarted
        | NotifyEvent::RollbackFinished => "Warning",
        NotifyEvent::GateFailed | NotifyEvent::RolloutHalted | NotifyEvent::StateNotSaved => "Attention",
        NotifyEvent::RingDone | NotifyEvent::RolloutFinished | NotifyEvent::StateSaved => "Good",
    }
}

impl Notification {
    fn at_text(&self) -> String {
        self.at.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// `(label, value)` pairs for what is known: rollout, ring, cluster.
    fn facts(&self) -> Vec<(&'static str, String)> {
        let mut f = Vec::new();
        if let Some(r) = &self.rollout {
            f.push(("Rollout", r.clone()));
        }
        if let Some(r) = &self.ring {
            f.push(("Ring", r.clone()));
        }
        if let Some(c) = &self.cluster {
            f.push((
                "Cluster",
                format!(
                    "{} (resource group {}, subscription {})",
                    c.name, c.resource_group, c.subscription
                ),
            ));
        }
        f
    }

    /// One line: `Gate failed · ring staging · cluster aks-1: message`.
    fn one_line(&self) -> String {
        let mut s = format!("ringmaster: {}", title(self.event));
        if let Some(r) = &self.ring {
            s.push_str(&format!(" · ring {r}"));
        }
        if let Some(c) = &self.cluster {
            s.push_str(&format!(" · cluster {}", c.name));
        }
        if !self.message.is_empty() {
            s.push_str(": ");
            s.push_str(&self.message);
        }
        s
    }
}

/// The payload for `format`.
pub fn render(n: &Notification, format: WebhookFormat) -> Value {
    match format {
        WebhookFormat::Generic => generic(n),
        WebhookFormat::Slack => slack(n),
        WebhookFormat::Teams => teams(n),
    }
}

/// ringmaster's own document.
pub fn generic(n: &Notification) -> Value {
    json!({
        "version": GENERIC_VERSION,
        "source": "ringmaster",
        "event": event_name(n.event),
        "title": title(n.event),
        "rollout": n.rollout,
        "ring": n.ring,
        "cluster": n.cluster,
        "message": n.message,
        "at": n.at_text(),
    })
}

/// Slack's own escaping for message text (`&`, `<`, `>`; `<!channel>` would ping a
/// whole channel otherwise).
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Cuts `s` to at most `max` characters (not bytes), marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Escapes first, then cuts, so an entity is never split... except at the very end,
/// where a cut entity only loses its last characters (harmless to Slack).
fn slack_text(s: &str, max: usize) -> String {
    truncate(&slack_escape(s), max)
}

/// A Slack incoming-webhook message.
pub fn slack(n: &Notification) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate(&format!("ringmaster: {}", title(n.event)), SLACK_HEADER_MAX), "emoji": true },
    })];
    if !n.message.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": slack_text(&n.message, SLACK_SECTION_MAX) },
        }));
    }
    let fields: Vec<Value> = n
        .facts()
        .into_iter()
        .map(|(k, v)| json!({ "type": "mrkdwn", "text": slack_text(&format!("*{k}*\n{v}"), SLACK_FIELD_MAX) }))
        .collect();
    if !fields.is_empty() {
        blocks.push(json!({ "type": "section", "fields": fields }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{ "type": "mrkdwn", "text": format!("{} · {}", event_name(n.event), n.at_text()) }],
    }));
    json!({
        "text": slack_text(&format!("{} {}", slack_emoji(n.event), n.one_line()), SLACK_SECTION_MAX),
        "blocks": blocks,
    })
}

/// A Teams message carrying one Adaptive Card.
pub fn teams(n: &Notification) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": format!("ringmaster: {}", title(n.event)),
        "weight": "Bolder",
        "size": "Medium",
        "color": teams_color(n.event),
        "wrap": true,
    })];
    if !n.message.is_empty() {
        body.push(json!({ "type": "TextBlock", "text": truncate(&n.message, TEAMS_MESSAGE_MAX), "wrap": true }));
    }
    let mut facts: Vec<Value> = n
        .facts()
        .into_iter()
        .map(|(k, v)| json!({ "title": k, "value": v }))
        .collect();
    facts.push(json!({ "title": "Event", "value": event_name(n.event) }));
    facts.push(json!({ "title": "At", "value": n.at_text() }));
    body.push(json!({ "type": "FactSet", "facts": facts }));
    json!({
        "type": "message",
        "summary": truncate(&n.one_line(), 200),
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.2",
                "body": body,
            },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample() -> Notification {
        Notification {
            event: NotifyEvent::GateFailed,
            rollout: Some("r-1".into()),
            ring: Some("staging".into()),
            cluster: Some(ClusterId::new("sub-1", "rg-a", "aks-stg-1")),
            message: "3 pods not Ready <!channel> & more".into(),
            at: Utc.with_ymd_and_hms(2026, 1, 5, 2, 13, 0).unwrap(),
        }
    }

    #[test]
    fn generic_is_the_documented_shape() {
        let v = generic(&sample());
        assert_eq!(
            v,
            json!({
                "version": 1, "source": "ringmaster", "event": "gateFailed", "title": "Gate failed",
                "rollout": "r-1", "ring": "staging",
                "cluster": { "subscription": "sub-1", "resourceGroup": "rg-a", "name": "aks-stg-1" },
                "message": "3 pods not Ready <!channel> & more", "at": "2026-01-05T02:13:00Z",
            })
        );
        let mut bare = sample();
        bare.rollout = None;
        bare.ring = None;
        bare.cluster = None;
        let v = generic(&bare);
        assert!(v["rollout"].is_null() && v["ring"].is_null() && v["cluster"].is_null());
    }

    #[test]
    fn event_names_match_the_config_spelling() {
        for e in [
            NotifyEvent::ApprovalNeeded,
            NotifyEvent::GateFailed,
            NotifyEvent::RingDone,
            NotifyEvent::RolloutFinished,
            NotifyEvent::RolloutHalted,
            NotifyEvent::StateNotSaved,
            NotifyEvent::StateSaved,
        ] {
            assert_eq!(serde_json::to_value(e).unwrap(), json!(event_name(e)));
        }
    }

    #[test]
    fn slack_escapes_and_respects_block_limits() {
        let mut n = sample();
        n.message = "x".repeat(10_000);
        let v = slack(&n);
        assert!(v["text"].as_str().unwrap().chars().count() <= SLACK_SECTION_MAX);
        for b in v["blocks"].as_array().unwrap() {
            match b["type"].as_str().unwrap() {
                "header" => assert!(b["text"]["text"].as_str().unwrap().chars().count() <= SLACK_HEADER_MAX),
                "section" if b.get("text").is_some() => {
                    assert!(b["text"]["text"].as_str().unwrap().chars().count() <= SLACK_SECTION_MAX)
                }
                "section" => {
                    let f = b["fields"].as_array().unwrap();
                    assert!(f.len() <= 10);
                }
                "context" => {}
                other => panic!("unexpected block {other}"),
            }
        }
        let v = slack(&sample());
        let section = v["blocks"][1]["text"]["text"].as_str().unwrap();
        assert_eq!(section, "3 pods not Ready &lt;!channel&gt; &amp; more");
        assert!(!v.to_string().contains("<!channel>"));
    }

    #[test]
    fn teams_is_a_message_with_one_adaptive_card() {
        let v = teams(&sample());
        assert_eq!(v["type"], "message");
        let a = &v["attachments"].as_array().unwrap()[0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(a["content"]["type"], "AdaptiveCard");
        assert_eq!(a["content"]["body"][0]["text"], "ringmaster: Gate failed");
        let facts = a["content"]["body"][2]["facts"].as_array().unwrap();
        assert!(facts.iter().any(|f| f["title"] == "Ring" && f["value"] == "staging"));
    }

    #[test]
    fn truncate_counts_characters() {
        assert_eq!(truncate("ééé", 3), "ééé");
        assert_eq!(truncate("éééé", 3), "éé…");
    }
}
