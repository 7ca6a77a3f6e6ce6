//! Rollouts: reading them, and the operator's decisions (pause, resume, abort, skip,
//! end a soak, start now). Approvals are in `approvals.rs`.
//!
//! Every decision follows the same order: load the rollout (404), check the caller's
//! groups (403, audited), check the rollout can take it (409), write the request to the
//! audit log, then send the input to the engine. A refused call has changed nothing, and
//! an accepted one is in the log before the engine sees it.
//!
//! Split by what they hold: `shared` (loading, recording, the operator check, used by
//! the other handlers of the API too), `decide` (how a decision is made, under the
//! operator lock), `decisions` (the handlers of the decisions), `reads` (list, show)
//! and `audit` (the audit log's pages). This file re-exports what the rest of the API
//! names as `rollouts::...`.

mod audit;
mod decide;
mod decisions;
mod reads;
mod shared;

pub(super) use audit::audit;
pub(super) use decide::OperatorLock;
pub(super) use decisions::{abort, pause, promote_now, resume, skip, start};
pub(super) use reads::{eta, list, show};
pub(super) use shared::{
    approval_target, find_cluster, load, not_finished, record, require_operator, required, ring, ring_state,
};
