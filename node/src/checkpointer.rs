//! Checkpoints the in-memory state to sled off the apply path, every interval or once enough
//! log entries were applied since the last checkpoint, whichever comes first: apply waits
//! only for the swap of the dirty set. A restart replays the log after the last checkpoint;
//! the log is never purged past one (a snapshot checkpoints before it is used).
//!
//! A failed checkpoint stops the node. sled keeps the first IO error it meets (a full disk,
//! say) and fails every later write with it, even once space is back, and a retried `fsync`
//! proves nothing (fsyncgate). Retrying would only let the dirty set and the unpurgeable log
//! grow; a restart reopens sled and replays the log from the last good checkpoint.

use crate::low_priority;
use crate::metrics::HotPath;
use state_machine::{Store, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Counts the log entries applied since the last checkpoint began and wakes the checkpointer
/// once they reach the limit. Apply counts; the checkpointer resets.
///
/// Every replica applies the same entries, so an exact limit would have them all checkpoint at
/// the same log position, at about the same moment: the pause the random phase of the
/// interval avoids. Each node therefore draws its limit once, between the configured count
/// and a quarter more.
#[derive(Debug)]
pub struct EntriesDue {
    limit: u64,
    applied: AtomicU64,
    reached: Notify,
}

impl EntriesDue {
    /// A limit drawn between `at_least` and a quarter more.
    pub fn new(at_least: u64) -> Arc<EntriesDue> {
        let spread = at_least / 4;
        let extra = if spread == 0 {
            0
        } else {
            random_u64() % (spread + 1)
        };
        EntriesDue::exactly(at_least + extra)
    }

    /// Exactly `limit` entries, for tests.
    pub fn exactly(limit: u64) -> Arc<EntriesDue> {
        Arc::new(EntriesDue {
            limit: limit.max(1),
            applied: AtomicU64::new(0),
            reached: Notify::new(),
        })
    }

    /// Counts `entries` applied; the one call that reaches the limit wakes the checkpointer.
    pub fn applied(&self, entries: u64) {
        let before = self.applied.fetch_add(entries, Ordering::Relaxed);
        if before < self.limit && before + entries >= self.limit {
            self.reached.notify_one();
        }
    }

    /// The limit this node drew.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Entries applied since the last reset.
    pub fn pending(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    /// Called as a checkpoint begins: entries applied from here on belong to the next one.
    /// (Those applied between this and the checkpoint's take of the dirty set are written by
    /// this checkpoint and counted again for the next, which only brings it forward.)
    fn reset(&self) {
        self.applied.store(0, Ordering::Relaxed);
    }

    async fn reached(&self) {
        self.reached.notified().await;
    }
}

/// The name of the thread checkpoints run on, at a lower CPU priority (`low_priority`).
pub const THREAD: &str = "checkpoint";

/// Checkpoints every `interval`, or as soon as `due` counts its limit of entries, until one
/// checkpoint fails; the task's result is that failure. Either cause starts the interval
/// again.
pub fn start(
    store: Arc<Store>,
    interval: Duration,
    due: Arc<EntriesDue>,
    hot: HotPath,
) -> JoinHandle<StoreError> {
    start_on(THREAD, store, interval, due, hot)
}

/// `start`, with the checkpoints' thread named `thread`.
fn start_on(
    thread: &'static str,
    store: Arc<Store>,
    interval: Duration,
    due: Arc<EntriesDue>,
    hot: HotPath,
) -> JoinHandle<StoreError> {
    tokio::spawn(async move {
        let worker = match low_priority::Worker::start(thread) {
            Ok(worker) => worker,
            Err(e) => return StoreError::Io(e),
        };
        let first = tokio::time::Instant::now() + interval + random_phase(interval);
        let mut tick = tokio::time::interval_at(first, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let cause = tokio::select! {
                _ = tick.tick() => "interval",
                () = due.reached() => "entries",
            };
            due.reset();
            tick.reset();
            let checkpointing = store.clone();
            let started = Instant::now();
            match worker.run(move || checkpointing.checkpoint()).await {
                Ok(Ok(info)) if info.records > 0 => tracing::debug!(
                    records = info.records,
                    ms = started.elapsed().as_millis() as u64,
                    cause,
                    "checkpoint"
                ),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return e,
                Err(e) => return StoreError::Io(e),
            }
            let (held, on_disk_only) = store.events_in_memory();
            hot.events_in_memory.set(held as i64);
            hot.events_on_disk_only.set(on_disk_only as i64);
        }
    })
}

/// A random part of `interval`, so that nodes started together do not checkpoint together:
/// each checkpoint is a burst of CPU, and three at once on cores the orders already keep busy
/// stalled every commit (README, "A pause at every checkpoint"), while a commit needs only
/// the leader and one follower.
fn random_phase(interval: Duration) -> Duration {
    let nanos = interval.as_nanos().max(1) as u64;
    Duration::from_nanos(random_u64() % nanos)
}

/// Random bits for spreading the nodes apart; zero where the system has none to give, which
/// only leaves the nodes in step.
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state_machine::{Batch, Command, SkuId};

    fn create(n: u64) -> Batch {
        Batch {
            now_ms: 1,
            commands: vec![Command::CreateSku {
                sku: SkuId::new(format!("sku-{n}")).unwrap(),
                stock: 1,
                per_user_limit: None,
                sale_window: None,
                request_tag: n + 1,
            }],
        }
    }

    fn store() -> Arc<Store> {
        let db = sled::Config::new().temporary(true).open().unwrap();
        Arc::new(Store::open(&db).unwrap())
    }

    fn apply(store: &Store, due: &EntriesDue, from: u64, entries: u64) {
        for index in from..from + entries {
            let batch = create(index);
            let marker = index.to_string();
            store
                .apply(&[(index, &batch)], Some(marker.as_bytes()))
                .unwrap();
            due.applied(1);
        }
    }

    async fn wait_until_checkpointed(store: &Store, marker: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if store.checkpointed_marker().unwrap().as_deref() == Some(marker.as_bytes()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }

    #[test]
    fn only_the_entry_that_reaches_the_limit_wakes_the_checkpointer() {
        let due = EntriesDue::exactly(3);
        due.applied(2);
        assert!(futures::FutureExt::now_or_never(due.reached()).is_none());
        due.applied(1);
        assert!(futures::FutureExt::now_or_never(due.reached()).is_some());
        due.applied(5);
        assert!(
            futures::FutureExt::now_or_never(due.reached()).is_none(),
            "past the limit, nothing more until a reset"
        );
        assert_eq!(due.pending(), 8);
        due.reset();
        due.applied(4);
        assert!(futures::FutureExt::now_or_never(due.reached()).is_some());
    }

    #[tokio::test]
    async fn enough_entries_checkpoint_long_before_the_interval() {
        let store = store();
        let due = EntriesDue::exactly(5);
        let task = start(
            store.clone(),
            Duration::from_secs(600),
            due.clone(),
            HotPath::default(),
        );
        apply(&store, &due, 1, 4);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            store.checkpointed_marker().unwrap(),
            None,
            "four entries of five, and the interval is ten minutes"
        );
        apply(&store, &due, 5, 1);
        assert!(wait_until_checkpointed(&store, "5").await);
        // The count starts again: the next checkpoint comes after five more.
        apply(&store, &due, 6, 4);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            store.checkpointed_marker().unwrap().as_deref(),
            Some(&b"5"[..])
        );
        apply(&store, &due, 10, 1);
        assert!(wait_until_checkpointed(&store, "10").await);
        task.abort();
    }

    /// The nice value and the time on a CPU so far (ns) of this process's thread named
    /// `name`, if there is one (Linux: `/proc`).
    #[cfg(target_os = "linux")]
    fn thread_named(name: &str) -> Option<(i64, u64)> {
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let path = task.path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if comm.trim_end() != name {
                continue;
            }
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            // After the name in brackets: state is the 3rd field, nice the 19th.
            let after_name = stat.rsplit_once(')')?.1;
            let nice = after_name.split_whitespace().nth(16)?.parse().ok()?;
            let schedstat = std::fs::read_to_string(path.join("schedstat")).ok()?;
            let on_cpu = schedstat.split_whitespace().next()?.parse().ok()?;
            return Some((nice, on_cpu));
        }
        None
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn checkpoints_run_on_a_thread_of_their_own_at_the_lower_priority() {
        // A name of this test's own: other tests' checkpointers run beside it.
        const NAME: &str = "checkpoint-test";
        let store = store();
        let due = EntriesDue::exactly(1);
        let task = start_on(
            NAME,
            store.clone(),
            Duration::from_secs(600),
            due.clone(),
            HotPath::default(),
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while thread_named(NAME).is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Once started, the thread waits for work and uses no CPU.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (nice, idle) = thread_named(NAME).expect("the checkpoints' thread");
        assert!(nice >= i64::from(low_priority::NICE), "nice {nice}");
        apply(&store, &due, 1, 1);
        assert!(wait_until_checkpointed(&store, "1").await);
        let (_, after) = thread_named(NAME).expect("the checkpoints' thread");
        assert!(
            after > idle,
            "the checkpoint ran elsewhere: {idle} → {after} ns"
        );
        task.abort();
    }

    #[test]
    fn nodes_draw_their_entry_limit_from_the_count_to_a_quarter_more() {
        let limits: std::collections::HashSet<u64> =
            (0..32).map(|_| EntriesDue::new(10_000).limit()).collect();
        assert!(
            limits.iter().all(|l| (10_000..=12_500).contains(l)),
            "{limits:?}"
        );
        assert!(limits.len() > 1, "every node drew the same limit");
        assert_eq!(
            EntriesDue::new(3).limit(),
            3,
            "a quarter of 3 entries is none"
        );
    }

    #[test]
    fn nodes_draw_their_own_phase_within_the_interval() {
        let interval = Duration::from_secs(1);
        let phases: std::collections::HashSet<Duration> =
            (0..32).map(|_| random_phase(interval)).collect();
        assert!(phases.iter().all(|p| *p < interval));
        assert!(phases.len() > 1, "every draw gave the same phase");
    }

    #[tokio::test]
    async fn the_interval_checkpoints_fewer_entries() {
        let store = store();
        let due = EntriesDue::exactly(1_000);
        let task = start(
            store.clone(),
            Duration::from_millis(50),
            due.clone(),
            HotPath::default(),
        );
        apply(&store, &due, 1, 2);
        assert!(wait_until_checkpointed(&store, "2").await);
        task.abort();
    }
}
