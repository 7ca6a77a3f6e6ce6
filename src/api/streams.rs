//! Who may hold an event stream (`/api/v1/events`), and for how long.
//!
//! A stream never ends by itself and holds a connection for its life: 600 streams opened
//! with one viewer's token took every one of the server's 512 connections, and
//! `/healthz`, reads and an operator's approval got no answer. So streams are counted:
//! at most [`super::Limits::max_streams`] in all (well under the connection cap, so the
//! rest stay for everything else) and [`super::Limits::max_streams_per_caller`] for one
//! caller (a person has a few tabs open; a script that opens more only refuses itself).
//! Beyond either, the answer is 503 `too_many_streams` with `Retry-After`. A stream
//! also ends after [`super::Limits::stream_lifetime`] (the page reconnects and
//! refetches, so nothing is lost), and a subscriber that reads nothing is cut by the
//! server's write timeout (`super::write_timeout`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The streams open now, in all and by caller.
#[derive(Debug, Default)]
pub struct Streams {
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_caller: HashMap<String, usize>,
}

/// Why a stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0} event streams are open on this server, its limit; try again later")]
    Total(usize),
    #[error("this caller has {0} event streams open, its limit; close one (a browser tab) first")]
    Caller(usize),
}

impl Refused {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refused::Total(_) => "total",
            Refused::Caller(_) => "caller",
        }
    }
}

/// One open stream; dropping it (the stream ended, the connection closed) frees it.
#[derive(Debug)]
pub struct Slot {
    streams: Arc<Streams>,
    caller: String,
}

impl Streams {
    /// A slot for `caller`, within `total` in all and `per_caller` for one caller.
    pub fn open(self: &Arc<Self>, caller: &str, total: usize, per_caller: usize) -> Result<Slot, Refused> {
        let mut o = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mine = o.by_caller.get(caller).copied().unwrap_or(0);
        if mine >= per_caller {
            return Err(Refused::Caller(mine));
        }
        if o.total >= total {
            return Err(Refused::Total(o.total));
        }
        o.total += 1;
        *o.by_caller.entry(caller.to_string()).or_default() += 1;
        Ok(Slot {
            streams: self.clone(),
            caller: caller.to_string(),
        })
    }

    /// Streams open now.
    pub fn count(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut o = self.streams.open.lock().unwrap_or_else(|e| e.into_inner());
        o.total = o.total.saturating_sub(1);
        if let Some(n) = o.by_caller.get_mut(&self.caller) {
            *n -= 1;
            if *n == 0 {
                o.by_caller.remove(&self.caller);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_capped_in_all_and_per_caller_and_freed_on_drop() {
        let s = Arc::new(Streams::default());
        let a1 = s.open("alice", 3, 2).unwrap();
        let _a2 = s.open("alice", 3, 2).unwrap();
        assert_eq!(s.open("alice", 3, 2).unwrap_err(), Refused::Caller(2));
        let _b1 = s.open("bob", 3, 2).unwrap();
        assert_eq!(s.open("carol", 3, 2).unwrap_err(), Refused::Total(3));
        drop(a1);
        assert_eq!(s.count(), 2);
        let _c1 = s.open("carol", 3, 2).unwrap();
        assert_eq!(s.open("alice", 3, 2).unwrap_err(), Refused::Total(3));
    }
}
