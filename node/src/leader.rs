//! Who leads, as this node's Raft metrics say: for "not leader" answers and for routing.
//! Never used to decide whether a read is safe (that is the read index's job).

use crate::types::{NodeId, Raft};
use openraft::error::ForwardToLeader;
use openraft::BasicNode;

/// The leader hint: its id and address, both unknown during an election.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderHint {
    pub id: Option<NodeId>,
    pub addr: String,
}

impl LeaderHint {
    pub fn from_metrics(raft: &Raft) -> Self {
        let metrics = raft.metrics().borrow().clone();
        let id = metrics.current_leader;
        let addr = id
            .and_then(|id| {
                metrics
                    .membership_config
                    .membership()
                    .get_node(&id)
                    .cloned()
            })
            .map(|n| n.addr)
            .unwrap_or_default();
        Self { id, addr }
    }

    pub fn from_forward(fwd: &ForwardToLeader<NodeId, BasicNode>) -> Self {
        Self {
            id: fwd.leader_id,
            addr: fwd
                .leader_node
                .as_ref()
                .map(|n| n.addr.clone())
                .unwrap_or_default(),
        }
    }
}
