//! What the tests of the log store share.

use node::log_store::LogStore;
use node::types::{Entry, LogId};
use openraft::CommittedLeaderId;

pub fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

/// Appends `entries` in one call and waits until they are reported saved.
pub async fn append_saved(store: &mut LogStore, entries: Vec<Entry>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    store
        .append_with(
            entries,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )
        .expect("queued");
    rx.await.expect("io thread answered").expect("saved");
}
