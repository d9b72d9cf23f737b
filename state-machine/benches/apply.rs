//! Apply throughput of single-unit `PlaceOrder`s: one hot SKU and 10,000 SKUs, in batches of
//! 1, 64 and 1024 commands per log entry: in memory only (as the node applies), and with a
//! checkpoint to sled (write, flush, fsync) after every batch, the worst case.
//! Only `Store::apply` (and the checkpoint) is timed, not the making of the commands.
//! Order ids grow, as time-ordered ids do; `ORDER_IDS=random` makes them come in no order.
//! Run with `cargo bench -p state-machine`; it prints a table, it asserts nothing.

mod common;

use state_machine::{Batch, Store};
use std::time::{Duration, Instant};

// The node's allocator, so the figures are the node's: under glibc's malloc, allocation and
// free were a third of this bench's cycles (perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SKU_COUNT_WIDE: usize = 10_000;

struct Run {
    skus: usize,
    batch: usize,
    flush: bool,
}

fn measure(run: &Run) -> (f64, u64) {
    // On the project's disk, not /tmp (which may be memory-backed), so flushes are real.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let db = sled::Config::new().path(dir.path()).open().unwrap();
    let store = Store::open(&db).unwrap();
    common::create_skus(&store, run.skus as u64, 1 << 40);
    store.checkpoint().unwrap();

    // Enough work for a stable figure, bounded in time. Only `apply` (and the checkpoint) is
    // timed: the node decodes its commands from the log before it applies them, so building
    // them here (three `format!`s and an `Items` each) is no part of the figure.
    // `APPLY_ORDERS=N` runs exactly N orders (rounded up to whole batches) instead: a fixed
    // amount of work, for counting instructions and cache misses under valgrind, which stay
    // comparable between builds when this machine's speed does not.
    let budget = Duration::from_secs(if run.flush { 3 } else { 4 });
    let fixed: Option<u64> = std::env::var("APPLY_ORDERS")
        .ok()
        .map(|n| n.parse().expect("APPLY_ORDERS is a number of orders"));
    let mut index = 1;
    let mut orders = 0u64;
    let mut timed = Duration::ZERO;
    while fixed.map_or(timed < budget, |n| orders < n) {
        let commands = (0..run.batch).map(|_| {
            orders += 1;
            common::place(orders, run.skus as u64)
        });
        let batch = Batch {
            now_ms: 1_000 + index,
            commands: commands.collect(),
        };
        index += 1;
        let started = Instant::now();
        store
            .apply(&[(index, &batch)], Some(&index.to_be_bytes()))
            .unwrap();
        if run.flush {
            store.checkpoint().unwrap();
        }
        timed += started.elapsed();
    }
    (orders as f64 / timed.as_secs_f64(), orders)
}

/// `cargo bench -p state-machine --bench apply -- [SKUS [BATCH [CHECKPOINT]]]` runs only the
/// cases with that many SKUs (1 or 10000), that batch size (1, 64 or 1024) and, with
/// CHECKPOINT 0 or 1, without or with a checkpoint every batch: e.g. under `perf record`, or
/// alternating builds many times.
fn main() {
    common::disable_transparent_huge_pages();
    let filter: Vec<usize> = common::numeric_args();
    let wanted = |position: usize, value: usize| filter.get(position).is_none_or(|&f| f == value);
    println!("state-machine apply: single-unit PlaceOrder, in-memory store over sled, one thread");
    println!(
        "{:<12} {:>6} {:>11} {:>14} {:>10}",
        "skus", "batch", "checkpoint", "orders/s", "orders"
    );
    for skus in [1, SKU_COUNT_WIDE].into_iter().filter(|&s| wanted(0, s)) {
        for flush in [false, true].into_iter().filter(|&f| wanted(2, f as usize)) {
            for batch in [1, 64, 1024].into_iter().filter(|&b| wanted(1, b)) {
                let run = Run { skus, batch, flush };
                let (rate, orders) = measure(&run);
                let label = if skus == 1 {
                    "1 (hot)".to_string()
                } else {
                    skus.to_string()
                };
                println!(
                    "{:<12} {:>6} {:>11} {:>14.0} {:>10}",
                    label,
                    batch,
                    if flush { "every batch" } else { "no" },
                    rate,
                    orders
                );
            }
        }
    }
}
