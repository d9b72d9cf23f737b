//! Determinism, snapshot export/install and recovery of the sled store.

mod common;

use common::*;
use state_machine::{verify_snapshot, Batch, Command, Store};

/// A reproducible mixed workload (many users, few hot SKUs, expiries, refunds), from a seed.
fn workload(seed: u64, entries: usize) -> Vec<Batch> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut batches = vec![Batch {
        now_ms: 1_000,
        commands: vec![
            create("hot", 500),
            create_with("lim", 300, Some(3), None),
            create("cold", 50),
        ],
    }];
    let mut now = 1_000;
    for _ in 0..entries {
        now += next(400);
        let commands = (0..1 + next(8))
            .map(|_| {
                let id = format!("o{}", next(400));
                let user = format!("u{}", next(30));
                match next(10) {
                    0..=4 => {
                        let s = ["hot", "lim", "cold"][next(3) as usize];
                        order(&id, &user, &[(s, 1 + next(3))], 1_000 + next(3_000))
                    }
                    5 => pay(&id, Some("p1")),
                    6 => cancel(&id),
                    7 => refund(&id, next(2) == 0),
                    8 => restock("hot", &format!("r{}", next(5)), 1 + next(20) as i64),
                    _ if next(3) == 0 => Command::UpdateSku {
                        sku: sku("lim"),
                        per_user_limit: Some(Some(1 + next(4))),
                        sale_window: None,
                        request_tag: next(40),
                    },
                    _ => Command::Expire,
                }
            })
            .collect();
        batches.push(Batch {
            now_ms: now,
            commands,
        });
    }
    batches
}

fn apply_all(
    store: &Store,
    batches: &[Batch],
    first_index: u64,
) -> Vec<Vec<state_machine::Outcome>> {
    batches
        .iter()
        .enumerate()
        .flat_map(|(i, b)| {
            let index = first_index + i as u64;
            let marker = format!("applied-{index}");
            store.apply(&[(index, b)], Some(marker.as_bytes())).unwrap()
        })
        .collect()
}

#[test]
fn two_stores_fed_the_same_log_export_identical_bytes() {
    for seed in 1..=5 {
        let log = workload(seed, 300);
        let a = temp_store();
        let b = temp_store();
        apply_all(&a, &log, 1);
        // Group the same entries differently: one apply call carrying several entries.
        for (i, chunk) in log.chunks(7).enumerate() {
            let entries: Vec<(u64, &Batch)> = chunk
                .iter()
                .enumerate()
                .map(|(j, b)| ((i * 7 + j) as u64 + 1, b))
                .collect();
            let last = entries.last().unwrap().0;
            b.apply(&entries, Some(format!("applied-{last}").as_bytes()))
                .unwrap();
        }
        assert_eq!(export(&a), export(&b), "seed {seed}");
    }
}

#[test]
fn export_install_gives_identical_reads_and_next_results() {
    let log = workload(42, 400);
    let (head, tail) = log.split_at(250);
    let source = temp_store();
    apply_all(&source, head, 1);
    let bytes = export(&source);

    // The target has state of its own that the install must replace entirely.
    let target = temp_store();
    apply_all(&target, &workload(7, 50), 1);
    let info = target.install_snapshot(&bytes[..]).unwrap();
    assert_eq!(info.marker.as_deref(), Some(&b"applied-250"[..]));
    assert_eq!(target.marker().unwrap(), source.marker().unwrap());
    assert_eq!(export(&target), bytes);

    for name in ["hot", "lim", "cold"] {
        assert_eq!(
            target.get_sku(&sku(name)).unwrap(),
            source.get_sku(&sku(name)).unwrap()
        );
    }
    for i in 0..400 {
        let id = oid(&format!("o{i}"));
        assert_eq!(
            target.get_order(&id).unwrap(),
            source.get_order(&id).unwrap()
        );
    }
    assert_eq!(target.clock().unwrap(), source.clock().unwrap());
    assert_eq!(apply_all(&target, tail, 251), apply_all(&source, tail, 251));
    assert_eq!(export(&target), export(&source));
}

#[test]
fn a_damaged_snapshot_is_refused_and_changes_nothing() {
    let source = temp_store();
    apply_all(&source, &workload(3, 100), 1);
    let bytes = export(&source);
    let target = temp_store();
    apply_all(&target, &workload(9, 20), 1);
    let before = export(&target);

    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    let truncated = &bytes[..bytes.len() - 9];
    let mut trailing = bytes.clone();
    trailing.push(0);
    let mut wrong_version = bytes.clone();
    wrong_version[11] = 9;
    for bad in [
        &flipped[..],
        truncated,
        &trailing[..],
        &wrong_version[..],
        b"garbage",
    ] {
        assert!(target.install_snapshot(bad).is_err());
        assert_eq!(export(&target), before);
    }
}

/// `verify_snapshot` reads a backup without a store and accepts exactly what install accepts,
/// naming what is wrong.
#[test]
fn verify_checks_magic_version_count_and_checksum() {
    let source = temp_store();
    apply_all(&source, &workload(5, 100), 1);
    let mut bytes = Vec::new();
    let exported = source.export_snapshot(&mut bytes).unwrap();
    let verified = verify_snapshot(&bytes[..]).unwrap();
    assert_eq!(verified, exported);
    assert!(verified.records > 100, "{verified:?}");
    assert_eq!(verified.version, state_machine::SNAPSHOT_VERSION);

    // Damage inside the compressed body is made on its uncompressed form, then sealed again,
    // so that each check is reached on its own.
    let reseal = |mut body: Vec<u8>| {
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(&crc.to_be_bytes());
        compressed(&body)
    };
    let stream = uncompressed(&bytes);
    let body = stream[..stream.len() - 4].to_vec();
    let count_at = body.len() - 8;
    let mut wrong_count = body.clone();
    wrong_count[count_at + 7] ^= 1;
    let mut wrong_magic = bytes.clone();
    wrong_magic[0] = b'X';
    let mut wrong_version = bytes.clone();
    wrong_version[11] = 9;
    let mut flipped_crc = stream.clone();
    let last = flipped_crc.len() - 1;
    flipped_crc[last] ^= 1;
    let truncated = bytes[..bytes.len() - 9].to_vec();
    let mut trailing = bytes.clone();
    trailing.push(0);
    let mut plain_trailing = as_version_4(&bytes);
    plain_trailing.push(0);
    for (bad, why) in [
        (reseal(wrong_count), "record count does not match"),
        (wrong_magic, "not an inventory snapshot"),
        (wrong_version, "version 9 is not supported"),
        (compressed(&flipped_crc), "checksum mismatch"),
        (truncated, "truncated"),
        (trailing, "trailing bytes after checksum"),
        (plain_trailing, "trailing bytes after checksum"),
    ] {
        let err = verify_snapshot(&bad[..]).unwrap_err().to_string();
        assert!(err.contains(why), "expected {why:?}, got {err:?}");
        let target = temp_store();
        assert!(
            target.install_snapshot(&bad[..]).is_err(),
            "install took what verify refused ({why})"
        );
    }
}

/// A copy cut short anywhere is refused: in its records, and in the frame's last bytes (end
/// mark, checksum, the length after it), which the decoder alone would not miss.
#[test]
fn a_snapshot_cut_short_anywhere_is_refused() {
    let source = temp_store();
    apply_all(&source, &workload(12, 60), 1);
    let bytes = export(&source);
    let near_end = bytes.len() - 64..bytes.len();
    let spread = (0..bytes.len()).step_by(97);
    for cut in near_end.chain(spread) {
        assert!(
            verify_snapshot(&bytes[..cut]).is_err(),
            "{cut} of {} bytes read as whole",
            bytes.len()
        );
    }
}

/// Export compresses the body: the stored stream is a fraction of its content, and both
/// lengths are reported.
#[test]
fn snapshots_are_stored_compressed() {
    let source = temp_store();
    apply_all(&source, &workload(8, 400), 1);
    let mut bytes = Vec::new();
    let info = source.export_snapshot(&mut bytes).unwrap();
    assert_eq!(info.bytes, bytes.len() as u64);
    assert_eq!(info.content_bytes, uncompressed(&bytes).len() as u64);
    assert!(
        info.bytes * 2 < info.content_bytes,
        "stored {} bytes of {}",
        info.bytes,
        info.content_bytes
    );
}

/// A version-4 snapshot (body uncompressed), as backups and peers of earlier releases hold
/// them, still installs, into the same state.
#[test]
fn version_4_snapshots_still_install() {
    let source = temp_store();
    apply_all(&source, &workload(9, 150), 1);
    let bytes = export(&source);
    let plain = as_version_4(&bytes);
    let verified = verify_snapshot(&plain[..]).unwrap();
    assert_eq!(verified.version, 4);
    assert_eq!(verified.bytes, plain.len() as u64);
    assert_eq!(verified.content_bytes, plain.len() as u64);
    let target = temp_store();
    apply_all(&target, &workload(10, 20), 1);
    target.install_snapshot(&plain[..]).unwrap();
    assert_eq!(export(&target), bytes);
}

#[test]
fn reopening_recovers_state_and_marker() {
    let dir = tempfile::tempdir().unwrap();
    let log = workload(11, 200);
    let expected = {
        let db = reopen(dir.path());
        let store = Store::open(&db).unwrap();
        apply_all(&store, &log, 1);
        store.checkpoint().unwrap();
        export(&store)
    };
    let db = reopen(dir.path());
    let store = Store::open(&db).unwrap();
    assert_eq!(
        store.marker().unwrap().as_deref(),
        Some(format!("applied-{}", log.len()).as_bytes())
    );
    assert_eq!(export(&store), expected);
}

#[test]
fn reopening_after_an_install_keeps_the_installed_state() {
    let dir = tempfile::tempdir().unwrap();
    let source = temp_store();
    apply_all(&source, &workload(5, 100), 1);
    let bytes = export(&source);
    {
        let db = reopen(dir.path());
        let store = Store::open(&db).unwrap();
        apply_all(&store, &workload(6, 30), 1);
        store.install_snapshot(&bytes[..]).unwrap();
    }
    let db = reopen(dir.path());
    assert_eq!(export(&Store::open(&db).unwrap()), bytes);
}

#[test]
fn a_half_written_install_is_discarded_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let db = reopen(dir.path());
        let store = Store::open(&db).unwrap();
        apply_all(&store, &workload(8, 50), 1);
        // What a crash in the middle of an install leaves: trees of the next generation
        // with some records, and the generation pointer not yet switched.
        db.open_tree("sm.1.skus")
            .unwrap()
            .insert("junk", "x")
            .unwrap();
        store.checkpoint().unwrap();
        export(&store)
    };
    let db = reopen(dir.path());
    let store = Store::open(&db).unwrap();
    assert_eq!(export(&store), expected);
    assert!(!db.tree_names().iter().any(|n| n.as_ref() == b"sm.1.skus"));
}

#[test]
fn reopening_without_a_checkpoint_returns_to_the_last_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = workload(12, 120);
    let (first, second) = log.split_at(60);
    let at_checkpoint = {
        let db = reopen(dir.path());
        let store = Store::open(&db).unwrap();
        apply_all(&store, first, 1);
        assert_eq!(store.checkpointed_marker().unwrap(), None);
        store.checkpoint().unwrap();
        let checkpointed = Some(format!("applied-{}", first.len()).into_bytes());
        assert_eq!(store.checkpointed_marker().unwrap(), checkpointed);
        let at_checkpoint = export(&store);
        // Applied in memory only: a crash now loses it, and the log replays it.
        apply_all(&store, second, first.len() as u64 + 1);
        assert_ne!(export(&store), at_checkpoint);
        assert_eq!(store.checkpointed_marker().unwrap(), checkpointed);
        db.flush().unwrap();
        at_checkpoint
    };
    let db = reopen(dir.path());
    let store = Store::open(&db).unwrap();
    assert_eq!(
        store.marker().unwrap().as_deref(),
        Some(format!("applied-{}", first.len()).as_bytes())
    );
    assert_eq!(export(&store), at_checkpoint);
}

#[test]
fn checkpoints_taken_while_apply_runs_add_up_to_the_applied_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = workload(13, 400);
    let expected = {
        let db = reopen(dir.path());
        let store = std::sync::Arc::new(Store::open(&db).unwrap());
        let checkpoints = BackgroundCheckpoints::start(store.clone());
        apply_all(&store, &log, 1);
        checkpoints.stop();
        store.checkpoint().unwrap();
        export(&store)
    };
    let db = reopen(dir.path());
    assert_eq!(export(&Store::open(&db).unwrap()), expected);
}

#[test]
fn replicas_of_the_same_log_have_one_digest_and_any_difference_shows() {
    let log = workload(9, 200);
    let a = temp_store();
    let b = temp_store();
    apply_all(&a, &log, 1);
    apply_all(&b, &log, 1);
    let (marker, digest) = a.digest().unwrap();
    assert_eq!(marker.as_deref(), Some(&b"applied-201"[..]));
    assert_eq!(b.digest().unwrap(), (marker, digest));
    // A replica that caught up from a snapshot holds the same state.
    let c = temp_store();
    c.install_snapshot(&export(&a)[..]).unwrap();
    assert_eq!(c.digest().unwrap().1, digest);
    // One more unit on one replica is a different state.
    let one_more = Batch {
        now_ms: 1_000_000,
        commands: vec![restock("hot", "extra", 1)],
    };
    apply_all(&b, &[one_more], 202);
    assert_ne!(b.digest().unwrap().1, digest);
}
