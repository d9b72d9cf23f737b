//! The event feed and sales figures of STATE_MACHINE.md, "Events and sales figures": which
//! commands make events, how ids run, how retention prunes, how buckets fill. The reference
//! model test (`model.rs`) checks the same against random workloads.

mod common;

use common::*;
use state_machine::{
    Command, EventKind, EventPage, EventRead, EventSubject, Retention, SalesBucket, SalesCounts,
    Store,
};

fn page(store: &Store, after: u64, limit: usize) -> EventPage {
    match store.read_events(after, limit).unwrap() {
        EventRead::Page(page) => page,
        EventRead::Compacted { oldest } => panic!("compacted up to {oldest}"),
    }
}

fn kinds(store: &Store) -> Vec<(u64, EventKind)> {
    page(store, 0, 1000)
        .events
        .iter()
        .map(|e| (e.id, e.kind))
        .collect()
}

#[test]
fn accepted_commands_make_their_events_and_nothing_else_does() {
    let store = temp_store();
    run(&store, 1, 100, create("A", 2));
    run(&store, 2, 100, create("A", 2)); // replay
    run(&store, 3, 100, create("A", 3)); // sku_exists
    run(&store, 4, 100, restock("A", "r1", 1));
    run(&store, 5, 100, restock("A", "r1", 1)); // replay
    run(&store, 6, 100, restock("A", "r2", -100)); // insufficient_available
    run(&store, 7, 100, order("o1", "u1", &[("A", 2)], 10_000));
    run(&store, 8, 100, order("o1", "u1", &[("A", 2)], 10_000)); // replay
    run(&store, 9, 100, order("o2", "u2", &[("A", 5)], 10_000)); // out_of_stock
    run(&store, 10, 100, pay("o1", None));
    run(&store, 11, 100, pay("o1", None)); // no-op
    run(&store, 12, 100, cancel("o1")); // invalid_transition
    run(&store, 13, 100, refund("o1", true));
    run(&store, 14, 100, refund("o1", true)); // no-op
    let limit_one = || Command::UpdateSku {
        sku: sku("A"),
        per_user_limit: Some(Some(1)),
        sale_window: None,
        request_tag: 0,
    };
    run(&store, 15, 100, limit_one());
    run(&store, 16, 100, limit_one()); // changes nothing
    run(&store, 17, 100, Command::Expire); // nothing due
    assert_eq!(
        kinds(&store),
        vec![
            (1, EventKind::SkuCreated),
            (2, EventKind::SkuRestocked),
            (3, EventKind::OrderReserved),
            (4, EventKind::OrderPaid),
            (5, EventKind::OrderRefunded),
            (6, EventKind::SkuUpdated),
        ]
    );
    let events = page(&store, 0, 1000).events;
    assert_eq!(
        events.iter().map(|e| e.revision).collect::<Vec<_>>(),
        vec![1, 4, 7, 10, 13, 15]
    );
    let EventSubject::Order(paid) = &events[3].subject else {
        panic!("order event without its order");
    };
    assert_eq!(
        (paid.status, paid.revision),
        (state_machine::OrderStatus::Paid, 10)
    );
    assert_eq!(store.events_head().unwrap(), 6);
}

#[test]
fn deadlines_expire_orders_one_event_each_in_deadline_order() {
    let store = temp_store();
    run(&store, 1, 1_000, create("A", 10));
    run(&store, 2, 1_000, order("late", "u1", &[("A", 1)], 5_000));
    run(&store, 3, 1_000, order("early", "u2", &[("A", 2)], 2_000));
    run(&store, 4, 1_000, order("kept", "u3", &[("A", 3)], 60_000));
    // A command that finds a reservation past its deadline expires it first: its event
    // comes even though the pay itself is refused.
    run(&store, 5, 3_500, pay("early", None));
    run(&store, 6, 7_000, Command::Expire);
    let events = page(&store, 3, 1000).events;
    let summary: Vec<_> = events
        .iter()
        .map(|e| match &e.subject {
            EventSubject::Order(o) => (e.kind, o.order_id.to_string(), e.time_ms),
            EventSubject::Sku(s) => panic!("unexpected sku event for {}", s.sku),
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (EventKind::OrderReserved, "kept".to_string(), 1_000),
            (EventKind::OrderExpired, "early".to_string(), 3_500),
            (EventKind::OrderExpired, "late".to_string(), 7_000),
        ]
    );
}

#[test]
fn pages_run_from_after_and_report_the_head() {
    let store = temp_store();
    for (i, name) in ["A", "B", "C", "D", "E"].iter().enumerate() {
        run(&store, i as u64 + 1, 0, create(name, 1));
    }
    let first = page(&store, 0, 2);
    assert_eq!(
        (
            first.events.iter().map(|e| e.id).collect::<Vec<_>>(),
            first.next,
            first.head
        ),
        (vec![1, 2], 2, 5)
    );
    let rest = page(&store, first.next, 100);
    assert_eq!(
        rest.events.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    let past = page(&store, 9, 100);
    assert_eq!((past.events.len(), past.next, past.head), (0, 9, 5));
}

#[test]
fn retention_keeps_the_newest_events_or_the_youngest_whichever_is_more() {
    let store = temp_store().with_event_retention(Retention {
        min_events: 3,
        min_age_ms: 10_000,
    });
    for i in 0..6u64 {
        run(&store, i + 1, 1_000 * i, create(&format!("S{i}"), 1));
    }
    // Six events, all younger than ten seconds: all kept, though only three must be.
    assert_eq!(page(&store, 0, 100).events.len(), 6);
    // At 13,500 with head 7: events 1–4 (times 0–3,000) are older than ten seconds and
    // not among the newest three (5, 6, 7), so they go; 5 (4,000) is kept by count and age.
    run(&store, 7, 13_500, create("S6", 1));
    assert_eq!(
        store.read_events(0, 100).unwrap(),
        EventRead::Compacted { oldest: 5 }
    );
    assert_eq!(
        store.read_events(3, 100).unwrap(),
        EventRead::Compacted { oldest: 5 }
    );
    let kept = page(&store, 4, 100);
    assert_eq!(
        kept.events.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![5, 6, 7]
    );
    assert_eq!(kept.head, 7);
}

/// With nothing to keep, an apply prunes even the events it has just recorded: the prune
/// wins over the append, and ids still run on from the head.
#[test]
fn events_recorded_and_pruned_by_one_apply_are_gone() {
    let store = temp_store().with_event_retention(Retention {
        min_events: 0,
        min_age_ms: 0,
    });
    run(&store, 1, 1_000, create("A", 1));
    assert_eq!(
        store.read_events(0, 100).unwrap(),
        EventRead::Compacted { oldest: 2 }
    );
    run(&store, 2, 2_000, create("B", 1));
    assert_eq!(
        store.read_events(1, 100).unwrap(),
        EventRead::Compacted { oldest: 3 }
    );
    let after = page(&store, 2, 100);
    assert_eq!((after.events.len(), after.head), (0, 2));
}

#[test]
fn sales_buckets_count_units_per_minute_of_the_cluster_clock() {
    let store = temp_store();
    run(&store, 1, 0, create("A", 100));
    run(&store, 2, 61_000, order("o1", "u1", &[("A", 3)], 600_000));
    run(&store, 3, 119_999, order("o2", "u2", &[("A", 2)], 600_000));
    run(&store, 4, 120_000, pay("o1", None));
    run(&store, 5, 180_500, cancel("o2"));
    let all = store.sales(&sku("A"), 0, u64::MAX).unwrap().unwrap();
    let summary: Vec<_> = all.iter().map(|b| (b.start_ms, b.counts)).collect();
    assert_eq!(
        summary,
        vec![
            (
                60_000,
                SalesCounts {
                    reserved: 5,
                    ..Default::default()
                }
            ),
            (
                120_000,
                SalesCounts {
                    paid: 3,
                    ..Default::default()
                }
            ),
            (
                180_000,
                SalesCounts {
                    cancelled: 2,
                    ..Default::default()
                }
            ),
        ]
    );
    // from inclusive, to exclusive, by bucket start.
    let middle = store.sales(&sku("A"), 120_000, 180_000).unwrap().unwrap();
    assert_eq!(
        middle.iter().map(|b| b.start_ms).collect::<Vec<_>>(),
        vec![120_000]
    );
    assert!(store
        .sales(&sku("A"), 200_000, 100)
        .unwrap()
        .unwrap()
        .is_empty());
    assert_eq!(store.sales(&sku("nope"), 0, u64::MAX).unwrap(), None);
}

/// A snapshot of the release before SKU records carried their newest sales bucket (version
/// 5: every bucket a record of the sales tree) installs, reads the same, and counts on as
/// the store that wrote it does, where a minute's units then lie partly in the tree and
/// partly in the SKU's record.
#[test]
fn sales_stored_before_buckets_rode_with_their_skus_read_and_count_on() {
    let source = temp_store();
    run(&source, 1, 0, create("A", 100));
    run(&source, 2, 0, create("B", 100));
    run(&source, 3, 61_000, order("o1", "u1", &[("A", 3)], 600_000));
    run(&source, 4, 62_000, order("o2", "u2", &[("B", 2)], 600_000));
    run(&source, 5, 125_000, order("o3", "u3", &[("A", 1)], 600_000));

    // The same state as that release stored it: each SKU's bucket moved into the tree.
    const SKUS_TAG: u8 = 1;
    const SALES_TAG: u8 = 10;
    let mut records = all_snapshot_records(&export(&source));
    let mut moved = Vec::new();
    for (_, key, value) in records.iter_mut().filter(|(tag, _, _)| *tag == SKUS_TAG) {
        let last = *value.last().unwrap();
        assert!(
            last & 0x80 != 0,
            "SKU {key:?} carries no bucket: nothing to test"
        );
        let at = value.len() - 1 - usize::from(last & 0x7f);
        let bucket: SalesBucket = postcard::from_bytes(&value[at..value.len() - 1]).unwrap();
        value.truncate(at);
        let mut sales_key = key.clone();
        sales_key.push(0);
        sales_key.extend_from_slice(&bucket.start_ms.to_be_bytes());
        let counts = postcard::to_stdvec(&bucket.counts).unwrap();
        moved.push((SALES_TAG, sales_key, counts));
    }
    records.extend(moved);
    records.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let old = snapshot_of_records(5, &records);
    assert_eq!(state_machine::verify_snapshot(&old[..]).unwrap().version, 5);
    let target = temp_store();
    target.install_snapshot(&old[..]).unwrap();

    let sales = |store: &Store, name: &str| {
        let buckets = store.sales(&sku(name), 0, u64::MAX).unwrap().unwrap();
        buckets
            .iter()
            .map(|b| (b.start_ms, b.counts.reserved, b.counts.cancelled))
            .collect::<Vec<_>>()
    };
    for name in ["A", "B"] {
        assert_eq!(sales(&target, name), sales(&source, name), "{name}");
    }
    for store in [&source, &target] {
        // Same minute as A's newest bucket, now in the tree: the two add up.
        run(store, 6, 126_000, order("o4", "u4", &[("A", 2)], 600_000));
        // A later minute for B, and a cancel counted in it.
        run(store, 7, 190_000, order("o5", "u5", &[("B", 1)], 600_000));
        run(store, 8, 191_000, cancel("o2"));
    }
    assert_eq!(sales(&source, "A"), [(60_000, 3, 0), (120_000, 3, 0)]);
    assert_eq!(sales(&source, "B"), [(60_000, 2, 0), (180_000, 1, 2)]);
    for name in ["A", "B"] {
        assert_eq!(sales(&target, name), sales(&source, name), "{name}");
    }
    let later = target.sales(&sku("A"), 120_000, 180_000).unwrap().unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].counts.reserved, 3);
}
