//! One rollout driven by a [`crate::runtime::Runtime`] in this process, as the API sees
//! it: what `ringmaster demo` serves its dashboard from.

use super::{Control, ControlError, RingApproval, RolloutSummary, StartRequest};
use crate::engine::{Input, Rollout};
use crate::policy::Policy;
use std::sync::Arc;
use tokio::sync::watch;

pub struct SingleRollout {
    pub progress: watch::Receiver<Rollout>,
    pub control: crate::runtime::Control,
    pub policy: Arc<Policy>,
}

impl SingleRollout {
    fn current(&self) -> Rollout {
        self.progress.borrow().clone()
    }
}

impl Control for SingleRollout {
    fn list(&self) -> Result<Vec<RolloutSummary>, ControlError> {
        let r = self.progress.borrow();
        Ok(vec![RolloutSummary {
            id: r.id.clone(),
            policy: r.plan.policy.clone(),
            status: r.status.label().to_string(),
            updated_at: r.updated_at,
        }])
    }

    fn get(&self, id: &str) -> Result<Option<Rollout>, ControlError> {
        let r = self.current();
        Ok((r.id == id).then_some(r))
    }

    fn active(&self) -> Vec<String> {
        let r = self.progress.borrow();
        if r.status.is_terminal() {
            Vec::new()
        } else {
            vec![r.id.clone()]
        }
    }

    fn send(&self, id: &str, input: Input) -> Result<(), ControlError> {
        if self.active().iter().any(|a| a == id) && self.control.send(input) {
            Ok(())
        } else {
            Err(ControlError::NotRunning(id.to_string()))
        }
    }

    fn ring_approval(&self, id: &str, ring: &str) -> Option<RingApproval> {
        if self.progress.borrow().id != id {
            return None;
        }
        let ring = self.policy.rings.iter().find(|r| r.name == ring)?;
        ring.approval.as_ref().map(|a| RingApproval {
            approvers: a.approvers.clone(),
            expires_after: a.expires_after,
        })
    }

    fn start_now(&self, _actor: &str, _policy: Option<&str>) -> Result<StartRequest, ControlError> {
        Err(ControlError::CannotStart(
            "this process drives one rollout (the demo); `ringmaster serve` starts rollouts".into(),
        ))
    }
}
