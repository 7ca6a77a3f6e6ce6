//! What the dashboard reads and how it signs in, over real HTTP: the summary (counts,
//! who may decide a pending approval), cluster pages, and the session cookie with its
//! CSRF token.

use super::harness::{ALICE, BOB, Harness, OPS, VIEWER, code};
use reqwest::StatusCode;
use ringmaster::clock::Clock;
use ringmaster::engine::{ForecastRecord, RingStatus};
use serde_json::{Value, json};

fn waiting_for_prod(h: &Harness) {
    let now = h.clock.now();
    h.standin.with("r1", |r| {
        let prod = r.rings.iter_mut().find(|x| x.name == "prod").unwrap();
        prod.status = RingStatus::AwaitingApproval { since: now };
    });
}

#[tokio::test]
async fn the_summary_counts_every_cluster_and_says_who_may_decide() {
    let h = Harness::start().await;
    waiting_for_prod(&h);
    let clusters = h.standin.rollout("r1").clusters().count() as u64;
    let (s, bob) = h.get(Some(BOB), "/api/v1/rollouts/r1/summary").await;
    assert_eq!(s, StatusCode::OK, "{bob}");
    assert_eq!(bob["counts"]["total"], clusters);
    let per_ring: u64 = bob["rings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["counts"]["total"].as_u64().unwrap())
        .sum();
    assert_eq!(per_ring, clusters);
    let pending = &bob["pendingApprovals"];
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    assert_eq!(pending[0]["ring"], "prod");
    assert_eq!(pending[0]["mayApprove"], true);
    let (_, viewer) = h.get(Some(VIEWER), "/api/v1/rollouts/r1/summary").await;
    assert_eq!(viewer["pendingApprovals"][0]["mayApprove"], false);
    assert_eq!(viewer["pendingApprovals"][0]["mayReject"], false);
    let (_, ops) = h.get(Some(OPS), "/api/v1/rollouts/r1/summary").await;
    assert_eq!(ops["pendingApprovals"][0]["mayApprove"], false);
    assert_eq!(ops["pendingApprovals"][0]["mayReject"], true, "operators may reject");
    assert_eq!(ops["you"]["operator"], true);
    let (s, v) = h.get(Some(BOB), "/api/v1/rollouts/nope/summary").await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "unknown_rollout"));
}

#[tokio::test]
async fn cluster_pages_follow_plan_order_and_refuse_bad_queries() {
    let h = Harness::start().await;
    // The creation-time forecast gives each cluster's expected end, keyed by its full id.
    let at = |i: i64| h.clock.now() + chrono::Duration::minutes(10 * i);
    h.standin.with("r1", |r| {
        let clusters = r
            .clusters()
            .enumerate()
            .map(|(i, (_, c))| (c.id.to_string(), at(i as i64)))
            .collect();
        r.forecast = Some(std::sync::Arc::new(ForecastRecord {
            made_at: at(0),
            finish: None,
            approval_after_secs: 0,
            rings: Default::default(),
            clusters,
        }));
    });
    let r = h.standin.rollout("r1");
    let names: Vec<String> = r.clusters().map(|(_, c)| c.id.name.clone()).collect();
    let (s, page) = h
        .get(Some(VIEWER), "/api/v1/rollouts/r1/clusters?offset=1&limit=2")
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page["total"], names.len() as u64);
    let got: Vec<&str> = page["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(got, names[1..3]);
    for (i, c) in page["clusters"].as_array().unwrap().iter().enumerate() {
        let end: chrono::DateTime<chrono::Utc> = serde_json::from_value(c["forecastEnd"].clone()).expect("forecastEnd");
        assert_eq!(end, at(i as i64 + 1), "{c}");
    }
    let (_, prod) = h.get(Some(VIEWER), "/api/v1/rollouts/r1/clusters?ring=prod").await;
    let prod_names: Vec<&Value> = prod["clusters"].as_array().unwrap().iter().collect();
    assert!(!prod_names.is_empty());
    assert!(prod_names.iter().all(|c| c["ring"] == "prod"));
    assert!(
        prod_names
            .iter()
            .all(|c| c["steps"].as_array().is_some_and(|s| !s.is_empty()))
    );
    for (query, status, why) in [
        ("limit=0", StatusCode::BAD_REQUEST, "bad_query"),
        ("limit=501", StatusCode::BAD_REQUEST, "bad_query"),
        ("state=sleeping", StatusCode::BAD_REQUEST, "bad_query"),
        ("ring=nope", StatusCode::NOT_FOUND, "unknown_ring"),
    ] {
        let (s, v) = h
            .get(Some(VIEWER), &format!("/api/v1/rollouts/r1/clusters?{query}"))
            .await;
        assert_eq!((s, code(&v)), (status, why), "{query}: {v}");
    }
}

/// Calls with the session cookie (and the CSRF token when given), no bearer token.
async fn with_cookie(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = h
        .http
        .request(method, format!("{}{path}", h.base))
        .header("cookie", cookie);
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_session_cookie_reads_and_changes_only_with_its_csrf_token() {
    let h = Harness::start().await;
    let (s, headers, v) = h
        .call(
            reqwest::Method::POST,
            None,
            "/api/v1/session",
            Some(json!({ "token": "wrong" })),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(headers.get("set-cookie").is_none());
    assert_eq!(h.audit_actions("auth.denied").len(), 1, "a refused sign-in is audited");

    let (s, headers, me) = h
        .call(
            reqwest::Method::POST,
            None,
            "/api/v1/session",
            Some(json!({ "token": ALICE })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{me}");
    assert_eq!(me["name"], "alice");
    let set = headers["set-cookie"].to_str().unwrap().to_string();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    let cookie = set.split(';').next().unwrap().to_string();
    let csrf = me["csrf"].as_str().unwrap().to_string();
    assert!(!cookie.contains(&csrf), "the CSRF token is not the cookie");

    let (s, _) = with_cookie(&h, reqwest::Method::GET, "/api/v1/rollouts", &cookie, None, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, who) = with_cookie(&h, reqwest::Method::GET, "/api/v1/session", &cookie, None, None).await;
    assert_eq!((s, who["csrf"].as_str()), (StatusCode::OK, Some(csrf.as_str())));

    // A change without the token, or with another, is refused before it reaches the engine.
    let pause = "/api/v1/rollouts/r1/pause";
    let body = Some(json!({ "reason": "x" }));
    for sent in [None, Some("not-the-token")] {
        let (s, v) = with_cookie(&h, reqwest::Method::POST, pause, &cookie, sent, body.clone()).await;
        assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "csrf"), "{v}");
    }
    assert!(h.standin.sent.lock().unwrap().is_empty(), "nothing reached the engine");
    // The refusal is audited with who and why (docs/dashboard.md: "403 `csrf`, audited").
    let audited: Vec<_> = h
        .audit_actions("auth.denied")
        .into_iter()
        .filter(|e| e.actor == "alice" && e.detail["extra"]["code"] == "csrf" && e.detail["status"] == 403)
        .collect();
    assert_eq!(audited.len(), 1, "{:#?}", h.audit());
    let (s, v) = with_cookie(&h, reqwest::Method::POST, pause, &cookie, Some(&csrf), body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(h.standin.sent.lock().unwrap().len(), 1);
    let paused = h.audit_actions("api.pause");
    assert_eq!(paused.len(), 1, "{:?}", h.audit());
    assert_eq!(paused[0].detail["via"], "session", "a cookie call is audited as one");

    // Signed out: the cookie is worth nothing.
    let (s, _) = with_cookie(
        &h,
        reqwest::Method::DELETE,
        "/api/v1/session",
        &cookie,
        Some(&csrf),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = with_cookie(&h, reqwest::Method::GET, "/api/v1/rollouts", &cookie, None, None).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "session_expired"));
    let (_, who) = with_cookie(&h, reqwest::Method::GET, "/api/v1/session", &cookie, None, None).await;
    assert_eq!(who["signedIn"], false);
}

/// Signs in with `token`; the cookie (`name=value`) and the CSRF token.
async fn sign_in(h: &Harness, token: &str) -> (StatusCode, String, String) {
    let (s, headers, me) = h
        .call(
            reqwest::Method::POST,
            None,
            "/api/v1/session",
            Some(json!({ "token": token })),
        )
        .await;
    let cookie = headers
        .get("set-cookie")
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string())
        .unwrap_or_default();
    (s, cookie, me["csrf"].as_str().unwrap_or_default().to_string())
}

/// The `count`s of `action.repeated` rows by `actor`: written ones, and those the
/// minute still holds (flushed here).
fn repeats(h: &Harness, action: &str, actor: &str) -> (u64, Vec<ringmaster::store::AuditEntry>) {
    let name = format!("{action}.repeated");
    let mut rows = h.audit_actions(&name);
    rows.extend(h.denials.flush_all(chrono::Utc::now()));
    rows.retain(|e| e.action == name && e.actor == actor);
    (rows.iter().map(|e| e.detail["count"].as_u64().unwrap()).sum(), rows)
}

/// Issue 26, finding 3: 10,050 sign-ins with a viewer's token pushed every other
/// session out, unaudited. Now a caller's sign-ins end only its own oldest sessions,
/// and sign-ins and sign-outs are audited, sampled like refusals.
#[tokio::test]
async fn a_flood_of_sign_ins_signs_out_nobody_else_and_is_audited_as_a_count() {
    let h = Harness::start().await;
    let (s, bob, _) = sign_in(&h, BOB).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, first_viewer, _) = sign_in(&h, VIEWER).await;
    let mut last = (StatusCode::OK, String::new(), String::new());
    for _ in 0..10_050 {
        last = sign_in(&h, VIEWER).await;
        assert_eq!(last.0, StatusCode::CREATED);
    }
    let (s, v) = with_cookie(&h, reqwest::Method::GET, "/api/v1/rollouts", &bob, None, None).await;
    assert_eq!(s, StatusCode::OK, "bob's session survives the viewer's flood: {v}");
    let (s, _) = with_cookie(&h, reqwest::Method::GET, "/api/v1/rollouts", &last.1, None, None).await;
    assert_eq!(s, StatusCode::OK, "the viewer's newest session works");
    let (s, v) = with_cookie(&h, reqwest::Method::GET, "/api/v1/rollouts", &first_viewer, None, None).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "session_expired"),
        "the viewer's oldest session ended"
    );

    // Audited: a row per caller and reason (signed in; signed in ending its oldest) a
    // minute, the rest counted: every sign-in is in the log once, as a row or a count.
    let created = h.audit_actions("session.created");
    let viewer_rows = created.iter().filter(|e| e.actor == "viewer").count();
    assert_eq!(created.iter().filter(|e| e.actor == "bob").count(), 1);
    assert!((1..=4).contains(&viewer_rows), "{created:?}");
    let (counted, rows) = repeats(&h, "session.created", "viewer");
    assert_eq!(viewer_rows as u64 + counted, 10_051, "{rows:?}");

    let (s, _) = with_cookie(
        &h,
        reqwest::Method::DELETE,
        "/api/v1/session",
        &last.1,
        Some(&last.2),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let ended = h.audit_actions("session.ended");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].actor, "viewer");
}

/// Issue 26, finding 4: denial sampling followed the engine's clock, so under a fast
/// simulated clock every few refusals opened a new "minute" and wrote rows. It follows
/// the wall clock: hours of engine time within one wall-clock minute are one row.
#[tokio::test]
async fn denial_sampling_follows_the_wall_clock_not_the_engines() {
    let h = Harness::start().await;
    let began = chrono::Utc::now();
    for _ in 0..100 {
        h.clock.advance(chrono::Duration::minutes(10));
        let (s, _) = h.get(Some("rmt_not-a-token"), "/api/v1/rollouts").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // The refusals take well under a minute: one wall-clock minute, or two when they
    // straddle one's end. On the engine's clock they would be 100 minutes, 100 rows.
    let denied = h.audit_actions("auth.denied");
    assert!((1..=2).contains(&denied.len()), "{} auth.denied rows", denied.len());
    let (counted, rows) = repeats(&h, "auth.denied", "anonymous");
    assert_eq!(
        denied.len() as u64 + counted,
        100,
        "every refusal counted once: {rows:?}"
    );
    for r in &rows {
        let from: chrono::DateTime<chrono::Utc> = r.detail["from"].as_str().unwrap().parse().unwrap();
        let to: chrono::DateTime<chrono::Utc> = r.detail["to"].as_str().unwrap().parse().unwrap();
        assert!(
            began <= from && from <= to && to <= chrono::Utc::now(),
            "the repeats' own span: {r:?}"
        );
        assert_eq!(r.at, to);
    }
}

/// The dashboard's page, script, stylesheet and icon carry the Content-Security-Policy
/// docs/dashboard.md states, word for word: scripts and styles from this origin only,
/// none inline, no framing. And the page has no inline script or style to need more.
#[tokio::test]
async fn the_dashboard_is_served_with_the_documented_content_security_policy() {
    let h = Harness::start().await;
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/dashboard.md")).unwrap();
    let stated = doc
        .split_once("Content-Security-Policy is `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(csp, _)| csp.split_whitespace().collect::<Vec<_>>().join(" "))
        .expect("docs/dashboard.md states the policy");
    assert!(!stated.contains("unsafe-inline"), "{stated}");
    for path in ["/", "/ui/app.js", "/ui/app.css", "/ui/icon.svg"] {
        let (s, headers, _) = h.call(reqwest::Method::GET, None, path, None).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        let csp = headers
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{path} has no Content-Security-Policy"))
            .to_str()
            .unwrap();
        assert_eq!(csp, stated, "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
    }
    let page = include_str!("../../src/api/ui/index.html");
    for inline in ["<style", " style=", " onclick=", " onload=", "javascript:"] {
        assert!(!page.contains(inline), "the page has {inline}, which the policy blocks");
    }
    assert!(
        page.matches("<script").count() == page.matches("<script src=\"/ui/").count(),
        "every script is a file of this origin"
    );
}

/// What a cluster name, a gate reason or a comment holds never becomes markup: the
/// script builds the page with `textContent` and never hands a string to an HTML parser
/// (docs/dashboard.md). A static check of the script the server embeds: a sink added
/// later (say `innerHTML` for a quick table) fails here.
#[test]
fn the_dashboard_script_hands_no_string_to_an_html_parser() {
    let script = include_str!("../../src/api/ui/app.js");
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "DOMParser",
        "createContextualFragment",
        "srcdoc",
        "eval(",
        "new Function",
    ] {
        assert!(!script.contains(sink), "app.js uses {sink}");
    }
    assert!(
        script.contains("textContent"),
        "the script writes text with textContent"
    );
}
