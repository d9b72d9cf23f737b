//! The Raft log and vote, on the write-ahead log of `crate::wal`.
//!
//! Every change to the log is a record in the WAL: an entry (which also drops any entry at or
//! after its index), a truncation, a purge point, the committed id. Replaying the records in
//! order rebuilds the log. The newest entries also stay in memory (`LogOptions::cache_bytes`
//! of them), so replication and apply read the disk only for a follower that lags far
//! behind, or when a restarted node re-applies what followed its last checkpoint. Every
//! entry's id and the place of its record stay in memory until it is purged.
//!
//! Durability, as openraft asks: `append` returns once the entries are readable and reports
//! them saved only after an `fdatasync` covered them; `save_vote` returns only after the vote
//! file was replaced durably, which happens after every record queued before it was synced.
//! A truncation or purge is queued like any record, so it is on disk before any later append
//! is reported saved. The committed id is written without waiting: a lost one only means a
//! restarted node re-applies less before it hears from the leader.

use crate::metrics::{Histogram, HotPath};
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::wal::{self, frame, Request};
use entries::{Log, Shared, Slot};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, RaftLogReader, StorageIOError};
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use record::{encode_record, Record, RecordRef};
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

mod entries;
mod record;

/// The vote's file in the log directory, replaced whole on every change.
const VOTE_FILE: &str = "vote";

/// The default `LogOptions::cache_bytes`: a few seconds of the heaviest load, far more than
/// replication and apply trail the newest entry by.
pub const DEFAULT_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// What the log directory is opened with.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub segment_bytes: u64,
    /// Test only (the chaos suite's `kill-lose-unsynced`): on open, throw away every byte
    /// written after the last completed `fdatasync`, as a power cut would have.
    pub lose_unsynced_on_open: bool,
    /// Observes each `fdatasync` of a log segment (the node's metrics).
    pub fsync_seconds: Histogram,
    /// Framed bytes of entries kept in memory. Older entries, once written to a segment,
    /// are read back from it when a lagging follower or a restart's apply needs them.
    pub cache_bytes: u64,
    /// Shows the bytes cached (the node's metrics).
    pub cached_bytes: Gauge,
    /// Counts the entries read back from segments (the node's metrics).
    pub read_back: Counter,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 * 1024 * 1024,
            lose_unsynced_on_open: false,
            fsync_seconds: HotPath::default().wal_fsync,
            cache_bytes: DEFAULT_CACHE_BYTES,
            cached_bytes: Gauge::default(),
            read_back: Counter::default(),
        }
    }
}

pub struct LogStore {
    dir: PathBuf,
    log: Shared,
    vote: Option<Vote>,
    io: wal::Writer,
}

fn log_error(verb: ErrorVerb, e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::new(ErrorSubject::Logs, verb, openraft::AnyError::new(&e)).into()
}

fn io_gone() -> io::Error {
    io::Error::other("the write-ahead log's IO thread has stopped")
}

impl LogStore {
    /// Opens the log in `dir` (created if missing): checks every record, cuts a torn tail,
    /// refuses a log damaged anywhere else, and starts the IO thread.
    pub fn open(dir: &Path, options: LogOptions) -> Result<Self, wal::RecoverError> {
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            // The new directory's own entry must survive a crash too, or the first vote
            // and entries could vanish with it.
            if let Some(parent) = dir.parent() {
                wal::segments::sync_dir(parent)?;
            }
        }
        if options.lose_unsynced_on_open {
            wal::lose_unsynced(dir)?;
        }
        let mut log = Log::new(
            dir,
            options.cache_bytes,
            options.cached_bytes.clone(),
            options.read_back.clone(),
        );
        let segments = wal::recover(dir, |place, payload| {
            let record: Record = postcard::from_bytes(payload).map_err(|e| e.to_string())?;
            Ok(log.replay(place, record))
        })?;
        log.check().map_err(|why| wal::RecoverError::Corrupt {
            file: dir.to_path_buf(),
            offset: 0,
            why,
        })?;
        let vote = read_vote_file(dir)?.map(forget_leadership);
        if let (Some(vote), Some(last)) = (vote, log.last_log_id()) {
            // A vote is saved before a leader's entries are accepted; a log that ran ahead of
            // the vote means one of them is not what was written.
            if vote.leader_id.term < last.leader_id.term {
                return Err(wal::RecoverError::Corrupt {
                    file: dir.join(VOTE_FILE),
                    offset: 0,
                    why: format!(
                        "the vote's term {} is behind the log's last entry {last}",
                        vote.leader_id.term
                    ),
                });
            }
        }
        let io = wal::start(
            dir,
            segments,
            wal::Options {
                segment_bytes: options.segment_bytes,
                note_synced: options.lose_unsynced_on_open,
                fsync_seconds: options.fsync_seconds,
            },
        )?;
        Ok(Self {
            dir: dir.to_path_buf(),
            log: Shared(Arc::new(RwLock::new(log))),
            vote,
            io,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `append` with any completion: `done` runs once an `fdatasync` covered the entries.
    /// openraft's callback is one such completion; tests and benchmarks pass their own.
    pub fn append_with(
        &mut self,
        entries: impl IntoIterator<Item = Entry>,
        done: wal::Done,
    ) -> Result<(), StorageError> {
        let mut bytes = Vec::new();
        let mut max_index = 0;
        let mut records = Vec::new();
        {
            let mut log = self.log.write();
            for entry in entries {
                if let Some(last) = log.last_entry() {
                    if entry.log_id.index != last.index + 1 {
                        return Err(log_error(
                            ErrorVerb::Write,
                            io::Error::other(format!(
                                "append of {} does not follow the last entry {}",
                                entry.log_id, last
                            )),
                        ));
                    }
                }
                let start = bytes.len();
                encode_record(&mut bytes, &RecordRef::Entry(&entry));
                let len = (bytes.len() - start) as u32;
                records.push((entry.log_id, start as u64, len));
                max_index = entry.log_id.index;
                log.push(Slot::new(entry.log_id, len, Some(entry), None));
            }
        }
        let log = self.log.clone();
        // Readable now; reported saved by the IO thread after its fdatasync.
        self.io
            .send(Request::Append {
                bytes,
                max_index,
                done: Some(done),
                placed: Some(Box::new(move |seq, base| {
                    log.write().place(seq, base, &records)
                })),
            })
            .map_err(|_| log_error(ErrorVerb::Write, io_gone()))
    }

    /// A handle that measures the log after it has gone to openraft.
    pub fn sizes(&self) -> LogSizes {
        LogSizes(self.log.clone())
    }

    /// Entries held in memory and their framed bytes (the rest are read back from disk).
    pub fn cached(&self) -> (usize, u64) {
        self.log.read().cached()
    }

    fn queue(&self, bytes: Vec<u8>, max_index: u64) -> Result<(), StorageError> {
        self.io
            .send(Request::Append {
                bytes,
                max_index,
                done: None,
                placed: None,
            })
            .map_err(|_| log_error(ErrorVerb::Write, io_gone()))
    }
}

/// Measures the log for the snapshot trigger.
#[derive(Clone)]
pub struct LogSizes(Shared);

impl LogSizes {
    /// Bytes of the records of the entries after `index` (on disk, whether cached or not).
    pub fn bytes_after(&self, index: u64) -> u64 {
        self.0.read().bytes_after(index)
    }
}

/// A vote read back after a restart keeps its term and candidate but never says that a
/// quorum granted it. openraft 0.9 restores a node whose saved vote is committed for itself
/// as leader at once, in the same term, without an election. That restored leader is unsafe
/// twice over:
/// - it takes its term's first entry as its read point, while its committed index restarts
///   at the state machine's last checkpoint, so a linearisable read could answer from
///   before writes that were already acknowledged (the chaos suite saw this after a power
///   cut);
/// - its own unsynced tail may be gone although followers had flushed it and the entries were
///   committed, and it would propose different entries under the same log ids.
///
/// As an uncommitted vote it still forbids voting for anyone else in that term; the node
/// starts as a follower, and leadership needs a new election in a higher term, whose leader
/// commits an entry of its own before it serves a read.
fn forget_leadership(mut vote: Vote) -> Vote {
    vote.committed = false;
    vote
}

fn read_vote_file(dir: &Path) -> Result<Option<Vote>, wal::RecoverError> {
    let path = dir.join(VOTE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let corrupt = |why: String| wal::RecoverError::Corrupt {
        file: path.clone(),
        offset: 0,
        why,
    };
    match frame::read_at(&bytes, 0) {
        frame::Read::Record { payload, next } if next == bytes.len() => {
            postcard::from_bytes(payload)
                .map(Some)
                .map_err(|e| corrupt(e.to_string()))
        }
        _ => Err(corrupt("the vote file fails its checksum".into())),
    }
}

/// Most bytes of records in one replication read: an AppendEntries that a loaded follower
/// takes in, syncs and answers well within openraft's timeout for it (the heartbeat
/// interval, 100 ms by default). One entry is always sent, however large; openraft asks for
/// the rest in the next AppendEntries.
pub const REPLICATION_READ_BYTES: u64 = 1024 * 1024;

async fn read_entries(
    log: &Shared,
    range: impl RangeBounds<u64>,
    max_bytes: u64,
) -> Result<Vec<Entry>, StorageError> {
    let found = log.find(range, max_bytes);
    let entries = if found.in_memory() {
        found.read()
    } else {
        // Disk reads and decoding off the runtime's workers, which also carry heartbeats:
        // a follower far behind must not delay them for the others.
        tokio::task::spawn_blocking(move || found.read())
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)))
    };
    entries.map_err(|e| log_error(ErrorVerb::Read, e))
}

/// Reads entries for openraft's replication tasks and apply: from memory, or for entries
/// older than the cache, from their segments (`read_entries`). `LogStore` reads the same way:
/// openraft makes the reader trait a supertrait of the store's, so both impls exist.
#[derive(Clone)]
pub struct LogReader {
    log: Shared,
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        read_entries(&self.log, range, u64::MAX).await
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        read_entries(&self.log, start..end, REPLICATION_READ_BYTES).await
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        read_entries(&self.log, range, u64::MAX).await
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        read_entries(&self.log, start..end, REPLICATION_READ_BYTES).await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let log = self.log.read();
        Ok(LogState {
            last_purged_log_id: log.purged,
            last_log_id: log.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader {
            log: self.log.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut bytes = Vec::new();
        frame::encode_into(&mut bytes, &crate::codec::encode(vote));
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.io
            .send(Request::Replace {
                name: VOTE_FILE,
                bytes,
                done: Box::new(move |result| {
                    let _ = tx.send(result);
                }),
            })
            .map_err(|_| StorageIOError::write_vote(&io_gone()))?;
        match rx.await {
            Ok(Ok(())) => {
                self.vote = Some(*vote);
                Ok(())
            }
            Ok(Err(e)) => Err(StorageIOError::write_vote(&e).into()),
            Err(_) => Err(StorageIOError::write_vote(&io_gone()).into()),
        }
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let mut bytes = Vec::new();
        encode_record(&mut bytes, &RecordRef::Committed(committed.as_ref()));
        self.log.write().committed = committed;
        self.queue(bytes, committed.map_or(0, |c| c.index))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.log.read().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        self.append_with(
            entries,
            Box::new(move |result| callback.log_io_completed(result)),
        )
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut bytes = Vec::new();
        encode_record(&mut bytes, &RecordRef::Truncate { from: log_id.index });
        self.log.write().truncate(log_id.index);
        self.queue(bytes, log_id.index)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut bytes = Vec::new();
        encode_record(&mut bytes, &RecordRef::Purge(&log_id));
        self.log.write().purge(log_id);
        self.queue(bytes, log_id.index)?;
        self.io
            .send(Request::Purge {
                up_to: log_id.index,
            })
            .map_err(|_| log_error(ErrorVerb::Delete, io_gone()))
    }
}
