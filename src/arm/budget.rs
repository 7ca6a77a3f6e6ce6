//! The client-side ARM budget: a token bucket per subscription for reads and one for
//! writes, kept below ARM's own limits and pulled down to what ARM reports in
//! `x-ms-ratelimit-remaining-subscription-*`, so the daemon slows itself before ARM
//! throttles it (ARM's buckets are shared with every other client of the principal).

use crate::clock::Clock;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSpec {
    pub capacity: f64,
    pub per_second: f64,
}

/// Defaults: 80% of ARM's documented buckets (reads 250/25 per s, writes 200/10 per s).
pub const READS: BucketSpec = BucketSpec {
    capacity: 200.0,
    per_second: 20.0,
};
pub const WRITES: BucketSpec = BucketSpec {
    capacity: 160.0,
    per_second: 8.0,
};

#[derive(Debug, Clone, Copy)]
struct State {
    tokens: f64,
    at: DateTime<Utc>,
}

#[derive(Debug)]
pub struct Budget {
    clock: Arc<dyn Clock>,
    reads: BucketSpec,
    writes: BucketSpec,
    state: Mutex<HashMap<(String, bool), State>>,
}

impl Budget {
    pub fn new(clock: Arc<dyn Clock>, reads: BucketSpec, writes: BucketSpec) -> Self {
        Self {
            clock,
            reads,
            writes,
            state: Mutex::new(HashMap::new()),
        }
    }

    fn spec(&self, write: bool) -> BucketSpec {
        if write { self.writes } else { self.reads }
    }

    /// Takes one token, or says how long until there is one.
    fn try_take(&self, sub: &str, write: bool) -> Option<Duration> {
        let spec = self.spec(write);
        let now = self.clock.now();
        let mut map = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let st = map.entry((sub.to_ascii_lowercase(), write)).or_insert(State {
            tokens: spec.capacity,
            at: now,
        });
        let elapsed = (now - st.at).to_std().unwrap_or_default().as_secs_f64();
        st.tokens = (st.tokens + elapsed * spec.per_second).min(spec.capacity);
        st.at = now;
        if st.tokens >= 1.0 {
            st.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - st.tokens) / spec.per_second))
        }
    }

    /// Waits (on the injected clock) until a call to `sub` is within budget.
    pub async fn acquire(&self, sub: &str, write: bool) {
        while let Some(wait) = self.try_take(sub, write) {
            self.clock.sleep(wait).await;
        }
    }

    /// ARM said this many calls remain: never believe we have more.
    pub fn observe_remaining(&self, sub: &str, write: bool, remaining: u32) {
        let now = self.clock.now();
        let mut map = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let spec = self.spec(write);
        let st = map.entry((sub.to_ascii_lowercase(), write)).or_insert(State {
            tokens: spec.capacity,
            at: now,
        });
        st.tokens = st.tokens.min(f64::from(remaining));
    }
}
