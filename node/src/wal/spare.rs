//! Segments written over zeros. Appending to a file changes its size, and then every
//! `fdatasync` must also write the inode (and, as the file grows, its block map): on this
//! machine's ext4 that made each sync take about 210 µs instead of 115 µs, and cost 40 % more
//! CPU. So each segment is filled with zeros and synced to its full size before it receives
//! a record, and records overwrite the zeros: a sync then carries the data alone.
//!
//! Filling 64 MiB takes 0.1–0.2 s, too long to stall the log at a roll, so a thread prepares
//! the next segment as a spare file ahead of time, and a roll only renames it into place.
//! The spare's name is not a segment's, so a crash mid-fill leaves nothing recovery reads.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

/// The file a spare segment is prepared in.
pub const SPARE_NAME: &str = "spare.wal.tmp";

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// Writes zeros over `file` from `from` up to `to` bytes and syncs it, size included.
pub fn fill_with_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZEROS.len() as u64) as usize;
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    file.sync_all()
}

/// A spare segment being prepared, or ready.
pub struct Spare {
    path: PathBuf,
    filling: JoinHandle<io::Result<()>>,
}

impl Spare {
    /// Starts preparing a spare of `bytes` zeros in `dir`, replacing any earlier spare (one
    /// left half-filled by a crash included).
    pub fn start(dir: &Path, bytes: u64) -> io::Result<Self> {
        let path = dir.join(SPARE_NAME);
        let target = path.clone();
        let filling = std::thread::Builder::new()
            .name("wal-spare".into())
            .spawn(move || {
                let file = OpenOptions::new()
                    .create(true)
                    .truncate(true)
                    .write(true)
                    .open(&target)?;
                fill_with_zeros(&file, 0, bytes)
            })?;
        Ok(Self { path, filling })
    }

    /// Waits until the spare is filled and synced, then renames it to `segment` and makes
    /// the new name durable. The file comes back open for writing, at offset 0.
    pub fn install(self, segment: &Path) -> io::Result<File> {
        match self.filling.join() {
            Ok(filled) => filled?,
            Err(_) => {
                return Err(io::Error::other(
                    "the thread filling a spare segment panicked",
                ))
            }
        }
        std::fs::rename(&self.path, segment)?;
        if let Some(dir) = segment.parent() {
            super::segments::sync_dir(dir)?;
        }
        OpenOptions::new().write(true).open(segment)
    }

    /// Lets the filling end (the log is closing), so it writes nothing afterwards.
    pub fn finish(self) {
        let _ = self.filling.join();
    }
}
