//! Static bearer tokens: hashed in the file, wrong and malformed tokens refused with
//! 401 and audited without the token, token generation round trip.

use crate::harness::{ALICE, Harness, code};
use reqwest::StatusCode;
use ringmaster::api::auth::{Auth, Via, generate_token, parse_tokens, token_digest_hex, token_entry_yaml};
use serde_json::json;

#[tokio::test]
async fn wrong_and_malformed_tokens_get_401_and_are_audited_without_the_token() {
    let h = Harness::start().await;
    let before = h.observable();
    let wrong = "rmt_not-a-real-token-but-a-secret-all-the-same";
    let (s, headers, v) = h
        .call(
            reqwest::Method::POST,
            Some(wrong),
            "/api/v1/rollouts/r1/abort",
            Some(json!({ "reason": "x" })),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "invalid_token"));
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

    // A JWT-shaped token to a server without Entra ID.
    let (s, v) = h.get(Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"), "/api/v1/rollouts").await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "invalid_token"));
    assert!(v["error"]["message"].as_str().unwrap().contains("Entra"));

    let resp = h
        .http
        .get(format!("{}/api/v1/rollouts", h.base))
        .header("authorization", format!("Basic {ALICE}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(code(&v), "bad_authorization");

    assert_eq!(h.observable(), before);
    let denied = h.audit_actions("auth.denied");
    assert_eq!(denied.len(), 3);
    assert!(denied.iter().all(|e| e.actor == "anonymous"));
    let everything = serde_json::to_string(&h.audit()).unwrap();
    assert!(
        !everything.contains(wrong) && !everything.contains(ALICE),
        "a token reached the audit log"
    );
    assert_eq!(h.metrics.get("ringmaster_api_denied_total", &[("status", "401")]), 3.0);
}

#[tokio::test]
async fn a_generated_token_round_trips_through_the_tokens_file() {
    let token = generate_token().unwrap();
    assert!(token.0.starts_with("rmt_") && token.0.len() > 40);
    assert_eq!(format!("{token:?}"), "<redacted>");
    let file = format!("tokens:\n{}", token_entry_yaml("ci", &["sre".into()], &token));
    assert!(!file.contains(&token.0), "the file holds the hash only");
    assert!(file.contains(&token_digest_hex(&token.0)));
    let auth = Auth::new(parse_tokens("t.yaml", &file).unwrap(), None, vec!["sre".into()]);
    let header = format!("Bearer {}", token.0).parse().unwrap();
    let caller = auth.authenticate(Some(&header)).await.unwrap();
    assert_eq!((caller.name.as_str(), caller.via), ("ci", Via::Token));
    assert!(auth.is_operator(&caller));
    let other = format!("Bearer {}", generate_token().unwrap().0).parse().unwrap();
    assert!(auth.authenticate(Some(&other)).await.is_err());
}

#[test]
fn a_bad_tokens_file_reports_every_problem() {
    let good = token_digest_hex("a");
    let text = format!(
        "tokens:\n  - name: a\n    sha256: {good}\n  - name: a\n    sha256: xyz\n  - name: b\n    sha256: {good}\n"
    );
    let e = parse_tokens("tokens.yaml", &text).unwrap_err().to_string();
    assert!(e.contains("`a` is used twice"), "{e}");
    assert!(e.contains("64 hex digits"), "{e}");
    assert!(e.contains("listed twice"), "{e}");
    let e = parse_tokens("tokens.yaml", "tokens:\n  - name: a\n    token: plain\n").unwrap_err();
    assert!(e.to_string().starts_with("tokens.yaml:"), "{e}");
}

#[test]
fn serve_refuses_to_start_without_authentication() {
    ringmaster::identity::install_crypto_provider();
    let args = ringmaster::api::AuthArgs::default();
    let e = args.build(reqwest::Client::new()).unwrap_err();
    assert!(e.to_string().contains("no authentication configured"), "{e}");
    let args = ringmaster::api::AuthArgs {
        entra_tenant: Some("contoso".into()),
        ..Default::default()
    };
    assert!(
        args.build(reqwest::Client::new())
            .unwrap_err()
            .to_string()
            .contains("audience")
    );
}

#[test]
fn the_entra_sign_in_needs_its_secret_and_a_plain_public_url() {
    ringmaster::identity::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cr3t-value\n").unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let with = |secret_file: Option<&std::path::Path>, public: Option<&str>| ringmaster::api::AuthArgs {
        entra_tenant: Some("contoso".into()),
        entra_audience: vec!["api://ringmaster".into()],
        entra_client_id: Some("web-app".into()),
        entra_client_secret_file: secret_file.map(|p| p.to_path_buf()),
        public_url: public.map(str::to_string),
        ..Default::default()
    };
    let refused = |a: ringmaster::api::AuthArgs| a.build(reqwest::Client::new()).unwrap_err().to_string();
    assert!(refused(with(None, Some("https://rm.example.com"))).contains("--entra-client-secret-file"));
    assert!(refused(with(Some(&empty), Some("https://rm.example.com"))).contains("is empty"));
    assert!(refused(with(Some(&secret), None)).contains("--public-url"));
    for bad in [
        "https://rm.example.com/ringmaster",
        "https://rm.example.com/?a=b",
        "ftp://rm.example.com",
        "rm.example.com",
    ] {
        let e = refused(with(Some(&secret), Some(bad)));
        assert!(e.contains("--public-url"), "{bad}: {e}");
        assert!(!e.contains("s3cr3t"), "{e}");
    }
    let auth = with(Some(&secret), Some("https://rm.example.com/"))
        .build(reqwest::Client::new())
        .unwrap();
    let cfg = auth.sign_in().expect("sign-in configured");
    assert_eq!(cfg.redirect_uri, "https://rm.example.com/auth/callback");
    assert!(auth.public_url_is_https(), "its cookies are Secure");
    assert!(!format!("{cfg:?}").contains("s3cr3t"), "the secret stays out of Debug");
}
