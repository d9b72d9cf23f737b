//! What the apply and checkpoint benches share: the orders they apply, and the allocator
//! settings the node runs with, so their figures are the node's.

use state_machine::{Command, Item, Items, OrderId, Qty, SkuId, UserId};

pub fn sku_name(i: u64) -> String {
    format!("sku-{i:05}")
}

/// The `n`th single-unit order, on one of `skus` SKUs in turn.
pub fn place(n: u64, skus: u64) -> Command {
    Command::PlaceOrder {
        order_id: OrderId::new(format!("order-{n:012}")).unwrap(),
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
