//! Entra ID access tokens: RS256 JWTs checked against the tenant's signing keys.
//!
//! The keys come from the tenant's OpenID configuration
//! (`{authority}/{tenant}/v2.0/.well-known/openid-configuration` -> `jwks_uri`), which
//! also gives the issuer to expect. They are cached; a token signed with a key id not in
//! the cache makes one refetch (Entra rotates keys, and a new key shows up in tokens
//! before our cache knows it), but at most once per `refresh_cooldown`, so a stream of
//! tokens with made-up key ids can't turn the API into a load generator against Entra.
//! The discovery is lazy: `serve` starts (and static tokens work) while Entra is
//! unreachable.
//!
//! Checked: signature (RS256 only: the algorithm is ours to choose, never the token's),
//! issuer, audience, `exp` and `nbf` (60 s leeway for clock skew, against the wall
//! clock: Entra issues tokens in real time even when the daemon runs on a virtual one).

use super::auth::{Caller, Denied, Via};
use super::jwt::{self, Expect, RsaKey};
use axum::http::StatusCode;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Where the tenant's keys are and which tokens are for us.
#[derive(Debug, Clone)]
pub struct EntraConfig {
    /// `https://login.microsoftonline.com` (or a sovereign cloud's, or a test server's).
    pub authority: String,
    pub tenant: String,
    /// Accepted `aud` values.
    pub audiences: Vec<String>,
    /// Accepted besides the issuer of the OpenID configuration.
    pub extra_issuers: Vec<String>,
    /// Least time between two fetches caused by unknown key ids.
    pub refresh_cooldown: Duration,
    /// Keys older than this are refetched before use.
    pub max_key_age: Duration,
}

impl EntraConfig {
    pub fn new(authority: &str, tenant: &str, audiences: Vec<String>) -> Self {
        EntraConfig {
            authority: authority.trim_end_matches('/').to_string(),
            tenant: tenant.to_string(),
            audiences,
            extra_issuers: Vec::new(),
            refresh_cooldown: Duration::from_secs(60),
            max_key_age: Duration::from_secs(24 * 3600),
        }
    }

    fn discovery_url(&self) -> String {
        format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            self.authority, self.tenant
        )
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    /// Where the dashboard's sign-in sends the browser, and redeems the code.
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

struct KeySet {
    issuer: String,
    keys: HashMap<String, RsaKey>,
    fetched: Instant,
    endpoints: Option<Endpoints>,
}

/// The tenant's authorization and token endpoints (from its OpenID configuration).
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
}

/// The claims ringmaster reads (the signature check covers the whole token).
#[derive(Deserialize)]
struct Claims {
    preferred_username: Option<String>,
    upn: Option<String>,
    oid: Option<String>,
    sub: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
    /// ID tokens: the value the sign-in sent, so a token minted for another sign-in
    /// cannot be replayed into this one.
    nonce: Option<String>,
}

/// Validates Entra ID access tokens.
pub struct EntraValidator {
    config: EntraConfig,
    http: reqwest::Client,
    /// Held across a fetch, so concurrent requests wait for one fetch, not start many.
    keys: tokio::sync::Mutex<Option<KeySet>>,
    /// When an unknown key id last caused a fetch.
    last_forced: std::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for EntraValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraValidator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn unavailable(message: String) -> Denied {
    Denied {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "auth_unavailable",
        message,
        actor: None,
    }
}

impl EntraValidator {
    pub fn new(config: EntraConfig, http: reqwest::Client) -> Self {
        EntraValidator {
            config,
            http,
            keys: tokio::sync::Mutex::new(None),
            last_forced: std::sync::Mutex::new(None),
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let resp = self
            .http
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        resp.json().await.map_err(|e| format!("{url}: {e}"))
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let d: Discovery = self.get_json(&self.config.discovery_url()).await?;
        let set: JwkSet = self.get_json(&d.jwks_uri).await?;
        let keys = set
            .keys
            .into_iter()
            .filter(|k| k.kty == "RSA" && k.use_.as_deref().is_none_or(|u| u == "sig"))
            .filter_map(|k| {
                let key = RsaKey::from_components(k.n.as_deref()?, k.e.as_deref()?)?;
                Some((k.kid?, key))
            })
            .collect();
        tracing::info!(issuer = %d.issuer, "fetched the Entra ID signing keys");
        let endpoints = match (d.authorization_endpoint, d.token_endpoint) {
            (Some(authorization), Some(token)) => Some(Endpoints { authorization, token }),
            _ => None,
        };
        Ok(KeySet {
            issuer: d.issuer,
            keys,
            fetched: Instant::now(),
            endpoints,
        })
    }

    /// The key `kid` and the issuer, fetching the key set when needed.
    async fn key(&self, kid: &str) -> Result<(RsaKey, String), Denied> {
        let mut guard = self.keys.lock().await;
        let stale = guard
            .as_ref()
            .is_none_or(|k| k.fetched.elapsed() >= self.config.max_key_age);
        let unknown = guard.as_ref().is_some_and(|k| !k.keys.contains_key(kid));
        let may_force = {
            let mut last = self.last_forced.lock().unwrap_or_else(|e| e.into_inner());
            let ok = last.is_none_or(|t| t.elapsed() >= self.config.refresh_cooldown);
            if unknown && ok {
                *last = Some(Instant::now());
            }
            ok
        };
        if stale || (unknown && may_force) {
            match self.fetch().await {
                Ok(k) => *guard = Some(k),
                // Keep serving from the old keys when a refresh fails.
                Err(e) if guard.is_some() => tracing::warn!(error = %e, "refreshing the Entra ID keys failed"),
                Err(e) => return Err(unavailable(format!("cannot fetch the Entra ID signing keys: {e}"))),
            }
        }
        let set = guard
            .as_ref()
            .ok_or_else(|| unavailable("no Entra ID signing keys".into()))?;
        match set.keys.get(kid) {
            Some(k) => Ok((k.clone(), set.issuer.clone())),
            None => Err(Denied::unauthorized(
                "invalid_token",
                format!("the token is signed with a key the tenant does not publish (kid {kid})"),
            )),
        }
    }

    /// The tenant's authorization and token endpoints, reading its OpenID
    /// configuration when it has not been read yet.
    pub async fn endpoints(&self) -> Result<Endpoints, Denied> {
        let mut guard = self.keys.lock().await;
        if guard.is_none() {
            let k = self
                .fetch()
                .await
                .map_err(|e| unavailable(format!("cannot read the Entra ID configuration: {e}")))?;
            *guard = Some(k);
        }
        guard.as_ref().and_then(|k| k.endpoints.clone()).ok_or_else(|| {
            unavailable("the tenant's OpenID configuration has no authorization or token endpoint".into())
        })
    }

    /// Redeems an authorization code at the token endpoint (`form` carries the code,
    /// the PKCE verifier and the client's credentials); the ID token it answers with.
    /// Entra's own error text is kept (it names the problem, never the secret).
    pub async fn redeem(&self, token_endpoint: &str, form: &[(&str, &str)]) -> Result<String, String> {
        #[derive(Deserialize)]
        struct Answer {
            id_token: Option<String>,
            error: Option<String>,
            error_description: Option<String>,
        }
        let resp = self
            .http
            .post(token_endpoint)
            .form(form)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("{token_endpoint}: {e}"))?;
        let status = resp.status();
        let a: Answer = resp
            .json()
            .await
            .map_err(|e| format!("{token_endpoint}: HTTP {status}, {e}"))?;
        match (a.id_token, a.error) {
            (Some(t), None) if status.is_success() => Ok(t),
            (_, e) => Err(format!(
                "Entra refused the sign-in: {} {}",
                e.unwrap_or_else(|| format!("HTTP {status}")),
                a.error_description.unwrap_or_default()
            )
            .trim()
            .to_string()),
        }
    }

    /// Validates an access token for this API; the caller's name and groups come from
    /// its claims.
    pub async fn validate(&self, token: &str) -> Result<Caller, Denied> {
        self.validate_for(token, &self.config.audiences, None).await
    }

    /// Validates the ID token of a dashboard sign-in: issued to `client_id`, carrying
    /// the sign-in's `nonce`.
    pub async fn validate_id_token(&self, token: &str, client_id: &str, nonce: &str) -> Result<Caller, Denied> {
        self.validate_for(token, &[client_id.to_string()], Some(nonce)).await
    }

    async fn validate_for(&self, token: &str, audiences: &[String], nonce: Option<&str>) -> Result<Caller, Denied> {
        let header = jwt::decode_header(token)
            .map_err(|_| Denied::unauthorized("invalid_token", "the token is not a well-formed JWT"))?;
        if header.alg != "RS256" {
            return Err(Denied::unauthorized(
                "invalid_token",
                format!("tokens signed with {:?} are not accepted (RS256 only)", header.alg),
            ));
        }
        let kid = header
            .kid
            .ok_or_else(|| Denied::unauthorized("invalid_token", "the token names no signing key (kid)"))?;
        let (key, issuer) = self.key(&kid).await?;
        let mut issuers = vec![issuer];
        issuers.extend(self.config.extra_issuers.iter().cloned());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let expect = Expect {
            issuers: &issuers,
            audiences,
            leeway: 60,
            now,
        };
        let c: Claims = jwt::verify_rs256(token, &key, &expect)
            .map_err(|e| Denied::unauthorized("invalid_token", e.to_string()))?;
        match (nonce, c.nonce.as_deref()) {
            (Some(want), got) if !got.is_some_and(|got| super::session::csrf_matches(got, want)) => {
                return Err(Denied::unauthorized(
                    "invalid_token",
                    "the ID token's nonce is not this sign-in's",
                ));
            }
            // An ID token (a sign-in's, with its nonce) is not an access token, even
            // when the sign-in app is also the API's audience.
            (None, Some(_)) => {
                return Err(Denied::unauthorized(
                    "invalid_token",
                    "an ID token is not an access token: request a token for the API's audience",
                ));
            }
            _ => {}
        }
        let name = c.preferred_username.or(c.upn).or(c.oid).or(c.sub).ok_or_else(|| {
            Denied::unauthorized(
                "invalid_token",
                "the token names nobody (no preferred_username, upn, oid or sub)",
            )
        })?;
        let mut groups = c.groups;
        groups.extend(c.roles);
        Ok(Caller {
            name,
            groups,
            via: Via::Entra,
        })
    }
}
