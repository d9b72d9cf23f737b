//! What the leader spends judging orders as reads (`Store::refusals_as_reads`) before it
//! proposes them: batches of 1,000 single-unit orders, as the gateway's batches arrive.
//! - "10,000 SKUs, in stock": every order is judged and accepted, so the judging is work
//!   that the log's apply then repeats (order batches and W3).
//! - "hot SKU, sold out": every order is refused without a log write (W1 after the sale).
//!
//! Only the judging is timed. `JUDGE_ORDERS=N` judges exactly N orders (whole batches), a
//! fixed amount of work for counting instructions under valgrind.
//! Run with `cargo bench -p state-machine --bench judge [-- SKUS]` (SKUS 10000 or 1: that
//! case alone); it prints a table, it asserts nothing but that each case judged as it says.

mod common;

use state_machine::{Command, Store};
use std::time::{Duration, Instant};

// The node's allocator, so the figures are the node's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: u64 = 1_000;

struct Case {
    label: &'static str,
    skus: u64,
    stock: u64,
    refused: bool,
}

fn measure(case: &Case) -> (f64, u64) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let db = sled::Config::new().path(dir.path()).open().unwrap();
    let store = Store::open(&db).unwrap();
    common::create_skus(&store, case.skus, case.stock);

    let fixed: Option<u64> = std::env::var("JUDGE_ORDERS")
        .ok()
        .map(|n| n.parse().expect("JUDGE_ORDERS is a number of orders"));
    let budget = Duration::from_secs(3);
    let mut orders = 0u64;
    let mut timed = Duration::ZERO;
    while fixed.map_or(timed < budget, |n| orders < n) {
        let batch: Vec<Command> = (0..BATCH)
            .map(|_| {
                orders += 1;
                common::place(orders, case.skus)
            })
            .collect();
        let started = Instant::now();
        let verdicts = store.refusals_as_reads(2, &batch, |_| false).unwrap();
        timed += started.elapsed();
        assert!(
            verdicts.iter().all(|v| v.is_some() == case.refused),
            "{}: an order judged otherwise",
            case.label
        );
    }
    (orders as f64 / timed.as_secs_f64(), orders)
}

fn main() {
    common::disable_transparent_huge_pages();
    let only: Vec<u64> = common::numeric_args();
    println!("state-machine judging orders as reads: batches of {BATCH} single-unit orders");
    println!("{:<28} {:>14} {:>10}", "case", "orders/s", "orders");
    let cases = [
        Case {
            label: "10,000 SKUs, in stock",
            skus: 10_000,
            stock: 1 << 40,
            refused: false,
        },
        Case {
            label: "hot SKU, sold out",
            skus: 1,
            stock: 0,
            refused: true,
        },
    ];
    for case in cases
        .iter()
        .filter(|c| only.is_empty() || only.contains(&c.skus))
    {
        let (rate, orders) = measure(case);
        println!("{:<28} {:>14.0} {:>10}", case.label, rate, orders);
    }
}
