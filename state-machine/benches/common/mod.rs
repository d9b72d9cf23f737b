//! What the apply and checkpoint benches share: the orders they apply, and the allocator
//! settings the node runs with, so their figures are the node's.

use state_machine::{Batch, Command, Item, Items, OrderId, Qty, SkuId, Store, UserId};

pub fn sku_name(i: u64) -> String {
    format!("sku-{i:05}")
}

/// What each bench applies first, as log entry 1: `count` SKUs named by `sku_name`, with
/// `stock` units each.
pub fn create_skus(store: &Store, count: u64, stock: u64) {
    let commands = (0..count)
        .map(|i| Command::CreateSku {
            sku: SkuId::new(sku_name(i)).unwrap(),
            stock,
            per_user_limit: None,
            sale_window: None,
            request_tag: i + 1,
        })
        .collect();
    let created = Batch {
        now_ms: 1,
        commands,
    };
    store.apply(&[(1, &created)], None).unwrap();
}

/// The `n`th single-unit order, on one of `skus` SKUs in turn. Its id grows with `n`, as
/// time-ordered ids do; with `ORDER_IDS=random` in the environment, ids come in no order
/// (a bijection of `n`, so never twice), as random ids (UUIDv4) do.
pub fn place(n: u64, skus: u64) -> Command {
    Command::PlaceOrder {
        order_id: order_id(n),
        user_id: UserId::new(format!("user-{}", n % 100_003)).unwrap(),
        items: Items::new(vec![Item {
            sku: SkuId::new(sku_name(n % skus)).unwrap(),
            qty: Qty::new(1).unwrap(),
        }])
        .unwrap(),
        ttl_ms: 900_000,
        request_tag: n + 1,
    }
}

/// The `n`th order's payment (`place`).
#[allow(dead_code)] // Not every bench pays.
pub fn pay(n: u64) -> Command {
    Command::Pay {
        order_id: order_id(n),
        payment_ref: None,
        request_tag: n + 1,
    }
}

fn order_id(n: u64) -> OrderId {
    let id = if random_ids() {
        format!("order-{:016x}", scramble(n))
    } else {
        format!("order-{n:012}")
    };
    OrderId::new(id).unwrap()
}

fn random_ids() -> bool {
    static RANDOM: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *RANDOM.get_or_init(|| std::env::var("ORDER_IDS").is_ok_and(|v| v == "random"))
}

/// splitmix64's finalizer: a bijection of u64 that scatters neighbours.
fn scramble(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// As the node does (see its `main`): with huge pages, mimalloc's returned memory came back
/// as 2 MiB pages zeroed on first touch, a quarter of the apply bench's cycles (perf), and
/// that zeroing would be charged to whichever checkpoint touched the memory.
#[cfg(target_os = "linux")]
pub fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    assert_eq!(
        rc,
        0,
        "prctl(PR_SET_THP_DISABLE): {}",
        std::io::Error::last_os_error()
    );
}

#[cfg(not(target_os = "linux"))]
pub fn disable_transparent_huge_pages() {}

/// The bench's arguments that are numbers: `cargo bench` also passes `--bench`.
pub fn numeric_args<T: std::str::FromStr>() -> Vec<T> {
    std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse().ok())
        .collect()
}
