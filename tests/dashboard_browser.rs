//! The dashboard in a real browser (headless Chromium through ChromeDriver) against
//! `ringmaster serve` and `ringmaster sim` as separate processes: a viewer signs in with
//! a token, watches the rehearsal progress live (no reload), sees no button on prod's
//! approval nor any operator's button, and a request forged with that session is refused
//! (403) and audited; an approver and operator then sees the operator's buttons,
//! approves prod with the button and a comment holding markup, which the page shows as
//! text (no element made, no handler run), and the rollout finishes. The page logs
//! no console error; the test saves screenshots under the target directory.

mod common;

use common::procs::{spawn_serve, start_sim};
use common::webdriver::Browser;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ALICE: &str = "alice-dashboard-0123456789abcdef0123456789";
const VIEWER: &str = "viewer-dashboard-0123456789abcdef012345678";

/// An approval comment with markup in it: the page must show it as text.
const COMMENT: &str = "dev and staging look healthy <img src=x id=injected onerror=\"window.pwned=1\">";

/// [whether the rollout's operator actions show, how many skip and end-soak buttons].
const OPERATOR_BUTTONS: &str = r#"
    const ops = document.getElementById('operator-actions');
    return [!!ops && !ops.hidden, document.querySelectorAll('[id^="skip-"], [id^="end-soak-"]').length];
"#;

/// [the comment shown as text in the rings table, an element made of it, its handler run].
const INERT: &str = r#"
    const rings = document.getElementById('rings');
    return [rings.textContent.includes('<img src=x id=injected'), !!document.getElementById('injected'),
        window.pwned !== undefined];
"#;

fn tokens_yaml() -> String {
    let hash = ringmaster::api::auth::token_digest_hex;
    format!(
        "tokens:\n  - name: alice\n    groups: [platform-admins]\n    sha256: {}\n  - name: viewer\n    groups: [readers]\n    sha256: {}\n",
        hash(ALICE),
        hash(VIEWER)
    )
}

async fn sign_in(b: &Browser, token: &str) {
    let input = b.wait_for("#token", Duration::from_secs(20)).await;
    b.type_into(&input, token).await;
    let button = b.wait_for("#sign-in", Duration::from_secs(5)).await;
    b.click(&button).await;
    b.wait_for("#me", Duration::from_secs(20)).await;
}

/// Console entries at SEVERE level (errors) since the last look.
async fn console_errors(b: &Browser) -> Vec<String> {
    b.console()
        .await
        .into_iter()
        .filter(|(level, _)| level == "SEVERE")
        .map(|(_, m)| m)
        .collect()
}

async fn wait_text(b: &Browser, css: &str, want: &str, within: Duration) {
    let t = Instant::now();
    loop {
        let got = b.text_of(css).await;
        if got == want {
            return;
        }
        assert!(
            t.elapsed() < within,
            "`{css}` says {got:?}, not {want:?}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Audit entries matching `query`, read with the approver's token (not the browser's).
async fn audit(base: &str, query: &str) -> Vec<Value> {
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/audit?{query}&limit=100"))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    v["entries"].as_array().cloned().unwrap_or_default()
}

async fn get_json(base: &str, path: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// The fleet view (`/api/v1/fleet`) puts every cluster in its ring with a placement,
/// and shows the running rollout's preflight on exactly the clusters that have one,
/// matched by full id.
async fn fleet_view_matches_the_rollout(base: &str, id: &str) {
    let fleet = get_json(base, "/api/v1/fleet").await;
    let rollout = get_json(base, &format!("/api/v1/rollouts/{id}")).await;
    let key = |c: &Value| format!("{}/{}/{}", c["subscription"], c["resourceGroup"], c["name"]);
    let mut in_rollout: Vec<String> = rollout["rings"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["waves"].as_array().unwrap().iter())
        .flat_map(|w| w["clusters"].as_array().unwrap().iter())
        .filter(|c| c["preflight"].is_object())
        .map(|c| key(&c["id"]))
        .collect();
    let rings: Vec<&str> = fleet["rings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(rings, ["dev", "staging", "prod"], "{fleet:#}");
    let clusters: Vec<&Value> = fleet["rings"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["clusters"].as_array().unwrap().iter())
        .collect();
    assert!(!clusters.is_empty());
    assert!(
        clusters
            .iter()
            .all(|c| !c["placement"].as_str().unwrap_or("").is_empty()),
        "{fleet:#}"
    );
    let mut in_fleet: Vec<String> = clusters
        .iter()
        .filter(|c| c["preflight"].is_object())
        .map(|c| key(&c["id"]))
        .collect();
    in_rollout.sort();
    in_fleet.sort();
    assert!(!in_rollout.is_empty(), "the rollout's clusters had their preflight");
    assert_eq!(in_fleet, in_rollout);
}

fn screenshot_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_approves_prod_from_the_page_and_a_viewer_cannot() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokens.yaml"), tokens_yaml()).unwrap();
    let sim = start_sim(dir.path(), "300");
    let serve = spawn_serve(&sim, dir.path(), &["--start-now"]);
    let b = Browser::start().await;
    b.goto(&format!("{}/", serve.url)).await;

    // A viewer signs in and sees the rollout move without reloading the page.
    sign_in(&b, VIEWER).await;
    assert!(b.text_of("#me").await.starts_with("viewer"));
    let state = b.wait_for("#rollout-state", Duration::from_secs(60)).await;
    assert_eq!(b.run("window.sameDocument = true; return true;", json!([])).await, true);
    let id = b.text_of("#rollout-id").await;
    assert!(!id.is_empty());
    let first = b.text_of("#rollout-updated").await;
    b.wait_for("#approval-prod", Duration::from_secs(180)).await;
    assert_eq!(b.text(&state).await, "running");
    assert_ne!(
        b.text_of("#rollout-updated").await,
        first,
        "the page followed the rollout"
    );
    assert_eq!(
        b.run("return window.sameDocument === true;", json!([])).await,
        true,
        "the page was not reloaded"
    );
    assert!(b.text_of("#live").await == "live", "the event stream is connected");
    // No button for someone outside prod's approvers; the page says why.
    assert!(b.find("#approve-prod").await.is_none());
    assert!(b.find("#reject-prod").await.is_none());
    assert!(b.text_of("#no-decision-prod").await.contains("not among its approvers"));
    // Nor any operator's button: pause, resume, abort, skip a cluster, end a soak.
    assert_eq!(
        b.run(OPERATOR_BUTTONS, json!([])).await,
        json!([false, 0]),
        "a viewer sees no operator action"
    );
    let errors = console_errors(&b).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    std::fs::write(screenshot_path("dashboard-viewer.png"), b.screenshot().await).unwrap();
    fleet_view_matches_the_rollout(&serve.url, &id).await;

    // Requests forged with the viewer's session: without the CSRF header, and with it.
    let forge = r#"
        const [id, withCsrf] = arguments;
        return (async () => {
            const s = await (await fetch('/api/v1/session')).json();
            const headers = { 'Content-Type': 'application/json' };
            if (withCsrf) headers['X-CSRF-Token'] = s.csrf;
            const r = await fetch(`/api/v1/rollouts/${encodeURIComponent(id)}/rings/prod/approve`,
                { method: 'POST', headers, body: JSON.stringify({ comment: 'forged' }) });
            return [r.status, (await r.json()).error.code];
        })();
    "#;
    assert_eq!(b.run(forge, json!([id, false])).await, json!([403, "csrf"]));
    assert_eq!(b.run(forge, json!([id, true])).await, json!([403, "forbidden"]));
    let _ = b.console().await; // the two refusals, logged by the browser as failed loads

    // Audited, under the viewer's name.
    let entries = audit(&serve.url, "actor=viewer").await;
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "auth.denied" && e["reason"].as_str().unwrap_or("").contains("may not approve")),
        "the forged approval is audited: {entries:?}"
    );
    assert!(entries.iter().all(|e| e["actor"] == "viewer"));

    // The approver signs in and approves prod with the button.
    let out = b.wait_for("#sign-out", Duration::from_secs(5)).await;
    b.click(&out).await;
    sign_in(&b, ALICE).await;
    let approve = b.wait_for("#approve-prod", Duration::from_secs(30)).await;
    // Alice is an operator (platform-admins): the rollout's actions and a skip button for
    // each unfinished cluster.
    let t = Instant::now();
    loop {
        let v = b.run(OPERATOR_BUTTONS, json!([])).await;
        if v[0] == true && v[1].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "an operator's buttons: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    std::fs::write(screenshot_path("dashboard-approval.png"), b.screenshot().await).unwrap();
    b.click(&approve).await;
    let comment = b.wait_for("#confirm-comment", Duration::from_secs(5)).await;
    b.type_into(&comment, COMMENT).await;
    let ok = b.wait_for("#confirm-ok", Duration::from_secs(5)).await;
    b.click(&ok).await;
    // The comment is shown as text: no element made of it, no handler run.
    let t = Instant::now();
    loop {
        let v = b.run(INERT, json!([])).await;
        if v[0] == true {
            assert_eq!(
                v,
                json!([true, false, false]),
                "[shown as text, an element made, a handler ran]"
            );
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the approval's comment is not shown: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_text(&b, "#rollout-state", "succeeded", Duration::from_secs(180)).await;
    std::fs::write(screenshot_path("dashboard-done.png"), b.screenshot().await).unwrap();
    let errors = console_errors(&b).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");

    let approved = audit(&serve.url, "actor=alice&ring=prod").await;
    assert!(
        approved
            .iter()
            .any(|e| e["action"] == "ring.approved" && e["reason"] == COMMENT),
        "{approved:?}"
    );
}

/// Entra ID sign-in from the page: the button goes to the (simulated) tenant's sign-in
/// page, which comes back to the dashboard signed in as the user it named, with the
/// groups of the ID token; a callback the browser did not start shows why it failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_with_entra_id_from_the_page() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokens.yaml"), tokens_yaml()).unwrap();
    let sim = start_sim(dir.path(), "1");
    let env = |k: &str| sim.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
    std::fs::write(dir.path().join("secret"), env("AZURE_CLIENT_SECRET")).unwrap();
    let port = common::webdriver::free_port();
    let public = format!("http://127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{port}");
    let secret = dir.path().join("secret").display().to_string();
    let (tenant, authority, client) = (
        env("AZURE_TENANT_ID"),
        env("AZURE_AUTHORITY_HOST"),
        env("AZURE_CLIENT_ID"),
    );
    let serve = spawn_serve(
        &sim,
        dir.path(),
        &[
            "--listen",
            &listen,
            "--entra-tenant",
            &tenant,
            "--entra-authority",
            &authority,
            "--entra-audience",
            &client,
            "--entra-client-id",
            &client,
            "--entra-client-secret-file",
            &secret,
            "--public-url",
            &public,
        ],
    );
    let b = Browser::start_accepting_any_certificate().await;
    b.goto(&format!("{}/", serve.url)).await;
    let button = b.wait_for("#entra-sign-in", Duration::from_secs(20)).await;
    assert!(b.displayed(&button).await, "the page offers Entra ID sign-in");
    b.click(&button).await;
    let login = b.wait_for("#login", Duration::from_secs(20)).await;
    b.type_into(&login, "carol@contoso.example").await;
    let groups = b.wait_for("#groups", Duration::from_secs(5)).await;
    b.type_into(&groups, "readers").await;
    let submit = b.wait_for("#submit", Duration::from_secs(5)).await;
    b.click(&submit).await;
    let me = b.wait_for("#me", Duration::from_secs(20)).await;
    let t = Instant::now();
    while !b.text(&me).await.starts_with("carol@contoso.example") {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "signed in as {:?}",
            b.text(&me).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(b.text(&me).await.contains("readers"));
    std::fs::write(screenshot_path("dashboard-entra.png"), b.screenshot().await).unwrap();
    let errors = console_errors(&b).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // Signed out, a callback this browser never started is refused with its reason.
    let out = b.wait_for("#sign-out", Duration::from_secs(5)).await;
    b.click(&out).await;
    let again = b.wait_for("#entra-sign-in", Duration::from_secs(10)).await;
    let t = Instant::now();
    while !b.displayed(&again).await {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "signed out, the page offers Entra ID again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.goto(&format!("{}/auth/callback?code=made-up&state=made-up", serve.url))
        .await;
    b.wait_for("#signin-error", Duration::from_secs(20)).await;
    let t = Instant::now();
    while !b.text_of("#signin-error").await.contains("not started in this browser") {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{:?}",
            b.text_of("#signin-error").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
