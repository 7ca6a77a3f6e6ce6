//! ARM's request throttling, simulated: a token bucket per (subscription, principal)
//! for reads and one for writes, refilled on the simulated clock, so a client that
//! honours `Retry-After` stays in step with it.

use super::clock::SimTime;
use super::fleet::Bucket;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
struct State {
    tokens: f64,
    at: SimTime,
}

#[derive(Debug, Default)]
pub struct Throttle {
    buckets: HashMap<(String, String, bool), State>,
}

/// The outcome of taking one request from a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Take {
    /// Allowed; this many requests remain.
    Allowed { remaining: u32 },
    /// Refused; a token will be there after this long (simulated time).
    Throttled { retry_after: Duration },
}

impl Throttle {
    pub fn take(&mut self, sub: &str, principal: &str, write: bool, spec: Bucket, now: SimTime) -> Take {
        let key = (sub.to_ascii_lowercase(), principal.to_string(), write);
        let st = self.buckets.entry(key).or_insert(State {
            tokens: f64::from(spec.capacity),
            at: now,
        });
        let elapsed = now.since(st.at).as_secs_f64();
        st.tokens = (st.tokens + elapsed * spec.per_second).min(f64::from(spec.capacity));
        st.at = now;
        if st.tokens >= 1.0 {
            st.tokens -= 1.0;
            Take::Allowed {
                remaining: st.tokens.floor() as u32,
            }
        } else {
            let wait = (1.0 - st.tokens) / spec.per_second;
            Take::Throttled {
                retry_after: Duration::from_secs_f64(wait),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_empties_then_refills_on_simulated_time() {
        let mut t = Throttle::default();
        let spec = Bucket {
            capacity: 3,
            per_second: 1.0,
        };
        let now = SimTime(0);
        for left in [2, 1, 0] {
            assert_eq!(t.take("s", "p", false, spec, now), Take::Allowed { remaining: left });
        }
        match t.take("s", "p", false, spec, now) {
            Take::Throttled { retry_after } => assert_eq!(retry_after, Duration::from_secs(1)),
            other => panic!("{other:?}"),
        }
        // Writes have their own bucket; another subscription too.
        assert!(matches!(t.take("s", "p", true, spec, now), Take::Allowed { .. }));
        assert!(matches!(t.take("s2", "p", false, spec, now), Take::Allowed { .. }));
        assert!(matches!(
            t.take("s", "p", false, spec, SimTime(1000)),
            Take::Allowed { remaining: 0 }
        ));
    }
}
