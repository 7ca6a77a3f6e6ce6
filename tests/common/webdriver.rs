//! A real browser for the dashboard's tests: Debian's headless Chromium driven by its
//! ChromeDriver over the W3C WebDriver protocol (plain HTTP + JSON on loopback, spoken
//! here with reqwest: the few commands the tests need, no extra crate).
#![allow(dead_code)]

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Debian puts them (`apt-get install -y chromium chromium-driver`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A ChromeDriver process and one browser session; both end on drop.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    base: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session (and Chromium) before the driver.
        let _ = blocking_delete(&self.base);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A found element.
#[derive(Clone)]
pub struct Element(String);

/// DELETE without an async runtime (drop may run outside one).
fn blocking_delete(url: &str) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    Ok(())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium with a new empty profile. Panics with
    /// the install command when either is missing: the test fails, it never skips.
    pub async fn start() -> Browser {
        Self::launch(false).await
    }

    /// As [`Browser::start`], accepting any TLS certificate (the simulator's own CA,
    /// which this browser profile does not know).
    pub async fn start_accepting_any_certificate() -> Browser {
        Self::launch(true).await
    }

    async fn launch(accept_insecure_certs: bool) -> Browser {
        for (path, what) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: the dashboard's browser test needs Debian's {what} (apt-get install -y chromium chromium-driver)"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let root = format!("http://127.0.0.1:{port}");
        let t = Instant::now();
        loop {
            if let Ok(r) = http.get(format!("{root}/status")).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        // The flags the machine's own check uses: without the background-networking ones
        // Chromium keeps dialling Google's hosts, which a closed network refuses.
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1400,1000".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": accept_insecure_certs,
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
            "goog:loggingPrefs": { "browser": "ALL" },
        }}});
        let r: Value = http
            .post(format!("{root}/session"))
            .json(&caps)
            .send()
            .await
            .expect("a browser session")
            .json()
            .await
            .unwrap();
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {r}"))
            .to_string();
        Browser {
            driver,
            http,
            base: format!("{root}/session/{id}"),
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.expect("webdriver answers").json().await.unwrap();
        v["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn goto(&self, url: &str) {
        let v = self.post("/url", json!({ "url": url })).await;
        assert!(v.is_null(), "navigating to {url}: {v}");
    }

    /// The element `css` selects, if it is in the page now.
    pub async fn find(&self, css: &str) -> Option<Element> {
        let v = self
            .post("/element", json!({ "using": "css selector", "value": css }))
            .await;
        v[ELEMENT].as_str().map(|s| Element(s.to_string()))
    }

    /// Waits (wall clock, bounded) until `css` is in the page and displayed.
    pub async fn wait_for(&self, css: &str, within: Duration) -> Element {
        let t = Instant::now();
        loop {
            if let Some(e) = self.find(css).await
                && self.displayed(&e).await
            {
                return e;
            }
            assert!(t.elapsed() < within, "`{css}` did not show within {within:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn displayed(&self, e: &Element) -> bool {
        self.get(&format!("/element/{}/displayed", e.0)).await == true
    }

    pub async fn text(&self, e: &Element) -> String {
        self.get(&format!("/element/{}/text", e.0))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The text of `css` now ("" when absent).
    pub async fn text_of(&self, css: &str) -> String {
        match self.find(css).await {
            Some(e) => self.text(&e).await,
            None => String::new(),
        }
    }

    pub async fn click(&self, e: &Element) {
        let v = self.post(&format!("/element/{}/click", e.0), json!({})).await;
        assert!(v.is_null(), "click: {v}");
    }

    pub async fn type_into(&self, e: &Element, text: &str) {
        let v = self
            .post(&format!("/element/{}/value", e.0), json!({ "text": text }))
            .await;
        assert!(v.is_null(), "typing: {v}");
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value;
    /// a returned promise is awaited (W3C's Execute Script).
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// The page as a PNG.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let v = self.get("/screenshot").await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("a screenshot"))
            .unwrap()
    }

    /// The browser console's entries since the last call (ChromeDriver's log endpoint):
    /// (level, message).
    pub async fn console(&self) -> Vec<(String, String)> {
        let v = self.post("/se/log", json!({ "type": "browser" })).await;
        v.as_array()
            .unwrap_or_else(|| panic!("the browser's log: {v}"))
            .iter()
            .map(|e| {
                (
                    e["level"].as_str().unwrap_or_default().to_string(),
                    e["message"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}
