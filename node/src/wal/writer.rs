//! The log's one IO thread: group commit at the disk.
//!
//! Callers queue framed records and go on. The thread takes everything that queued while its
//! previous `fdatasync` ran, writes it, calls `fdatasync` once, and only then reports each
//! waiting request done. Requests are handled strictly in queue order, so a truncation or a
//! purge queued before an append is on disk before that append is reported saved.
//!
//! Any write or sync error is final (fsyncgate: Linux may drop the failed pages and a retried
//! `fsync` would "succeed"): every waiting and later request fails, and the node must stop.

use super::segments::{self, SegmentInfo};
use super::spare::{self, Spare};
use crate::metrics::Histogram;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

/// `fdatasync`s of log segments this process has completed (benchmarks and metrics read it).
pub static FDATASYNCS: AtomicU64 = AtomicU64::new(0);

fn sync_segment(file: &File, fsync_seconds: &Histogram) -> io::Result<()> {
    let started = std::time::Instant::now();
    file.sync_data()?;
    fsync_seconds.observe_since(started);
    FDATASYNCS.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Told once the request it came with is on disk, or never will be.
pub type Done = Box<dyn FnOnce(io::Result<()>) + Send>;

/// Told where an append's bytes were written (segment sequence number, byte offset), once
/// they are readable from that file; never told if the write failed.
pub type Placed = Box<dyn FnOnce(u64, u64) + Send>;

pub enum Request {
    /// Framed records; `max_index` is the highest log index they mention. `done`, if any,
    /// runs after an `fdatasync` covered them. Without `done` they are written now and synced
    /// with the next request that waits.
    Append {
        bytes: Vec<u8>,
        max_index: u64,
        done: Option<Done>,
        placed: Option<Placed>,
    },
    /// Delete whole segments (never the one being written) whose records all lie at or below
    /// `up_to`, once the records queued before this request are synced.
    Purge { up_to: u64 },
    /// Replace the small file `name` in the log's directory atomically and durably (write a
    /// temporary file, `fdatasync`, rename, `fsync` the directory), after syncing the log.
    Replace {
        name: &'static str,
        bytes: Vec<u8>,
        done: Done,
    },
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Each segment is this many bytes of zeros before records overwrite them; an append
    /// that would run past the end goes to a new segment (unless the segment is empty: a
    /// record larger than a segment makes it grow).
    pub segment_bytes: u64,
    /// Test only: after each `fdatasync`, note how far the log was synced, so that a harness
    /// can later throw away everything after it (see `lose_unsynced`).
    pub note_synced: bool,
    /// Observes the duration of each segment `fdatasync`.
    pub fsync_seconds: Histogram,
}

/// Where the test-only note of the synced length lives.
pub const SYNCED_NOTE: &str = "synced.note";

struct Segment {
    seq: u64,
    max_index: u64,
}

struct State {
    dir: PathBuf,
    options: Options,
    /// Closed segments, oldest first.
    closed: Vec<Segment>,
    active: Segment,
    /// Open for positioned writes: records overwrite the zeros at `len`.
    file: File,
    /// Bytes of records in the active segment; zeros follow.
    len: u64,
    /// The next segment, being filled with zeros.
    spare: Option<Spare>,
    /// Bytes written to `file` since its last `fdatasync`.
    unsynced: bool,
    purge_up_to: Option<u64>,
    failed: Option<(io::ErrorKind, String)>,
}

/// The IO thread's queue. Dropping it waits until the thread has done everything queued
/// and its spare segment is filled, so that nothing writes to the directory after the log
/// is closed.
pub struct Writer {
    requests: mpsc::Sender<Request>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    pub fn send(&self, request: Request) -> Result<(), mpsc::SendError<Request>> {
        self.requests.send(request)
    }

    /// Another handle on the queue, for callers on other threads.
    pub fn sender(&self) -> mpsc::Sender<Request> {
        self.requests.clone()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.requests, closed));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the IO thread over the segments recovery found (or a first, empty segment).
pub fn start(dir: &Path, recovered: Vec<SegmentInfo>, options: Options) -> io::Result<Writer> {
    let mut closed: Vec<Segment> = recovered
        .iter()
        .map(|s| Segment {
            seq: s.seq,
            max_index: s.max_index,
        })
        .collect();
    let (active, len, file) = match recovered.last() {
        Some(last) => {
            closed.pop();
            let file = OpenOptions::new()
                .write(true)
                .open(dir.join(segments::file_name(last.seq)))?;
            // Cut short by recovery or written before segments were filled with zeros:
            // fill it now, so that its syncs carry data alone too.
            let size = file.metadata()?.len();
            if size < options.segment_bytes {
                spare::fill_with_zeros(&file, size, options.segment_bytes)?;
            }
            (
                Segment {
                    seq: last.seq,
                    max_index: last.max_index,
                },
                last.len,
                file,
            )
        }
        None => {
            let file = Spare::start(dir, options.segment_bytes)?
                .install(&dir.join(segments::file_name(1)))?;
            (
                Segment {
                    seq: 1,
                    max_index: 0,
                },
                0,
                file,
            )
        }
    };
    let spare = Some(Spare::start(dir, options.segment_bytes)?);
    let mut state = State {
        dir: dir.to_path_buf(),
        options,
        closed,
        active,
        file,
        len,
        spare,
        unsynced: false,
        purge_up_to: None,
        failed: None,
    };
    let (requests, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("wal-io".into())
        .spawn(move || state.run(rx))?;
    Ok(Writer {
        requests,
        thread: Some(thread),
    })
}

impl State {
    fn run(&mut self, rx: mpsc::Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            batch.extend(rx.try_iter());
            let mut waiting: Vec<Done> = Vec::new();
            let result = self.handle(batch, &mut waiting);
            if let Err(e) = &result {
                tracing::error!(error = %e, dir = %self.dir.display(), "write-ahead log IO failed; the log accepts no more writes");
                self.failed = Some((e.kind(), e.to_string()));
            }
            for done in waiting {
                done(match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                });
            }
        }
        if let Some(spare) = self.spare.take() {
            spare.finish();
        }
    }

    fn handle(&mut self, batch: Vec<Request>, waiting: &mut Vec<Done>) -> io::Result<()> {
        let mut replaces = Vec::new();
        let mut must_sync = false;
        let mut failure = None;
        for request in batch {
            match request {
                Request::Append {
                    bytes,
                    max_index,
                    done,
                    placed,
                } => {
                    if let Some(done) = done {
                        waiting.push(done);
                        must_sync = true;
                    }
                    if failure.is_none() && self.failed.is_none() {
                        match self.write(&bytes, max_index) {
                            Ok(offset) => {
                                if let Some(placed) = placed {
                                    placed(self.active.seq, offset);
                                }
                            }
                            Err(e) => failure = Some(e),
                        }
                    }
                }
                Request::Purge { up_to } => {
                    self.purge_up_to = Some(self.purge_up_to.map_or(up_to, |p| p.max(up_to)));
                    must_sync = true;
                }
                Request::Replace { name, bytes, done } => {
                    waiting.push(done);
                    replaces.push((name, bytes));
                    must_sync = true;
                }
            }
        }
        if let Some((kind, message)) = &self.failed {
            return Err(io::Error::new(
                *kind,
                format!("an earlier log write failed: {message}"),
            ));
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if must_sync && self.unsynced {
            sync_segment(&self.file, &self.options.fsync_seconds)?;
            self.unsynced = false;
            if self.options.note_synced {
                self.note_synced()?;
            }
        }
        for (name, bytes) in replaces {
            replace_file(&self.dir, name, &bytes)?;
        }
        if !self.unsynced {
            self.delete_purged()?;
        }
        Ok(())
    }

    /// Writes `bytes` at the end of the active segment (after a roll if they do not fit) and
    /// returns the offset they start at.
    fn write(&mut self, bytes: &[u8], max_index: u64) -> io::Result<u64> {
        if self.len > 0 && self.len + bytes.len() as u64 > self.options.segment_bytes {
            self.roll()?;
        }
        let offset = self.len;
        self.file.write_all_at(bytes, offset)?;
        self.len += bytes.len() as u64;
        self.unsynced = true;
        self.active.max_index = self.active.max_index.max(max_index);
        Ok(offset)
    }

    fn roll(&mut self) -> io::Result<()> {
        if self.unsynced {
            sync_segment(&self.file, &self.options.fsync_seconds)?;
            self.unsynced = false;
        }
        let seq = self.active.seq + 1;
        let spare = match self.spare.take() {
            Some(spare) => spare,
            None => Spare::start(&self.dir, self.options.segment_bytes)?,
        };
        // `install` makes the new name durable before anything in the file is reported saved.
        self.file = spare.install(&self.dir.join(segments::file_name(seq)))?;
        self.spare = Some(Spare::start(&self.dir, self.options.segment_bytes)?);
        let done = std::mem::replace(&mut self.active, Segment { seq, max_index: 0 });
        self.closed.push(done);
        self.len = 0;
        Ok(())
    }

    fn delete_purged(&mut self) -> io::Result<()> {
        let Some(up_to) = self.purge_up_to else {
            return Ok(());
        };
        // Oldest first, and stop at the first one still needed: the log never has holes.
        let keep_from = self
            .closed
            .iter()
            .position(|s| s.max_index > up_to)
            .unwrap_or(self.closed.len());
        for segment in self.closed.drain(..keep_from) {
            std::fs::remove_file(self.dir.join(segments::file_name(segment.seq)))?;
        }
        Ok(())
    }

    fn note_synced(&self) -> io::Result<()> {
        // Replaced by rename, so a kill mid-write never leaves a torn note. No fsync: the
        // note only has to survive a SIGKILL, which keeps the page cache.
        let tmp = self.dir.join(format!("{SYNCED_NOTE}.tmp"));
        std::fs::write(&tmp, format!("{} {}", self.active.seq, self.len))?;
        std::fs::rename(tmp, self.dir.join(SYNCED_NOTE))
    }
}

fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    std::fs::rename(&tmp, dir.join(name))?;
    segments::sync_dir(dir)
}

/// Test only: throws away every log byte written after the last completed `fdatasync`, as a
/// power cut would, using the note that `Options::note_synced` keeps.
pub fn lose_unsynced(dir: &Path) -> io::Result<()> {
    let note = match std::fs::read_to_string(dir.join(SYNCED_NOTE)) {
        Ok(note) => note,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut parts = note.split_whitespace().map(str::parse::<u64>);
    let (Some(Ok(seq)), Some(Ok(len))) = (parts.next(), parts.next()) else {
        return Err(io::Error::other(format!(
            "unreadable {SYNCED_NOTE}: {note:?}"
        )));
    };
    for (other, path) in segments::list(dir)? {
        if other > seq {
            std::fs::remove_file(path)?;
        } else if other == seq {
            let file = OpenOptions::new().write(true).open(path)?;
            let synced_len = file.metadata()?.len().min(len);
            file.set_len(synced_len)?;
        }
    }
    Ok(())
}
