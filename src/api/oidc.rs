//! Entra ID sign-in for the dashboard: the OpenID Connect authorization code flow with
//! PKCE, ending in the same session cookie a pasted token gets.
//!
//! 1. `GET /auth/login` makes a `state`, a `nonce` and a PKCE verifier, keeps them
//!    (in memory, 10 minutes, at most [`MAX_PENDING`]), binds the `state` to this
//!    browser with a short-lived cookie, and sends the browser to the tenant's
//!    authorization endpoint (from its OpenID configuration).
//! 2. Entra signs the user in and sends the browser to `{--public-url}/auth/callback`
//!    with a code. The callback checks that the `state` is the one this browser started
//!    with (no login CSRF: another site cannot finish a sign-in it started into a
//!    victim's browser), takes the pending sign-in once, redeems the code with the
//!    verifier and the client secret (server side: no token reaches the page), checks
//!    the ID token (signature, issuer, audience = the client id, expiry, nonce), and
//!    signs the user in with the name and groups it carries.
//!
//! A failed sign-in is recorded as any refused call and the browser goes back to the
//! page with the reason in the URL fragment (which no server sees). The groups decide
//! who may approve what exactly as for API calls.

use super::ApiState;
use super::auth::{Denied, record_denial};
use super::session::{self, Issued};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie that ties a sign-in's `state` to the browser that started it.
const LOGIN_COOKIE: &str = "ringmaster_login";
/// How long a started sign-in may take.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// Most sign-ins in progress; the oldest goes first beyond it.
pub const MAX_PENDING: usize = 1_000;
/// What the sign-in asks Entra for: an ID token with the user's name (and groups, when
/// the app registration emits them).
const SCOPE: &str = "openid profile";

/// The app registration the dashboard signs users in with (a "web" platform app).
#[derive(Clone)]
pub struct SignInConfig {
    pub client_id: String,
    pub client_secret: crate::identity::Redacted,
    /// `{--public-url}/auth/callback`: registered as the app's redirect URI.
    pub redirect_uri: String,
}

impl std::fmt::Debug for SignInConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInConfig")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

struct Pending {
    verifier: String,
    nonce: String,
    started: Instant,
}

/// Sign-ins started and not finished, by SHA-256 of their `state`.
#[derive(Default)]
pub struct Logins {
    map: Mutex<HashMap<[u8; 32], Pending>>,
}

impl Logins {
    fn insert(&self, state: &str, p: Pending) {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, p| now.duration_since(p.started) < PENDING_TTL);
        if map.len() >= MAX_PENDING
            && let Some(oldest) = map.iter().min_by_key(|(_, p)| p.started).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(Sha256::digest(state.as_bytes()).into(), p);
    }

    /// The pending sign-in of `state`, once.
    fn take(&self, state: &str) -> Option<Pending> {
        let key: [u8; 32] = Sha256::digest(state.as_bytes()).into();
        let p = self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(&key)?;
        (p.started.elapsed() < PENDING_TTL).then_some(p)
    }
}

/// The PKCE challenge of `verifier` (S256).
fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn login_cookie(value: Option<&str>, secure: bool) -> String {
    // Lax, not Strict: the callback is a top-level navigation coming from Entra's site.
    let secure = if secure { "; Secure" } else { "" };
    match value {
        Some(v) => format!(
            "{LOGIN_COOKIE}={v}; Path=/auth; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            PENDING_TTL.as_secs()
        ),
        None => format!("{LOGIN_COOKIE}=; Path=/auth; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    }
}

fn redirect(to: &str, cookies: &[String]) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(to) {
        h.insert(header::LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Back to the page with the reason a sign-in failed, in the fragment.
fn back_with_error(message: &str, secure: bool) -> Response {
    let encoded: String = url::form_urlencoded::byte_serialize(message.as_bytes()).collect();
    redirect(&format!("/#signin-error={encoded}"), &[login_cookie(None, secure)])
}

/// `GET /auth/login`: starts an Entra ID sign-in.
pub(super) async fn login(State(state): State<ApiState>) -> Response {
    let secure = state.secure_cookies;
    let (Some(cfg), Some(entra)) = (state.auth.sign_in(), state.auth.entra()) else {
        return back_with_error(
            "this server has no Entra ID sign-in (serve --entra-client-id); sign in with a token",
            secure,
        );
    };
    let endpoints = match entra.endpoints().await {
        Ok(e) => e,
        Err(d) => return back_with_error(&d.message, secure),
    };
    let (Ok(st), Ok(nonce), Ok(verifier)) = (session::random(), session::random(), session::random()) else {
        return back_with_error("no randomness for a sign-in", secure);
    };
    let url = url::Url::parse_with_params(
        &endpoints.authorization,
        &[
            ("client_id", cfg.client_id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", cfg.redirect_uri.as_str()),
            ("response_mode", "query"),
            ("scope", SCOPE),
            ("state", st.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", challenge(&verifier).as_str()),
            ("code_challenge_method", "S256"),
        ],
    );
    let Ok(url) = url else {
        return back_with_error("the tenant's authorization endpoint is not a URL", secure);
    };
    state.logins.insert(
        &st,
        Pending {
            verifier,
            nonce,
            started: Instant::now(),
        },
    );
    redirect(url.as_str(), &[login_cookie(Some(&st), secure)])
}

/// What Entra sends back to the callback (it adds more, such as `session_state`).
#[derive(Debug, Default, Deserialize)]
pub(super) struct Back {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The user the callback signs in, or why not.
async fn finish(state: &ApiState, headers: &HeaderMap, b: Back) -> Result<super::Caller, Denied> {
    let refused = |m: String| Denied::unauthorized("sign_in_failed", m);
    let (Some(cfg), Some(entra)) = (state.auth.sign_in(), state.auth.entra()) else {
        return Err(refused("this server has no Entra ID sign-in".into()));
    };
    if let Some(e) = b.error {
        return Err(refused(format!(
            "Entra ID: {e}: {}",
            b.error_description.unwrap_or_default()
        )));
    }
    let st = b.state.ok_or_else(|| refused("no state in the callback".into()))?;
    let bound = session::cookie_named(headers, LOGIN_COOKIE).is_some_and(|c| session::csrf_matches(&c, &st));
    if !bound {
        return Err(refused(
            "this sign-in was not started in this browser (its state does not match); start again".into(),
        ));
    }
    let pending = state
        .logins
        .take(&st)
        .ok_or_else(|| refused("unknown or expired sign-in; start again".into()))?;
    let code = b.code.ok_or_else(|| refused("no code in the callback".into()))?;
    let endpoints = entra.endpoints().await?;
    let id_token = entra
        .redeem(
            &endpoints.token,
            &[
                ("client_id", cfg.client_id.as_str()),
                ("client_secret", cfg.client_secret.0.as_str()),
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", cfg.redirect_uri.as_str()),
                ("code_verifier", pending.verifier.as_str()),
                ("scope", SCOPE),
            ],
        )
        .await
        .map_err(refused)?;
    entra.validate_id_token(&id_token, &cfg.client_id, &pending.nonce).await
}

/// `GET /auth/callback`: finishes an Entra ID sign-in with a session cookie.
pub(super) async fn callback(State(state): State<ApiState>, req: Request) -> Response {
    let secure = state.secure_cookies;
    let peer = super::server::peer(&req);
    let back: Back = req
        .uri()
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let caller = match finish(&state, req.headers(), back).await {
        Ok(c) => c,
        Err(d) => {
            record_denial(
                &state,
                d.actor.as_deref(),
                &peer,
                "GET",
                "/auth/callback",
                d.status,
                &d.message,
                serde_json::json!({ "code": d.code }),
            )
            .await;
            return back_with_error(&d.message, secure);
        }
    };
    tracing::info!(user = %caller.name, "signed in with Entra ID");
    match state.sessions.create(caller) {
        Ok(Issued { id, .. }) => redirect(
            "/",
            &[session::set_cookie(Some(&id), secure), login_cookie(None, secure)],
        ),
        Err(_) => back_with_error("no randomness for a session", secure),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636s() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mJ92K4-Bgh_eI1NlVZ-5ewbrjZCIdA"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn a_pending_sign_in_is_taken_once() {
        let l = Logins::default();
        let p = || Pending {
            verifier: "v".into(),
            nonce: "n".into(),
            started: Instant::now(),
        };
        l.insert("s1", p());
        assert!(l.take("s2").is_none());
        assert_eq!(l.take("s1").map(|p| p.verifier), Some("v".into()));
        assert!(l.take("s1").is_none(), "a state is good for one callback");
        for i in 0..MAX_PENDING + 5 {
            l.insert(&format!("s{i}"), p());
        }
        assert_eq!(l.map.lock().unwrap().len(), MAX_PENDING);
    }
}
