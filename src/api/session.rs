//! Dashboard sign-in: an API token (or, with `--entra-*`, an Entra ID access token)
//! entered once and exchanged for a session cookie, so the page never keeps a bearer
//! token where its scripts could read it.
//!
//! The cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's
//! page sends it), `Secure` when `serve --secure-cookies` says the page is reached over
//! HTTPS (a TLS-terminating ingress), and lasts [`TTL`]. Every state-changing request
//! made with the cookie must also carry the session's CSRF token in [`CSRF_HEADER`]
//! (double submit: a forged form can send the cookie but cannot read the token, which
//! the page gets from `/ui/session`). Sessions live in the daemon's memory: a restart
//! signs everyone out, which is the safe direction. Only a digest of the session id is
//! kept, so a memory dump holds no usable cookie.

use super::auth::Caller;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "ringmaster_session";
/// The header every cookie-authenticated change carries.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a sign-in lasts: a working day.
pub const TTL: Duration = Duration::from_secs(8 * 3600);
/// Most live sessions; the oldest goes first beyond it (a flood of sign-ins cannot
/// grow the daemon's memory without bound).
const MAX_SESSIONS: usize = 10_000;

struct Session {
    caller: Caller,
    csrf: String,
    expires: Instant,
}

/// The live sessions, by SHA-256 of their id.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

/// A new session: the cookie's value and the CSRF token.
pub struct Issued {
    pub id: String,
    pub csrf: String,
}

/// 256 random bits from the OS, base64url: session ids, CSRF tokens, sign-in states.
pub(super) fn random() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Signs `caller` in.
    pub fn create(&self, caller: Caller) -> Result<Issued, getrandom::Error> {
        let issued = Issued {
            id: random()?,
            csrf: random()?,
        };
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(
            digest(&issued.id),
            Session {
                caller,
                csrf: issued.csrf.clone(),
                expires: now + TTL,
            },
        );
        Ok(issued)
    }

    /// The caller and CSRF token of a live session.
    pub fn get(&self, id: &str) -> Option<(Caller, String)> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let key = digest(id);
        match map.get(&key) {
            Some(s) if s.expires > Instant::now() => Some((s.caller.clone(), s.csrf.clone())),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, id: &str) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(&digest(id));
    }
}

/// Whether `sent` is the session's CSRF token, in constant time.
pub fn csrf_matches(sent: &str, expected: &str) -> bool {
    sent.len() == expected.len() && bool::from(sent.as_bytes().ct_eq(expected.as_bytes()))
}

/// The session cookie's value in a `Cookie` header, if any.
pub fn cookie_value(headers: &http::HeaderMap) -> Option<String> {
    cookie_named(headers, COOKIE)
}

/// The value of the cookie `name` in the `Cookie` headers, if any.
pub fn cookie_named(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The `Set-Cookie` value that signs in (`id`) or out (`None`).
pub fn set_cookie(id: Option<&str>, secure: bool) -> String {
    cookie_header(COOKIE, id, "/", "Strict", TTL, secure)
}

/// A `Set-Cookie` value for an `HttpOnly` cookie: `value` for `max_age`, or `None` to
/// delete it.
pub fn cookie_header(
    name: &str,
    value: Option<&str>,
    path: &str,
    same_site: &str,
    max_age: Duration,
    secure: bool,
) -> String {
    let secure = if secure { "; Secure" } else { "" };
    let (value, age) = value.map_or(("", 0), |v| (v, max_age.as_secs()));
    format!("{name}={value}; Path={path}; HttpOnly; SameSite={same_site}; Max-Age={age}{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::Via;

    fn alice() -> Caller {
        Caller {
            name: "alice".into(),
            groups: vec!["platform-admins".into()],
            via: Via::Token,
        }
    }

    #[test]
    fn a_session_is_found_by_its_id_only_and_ends_when_removed() {
        let s = Sessions::default();
        let a = s.create(alice()).unwrap();
        let b = s.create(alice()).unwrap();
        assert_ne!(a.id, b.id);
        assert_ne!(a.csrf, b.csrf);
        let (caller, csrf) = s.get(&a.id).unwrap();
        assert_eq!(caller.name, "alice");
        assert_eq!(csrf, a.csrf);
        assert!(s.get(&a.csrf).is_none(), "the CSRF token is not a session id");
        s.remove(&a.id);
        assert!(s.get(&a.id).is_none());
        assert!(s.get(&b.id).is_some());
    }

    #[test]
    fn csrf_must_match_exactly() {
        assert!(csrf_matches("abc", "abc"));
        assert!(!csrf_matches("abd", "abc"));
        assert!(!csrf_matches("ab", "abc"));
        assert!(!csrf_matches("", "abc"));
    }

    #[test]
    fn the_cookie_is_read_among_others_and_set_strict() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            "a=1; ringmaster_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_value(&h).as_deref(), Some("xyz"));
        let c = set_cookie(Some("xyz"), true);
        for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!set_cookie(Some("xyz"), false).contains("Secure"));
        assert!(set_cookie(None, false).contains("Max-Age=0"));
    }
}
