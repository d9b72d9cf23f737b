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

/// An export reads the archived orders from sled as it goes, while checkpoints go on
/// archiving: here, once the export has begun writing, a refund of orders it has not read
/// yet, new orders closed, and checkpoints that archive both. The export must still be the
/// state at its own marker, as a store that stopped there exports it.
#[test]
fn an_export_while_checkpoints_archive_is_the_state_at_its_marker() {
    let store = Arc::new(temp_store());
    let reference = temp_store();
    let mut index = 0;
    let mut apply = |store: &Store, reference: Option<&Store>, commands: Vec<Command>| {
        index += 1;
        let batch = Batch {
            now_ms: 1_000 + index,
            commands,
        };
        let marker = index.to_string();
        for target in std::iter::once(store).chain(reference) {
            target
                .apply(&[(index, &batch)], Some(marker.as_bytes()))
                .unwrap();
        }
    };
    let ids: Vec<String> = (0..4_000).map(|i| format!("o{i:04}")).collect();
    apply(&store, Some(&reference), vec![create("S", 1 << 30)]);
    for part in ids.chunks(500) {
        let placed = part.iter().map(|id| order(id, "u", &[("S", 1)], 600_000));
        apply(&store, Some(&reference), placed.collect());
        apply(
            &store,
            Some(&reference),
            part.iter().map(|id| pay(id, None)).collect(),
        );
    }
    store.checkpoint().unwrap();
    let expected = export(&reference);

    // The export's first bytes reach the writer after about 64 KiB of records (one LZ4
    // block), long before the orders from o3000 on.
    let during = {
        let store = store.clone();
        let ids = ids.clone();
        move || {
            apply(
                &store,
                None,
                ids[3_000..].iter().map(|id| refund(id, true)).collect(),
            );
            let fresh: Vec<String> = (0..500).map(|i| format!("p{i:04}")).collect();
            let placed = fresh.iter().map(|id| order(id, "u", &[("S", 1)], 600_000));
            apply(&store, None, placed.collect());
            apply(&store, None, fresh.iter().map(|id| cancel(id)).collect());
            store.checkpoint().unwrap();
        }
    };
    let mut bytes = Vec::new();
    let info = store
        .export_snapshot(OnFirstWrite {
            out: &mut bytes,
            first: Some(Box::new(during)),
        })
        .unwrap();
    assert_eq!(info.marker, Some(b"17".to_vec()));
    assert!(
        bytes == expected,
        "the export is not the state at its marker"
    );
    assert!(
        export(&store) != expected,
        "the changes during the export were applied"
    );
}

/// An install replaces the generation whose archive an export under way reads: it waits
/// for the export to end, which then holds the state it began with.
#[test]
fn an_install_waits_for_an_export_under_way() {
    let store = Arc::new(temp_store());
    let mut commands = vec![create("S", 1 << 30)];
    let ids: Vec<String> = (0..4_000).map(|i| format!("o{i:04}")).collect();
    commands.extend(ids.iter().map(|id| order(id, "u", &[("S", 1)], 600_000)));
    store
        .apply(
            &[(
                1,
                &Batch {
                    now_ms: 1_000,
                    commands,
                },
            )],
            None,
        )
        .unwrap();
    let paid = ids.iter().map(|id| pay(id, None)).collect();
    store
        .apply(
            &[(
                2,
                &Batch {
                    now_ms: 1_001,
                    commands: paid,
                },
            )],
            None,
        )
        .unwrap();
    store.checkpoint().unwrap();
    let expected = export(&store);
    let other = {
        let other = temp_store();
        run(&other, 1, 1_000, create("T", 1));
        export(&other)
    };
    let installing = std::sync::Mutex::new(None);
    let mut bytes = Vec::new();
    store
        .export_snapshot(OnFirstWrite {
            out: &mut bytes,
            first: Some(Box::new(|| {
                let (store, other) = (store.clone(), other.clone());
                let install = std::thread::spawn(move || store.install_snapshot(&other[..]));
                std::thread::sleep(std::time::Duration::from_millis(200));
                assert!(!install.is_finished(), "the install did not wait");
                *installing.lock().unwrap() = Some(install);
            })),
        })
        .unwrap();
    assert!(
        bytes == expected,
        "the export is not the state it began with"
    );
    let install = installing.lock().unwrap().take().unwrap();
    install.join().unwrap().unwrap();
    assert_eq!(export(&store), other);
}

/// A writer that runs `first` before its first write.
struct OnFirstWrite<'a> {
    out: &'a mut Vec<u8>,
    first: Option<Box<dyn FnOnce() + 'a>>,
}

impl std::io::Write for OnFirstWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(first) = self.first.take() {
            first();
        }
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
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
