//! The openraft state machine over the `state-machine` crate's sled store.
//!
//! Each `apply` call lands as one atomic store write together with the applied marker (last
//! log id and membership), so a node killed at any instant restarts at a prefix of the log.
//! Snapshots are files: built by streaming the store's export to disk, sent in chunks by
//! openraft, installed by streaming into the store's next generation.

use crate::checkpointer::EntriesDue;
use crate::clock::Clocks;
use crate::metrics::HotPath;
use crate::paced_writer::PacedWriter;
use crate::types::Response;
use crate::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};
use state_machine::{Batch, Store};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// What the store's marker holds, as JSON (small, and readable when debugging a data dir).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Applied {
    last: Option<LogId>,
    membership: StoredMembership,
}

/// The current snapshot's metadata and the file holding it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CurrentSnapshot {
    meta: SnapshotMeta,
    file: String,
    /// The snapshot's length uncompressed; absent in records written before snapshots were
    /// compressed, whose file is that length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_bytes: Option<u64>,
}

const CURRENT: &str = "current.json";

#[derive(Clone)]
pub struct StateMachine {
    store: Arc<Store>,
    files: Arc<SnapshotFiles>,
    membership: StoredMembership,
    /// Told the state machine's clock after each apply and install (the cluster clock).
    clocks: Option<Clocks>,
    /// Apply and snapshot durations (unregistered unless a node set its own).
    metrics: HotPath,
    /// Told how many log entries each apply covered, for the checkpointer's entry limit.
    checkpoint_due: Option<Arc<EntriesDue>>,
}

struct SnapshotFiles {
    dir: PathBuf,
    next_id: AtomicU64,
    /// Serialises switching `current.json` between a build and an install.
    switch: std::sync::Mutex<()>,
}

fn sm_read(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_state_machine(&e).into()
}

fn sm_write(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_state_machine(&e).into()
}

fn snap_write(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_snapshot(None, &e).into()
}

fn snap_read(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_snapshot(None, &e).into()
}

fn decode_marker(marker: Option<Vec<u8>>) -> Result<Applied, StorageError> {
    match marker {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(sm_read),
        None => Ok(Applied::default()),
    }
}

/// The log index a store's applied marker (as `Store::marker` returns it) stands at.
pub fn applied_index(marker: Option<Vec<u8>>) -> Result<u64, StorageError> {
    Ok(decode_marker(marker)?.last.map_or(0, |l| l.index))
}

impl StateMachine {
    /// Opens the state machine on `store`, keeping snapshot files in `snapshot_dir`.
    pub fn open(store: Arc<Store>, snapshot_dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(snapshot_dir).map_err(sm_read)?;
        // Half-built or half-received files from before a crash are never current.
        remove_files_named(snapshot_dir, &["building-", "receiving-"]).map_err(sm_read)?;
        let applied = decode_marker(store.marker().map_err(sm_read)?)?;
        let next_id = next_free_id(snapshot_dir)?;
        Ok(Self {
            store,
            files: Arc::new(SnapshotFiles {
                dir: snapshot_dir.to_path_buf(),
                next_id: AtomicU64::new(next_id),
                switch: std::sync::Mutex::new(()),
            }),
            membership: applied.membership,
            clocks: None,
            metrics: HotPath::default(),
            checkpoint_due: None,
        })
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}

/// What `StateMachine::restore_from` wrote.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The snapshot's last included log id, now the store's last applied.
    pub last_log_id: LogId,
    pub records: u64,
}

impl StateMachine {
    /// Fills this state machine's empty store from `snapshot` (a file as `build_snapshot`
    /// writes them) for a new cluster: the records as they are, the applied log id as the
    /// snapshot's, but the membership replaced by `members`, so nothing of the old cluster's
    /// addresses survives. Then builds this node's current snapshot from the result, which a
    /// lagging or new member of the new cluster may be sent. Everything is durable when it
    /// returns.
    pub async fn restore_from(
        &mut self,
        snapshot: std::fs::File,
        members: std::collections::BTreeMap<crate::types::NodeId, openraft::BasicNode>,
    ) -> Result<Restored, StorageError> {
        if self.store.marker().map_err(sm_read)?.is_some() {
            return Err(sm_write(std::io::Error::other(
                "the store already holds applied state; restore only fills an empty one",
            )));
        }
        let store = self.store.clone();
        let info = tokio::task::spawn_blocking(move || store.install_snapshot(snapshot))
            .await
            .map_err(sm_write)?
            .map_err(snap_read)?;
        let Some(last) = decode_marker(info.marker)?.last else {
            return Err(snap_read(std::io::Error::other(
                "the snapshot covers no log entry",
            )));
        };
        let voters = members.keys().copied().collect();
        // Logged at the snapshot's last id: the membership must be at or before the applied
        // id, and no entry of the new cluster exists yet to carry it.
        let membership =
            StoredMembership::new(Some(last), openraft::Membership::new(vec![voters], members));
        let marker = serde_json::to_vec(&Applied {
            last: Some(last),
            membership: membership.clone(),
        })
        .map_err(sm_write)?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            store.set_marker(&marker)?;
            store.checkpoint()
        })
        .await
        .map_err(sm_write)?
        .map_err(sm_write)?;
        self.membership = membership;
        self.get_snapshot_builder().await.build_snapshot().await?;
        Ok(Restored {
            last_log_id: last,
            records: info.records,
        })
    }
}

impl StateMachine {
    /// Tells `clocks` the state machine's clock after every apply and install.
    pub fn with_clocks(mut self, clocks: Clocks) -> Self {
        self.clocks = Some(clocks);
        self
    }

    /// Observes apply and snapshot durations into the node's metrics.
    pub fn with_metrics(mut self, metrics: HotPath) -> Self {
        self.metrics = metrics;
        self
    }

    /// Counts applied entries towards a checkpoint's entry limit.
    pub fn with_checkpoint_due(mut self, due: Arc<EntriesDue>) -> Self {
        self.checkpoint_due = Some(due);
        self
    }

    fn note_clock(&self) {
        if let Some(clocks) = &self.clocks {
            match self.store.clock() {
                Ok(clock) => clocks.note_applied(clock),
                Err(e) => tracing::error!(error = %e, "cannot read the state machine's clock"),
            }
        }
    }
}

/// Removes the files of `dir` whose names start with one of `prefixes`; a file already gone
/// is no error.
fn remove_files_named(dir: &Path, prefixes: &[&str]) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if prefixes.iter().any(|p| name.starts_with(p)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// One past the highest number in any snapshot file's name in `dir`. File names come from
/// the directory itself, never from a snapshot id: an installed snapshot carries the
/// leader's id, and a counter restarted from it could name a new file like the current one.
fn next_free_id(dir: &Path) -> Result<u64, StorageError> {
    let mut highest = 0;
    for entry in std::fs::read_dir(dir).map_err(sm_read)? {
        let name = entry.map_err(sm_read)?.file_name();
        let number = name
            .to_str()
            .and_then(|n| n.strip_suffix(".snap"))
            .and_then(|n| n.rsplit('-').next())
            .and_then(|n| n.parse::<u64>().ok());
        highest = highest.max(number.unwrap_or(0));
    }
    Ok(highest + 1)
}

/// The size of the current snapshot in `dir` uncompressed, if there is one: what a build of
/// the state reads and encodes, whatever the file's compression saves on disk.
pub fn current_snapshot_bytes(dir: &Path) -> Option<u64> {
    let current = current(dir).ok()??;
    if let Some(bytes) = current.content_bytes {
        return Some(bytes);
    }
    std::fs::metadata(dir.join(current.file))
        .ok()
        .map(|m| m.len())
}

fn current(dir: &Path) -> Result<Option<CurrentSnapshot>, StorageError> {
    match std::fs::read(dir.join(CURRENT)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(snap_read),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(snap_read(e)),
    }
}

impl SnapshotFiles {
    /// A fresh name for the next transfer's file. A follower receives one snapshot at a
    /// time: a new transfer means the leader gave up on any earlier one, so earlier received
    /// files go first, and received files never take more than one snapshot's disk.
    fn next_receiving_path(&self) -> Result<PathBuf, StorageError> {
        self.remove_received()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Ok(self.dir.join(format!("receiving-{id}.snap")))
    }

    fn remove_received(&self) -> Result<(), StorageError> {
        remove_files_named(&self.dir, &["receiving-"]).map_err(snap_write)
    }

    /// Makes `file` (already durable in `dir`) the current snapshot and deletes older ones,
    /// unless the current one is newer (a slow build finishing after an install): the
    /// current snapshot only moves forward. Says whether it switched.
    fn make_current(
        &self,
        meta: &SnapshotMeta,
        file: &str,
        content_bytes: u64,
    ) -> Result<bool, StorageError> {
        let _switch = self.switch.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = current(&self.dir)? {
            if existing.meta.last_log_id > meta.last_log_id {
                tracing::info!(
                    kept = %existing.meta.snapshot_id,
                    dropped = %meta.snapshot_id,
                    "a newer snapshot is already current"
                );
                let _ = std::fs::remove_file(self.dir.join(file));
                return Ok(false);
            }
        }
        let record = CurrentSnapshot {
            meta: meta.clone(),
            file: file.to_string(),
            content_bytes: Some(content_bytes),
        };
        let tmp = self.dir.join("current.json.tmp");
        let bytes = serde_json::to_vec(&record).map_err(snap_write)?;
        let f = std::fs::File::create(&tmp).map_err(snap_write)?;
        std::io::Write::write_all(&mut &f, &bytes).map_err(snap_write)?;
        f.sync_all().map_err(snap_write)?;
        std::fs::rename(&tmp, self.dir.join(CURRENT)).map_err(snap_write)?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(snap_write)?;
        for entry in std::fs::read_dir(&self.dir).map_err(snap_write)? {
            let entry = entry.map_err(snap_write)?;
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("snapshot-") && name != file {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(true)
    }
}

pub struct SnapshotBuilder {
    store: Arc<Store>,
    files: Arc<SnapshotFiles>,
    metrics: HotPath,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let started = std::time::Instant::now();
        let id = self.files.next_id.fetch_add(1, Ordering::Relaxed);
        let building = self.files.dir.join(format!("building-{id}.snap"));
        let store = self.store.clone();
        let path = building.clone();
        // Export and fsync are blocking disk work: keep them off the async workers, and at a
        // lower priority than serving (`low_priority`).
        let info = crate::low_priority::run("snapshot-build", move || {
            let file = std::fs::File::create(&path).map_err(snap_write)?;
            let info = store
                .export_snapshot(PacedWriter::at_most(
                    &file,
                    crate::paced_writer::BUILD_BYTES_PER_SEC,
                ))
                .map_err(snap_write)?;
            file.sync_all().map_err(snap_write)?;
            // The store must be durable at least up to the snapshot before Raft purges
            // the log behind it: a checkpoint now covers everything the export saw.
            store.checkpoint().map_err(sm_write)?;
            Ok::<_, StorageError>(info)
        })
        .await
        .map_err(snap_write)??;
        let applied = decode_marker(info.marker)?;
        let meta = SnapshotMeta {
            last_log_id: applied.last,
            last_membership: applied.membership,
            snapshot_id: format!("{}-{id}", applied.last.map_or(0, |l| l.index)),
        };
        let name = format!("snapshot-{id}.snap");
        let final_path = self.files.dir.join(&name);
        std::fs::rename(&building, &final_path).map_err(snap_write)?;
        // Opened first: a snapshot that is not made current is deleted, yet still returned.
        let file = tokio::fs::File::open(&final_path)
            .await
            .map_err(snap_read)?;
        if self.files.make_current(&meta, &name, info.content_bytes)? {
            tracing::info!(snapshot = %meta.snapshot_id, records = info.records, bytes = info.bytes, content_bytes = info.content_bytes, "snapshot built");
        }
        self.metrics.snapshot_build.observe_since(started);
        Ok(Snapshot {
            meta,
            snapshot: Box::new(file),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = decode_marker(self.store.marker().map_err(sm_read)?)?;
        Ok((applied.last, applied.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id) else {
            return Ok(Vec::new());
        };
        let started = std::time::Instant::now();
        let mut batches: Vec<(u64, &Batch)> = Vec::new();
        for entry in &entries {
            match &entry.payload {
                EntryPayload::Normal(batch) => batches.push((entry.log_id.index, &**batch)),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                }
                EntryPayload::Blank => {}
            }
        }
        let marker = serde_json::to_vec(&Applied {
            last: Some(last),
            membership: self.membership.clone(),
        })
        .map_err(sm_write)?;
        let store = &mut self.store;
        let mut outcomes = off_the_workers(|| store.apply(&batches, Some(&marker)))
            .map_err(|e| StorageError::from(StorageIOError::apply(last, &e)))?
            .into_iter();
        self.metrics.apply.observe_since(started);
        self.note_clock();
        if let Some(due) = &self.checkpoint_due {
            due.applied(entries.len() as u64);
        }
        // One response per entry, blank and membership entries included.
        Ok(entries
            .iter()
            .map(|entry| match entry.payload {
                EntryPayload::Normal(_) => Response {
                    outcomes: outcomes.next().unwrap_or_default(),
                },
                _ => Response::default(),
            })
            .collect())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            store: self.store.clone(),
            files: self.files.clone(),
            metrics: self.metrics.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let path = self.files.next_receiving_path()?;
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(snap_write)?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        mut snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let started = std::time::Instant::now();
        snapshot.flush().await.map_err(snap_write)?;
        let file = snapshot.into_std().await;
        let store = self.store.clone();
        let id = self.files.next_id.fetch_add(1, Ordering::Relaxed);
        let name = format!("snapshot-{id}.snap");
        let keep = self.files.dir.join(&name);
        let info = tokio::task::spawn_blocking(move || {
            use std::io::{Seek, SeekFrom};
            let mut file = file;
            file.seek(SeekFrom::Start(0)).map_err(snap_read)?;
            let info = store.install_snapshot(&file).map_err(snap_read)?;
            // Keep the received bytes as our current snapshot, for lagging peers.
            file.seek(SeekFrom::Start(0)).map_err(snap_read)?;
            let out = std::fs::File::create(&keep).map_err(snap_write)?;
            let mut paced = std::io::BufWriter::with_capacity(1 << 20, PacedWriter::new(&out));
            std::io::copy(&mut file, &mut paced).map_err(snap_write)?;
            std::io::Write::flush(&mut paced).map_err(snap_write)?;
            out.sync_all().map_err(snap_write)?;
            Ok::<_, StorageError>(info)
        })
        .await
        .map_err(snap_write)??;
        let applied = decode_marker(info.marker)?;
        if applied.last != meta.last_log_id {
            return Err(snap_read(std::io::Error::other(format!(
                "snapshot {} holds state up to {:?}, its meta says {:?}",
                meta.snapshot_id, applied.last, meta.last_log_id
            ))));
        }
        self.membership = meta.last_membership.clone();
        self.files.make_current(meta, &name, info.content_bytes)?;
        self.files.remove_received()?;
        self.note_clock();
        self.metrics.snapshot_install.observe_since(started);
        tracing::info!(snapshot = %meta.snapshot_id, records = info.records, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let Some(record) = current(&self.files.dir)? else {
            return Ok(None);
        };
        let file = tokio::fs::File::open(self.files.dir.join(&record.file))
            .await
            .map_err(snap_read)?;
        Ok(Some(Snapshot {
            meta: record.meta,
            snapshot: Box::new(file),
        }))
    }
}

/// Runs `apply` so that the runtime worker it is called on hands its queue to another thread
/// first. openraft calls apply on a runtime task; a large batch (a catch-up's MiB of entries,
/// thousands of orders) takes milliseconds, and on a two-worker runtime everything queued on
/// that worker (heartbeats, AppendEntries answers, Submits) would wait for it.
fn off_the_workers<R>(apply: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(apply),
        // A current-thread runtime (unit tests) has no other worker to hand over to.
        _ => apply(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, Membership};

    fn meta(index: u64, id: &str) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), index)),
            last_membership: StoredMembership::new(None, Membership::new(vec![], None)),
            snapshot_id: id.into(),
        }
    }

    fn files(dir: &Path) -> SnapshotFiles {
        SnapshotFiles {
            dir: dir.to_path_buf(),
            next_id: AtomicU64::new(next_free_id(dir).unwrap()),
            switch: std::sync::Mutex::new(()),
        }
    }

    #[test]
    fn the_current_snapshot_only_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        std::fs::write(dir.path().join("snapshot-1.snap"), b"installed").unwrap();
        assert!(files
            .make_current(&meta(500, "500-9"), "snapshot-1.snap", 9)
            .unwrap());
        // A build that started before the install finishes after it.
        std::fs::write(dir.path().join("snapshot-2.snap"), b"older build").unwrap();
        assert!(!files
            .make_current(&meta(300, "300-2"), "snapshot-2.snap", 11)
            .unwrap());
        let record = current(dir.path()).unwrap().unwrap();
        assert_eq!(record.file, "snapshot-1.snap");
        assert_eq!(record.meta.snapshot_id, "500-9");
        assert!(!dir.path().join("snapshot-2.snap").exists());
        assert!(dir.path().join("snapshot-1.snap").exists());
    }

    #[test]
    fn the_size_the_snapshot_rules_read_is_the_content_not_the_compressed_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        std::fs::write(dir.path().join("snapshot-1.snap"), b"ten bytes!").unwrap();
        files
            .make_current(&meta(500, "500-1"), "snapshot-1.snap", 4_000)
            .unwrap();
        assert_eq!(current_snapshot_bytes(dir.path()), Some(4_000));
        // A record written before snapshots were compressed: its file is the content.
        let mut record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(CURRENT)).unwrap()).unwrap();
        record.as_object_mut().unwrap().remove("content_bytes");
        std::fs::write(dir.path().join(CURRENT), record.to_string()).unwrap();
        assert_eq!(current_snapshot_bytes(dir.path()), Some(10));
    }

    #[test]
    fn new_file_names_never_repeat_one_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        std::fs::write(dir.path().join("snapshot-7.snap"), b"x").unwrap();
        // The current snapshot was installed from a leader whose id number is lower.
        files
            .make_current(&meta(500, "500-3"), "snapshot-7.snap", 1)
            .unwrap();
        std::fs::write(dir.path().join("receiving-9.snap"), b"y").unwrap();
        assert_eq!(next_free_id(dir.path()).unwrap(), 10);
    }

    #[test]
    fn an_aborted_transfer_leaves_no_file_behind_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        let first = files.next_receiving_path().unwrap();
        std::fs::write(&first, b"half a snapshot").unwrap();
        let second = files.next_receiving_path().unwrap();
        assert_ne!(first, second);
        assert!(!first.exists(), "the abandoned transfer's file is gone");
        std::fs::write(&second, b"the next transfer").unwrap();
        let received: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("receiving-"))
            .collect();
        assert_eq!(received.len(), 1, "{received:?}");
    }
}
