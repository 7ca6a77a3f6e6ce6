//! Entra ID tokens: RS256 JWTs signed with test-only RSA keys (`tests/fixtures/jwt/`),
//! the keys served by a tiny OpenID configuration + JWKS server on loopback, as Entra ID
//! serves them. Tokens are made here with ring, independently of the code under test.

use crate::harness::{Harness, code};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use reqwest::StatusCode;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use ringmaster::api::entra::{EntraConfig, EntraValidator};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const AUDIENCE: &str = "api://ringmaster";

struct Key {
    kid: String,
    private: RsaKeyPair,
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A compact JWS of `header` and `claims`, signed by `sign` over `header.claims`.
fn compact(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = sign(signed.as_bytes());
    format!("{signed}.{}", b64(&signature))
}

impl Key {
    fn load(kid: &str, file: &str) -> Key {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/jwt")
            .join(file);
        let der = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Key {
            kid: kid.into(),
            private: RsaKeyPair::from_der(&der).expect("a PKCS#1 RSA key"),
        }
    }

    fn jwk(&self) -> Value {
        let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(self.private.public());
        json!({ "kty": "RSA", "use": "sig", "kid": self.kid, "n": b64(&public.n), "e": b64(&public.e) })
    }

    /// A token with `kid` in its header (normally our own).
    fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": kid });
        compact(&header, claims, |msg| {
            let mut sig = vec![0; self.private.public().modulus_len()];
            let rng = ring::rand::SystemRandom::new();
            self.private.sign(&RSA_PKCS1_SHA256, &rng, msg, &mut sig).unwrap();
            sig
        })
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }
}

fn keys() -> &'static (Key, Key) {
    static KEYS: OnceLock<(Key, Key)> = OnceLock::new();
    KEYS.get_or_init(|| {
        (
            Key::load("key-1", "test-key-1.der"),
            Key::load("key-2", "test-key-2.der"),
        )
    })
}

/// The tenant's OpenID configuration and JWKS on loopback; `published` are the keys
/// served, `fetches` counts JWKS fetches.
struct Tenant {
    authority: String,
    issuer: String,
    published: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

async fn tenant() -> Tenant {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority = format!("http://{}", listener.local_addr().unwrap());
    let issuer = format!("{authority}/{TENANT}/v2.0");
    let published = Arc::new(Mutex::new(vec![keys().0.jwk()]));
    let fetches = Arc::new(AtomicUsize::new(0));
    let discovery = json!({ "issuer": issuer, "jwks_uri": format!("{authority}/{TENANT}/discovery/v2.0/keys") });
    let (p, f) = (published.clone(), fetches.clone());
    let app = Router::new()
        .route(
            &format!("/{TENANT}/v2.0/.well-known/openid-configuration"),
            get(move || async move { Json(discovery) }),
        )
        .route(
            &format!("/{TENANT}/discovery/v2.0/keys"),
            get(move || async move {
                f.fetch_add(1, Ordering::SeqCst);
                Json(json!({ "keys": *p.lock().unwrap() }))
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Tenant {
        authority,
        issuer,
        published,
        fetches,
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(t: &Tenant, user: &str, groups: &[&str]) -> Value {
    json!({
        "iss": t.issuer, "aud": AUDIENCE, "tid": TENANT, "iat": now(), "nbf": now() - 10, "exp": now() + 3600,
        "preferred_username": user, "oid": "0000-oid", "groups": groups,
    })
}

async fn setup() -> (Harness, Tenant) {
    let t = tenant().await;
    let mut cfg = EntraConfig::new(&t.authority, TENANT, vec![AUDIENCE.into()]);
    cfg.refresh_cooldown = Duration::ZERO;
    (Harness::start_with(Some(cfg)).await, t)
}

#[tokio::test]
async fn a_valid_entra_token_authenticates_with_its_name_and_groups() {
    let (h, t) = setup().await;
    let token = keys()
        .0
        .sign(&claims(&t, "carol@contoso.example", &["platform-admins"]));
    let (s, v) = h.get(Some(&token), "/api/v1/rollouts").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Her group makes her an approver of prod.
    let (s, v) = h
        .post(
            Some(&token),
            "/api/v1/rollouts/r1/rings/prod/approve",
            json!({ "comment": "ok" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["approval"]["approvedBy"], "carol@contoso.example");
    assert_eq!(h.store.approvals("r1").unwrap()[0].groups, ["platform-admins"]);
    // App roles count as groups; without preferred_username the upn names the caller.
    let mut c = claims(&t, "x", &[]);
    c.as_object_mut().unwrap().remove("preferred_username");
    c["upn"] = json!("dave@contoso.example");
    c["roles"] = json!(["sre"]);
    let (s, v) = h
        .post(Some(&keys().0.sign(&c)), "/api/v1/rollouts/r1/pause", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        h.audit()
            .iter()
            .any(|e| e.action == "api.pause" && e.actor == "dave@contoso.example")
    );
    assert_eq!(t.fetches.load(Ordering::SeqCst), 1, "the keys are cached");
}

#[tokio::test]
async fn bad_entra_tokens_get_401_change_nothing_and_are_audited() {
    let (h, t) = setup().await;
    let base = claims(&t, "mallory@contoso.example", &["platform-admins"]);
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    let mut no_exp = base.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let cases: Vec<(&str, String, &str)> = vec![
        ("expired", keys().0.sign(&with("exp", json!(now() - 3600))), "expired"),
        (
            "not yet valid",
            keys().0.sign(&with("nbf", json!(now() + 3600))),
            "not valid yet",
        ),
        (
            "wrong audience",
            keys().0.sign(&with("aud", json!("api://someone-else"))),
            "another audience",
        ),
        (
            "wrong issuer",
            keys().0.sign(&with("iss", json!("https://evil.example/v2.0"))),
            "another issuer",
        ),
        ("no expiry", keys().0.sign(&no_exp), "`exp`"),
        // Signed by another key but claiming the published key's id.
        ("bad signature", keys().1.sign_as("key-1", &base), "signature"),
        ("unpublished key", keys().1.sign(&base), "does not publish"),
        ("garbage", "aaa.bbb.ccc".to_string(), "well-formed"),
    ];
    let before = h.observable();
    for (what, token, message) in &cases {
        let (s, headers, v) = h
            .call(
                reqwest::Method::POST,
                Some(token),
                "/api/v1/rollouts/r1/rings/prod/approve",
                Some(json!({})),
            )
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "invalid_token"),
            "{what}: {v}"
        );
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains(message), "{what}: {m}");
        assert!(headers["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    }
    // HS256 with the public key as secret: the classic algorithm confusion.
    let header = json!({ "alg": "HS256", "typ": "JWT", "kid": "key-1" });
    let hs = compact(&header, &base, |msg| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"public key bytes");
        ring::hmac::sign(&key, msg).as_ref().to_vec()
    });
    let (s, v) = h.get(Some(&hs), "/api/v1/rollouts").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("RS256"));

    assert_eq!(h.observable(), before, "a refused token changed something");
    let denied = h.audit_actions("auth.denied");
    assert_eq!(denied.len(), cases.len() + 1);
    assert!(
        denied.iter().all(|e| e.actor == "anonymous"),
        "an unverified name is nobody"
    );
}

#[tokio::test]
async fn a_rotated_key_is_fetched_on_first_sight() {
    let (h, t) = setup().await;
    let first = keys().0.sign(&claims(&t, "carol@contoso.example", &[]));
    assert_eq!(h.get(Some(&first), "/api/v1/rollouts").await.0, StatusCode::OK);
    assert_eq!(t.fetches.load(Ordering::SeqCst), 1);
    // Entra starts signing with a new key: a token with its kid makes one refetch.
    t.published.lock().unwrap().push(keys().1.jwk());
    let rotated = keys().1.sign(&claims(&t, "carol@contoso.example", &[]));
    assert_eq!(h.get(Some(&rotated), "/api/v1/rollouts").await.0, StatusCode::OK);
    assert_eq!(t.fetches.load(Ordering::SeqCst), 2);
    assert_eq!(h.get(Some(&first), "/api/v1/rollouts").await.0, StatusCode::OK);
    assert_eq!(t.fetches.load(Ordering::SeqCst), 2, "known keys need no fetch");
}

#[tokio::test]
async fn unknown_key_ids_refetch_at_most_once_per_cooldown() {
    let t = tenant().await;
    let cfg = EntraConfig::new(&t.authority, TENANT, vec![AUDIENCE.into()]);
    let h = Harness::start_with(Some(cfg)).await;
    for i in 0..5 {
        let token = keys().1.sign_as(&format!("made-up-{i}"), &claims(&t, "x", &[]));
        assert_eq!(
            h.get(Some(&token), "/api/v1/rollouts").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        t.fetches.load(Ordering::SeqCst),
        2,
        "the first fetch, then one forced refetch"
    );
}

#[tokio::test]
async fn an_id_token_must_be_for_the_sign_in_app_and_carry_the_sign_ins_nonce() {
    let t = tenant().await;
    let v = EntraValidator::new(
        EntraConfig::new(&t.authority, TENANT, vec![AUDIENCE.into()]),
        reqwest::Client::new(),
    );
    let app = "dashboard-app-client-id";
    let mut c = claims(&t, "carol@contoso.example", &["readers"]);
    c["aud"] = app.into();
    c["nonce"] = "nonce-of-this-sign-in".into();
    let token = keys().0.sign(&c);
    let carol = v
        .validate_id_token(&token, app, "nonce-of-this-sign-in")
        .await
        .expect("valid");
    assert_eq!(
        (carol.name.as_str(), carol.groups.clone()),
        ("carol@contoso.example", vec!["readers".to_string()])
    );
    let replayed = v
        .validate_id_token(&token, app, "nonce-of-another-sign-in")
        .await
        .unwrap_err();
    assert!(replayed.message.contains("nonce"), "{}", replayed.message);
    let mut no_nonce = c.clone();
    no_nonce.as_object_mut().unwrap().remove("nonce");
    assert!(
        v.validate_id_token(&keys().0.sign(&no_nonce), app, "nonce-of-this-sign-in")
            .await
            .is_err()
    );
    // An access token for the API is not an ID token of the sign-in app, nor the reverse.
    let access = keys().0.sign(&claims(&t, "carol@contoso.example", &["readers"]));
    assert!(
        v.validate_id_token(&access, app, "nonce-of-this-sign-in")
            .await
            .is_err()
    );
    assert!(v.validate(&token).await.is_err());
    // Nor is an ID token an access token when the sign-in app is the API's audience too.
    let mut for_api = claims(&t, "carol@contoso.example", &["readers"]);
    for_api["nonce"] = "nonce-of-this-sign-in".into();
    let e = v.validate(&keys().0.sign(&for_api)).await.unwrap_err();
    assert!(e.message.contains("ID token"), "{}", e.message);
}
