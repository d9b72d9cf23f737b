//! `/readyz`: whether a load balancer or an orchestrator should count this node in. A node is
//! ready when it is a member, knows a leader, and keeps up with its log: it has applied all
//! of it, or at least applied something within the last second (a busy node always has a few
//! entries between append and apply).
//!
//! openraft's metrics give no commit index; the last log index stands in for it. It is never
//! below the commit index, so "applied everything in the log" implies "applied everything
//! committed".

use crate::types::NodeId;
use openraft::{BasicNode, RaftMetrics, ServerState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How recently a node that lags its log must have applied something to count as keeping up.
pub const APPLY_GRACE: Duration = Duration::from_secs(1);

/// When the applied index last moved, as milliseconds since `epoch`: one atomic, written by
/// the metrics watcher and read by `/readyz`.
#[derive(Debug)]
pub struct ApplyProgress {
    epoch: Instant,
    /// `u64::MAX` until the first apply this process saw.
    last_ms: AtomicU64,
}

impl Default for ApplyProgress {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(u64::MAX),
        }
    }
}

impl ApplyProgress {
    pub fn applied_now(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long ago the applied index last moved; `None` if it never did in this process.
    pub fn since_last_apply(&self) -> Option<Duration> {
        match self.last_ms.load(Ordering::Relaxed) {
            u64::MAX => None,
            ms => Some(
                self.epoch
                    .elapsed()
                    .saturating_sub(Duration::from_millis(ms)),
            ),
        }
    }
}

/// `Ok` if the node is ready; else a short reason for the 503's body.
pub fn judge(
    metrics: &RaftMetrics<NodeId, BasicNode>,
    since_last_apply: Option<Duration>,
) -> Result<(), String> {
    if let Err(fatal) = &metrics.running_state {
        return Err(format!("raft has stopped: {fatal}"));
    }
    if metrics.state == ServerState::Shutdown {
        return Err("raft is shutting down".into());
    }
    let membership = metrics.membership_config.membership();
    if membership.get_node(&metrics.id).is_none() {
        return Err("not a member of the cluster".into());
    }
    if metrics.current_leader.is_none() {
        return Err("no known leader".into());
    }
    let applied = metrics.last_applied.map_or(0, |l| l.index);
    let last_log = metrics.last_log_index.unwrap_or(0);
    if applied >= last_log {
        return Ok(());
    }
    match since_last_apply {
        Some(ago) if ago <= APPLY_GRACE => Ok(()),
        Some(ago) => Err(format!(
            "applied index {applied} is behind last log index {last_log}, and nothing was applied for {} ms",
            ago.as_millis()
        )),
        None => Err(format!(
            "applied index {applied} is behind last log index {last_log}, and nothing was applied since start"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId, Membership, StoredMembership};
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    fn metrics(me: NodeId, members: &[NodeId]) -> RaftMetrics<NodeId, BasicNode> {
        let nodes: BTreeMap<NodeId, BasicNode> = members
            .iter()
            .map(|id| (*id, BasicNode::new(format!("127.0.0.1:{}", 7000 + id))))
            .collect();
        let voters: BTreeSet<NodeId> = members.iter().copied().collect();
        let mut m = RaftMetrics::new_initial(me);
        m.membership_config = Arc::new(StoredMembership::new(
            None,
            Membership::new(vec![voters], nodes),
        ));
        m.state = ServerState::Follower;
        m.current_leader = Some(1);
        m.last_log_index = Some(10);
        m.last_applied = Some(LogId::new(CommittedLeaderId::new(1, 1), 10));
        m
    }

    #[test]
    fn a_member_with_a_leader_that_applied_its_log_is_ready() {
        assert_eq!(judge(&metrics(2, &[1, 2, 3]), None), Ok(()));
    }

    #[test]
    fn not_ready_without_membership_or_leader() {
        let e = judge(&metrics(4, &[1, 2, 3]), None).unwrap_err();
        assert!(e.contains("not a member"), "{e}");
        let mut m = metrics(2, &[1, 2, 3]);
        m.current_leader = None;
        assert_eq!(judge(&m, None).unwrap_err(), "no known leader");
    }

    #[test]
    fn lagging_apply_is_ready_only_while_it_moves() {
        let mut m = metrics(2, &[1, 2, 3]);
        m.last_log_index = Some(15);
        assert_eq!(judge(&m, Some(Duration::from_millis(200))), Ok(()));
        let e = judge(&m, Some(Duration::from_secs(3))).unwrap_err();
        assert!(
            e.contains("applied index 10 is behind last log index 15"),
            "{e}"
        );
        assert!(judge(&m, None).is_err());
    }

    #[test]
    fn progress_reports_how_long_ago_the_last_apply_was() {
        let p = ApplyProgress::default();
        assert_eq!(p.since_last_apply(), None);
        p.applied_now();
        assert!(p.since_last_apply().unwrap() < Duration::from_secs(1));
    }
}
