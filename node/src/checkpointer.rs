//! Checkpoints the in-memory state to sled at a fixed interval, off the apply path: apply
//! waits only for the swap of the dirty set. A restart replays the log after the last
//! checkpoint; the log is never purged past one (a snapshot checkpoints before it is used).
//!
//! A failed checkpoint stops the node. sled keeps the first IO error it meets (a full disk,
//! say) and fails every later write with it, even once space is back, and a retried `fsync`
//! proves nothing (fsyncgate). Retrying would only let the dirty set and the unpurgeable log
//! grow; a restart reopens sled and replays the log from the last good checkpoint.

use state_machine::{Store, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Checkpoints every `interval` until one fails; the task's result is that failure.
pub fn start(store: Arc<Store>, interval: Duration) -> JoinHandle<StoreError> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let store = store.clone();
            let started = Instant::now();
            match tokio::task::spawn_blocking(move || store.checkpoint()).await {
                Ok(Ok(info)) if info.records > 0 => tracing::debug!(
                    records = info.records,
                    ms = started.elapsed().as_millis() as u64,
                    "checkpoint"
                ),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return e,
                Err(e) => return StoreError::Io(std::io::Error::other(e.to_string())),
            }
        }
    })
}
