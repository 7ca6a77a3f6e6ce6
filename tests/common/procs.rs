//! Separate processes for end-to-end tests: `ringmaster sim` as a child, and the
//! environment it hands to the other commands.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ringmaster")
}

/// A `ringmaster sim` child process, killed on drop.
pub struct Sim {
    pub child: Child,
    /// The variables its `--env-file` wrote (AZURE_*, RINGMASTER_*).
    pub env: Vec<(String, String)>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the simulator on the demo fleet at `time_scale` and waits for its ready line.
pub fn start_sim(dir: &std::path::Path, time_scale: &str) -> Sim {
    start_sim_on(
        dir,
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/fleets/demo.yaml"),
        time_scale,
    )
}

/// Starts the simulator on the fleet file `fleet` at `time_scale` and waits for its ready line.
pub fn start_sim_on(dir: &std::path::Path, fleet: &str, time_scale: &str) -> Sim {
    // The test's own reqwest clients need a crypto provider (reqwest is built without one).
    ringmaster::identity::install_crypto_provider();
    let env_file = dir.join("sim.env");
    let mut child = Command::new(bin())
        .args(["sim", "--fleet", fleet, "--time-scale", time_scale, "--env-file"])
        .arg(&env_file)
        .arg("--state-dir")
        .arg(dir)
        .env("RINGMASTER_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sim starts");
    first_json_line(&mut child, "the simulator's ready line");
    let env = std::fs::read_to_string(&env_file)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    Sim { child, env }
}

/// A ringmaster command with only the simulator's environment.
pub fn ringmaster(sim: &Sim, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RINGMASTER_LOG", "warn");
    for (k, v) in &sim.env {
        c.env(k, v);
    }
    c
}

/// A `ringmaster serve` child process and its API's base URL, killed on drop.
pub struct Serve {
    pub child: Child,
    pub url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ringmaster serve` against `sim` on the demo policy with `dir`'s `state.db` and
/// `tokens.yaml` (the caller writes it), `platform-admins` as the operator group; `extra`
/// flags go last. Returns once serve printed its listen line.
pub fn spawn_serve(sim: &Sim, dir: &std::path::Path, extra: &[&str]) -> Serve {
    spawn_serve_on(
        sim,
        dir,
        concat!(env!("CARGO_MANIFEST_DIR"), "/policies/demo.yaml"),
        extra,
    )
}

/// As [`spawn_serve`], on the policy file `policy`.
pub fn spawn_serve_on(sim: &Sim, dir: &std::path::Path, policy: &str, extra: &[&str]) -> Serve {
    spawn_serve_with(sim, dir, &["--policy", policy], extra)
}

/// As [`spawn_serve`], on every policy of the directory `policies` (`--policies`).
pub fn spawn_serve_dir(sim: &Sim, dir: &std::path::Path, policies: &str, extra: &[&str]) -> Serve {
    spawn_serve_with(sim, dir, &["--policies", policies], extra)
}

fn spawn_serve_with(sim: &Sim, dir: &std::path::Path, policy: &[&str], extra: &[&str]) -> Serve {
    let state = dir.join("state.db").display().to_string();
    let tokens = dir.join("tokens.yaml").display().to_string();
    let mut args = vec!["serve"];
    args.extend_from_slice(policy);
    args.extend(["--state", &state]);
    // A free port unless the caller chose one (its --public-url names it, say).
    if !extra.contains(&"--listen") {
        args.extend(["--listen", "127.0.0.1:0"]);
    }
    args.extend([
        "--sim-clock",
        "--tokens-file",
        &tokens,
        "--operator-group",
        "platform-admins",
    ]);
    args.extend_from_slice(extra);
    let mut child = ringmaster(sim, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let v = first_json_line(&mut child, "serve's listen line");
    Serve {
        child,
        url: format!("http://{}", v["listen"].as_str().unwrap()),
    }
}

/// The first line `child` prints on its (piped) stdout, as JSON: what `sim` and `serve`
/// print once they are ready.
fn first_json_line(child: &mut Child, what: &str) -> Value {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{what} is not JSON ({e}): {line:?}"))
}

/// The simulator's ARM and test hooks, over HTTPS, trusting only its CA.
pub struct SimArm {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl SimArm {
    pub async fn new(sim: &Sim) -> SimArm {
        ringmaster::identity::install_crypto_provider();
        let env: BTreeMap<&str, &str> = sim.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let pem = std::fs::read(env["RINGMASTER_CA_CERT"]).expect("the simulator's CA");
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            env["AZURE_AUTHORITY_HOST"], env["AZURE_TENANT_ID"]
        );
        let t: Value = http
            .post(url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", env["AZURE_CLIENT_ID"]),
                ("client_secret", env["AZURE_CLIENT_SECRET"]),
                ("scope", "https://management.azure.com/.default"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        SimArm {
            http,
            base: env["RINGMASTER_ARM_ENDPOINT"].to_string(),
            token: t["access_token"].as_str().expect("a token").to_string(),
        }
    }

    pub async fn get(&self, path: &str) -> Value {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{}{path}{sep}api-version={}", self.base, super::API);
        let r = self.http.get(url).bearer_auth(&self.token).send().await.unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// The request log: every mutating ARM request, whatever its answer, less ARM's
    /// `list*` actions (POSTs that read: `listClusterUserCredential` for the watches).
    pub async fn requests(&self) -> Vec<Value> {
        let v = self.get("/_sim/requests").await;
        super::writes::mutating(v["value"].as_array().cloned().unwrap_or_default())
    }
}

/// Writes `dir/tokens.yaml` for `serve --tokens-file`: one entry per (name, group, token).
pub fn write_tokens(dir: &std::path::Path, users: &[(&str, &str, &str)]) {
    let mut yaml = String::from("tokens:\n");
    for (name, group, token) in users {
        yaml.push_str(&format!(
            "  - name: {name}\n    groups: [{group}]\n    sha256: {}\n",
            ringmaster::api::auth::token_digest_hex(token)
        ));
    }
    std::fs::write(dir.join("tokens.yaml"), yaml).unwrap();
}
