//! Following a long-running operation to its end: `Azure-AsyncOperation` (a status
//! resource) when the first answer gave one, else `Location` (202 while running, then
//! the result). Honours `Retry-After`. An operation URL can be stored and followed
//! again after a restart.

use super::error::ArmError;
use super::http::{ArmHttp, decode};
use super::models::OperationStatus;
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;
use tracing::debug;

/// Plain data, in the core (the engine holds it); its reading from headers is here.
pub use crate::domain::OperationRef;

impl OperationRef {
    pub fn from_headers(raw: &super::http::RawResponse) -> Option<Self> {
        let async_url = raw.header("azure-asyncoperation").map(str::to_string);
        let location_url = raw.header("location").map(str::to_string);
        (async_url.is_some() || location_url.is_some()).then_some(OperationRef {
            async_url,
            location_url,
        })
    }
}

/// The end of an operation that succeeded: the final body, if the operation gave one.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub body: Option<Value>,
}

/// Where an operation stands after one poll.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Running { retry_after: Option<Duration> },
    Done(Finished),
}

/// Default wait between polls when ARM gives no Retry-After.
pub const DEFAULT_POLL: Duration = Duration::from_secs(10);
/// Never poll faster than this, whatever the server says (a `retry-after-ms: 0`).
const MIN_POLL: Duration = Duration::from_millis(10);

impl ArmHttp {
    /// Polls an operation once.
    pub async fn poll_once(&self, op: &OperationRef) -> Result<Progress, ArmError> {
        if let Some(url) = &op.async_url {
            let raw = self.send(Method::GET, url, None, &[]).await?;
            if raw.status != 200 {
                return Err(ArmHttp::error_for(&Method::GET, url, &raw));
            }
            let st: OperationStatus = decode(&Method::GET, url, &raw)?;
            return match st.status.as_str() {
                "Succeeded" => Ok(Progress::Done(Finished { body: None })),
                "Failed" | "Canceled" | "Cancelled" => {
                    let e = st.error.unwrap_or_default();
                    Err(ArmError::Operation {
                        status: st.status,
                        code: e.code,
                        message: e.message,
                    })
                }
                _ => Ok(Progress::Running {
                    retry_after: raw.retry_after(),
                }),
            };
        }
        let Some(url) = &op.location_url else {
            return Ok(Progress::Done(Finished { body: None }));
        };
        let raw = self.send(Method::GET, url, None, &[]).await?;
        match raw.status {
            202 => Ok(Progress::Running {
                retry_after: raw.retry_after(),
            }),
            200 | 201 => Ok(Progress::Done(Finished {
                body: serde_json::from_slice(&raw.body).ok(),
            })),
            204 => Ok(Progress::Done(Finished { body: None })),
            _ => {
                let err = ArmHttp::error_for(&Method::GET, url, &raw);
                Err(match err {
                    ArmError::Service { code, message, .. } => ArmError::Operation {
                        status: "Failed".into(),
                        code,
                        message,
                    },
                    other => other,
                })
            }
        }
    }

    /// Follows an operation until it ends. `on_poll` sees each intermediate state.
    pub async fn wait(&self, op: &OperationRef, mut on_poll: impl FnMut(&Progress)) -> Result<Finished, ArmError> {
        loop {
            let p = self.poll_once(op).await?;
            on_poll(&p);
            match p {
                Progress::Done(f) => return Ok(f),
                Progress::Running { retry_after } => {
                    debug!(?retry_after, "operation still running");
                    self.wait_as_told(retry_after.map(|d| d.max(MIN_POLL)), DEFAULT_POLL)
                        .await;
                }
            }
        }
    }
}
