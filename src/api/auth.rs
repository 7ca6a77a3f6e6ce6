//! Who is calling: static bearer tokens from a file (for scripts and CI) and Entra ID
//! JWTs (for people), and what they may do.
//!
//! - Static tokens are stored as SHA-256 digests only, so the tokens file is not a
//!   secret worth stealing; a presented token is hashed and compared with every stored
//!   digest in constant time (no early exit), so timing tells nothing about a near miss.
//! - Entra ID tokens are checked by [`super::entra::EntraValidator`].
//! - Groups decide everything: ring approvers come from the rollout's policy
//!   ([`crate::service::Control::ring_approval`]); the operator groups given to `serve`
//!   may pause, resume, abort, skip, end soaks and start rollouts; any authenticated
//!   caller may read. With no operator group configured nobody may operate (fail closed).
//!
//! Every refusal (401 and 403) is counted in the audit log as `auth.denied` with the
//! method and (cut) path, never the token: the first of each source and reason per
//! minute as a row, the rest as a count (see [`super::denials`]).

use super::ApiState;
use super::entra::{EntraConfig, EntraValidator};
use super::error::ApiError;
use super::oidc::SignInConfig;
use crate::identity::Redacted;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Caller {
    /// The token's name, or the user's `preferred_username` / `upn` / `oid`.
    pub name: String,
    /// Groups (static tokens), or the JWT's `groups` and `roles` claims.
    pub groups: Vec<String>,
    pub via: Via,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Via {
    Token,
    Entra,
    /// A dashboard session cookie (made from a token or an Entra sign-in; the
    /// `session.created` audit row says which).
    Session,
}

/// A request the API knows: what a denial is recorded against.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub caller: Caller,
    pub method: String,
    pub path: String,
}

/// An authentication failure: status 401 (or 503 when Entra's keys can't be fetched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Who the caller claims to be, when a token was readable but not acceptable.
    pub actor: Option<String>,
}

impl Denied {
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Denied {
            status: StatusCode::UNAUTHORIZED,
            code,
            message: message.into(),
            actor: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading the tokens file {path}: {source}")]
    ReadTokens {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    BadTokens { file: String, message: String },
    #[error("no authentication configured: give --tokens-file and/or --entra-tenant with --entra-audience")]
    NothingConfigured,
    #[error("--entra-tenant needs at least one --entra-audience (the API's client id or App ID URI)")]
    NoAudience,
    #[error("{0}")]
    SignIn(&'static str),
    #[error("reading the client secret file {path}: {source}")]
    ReadSecret {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the client secret file {0} is empty")]
    EmptySecret(PathBuf),
    #[error("--public-url {0}")]
    PublicUrl(String),
}

/// One static token: a name, groups, and the SHA-256 of the token.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticToken {
    pub name: String,
    pub groups: Vec<String>,
    pub digest: [u8; 32],
}

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticToken")
            .field("name", &self.name)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

/// The tokens file: `tokens: [{name, groups: [..], sha256: <hex>}]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    tokens: Vec<TokenEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    /// Who uses the token: the actor in the audit log.
    name: String,
    #[serde(default)]
    groups: Vec<String>,
    /// Lowercase or uppercase hex of SHA-256(token).
    sha256: String,
}

/// Parses a tokens file; every problem is reported at once.
pub fn parse_tokens(file: &str, text: &str) -> Result<Vec<StaticToken>, AuthError> {
    let bad = |message: String| AuthError::BadTokens {
        file: file.to_string(),
        message,
    };
    let parsed: TokensFile = serde_saphyr::from_str(text).map_err(|e| bad(e.to_string()))?;
    let mut problems = Vec::new();
    let mut out: Vec<StaticToken> = Vec::new();
    for (i, t) in parsed.tokens.into_iter().enumerate() {
        let digest = decode_hex32(&t.sha256);
        if t.name.trim().is_empty() {
            problems.push(format!("token {}: empty name", i + 1));
        }
        if out.iter().any(|o| o.name == t.name) {
            problems.push(format!("token {}: the name `{}` is used twice", i + 1, t.name));
        }
        match digest {
            None => problems.push(format!("token `{}`: sha256 must be 64 hex digits", t.name)),
            Some(d) if out.iter().any(|o| o.digest == d) => {
                problems.push(format!("token `{}`: the same token is listed twice", t.name))
            }
            Some(d) => out.push(StaticToken {
                name: t.name,
                groups: t.groups,
                digest: d,
            }),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(bad(problems.join("; ")))
    }
}

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim().as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Hex of SHA-256(token): the line that goes into the tokens file.
pub fn token_digest_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new random token (256 bits from the OS, base64url, `rmt_` prefix so it is
/// recognisable in a secret scanner and never mistaken for a JWT).
pub fn generate_token() -> Result<Redacted, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(Redacted(format!(
        "rmt_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )))
}

/// The tokens-file entry for `token` (YAML, indented for the `tokens:` list).
pub fn token_entry_yaml(name: &str, groups: &[String], token: &Redacted) -> String {
    let groups = serde_json::to_string(groups).unwrap_or_else(|_| "[]".into());
    format!(
        "  - name: {}\n    groups: {groups}\n    sha256: {}\n",
        serde_json::Value::from(name),
        token_digest_hex(&token.0)
    )
}

/// How callers are authenticated and which groups may operate.
#[derive(Debug)]
pub struct Auth {
    tokens: Vec<StaticToken>,
    entra: Option<EntraValidator>,
    operators: Vec<String>,
    sign_in: Option<SignInConfig>,
}

impl Auth {
    pub fn new(tokens: Vec<StaticToken>, entra: Option<EntraValidator>, operators: Vec<String>) -> Self {
        Auth {
            tokens,
            entra,
            operators,
            sign_in: None,
        }
    }

    /// Lets the dashboard sign users in with Entra ID (needs the Entra validator).
    pub fn with_sign_in(mut self, cfg: SignInConfig) -> Self {
        self.sign_in = Some(cfg);
        self
    }

    pub fn entra(&self) -> Option<&EntraValidator> {
        self.entra.as_ref()
    }

    /// The dashboard's Entra ID sign-in, when `--entra-client-id` configured one.
    pub fn sign_in(&self) -> Option<&SignInConfig> {
        self.sign_in.as_ref().filter(|_| self.entra.is_some())
    }

    /// Whether browsers reach the dashboard over HTTPS by the sign-in's public URL: its
    /// cookies are then `Secure` whatever `--secure-cookies` says.
    pub fn public_url_is_https(&self) -> bool {
        self.sign_in
            .as_ref()
            .is_some_and(|c| c.redirect_uri.starts_with("https://"))
    }

    /// Reads a tokens file.
    pub fn load_tokens(path: &Path) -> Result<Vec<StaticToken>, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::ReadTokens {
            path: path.to_path_buf(),
            source,
        })?;
        parse_tokens(&path.display().to_string(), &text)
    }

    /// Groups that may pause, resume, abort, skip, end a soak and start a rollout.
    pub fn operators(&self) -> &[String] {
        &self.operators
    }

    pub fn is_operator(&self, c: &Caller) -> bool {
        intersects(&c.groups, &self.operators)
    }

    /// Checks the `Authorization` header.
    pub async fn authenticate(&self, header: Option<&HeaderValue>) -> Result<Caller, Denied> {
        let Some(value) = header else {
            return Err(Denied::unauthorized(
                "missing_token",
                "no bearer token: send `Authorization: Bearer <token>`",
            ));
        };
        let value = value
            .to_str()
            .map_err(|_| Denied::unauthorized("bad_authorization", "the Authorization header is not text"))?;
        let token = match value.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => t.trim(),
            _ => {
                return Err(Denied::unauthorized(
                    "bad_authorization",
                    "the Authorization header must be `Bearer <token>`",
                ));
            }
        };
        // Static tokens first: hashing is cheap, and a hand-made token may hold dots.
        if let Some(caller) = self.static_token(token) {
            return Ok(caller);
        }
        if token.split('.').count() == 3 {
            return match &self.entra {
                Some(v) => v.validate(token).await,
                None => Err(Denied::unauthorized(
                    "invalid_token",
                    "this server accepts no Entra ID tokens (no --entra-tenant)",
                )),
            };
        }
        Err(Denied::unauthorized("invalid_token", "the token is not valid"))
    }

    /// Looks a static token up by its digest, in time independent of which (if any)
    /// stored digest matches.
    fn static_token(&self, token: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found: Option<&StaticToken> = None;
        for t in &self.tokens {
            if bool::from(t.digest[..].ct_eq(&digest[..])) {
                found = Some(t);
            }
        }
        found.map(|t| Caller {
            name: t.name.clone(),
            groups: t.groups.clone(),
            via: Via::Token,
        })
    }
}

/// True when the two group lists share a group (case-sensitive: Entra group object
/// ids and app role values are compared as issued).
pub fn intersects(a: &[String], b: &[String]) -> bool {
    a.iter().any(|g| b.contains(g))
}

/// `serve`'s authentication flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AuthArgs {
    /// YAML file of static bearer tokens: `tokens: [{name, groups: [..], sha256: <hex>}]`.
    /// Make entries with `ringmaster token new`.
    #[arg(long, env = "RINGMASTER_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// Entra ID tenant (id or domain) whose access tokens the API accepts.
    #[arg(long, env = "RINGMASTER_ENTRA_TENANT")]
    pub entra_tenant: Option<String>,
    /// Accepted `aud` values: the API app's client id and/or App ID URI (repeat, or
    /// comma-separated).
    #[arg(long, env = "RINGMASTER_ENTRA_AUDIENCE", value_delimiter = ',')]
    pub entra_audience: Vec<String>,
    /// Entra ID authority host; the OpenID configuration is read from
    /// `{authority}/{tenant}/v2.0/.well-known/openid-configuration`.
    #[arg(
        long,
        env = "RINGMASTER_ENTRA_AUTHORITY",
        default_value = "https://login.microsoftonline.com"
    )]
    pub entra_authority: String,
    /// More accepted issuers, e.g. `https://sts.windows.net/<tenant-id>/` for v1 tokens
    /// (by default only the v2 issuer from the OpenID configuration is accepted).
    #[arg(long, env = "RINGMASTER_ENTRA_ISSUER", value_delimiter = ',')]
    pub entra_issuer: Vec<String>,
    /// Groups that may pause, resume, abort, skip clusters, end soaks and start rollouts
    /// (repeat, or comma-separated). Approvals are decided by each ring's approver groups.
    #[arg(long = "operator-group", env = "RINGMASTER_OPERATOR_GROUPS", value_delimiter = ',')]
    pub operator_groups: Vec<String>,
    /// The dashboard's Entra ID sign-in: the client id of a "web" app registration in
    /// the tenant, with `{--public-url}/auth/callback` as its redirect URI and ID tokens
    /// that carry `groups` (or app roles). Needs --entra-tenant,
    /// --entra-client-secret-file and --public-url.
    #[arg(long, env = "RINGMASTER_ENTRA_CLIENT_ID", requires = "entra_tenant")]
    pub entra_client_id: Option<String>,
    /// File holding that app's client secret (a mounted Kubernetes secret, say): the
    /// code is redeemed by the server, never by the page.
    #[arg(long, env = "RINGMASTER_ENTRA_CLIENT_SECRET_FILE", requires = "entra_client_id")]
    pub entra_client_secret_file: Option<PathBuf>,
    /// The address browsers reach the dashboard at (`https://ringmaster.example.com`):
    /// the sign-in's redirect URI is this plus `/auth/callback`.
    #[arg(long, env = "RINGMASTER_PUBLIC_URL")]
    pub public_url: Option<String>,
}

impl AuthArgs {
    /// Builds the authenticator; `http` fetches Entra's signing keys.
    pub fn build(&self, http: reqwest::Client) -> Result<Auth, AuthError> {
        let tokens = match &self.tokens_file {
            Some(p) => Auth::load_tokens(p)?,
            None => Vec::new(),
        };
        let entra = match &self.entra_tenant {
            Some(tenant) => {
                if self.entra_audience.is_empty() {
                    return Err(AuthError::NoAudience);
                }
                let mut cfg = EntraConfig::new(&self.entra_authority, tenant, self.entra_audience.clone());
                cfg.extra_issuers = self.entra_issuer.clone();
                Some(EntraValidator::new(cfg, http))
            }
            None => None,
        };
        if self.tokens_file.is_none() && entra.is_none() {
            return Err(AuthError::NothingConfigured);
        }
        let auth = Auth::new(tokens, entra, self.operator_groups.clone());
        match &self.entra_client_id {
            Some(client_id) => Ok(auth.with_sign_in(self.sign_in_config(client_id)?)),
            None => Ok(auth),
        }
    }

    fn sign_in_config(&self, client_id: &str) -> Result<SignInConfig, AuthError> {
        let path = self.entra_client_secret_file.as_ref().ok_or(AuthError::SignIn(
            "--entra-client-id needs --entra-client-secret-file (the app's client secret)",
        ))?;
        let secret = std::fs::read_to_string(path).map_err(|source| AuthError::ReadSecret {
            path: path.clone(),
            source,
        })?;
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(AuthError::EmptySecret(path.clone()));
        }
        let public = self.public_url.as_deref().ok_or(AuthError::SignIn(
            "--entra-client-id needs --public-url (the address browsers use: the redirect URI is it plus /auth/callback)",
        ))?;
        let base = url::Url::parse(public).map_err(|e| AuthError::PublicUrl(format!("{public}: {e}")))?;
        // The sign-in's cookie and redirects live at the root: a path would break them.
        if !matches!(base.scheme(), "http" | "https")
            || base.query().is_some()
            || base.fragment().is_some()
            || base.path() != "/"
        {
            return Err(AuthError::PublicUrl(format!(
                "{public}: an http(s) address with no path, query or fragment (https://ringmaster.example.com)"
            )));
        }
        Ok(SignInConfig {
            client_id: client_id.to_string(),
            client_secret: Redacted(secret.to_string()),
            redirect_uri: format!("{}/auth/callback", public.trim_end_matches('/')),
        })
    }
}

/// Refuses a caller who is authenticated but not allowed: audited, 403.
pub(crate) async fn forbid(state: &ApiState, ctx: &Ctx, message: String, extra: serde_json::Value) -> ApiError {
    super::sampled::record_denial(
        state,
        Some(&ctx.caller.name),
        "",
        &ctx.method,
        &ctx.path,
        StatusCode::FORBIDDEN,
        &message,
        extra,
    )
    .await;
    ApiError::forbidden(message)
}

/// Middleware on every route but health: authenticates, or refuses with 401 (audited).
pub(crate) async fn require_auth(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let peer = super::server::peer(&req);
    let authorization = req.headers().get(header::AUTHORIZATION);
    let outcome = match (authorization, super::session::cookie_value(req.headers())) {
        (None, Some(id)) => from_session(&state, &id, &req),
        (h, _) => state.auth.authenticate(h).await,
    };
    match outcome {
        Ok(caller) => {
            req.extensions_mut().insert(Ctx { caller, method, path });
            next.run(req).await
        }
        Err(d) => {
            super::sampled::record_denied(&state, &d, &peer, &method, &path).await;
            let mut e = ApiError::new(d.status, d.code, d.message.clone());
            if d.status == StatusCode::UNAUTHORIZED {
                // RFC 6750: no error attribute when the request had no credentials.
                e.challenge = Some(if d.code == "missing_token" {
                    "Bearer realm=\"ringmaster\"".to_string()
                } else {
                    format!(
                        "Bearer realm=\"ringmaster\", error=\"invalid_token\", error_description=\"{}\"",
                        d.message.replace(['"', '\\'], "'")
                    )
                });
            }
            e.into_response()
        }
    }
}

/// The caller of a dashboard session; a change also needs the session's CSRF token.
fn from_session(state: &ApiState, id: &str, req: &Request) -> Result<Caller, Denied> {
    let Some((mut caller, csrf)) = state.sessions.get(id) else {
        return Err(Denied::unauthorized(
            "session_expired",
            "the session is unknown or has expired: sign in again",
        ));
    };
    let safe = matches!(*req.method(), http::Method::GET | http::Method::HEAD);
    let sent = req
        .headers()
        .get(super::session::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !safe && !super::session::csrf_matches(sent, &csrf) {
        return Err(Denied {
            status: StatusCode::FORBIDDEN,
            code: "csrf",
            message: format!(
                "a change made with a session cookie needs the session's `{}` header",
                super::session::CSRF_HEADER
            ),
            actor: Some(caller.name),
        });
    }
    caller.via = Via::Session;
    Ok(caller)
}
