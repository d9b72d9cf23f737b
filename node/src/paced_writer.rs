//! Writes a large file (a snapshot) so that its bytes reach the disk as they are written,
//! a window at a time, instead of all at once when the file is finally synced.
//!
//! A snapshot of a few million orders is over a gigabyte. The kernel starts writing dirty
//! pages back only past `dirty_background_ratio` of memory (gigabytes here), so the whole
//! file used to wait in the page cache and the closing `fsync` sent it to the disk in one
//! go. Every node builds its snapshot at the same log index, and for the second or two that
//! flood took, each log `fdatasync` queued behind it: AppendEntries timed out and orders
//! waited up to 1.5 s (README, "Snapshots written back as they are built").
//!
//! This writer asks the kernel to start writing each window once it is full, and waits for
//! the window before it, so at most about two windows are ever dirty and a log sync queues
//! behind at most that. Pacing is all it does: nothing counts as durable before the caller's
//! `fsync` returns (`sync_file_range` syncs neither metadata nor the drive's cache).

use std::fs::File;
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// Bytes between two writeback requests: large enough that the disk sees big writes, small
/// enough that a log sync behind one waits a few milliseconds.
pub const WINDOW_BYTES: u64 = 8 << 20;

/// The rate a snapshot build writes at, at most. The kernel's writeback of a snapshot runs
/// in its own workers at normal or high priority, whatever the builder's nice value: a build
/// writing 200 MB/s kept both cores busy (idle 2–5 %, system time up from 45 % to 60 %) and
/// orders waited 0.5–0.8 s for each build. At this rate a 2.6 GB snapshot takes 40 s.
pub const BUILD_BYTES_PER_SEC: u64 = 64 << 20;

pub struct PacedWriter<'a> {
    file: &'a File,
    window: u64,
    /// Bytes per second, at most, and when the first byte was written.
    rate: Option<(u64, Instant)>,
    written: u64,
    /// Where the window being filled starts.
    window_start: u64,
    /// The previous window, whose writeback was started and not yet waited for.
    in_flight: Option<(u64, u64)>,
}

impl<'a> PacedWriter<'a> {
    /// Writes `file` from its current end, which must be offset 0 (a new file).
    pub fn new(file: &'a File) -> Self {
        Self::with_window(file, WINDOW_BYTES)
    }

    /// Also writes no faster than `bytes_per_sec` on average.
    pub fn at_most(file: &'a File, bytes_per_sec: u64) -> Self {
        PacedWriter {
            rate: Some((bytes_per_sec.max(1), Instant::now())),
            ..Self::new(file)
        }
    }

    fn with_window(file: &'a File, window: u64) -> Self {
        PacedWriter {
            file,
            window,
            rate: None,
            written: 0,
            window_start: 0,
            in_flight: None,
        }
    }

    fn pace(&mut self) {
        let window = (self.window_start, self.written - self.window_start);
        start_writeback(self.file, window);
        if let Some(previous) = self.in_flight.replace(window) {
            wait_for_writeback(self.file, previous);
        }
        self.window_start = self.written;
        if let Some((rate, started)) = self.rate {
            let due = Duration::from_secs_f64(self.written as f64 / rate as f64);
            if let Some(early) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(early);
            }
        }
    }
}

impl Write for PacedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (&mut &*self.file).write(buf)?;
        self.written += n as u64;
        if self.written - self.window_start >= self.window {
            self.pace();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&mut &*self.file).flush()
    }
}

// Errors of these calls are ignored on purpose: they only pace the writeback, and the
// caller's `fsync` reports any error that matters for the file's bytes.

#[cfg(target_os = "linux")]
fn start_writeback(file: &File, (offset, len): (u64, u64)) {
    sync_range(file, offset, len, libc::SYNC_FILE_RANGE_WRITE);
}

#[cfg(target_os = "linux")]
fn wait_for_writeback(file: &File, (offset, len): (u64, u64)) {
    sync_range(
        file,
        offset,
        len,
        libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER,
    );
}

#[cfg(target_os = "linux")]
fn sync_range(file: &File, offset: u64, len: u64, flags: libc::c_uint) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: plain integers and a descriptor that `file` keeps open for the call.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, flags);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &File, _: (u64, u64)) {}

#[cfg(not(target_os = "linux"))]
fn wait_for_writeback(_: &File, _: (u64, u64)) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// The pacing must never change what the file holds: writes of uneven sizes across many
    /// windows read back byte for byte, and every byte counts towards the windows.
    #[test]
    fn paced_file_holds_exactly_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("paced");
        let file = File::create(&path).unwrap();
        let mut expected = Vec::new();
        let mut writer = PacedWriter::with_window(&file, 4096);
        for i in 0..600u32 {
            let chunk: Vec<u8> = (0..(i * 37) % 1500).map(|j| (i + j) as u8).collect();
            writer.write_all(&chunk).unwrap();
            expected.extend_from_slice(&chunk);
        }
        writer.flush().unwrap();
        assert_eq!(writer.written, expected.len() as u64);
        assert!(writer.window_start > 0, "no window was ever paced");
        assert!(writer.written - writer.window_start < 4096);
        file.sync_all().unwrap();
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, expected);
    }

    /// Capped at 4 MiB/s, 2 MiB in 64 KiB windows cannot take less than half a second.
    #[test]
    fn a_capped_writer_keeps_to_its_rate() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("capped")).unwrap();
        let mut writer = PacedWriter {
            window: 64 << 10,
            ..PacedWriter::at_most(&file, 4 << 20)
        };
        let started = Instant::now();
        let chunk = vec![7u8; 16 << 10];
        for _ in 0..128 {
            writer.write_all(&chunk).unwrap();
        }
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(480), "took {took:?}");
        assert_eq!(writer.written, 2 << 20);
    }
}
