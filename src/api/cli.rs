//! The command-line client: `ringmaster status | approve | reject | promote-now | pause |
//! resume | abort | skip | rollback | history` against a running `ringmaster serve`, and
//! `ringmaster token new | hash` to make static tokens.
//!
//! The server comes from `--server` or `RINGMASTER_SERVER`; the token only from
//! `RINGMASTER_TOKEN` (a flag would show in `ps` and shell history), and it is never
//! printed. Without `--rollout`, commands act on the rollout the daemon is driving.
//! Exit codes: 0 done, 1 the API refused (its message is printed) or could not be
//! reached, 2 usage (bad flags, no token).

use super::auth::{generate_token, token_digest_hex, token_entry_yaml};
use super::client::{ApiClient, ClientError, seg};
use super::table;
use crate::identity::Redacted;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// Where the API is and how to show its answers.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The ringmaster API, e.g. `https://ringmaster.example.com` (the token comes from
    /// RINGMASTER_TOKEN).
    #[arg(long, env = "RINGMASTER_SERVER")]
    pub server: String,
    /// The rollout to act on (default: the one the daemon is driving).
    #[arg(long, env = "RINGMASTER_ROLLOUT")]
    pub rollout: Option<String>,
    /// table (for people) or json (the API's answer, for scripts).
    #[arg(long, value_enum, default_value = "table")]
    pub output: OutputFormat,
    /// CA certificate (PEM) to trust for the server, besides the system's.
    #[arg(long, env = "RINGMASTER_SERVER_CA")]
    pub server_ca: Option<PathBuf>,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

/// The client's subcommands; flattened into `ringmaster`'s own.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ClientCommand {
    /// Show a rollout: rings, clusters, steps, gate reasons, and what waits for approval.
    Status {
        #[command(flatten)]
        api: ClientArgs,
    },
    /// Approve promoting the rollout's target into RING (for the ring's approver groups).
    #[command(visible_alias = "promote")]
    Approve {
        /// The ring, e.g. `prod`.
        ring: String,
        /// Why (kept with the approval and in the audit log).
        #[arg(long, short)]
        comment: Option<String>,
        /// Expire the approval sooner than the policy says (RFC 3339).
        #[arg(long)]
        expires_at: Option<DateTime<Utc>>,
        #[command(flatten)]
        api: ClientArgs,
    },
    /// Reject promoting the target into RING: the ring fails and the rollout halts.
    Reject {
        /// The ring, e.g. `prod`.
        ring: String,
        /// Why (required; kept in the audit log).
        #[arg(long, short)]
        comment: String,
        #[command(flatten)]
        api: ClientArgs,
    },
    /// End RING's soak now (operators).
    PromoteNow {
        /// The soaking ring.
        ring: String,
        /// Why the soak may end early (required; kept in the audit log).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        api: ClientArgs,
    },
    /// Pause the rollout, or only a ring or a cluster (operators).
    Pause {
        /// Pause only this ring.
        #[arg(long, conflicts_with = "cluster")]
        ring: Option<String>,
        /// Pause only this cluster (name, or resourceGroup/name).
        #[arg(long)]
        cluster: Option<String>,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        api: ClientArgs,
    },
    /// Resume the rollout, or only a ring or a cluster (operators).
    Resume {
        /// Resume only this ring.
        #[arg(long, conflicts_with = "cluster")]
        ring: Option<String>,
        /// Resume only this cluster (name, or resourceGroup/name).
        #[arg(long)]
        cluster: Option<String>,
        #[command(flatten)]
        api: ClientArgs,
    },
    /// Abort the rollout; AKS operations in flight are aborted (operators).
    Abort {
        /// Why (required; kept in the audit log).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        api: ClientArgs,
    },
    /// Which rollout holds which cluster, and who waits for one; with `--release`,
    /// release a claim whose holder no longer runs (operators; a running holder is
    /// asked to skip the cluster instead).
    Claims {
        /// Release the claim on this cluster (subscription/resourceGroup/name).
        #[arg(long, requires = "reason")]
        release: Option<String>,
        /// Why (required with --release; kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        api: ClientArgs,
    },
    /// Start a rollout of POLICY now instead of waiting for its schedule (operators).
    /// Refused while a rollout of that policy runs. POLICY may be left out when the
    /// daemon runs one policy.
    Start {
        /// The policy's name (`name:` in its file; `ringmaster status` lists them).
        policy: Option<String>,
        /// Why (kept in the audit log).
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        api: ClientArgs,
    },
    /// Skip CLUSTER (name, or resourceGroup/name) in the rollout (operators).
    Skip {
        /// The cluster: name, or resourceGroup/name.
        cluster: String,
        /// Why (required; kept in the audit log).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        api: ClientArgs,
    },
    /// Roll a node pool of CLUSTER back to the version and node image it had (operators).
    ///
    /// AKS's node pool rollback: only to what AKS lists in the pool's
    /// `recentlyUsedVersions` (7 days after an upgrade, while AKS supports the version,
    /// never twice in a row), with the cluster's auto-upgrade channel off and nothing
    /// else running on it. Without --pool: the pool ringmaster upgraded last. Not while
    /// ringmaster upgrades the cluster: skip it first. Refusals say AKS's reason.
    Rollback {
        /// The cluster: name, or resourceGroup/name.
        cluster: String,
        /// The node pool (default: the one ringmaster upgraded last).
        #[arg(long)]
        pool: Option<String>,
        /// Why (required; kept in the audit log).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        api: ClientArgs,
    },
    /// The audit log of the rollout (with --all, of every rollout): who did what, when.
    History {
        /// The newest this many entries (at most 1000).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Every rollout's entries, not only the rollout's.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        api: ClientArgs,
    },
    /// Static API tokens for `serve --tokens-file`.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum TokenCommand {
    /// Make a new random token: prints it (once: only its hash is kept) and the entry
    /// to add to the tokens file.
    New {
        /// Who will use it (the actor in the audit log).
        #[arg(long)]
        name: String,
        /// Its groups (repeat, or comma-separated).
        #[arg(long = "group", value_delimiter = ',')]
        groups: Vec<String>,
    },
    /// Print the SHA-256 of a token read from standard input (for a tokens file entry).
    Hash,
}

/// What a command printed and its exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    fn ok(stdout: String) -> Self {
        Outcome {
            code: 0,
            stdout,
            stderr: String::new(),
        }
    }
}

/// Runs `cmd` with the token from RINGMASTER_TOKEN and prints what it says.
pub async fn run(cmd: ClientCommand) -> ExitCode {
    let token = std::env::var("RINGMASTER_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .map(Redacted);
    let out = if matches!(cmd, ClientCommand::Token(TokenCommand::Hash)) {
        let mut s = String::new();
        match std::io::stdin().read_to_string(&mut s) {
            Ok(_) => Outcome::ok(format!("{}\n", token_digest_hex(s.trim()))),
            Err(e) => usage(format!("reading the token from standard input: {e}")),
        }
    } else {
        execute(&cmd, token.as_ref()).await
    };
    print!("{}", out.stdout);
    eprint!("{}", out.stderr);
    ExitCode::from(out.code)
}

fn usage(message: String) -> Outcome {
    Outcome {
        code: 2,
        stdout: String::new(),
        stderr: format!("error: {message}\n"),
    }
}

/// Runs `cmd` (everything but `token hash`, which reads standard input) and returns
/// what it would print.
pub async fn execute(cmd: &ClientCommand, token: Option<&Redacted>) -> Outcome {
    if let ClientCommand::Token(t) = cmd {
        return token_command(t);
    }
    let api = args(cmd);
    let Some(token) = token else {
        return usage("RINGMASTER_TOKEN is not set: export the API token in it".into());
    };
    let client = match ApiClient::new(
        &api.server,
        token.clone(),
        api.server_ca.as_deref(),
        Duration::from_secs(api.timeout),
    ) {
        Ok(c) => c,
        Err(e) => return failure(e),
    };
    match call(cmd, api, &client).await {
        Ok(stdout) => Outcome::ok(stdout),
        Err(e) => failure(e),
    }
}

fn failure(e: ClientError) -> Outcome {
    let code = if matches!(e, ClientError::Usage(_)) { 2 } else { 1 };
    Outcome {
        code,
        stdout: String::new(),
        // The server's refusal is quoted: outside text, escaped.
        stderr: format!("error: {}\n", crate::text::Escaped(&e.to_string())),
    }
}

fn args(cmd: &ClientCommand) -> &ClientArgs {
    match cmd {
        ClientCommand::Status { api }
        | ClientCommand::Approve { api, .. }
        | ClientCommand::Reject { api, .. }
        | ClientCommand::PromoteNow { api, .. }
        | ClientCommand::Pause { api, .. }
        | ClientCommand::Resume { api, .. }
        | ClientCommand::Abort { api, .. }
        | ClientCommand::Skip { api, .. }
        | ClientCommand::Start { api, .. }
        | ClientCommand::Claims { api, .. }
        | ClientCommand::Rollback { api, .. }
        | ClientCommand::History { api, .. } => api,
        ClientCommand::Token(_) => unreachable!("token commands take no API arguments"),
    }
}

fn token_command(t: &TokenCommand) -> Outcome {
    match t {
        TokenCommand::New { name, groups } => match generate_token() {
            Ok(token) => Outcome::ok(format!(
                "Token for {name} (shown once; ringmaster keeps only its hash):\n{}\n\nAdd to the tokens file under `tokens:`:\n{}",
                token.0,
                token_entry_yaml(name, groups, &token)
            )),
            Err(e) => Outcome {
                code: 1,
                stdout: String::new(),
                stderr: format!("error: no random numbers from the OS: {e}\n"),
            },
        },
        TokenCommand::Hash => usage("`token hash` reads standard input; run it through `ringmaster token hash`".into()),
    }
}

/// The rollout to act on: `--rollout`, else the active one.
async fn rollout_id(api: &ClientArgs, client: &ApiClient) -> Result<Option<String>, ClientError> {
    if let Some(id) = &api.rollout {
        return Ok(Some(id.clone()));
    }
    let list = client.get("/api/v1/rollouts").await?;
    let active: Vec<String> = list["active"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    match active.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        several => Err(ClientError::Refused {
            status: 409,
            code: "several_rollouts".into(),
            message: format!(
                "{} rollouts run ({}); name one with --rollout",
                several.len(),
                several.join(", ")
            ),
        }),
    }
}

async fn require_rollout(api: &ClientArgs, client: &ApiClient) -> Result<String, ClientError> {
    rollout_id(api, client).await?.ok_or_else(|| ClientError::Refused {
        status: 404,
        code: "no_active_rollout".into(),
        message: "no rollout is running; name one with --rollout (see `ringmaster status`)".into(),
    })
}

fn show(api: &ClientArgs, v: &Value, table: impl FnOnce(&Value) -> String) -> String {
    match api.output {
        OutputFormat::Json => format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default()),
        // Every string of the answer escaped once here, for every table.
        OutputFormat::Table => table(&table::escaped(v)),
    }
}

async fn call(cmd: &ClientCommand, api: &ClientArgs, client: &ApiClient) -> Result<String, ClientError> {
    let base = |id: &str| format!("/api/v1/rollouts/{}", seg(id));
    match cmd {
        ClientCommand::Status { .. } => {
            let list = client.get("/api/v1/rollouts").await?;
            let running = list["active"].as_array().map_or(0, Vec::len);
            let id = match rollout_id(api, client).await {
                Ok(Some(id)) => id,
                // None running, or several: the list, with the policies.
                Ok(None) | Err(ClientError::Refused { status: 409, .. }) => {
                    return Ok(show(api, &list, |l| {
                        let head = match running {
                            0 => "No rollout is running.".to_string(),
                            n => format!("{n} rollouts are running; `ringmaster status --rollout ID` shows one."),
                        };
                        format!("{head}\n\n{}\n{}", table::rollouts(l), table::policies(&l["policies"]))
                    }));
                }
                Err(e) => return Err(e),
            };
            let r = client.get(&base(&id)).await?;
            let a = client.get(&format!("{}/approvals", base(&id))).await?;
            Ok(show(api, &json!({ "rollout": r, "approvals": a }), |v| {
                table::status(&v["rollout"], &v["approvals"])
            }))
        }
        ClientCommand::Approve {
            ring,
            comment,
            expires_at,
            ..
        } => {
            let id = require_rollout(api, client).await?;
            let mut body = json!({ "comment": comment.clone().unwrap_or_default() });
            if let Some(e) = expires_at {
                body["expiresAt"] = json!(e);
            }
            let v = client
                .post(&format!("{}/rings/{}/approve", base(&id), seg(ring)), body)
                .await?;
            Ok(show(api, &v, |v| {
                let a = &v["approval"];
                let expires = a["expiresAt"]
                    .as_str()
                    .map_or(String::new(), |_| format!("; expires {}", table::time(&a["expiresAt"])));
                if v["alreadyApproved"].as_bool() == Some(true) {
                    format!(
                        "Ring {ring} of rollout {id} was already approved by {} at {}{expires}; nothing new was recorded.\n",
                        a["approvedBy"].as_str().unwrap_or("?"),
                        table::time(&a["approvedAt"])
                    )
                } else {
                    format!(
                        "Approved {} into ring {ring} of rollout {id} as {}{expires}.\n",
                        a["target"].as_str().unwrap_or("the target"),
                        a["approvedBy"].as_str().unwrap_or("?")
                    )
                }
            }))
        }
        ClientCommand::Reject { ring, comment, .. } => {
            let id = require_rollout(api, client).await?;
            let v = client
                .post(
                    &format!("{}/rings/{}/reject", base(&id), seg(ring)),
                    json!({ "comment": comment }),
                )
                .await?;
            Ok(show(api, &v, |_| {
                format!("Rejected ring {ring} of rollout {id}: the ring fails and the rollout halts.\n")
            }))
        }
        ClientCommand::PromoteNow { ring, reason, .. } => {
            let id = require_rollout(api, client).await?;
            let v = client
                .post(
                    &format!("{}/rings/{}/promote-now", base(&id), seg(ring)),
                    json!({ "reason": reason }),
                )
                .await?;
            Ok(show(api, &v, |_| {
                format!("Ending the soak of ring {ring} of rollout {id}.\n")
            }))
        }
        ClientCommand::Pause {
            ring, cluster, reason, ..
        } => {
            let id = require_rollout(api, client).await?;
            let body = json!({ "ring": ring, "cluster": cluster, "reason": reason });
            let v = client.post(&format!("{}/pause", base(&id)), strip_nulls(body)).await?;
            Ok(show(api, &v, |v| {
                let scope = v["scope"].as_str().unwrap_or("the rollout");
                said(
                    v,
                    format!("Paused {scope} of rollout {id}."),
                    format!("{scope} of rollout {id} was already paused; nothing changed."),
                )
            }))
        }
        ClientCommand::Resume { ring, cluster, .. } => {
            let id = require_rollout(api, client).await?;
            let body = json!({ "ring": ring, "cluster": cluster });
            let v = client.post(&format!("{}/resume", base(&id)), strip_nulls(body)).await?;
            Ok(show(api, &v, |v| {
                let scope = v["scope"].as_str().unwrap_or("the rollout");
                said(
                    v,
                    format!("Resumed {scope} of rollout {id}."),
                    format!("{scope} of rollout {id} was not paused; nothing changed."),
                )
            }))
        }
        ClientCommand::Abort { reason, .. } => {
            let id = require_rollout(api, client).await?;
            let v = client
                .post(&format!("{}/abort", base(&id)), json!({ "reason": reason }))
                .await?;
            Ok(show(api, &v, |_| format!("Aborted rollout {id}.\n")))
        }
        ClientCommand::Claims {
            release: Some(cluster),
            reason,
            ..
        } => {
            let v = client
                .post(
                    "/api/v1/claims/release",
                    json!({ "cluster": cluster, "reason": reason }),
                )
                .await?;
            Ok(show(api, &v, |v| {
                format!(
                    "Released {} (held by {}).\n",
                    s_of(&v["released"], "cluster"),
                    s_of(&v["released"], "rolloutId")
                )
            }))
        }
        ClientCommand::Claims { .. } => {
            let v = client.get("/api/v1/claims").await?;
            Ok(show(api, &v, table::claims))
        }
        ClientCommand::Start { policy, reason, .. } => {
            let v = client
                .post("/api/v1/rollouts", json!({ "policy": policy, "reason": reason }))
                .await?;
            Ok(show(api, &v, |v| match v["id"].as_str() {
                Some(id) => format!("Started rollout {id}.\n"),
                None => "Asked the daemon to start a rollout now; `ringmaster status` follows it.\n".into(),
            }))
        }
        ClientCommand::Skip { cluster, reason, .. } => {
            let id = require_rollout(api, client).await?;
            let v = client
                .post(
                    &format!("{}/clusters/{}/skip", base(&id), seg(cluster)),
                    json!({ "reason": reason }),
                )
                .await?;
            Ok(show(api, &v, |_| {
                format!("Skipping cluster {cluster} in rollout {id}.\n")
            }))
        }
        ClientCommand::Rollback {
            cluster, pool, reason, ..
        } => {
            let body = strip_nulls(json!({ "pool": pool, "reason": reason }));
            let v = client
                .post(&format!("/api/v1/clusters/{}/rollback", seg(cluster)), body)
                .await?;
            Ok(show(api, &v, |v| {
                let s = |k: &str| v[k].as_str().unwrap_or("?").to_string();
                format!(
                    "Rolling back pool {} of {cluster}: {} / {} -> {} / {} (AKS accepted; `ringmaster history` shows how it ends).\n",
                    s("pool"),
                    s("fromVersion"),
                    s("fromImage"),
                    s("toVersion"),
                    s("toImage")
                )
            }))
        }
        ClientCommand::History { limit, all, .. } => {
            let mut q = format!("/api/v1/audit?limit={limit}");
            if !all && let Some(id) = rollout_id(api, client).await? {
                q.push_str(&format!("&rollout={}", seg(&id)));
            }
            let v = client.get(&q).await?;
            Ok(show(api, &v, table::history))
        }
        ClientCommand::Token(_) => unreachable!("handled by execute"),
    }
}

/// What a decision did, from its answer's `result`: `applied` says `done`, `unchanged`
/// says `unchanged`, `queued` says the daemon has it but has not applied it yet.
fn said(v: &Value, done: String, unchanged: String) -> String {
    match v["result"].as_str() {
        Some("unchanged") => format!("{unchanged}\n"),
        Some("queued") => format!("{done} (sent; the daemon has not applied it yet: see `ringmaster status`)\n"),
        _ => format!("{done}\n"),
    }
}

/// Leaves out unset fields, so the request reads as a person would write it.
fn strip_nulls(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, x| !x.is_null());
    }
    v
}

/// A string field of an answer, empty when absent.
fn s_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}
