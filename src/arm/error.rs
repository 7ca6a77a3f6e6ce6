//! ARM errors: both shapes Azure uses (flat resource-provider errors and wrapped ARM
//! errors) parsed into one type that keeps AKS's code, subcode and message.

use serde_json::Value;

/// What a failed ARM call said.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ArmError {
    /// The service answered with an error status.
    #[error("{method} {path}: HTTP {status} {code}{}: {message}", subcode.as_deref().map(|s| format!(" ({s})")).unwrap_or_default())]
    Service {
        method: String,
        /// Path without query (no tokens or secrets ever appear in URLs here).
        path: String,
        status: u16,
        code: String,
        subcode: Option<String>,
        message: String,
    },
    /// No answer: connection refused, reset, TLS failure, timeout.
    #[error("{method} {path}: {message}")]
    Transport {
        method: String,
        path: String,
        message: String,
        /// True when the request may have reached the server (a write may have happened).
        maybe_sent: bool,
    },
    /// An answer that is not the expected JSON.
    #[error("{method} {path}: unexpected response: {message}")]
    Decode {
        method: String,
        path: String,
        message: String,
    },
    /// Getting a token failed.
    #[error("getting an Azure token failed: {0}")]
    Auth(String),
    /// A long-running operation ended Failed or Canceled.
    #[error("operation {status}: {code}: {message}")]
    Operation {
        status: String,
        code: String,
        message: String,
    },
    /// Gave up after retries.
    #[error("{method} {path}: gave up after {attempts} attempts: {last}")]
    Exhausted {
        method: String,
        path: String,
        attempts: u32,
        last: String,
    },
}

impl ArmError {
    /// AKS's error code, when the service gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ArmError::Service { code, .. } | ArmError::Operation { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ArmError::Service { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            ArmError::Service { status: 400..=499, .. } => "client_error",
            ArmError::Service { .. } => "server_error",
            ArmError::Transport { .. } => "transport",
            ArmError::Decode { .. } => "decode",
            ArmError::Auth(_) => "auth",
            ArmError::Operation { .. } => "operation_failed",
            ArmError::Exhausted { .. } => "exhausted",
        }
    }
}

/// Parses an error body: `{"error": {code, message, ...}}` (ARM) or `{code, message,
/// subcode}` (AKS, flat). Falls back to the status text.
pub fn parse_error_body(body: &[u8]) -> (String, Option<String>, String) {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let inner = match v.get("error") {
        Some(e) if e.is_object() => e,
        _ => &v,
    };
    let s = |k: &str| inner.get(k).and_then(Value::as_str).map(str::to_string);
    let code = s("code").unwrap_or_else(|| "Unknown".into());
    let message = s("message").unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect());
    (code, s("subcode"), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes() {
        let (c, sc, m) = parse_error_body(
            br#"{"code":"ValidationError","subcode":"UpgradeBlockedOnDeprecatedAPIUsage","message":"blocked"}"#,
        );
        assert_eq!(
            (c.as_str(), sc.as_deref(), m.as_str()),
            ("ValidationError", Some("UpgradeBlockedOnDeprecatedAPIUsage"), "blocked")
        );
        let (c, sc, m) =
            parse_error_body(br#"{"error":{"code":"SubscriptionRequestsThrottled","message":"slow down"}}"#);
        assert_eq!(
            (c.as_str(), sc, m.as_str()),
            ("SubscriptionRequestsThrottled", None, "slow down")
        );
        let (c, _, m) = parse_error_body(b"<html>bad gateway</html>");
        assert_eq!((c.as_str(), m.as_str()), ("Unknown", "<html>bad gateway</html>"));
    }
}
