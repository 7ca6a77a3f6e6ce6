//! Entra ID sign-in, simulated: the authorization endpoint of the OpenID Connect
//! authorization code flow, the code's redemption with PKCE, and ID tokens signed RS256
//! with a key published in this repository (`keys/README.md`), its public half served
//! as the tenant's JWKS.
//!
//! The simulator has no directory: its sign-in page asks who you are and which groups
//! you are in, and believes the answer. That is what a rehearsal needs (sign in as an
//! approver, then as someone who is not) and why nothing but a rehearsal may trust this
//! tenant. What it does check is what Entra checks of the client: the client id, that
//! the redirect URI of the redemption is the one the code was issued for, the client
//! secret, the PKCE verifier (S256 only), and that a code is used once, within 10
//! minutes.

use crate::shared::Shared;
use axum::body::Body;
use axum::response::Response;
use base64::Engine;
use http::{HeaderValue, StatusCode};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The key id of the one signing key.
const KID: &str = "sim-sign-in-1";
const CODE_TTL: Duration = Duration::from_secs(600);
/// Most codes issued and not redeemed.
const MAX_CODES: usize = 1_000;

fn key() -> &'static RsaKeyPair {
    static KEY: OnceLock<RsaKeyPair> = OnceLock::new();
    KEY.get_or_init(|| {
        RsaKeyPair::from_der(include_bytes!("../keys/sign-in-key.der")).expect("the simulator's signing key is PKCS#1")
    })
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A code issued to the browser and not redeemed yet.
struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    user: String,
    groups: Vec<String>,
    issued: Instant,
}

/// Codes by value.
#[derive(Default)]
pub struct SignIns {
    codes: Mutex<HashMap<String, Code>>,
}

impl std::fmt::Debug for SignIns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIns").finish_non_exhaustive()
    }
}

/// `GET /{tenant}/discovery/v2.0/keys`.
pub fn jwks() -> Value {
    let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(key().public());
    json!({ "keys": [{ "kty": "RSA", "use": "sig", "kid": KID, "n": b64(&public.n), "e": b64(&public.e) }] })
}

fn get<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str())
}

fn page(status: StatusCode, html: String) -> Response {
    let mut r = Response::new(Body::from(html));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn refused(message: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        format!(
            "<!doctype html><title>Sign in (simulated Entra ID)</title><h1>Sign-in refused</h1><p id=\"error\">{}</p>",
            escape(message)
        ),
    )
}

/// What the authorization request must hold; the reason it is refused otherwise.
fn check_request(shared: &Shared, q: &[(String, String)]) -> Result<(), String> {
    if get(q, "response_type") != Some("code") {
        return Err("AADSTS700054: response_type must be 'code' (the simulator supports the code flow only).".into());
    }
    if get(q, "client_id") != Some(shared.client_id.as_str()) {
        return Err("AADSTS700016: Application not found in the directory.".into());
    }
    let redirect = get(q, "redirect_uri").unwrap_or_default();
    if !(redirect.starts_with("http://") || redirect.starts_with("https://")) {
        return Err("AADSTS50011: The redirect URI must be an http(s) address.".into());
    }
    if get(q, "code_challenge").is_none_or(str::is_empty) || get(q, "code_challenge_method") != Some("S256") {
        return Err("AADSTS501491: A PKCE code_challenge with code_challenge_method S256 is required.".into());
    }
    if !get(q, "scope").is_some_and(|s| s.split(' ').any(|x| x == "openid")) {
        return Err("AADSTS900144: The scope must include 'openid'.".into());
    }
    Ok(())
}

/// `GET /{tenant}/oauth2/v2.0/authorize`: the sign-in page.
pub fn form(shared: &Shared, q: &[(String, String)]) -> Response {
    if let Err(e) = check_request(shared, q) {
        return refused(&e);
    }
    let hidden: String = q
        .iter()
        .filter(|(k, _)| k != "login" && k != "groups")
        .map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(k), escape(v)))
        .collect();
    let hint = get(q, "login_hint").unwrap_or_default();
    page(
        StatusCode::OK,
        format!(
            "<!doctype html><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\"><title>Sign in (simulated Entra ID)</title>\
             <h1>Sign in</h1><p>Simulated Entra ID: whoever you say, in the groups you say. For rehearsals only.</p>\
             <form method=\"post\">{hidden}\
             <p><label>User <input id=\"login\" name=\"login\" value=\"{}\" required></label></p>\
             <p><label>Groups (comma-separated) <input id=\"groups\" name=\"groups\"></label></p>\
             <p><button id=\"submit\" type=\"submit\">Sign in</button></p></form>",
            escape(hint)
        ),
    )
}

/// `POST /{tenant}/oauth2/v2.0/authorize`: the user signed in; back to the client with
/// a code.
pub fn submit(shared: &Shared, form: &[(String, String)]) -> Response {
    if let Err(e) = check_request(shared, form) {
        return refused(&e);
    }
    let user = get(form, "login").unwrap_or_default().trim().to_string();
    if user.is_empty() {
        return refused("AADSTS50126: No user name given.");
    }
    let groups = get(form, "groups")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect();
    let mut raw = [0u8; 32];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw).is_err() {
        return refused("no randomness for a code");
    }
    let code = b64(&raw);
    let redirect_uri = get(form, "redirect_uri").unwrap_or_default().to_string();
    {
        let mut codes = shared.sign_ins.codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.retain(|_, c| c.issued.elapsed() < CODE_TTL);
        if codes.len() >= MAX_CODES {
            return refused("AADSTS90055: Too many sign-ins in progress.");
        }
        codes.insert(
            code.clone(),
            Code {
                client_id: shared.client_id.clone(),
                redirect_uri: redirect_uri.clone(),
                challenge: get(form, "code_challenge").unwrap_or_default().to_string(),
                nonce: get(form, "nonce").map(str::to_string),
                user,
                groups,
                issued: Instant::now(),
            },
        );
    }
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = get(form, "state") {
        params.push(("state", s));
    }
    let query: String = params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::from_str(&format!("{redirect_uri}{sep}{query}")) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    r
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The token endpoint's `authorization_code` grant (the client is authenticated by the
/// caller): an ID token for the user the code was issued to, or the OAuth error.
pub fn redeem(shared: &Shared, form: &[(String, String)]) -> Result<Value, (&'static str, String)> {
    let code = get(form, "code").unwrap_or_default();
    let c = shared
        .sign_ins
        .codes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(code)
        .filter(|c| c.issued.elapsed() < CODE_TTL)
        .ok_or((
            "invalid_grant",
            "AADSTS70008: The provided authorization code is expired, used or unknown.".to_string(),
        ))?;
    if get(form, "client_id") != Some(c.client_id.as_str()) {
        return Err((
            "invalid_grant",
            "AADSTS70000: The code was issued to another client.".into(),
        ));
    }
    if get(form, "redirect_uri") != Some(c.redirect_uri.as_str()) {
        return Err((
            "invalid_grant",
            "AADSTS50148: The redirect_uri does not match the one the code was issued for.".into(),
        ));
    }
    let verifier = get(form, "code_verifier").unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    if b64(digest.as_ref()) != c.challenge {
        return Err((
            "invalid_grant",
            "AADSTS50148: The code_verifier does not match the code_challenge supplied in the authorization request."
                .into(),
        ));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let issuer = format!("{}/{}/v2.0", shared.base_url, shared.tenant_id);
    // The same user gets the same object id every time.
    let oid = ring_digest_hex(&c.user)[..32].to_string();
    let mut claims = json!({
        "ver": "2.0", "iss": issuer, "aud": c.client_id, "tid": shared.tenant_id,
        "iat": now, "nbf": now, "exp": now + 3600,
        "sub": oid, "oid": oid, "preferred_username": c.user, "name": c.user, "groups": c.groups,
    });
    if let Some(n) = c.nonce {
        claims["nonce"] = n.into();
    }
    let id_token = sign(&claims).map_err(|e| ("server_error", e))?;
    Ok(
        json!({ "token_type": "Bearer", "scope": get(form, "scope").unwrap_or("openid profile"), "expires_in": 3600, "id_token": id_token }),
    )
}

fn ring_digest_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A compact JWS of `claims`, RS256 with the simulator's key.
fn sign(claims: &Value) -> Result<String, String> {
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": KID });
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut sig = vec![0; key().public().modulus_len()];
    key()
        .sign(
            &RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            signed.as_bytes(),
            &mut sig,
        )
        .map_err(|_| "signing failed".to_string())?;
    Ok(format!("{signed}.{}", b64(&sig)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_key_verifies_what_the_simulator_signs() {
        let t = sign(&json!({ "sub": "x" })).unwrap();
        let (signed, sig) = t.rsplit_once('.').unwrap();
        let k = jwks();
        let d = |f: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(k["keys"][0][f].as_str().unwrap())
                .unwrap()
        };
        let public = ring::signature::RsaPublicKeyComponents { n: d("n"), e: d("e") };
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig).unwrap();
        public
            .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &sig)
            .expect("verifies");
    }

    #[test]
    fn values_are_escaped_in_the_page_and_encoded_in_the_redirect() {
        assert_eq!(escape("<a href=\"x\">'&"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;");
        assert_eq!(percent_encode("a b/c?d=e"), "a%20b%2Fc%3Fd%3De");
    }
}
