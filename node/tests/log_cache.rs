#![allow(clippy::result_large_err)] // openraft fixes StorageError as the storage error type
//! The log keeps only its newest entries in memory: older ones are read back from their
//! segments, through truncations, purges and reopening, and a damaged record read back is
//! an error, never a wrong entry.

mod log_support;

use log_support::{append_saved, log_id};
use node::log_store::{LogOptions, LogStore};
use node::types::Entry;
use node::wal::segments;
use openraft::storage::{RaftLogReader, RaftLogStorage};
use openraft::EntryPayload;
use state_machine::Batch;
use std::path::Path;
use std::sync::Arc;

const CACHE_BYTES: u64 = 1024;

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Arc::new(Batch {
            // Varied, so records differ in length and content.
            now_ms: index * 7919 + term,
            commands: Vec::new(),
        })),
    }
}

fn options(cache_bytes: u64) -> LogOptions {
    LogOptions {
        segment_bytes: 1024,
        cache_bytes,
        ..LogOptions::default()
    }
}

fn open(dir: &Path, cache_bytes: u64) -> LogStore {
    LogStore::open(dir, options(cache_bytes)).expect("opens")
}

async fn read(store: &mut LogStore, range: std::ops::Range<u64>) -> Vec<Entry> {
    store.try_get_log_entries(range).await.expect("read")
}

/// Appends `entries` in appends of 1 to 7 entries, each awaited.
async fn append_in_pieces(store: &mut LogStore, entries: &[Entry]) {
    let mut at = 0;
    let mut size = 1;
    while at < entries.len() {
        let end = (at + size).min(entries.len());
        append_saved(store, entries[at..end].to_vec()).await;
        at = end;
        size = size % 7 + 1;
    }
}

#[tokio::test]
async fn entries_older_than_the_cache_are_read_back_from_their_segments() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().join("log");
    let options = options(CACHE_BYTES);
    let (gauge, read_back) = (options.cached_bytes.clone(), options.read_back.clone());
    let mut store = LogStore::open(&dir, options).expect("opens");
    let mut expected: Vec<Entry> = (1..=300).map(|i| entry(1, i)).collect();
    append_in_pieces(&mut store, &expected).await;

    let (held, bytes) = store.cached();
    assert!(bytes <= CACHE_BYTES, "{bytes} bytes cached");
    assert!(held > 0 && held < 100, "{held} of 300 entries cached");
    assert_eq!(gauge.get(), bytes as i64, "the metric shows the cache");
    assert!(segments::list(&dir).unwrap().len() > 2, "several segments");
    assert_eq!(read_back.get(), 0);
    assert_eq!(read(&mut store, 0..1000).await, expected);
    assert_eq!(
        read_back.get(),
        300 - held as u64,
        "every entry not held was read back"
    );
    assert_eq!(read(&mut store, 10..20).await, expected[9..19]);
    assert_eq!(read(&mut store, 150..290).await, expected[149..289]);

    // Entries replaced deep inside the evicted part: the old records must not come back.
    store.truncate(log_id(1, 100)).await.unwrap();
    expected.truncate(99);
    expected.extend((100..=180).map(|i| entry(2, i)));
    append_in_pieces(&mut store, &expected[99..]).await;
    assert_eq!(read(&mut store, 0..1000).await, expected);

    store.purge(log_id(2, 120)).await.unwrap();
    let kept = expected[120..].to_vec();
    assert_eq!(read(&mut store, 0..1000).await, kept);
    drop(store);

    for cache_bytes in [CACHE_BYTES, 0, u64::MAX] {
        let mut store = open(&dir, cache_bytes);
        assert!(store.cached().1 <= cache_bytes);
        assert_eq!(
            read(&mut store, 0..1000).await,
            kept,
            "reopened with a cache of {cache_bytes} bytes"
        );
    }
}

#[tokio::test]
async fn a_damaged_record_read_back_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().join("log");
    let mut store = open(&dir, 0);
    let expected: Vec<Entry> = (1..=20).map(|i| entry(1, i)).collect();
    append_in_pieces(&mut store, &expected).await;
    assert_eq!(store.cached(), (0, 0), "nothing cached");
    assert_eq!(read(&mut store, 1..21).await, expected);

    // The first record of the first segment is entry 1: flip a byte of its payload.
    let (_, first) = segments::list(&dir).unwrap().remove(0);
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[14] ^= 0x40;
    std::fs::write(&first, &bytes).unwrap();

    let err = store
        .try_get_log_entries(1..3)
        .await
        .expect_err("a damaged record is refused");
    assert!(
        err.to_string().contains(&segments::file_name(1)),
        "names the segment: {err}"
    );
    assert_eq!(read(&mut store, 2..21).await, expected[1..]);
}

/// An entry carrying `commands` SKU creations: about 20 bytes of record each.
fn heavy_entry(index: u64, commands: usize) -> Entry {
    let commands = (0..commands)
        .map(|i| state_machine::Command::CreateSku {
            sku: state_machine::SkuId::new(format!("sku-{index}-{i}")).unwrap(),
            stock: 1,
            per_user_limit: None,
            sale_window: None,
            request_tag: 0,
        })
        .collect();
    Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Normal(Arc::new(Batch {
            now_ms: index,
            commands,
        })),
    }
}

#[tokio::test]
async fn replication_reads_stop_at_a_mebibyte_but_always_carry_one_entry() {
    for cache_bytes in [u64::MAX, 0] {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(
            &dir.path().join("log"),
            LogOptions {
                cache_bytes,
                ..LogOptions::default()
            },
        )
        .expect("opens");
        // 20 entries of about 100 KB, then one of about 2 MB.
        let mut expected: Vec<Entry> = (1..=20).map(|i| heavy_entry(i, 5_000)).collect();
        expected.push(heavy_entry(21, 100_000));
        append_saved(&mut store, expected.clone()).await;

        let first = store.limited_get_log_entries(1, 22).await.unwrap();
        assert!(
            (5..20).contains(&first.len()),
            "{} entries in one read (cache {cache_bytes})",
            first.len()
        );
        assert_eq!(first, expected[..first.len()]);
        // Asked for the rest: up to the big one, which then comes alone.
        let next = first.len() as u64 + 1;
        let rest = store.limited_get_log_entries(next, 22).await.unwrap();
        assert_eq!(rest, expected[first.len()..20]);
        let big = store.limited_get_log_entries(21, 22).await.unwrap();
        assert_eq!(big, expected[20..]);
        // Unlimited reads (apply) get everything.
        assert_eq!(read(&mut store, 1..22).await, expected);
    }
}
