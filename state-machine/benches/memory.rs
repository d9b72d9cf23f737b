//! Memory and restart time of the whole state: applies ORDERS single-unit orders (default
//! 5,000,000; set `ORDERS` to change it) over 10,000 SKUs, checkpointing as the node does
//! (about once a second), then reopens the store from sled as a restarted node would.
//! Prints the process's resident memory per order held, the reopen time, and how long an
//! update that adds a per-user limit takes (it recounts holds from every order); asserts
//! nothing. With `PAY=1` each order is paid `PAID_BEHIND` orders after it was placed, as a
//! sale's checkout does: the paid ones close (they stay in memory: closed orders are not
//! evicted; a keyed archive for them was tried and taken back, README).
//! Run with `cargo bench -p state-machine --bench memory`.

use state_machine::{Batch, Command, Item, Items, OrderId, Qty, SkuId, Store, UserId};
use std::time::{Duration, Instant};

// The node's allocator: resident memory depends on it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SKUS: usize = 10_000;
const BATCH: usize = 64;
/// With `PAY=1`: orders still reserved at any time, the newest; the older ones are paid.
const PAID_BEHIND: u64 = 100_000;

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn place(n: u64) -> Command {
    Command::PlaceOrder {
        order_id: OrderId::new(format!("order-{n:012}")).unwrap(),
        user_id: UserId::new(format!("user-{}", n % 1_000_003)).unwrap(),
        items: Items::new(vec![Item {
            sku: SkuId::new(format!("sku-{:05}", n as usize % SKUS)).unwrap(),
            qty: Qty::new(1).unwrap(),
        }])
        .unwrap(),
        ttl_ms: 900_000,
        request_tag: n + 1,
    }
}

fn pay(n: u64) -> Command {
    Command::Pay {
        order_id: OrderId::new(format!("order-{n:012}")).unwrap(),
        payment_ref: None,
        request_tag: 0,
    }
}

fn main() {
    let orders: u64 = std::env::var("ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000);
    // `CHECKPOINTS=0` holds everything in memory until the end: what sled itself holds.
    let checkpoints = std::env::var("CHECKPOINTS").map_or(true, |v| v != "0");
    let paying = std::env::var("PAY").is_ok_and(|v| v == "1");
    // On the project's disk, not /tmp (which may be memory-backed).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let open = || {
        let db = sled::Config::new()
            .path(dir.path())
            .cache_capacity(64 << 20)
            .open()
            .unwrap();
        Store::open(&db).unwrap().sync_on_flush(dir.path()).unwrap()
    };
    let base = resident_bytes();
    let store = open();
    let setup: Vec<Command> = (0..SKUS)
        .map(|i| Command::CreateSku {
            sku: SkuId::new(format!("sku-{i:05}")).unwrap(),
            stock: 1 << 40,
            per_user_limit: None,
            sale_window: None,
            request_tag: i as u64 + 1,
        })
        .collect();
    let first = Batch {
        now_ms: 1,
        commands: setup,
    };
    store.apply(&[(1, &first)], Some(b"1")).unwrap();

    let started = Instant::now();
    let mut last_checkpoint = Instant::now();
    let mut placed = 0u64;
    let mut index = 1u64;
    while placed < orders {
        let n = (orders - placed).min(BATCH as u64);
        let batch = Batch {
            now_ms: 1_000 + index,
            commands: (placed..placed + n)
                .map(place)
                .chain(
                    (placed..placed + n)
                        .filter(|_| paying)
                        .filter_map(|p| p.checked_sub(PAID_BEHIND))
                        .map(pay),
                )
                .collect(),
        };
        placed += n;
        index += 1;
        store
            .apply(&[(index, &batch)], Some(&index.to_be_bytes()))
            .unwrap();
        if checkpoints && last_checkpoint.elapsed() >= Duration::from_secs(1) {
            store.checkpoint().unwrap();
            last_checkpoint = Instant::now();
        }
    }
    let in_memory = resident_bytes().saturating_sub(base);
    store.checkpoint().unwrap();
    let loaded = started.elapsed();
    let held = resident_bytes().saturating_sub(base);
    if paying {
        println!(
            "state-machine memory: {orders} single-unit orders over {SKUS} SKUs, each paid \
             {PAID_BEHIND} orders later (the newest {PAID_BEHIND} reserved)"
        );
    } else {
        println!("state-machine memory: {orders} single-unit orders over {SKUS} SKUs, reserved");
    }
    println!(
        "before the last checkpoint: resident {:.0} MiB over the empty process, {:.0} bytes per order",
        mib(in_memory),
        in_memory as f64 / orders as f64
    );
    println!(
        "applied and checkpointed in {:.1} s; resident {:.0} MiB over the empty process, {:.0} bytes per order",
        loaded.as_secs_f64(),
        mib(held),
        held as f64 / orders as f64
    );
    drop(store);

    let reopening = Instant::now();
    let store = open();
    let reopened = reopening.elapsed();
    let records = store.records_in_memory();
    println!(
        "reopened from sled ({records} records loaded or rebuilt) in {:.1} s; process resident {:.0} MiB",
        reopened.as_secs_f64(),
        mib(resident_bytes())
    );
    let disk: u64 = walk(dir.path());
    println!("sled on disk: {:.0} MiB", mib(disk));

    // Holds are counted only for SKUs with a per-user limit: adding one scans every order.
    let limit = Batch {
        now_ms: 1_000 + index,
        commands: vec![Command::UpdateSku {
            sku: SkuId::new("sku-00000").unwrap(),
            per_user_limit: Some(Some(10)),
            sale_window: None,
            request_tag: 0,
        }],
    };
    let recounting = Instant::now();
    store.apply(&[(index + 1, &limit)], None).unwrap();
    println!(
        "a per-user limit added to one SKU (its holds recounted from all {orders} orders) in {:.2} s",
        recounting.elapsed().as_secs_f64()
    );
}

fn walk(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
