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
/// Most live sessions of one caller (one name): a new sign-in beyond it ends that
/// caller's oldest session, never anyone else's. A person signs in from a few browsers;
/// a script that signs in a thousand times only signs itself out.
pub const MAX_PER_CALLER: usize = 16;
/// Most live sessions in all (a bound on the daemon's memory whatever callers do):
/// beyond it a new sign-in is refused (503 `sessions_full`) rather than ending someone
/// else's session. It takes 625 distinct callers at their own cap to reach it.
pub const MAX_SESSIONS: usize = 10_000;

/// Why a session could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("no randomness for a session: {0}")]
    Random(#[from] getrandom::Error),
    #[error("{MAX_SESSIONS} sessions are live; sign out elsewhere or try later")]
    Full,
}

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
    /// Signs `caller` in: ends the caller's oldest session when it already has
    /// [`MAX_PER_CALLER`], and refuses when [`MAX_SESSIONS`] are live. Returns also
    /// whether an older session of the caller was ended.
    pub fn create(&self, caller: Caller) -> Result<(Issued, bool), CreateError> {
        let issued = Issued {
            id: random()?,
            csrf: random()?,
        };
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.expires > now);
        let mut own: Vec<([u8; 32], Instant)> = map
            .iter()
            .filter(|(_, s)| s.caller.name == caller.name)
            .map(|(k, s)| (*k, s.expires))
            .collect();
        let mut evicted = false;
        if own.len() >= MAX_PER_CALLER {
            own.sort_by_key(|(_, expires)| *expires);
            for (k, _) in &own[..=own.len() - MAX_PER_CALLER] {
                map.remove(k);
                evicted = true;
            }
        } else if map.len() >= MAX_SESSIONS {
            return Err(CreateError::Full);
        }
        map.insert(
            digest(&issued.id),
            Session {
                caller,
                csrf: issued.csrf.clone(),
                expires: now + TTL,
            },
        );
        Ok((issued, evicted))
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

    /// Ends a session; returns whose it was.
    pub fn remove(&self, id: &str) -> Option<Caller> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&digest(id))
            .map(|s| s.caller)
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
        let (a, _) = s.create(alice()).unwrap();
        let (b, _) = s.create(alice()).unwrap();
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
    fn a_callers_sign_ins_end_only_its_own_oldest_sessions() {
        let s = Sessions::default();
        let (bob, _) = s
            .create(Caller {
                name: "bob".into(),
                ..alice()
            })
            .unwrap();
        let (first, evicted) = s.create(alice()).unwrap();
        assert!(!evicted);
        let mut last = None;
        for i in 1..MAX_PER_CALLER + 40 {
            let (issued, evicted) = s.create(alice()).unwrap();
            assert_eq!(evicted, i >= MAX_PER_CALLER, "sign-in {i}");
            last = Some(issued);
        }
        assert!(s.get(&bob.id).is_some(), "another caller's session survives the flood");
        assert!(s.get(&first.id).is_none(), "the flooding caller's oldest went");
        assert!(s.get(&last.unwrap().id).is_some());
        let alices = s
            .map
            .lock()
            .unwrap()
            .values()
            .filter(|x| x.caller.name == "alice")
            .count();
        assert_eq!(alices, MAX_PER_CALLER);
    }

    #[test]
    fn beyond_the_total_a_sign_in_is_refused_not_someone_elses_session_ended() {
        let s = Sessions::default();
        for i in 0..MAX_SESSIONS {
            s.create(Caller {
                name: format!("user{}", i / MAX_PER_CALLER),
                ..alice()
            })
            .unwrap();
        }
        assert!(matches!(s.create(alice()), Err(CreateError::Full)));
        // A caller at its own cap still signs in: it ends its own oldest.
        let (_, evicted) = s
            .create(Caller {
                name: "user0".into(),
                ..alice()
            })
            .unwrap();
        assert!(evicted);
        assert_eq!(s.map.lock().unwrap().len(), MAX_SESSIONS);
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
