//! What the engine needs of the policy, in plain values.

use crate::policy::{OnBlock, OnBusy, OnFailure, OnGateFailure, Policy};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct RingSettings {
    pub name: String,
    pub soak: Duration,
    /// Approver groups; `None` when the ring needs no approval.
    pub approvers: Option<Vec<String>>,
    pub approval_expires_after: Option<Duration>,
    pub halt_on_failure: bool,
    pub max_failed_clusters: u32,
    pub on_gate_failure: OnGateFailure,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub rings: Vec<RingSettings>,
    pub gate_settle: Duration,
    pub gate_timeout: Duration,
    pub pool_soak: Duration,
    /// Wait before retrying a start that ARM refused with a retryable error.
    pub retry_after: Duration,
    /// Start attempts before a step fails.
    pub max_start_attempts: u32,
    /// Preflight before each cluster's first step; `None` when the policy turns it off.
    pub preflight: Option<PreflightSettings>,
    /// What a cluster another rollout holds does: wait for it, or skip it.
    pub on_busy: OnBusy,
    /// How often a waiting cluster asks again.
    pub claim_retry: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PreflightSettings {
    pub on_block: OnBlock,
    pub wait_up_to: Duration,
    /// With `wait`: how long between two checks.
    pub recheck: Duration,
}

impl Settings {
    pub fn from_policy(p: &Policy) -> Self {
        Settings {
            rings: p
                .rings
                .iter()
                .map(|r| RingSettings {
                    name: r.name.clone(),
                    soak: r.soak,
                    approvers: r.approval.as_ref().map(|a| a.approvers.clone()),
                    approval_expires_after: r.approval.as_ref().and_then(|a| a.expires_after),
                    halt_on_failure: r.failure_budget.on_failure == OnFailure::Halt,
                    max_failed_clusters: r.failure_budget.max_failed_clusters,
                    on_gate_failure: r.on_gate_failure,
                })
                .collect(),
            gate_settle: p.gates.pod_readiness.settle,
            gate_timeout: p.gates.pod_readiness.timeout,
            pool_soak: p.steps.pool_soak,
            retry_after: Duration::from_secs(60),
            max_start_attempts: 5,
            preflight: p.preflight.enabled.then(|| PreflightSettings {
                on_block: p.preflight.on_block,
                wait_up_to: p.preflight.wait_up_to,
                recheck: Duration::from_secs(300),
            }),
            on_busy: p.on_busy,
            claim_retry: Duration::from_secs(30),
        }
    }

    pub fn ring(&self, name: &str) -> Option<&RingSettings> {
        self.rings.iter().find(|r| r.name == name)
    }

    /// Whether a failed pool step in this ring is rolled back.
    pub fn rolls_back(&self, ring: &str) -> bool {
        self.ring(ring)
            .is_some_and(|r| r.on_gate_failure == OnGateFailure::Rollback)
    }
}
