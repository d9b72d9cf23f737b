//! Snapshots by log size. openraft 0.9 snapshots after a count of entries, but an entry may
//! carry one order or thousands: under batch load 20,000 entries are gigabytes of log on
//! disk before a snapshot lets it be purged. This task asks for a snapshot once the log
//! after the last one holds more than the configured bytes and more than that snapshot's
//! file, so the log on disk stays about as large as the state at most, and a snapshot is
//! never rebuilt for less log than it costs to write.

use crate::log_store::LogSizes;
use crate::state_machine_store::current_snapshot_bytes;
use crate::types::Raft;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_secs(1);
/// A request that brought no new snapshot (its build failed) is repeated after this long.
const ASK_AGAIN: Duration = Duration::from_secs(60);

pub fn start(raft: Raft, log: LogSizes, snapshots: PathBuf, floor_bytes: u64) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The snapshot index a request was made after, and when: one request per snapshot.
        let mut asked: Option<(u64, Instant)> = None;
        loop {
            tick.tick().await;
            let since = raft.metrics().borrow().snapshot.map_or(0, |s| s.index);
            if asked.is_some_and(|(after, at)| after == since && at.elapsed() < ASK_AGAIN) {
                continue;
            }
            let log_bytes = log.bytes_after(since);
            if log_bytes <= floor_bytes {
                continue;
            }
            let dir = snapshots.clone();
            let snapshot_bytes = tokio::task::spawn_blocking(move || current_snapshot_bytes(&dir))
                .await
                .ok()
                .flatten()
                .unwrap_or(0);
            if log_bytes <= snapshot_bytes {
                continue;
            }
            tracing::info!(
                log_bytes,
                snapshot_bytes,
                since,
                "the log since the last snapshot outgrew it; building a snapshot"
            );
            // openraft ignores the request while a build runs; that build's snapshot then
            // moves `since`, and the log after it is measured again.
            if let Err(e) = raft.trigger().snapshot().await {
                tracing::warn!(error = %e, "cannot trigger a snapshot");
                return;
            }
            asked = Some((since, Instant::now()));
        }
    });
}
