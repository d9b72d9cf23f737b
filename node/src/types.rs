//! The openraft type configuration: log entries carry a `state_machine::Batch` behind an
//! `Arc` (openraft clones an entry for each follower's replication and for apply; the `Arc`
//! makes that a pointer copy, not a copy of every command), and each entry's response is the
//! outcomes of its commands.

use serde::{Deserialize, Serialize};
use state_machine::{Batch, Outcome};
use std::sync::Arc;

pub type NodeId = u64;

/// What applying one log entry returned: one outcome per command (empty for Raft's own
/// blank and membership entries).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub outcomes: Vec<Outcome>,
}

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Arc<Batch>,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = tokio::fs::File,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
pub type StorageError = openraft::StorageError<NodeId>;
