//! The service side of ringmaster (`ringmaster serve`): what the HTTP API may ask of the
//! daemon, and the daemon that answers. The API depends only on [`Control`], so it can
//! be tested against a stand-in, and the daemon only on the engine, runtime and store.

use crate::engine::{Input, Rollout};
use serde::Serialize;
pub mod daemon;
pub mod policies;
pub mod run;
pub mod single;

use std::time::Duration;

/// A rollout as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSummary {
    pub id: String,
    pub policy: String,
    pub status: String,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Who may approve a ring, and how long an approval lasts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RingApproval {
    pub approvers: Vec<String>,
    #[serde(with = "opt_secs")]
    pub expires_after: Option<Duration>,
}

mod opt_secs {
    pub fn serialize<S: serde::Serializer>(d: &Option<std::time::Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(d.as_secs()),
            None => s.serialize_none(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no rollout `{0}`")]
    UnknownRollout(String),
    #[error("rollout `{0}` is not running in this daemon (finished, or not loaded)")]
    NotRunning(String),
    #[error("a rollout of this policy is already running: `{0}`")]
    AlreadyRunning(String),
    #[error("no policy `{name}` in force here; the policies are: {}", .known.join(", "))]
    UnknownPolicy { name: String, known: Vec<String> },
    #[error("this daemon runs several policies: name one of {}", .0.join(", "))]
    PolicyRequired(Vec<String>),
    #[error("cannot start a rollout: {0}")]
    CannotStart(String),
    /// The state file could not be read (or holds a state this binary cannot decode):
    /// never taken for "no rollouts".
    #[error("reading the state file: {0}")]
    Store(String),
}

/// What became of a request to start a rollout now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartRequest {
    /// Started at once, under this id.
    Started(String),
    /// Taken: the daemon discovers the fleet and plans first (the rollout appears in the
    /// list when it starts; nothing starts when the fleet is already on target).
    Queued,
}

/// What the API may ask of the daemon. Reads come from the store and the live runtime;
/// every change goes to the engine as an [`Input`] (the engine decides, and audits).
pub trait Control: Send + Sync {
    /// Every rollout; an unreadable state file is an error, never an empty list.
    fn list(&self) -> Result<Vec<RolloutSummary>, ControlError>;
    /// One rollout, `Ok(None)` when there is none with that id.
    fn get(&self, id: &str) -> Result<Option<Rollout>, ControlError>;
    /// The rollouts this daemon is driving (one per policy at most), by id.
    fn active(&self) -> Vec<String>;
    fn send(&self, id: &str, input: Input) -> Result<(), ControlError>;
    /// Who may approve ring `ring` of rollout `id` (from the policy it started with).
    fn ring_approval(&self, id: &str, ring: &str) -> Option<RingApproval>;
    /// Plans and starts a rollout of `policy` now (outside its schedule); `None` when
    /// the daemon runs one policy.
    fn start_now(&self, actor: &str, policy: Option<&str>) -> Result<StartRequest, ControlError>;
    /// Whether [`Control::start_now`] would take the request (the policy exists, and
    /// no rollout of it runs), without queuing anything.
    fn can_start(&self, policy: Option<&str>) -> Result<(), ControlError> {
        let _ = policy;
        Ok(())
    }
    /// The policies in force (empty where there are none, e.g. `ringmaster run`).
    fn policies(&self) -> Vec<policies::PolicyView> {
        Vec::new()
    }
}
