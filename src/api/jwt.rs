//! Just enough of JWS/JWT (RFC 7515/7519) to check an Entra ID access token: the compact
//! form, the header's `alg` and `kid`, an RS256 signature checked with ring against the
//! tenant's public key, and the registered claims `exp`, `nbf`, `iss` and `aud`.
//!
//! Why not a JWT crate: the one in use pulled RustCrypto's `rsa` (RUSTSEC-2023-0071) and a
//! second crypto stack into a tree that already has ring through rustls. ringmaster only
//! ever verifies one algorithm with public keys, which is a few lines over ring.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a token was refused; each maps to one sentence for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token is for another audience")]
    Audience,
    #[error("the token is from another issuer")]
    Issuer,
    #[error("the token has no `{0}` claim")]
    MissingClaim(&'static str),
}

/// The protected header's fields ringmaster reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    pub alg: String,
    pub kid: Option<String>,
}

/// An RSA public key from a JWK's `n` and `e`.
#[derive(Clone)]
pub struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl RsaKey {
    /// The key of a JWK (`n` and `e` base64url without padding); `None` if either is not.
    pub fn from_components(n: &str, e: &str) -> Option<RsaKey> {
        Some(RsaKey {
            n: URL_SAFE_NO_PAD.decode(n).ok()?,
            e: URL_SAFE_NO_PAD.decode(e).ok()?,
        })
    }
}

/// What a token must carry to be accepted.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    /// One of these is the `iss`.
    pub issuers: &'a [String],
    /// `aud` (a string or a list) names one of these.
    pub audiences: &'a [String],
    /// Tolerated clock skew, in seconds.
    pub leeway: i64,
    /// The current time, seconds since the Unix epoch.
    pub now: i64,
}

/// The three parts of a compact JWS.
fn parts(token: &str) -> Result<(&str, &str, &str), JwtError> {
    let mut it = token.split('.');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(h), Some(p), Some(s), None) => Ok((h, p, s)),
        _ => Err(JwtError::Malformed),
    }
}

fn decode_json<T: DeserializeOwned>(part: &str) -> Result<T, JwtError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

/// The token's header, before anything is verified (to pick the key).
pub fn decode_header(token: &str) -> Result<Header, JwtError> {
    decode_json(parts(token)?.0)
}

/// A NumericDate claim: a number of seconds (fractions allowed by RFC 7519).
fn date(claims: &Value, name: &'static str) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v.as_f64().map(|f| Some(f as i64)).ok_or(JwtError::Malformed),
    }
}

/// Checks the RS256 signature of `token` with `key`, then its claims against `expect`,
/// and returns the claims as `C`. The algorithm is the caller's choice, never the
/// token's: a header naming anything but RS256 is refused before the signature.
pub fn verify_rs256<C: DeserializeOwned>(token: &str, key: &RsaKey, expect: &Expect<'_>) -> Result<C, JwtError> {
    let (h, p, s) = parts(token)?;
    let header: Header = decode_json(h)?;
    if header.alg != "RS256" {
        return Err(JwtError::BadSignature);
    }
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let signed = &token[..h.len() + 1 + p.len()];
    RsaPublicKeyComponents { n: &key.n, e: &key.e }
        .verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &signature)
        .map_err(|_| JwtError::BadSignature)?;

    let claims: Value = decode_json(p)?;
    if !claims.is_object() {
        return Err(JwtError::Malformed);
    }
    let exp = date(&claims, "exp")?.ok_or(JwtError::MissingClaim("exp"))?;
    if exp.saturating_add(expect.leeway) < expect.now {
        return Err(JwtError::Expired);
    }
    if let Some(nbf) = date(&claims, "nbf")?
        && nbf.saturating_sub(expect.leeway) > expect.now
    {
        return Err(JwtError::NotYetValid);
    }
    let iss = claims.get("iss").ok_or(JwtError::MissingClaim("iss"))?;
    if !iss.as_str().is_some_and(|i| expect.issuers.iter().any(|x| x == i)) {
        return Err(JwtError::Issuer);
    }
    let aud = claims.get("aud").ok_or(JwtError::MissingClaim("aud"))?;
    let ours = |a: &Value| a.as_str().is_some_and(|a| expect.audiences.iter().any(|x| x == a));
    let matches = match aud {
        Value::Array(list) => list.iter().any(ours),
        one => ours(one),
    };
    if !matches {
        return Err(JwtError::Audience);
    }
    serde_json::from_value(claims).map_err(|_| JwtError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_key_is_needed() {
        for t in ["", "a", "a.b", "a.b.c.d", "!!.e30.x", "e30.e30"] {
            assert!(decode_header(t).is_err(), "{t}");
        }
        let h = b64(&serde_json::json!({"alg": "RS256", "kid": "k"}));
        let header = decode_header(&format!("{h}.e30.sig")).unwrap();
        assert_eq!((header.alg.as_str(), header.kid.as_deref()), ("RS256", Some("k")));
    }

    #[test]
    fn a_header_naming_another_algorithm_is_refused() {
        let key = RsaKey::from_components("AQAB", "AQAB").unwrap();
        let expect = Expect {
            issuers: &[],
            audiences: &[],
            leeway: 60,
            now: 0,
        };
        for alg in ["HS256", "none", "RS384", "rs256"] {
            let t = format!("{}.e30.", b64(&serde_json::json!({ "alg": alg })));
            assert_eq!(
                verify_rs256::<Value>(&t, &key, &expect).unwrap_err(),
                JwtError::BadSignature
            );
        }
    }
}
