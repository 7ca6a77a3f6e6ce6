//! Entra ID sign-in for the dashboard: the OpenID Connect authorization code flow with
//! PKCE, ending in the same session cookie a pasted token gets.
//!
//! 1. `GET /auth/login` makes a `state`, a `nonce` and a PKCE verifier (256 random bits
//!    each) and puts them, with the time, in a short-lived cookie signed with a key that
//!    lives only in this process's memory (HMAC-SHA256): the server keeps nothing per
//!    sign-in, so no flood of started sign-ins can push real ones out. Then it sends the
//!    browser to the tenant's authorization endpoint (from its OpenID configuration).
//! 2. Entra signs the user in and sends the browser to `{--public-url}/auth/callback`
//!    with a code. Before anything else the callback checks the cookie's signature and
//!    age and that the `state` is the cookie's (no login CSRF: another site cannot
//!    finish a sign-in it started into a victim's browser, nor make the page show its
//!    text); then it redeems the code with the verifier and the client secret (server
//!    side: no token reaches the page), checks the ID token (signature, issuer,
//!    audience = the client id, expiry, nonce), and signs the user in with the name and
//!    groups it carries. The cookie is cleared; Entra takes a code once.
//!
//! A failed sign-in is recorded as any refused call (with Entra's own reason) and the
//! browser goes back to the page with a reason code in the URL fragment, which the page
//! turns into its own words: nothing a link can carry is shown as text. The groups
//! decide who may approve what exactly as for API calls.

use super::ApiState;
use super::auth::Denied;
use super::sampled::record_denied;
use super::session::{self, Issued};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The cookie that ties a sign-in's `state` to the browser that started it.
const LOGIN_COOKIE: &str = "ringmaster_login";
/// How long a started sign-in may take.
const PENDING_TTL: Duration = Duration::from_secs(600);
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

/// Signs and checks the login cookie. The key is made at start-up and never leaves
/// memory: a restart only makes sign-ins in progress start again. None when the OS
/// gave no randomness: then no sign-in starts.
pub struct LoginKey(Option<ring::hmac::Key>);

impl Default for LoginKey {
    fn default() -> Self {
        let mut bytes = [0u8; 32];
        LoginKey(
            getrandom::fill(&mut bytes)
                .ok()
                .map(|_| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes)),
        )
    }
}

/// What the login cookie carries.
struct Started {
    state: String,
    nonce: String,
    verifier: String,
    /// Seconds since the Unix epoch.
    at: u64,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl LoginKey {
    /// `v1.state.nonce.verifier.at.mac`: every part base64url or digits, so no dot
    /// inside one.
    fn seal(&self, s: &Started) -> Option<String> {
        let body = format!("v1.{}.{}.{}.{}", s.state, s.nonce, s.verifier, s.at);
        let tag = ring::hmac::sign(self.0.as_ref()?, body.as_bytes());
        Some(format!(
            "{body}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
        ))
    }

    /// The cookie's contents if this process signed it.
    fn open(&self, cookie: &str) -> Option<Started> {
        let (body, tag) = cookie.rsplit_once('.')?;
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag).ok()?;
        ring::hmac::verify(self.0.as_ref()?, body.as_bytes(), &tag).ok()?;
        let mut it = body.split('.');
        match (it.next(), it.next(), it.next(), it.next(), it.next(), it.next()) {
            (Some("v1"), Some(state), Some(nonce), Some(verifier), Some(at), None) => Some(Started {
                state: state.to_string(),
                nonce: nonce.to_string(),
                verifier: verifier.to_string(),
                at: at.parse().ok()?,
            }),
            _ => None,
        }
    }
}

/// The PKCE challenge of `verifier` (S256).
fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn login_cookie(value: Option<&str>, secure: bool) -> String {
    // Lax, not Strict: the callback is a top-level navigation coming from Entra's site.
    session::cookie_header(LOGIN_COOKIE, value, "/auth", "Lax", PENDING_TTL, secure)
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

/// Back to the page with the code of the reason a sign-in failed (a
/// [`Denied::code`]): the page says it in its own words.
fn back_with_error(code: &str, secure: bool) -> Response {
    redirect(&format!("/#signin-error={code}"), &[login_cookie(None, secure)])
}

/// `GET /auth/login`: starts an Entra ID sign-in.
pub(super) async fn login(State(state): State<ApiState>) -> Response {
    let secure = state.secure_cookies;
    let (Some(cfg), Some(entra)) = (state.auth.sign_in(), state.auth.entra()) else {
        return back_with_error(SIGN_IN_OFF, secure);
    };
    let endpoints = match entra.endpoints().await {
        Ok(e) => e,
        Err(d) => {
            tracing::warn!(reason = %d.message, "Entra ID sign-in cannot start");
            return back_with_error(d.code, secure);
        }
    };
    let (Ok(st), Ok(nonce), Ok(verifier)) = (session::random(), session::random(), session::random()) else {
        return back_with_error("auth_unavailable", secure);
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
        tracing::warn!(endpoint = %endpoints.authorization, "the tenant's authorization endpoint is not a URL");
        return back_with_error("auth_unavailable", secure);
    };
    let Some(cookie) = state.login_key.seal(&Started {
        state: st,
        nonce,
        verifier,
        at: unix_now(),
    }) else {
        return back_with_error("auth_unavailable", secure);
    };
    redirect(url.as_str(), &[login_cookie(Some(&cookie), secure)])
}

/// The fragment's code when this server has no Entra ID sign-in.
const SIGN_IN_OFF: &str = "sign_in_off";

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
    let (Some(cfg), Some(entra)) = (state.auth.sign_in(), state.auth.entra()) else {
        return Err(Denied::unauthorized(SIGN_IN_OFF, "this server has no Entra ID sign-in"));
    };
    // First: is this the sign-in this browser started? Nothing of the request is
    // believed (not even an error it reports) before that.
    let started = session::cookie_named(headers, LOGIN_COOKIE).and_then(|c| state.login_key.open(&c));
    let matches = |s: &Started| b.state.as_deref().is_some_and(|st| session::csrf_matches(st, &s.state));
    let Some(started) = started.filter(matches) else {
        return Err(Denied::unauthorized(
            "state_mismatch",
            "this sign-in was not started in this browser (no login cookie, or its state does not match)",
        ));
    };
    if unix_now().saturating_sub(started.at) > PENDING_TTL.as_secs() {
        return Err(Denied::unauthorized(
            "sign_in_expired",
            "the sign-in took more than 10 minutes",
        ));
    }
    let entra_refused = |m: String| Denied::unauthorized("entra_refused", m);
    if let Some(e) = b.error {
        return Err(entra_refused(format!(
            "Entra ID: {e}: {}",
            b.error_description.unwrap_or_default()
        )));
    }
    let code = b.code.ok_or_else(|| entra_refused("no code in the callback".into()))?;
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
                ("code_verifier", started.verifier.as_str()),
                ("scope", SCOPE),
            ],
        )
        .await
        .map_err(entra_refused)?;
    entra.validate_id_token(&id_token, &cfg.client_id, &started.nonce).await
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
            record_denied(&state, &d, &peer, "GET", "/auth/callback").await;
            return back_with_error(d.code, secure);
        }
    };
    tracing::info!(user = %caller.name, "signed in with Entra ID");
    match state.sessions.create(caller.clone()) {
        Ok((Issued { id, .. }, evicted)) => {
            let how = if evicted {
                "signed in with Entra ID (the caller's oldest session ended)"
            } else {
                "signed in with Entra ID"
            };
            super::sampled::record_session(
                &state,
                "session.created",
                &caller,
                &peer,
                ("GET", "/auth/callback"),
                how,
            )
            .await;
            redirect(
                "/",
                &[session::set_cookie(Some(&id), secure), login_cookie(None, secure)],
            )
        }
        Err(session::CreateError::Full) => back_with_error("sessions_full", secure),
        Err(_) => back_with_error("auth_unavailable", secure),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_the_verifiers_sha256_in_base64url() {
        // SHA-256("abc") is ba7816bf...f20015ad (FIPS 180-2's first example).
        assert_eq!(challenge("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
    }

    #[test]
    fn the_login_cookie_opens_only_as_this_process_sealed_it() {
        let key = LoginKey::default();
        let sealed = key
            .seal(&Started {
                state: "s".into(),
                nonce: "n".into(),
                verifier: "v".into(),
                at: 1_700_000_000,
            })
            .unwrap();
        let opened = key.open(&sealed).expect("opens");
        assert_eq!(
            (
                opened.state.as_str(),
                opened.nonce.as_str(),
                opened.verifier.as_str(),
                opened.at
            ),
            ("s", "n", "v", 1_700_000_000)
        );
        // Another process's key, a changed part, a changed time: refused.
        assert!(LoginKey::default().open(&sealed).is_none());
        assert!(key.open(&sealed.replacen("v1.s.", "v1.t.", 1)).is_none());
        assert!(key.open(&sealed.replace("1700000000", "1900000000")).is_none());
        assert!(key.open("v1.s.n.v.1").is_none());
    }
}
