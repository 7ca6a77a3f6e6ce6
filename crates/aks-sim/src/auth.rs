//! Entra ID, simulated: a client-credentials token endpoint that issues bearer
//! tokens with an expiry, and the checks ARM and each Kubernetes API run on them.
//!
//! Tokens are opaque random strings (clients must not parse access tokens); the
//! simulator remembers each one's audience and expiry. Expiry is wall-clock time,
//! because that is what `expires_in` means to a client.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The audience of ARM tokens.
pub const ARM_AUDIENCE: &str = "https://management.azure.com";
/// The AKS AAD server application: audience of tokens for Entra-ID clusters.
pub const AKS_SERVER_APP: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";

#[derive(Debug, Clone)]
struct Issued {
    audience: String,
    client_id: String,
    expires: Instant,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Missing,
    Invalid,
    Expired,
    WrongAudience,
}

#[derive(Debug, Default)]
pub struct TokenStore {
    issued: HashMap<String, Issued>,
}

/// A token endpoint answer.
#[derive(Debug)]
pub struct Grant {
    pub access_token: String,
    pub expires_in: u64,
}

/// Maps a requested scope to the audience of the token (`{resource}/.default`).
pub fn audience_of_scope(scope: &str) -> Option<String> {
    let first = scope.split_whitespace().find(|s| s.ends_with("/.default"))?;
    let aud = first.trim_end_matches("/.default").trim_end_matches('/');
    if aud.is_empty() {
        return None;
    }
    Some(aud.to_string())
}

impl TokenStore {
    pub fn issue(&mut self, token: String, audience: String, client_id: String, lifetime: Duration) -> Grant {
        // Forget expired tokens now and then so the map stays small.
        if self.issued.len() > 10_000 {
            let now = Instant::now();
            self.issued.retain(|_, i| i.expires > now);
        }
        self.issued.insert(
            token.clone(),
            Issued {
                audience,
                client_id,
                expires: Instant::now() + lifetime,
            },
        );
        Grant {
            access_token: token,
            expires_in: lifetime.as_secs(),
        }
    }

    /// Checks a bearer token for an audience; returns the client id it was issued to.
    pub fn check(&self, token: Option<&str>, audience: &str) -> Result<String, TokenProblem> {
        let token = token.ok_or(TokenProblem::Missing)?;
        let t = self.issued.get(token).ok_or(TokenProblem::Invalid)?;
        if t.expires <= Instant::now() {
            return Err(TokenProblem::Expired);
        }
        if !t
            .audience
            .trim_end_matches('/')
            .eq_ignore_ascii_case(audience.trim_end_matches('/'))
        {
            return Err(TokenProblem::WrongAudience);
        }
        Ok(t.client_id.clone())
    }

    /// Every token issued so far (tests check that none leaks into logs).
    pub fn issued(&self) -> Vec<String> {
        self.issued.keys().cloned().collect()
    }

    /// Makes every issued token expire now (a test hook: clients must refresh on 401).
    pub fn expire_all(&mut self) {
        let now = Instant::now();
        for t in self.issued.values_mut() {
            t.expires = now;
        }
    }
}

/// The bearer token of an `Authorization` header, if any.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_and_checks() {
        let mut s = TokenStore::default();
        s.issue("t1".into(), ARM_AUDIENCE.into(), "c".into(), Duration::from_secs(60));
        assert_eq!(s.check(Some("t1"), "https://management.azure.com/"), Ok("c".into()));
        assert_eq!(s.check(Some("t1"), AKS_SERVER_APP), Err(TokenProblem::WrongAudience));
        assert_eq!(s.check(Some("nope"), ARM_AUDIENCE), Err(TokenProblem::Invalid));
        assert_eq!(s.check(None, ARM_AUDIENCE), Err(TokenProblem::Missing));
        s.expire_all();
        assert_eq!(s.check(Some("t1"), ARM_AUDIENCE), Err(TokenProblem::Expired));
        assert_eq!(
            audience_of_scope("https://management.azure.com/.default").as_deref(),
            Some(ARM_AUDIENCE)
        );
        assert_eq!(
            audience_of_scope(&format!("{AKS_SERVER_APP}/.default")).as_deref(),
            Some(AKS_SERVER_APP)
        );
    }
}
