//! The bearer token of Entra-ID clusters, set on every request.
//!
//! Why: an Entra token lives about an hour, while a cluster's client (and the watches
//! on it) can live for the whole of a long rollout. A token copied into the client once
//! expires under it, and every request after that gets 401 for good. So each request
//! asks the [`TokenSource`] for the current token instead (it is cached there, so this is
//! a map lookup, and the source renews it before it expires), and a 401 marks the token
//! it refused: the next request that would send that same token gets a force-refreshed
//! one instead. A token refused on one cluster is refreshed once, not once per client:
//! the others see the new token in the shared cache.
//!
//! The 401 response itself is returned as is (requests are not replayed, as with kube's
//! own retries, which are off): the watcher's backoff or the caller sends the next one.
//! No token ever appears in an error or a log line: the header is marked sensitive and
//! errors carry only the token source's message.

use crate::identity::{AKS_SCOPE, TokenSource};
use azure_core::credentials::Secret;
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response, StatusCode, header::AUTHORIZATION};
use kube::client::Body;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{BoxError, Service};

/// Getting a token for a request failed.
#[derive(Debug, thiserror::Error)]
#[error("getting an Entra token for the cluster's API: {0}")]
pub struct TokenError(String);

/// A client that sends `config`'s requests with a current Entra token from `tokens`.
/// `config` carries no credentials of its own; its TLS, timeouts and retry settings are
/// kube's default stack, used as is.
pub(super) fn entra_client(config: kube::Config, tokens: Arc<dyn TokenSource>) -> Result<kube::Client, kube::Error> {
    let default_namespace = config.default_namespace.clone();
    let plain = kube::Client::try_from(config)?;
    let service = EntraAuth {
        inner: plain,
        tokens: Arc::new(Tokens {
            source: tokens,
            refused: tokio::sync::Mutex::new(None),
        }),
    };
    Ok(kube::Client::new(service, default_namespace))
}

#[derive(Debug)]
struct Tokens {
    source: Arc<dyn TokenSource>,
    /// The last token the API server refused with 401. Held across a refresh so that
    /// concurrent requests wait for the one refresh instead of each starting one.
    refused: tokio::sync::Mutex<Option<Secret>>,
}

impl Tokens {
    async fn current(&self) -> Result<Secret, TokenError> {
        let err = |e: crate::identity::IdentityError| TokenError(e.to_string());
        let mut refused = self.refused.lock().await;
        let token = self.source.token(AKS_SCOPE, false).await.map_err(err)?;
        if refused.as_ref() != Some(&token) {
            return Ok(token);
        }
        let fresh = self.source.token(AKS_SCOPE, true).await.map_err(err)?;
        *refused = None;
        Ok(fresh)
    }

    async fn refuse(&self, token: Secret) {
        *self.refused.lock().await = Some(token);
    }
}

/// Sets `Authorization: Bearer <current token>` on each request to the inner client.
#[derive(Clone)]
struct EntraAuth {
    inner: kube::Client,
    tokens: Arc<Tokens>,
}

impl Service<Request<Body>> for EntraAuth {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // The inner client is a buffered service: `send` waits for it to be ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let (inner, tokens) = (self.inner.clone(), self.tokens.clone());
        Box::pin(async move {
            let token = tokens.current().await?;
            let mut value = HeaderValue::try_from(format!("Bearer {}", token.secret()))
                .map_err(|_| TokenError("the token is not a valid header value".into()))?;
            value.set_sensitive(true);
            req.headers_mut().insert(AUTHORIZATION, value);
            let res = inner.send(req).await?;
            if res.status() == StatusCode::UNAUTHORIZED {
                tokens.refuse(token).await;
            }
            Ok(res)
        })
    }
}
