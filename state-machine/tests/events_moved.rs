//! Events moved out of memory once sled has them: every read, the digest, a snapshot and
//! pruning see exactly what a store holding every event in memory sees.

mod common;

use common::*;
use state_machine::{Batch, EventRead, Retention, Store};

/// Applies entry `index` (one order, or an SKU every tenth entry) to every store, with the
/// clock a second an entry.
fn apply_to_all(stores: &[&Store], index: u64) {
    let command = if index % 10 == 1 {
        create(&format!("S{index}"), 1_000_000)
    } else {
        let sku = format!("S{}", index - (index - 1) % 10);
        order(&format!("o{index}"), "u1", &[(&sku, 1)], 600_000)
    };
    let batch = Batch {
        now_ms: 1_000 * index,
        commands: vec![command],
    };
    let marker = format!("applied-{index}");
    for store in stores {
        store
            .apply(&[(index, &batch)], Some(marker.as_bytes()))
            .unwrap();
    }
}

/// Every page a reader can ask for: from each `after`, short and long.
fn all_pages(store: &Store) -> Vec<String> {
    let head = store.events_head().unwrap();
    let mut pages = Vec::new();
    for after in 0..=head + 1 {
        for limit in [1, 7, 1_000] {
            pages.push(match store.read_events(after, limit).unwrap() {
                EventRead::Page(page) => format!("{page:?}"),
                EventRead::Compacted { oldest } => format!("compacted {oldest}"),
            });
        }
    }
    pages
}

fn assert_same_state(held_all: &Store, moving: &Store) {
    assert_eq!(all_pages(held_all), all_pages(moving));
    assert_eq!(held_all.digest().unwrap(), moving.digest().unwrap());
    assert_eq!(export(held_all), export(moving));
}

#[test]
fn moved_events_read_digest_and_export_as_held_ones() {
    let all = temp_store();
    let dir = tempfile::tempdir().unwrap();
    let exported = {
        let moving = Store::open(&reopen(dir.path()))
            .unwrap()
            .with_events_held(5)
            .unwrap();
        for index in 1..=300 {
            apply_to_all(&[&all, &moving], index);
            if index.is_multiple_of(40) {
                moving.checkpoint().unwrap();
            }
        }
        // Only events a checkpoint wrote move: those of entries 1 to 280 (the newest 5 are
        // later ones).
        assert_eq!(moving.events_in_memory(), (20, 280), "held and moved");
        assert_same_state(&all, &moving);
        moving.checkpoint().unwrap();
        export(&moving)
    };

    // Reopened, a store holds only the newest events again, and reads the rest from sled.
    let reopened = Store::open(&reopen(dir.path()))
        .unwrap()
        .with_events_held(5)
        .unwrap();
    assert_eq!(reopened.events_in_memory(), (5, 295));
    assert_same_state(&all, &reopened);

    // An install moves the snapshot's older events out too.
    let installed = temp_store().with_events_held(5).unwrap();
    installed.install_snapshot(&exported[..]).unwrap();
    assert_eq!(installed.events_in_memory(), (5, 295));
    assert_same_state(&all, &installed);
    apply_to_all(&[&all, &installed], 301);
    assert_same_state(&all, &installed);
}

#[test]
fn an_event_no_checkpoint_wrote_stays_in_memory() {
    let store = temp_store().with_events_held(1).unwrap();
    for index in 1..=20 {
        apply_to_all(&[&store], index);
    }
    assert_eq!(store.events_in_memory(), (20, 0));
    store.checkpoint().unwrap();
    assert_eq!(store.events_in_memory(), (20, 0), "moved only by apply");
    apply_to_all(&[&store], 21);
    assert_eq!(store.events_in_memory(), (1, 20));
}

/// Pruning reads the age of the oldest events, moved or held, and drops moved ones from the
/// front as it drops held ones.
#[test]
fn retention_prunes_moved_events_as_held_ones() {
    let retention = Retention {
        min_events: 30,
        min_age_ms: 50_000,
    };
    let all = temp_store().with_event_retention(retention);
    let moving = temp_store()
        .with_event_retention(retention)
        .with_events_held(3)
        .unwrap();
    for index in 1..=200 {
        apply_to_all(&[&all, &moving], index);
        if index.is_multiple_of(7) {
            moving.checkpoint().unwrap();
            all.checkpoint().unwrap();
        }
        if index.is_multiple_of(25) {
            assert_same_state(&all, &moving);
        }
    }
    let (_, moved) = moving.events_in_memory();
    assert!(moved > 0, "nothing moved");
    // 50 seconds of entries at one a second are kept: more than the 30 newest.
    assert!(matches!(
        moving.read_events(0, 10).unwrap(),
        EventRead::Compacted { oldest: 151 }
    ));
}
