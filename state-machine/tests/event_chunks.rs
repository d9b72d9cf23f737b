//! Events on disk: many to a sled record, pruned and reopened exactly, and the layout of
//! earlier releases (one record per event) folded into chunks when a store opens.

mod common;

use common::*;
use state_machine::{Batch, Retention, Store};

/// sled's events tree of the first generation.
const EVENTS_TREE: &str = "sm.0.events";

/// `count` SKUs created one command per entry, each making one event; time moves a second
/// an entry.
fn create_skus(store: &Store, first: u64, count: u64) {
    for i in first..first + count {
        let batch = Batch {
            now_ms: 1_000 * i,
            commands: vec![create(&format!("S{i}"), 1)],
        };
        let marker = format!("applied-{i}");
        store
            .apply(&[(i, &batch)], Some(marker.as_bytes()))
            .unwrap();
    }
}

#[test]
fn a_checkpoint_stores_hundreds_of_events_in_a_few_records() {
    let dir = tempfile::tempdir().unwrap();
    let db = reopen(dir.path());
    let store = Store::open(&db).unwrap();
    create_skus(&store, 1, 600);
    store.checkpoint().unwrap();
    // 600 events, ids 1–600: chunks 0, 1 and 2 of 256 ids each.
    assert_eq!(db.open_tree(EVENTS_TREE).unwrap().len(), 3);
    // The half-full last chunk is rewritten by the next checkpoint, not duplicated.
    create_skus(&store, 601, 10);
    store.checkpoint().unwrap();
    assert_eq!(db.open_tree(EVENTS_TREE).unwrap().len(), 3);
}

#[test]
fn pruned_events_stay_pruned_across_checkpoints_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention {
        min_events: 100,
        min_age_ms: 0,
    };
    let expected = {
        let db = reopen(dir.path());
        let store = Store::open(&db).unwrap().with_event_retention(retention);
        // Checkpoints between the applies, so pruning hits chunks already on disk: whole
        // chunks go, and the first one kept loses its front.
        for round in 0..4 {
            create_skus(&store, 1 + round * 250, 250);
            store.checkpoint().unwrap();
        }
        export(&store)
    };
    let db = reopen(dir.path());
    let store = Store::open(&db).unwrap().with_event_retention(retention);
    assert_eq!(export(&store), expected);
    // Events 1–900 are pruned: of chunks 0–3 only chunk 3 (ids 768–1,023) is left.
    assert_eq!(db.open_tree(EVENTS_TREE).unwrap().len(), 1);
    assert_eq!(
        store.read_events(0, 10).unwrap(),
        state_machine::EventRead::Compacted { oldest: 901 }
    );
}

#[test]
fn events_stored_one_per_record_are_folded_into_chunks_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let db = reopen(dir.path());
        let store = Store::open(&db).unwrap();
        create_skus(&store, 1, 300);
        store.checkpoint().unwrap();
        let expected = export(&store);
        // Rewrite the events tree as an earlier release left it: key the event id
        // (big-endian, eight bytes), value the event, as the snapshot lists them.
        assert!(snapshot_records(&expected, EVENTS_TAG)
            .iter()
            .all(|(key, _)| key.len() == 8));
        assert_eq!(
            rewrite_as_one_record_each(&db, EVENTS_TREE, &expected, EVENTS_TAG),
            300
        );
        expected
    };
    let db = reopen(dir.path());
    let store = Store::open(&db).unwrap();
    assert_eq!(export(&store), expected);
    assert_eq!(db.open_tree(EVENTS_TREE).unwrap().len(), 2);
    // And the folded layout is what the next open finds.
    drop(store);
    assert_eq!(export(&Store::open(&db).unwrap()), expected);
}

/// The events tree's tag in a snapshot (its position in the store's tree list, plus one).
const EVENTS_TAG: u8 = 9;
