//! Copies openraft's metrics into the node's gauges whenever they change. openraft publishes
//! them on a watch channel; changes that land between two wake-ups are seen as one, so a
//! leader that came and went in between is not counted (as with etcd's counter, the count is
//! of changes seen).

use super::readiness::ApplyProgress;
use super::{FollowerLabels, RaftGauges, RoleLabels};
use crate::types::{NodeId, Raft};
use openraft::{BasicNode, RaftMetrics, ServerState};
use std::collections::BTreeSet;
use std::sync::Arc;

const ROLES: [(ServerState, &str); 5] = [
    (ServerState::Leader, "leader"),
    (ServerState::Follower, "follower"),
    (ServerState::Candidate, "candidate"),
    (ServerState::Learner, "learner"),
    (ServerState::Shutdown, "shutdown"),
];

pub fn start(raft: Raft, gauges: RaftGauges, progress: Arc<ApplyProgress>) {
    let mut rx = raft.metrics();
    // Every role's series exists from the start, so `role{role="leader"} == 0` can be alerted on.
    for (_, role) in ROLES {
        gauges.role.get_or_create(&RoleLabels { role }).set(0);
    }
    tokio::spawn(async move {
        let mut seen = Seen::default();
        loop {
            {
                let metrics = rx.borrow_and_update();
                seen.update(&gauges, &progress, &metrics);
            }
            if super::pace::next_change(&mut rx).await.is_err() {
                // Raft has shut down.
                return;
            }
        }
    });
}

/// What the watcher remembers between changes.
#[derive(Default)]
struct Seen {
    leader: Option<NodeId>,
    applied: Option<u64>,
    state: Option<ServerState>,
    followers: BTreeSet<NodeId>,
}

impl Seen {
    fn update(
        &mut self,
        gauges: &RaftGauges,
        progress: &ApplyProgress,
        m: &RaftMetrics<NodeId, BasicNode>,
    ) {
        gauges.term.set(to_gauge(m.current_term));
        gauges.leader_id.set(m.current_leader.map_or(0, to_gauge));
        let last_log = m.last_log_index.unwrap_or(0);
        gauges.last_log_index.set(to_gauge(last_log));
        let applied = m.last_applied.map(|l| l.index);
        gauges.applied_index.set(applied.map_or(0, to_gauge));
        gauges
            .snapshot_index
            .set(m.snapshot.map_or(0, |l| to_gauge(l.index)));

        if let Some(leader) = m.current_leader {
            if self.leader != Some(leader) {
                // openraft logs its own elections at info too, but the node's filter keeps
                // openraft at warn: this is the one line an operator needs.
                tracing::info!(term = m.current_term, leader, "leader changed");
                gauges.leader_changes.inc();
                self.leader = Some(leader);
            }
        }
        if applied != self.applied {
            if self.applied.is_some() {
                progress.applied_now();
            }
            self.applied = applied;
        }
        if self.state != Some(m.state) {
            tracing::info!(term = m.current_term, role = ?m.state, "role changed");
            for (state, role) in ROLES {
                let value = i64::from(state == m.state);
                gauges.role.get_or_create(&RoleLabels { role }).set(value);
            }
            self.state = Some(m.state);
        }

        let mut now_followers = BTreeSet::new();
        if let Some(replication) = &m.replication {
            for (id, matched) in replication.iter().filter(|(id, _)| **id != m.id) {
                let matched = matched.map_or(0, |l| l.index);
                gauges
                    .follower_lag
                    .get_or_create(&FollowerLabels { follower: *id })
                    .set(to_gauge(last_log.saturating_sub(matched)));
                now_followers.insert(*id);
            }
        }
        // A former leader's figures, or a removed follower's, would go stale rather than vanish.
        for gone in self.followers.difference(&now_followers) {
            gauges
                .follower_lag
                .remove(&FollowerLabels { follower: *gone });
        }
        self.followers = now_followers;
    }
}

fn to_gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId};
    use std::collections::BTreeMap;

    fn log_id(index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(2, 1), index)
    }

    #[test]
    fn leader_changes_roles_and_follower_lag() {
        let gauges = RaftGauges::default();
        let progress = ApplyProgress::default();
        let mut seen = Seen::default();
        let mut m = RaftMetrics::<NodeId, BasicNode>::new_initial(1);
        seen.update(&gauges, &progress, &m);
        assert_eq!(gauges.leader_changes.get(), 0);

        m.current_term = 2;
        m.state = ServerState::Leader;
        m.current_leader = Some(1);
        m.last_log_index = Some(100);
        m.last_applied = Some(log_id(98));
        m.replication = Some(BTreeMap::from([
            (1, Some(log_id(100))),
            (2, Some(log_id(90))),
            (3, None),
        ]));
        seen.update(&gauges, &progress, &m);
        assert_eq!(gauges.leader_changes.get(), 1);
        assert_eq!(gauges.term.get(), 2);
        assert_eq!(gauges.leader_id.get(), 1);
        assert_eq!(gauges.applied_index.get(), 98);
        let role = |role| gauges.role.get_or_create(&RoleLabels { role }).get();
        assert_eq!((role("leader"), role("learner")), (1, 0));
        let lag = |follower| {
            gauges
                .follower_lag
                .get_or_create(&FollowerLabels { follower })
                .get()
        };
        assert_eq!((lag(2), lag(3)), (10, 100));
        // The same leader again is no change; the applied index moved.
        m.last_applied = Some(log_id(100));
        seen.update(&gauges, &progress, &m);
        assert_eq!(gauges.leader_changes.get(), 1);
        assert!(progress.since_last_apply().is_some());

        // Deposed: no lag is exported any more, and a new leader counts once.
        m.state = ServerState::Follower;
        m.current_leader = None;
        m.replication = None;
        seen.update(&gauges, &progress, &m);
        assert_eq!(gauges.leader_id.get(), 0);
        m.current_leader = Some(3);
        seen.update(&gauges, &progress, &m);
        assert_eq!(gauges.leader_changes.get(), 2);
        assert_eq!(role("follower"), 1);
        assert!(gauges
            .follower_lag
            .get(&FollowerLabels { follower: 2 })
            .is_none());
    }
}
