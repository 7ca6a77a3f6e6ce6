//! The discrete-event queue: the `Event`s that happen at a simulated time, and how the
//! world schedules them and applies every one due when it advances to a time.

use super::World;
use crate::clock::SimTime;
use crate::fleet::Fault;
use std::time::Duration;

/// Something that happens at a simulated time.
#[derive(Debug, Clone)]
pub enum Event {
    PodSchedule {
        c: usize,
        key: (String, String),
        uid: String,
    },
    PodStarted {
        c: usize,
        key: (String, String),
        uid: String,
    },
    PodReady {
        c: usize,
        key: (String, String),
        uid: String,
    },
    PodRestart {
        c: usize,
        key: (String, String),
        uid: String,
    },
    NodeReady {
        c: usize,
        node: String,
        generation: u64,
    },
    OpTick {
        op: String,
        generation: u64,
    },
    AutoUpgrade {
        c: usize,
        fault: usize,
    },
}

impl World {
    // ---------------------------------------------------------------- time

    pub fn schedule(&mut self, at: SimTime, e: Event) {
        self.seq += 1;
        self.queue.insert((at.max(self.now), self.seq), e);
    }

    pub fn after(&mut self, d: Duration, e: Event) {
        self.schedule(self.now.plus(d), e);
    }

    /// When the next event is due, if any.
    pub fn next_due(&self) -> Option<SimTime> {
        self.queue.first_key_value().map(|((t, _), _)| *t)
    }

    /// Applies every event due up to `t`, then sets the time to `t`.
    pub fn advance_to(&mut self, t: SimTime) {
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > t {
                break;
            }
            let ((at, _), e) = entry.remove_entry();
            self.now = self.now.max(at);
            self.events_applied += 1;
            self.apply(e);
        }
        self.now = self.now.max(t);
    }

    pub fn since_start(&self) -> Duration {
        self.now.since(self.start)
    }

    /// Faults active now.
    pub fn active_faults(&self) -> impl Iterator<Item = &Fault> {
        let since = self.since_start();
        self.fleet.faults.iter().filter(move |f| f.active_at(since))
    }

    fn apply(&mut self, e: Event) {
        match e {
            Event::PodSchedule { c, key, uid } => self.pod_schedule(c, &key, &uid),
            Event::PodStarted { c, key, uid } => self.pod_started(c, &key, &uid),
            Event::PodReady { c, key, uid } => self.pod_ready(c, &key, &uid),
            Event::PodRestart { c, key, uid } => self.pod_restart(c, &key, &uid),
            Event::NodeReady { c, node, generation } => self.node_ready(c, &node, generation),
            Event::OpTick { op, generation } => crate::operation::tick(self, &op, generation),
            Event::AutoUpgrade { c, fault } => crate::operation::auto_upgrade(self, c, fault),
        }
    }
}
