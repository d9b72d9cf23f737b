//! Who the gateway believes leads, and when a leader last answered.
//!
//! Only a successful call confirms a leader (nodes answer reads and submits only while
//! leading); a `NotLeader` hint is a belief to try next, not a confirmation. `/readyz` reads
//! the time of the last confirmation.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

#[derive(Debug, Default)]
struct State {
    /// Where the next call goes first.
    addr: Option<String>,
    /// The last node that answered as leader; a different one answering is a leader change.
    confirmed: Option<String>,
    answered_at: Option<Instant>,
}

pub struct LeaderTracker {
    state: Mutex<State>,
    metrics: Arc<Metrics>,
}

impl LeaderTracker {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The believed leader's address.
    pub fn current(&self) -> Option<String> {
        self.lock().addr.clone()
    }

    /// A node named another as leader.
    pub fn hint(&self, addr: &str) {
        self.lock().addr = Some(addr.to_owned());
    }

    /// `addr` failed or said it does not lead: stop sending there first.
    pub fn forget(&self, addr: &str) {
        let mut s = self.lock();
        if s.addr.as_deref() == Some(addr) {
            s.addr = None;
        }
    }

    /// `addr` answered as leader.
    pub fn answered(&self, addr: &str) {
        let mut s = self.lock();
        if s.addr.as_deref() != Some(addr) {
            s.addr = Some(addr.to_owned());
        }
        if s.confirmed.as_deref() != Some(addr) {
            if s.confirmed.is_some() {
                self.metrics.leader_changed();
            }
            s.confirmed = Some(addr.to_owned());
        }
        s.answered_at = Some(Instant::now());
    }

    pub fn answered_within(&self, window: Duration) -> bool {
        self.lock()
            .answered_at
            .is_some_and(|t| t.elapsed() <= window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_different_leader_answering_counts_as_a_change() {
        let metrics = Arc::new(Metrics::default());
        let t = LeaderTracker::new(metrics.clone());
        assert!(!t.answered_within(Duration::from_secs(1)));
        t.answered("a:1");
        t.answered("a:1");
        assert_eq!(metrics.leader_changes(), 0);
        t.hint("b:1");
        assert_eq!(t.current().as_deref(), Some("b:1"));
        assert_eq!(metrics.leader_changes(), 0, "a hint is not a change");
        t.answered("b:1");
        assert_eq!(metrics.leader_changes(), 1);
        t.forget("b:1");
        assert_eq!(t.current(), None);
        assert!(t.answered_within(Duration::from_secs(1)));
    }
}
