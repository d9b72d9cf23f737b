//! When a node snapshots. openraft 0.9 can only count entries, whatever they carry and
//! however large the state has grown, so its own policy is off (`SnapshotPolicy::Never`) and
//! this task decides, by two rules:
//! - **by count**: `raft.snapshot_logs_since_last` entries were applied since the last
//!   snapshot, and that snapshot's file is smaller than `raft.snapshot_log_mib_since_last`
//!   MiB. A small state snapshots often: it is cheap to write.
//! - **by size**: the log since the last snapshot holds more than
//!   `raft.snapshot_log_mib_since_last` MiB and more bytes than that snapshot's file. An
//!   entry may carry thousands of orders, so a count alone would let the log on disk grow
//!   to gigabytes.
//!
//! Every snapshot writes the whole state. Past the size floor, a snapshot is only rebuilt
//! once the log since the last one has outgrown it, so the bytes snapshots write stay below
//! the bytes of log they let go: an 8-minute soak had rebuilt a gigabyte state every 20,000
//! entries, and each such minute served a quarter fewer orders.

use crate::log_store::LogSizes;
use crate::state_machine_store::current_snapshot_bytes;
use crate::types::Raft;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the rules are checked: each check reads two counters and a lock-guarded sum.
const TICK: Duration = Duration::from_millis(100);
/// A request that brought no new snapshot (its build failed) is repeated after this long.
const ASK_AGAIN: Duration = Duration::from_secs(60);

/// The configured thresholds.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub entries: u64,
    pub floor_bytes: u64,
}

/// The log since the last snapshot, and that snapshot.
#[derive(Debug, Clone, Copy)]
struct Since {
    entries: u64,
    log_bytes: u64,
    /// Bytes of the current snapshot's file; 0 when there is none.
    snapshot_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Count,
    Size,
}

impl Rules {
    /// Whether the rules could fire without knowing the snapshot's size: when not, the
    /// snapshot's file need not be looked at.
    fn may_fire(&self, entries: u64, log_bytes: u64) -> bool {
        entries >= self.entries || log_bytes > self.floor_bytes
    }

    fn due(&self, since: Since) -> Option<Reason> {
        if since.log_bytes > self.floor_bytes && since.log_bytes > since.snapshot_bytes {
            Some(Reason::Size)
        } else if since.entries >= self.entries && since.snapshot_bytes < self.floor_bytes {
            Some(Reason::Count)
        } else {
            None
        }
    }
}

pub fn start(raft: Raft, log: LogSizes, snapshots: PathBuf, rules: Rules) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The snapshot index a request was made after, and when: one request per snapshot.
        let mut asked: Option<(u64, Instant)> = None;
        // The current snapshot's index and file size: a snapshot's file never changes, so it
        // is read once per snapshot.
        let mut sized: Option<(u64, u64)> = None;
        loop {
            tick.tick().await;
            let (since, applied) = {
                let metrics = raft.metrics();
                let m = metrics.borrow();
                (
                    m.snapshot.map_or(0, |s| s.index),
                    m.last_applied.map_or(0, |l| l.index),
                )
            };
            if asked.is_some_and(|(after, at)| after == since && at.elapsed() < ASK_AGAIN) {
                continue;
            }
            let entries = applied.saturating_sub(since);
            let log_bytes = log.bytes_after(since);
            if !rules.may_fire(entries, log_bytes) {
                continue;
            }
            let snapshot_bytes = match sized {
                Some((index, bytes)) if index == since => bytes,
                _ => {
                    let dir = snapshots.clone();
                    let bytes = tokio::task::spawn_blocking(move || current_snapshot_bytes(&dir))
                        .await
                        .ok()
                        .flatten()
                        .unwrap_or(0);
                    sized = Some((since, bytes));
                    bytes
                }
            };
            let Some(reason) = rules.due(Since {
                entries,
                log_bytes,
                snapshot_bytes,
            }) else {
                continue;
            };
            tracing::info!(
                ?reason,
                entries,
                log_bytes,
                snapshot_bytes,
                since,
                "building a snapshot"
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

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        entries: 20_000,
        floor_bytes: 256 << 20,
    };

    fn since(entries: u64, log_mib: u64, snapshot_mib: u64) -> Since {
        Since {
            entries,
            log_bytes: log_mib << 20,
            snapshot_bytes: snapshot_mib << 20,
        }
    }

    #[test]
    fn a_small_state_snapshots_by_count() {
        assert_eq!(RULES.due(since(20_000, 1, 0)), Some(Reason::Count));
        assert_eq!(RULES.due(since(20_000, 1, 255)), Some(Reason::Count));
        assert_eq!(RULES.due(since(19_999, 1, 255)), None);
    }

    #[test]
    fn a_large_state_waits_until_the_log_outgrows_it() {
        assert_eq!(RULES.due(since(1_000_000, 300, 256)), Some(Reason::Size));
        assert_eq!(RULES.due(since(1_000_000, 900, 1_000)), None);
        assert_eq!(
            RULES.due(since(1_000_000, 1_001, 1_000)),
            Some(Reason::Size)
        );
    }

    #[test]
    fn a_large_log_snapshots_by_size_whatever_its_entries() {
        assert_eq!(RULES.due(since(10, 257, 0)), Some(Reason::Size));
        assert_eq!(RULES.due(since(10, 256, 0)), None);
        assert_eq!(RULES.due(since(10, 257, 300)), None);
    }

    /// Skipping the snapshot's size when no rule may fire never skips a due snapshot.
    #[test]
    fn the_snapshot_is_looked_at_whenever_a_rule_may_fire() {
        for entries in [0, 19_999, 20_000, 1_000_000] {
            for log_mib in [0, 255, 256, 257, 5_000] {
                for snapshot_mib in [0, 255, 256, 257, 4_000] {
                    let s = since(entries, log_mib, snapshot_mib);
                    if !RULES.may_fire(s.entries, s.log_bytes) {
                        assert_eq!(RULES.due(s), None, "{s:?}");
                    }
                }
            }
        }
        assert!(!RULES.may_fire(19_999, 256 << 20));
        assert!(RULES.may_fire(20_000, 0));
        assert!(RULES.may_fire(0, (256 << 20) + 1));
    }
}
