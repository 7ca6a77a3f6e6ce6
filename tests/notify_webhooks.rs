//! Webhook notifications over real HTTP on loopback: each format's payload, event
//! filters, retries with backoff, and a failing or hanging webhook never blocking
//! `notify`.

mod notify_support;

use notify_support::Receiver;
use ringmaster::clock::SystemClock;
use ringmaster::domain::fleet::ClusterId;
use ringmaster::engine::NotifyEvent;
use ringmaster::notify::{DeliveryOptions, WebhookConfig, WebhookFormat, WebhookNotifier};
use ringmaster::runtime::Notifier;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Short waits so the tests stay fast; the shapes of the real defaults are unit-tested.
fn quick() -> DeliveryOptions {
    DeliveryOptions {
        queue_capacity: 64,
        max_attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        request_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
    }
}

fn notifier(hooks: Vec<WebhookConfig>, options: DeliveryOptions) -> WebhookNotifier {
    WebhookNotifier::new(hooks, options, Arc::new(SystemClock)).expect("webhooks valid")
}

fn cluster() -> ClusterId {
    ClusterId::new("0000-sub", "rg-stg", "aks-stg-1")
}

/// `notify` is a plain function: it cannot await anything.
#[test]
fn notify_is_not_async() {
    let _f: fn(&WebhookNotifier, NotifyEvent, Option<&str>, Option<&ClusterId>, &str) =
        <WebhookNotifier as Notifier>::notify;
}

#[tokio::test]
async fn each_format_posts_its_payload_shape() {
    let rx = Receiver::start().await;
    let n = notifier(
        vec![
            WebhookConfig::new(rx.url("/ok/generic/T0SECRET"), WebhookFormat::Generic),
            WebhookConfig::new(rx.url("/ok/slack/T0/B0/SECRET"), WebhookFormat::Slack),
            WebhookConfig::new(rx.url("/ok/teams/invoke?sig=SECRET"), WebhookFormat::Teams),
        ],
        quick(),
    )
    .for_rollout("r-7");
    n.notify(
        NotifyEvent::GateFailed,
        Some("staging"),
        Some(&cluster()),
        "2 of 12 pods not Ready after 10m",
    );
    assert!(n.wait_idle(Duration::from_secs(10)).await);
    assert_eq!(n.stats().sent, 3);

    let generic = &rx.posts_to("/ok/generic")[0];
    assert_eq!(generic.content_type, "application/json");
    let g = &generic.body;
    assert_eq!(g["version"], 1);
    assert_eq!(g["event"], "gateFailed");
    assert_eq!(g["rollout"], "r-7");
    assert_eq!(g["ring"], "staging");
    assert_eq!(g["cluster"]["name"], "aks-stg-1");
    assert_eq!(g["cluster"]["resourceGroup"], "rg-stg");
    assert_eq!(g["message"], "2 of 12 pods not Ready after 10m");
    let at = g["at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");

    let slack = &rx.posts_to("/ok/slack")[0];
    assert_eq!(slack.content_type, "application/json");
    let s = &slack.body;
    assert!(s["text"].as_str().unwrap().contains("Gate failed"));
    let blocks = s["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert!(blocks.iter().any(|b| b["type"] == "section"
        && b["text"]["type"] == "mrkdwn"
        && b["text"]["text"] == "2 of 12 pods not Ready after 10m"));
    assert!(blocks.iter().any(|b| {
        b["fields"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x["text"].as_str().unwrap().contains("staging")))
    }));

    let teams = &rx.posts_to("/ok/teams")[0];
    assert_eq!(teams.query.as_deref(), Some("sig=SECRET"), "the query string is kept");
    let t = &teams.body;
    assert_eq!(t["type"], "message");
    let attachments = t["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0]["contentType"], "application/vnd.microsoft.card.adaptive");
    let card = &attachments[0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["$schema"], "http://adaptivecards.io/schemas/adaptive-card.json");
    assert!(card["version"].as_str().is_some());
    let body = card["body"].as_array().unwrap();
    assert_eq!(body[0]["type"], "TextBlock");
    assert!(body.iter().any(|b| b["type"] == "FactSet"));
}

#[tokio::test]
async fn each_webhook_gets_only_the_events_it_asked_for() {
    let rx = Receiver::start().await;
    let mut approvals = WebhookConfig::new(rx.url("/ok/approvals"), WebhookFormat::Generic);
    approvals.events = vec![NotifyEvent::ApprovalNeeded, NotifyEvent::RolloutHalted];
    let everything = WebhookConfig::new(rx.url("/ok/all"), WebhookFormat::Generic);
    let n = notifier(vec![approvals, everything], quick());
    n.notify(NotifyEvent::RingDone, Some("canary"), None, "ring canary done");
    n.notify(
        NotifyEvent::ApprovalNeeded,
        Some("prod"),
        None,
        "prod waits for approval",
    );
    n.notify(NotifyEvent::RolloutFinished, None, None, "done");
    assert!(n.wait_idle(Duration::from_secs(10)).await);
    let events = |prefix: &str| -> Vec<String> {
        rx.posts_to(prefix)
            .iter()
            .map(|p| p.body["event"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(events("/ok/approvals"), ["approvalNeeded"]);
    assert_eq!(
        events("/ok/all"),
        ["ringDone", "approvalNeeded", "rolloutFinished"],
        "in order"
    );
    assert_eq!(n.stats().sent, 4);
}

#[tokio::test]
async fn a_500_then_200_is_retried_and_delivered() {
    let rx = Receiver::start().await;
    let n = notifier(
        vec![WebhookConfig::new(rx.url("/flaky/hook"), WebhookFormat::Slack)],
        quick(),
    );
    n.notify(NotifyEvent::RolloutHalted, None, None, "halted: failure budget spent");
    assert!(n.wait_idle(Duration::from_secs(10)).await);
    let posts = rx.posts_to("/flaky/hook");
    assert_eq!(posts.len(), 2, "one failure, one success");
    assert_eq!(posts[0].body, posts[1].body, "the same payload re-sent");
    let s = n.stats();
    assert_eq!((s.sent, s.failed, s.retries, s.dropped, s.pending), (1, 0, 1, 0, 0));
}

#[tokio::test]
async fn a_429_is_retried() {
    let rx = Receiver::start().await;
    let n = notifier(
        vec![WebhookConfig::new(rx.url("/throttle/hook"), WebhookFormat::Teams)],
        quick(),
    );
    n.notify(NotifyEvent::RingDone, Some("canary"), None, "ok");
    assert!(n.wait_idle(Duration::from_secs(10)).await);
    assert_eq!(rx.posts_to("/throttle/hook").len(), 2);
    assert_eq!(n.stats().sent, 1);
}

#[tokio::test]
async fn an_always_failing_webhook_gets_a_bounded_number_of_attempts() {
    let rx = Receiver::start().await;
    let n = notifier(
        vec![WebhookConfig::new(rx.url("/fail/hook"), WebhookFormat::Generic)],
        quick(),
    );
    n.notify(NotifyEvent::GateFailed, Some("staging"), None, "x");
    assert!(n.wait_idle(Duration::from_secs(10)).await);
    assert_eq!(rx.posts_to("/fail/hook").len(), 3, "max_attempts");
    let s = n.stats();
    assert_eq!((s.sent, s.failed, s.retries), (0, 1, 2));
}

#[tokio::test]
async fn a_refusal_is_not_retried() {
    let rx = Receiver::start().await;
    let n = notifier(
        vec![WebhookConfig::new(rx.url("/bad/hook"), WebhookFormat::Slack)],
        quick(),
    );
    n.notify(NotifyEvent::GateFailed, Some("staging"), None, "x");
    assert!(n.wait_idle(Duration::from_secs(10)).await);
    assert_eq!(rx.posts_to("/bad/hook").len(), 1, "a 400 will not get better");
    assert_eq!(n.stats().failed, 1);
}

/// A webhook that never answers: 1,000 notifications return at once, the overflow is
/// dropped and counted, and another webhook on the same notifier still gets its post.
#[tokio::test]
async fn a_hanging_webhook_blocks_neither_notify_nor_other_webhooks() {
    let rx = Receiver::start().await;
    let hang = WebhookConfig::new(rx.url("/hang/hook"), WebhookFormat::Generic);
    let mut healthy = WebhookConfig::new(rx.url("/ok/healthy"), WebhookFormat::Generic);
    healthy.events = vec![NotifyEvent::RolloutFinished];
    let options = DeliveryOptions {
        queue_capacity: 8,
        request_timeout: Duration::from_secs(30),
        ..quick()
    };
    let n = notifier(vec![hang, healthy], options);
    let started = Instant::now();
    for i in 0..1000 {
        n.notify(
            NotifyEvent::GateFailed,
            Some("staging"),
            Some(&cluster()),
            &format!("blocked {i}"),
        );
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "1,000 notify calls took {took:?}");
    let s = n.stats();
    // 8 queued, at most 1 taken by the worker: everything else was dropped.
    assert!(s.dropped >= 1000 - 9, "{s:?}");
    assert_eq!(s.dropped + s.pending, 1000, "{s:?}");

    n.notify(NotifyEvent::RolloutFinished, None, None, "finished");
    let deadline = Instant::now() + Duration::from_secs(10);
    while rx.posts_to("/ok/healthy").is_empty() {
        assert!(Instant::now() < deadline, "the healthy webhook never got its post");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(rx.posts_to("/hang/hook").len() <= 1, "still stuck on the first post");
    assert!(
        !n.wait_idle(Duration::from_millis(50)).await,
        "the hanging webhook is still pending"
    );
}

/// A webhook that always fails (with backoff between attempts) does not slow `notify`.
#[tokio::test]
async fn an_always_failing_webhook_does_not_block_notify() {
    let rx = Receiver::start().await;
    let options = DeliveryOptions {
        queue_capacity: 4,
        max_attempts: 5,
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(1),
        ..quick()
    };
    let n = notifier(
        vec![WebhookConfig::new(rx.url("/fail/slow"), WebhookFormat::Slack)],
        options,
    );
    let started = Instant::now();
    for _ in 0..1000 {
        n.notify(NotifyEvent::RolloutHalted, None, None, "halted");
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "1,000 notify calls took {took:?}");
    assert!(n.stats().dropped >= 1000 - 5);
}

/// A request that hangs is cut by the per-request timeout and counts as a failed attempt.
#[tokio::test]
async fn a_hanging_request_times_out_and_is_given_up() {
    let rx = Receiver::start().await;
    let options = DeliveryOptions {
        max_attempts: 2,
        request_timeout: Duration::from_millis(200),
        ..quick()
    };
    let n = notifier(
        vec![WebhookConfig::new(rx.url("/hang/timeout"), WebhookFormat::Generic)],
        options,
    );
    n.notify(NotifyEvent::GateFailed, None, None, "x");
    assert!(n.wait_idle(Duration::from_secs(10)).await);
    assert_eq!(rx.posts_to("/hang/timeout").len(), 2);
    let s = n.stats();
    assert_eq!((s.sent, s.failed, s.retries), (0, 1, 1));
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused() {
    let err = WebhookNotifier::new(
        vec![WebhookConfig::new(
            "http://hooks.example.org/services/SECRET",
            WebhookFormat::Slack,
        )],
        quick(),
        Arc::new(SystemClock),
    )
    .unwrap_err();
    assert!(!err.to_string().contains("SECRET"), "{err}");
}
