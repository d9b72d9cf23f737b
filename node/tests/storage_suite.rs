#![allow(clippy::result_large_err)] // openraft fixes StorageError as the storage error type
//! openraft's own storage test suite against our write-ahead log store and state machine.

use node::log_store::{LogOptions, LogStore};
use node::state_machine_store::StateMachine;
use node::types::{StorageError, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageIOError;
use std::sync::Arc;

/// Opens the log with a cache of this many bytes of entries.
struct WalBuilder(u64);

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for WalBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
        // Small segments, so that the suite's purges delete whole files too.
        let options = LogOptions {
            segment_bytes: 512,
            cache_bytes: self.0,
            ..LogOptions::default()
        };
        let log = LogStore::open(&dir.path().join("raft-log"), options)
            .map_err(|e| StorageIOError::write(&e))?;
        let db = sled::open(dir.path().join("db")).map_err(|e| StorageIOError::write(&e))?;
        let store = state_machine::Store::open(&db).map_err(|e| StorageIOError::write(&e))?;
        let sm = StateMachine::open(Arc::new(store), &dir.path().join("snapshots"))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() -> Result<(), StorageError> {
    Suite::test_all(WalBuilder(LogOptions::default().cache_bytes))
}

/// Every entry given up as soon as it is written: reads come from the segments.
#[test]
fn openraft_storage_suite_without_a_cache() -> Result<(), StorageError> {
    Suite::test_all(WalBuilder(0))
}
