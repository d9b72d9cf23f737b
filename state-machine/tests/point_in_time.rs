//! List pages come from one applied state (issue: "List pages are not one point in time"):
//! while multi-item orders apply, no page may show an order reserved on one SKU and not on
//! another.

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const SKUS: usize = 40;
const ORDERS: u64 = 500;

#[test]
fn a_page_never_shows_half_of_a_multi_item_order() {
    let store = Arc::new(temp_store());
    for i in 0..SKUS {
        run(&store, 1, 0, create(&format!("s{i:02}"), ORDERS));
    }
    let names: Vec<String> = (0..SKUS).map(|i| format!("s{i:02}")).collect();
    let every_sku: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 1)).collect();
    let orders: Vec<_> = (0..ORDERS)
        .map(|i| order(&format!("o{i}"), "u", &every_sku, 60_000))
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || {
            for (i, command) in orders.into_iter().enumerate() {
                run(&store, 2 + i as u64, 1_000, command);
            }
            done.store(true, Ordering::Release);
        })
    };
    let mut pages = 0;
    let mut mixed = 0;
    while !done.load(Ordering::Acquire) {
        // Two pages of 20, and one of all: each must be uniform on its own.
        for (after, limit) in [(None, 20), (Some(sku("s19")), 20), (None, SKUS)] {
            let (page, _) = store.list_skus(after.as_ref(), limit).unwrap();
            assert_eq!(page.len(), limit);
            let reserved: Vec<u64> = page.iter().map(|s| s.reserved).collect();
            assert!(
                reserved.iter().all(|r| *r == reserved[0]),
                "one page shows different states: {reserved:?}"
            );
            if reserved[0] > 0 && reserved[0] < ORDERS {
                mixed += 1;
            }
            pages += 1;
        }
        let listed = store.list_user_orders(&uid("u"), 1_000).unwrap();
        assert!(listed.iter().all(|o| o.items.as_slice().len() == SKUS));
    }
    writer.join().unwrap();
    let (page, _) = store.list_skus(None, SKUS).unwrap();
    assert!(page.iter().all(|s| s.reserved == ORDERS));
    // The test only means something if pages were read while orders applied.
    assert!(pages > 0 && mixed > 0, "{pages} pages, {mixed} mid-run");
}
