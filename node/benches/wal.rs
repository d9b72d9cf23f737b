//! The Raft log's group commit: appends/s and `fdatasync`s/s with 1, 64 and 256 appenders,
//! each waiting for its record to be reported saved before it sends the next (as openraft
//! waits for each append). Records are 120 bytes, about one log entry of a few orders.
//! Run with `cargo bench -p node --bench wal`; it prints a table, it asserts nothing.

use node::wal::{self, frame, Request, FDATASYNCS};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const RUN: Duration = Duration::from_secs(3);

fn measure(appenders: usize) -> (f64, f64, f64) {
    // On the project's disk, not /tmp (which may be memory-backed), so syncs are real.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let io = wal::start(
        dir.path(),
        Vec::new(),
        wal::Options {
            segment_bytes: 64 * 1024 * 1024,
            note_synced: false,
            fsync_seconds: node::metrics::HotPath::default().wal_fsync,
        },
    )
    .unwrap();
    let mut record = Vec::new();
    frame::encode_into(&mut record, &[7u8; 108]);
    let syncs_before = FDATASYNCS.load(Ordering::Relaxed);
    let started = Instant::now();
    let threads: Vec<_> = (0..appenders)
        .map(|_| {
            let io = io.sender();
            let record = record.clone();
            std::thread::spawn(move || {
                let mut appends = 0u64;
                let mut waited = Duration::ZERO;
                while started.elapsed() < RUN {
                    let (tx, rx) = mpsc::channel();
                    let sent = Instant::now();
                    io.send(Request::Append {
                        bytes: record.clone(),
                        max_index: 0,
                        done: Some(Box::new(move |r| {
                            let _ = tx.send(r);
                        })),
                        placed: None,
                    })
                    .unwrap();
                    rx.recv().unwrap().unwrap();
                    waited += sent.elapsed();
                    appends += 1;
                }
                (appends, waited)
            })
        })
        .collect();
    let (mut appends, mut waited) = (0u64, Duration::ZERO);
    for t in threads {
        let (a, w) = t.join().unwrap();
        appends += a;
        waited += w;
    }
    let secs = started.elapsed().as_secs_f64();
    let syncs = FDATASYNCS.load(Ordering::Relaxed) - syncs_before;
    let mean_ms = waited.as_secs_f64() * 1e3 / appends.max(1) as f64;
    (appends as f64 / secs, syncs as f64 / secs, mean_ms)
}

fn main() {
    println!("appenders  appends/s  fdatasyncs/s  appends per sync  mean wait ms");
    for appenders in [1, 64, 256] {
        let (appends, syncs, wait) = measure(appenders);
        println!(
            "{appenders:>9}  {appends:>9.0}  {syncs:>12.0}  {:>16.1}  {wait:>12.2}",
            appends / syncs.max(1.0)
        );
    }
}
