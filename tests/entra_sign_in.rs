//! The dashboard's Entra ID sign-in (OpenID Connect authorization code flow with PKCE)
//! end to end over real HTTP: `ringmaster serve` with `--entra-client-id` against the
//! Entra ID of `ringmaster sim` (separate processes). A client that follows no redirect
//! plays the browser: `/auth/login` sends it to the tenant's authorization endpoint with
//! a state, a nonce and an S256 challenge; the simulated sign-in page sends it back with
//! a code; the callback redeems it server-side and sets the session cookie, whose
//! caller has the name and groups of the ID token. Refused: a callback this browser did
//! not start, a forged login cookie, a code used twice, a code redeemed without its
//! verifier, a wrong client secret (each audited, nothing signed in, only a reason code
//! back to the page); and the groups decide as for any caller (a reader is refused an
//! approval, an approver signed in the same way gives it and the ring's upgrade calls
//! reach the simulator). With an `https://`
//! public URL every cookie `serve` sets is `Secure`.

mod common;

use common::procs::{Sim, SimArm, spawn_serve, spawn_serve_on, start_sim};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;
use std::collections::HashMap;

const ALICE: &str = "alice-entra-test-0123456789abcdef0123456789";

fn env<'a>(sim: &'a Sim, k: &str) -> &'a str {
    sim.env
        .iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{k} in the simulator's env file"))
}

/// A client trusting the simulator's CA that follows no redirect: the test looks at
/// each hop.
fn browser(sim: &Sim) -> reqwest::Client {
    let pem = std::fs::read(env(sim, "RINGMASTER_CA_CERT")).unwrap();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

/// `name=value` of the cookie `name` among `resp`'s Set-Cookie headers, with its
/// attributes.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<(String, String)> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            (pair.to_string(), attrs.to_string())
        })
}

/// Whether a Set-Cookie's attributes (as [`set_cookie`] returns them) include `name`.
fn has_attribute(attrs: &str, name: &str) -> bool {
    attrs.split(';').any(|a| a.trim().eq_ignore_ascii_case(name))
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()[LOCATION].to_str().unwrap().to_string()
}

fn query(url: &str) -> HashMap<String, String> {
    reqwest::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

/// Starts a sign-in at `base`: the login cookie and the authorization URL.
async fn start(http: &reqwest::Client, base: &str) -> (String, String) {
    let r = http.get(format!("{base}/auth/login")).send().await.unwrap();
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    let (cookie, attrs) = set_cookie(&r, "ringmaster_login").expect("the login cookie");
    assert!(attrs.contains("HttpOnly") && attrs.contains("SameSite=Lax"), "{attrs}");
    (cookie, location(&r))
}

/// Signs in on the simulated page as `user` in `groups`: where it sends the browser.
async fn sign_in_at_entra(http: &reqwest::Client, authorize: &str, user: &str, groups: &str) -> String {
    let page = http.get(authorize).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("name=\"login\""));
    let mut form: Vec<(String, String)> = query(authorize).into_iter().collect();
    form.push(("login".into(), user.into()));
    form.push(("groups".into(), groups.into()));
    let endpoint = authorize.split('?').next().unwrap();
    let r = http.post(endpoint).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 302, "{:?}", r.text().await);
    location(&r)
}

async fn session(http: &reqwest::Client, base: &str, cookie: &str) -> Value {
    let r = http
        .get(format!("{base}/api/v1/session"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    r.json().await.unwrap()
}

async fn denials(base: &str) -> Vec<Value> {
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/audit?limit=500"))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let all = v["entries"].as_array().cloned().unwrap_or_default();
    all.into_iter().filter(|e| e["action"] == "auth.denied").collect()
}

fn serve_args(sim: &Sim, dir: &std::path::Path, secret: &str) -> (Vec<String>, String) {
    let secret_file = dir.join("client-secret");
    std::fs::write(&secret_file, secret).unwrap();
    let port = common::webdriver::free_port();
    let public = format!("http://127.0.0.1:{port}");
    let client = env(sim, "AZURE_CLIENT_ID").to_string();
    let args = vec![
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--entra-tenant".into(),
        env(sim, "AZURE_TENANT_ID").into(),
        "--entra-authority".into(),
        env(sim, "AZURE_AUTHORITY_HOST").into(),
        "--entra-audience".into(),
        client.clone(),
        "--entra-client-id".into(),
        client,
        "--entra-client-secret-file".into(),
        secret_file.display().to_string(),
        "--public-url".into(),
        public.clone(),
    ];
    (args, public)
}

fn tokens_yaml() -> String {
    format!(
        "tokens:\n  - name: alice\n    groups: [platform-admins]\n    sha256: {}\n",
        ringmaster::api::auth::token_digest_hex(ALICE)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_with_entra_id_and_gets_the_groups_of_the_id_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokens.yaml"), tokens_yaml()).unwrap();
    let sim = start_sim(dir.path(), "1");
    let (args, public) = serve_args(&sim, dir.path(), env(&sim, "AZURE_CLIENT_SECRET"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let serve = spawn_serve(&sim, dir.path(), &args);
    assert_eq!(serve.url, public);
    let http = browser(&sim);
    let anonymous = session(&http, &public, "").await;
    assert_eq!(
        anonymous["entraSignIn"], true,
        "the page offers the sign-in: {anonymous}"
    );

    // To the tenant with everything the flow needs.
    let (login, authorize) = start(&http, &public).await;
    let q = query(&authorize);
    assert!(authorize.starts_with(env(&sim, "AZURE_AUTHORITY_HOST").trim_end_matches('/')));
    assert_eq!(q["client_id"], env(&sim, "AZURE_CLIENT_ID"));
    assert_eq!(q["redirect_uri"], format!("{public}/auth/callback"));
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43, "SHA-256, base64url");
    assert!(!q["nonce"].is_empty());
    assert!(
        login.contains(&format!(".{}.", q["state"])),
        "the state is bound to the browser: {login}"
    );
    assert!(
        !login.contains(&q["code_challenge"]),
        "the verifier, not the challenge, is in the cookie"
    );
    assert!(
        !authorize.contains(env(&sim, "AZURE_CLIENT_SECRET")),
        "no secret in the URL"
    );

    // Back with a code; the callback signs the user in.
    let back = sign_in_at_entra(&http, &authorize, "carol@contoso.example", "readers, sre").await;
    assert!(back.starts_with(&format!("{public}/auth/callback?")), "{back}");
    let r = http.get(&back).header(COOKIE, &login).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/");
    let (cookie, attrs) = set_cookie(&r, "ringmaster_session").expect("a session cookie");
    assert!(
        attrs.contains("HttpOnly") && attrs.contains("SameSite=Strict"),
        "{attrs}"
    );
    assert!(
        !has_attribute(&attrs, "Secure"),
        "a plain-HTTP public URL without --secure-cookies: no Secure ({attrs})"
    );
    assert!(set_cookie(&r, "ringmaster_login").is_some_and(|(_, a)| a.contains("Max-Age=0")));
    let me = session(&http, &public, &cookie).await;
    assert_eq!(me["signedIn"], true, "{me}");
    assert_eq!(me["name"], "carol@contoso.example");
    assert_eq!(me["groups"], serde_json::json!(["readers", "sre"]));
    assert_eq!(me["operator"], false);

    // The ID token's groups decide: a reader may read, not approve.
    let csrf = me["csrf"].as_str().unwrap();
    let list = http
        .get(format!("{public}/api/v1/rollouts"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let start_now = http
        .post(format!("{public}/api/v1/rollouts"))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", csrf)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(start_now.status(), 403, "only operators start rollouts");

    // The same callback again (even with the login cookie kept): Entra takes a code once.
    let again = http.get(&back).header(COOKIE, &login).send().await.unwrap();
    assert_eq!(again.status(), 303);
    assert_eq!(location(&again), "/#signin-error=entra_refused");
    assert!(set_cookie(&again, "ringmaster_session").is_none());

    // A callback this browser did not start (a login CSRF): refused before any redemption.
    let (_, other) = start(&http, &public).await;
    let stolen = sign_in_at_entra(&http, &other, "mallory@contoso.example", "platform-admins").await;
    let r = http.get(&stolen).header(COOKIE, &login).send().await.unwrap();
    assert_eq!(location(&r), "/#signin-error=state_mismatch");
    assert!(set_cookie(&r, "ringmaster_session").is_none());
    let r = http.get(&stolen).send().await.unwrap();
    assert_eq!(location(&r), "/#signin-error=state_mismatch");
    // A forged login cookie (edited, or signed by another process's key) is no cookie.
    let forged = login.replacen(&q["state"], "forged-state", 1);
    let r = http
        .get(format!("{public}/auth/callback?code=x&state=forged-state"))
        .header(COOKIE, &forged)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/#signin-error=state_mismatch");
    // Text in a link is never shown: only the code of the reason comes back.
    let r = http
        .get(format!(
            "{public}/auth/callback?error=access_denied&error_description=Paste+your+token+at+evil.example"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/#signin-error=state_mismatch");

    // The simulated tenant checks PKCE: a code redeemed without its verifier is refused.
    let (_, third) = start(&http, &public).await;
    let code = query(&sign_in_at_entra(&http, &third, "eve@contoso.example", "platform-admins").await)["code"].clone();
    let token_endpoint = format!(
        "{}/{}/oauth2/v2.0/token",
        env(&sim, "AZURE_AUTHORITY_HOST").trim_end_matches('/'),
        env(&sim, "AZURE_TENANT_ID")
    );
    let r = http
        .post(&token_endpoint)
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", env(&sim, "AZURE_CLIENT_ID")),
            ("client_secret", env(&sim, "AZURE_CLIENT_SECRET")),
            ("code", code.as_str()),
            ("redirect_uri", &format!("{public}/auth/callback")),
            ("code_verifier", "a-guess-that-is-not-the-verifier-0123456789"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_grant", "{v}");

    let refused = denials(&public).await;
    let reasons: Vec<&str> = refused.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("AADSTS70008")),
        "the replayed code: {reasons:?}"
    );
    assert!(
        !reasons.iter().any(|r| r.contains("evil.example")),
        "a link's text is not believed"
    );
    assert!(
        reasons.iter().any(|r| r.contains("not started in this browser")),
        "{reasons:?}"
    );
    assert!(
        !refused
            .iter()
            .any(|e| e.to_string().contains(env(&sim, "AZURE_CLIENT_SECRET"))),
        "no secret in the audit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_signs_nobody_in_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokens.yaml"), tokens_yaml()).unwrap();
    let sim = start_sim(dir.path(), "1");
    let (args, public) = serve_args(&sim, dir.path(), "not-the-secret");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _serve = spawn_serve(&sim, dir.path(), &args);
    let http = browser(&sim);
    let (login, authorize) = start(&http, &public).await;
    let back = sign_in_at_entra(&http, &authorize, "carol@contoso.example", "readers").await;
    let r = http.get(&back).header(COOKIE, &login).send().await.unwrap();
    assert!(set_cookie(&r, "ringmaster_session").is_none());
    assert_eq!(location(&r), "/#signin-error=entra_refused");
    let refused = denials(&public).await;
    assert!(
        refused
            .iter()
            .any(|e| e["reason"].as_str().unwrap_or("").contains("invalid_client")),
        "Entra's reason is audited: {refused:?}"
    );
    assert!(!refused.iter().any(|e| e.to_string().contains("not-the-secret")));
}

/// With an `https://` public URL (TLS ends at an ingress in front of `serve`) every cookie
/// `serve` sets is `Secure` without `--secure-cookies` (docs/dashboard.md): the login
/// cookie of `/auth/login`, the session cookie of the Entra callback (and the login
/// cookie it clears), and the session cookie of a token sign-in. Read on the Set-Cookie
/// headers of a running `serve`, so the wiring in `main.rs` is what is tested. (The
/// plain-HTTP public URL of the first test gets no `Secure`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_public_url_makes_every_cookie_secure() {
    const PUBLIC: &str = "https://rm.example.com";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokens.yaml"), tokens_yaml()).unwrap();
    let sim = start_sim(dir.path(), "1");
    let (mut args, _) = serve_args(&sim, dir.path(), env(&sim, "AZURE_CLIENT_SECRET"));
    let at = args.iter().position(|a| a == "--public-url").unwrap();
    args[at + 1] = PUBLIC.into();
    assert!(!args.iter().any(|a| a == "--secure-cookies"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let serve = spawn_serve(&sim, dir.path(), &args);
    let base = serve.url.clone();
    let http = browser(&sim);

    let r = http.get(format!("{base}/auth/login")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let (login, attrs) = set_cookie(&r, "ringmaster_login").expect("the login cookie");
    assert!(has_attribute(&attrs, "Secure"), "login cookie: {attrs}");
    let authorize = location(&r);
    assert_eq!(query(&authorize)["redirect_uri"], format!("{PUBLIC}/auth/callback"));

    // Entra sends the browser to the public URL; the ingress would pass it on to `serve`.
    let back = sign_in_at_entra(&http, &authorize, "carol@contoso.example", "readers").await;
    let path = back.strip_prefix(PUBLIC).unwrap_or_else(|| panic!("{back}"));
    let r = http
        .get(format!("{base}{path}"))
        .header(COOKIE, &login)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/");
    let (cookie, attrs) = set_cookie(&r, "ringmaster_session").expect("a session cookie");
    assert!(has_attribute(&attrs, "Secure"), "Entra session cookie: {attrs}");
    let (_, cleared) = set_cookie(&r, "ringmaster_login").expect("the login cookie cleared");
    assert!(has_attribute(&cleared, "Secure"), "cleared login cookie: {cleared}");
    assert_eq!(session(&http, &base, &cookie).await["name"], "carol@contoso.example");

    let r = http
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({ "token": ALICE }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (_, attrs) = set_cookie(&r, "ringmaster_session").expect("a session cookie");
    assert!(has_attribute(&attrs, "Secure"), "token session cookie: {attrs}");
}

/// Signs `user` in `groups` in through Entra ID at `base`: the session cookie and its
/// CSRF token.
async fn entra_session(http: &reqwest::Client, base: &str, user: &str, groups: &str) -> (String, String) {
    let (login, authorize) = start(http, base).await;
    let back = sign_in_at_entra(http, &authorize, user, groups).await;
    let r = http.get(&back).header(COOKIE, &login).send().await.unwrap();
    let (cookie, _) = set_cookie(&r, "ringmaster_session").expect("a session cookie");
    let me = session(http, base, &cookie).await;
    assert_eq!(me["name"], user, "{me}");
    (cookie, me["csrf"].as_str().unwrap().to_string())
}

/// The mutating ARM requests the simulator got for the dev ring's clusters.
async fn dev_calls(sim: &Sim) -> Vec<Value> {
    SimArm::new(sim)
        .await
        .requests()
        .await
        .into_iter()
        .filter(|w| {
            w["path"]
                .as_str()
                .unwrap_or("")
                .to_ascii_lowercase()
                .contains("/managedclusters/aks-dev-")
        })
        .collect()
}

/// The ID token's groups decide approvals as they decide any call: with the demo policy
/// given an approval before its first ring by `release-managers` (a group no static
/// token has), a user signed in through Entra ID in `readers` is refused (403
/// `forbidden`, because of the ring's approvers, not the CSRF check) and nothing reaches
/// AKS; a user in `release-managers` approves, and the ring's upgrade calls reach the
/// simulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_id_token_s_groups_decide_who_may_approve() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokens.yaml"), tokens_yaml()).unwrap();
    let demo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/demo.yaml")).unwrap();
    let dev = "    selector: { tags: { ring: dev } }\n";
    let text = demo.replacen(
        dev,
        &format!("{dev}    approval:\n      approvers: [release-managers]\n"),
        1,
    );
    assert_ne!(text, demo, "the dev ring is where the test expects it");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, text).unwrap();
    let sim = start_sim(dir.path(), "1");
    let (mut args, public) = serve_args(&sim, dir.path(), env(&sim, "AZURE_CLIENT_SECRET"));
    args.push("--start-now".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _serve = spawn_serve_on(&sim, dir.path(), policy.to_str().unwrap(), &args);
    let admin = reqwest::Client::new();
    let get = |path: String| {
        let admin = admin.clone();
        async move {
            let r = admin.get(path).bearer_auth(ALICE).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };

    // The rollout starts and its first ring waits for its approval.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let id = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the dev ring never waited for its approval"
        );
        let list = get(format!("{public}/api/v1/rollouts")).await;
        if let Some(id) = list["rollouts"][0]["id"].as_str() {
            let a = get(format!("{public}/api/v1/rollouts/{id}/approvals")).await;
            if a["pending"]
                .as_array()
                .is_some_and(|p| p.iter().any(|x| x["ring"] == "dev"))
            {
                break id.to_string();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let http = browser(&sim);
    let approve = |cookie: String, csrf: String| {
        let http = http.clone();
        let url = format!("{public}/api/v1/rollouts/{id}/rings/dev/approve");
        async move {
            let r = http
                .post(url)
                .header(COOKIE, cookie)
                .header("x-csrf-token", csrf)
                .json(&serde_json::json!({ "comment": "go" }))
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let may_approve = |cookie: String| {
        let http = http.clone();
        let url = format!("{public}/api/v1/rollouts/{id}/approvals");
        async move {
            let v: Value = http
                .get(url)
                .header(COOKIE, cookie)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["pending"][0]["mayApprove"].clone()
        }
    };

    let (reader, reader_csrf) = entra_session(&http, &public, "carol@contoso.example", "readers, sre").await;
    assert_eq!(may_approve(reader.clone()).await, false);
    let (status, v) = approve(reader, reader_csrf).await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"]["code"], "forbidden", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("may not approve ring `dev`"),
        "{v}"
    );
    assert!(dev_calls(&sim).await.is_empty(), "nothing reached AKS");

    let (approver, approver_csrf) = entra_session(&http, &public, "dave@contoso.example", "release-managers").await;
    assert_eq!(may_approve(approver.clone()).await, true);
    let (status, v) = approve(approver, approver_csrf).await;
    assert_eq!(status, 200, "{v}");
    let audit = get(format!("{public}/api/v1/audit?limit=500")).await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "api.approve" && e["actor"] == "dave@contoso.example"),
        "{audit}"
    );
    // The approval is the engine's: the dev ring's upgrades reach the simulator.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while dev_calls(&sim).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no upgrade call after the approval"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
