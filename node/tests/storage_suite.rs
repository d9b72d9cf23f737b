#![allow(clippy::result_large_err)] // openraft fixes StorageError as the storage error type
//! openraft's own storage test suite against our sled log store and state machine.

use node::log_store::LogStore;
use node::state_machine_store::StateMachine;
use node::types::{StorageError, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageIOError;
use std::sync::Arc;

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for SledBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
        let db = sled::open(dir.path().join("db")).map_err(|e| StorageIOError::write(&e))?;
        let log = LogStore::open(&db).map_err(|e| StorageIOError::write(&e))?;
        let store = state_machine::Store::open(&db).map_err(|e| StorageIOError::write(&e))?;
        let sm = StateMachine::open(Arc::new(store), &dir.path().join("snapshots"))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() -> Result<(), StorageError> {
    Suite::test_all(SledBuilder)
}
