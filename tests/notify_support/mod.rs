//! A webhook receiver on loopback for the notification tests: it records every post and
//! answers by the first segment of the path.
//!
//! `/ok/...` 200 · `/flaky/...` 500 then 200 · `/fail/...` always 500 · `/bad/...` 400 ·
//! `/throttle/...` 429 with `Retry-After: 0` then 200 · `/hang/...` never answers.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Post {
    pub path: String,
    pub query: Option<String>,
    pub content_type: String,
    pub body: Value,
}

#[derive(Default)]
struct Seen {
    posts: Mutex<Vec<Post>>,
    per_path: Mutex<HashMap<String, u32>>,
}

pub struct Receiver {
    pub base: String,
    seen: Arc<Seen>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let seen = Arc::new(Seen::default());
        let app = axum::Router::new().fallback(handle).with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            base: format!("http://{addr}"),
            seen,
        }
    }

    /// A URL on this receiver.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base, path_and_query)
    }

    pub fn posts(&self) -> Vec<Post> {
        self.seen.posts.lock().unwrap().clone()
    }

    /// Posts whose path starts with `prefix`.
    pub fn posts_to(&self, prefix: &str) -> Vec<Post> {
        self.posts()
            .into_iter()
            .filter(|p| p.path.starts_with(prefix))
            .collect()
    }
}

async fn handle(State(seen): State<Arc<Seen>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let post = Post {
        path: path.clone(),
        query: uri.query().map(str::to_string),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    seen.posts.lock().unwrap().push(post);
    let n = {
        let mut m = seen.per_path.lock().unwrap();
        let n = m.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    let kind = path.trim_start_matches('/').split('/').next().unwrap_or_default();
    match kind {
        "ok" => (StatusCode::OK, "ok").into_response(),
        "flaky" if n == 1 => (StatusCode::INTERNAL_SERVER_ERROR, "try later").into_response(),
        "flaky" => (StatusCode::OK, "ok").into_response(),
        "fail" => (StatusCode::INTERNAL_SERVER_ERROR, "broken").into_response(),
        "bad" => (StatusCode::BAD_REQUEST, "invalid_payload").into_response(),
        "throttle" if n == 1 => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")], "slow down").into_response(),
        "throttle" => (StatusCode::OK, "ok").into_response(),
        "hang" => std::future::pending::<Response>().await,
        _ => (StatusCode::NOT_FOUND, "no such hook").into_response(),
    }
}
