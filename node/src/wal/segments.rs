//! Segment files on disk: their names, and reading a directory of them back after a crash.
//!
//! A segment is named by its sequence number (`0000000000000001.wal`); sequence numbers only
//! grow, so the names never repeat and their order is the order of the writes.

use super::frame::{self, Read};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

const SUFFIX: &str = ".wal";

pub fn file_name(seq: u64) -> String {
    format!("{seq:016x}{SUFFIX}")
}

fn parse_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(SUFFIX)?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The segments in `dir`, oldest first.
pub fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        if let Some(seq) = item.file_name().to_str().and_then(parse_name) {
            found.push((seq, item.path()));
        }
    }
    found.sort_by_key(|(seq, _)| *seq);
    Ok(found)
}

/// A segment as recovery left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub seq: u64,
    /// Bytes of whole, checked records (a torn tail has been cut off); zeros may follow.
    pub len: u64,
    /// The highest log index any record in it mentions, as the caller's visitor reported:
    /// the segment may be deleted once the log is purged up to it.
    pub max_index: u64,
}

/// Where one framed record sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub seq: u64,
    pub offset: u64,
    /// Header and payload.
    pub len: u32,
}

/// Why a log cannot be opened. Always names the file and the offset.
#[derive(Debug)]
pub enum RecoverError {
    Io(io::Error),
    Corrupt {
        file: PathBuf,
        offset: usize,
        why: String,
    },
}

impl fmt::Display for RecoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoverError::Io(e) => write!(f, "cannot read the write-ahead log: {e}"),
            RecoverError::Corrupt { file, offset, why } => write!(
                f,
                "the write-ahead log is corrupt in {} at byte {offset}: {why}; \
                 the node refuses to start (move the data dir aside and let the node \
                 catch up from its peers)",
                file.display()
            ),
        }
    }
}

impl std::error::Error for RecoverError {}

impl From<io::Error> for RecoverError {
    fn from(e: io::Error) -> Self {
        RecoverError::Io(e)
    }
}

/// Reads every segment of `dir` in order and hands each record to `visit` (where it sits:
/// segment sequence number, byte offset and framed length; then its payload), which returns
/// the log index the record mentions (0 if none) or why it cannot be understood.
///
/// Records end where the segment's zeros begin (or at its end). A bad record in the last
/// segment with nothing valid after it is a torn tail, the trace of
/// a write that never completed an `fdatasync`: the file is cut there (and the cut made
/// durable) so that stale bytes cannot resurface behind later appends. A bad record anywhere
/// else sits inside data that was synced, and is corruption.
pub fn recover(
    dir: &Path,
    mut visit: impl FnMut(Place, &[u8]) -> Result<u64, String>,
) -> Result<Vec<SegmentInfo>, RecoverError> {
    let files = list(dir)?;
    let mut infos = Vec::with_capacity(files.len());
    for (position, (seq, path)) in files.iter().enumerate() {
        let is_last = position + 1 == files.len();
        let buf = std::fs::read(path)?;
        let mut at = 0;
        let mut max_index = 0;
        loop {
            match frame::read_at(&buf, at) {
                Read::Record { payload, next } => {
                    let place = Place {
                        seq: *seq,
                        offset: at as u64,
                        len: (next - at) as u32,
                    };
                    let index = visit(place, payload).map_err(|why| RecoverError::Corrupt {
                        file: path.clone(),
                        offset: at,
                        why: format!("a checked record cannot be decoded: {why}"),
                    })?;
                    max_index = max_index.max(index);
                    at = next;
                }
                Read::End => break,
                // Zeros the records have not reached yet (`spare`): the end of the data.
                Read::Bad if buf[at..].iter().all(|b| *b == 0) => break,
                Read::Bad => {
                    if !is_last {
                        return Err(RecoverError::Corrupt {
                            file: path.clone(),
                            offset: at,
                            why: "a bad record in a segment that was complete and synced".into(),
                        });
                    }
                    if let Some(valid) = frame::any_record_after(&buf, at) {
                        return Err(RecoverError::Corrupt {
                            file: path.clone(),
                            offset: at,
                            why: format!("a bad record with a valid one after it at byte {valid}"),
                        });
                    }
                    tracing::warn!(
                        file = %path.display(),
                        offset = at,
                        dropped_bytes = buf.len() - at,
                        "cutting the write-ahead log's torn tail"
                    );
                    cut(path, at as u64)?;
                    break;
                }
            }
        }
        infos.push(SegmentInfo {
            seq: *seq,
            len: at as u64,
            max_index,
        });
    }
    Ok(infos)
}

fn cut(path: &Path, len: u64) -> io::Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    file.sync_all()
}

/// `fsync` of a directory, so that files created, renamed or removed in it stay so.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_foreign_files_are_ignored() {
        assert_eq!(parse_name(&file_name(1)), Some(1));
        assert_eq!(parse_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_name("vote"), None);
        assert_eq!(parse_name("0000000000000001.wal.tmp"), None);
        assert_eq!(parse_name("1.wal"), None);
    }
}
