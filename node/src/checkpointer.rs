//! Checkpoints the in-memory state to sled at a fixed interval, off the apply path: apply
//! waits only for the swap of the dirty set. A restart replays the log after the last
//! checkpoint; the log is never purged past one (a snapshot checkpoints before it is used).

use state_machine::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn start(store: Arc<Store>, interval: Duration) {
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
                // The changes stay dirty; the next tick retries, and the log keeps
                // everything after the last good checkpoint meanwhile.
                Ok(Err(e)) => tracing::error!(error = %e, "checkpoint failed"),
                Err(e) => tracing::error!(error = %e, "checkpoint task failed"),
            }
        }
    });
}
