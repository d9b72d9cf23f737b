//! The log's entries in memory: every entry's id and where its record lies, and the newest
//! entries themselves, up to a byte budget; older ones are read back from their segments.

use super::record::{decode_entry, Record};
use crate::types::{Entry, LogId};
use crate::wal;
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Where an entry's record can be read back from. The segment stays open, so a purge that
/// deletes the file cannot pull it from under a reader that already found it.
#[derive(Clone)]
pub(super) struct OnDisk {
    file: Arc<File>,
    seq: u64,
    offset: u64,
    len: u32,
}

/// One entry of the log: always its id, the entry itself while it is cached, and where its
/// record lies once the IO thread has written it.
pub(super) struct Slot {
    pub(super) log_id: LogId,
    /// Framed record bytes: what the slot costs the cache while it holds the entry.
    pub(super) bytes: u32,
    pub(super) entry: Option<Entry>,
    pub(super) on_disk: Option<OnDisk>,
    /// Framed bytes of this entry and every earlier one still held, plus an arbitrary
    /// origin: set by `Log::push`, so the bytes after any index are one subtraction.
    bytes_through: u64,
}

impl Slot {
    pub(super) fn new(
        log_id: LogId,
        bytes: u32,
        entry: Option<Entry>,
        on_disk: Option<OnDisk>,
    ) -> Self {
        Self {
            log_id,
            bytes,
            entry,
            on_disk,
            bytes_through: 0,
        }
    }
}

/// What a range read found under the lock: entries to clone, or records to read back after
/// the lock is released.
enum Piece {
    Cached(Entry),
    OnDisk(LogId, OnDisk),
}

/// The log as replay and appends leave it.
pub(super) struct Log {
    dir: PathBuf,
    pub(super) purged: Option<LogId>,
    pub(super) committed: Option<LogId>,
    /// Contiguous entries after `purged`.
    slots: VecDeque<Slot>,
    /// Slots before this one have given up their entry (it is read back from its segment);
    /// this one and every later one hold theirs.
    cached_from: usize,
    /// Framed bytes of the entries held, kept at most `cache_limit` by dropping the oldest
    /// entries already written to a segment.
    cached_bytes: u64,
    cache_limit: u64,
    /// Shows `cached_bytes`.
    cached_gauge: Gauge,
    /// Counts the entries read back from segments.
    read_back: Counter,
    /// Read handles of the segments that slots point into, by sequence number.
    files: BTreeMap<u64, Arc<File>>,
}

impl Log {
    pub(super) fn new(
        dir: &Path,
        cache_limit: u64,
        cached_gauge: Gauge,
        read_back: Counter,
    ) -> Self {
        Self {
            dir: dir.to_path_buf(),
            purged: None,
            committed: None,
            slots: VecDeque::new(),
            cached_from: 0,
            cached_bytes: 0,
            cache_limit,
            cached_gauge,
            read_back,
            files: BTreeMap::new(),
        }
    }

    pub(super) fn first_index(&self) -> Option<u64> {
        self.slots.front().map(|s| s.log_id.index)
    }

    pub(super) fn last_log_id(&self) -> Option<LogId> {
        self.slots.back().map(|s| s.log_id).or(self.purged)
    }

    pub(super) fn truncate(&mut self, from: u64) {
        while self.slots.back().is_some_and(|s| s.log_id.index >= from) {
            let slot = self.slots.pop_back().expect("checked");
            if slot.entry.is_some() {
                self.cached_bytes -= u64::from(slot.bytes);
            }
        }
        self.cached_from = self.cached_from.min(self.slots.len());
        self.evict();
    }

    pub(super) fn purge(&mut self, upto: LogId) {
        while self
            .slots
            .front()
            .is_some_and(|s| s.log_id.index <= upto.index)
        {
            let slot = self.slots.pop_front().expect("checked");
            if slot.entry.is_some() {
                self.cached_bytes -= u64::from(slot.bytes);
            } else {
                self.cached_from -= 1;
            }
        }
        if self.purged.is_none_or(|p| p.index < upto.index) {
            self.purged = Some(upto);
        }
        // Slots are written in order, so the first one on disk is in the oldest file needed.
        match self.slots.iter().find_map(|s| s.on_disk.as_ref()) {
            Some(oldest) => {
                let oldest = oldest.seq;
                self.files.retain(|seq, _| *seq >= oldest);
            }
            None => self.files.clear(),
        }
        self.evict();
    }

    /// Adds an entry, dropping any at or after its index. Replay may meet an entry after a
    /// gap: what lay before the gap was purged in segments already deleted, and a purge
    /// record later in the log says so (`check` makes sure).
    pub(super) fn push(&mut self, mut slot: Slot) {
        self.truncate(slot.log_id.index);
        if let Some(last) = self.slots.back() {
            if last.log_id.index + 1 != slot.log_id.index {
                self.slots.clear();
                self.cached_from = 0;
                self.cached_bytes = 0;
            }
        }
        slot.bytes_through =
            self.slots.back().map_or(0, |s| s.bytes_through) + u64::from(slot.bytes);
        if slot.entry.is_some() {
            self.cached_bytes += u64::from(slot.bytes);
        }
        self.slots.push_back(slot);
    }

    /// The last entry's id, if any entry follows the purge point.
    pub(super) fn last_entry(&self) -> Option<LogId> {
        self.slots.back().map(|s| s.log_id)
    }

    /// Framed bytes of the entries after `index`.
    /// Constant time: the snapshot trigger asks ten times a second, under the lock appends
    /// need, about a log that may hold hundreds of thousands of entries.
    pub(super) fn bytes_after(&self, index: u64) -> u64 {
        let (Some(first), Some(last)) = (self.slots.front(), self.slots.back()) else {
            return 0;
        };
        let through = match index.checked_sub(first.log_id.index) {
            // Slots are contiguous by index.
            Some(at) => match self.slots.get(at as usize) {
                Some(slot) => slot.bytes_through,
                None => return 0,
            },
            None => first.bytes_through - u64::from(first.bytes),
        };
        last.bytes_through - through
    }

    /// Entries held in memory and their framed bytes.
    pub(super) fn cached(&self) -> (usize, u64) {
        (self.slots.len() - self.cached_from, self.cached_bytes)
    }

    /// Drops the oldest cached entries that are already in a segment until the cache fits.
    fn evict(&mut self) {
        while self.cached_bytes > self.cache_limit {
            let Some(slot) = self.slots.get_mut(self.cached_from) else {
                break;
            };
            if slot.on_disk.is_none() {
                break;
            }
            slot.entry = None;
            self.cached_bytes -= u64::from(slot.bytes);
            self.cached_from += 1;
        }
        self.cached_gauge
            .set(i64::try_from(self.cached_bytes).unwrap_or(i64::MAX));
    }

    fn file(&mut self, seq: u64) -> io::Result<Arc<File>> {
        if let Some(file) = self.files.get(&seq) {
            return Ok(file.clone());
        }
        let file = Arc::new(File::open(self.dir.join(wal::segments::file_name(seq)))?);
        self.files.insert(seq, file.clone());
        Ok(file)
    }

    /// The IO thread wrote an append's records at `base` in segment `seq`: each `(log id,
    /// offset in the append, length)` can now be read back, and its entry given up.
    pub(super) fn place(&mut self, seq: u64, base: u64, records: &[(LogId, u64, u32)]) {
        let file = match self.file(seq) {
            Ok(file) => file,
            Err(e) => {
                // The entries stay cached; the log is only larger than it should be.
                tracing::warn!(error = %e, seq, "cannot open a log segment for reading");
                return;
            }
        };
        let Some(first) = self.first_index() else {
            return;
        };
        for (log_id, offset, len) in records {
            let Some(slot) = log_id
                .index
                .checked_sub(first)
                .and_then(|at| self.slots.get_mut(at as usize))
            else {
                continue;
            };
            // Truncated and appended again since: the newer record will be placed itself.
            if slot.log_id == *log_id && slot.on_disk.is_none() {
                slot.on_disk = Some(OnDisk {
                    file: file.clone(),
                    seq,
                    offset: base + offset,
                    len: *len,
                });
            }
        }
        self.evict();
    }

    pub(super) fn replay(&mut self, place: wal::Place, record: Record) -> u64 {
        match record {
            Record::Entry(entry) => {
                let index = entry.log_id.index;
                let on_disk = match self.file(place.seq) {
                    Ok(file) => Some(OnDisk {
                        file,
                        seq: place.seq,
                        offset: place.offset,
                        len: place.len,
                    }),
                    Err(e) => {
                        // Kept in memory instead: recovery just read this file, so this is
                        // a transient error, and a larger log is no harm.
                        tracing::warn!(error = %e, seq = place.seq, "cannot open a log segment for reading");
                        None
                    }
                };
                self.push(Slot::new(entry.log_id, place.len, Some(entry), on_disk));
                self.evict();
                index
            }
            Record::Truncate { from } => {
                self.truncate(from);
                from
            }
            Record::Purge(upto) => {
                self.purge(upto);
                upto.index
            }
            Record::Committed(committed) => {
                self.committed = committed;
                committed.map_or(0, |c| c.index)
            }
        }
    }

    /// After replay: the entries follow the purge point without a hole.
    pub(super) fn check(&self) -> Result<(), String> {
        if let (Some(purged), Some(first)) = (self.purged, self.first_index()) {
            if first != purged.index + 1 {
                return Err(format!(
                    "the log resumes at index {first} after a purge up to {}",
                    purged.index
                ));
            }
        }
        Ok(())
    }

    /// The slots of `range`, but past the first only as many as fit in `max_bytes` of records.
    fn range(&self, range: impl RangeBounds<u64>, max_bytes: u64) -> Vec<Piece> {
        let Some(first) = self.first_index() else {
            return Vec::new();
        };
        let end = first + self.slots.len() as u64;
        let from = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => first,
        }
        .max(first);
        let to = match range.end_bound() {
            Bound::Included(i) => i.saturating_add(1),
            Bound::Excluded(i) => *i,
            Bound::Unbounded => end,
        }
        .min(end);
        if from >= to {
            return Vec::new();
        }
        let mut bytes = 0u64;
        self.slots
            .range((from - first) as usize..(to - first) as usize)
            .take_while(|slot| {
                let first = bytes == 0;
                bytes = bytes.saturating_add(u64::from(slot.bytes).max(1));
                first || bytes <= max_bytes
            })
            .map(|slot| match (&slot.entry, &slot.on_disk) {
                (Some(entry), _) => Piece::Cached(entry.clone()),
                (None, Some(on_disk)) => Piece::OnDisk(slot.log_id, on_disk.clone()),
                (None, None) => unreachable!("only entries written to a segment are evicted"),
            })
            .collect()
    }
}

/// Turns a range read's pieces into entries, reading evicted ones back from their segments:
/// each run of them in one segment with one read.
fn read_back(pieces: Vec<Piece>, read_back: &Counter) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::with_capacity(pieces.len());
    let mut pieces = pieces.into_iter().peekable();
    while let Some(piece) = pieces.next() {
        let (log_id, first) = match piece {
            Piece::Cached(entry) => {
                entries.push(entry);
                continue;
            }
            Piece::OnDisk(log_id, on_disk) => (log_id, on_disk),
        };
        let mut run = vec![(log_id, first.offset)];
        let mut end = first.offset + u64::from(first.len);
        while let Some(Piece::OnDisk(log_id, next)) = pieces.peek() {
            if !Arc::ptr_eq(&next.file, &first.file) || next.offset < end {
                break;
            }
            run.push((*log_id, next.offset));
            end = next.offset + u64::from(next.len);
            pieces.next();
        }
        let mut buf = vec![0u8; (end - first.offset) as usize];
        first.file.read_exact_at(&mut buf, first.offset)?;
        read_back.inc_by(run.len() as u64);
        for (log_id, offset) in run {
            let entry =
                decode_entry(&buf, (offset - first.offset) as usize, log_id).map_err(|why| {
                    io::Error::other(format!(
                        "log segment {} at byte {offset}: {why}",
                        wal::segments::file_name(first.seq)
                    ))
                })?;
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// What a range read found under the lock.
pub(super) struct Found {
    pieces: Vec<Piece>,
    read_back: Counter,
}

impl Found {
    /// Whether every entry is in memory, so that `read` does no IO.
    pub(super) fn in_memory(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Cached(_)))
    }

    /// The entries, reading the evicted ones back from their segments.
    pub(super) fn read(self) -> io::Result<Vec<Entry>> {
        read_back(self.pieces, &self.read_back)
    }
}

/// The log, shared by the store, its readers and the IO thread's placement callbacks.
#[derive(Clone)]
pub(super) struct Shared(pub(super) Arc<RwLock<Log>>);

impl Shared {
    pub(super) fn read(&self) -> RwLockReadGuard<'_, Log> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The entries in `range` (from the purge point on), but past the first only as many as
    /// fit in `max_bytes` of records: the cached ones cloned under the lock, the older ones
    /// to be read back from their segments after it is released (`Found::read`).
    pub(super) fn find(&self, range: impl RangeBounds<u64>, max_bytes: u64) -> Found {
        let log = self.read();
        Found {
            pieces: log.range(range, max_bytes),
            read_back: log.read_back.clone(),
        }
    }

    pub(super) fn write(&self) -> RwLockWriteGuard<'_, Log> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn slot(index: u64) -> Slot {
        let log_id = LogId::new(CommittedLeaderId::new(1, 1), index);
        let entry = Entry {
            log_id,
            payload: EntryPayload::Blank,
        };
        // Sizes that differ from entry to entry, so a sum over the wrong range shows.
        Slot::new(log_id, 10 + (index as u32 % 7) * 13, Some(entry), None)
    }

    fn summed_after(log: &Log, index: u64) -> u64 {
        log.slots
            .iter()
            .filter(|s| s.log_id.index > index)
            .map(|s| u64::from(s.bytes))
            .sum()
    }

    /// The running totals answer as a sum over the slots would, through appends, a
    /// truncation, purges and a gap in replay.
    #[test]
    fn bytes_after_any_index_equal_the_sum_of_the_later_entries() {
        let mut log = Log::new(
            Path::new("."),
            u64::MAX,
            Gauge::default(),
            Counter::default(),
        );
        let check = |log: &Log| {
            for index in 0..60 {
                assert_eq!(
                    log.bytes_after(index),
                    summed_after(log, index),
                    "after {index}"
                );
            }
        };
        check(&log);
        for index in 1..=40 {
            log.push(slot(index));
        }
        check(&log);
        log.truncate(31);
        log.push(slot(31));
        check(&log);
        log.purge(LogId::new(CommittedLeaderId::new(1, 1), 12));
        check(&log);
        log.purge(LogId::new(CommittedLeaderId::new(1, 1), 31));
        check(&log);
        for index in 45..=50 {
            log.push(slot(index));
        }
        check(&log);
    }
}
