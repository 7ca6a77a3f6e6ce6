//! The CLI's HTTP client: bearer token on every call, the API's JSON error message on
//! refusal. The token lives in a [`Redacted`] and is never printed or logged.

use crate::identity::Redacted;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Why a call failed.
#[derive(Debug)]
pub enum ClientError {
    /// The API answered with an error (its JSON `error.message` and `error.code`).
    Refused { status: u16, code: String, message: String },
    /// No answer: connection refused, TLS, timeout, or a body that is not JSON.
    Transport(String),
    /// Bad flags or environment (exit code 2).
    Usage(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Refused { status, code, message } => write!(f, "{message} ({code}, HTTP {status})"),
            ClientError::Transport(m) | ClientError::Usage(m) => f.write_str(m),
        }
    }
}

pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Redacted,
}

/// Percent-encodes one path segment (ring and cluster names may hold `/`).
pub fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl ApiClient {
    pub fn new(server: &str, token: Redacted, ca: Option<&Path>, timeout: Duration) -> Result<Self, ClientError> {
        crate::identity::install_crypto_provider();
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(ClientError::Usage(format!(
                "--server must be an http:// or https:// URL, not `{server}`"
            )));
        }
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("ringmaster-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca {
            let pem = std::fs::read(path)
                .map_err(|e| ClientError::Usage(format!("reading the CA certificate {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| ClientError::Usage(format!("{} holds no PEM certificate", path.display())))?;
            b = b.tls_certs_merge(certs);
        }
        let http = b
            .build()
            .map_err(|e| ClientError::Transport(format!("building the HTTP client: {e}")))?;
        Ok(ApiClient {
            http,
            base: server.trim_end_matches('/').to_string(),
            token,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.call(self.http.get(format!("{}{path}", self.base))).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value, ClientError> {
        self.call(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let resp = req
            .bearer_auth(&self.token.0)
            .send()
            .await
            .map_err(|e| ClientError::Transport(format!("cannot reach {}: {}", self.base, error_chain(&e))))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(format!("reading the answer of {}: {e}", self.base)))?;
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status.is_success() {
            return body.ok_or_else(|| {
                ClientError::Transport(format!("{} answered with something that is not JSON", self.base))
            });
        }
        let err = body.as_ref().and_then(|b| b.get("error"));
        Err(ClientError::Refused {
            status: status.as_u16(),
            code: err.and_then(|e| e["code"].as_str()).unwrap_or("http_error").to_string(),
            message: err
                .and_then(|e| e["message"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| format!("the server answered {status}")),
        })
    }
}

/// The error and its causes (reqwest hides the useful part in `source()`).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
