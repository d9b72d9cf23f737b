//! Orders that leave `reserved` leave memory once a checkpoint has them in sled's archive.
//! A store that archives must answer every command and read as one that holds every order.

mod common;

use common::*;
use state_machine::{Batch, Command, Outcome, Store};
use std::sync::Arc;

/// Applies each command to both stores as the same log entry and requires the same outcome.
struct Pair {
    archiving: Store,
    holding: Store,
    index: u64,
    now_ms: u64,
}

impl Pair {
    fn run(&mut self, command: Command) -> Outcome {
        self.index += 1;
        let archived = run(&self.archiving, self.index, self.now_ms, command.clone());
        let held = run(&self.holding, self.index, self.now_ms, command.clone());
        assert_eq!(archived, held, "{command:?}");
        archived
    }

    /// Every read the API offers, from both stores, equal.
    fn same_reads(&self, orders: &[String], users: &[String]) {
        for id in orders {
            assert_eq!(
                self.archiving.get_order(&oid(id)).unwrap(),
                self.holding.get_order(&oid(id)).unwrap(),
                "{id}"
            );
        }
        for user in users {
            assert_eq!(
                self.archiving.list_user_orders(&uid(user), 1_000).unwrap(),
                self.holding.list_user_orders(&uid(user), 1_000).unwrap(),
                "{user}"
            );
            for s in ["s", "t"] {
                assert_eq!(
                    self.archiving.held(&sku(s), &uid(user)).unwrap(),
                    self.holding.held(&sku(s), &uid(user)).unwrap(),
                    "{s} {user}"
                );
            }
        }
        assert_eq!(
            self.archiving.digest().unwrap(),
            self.holding.digest().unwrap()
        );
        assert_eq!(export(&self.archiving), export(&self.holding));
    }
}

#[test]
fn archived_orders_answer_and_change_as_held_ones_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    let mut pair = Pair {
        archiving: Store::open(&db).unwrap(),
        holding: temp_store(),
        index: 0,
        now_ms: 1_000,
    };
    let ids: Vec<String> = (0..100).map(|i| format!("o{i:03}")).collect();
    let users: Vec<String> = (0..5).map(|i| format!("u{i}")).collect();
    pair.run(create("s", 1_000));
    pair.run(create("t", 1_000));
    for (i, id) in ids.iter().enumerate() {
        let lines: &[(&str, u64)] = if i % 2 == 0 {
            &[("s", 2)]
        } else {
            &[("s", 1), ("t", 3)]
        };
        let ttl = if i >= 90 { 5_000 } else { 600_000 };
        pair.run(order(id, &users[i % 5], lines, ttl));
    }
    pair.archiving.checkpoint().unwrap();
    let all_held = pair.archiving.records_in_memory();
    assert_eq!(all_held, pair.holding.records_in_memory());

    for id in &ids[..30] {
        pair.run(pay(id, Some("ref")));
    }
    for id in &ids[30..50] {
        pair.run(cancel(id));
    }
    // o090…o099 expire.
    pair.now_ms += 10_000;
    pair.run(Command::Expire);
    pair.archiving.checkpoint().unwrap();
    assert_eq!(
        pair.archiving.records_in_memory(),
        all_held - 60,
        "the paid, cancelled and expired orders left memory"
    );
    pair.same_reads(&ids, &users);

    // Commands that read archived orders.
    for (i, id) in ids[..10].iter().enumerate() {
        assert!(matches!(
            pair.run(refund(id, i % 2 == 0)),
            Outcome::Order { .. }
        ));
    }
    let again = order(&ids[40], &users[0], &[("s", 2)], 600_000);
    assert!(matches!(pair.run(again), Outcome::Order { .. }), "a replay");
    let conflicting = order(&ids[41], &users[1], &[("s", 9)], 600_000);
    assert!(matches!(pair.run(conflicting), Outcome::Refused(_)));
    assert!(matches!(pair.run(cancel(&ids[0])), Outcome::Refused(_)));
    // A new limit recounts the holds from every order, archived ones too.
    pair.run(Command::UpdateSku {
        sku: sku("s"),
        per_user_limit: Some(Some(1_000)),
        sale_window: None,
        request_tag: 0,
    });
    pair.archiving.checkpoint().unwrap();
    pair.same_reads(&ids, &users);

    let reopened_export = {
        let expected = export(&pair.archiving);
        let held = pair.archiving.records_in_memory();
        drop(pair.archiving);
        drop(db);
        let db = reopen(dir.path());
        let store = Store::open(&db).unwrap();
        assert_eq!(export(&store), expected);
        assert_eq!(store.records_in_memory(), held, "archived orders stay out");
        expected
    };

    // An install puts the closed orders straight into the archive.
    let installed = temp_store();
    installed.install_snapshot(&reopened_export[..]).unwrap();
    assert_eq!(export(&installed), reopened_export);
    assert!(installed.records_in_memory() < pair.holding.records_in_memory() - 50);
    for id in &ids {
        assert_eq!(
            installed.get_order(&oid(id)).unwrap(),
            pair.holding.get_order(&oid(id)).unwrap()
        );
    }
}

/// Log entry `index` (from 2; entry 1 creates the SKUs) of a workload in which every order
/// is archived twice: four new orders, a payment of those placed 20 entries before, a
/// refund of those paid 20 entries before that.
fn lifecycle_entry(index: u64) -> Batch {
    if index == 1 {
        return Batch {
            now_ms: 1_000,
            commands: (0..4).map(|n| create(&format!("S{n}"), 1 << 30)).collect(),
        };
    }
    let id = |entry: u64, n: u64| format!("o{entry}-{n}");
    let mut commands = Vec::new();
    for n in 0..4 {
        commands.push(order(&id(index, n), "u", &[(&format!("S{n}"), 1)], 600_000));
        if let Some(placed) = index.checked_sub(20).filter(|e| *e >= 2) {
            commands.push(pay(&id(placed, n), None));
        }
        if let Some(paid) = index.checked_sub(40).filter(|e| *e >= 2) {
            commands.push(refund(&id(paid, n), n % 2 == 0));
        }
    }
    Batch {
        now_ms: 1_000 + index,
        commands,
    }
}

fn apply_lifecycle(store: &Store, entries: std::ops::RangeInclusive<u64>) {
    for index in entries {
        let marker = index.to_string();
        store
            .apply(&[(index, &lifecycle_entry(index))], Some(marker.as_bytes()))
            .unwrap();
    }
}

/// An export reads the archived orders from sled as it goes, while checkpoints archive and
/// evict: each export must still be the state at its own marker, as a store that applied
/// the log up to there exports it.
#[test]
fn an_export_while_checkpoints_archive_is_the_state_at_its_marker() {
    const LAST: u64 = 1_200;
    let store = Arc::new(temp_store());
    let checkpoints = BackgroundCheckpoints::start(store.clone());
    let applier = {
        let store = store.clone();
        std::thread::spawn(move || {
            for from in (1..=LAST).step_by(10) {
                apply_lifecycle(&store, from..=from + 9);
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        })
    };
    let mut exports = Vec::new();
    while !applier.is_finished() {
        let mut bytes = Vec::new();
        let info = store.export_snapshot(&mut bytes).unwrap();
        let marker: u64 = info
            .marker
            .map_or(0, |m| String::from_utf8(m).unwrap().parse().unwrap());
        exports.push((marker, bytes));
    }
    applier.join().unwrap();
    checkpoints.stop();
    assert!(
        exports.len() >= 5,
        "only {} exports while apply ran",
        exports.len()
    );
    let reference = temp_store();
    let mut applied = 0;
    for (marker, bytes) in exports {
        apply_lifecycle(&reference, applied + 1..=marker);
        applied = applied.max(marker);
        assert!(export(&reference) == bytes, "the export at {marker}");
    }
}

/// A store written before the archive holds its closed orders in the orders tree: the first
/// checkpoint after it opens archives them, and they leave memory.
#[test]
fn closed_orders_of_an_earlier_release_are_archived_by_the_first_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let db = reopen(dir.path());
        let store = Store::open(&db).unwrap();
        let mut index = 1;
        let mut step = |command| {
            run(&store, index, 1_000, command);
            index += 1;
        };
        step(create("A", 1_000));
        for i in 0..300 {
            step(order(&format!("o{i:03}"), "u", &[("A", 1)], 600_000));
        }
        for i in 0..200 {
            step(pay(&format!("o{i:03}"), None));
        }
        store.checkpoint().unwrap();
        let expected = export(&store);
        drop(store);
        // The orders one per sled record, none archived: as an earlier release left them.
        db.open_tree("sm.0.archive").unwrap().clear().unwrap();
        assert_eq!(
            rewrite_as_one_record_each(&db, "sm.0.orders", &expected, ORDERS_TAG),
            300
        );
        expected
    };
    let db = reopen(dir.path());
    let store = Store::open(&db).unwrap();
    assert_eq!(export(&store), expected);
    let held = store.records_in_memory();
    store.checkpoint().unwrap();
    assert_eq!(store.records_in_memory(), held - 200);
    assert_eq!(db.open_tree("sm.0.archive").unwrap().len(), 200);
    assert_eq!(export(&store), expected);
    drop(store);
    let store = Store::open(&db).unwrap();
    assert_eq!(store.records_in_memory(), held - 200);
    assert_eq!(export(&store), expected);
}

/// The orders tree's tag in a snapshot (its position in the store's tree list, plus one).
const ORDERS_TAG: u8 = 2;
