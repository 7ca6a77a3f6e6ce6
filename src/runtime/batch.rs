//! How the loop batches its inputs: at most [`MAX_BATCH`] per save, gate observations
//! first (the latest per step), a tick last, and the first pass after an outage of the
//! store. Apart because the order is a decision of its own, tested on its own.

use crate::engine::{self, Input};
use chrono::{DateTime, Utc};

/// At most this many queued inputs go into one save (bounds the time between saves).
pub(super) const MAX_BATCH: usize = 512;

/// Orders a batch: gate observations first, only the latest per step; then the other
/// inputs as they came; then one tick if time woke the loop or a tick was queued.
///
/// Every `advance` drives the whole rollout at `now`, so what the watches already saw
/// must be known before anything is decided: a tick (or any input) taken before a
/// queued observation could pass a gate on health that has since gone, or time one out
/// on health the watches had already seen. Only the latest observation per step
/// counts: an older healthy one, applied first, would pass a gate at once (health is
/// counted from its watch time) before the newer unhealthy one is seen.
pub(super) fn order_batch(batch: Vec<Input>, woke: bool) -> Vec<Input> {
    let ticks = woke || batch.iter().any(|i| matches!(i, Input::Tick));
    let latest: std::collections::HashMap<engine::StepRef, usize> = batch
        .iter()
        .enumerate()
        .filter_map(|(i, x)| match x {
            Input::GateObserved { step, .. } => Some((*step, i)),
            _ => None,
        })
        .collect();
    let (mut observed, mut rest) = (Vec::new(), Vec::new());
    for (i, x) in batch.into_iter().enumerate() {
        match &x {
            Input::Tick => {}
            Input::GateObserved { step, .. } if latest.get(step) == Some(&i) => observed.push(x),
            Input::GateObserved { .. } => {}
            _ => rest.push(x),
        }
    }
    observed.append(&mut rest);
    if ticks || observed.is_empty() {
        observed.push(Input::Tick);
    }
    observed
}

/// The first pass after saves failed: [`Input::Unrecorded`] first, and none of the
/// gate observations queued meanwhile (the gates are asked for fresh ones; an old
/// healthy one must not start a settle time).
pub(super) fn after_outage(batch: Vec<Input>, since: DateTime<Utc>) -> Vec<Input> {
    std::iter::once(Input::Unrecorded { since })
        .chain(batch.into_iter().filter(|i| !matches!(i, Input::GateObserved { .. })))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::StepRef;

    fn observed(step: usize, healthy: bool) -> Input {
        Input::GateObserved {
            step: StepRef {
                ring: 0,
                wave: 0,
                cluster: 0,
                step,
            },
            healthy,
            reasons: vec![],
            at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn pause() -> Input {
        Input::Pause {
            scope: engine::Scope::Rollout,
            by: "alice".into(),
            reason: String::new(),
        }
    }

    #[test]
    fn observations_go_first_only_the_latest_per_step_and_ticks_last() {
        let b = order_batch(
            vec![
                pause(),
                observed(1, true),
                Input::Tick,
                observed(2, true),
                observed(1, false),
            ],
            false,
        );
        assert_eq!(b, vec![observed(2, true), observed(1, false), pause(), Input::Tick]);
        assert_eq!(order_batch(vec![observed(1, true)], false), vec![observed(1, true)]);
        assert_eq!(
            order_batch(vec![observed(1, false)], true),
            vec![observed(1, false), Input::Tick]
        );
        assert_eq!(order_batch(vec![], true), vec![Input::Tick]);
    }
}
