//! What one checkpoint costs as the state grows: each round applies a second's worth of
//! single-unit `PlaceOrder`s (15,000, in log entries of 32, as a node sees them at the p99
//! target's rate), then checkpoints to sled with the node's durability (flush, then `fsync`
//! of sled's files). A checkpoint is a burst of one core on machines the orders keep busy, so
//! the figures are the checkpoint thread's CPU time (the burst) beside its wall time (which
//! adds the disk's waits), as median, 90th percentile and maximum over the rounds.
//!
//! `cargo bench -p state-machine --bench checkpoint -- [SKUS [ROUNDS]]` (default: both 1 and
//! 10,000 SKUs, 40 rounds). With `PAY=1` in the environment each round also pays the
//! previous round's orders, so that copies are superseded as fast as orders come and
//! checkpoints clean runs. It prints a table and asserts nothing.

mod common;

use state_machine::{Batch, Command, Store};
use std::time::{Duration, Instant};

// The node's allocator, so the figures are the node's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ORDERS_PER_ROUND: u64 = 15_000;
const ORDERS_PER_ENTRY: u64 = 32;

/// CPU time the calling thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime: {}", std::io::Error::last_os_error());
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

struct Figures {
    cpu: Vec<Duration>,
    wall: Vec<Duration>,
    records: Vec<usize>,
}

fn measure(skus: u64, rounds: usize) -> Figures {
    // On the project's disk, not /tmp (which may be memory-backed), so the syncs are real.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let db = sled::Config::new().path(dir.path()).open().unwrap();
    let store = Store::open(&db).unwrap().sync_on_flush(dir.path()).unwrap();
    common::create_skus(&store, skus, 1 << 40);
    store.checkpoint().unwrap();

    let mut figures = Figures {
        cpu: Vec::new(),
        wall: Vec::new(),
        records: Vec::new(),
    };
    let pay = std::env::var("PAY").is_ok_and(|v| v == "1");
    let mut index = 1u64;
    let mut orders = 0u64;
    let mut placed_before = 0..0;
    for _ in 0..rounds {
        // The previous round's orders, first to last.
        let mut unpaid = if pay { placed_before } else { 0..0 };
        let first = orders + 1;
        for _ in 0..ORDERS_PER_ROUND / ORDERS_PER_ENTRY {
            index += 1;
            let mut commands: Vec<Command> = (0..ORDERS_PER_ENTRY)
                .map(|_| {
                    orders += 1;
                    common::place(orders, skus)
                })
                .collect();
            commands.extend(
                unpaid
                    .by_ref()
                    .take(ORDERS_PER_ENTRY as usize)
                    .map(common::pay),
            );
            let batch = Batch {
                now_ms: 1_000 + index,
                commands,
            };
            store
                .apply(&[(index, &batch)], Some(&index.to_be_bytes()))
                .unwrap();
        }
        placed_before = first..orders + 1;
        let (cpu, wall) = (thread_cpu(), Instant::now());
        let info = store.checkpoint().unwrap();
        figures.cpu.push(thread_cpu() - cpu);
        figures.wall.push(wall.elapsed());
        figures.records.push(info.records);
    }
    figures
}

/// Median, 90th percentile and maximum, in milliseconds.
fn spread(mut values: Vec<Duration>) -> String {
    values.sort();
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "{:>6.1} {:>6.1} {:>6.1}",
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(1.0))
    )
}

fn main() {
    common::disable_transparent_huge_pages();
    let args: Vec<u64> = common::numeric_args();
    let sku_counts: Vec<u64> = match args.first() {
        Some(&skus) => vec![skus.max(1)],
        None => vec![1, 10_000],
    };
    let rounds = args.get(1).map_or(40, |&r| r.max(1) as usize);
    println!(
        "state-machine checkpoint: {ORDERS_PER_ROUND} single-unit orders per round in entries of \
         {ORDERS_PER_ENTRY}{}, {rounds} rounds, sled flush + fsync",
        if std::env::var("PAY").is_ok_and(|v| v == "1") {
            ", each paid the round after"
        } else {
            ""
        }
    );
    println!(
        "{:<8} {:>9}   {:>20}   {:>20}",
        "skus", "records", "cpu ms p50 p90 max", "wall ms p50 p90 max"
    );
    for skus in sku_counts {
        let figures = measure(skus, rounds);
        let mut records = figures.records.clone();
        records.sort();
        println!(
            "{:<8} {:>9}   {}   {}",
            skus,
            records[records.len() / 2],
            spread(figures.cpu),
            spread(figures.wall)
        );
    }
}
