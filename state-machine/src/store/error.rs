//! What can go wrong below the state machine's rules: storage, corruption, broken
//! invariants (a bug: the node must stop rather than carry on), bad snapshots.

use crate::command::MAX_BATCH_COMMANDS;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("invariant broken: {0}")]
    Invariant(String),
    #[error("bad snapshot: {0}")]
    Snapshot(String),
    #[error("batch of {0} commands exceeds the limit of {MAX_BATCH_COMMANDS}")]
    BatchTooLarge(usize),
}
