#![allow(clippy::result_large_err)] // openraft fixes StorageError as the storage error type
//! Crashes of the Raft log: whatever is left of the files after a crash, recovery must give
//! back a prefix of what was written that holds everything reported saved, or refuse to start
//! when damage sits inside data that was synced.

mod log_support;

use log_support::{append_saved, log_id};
use node::log_store::{LogOptions, LogStore};
use node::types::{Entry, Vote};
use node::wal::frame::{self, Read};
use node::wal::segments;
use openraft::storage::{RaftLogReader, RaftLogStorage};
use openraft::EntryPayload;
use state_machine::Batch;
use std::path::{Path, PathBuf};

fn entry(term: u64, index: u64) -> Entry {
    let payload = if index.is_multiple_of(3) {
        EntryPayload::Blank
    } else {
        // Sizes differ, so records do not all line up alike.
        EntryPayload::Normal(std::sync::Arc::new(Batch {
            now_ms: index * 7919,
            commands: Vec::new(),
        }))
    };
    Entry {
        log_id: log_id(term, index),
        payload,
    }
}

fn options(segment_bytes: u64) -> LogOptions {
    LogOptions {
        segment_bytes,
        // A few entries: what recovery leaves is read back from the files, as after a
        // restart under load.
        cache_bytes: 64,
        ..LogOptions::default()
    }
}

async fn all_entries(store: &mut LogStore) -> Vec<Entry> {
    store.try_get_log_entries(..).await.expect("read")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        std::fs::copy(item.path(), to.join(item.file_name())).unwrap();
    }
}

fn last_segment(dir: &Path) -> PathBuf {
    segments::list(dir).unwrap().pop().expect("a segment").1
}

/// Offsets at which the records of a segment start, and where they end (zeros follow).
fn record_starts(bytes: &[u8]) -> (Vec<usize>, usize) {
    let mut starts = Vec::new();
    let mut at = 0;
    while let Read::Record { next, .. } = frame::read_at(bytes, at) {
        starts.push(at);
        at = next;
    }
    assert!(
        bytes[at..].iter().all(|b| *b == 0),
        "the test's segment is whole records, then zeros"
    );
    (starts, at)
}

/// A log of `n` entries in batches of three, with small segments.
async fn written_log(dir: &Path, n: u64) -> Vec<Entry> {
    let mut store = LogStore::open(dir, options(200)).unwrap();
    let written: Vec<Entry> = (0..n).map(|i| entry(1, i)).collect();
    for chunk in written.chunks(3) {
        append_saved(&mut store, chunk.to_vec()).await;
    }
    written
}

#[tokio::test]
async fn a_cut_anywhere_in_the_last_record_leaves_the_saved_prefix() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("log");
    let written = written_log(&dir, 40).await;
    assert!(segments::list(&dir).unwrap().len() > 2, "several segments");
    let bytes = std::fs::read(last_segment(&dir)).unwrap();
    let (starts, end) = record_starts(&bytes);
    let last_start = *starts.last().unwrap();

    // A cut inside the record, and one that keeps all of it but none of the zeros after it
    // (which recovery must take as whole).
    for cut in last_start..=end {
        let trial = base.path().join(format!("cut-{cut}"));
        copy_dir(&dir, &trial);
        let seg = last_segment(&trial);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut as u64)
            .unwrap();

        let mut store = LogStore::open(&trial, options(200)).expect("a torn tail is cut");
        let recovered = all_entries(&mut store).await;
        let kept = if cut == end {
            written.len()
        } else {
            written.len() - 1
        };
        assert_eq!(recovered, written[..kept], "cut at {cut}");

        // The cut is for good: a new append lands right after the prefix, and survives.
        let next = kept as u64;
        append_saved(&mut store, vec![entry(2, next)]).await;
        drop(store);
        let mut store = LogStore::open(&trial, options(200)).expect("reopens");
        let after = all_entries(&mut store).await;
        assert_eq!(after.len(), kept + 1, "cut at {cut}");
        assert_eq!(after[kept], entry(2, next), "cut at {cut}");
        // Closed first: an open log may be filling its spare segment in the directory.
        drop(store);
        std::fs::remove_dir_all(&trial).unwrap();
    }
}

#[tokio::test]
async fn a_flipped_bit_in_the_last_record_drops_only_that_record() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("log");
    let written = written_log(&dir, 20).await;
    let seg_name = last_segment(&dir).file_name().unwrap().to_owned();
    let bytes = std::fs::read(last_segment(&dir)).unwrap();
    let (starts, end) = record_starts(&bytes);
    let last_start = *starts.last().unwrap();

    for at in last_start..end {
        for bit in [0, 3, 7] {
            let trial = base.path().join(format!("flip-{at}-{bit}"));
            copy_dir(&dir, &trial);
            let mut damaged = bytes.clone();
            damaged[at] ^= 1 << bit;
            std::fs::write(trial.join(&seg_name), &damaged).unwrap();
            let mut store = LogStore::open(&trial, options(200)).expect("opens");
            assert_eq!(
                all_entries(&mut store).await,
                written[..written.len() - 1],
                "flip {at}:{bit}"
            );
            drop(store);
            std::fs::remove_dir_all(&trial).unwrap();
        }
    }
}

#[tokio::test]
async fn damage_before_the_tail_refuses_to_start_and_names_the_place() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("log");
    written_log(&dir, 40).await;
    let files = segments::list(&dir).unwrap();

    // In the last segment, with a valid record after the damage.
    let (_, last) = files.last().unwrap();
    let bytes = std::fs::read(last).unwrap();
    let (starts, _) = record_starts(&bytes);
    assert!(starts.len() >= 2);
    let trial = base.path().join("middle");
    copy_dir(&dir, &trial);
    let mut damaged = bytes.clone();
    damaged[starts[0] + frame::HEADER_BYTES] ^= 0x10;
    std::fs::write(trial.join(last.file_name().unwrap()), &damaged).unwrap();
    let err = LogStore::open(&trial, options(200)).err().expect("refused");
    let text = err.to_string();
    assert!(text.contains("corrupt"), "{text}");
    assert!(
        text.contains(last.file_name().unwrap().to_str().unwrap()),
        "{text}"
    );
    assert!(text.contains(&format!("byte {}", starts[0])), "{text}");

    // In an older segment, even in its last record.
    let (_, first) = &files[0];
    let trial = base.path().join("older");
    copy_dir(&dir, &trial);
    let mut bytes = std::fs::read(first).unwrap();
    let (_, end) = record_starts(&bytes);
    bytes[end - 1] ^= 0x01;
    std::fs::write(trial.join(first.file_name().unwrap()), &bytes).unwrap();
    let err = LogStore::open(&trial, options(200)).err().expect("refused");
    assert!(err
        .to_string()
        .contains(first.file_name().unwrap().to_str().unwrap()));
}

#[tokio::test]
async fn truncate_purge_vote_and_committed_survive_a_restart() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("log");
    let mut store = LogStore::open(&dir, options(256)).unwrap();
    let vote = Vote::new(3, 2);
    store.save_vote(&vote).await.unwrap();
    for i in 0..30 {
        append_saved(&mut store, vec![entry(1, i)]).await;
    }
    // A conflict: entries from 25 on are replaced by a newer leader's.
    store.truncate(log_id(1, 25)).await.unwrap();
    append_saved(&mut store, vec![entry(3, 25), entry(3, 26)]).await;
    store.save_committed(Some(log_id(3, 26))).await.unwrap();
    let segments_before = segments::list(&dir).unwrap().len();
    store.purge(log_id(1, 20)).await.unwrap();
    // A vote waits for everything queued before it, the purge included.
    store.save_vote(&Vote::new(4, 2)).await.unwrap();
    let segments_after = segments::list(&dir).unwrap().len();
    assert!(
        segments_after < segments_before,
        "purge deleted whole segments ({segments_before} -> {segments_after})"
    );
    drop(store);

    let mut store = LogStore::open(&dir, options(256)).unwrap();
    assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(4, 2)));
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(3, 26)));
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 20)));
    assert_eq!(state.last_log_id, Some(log_id(3, 26)));
    let expected: Vec<Entry> = (21..25)
        .map(|i| entry(1, i))
        .chain([entry(3, 25), entry(3, 26)])
        .collect();
    assert_eq!(all_entries(&mut store).await, expected);

    // A purge past the last entry leaves an empty log that still knows where it stands.
    store.purge(log_id(3, 26)).await.unwrap();
    store.save_vote(&Vote::new(4, 2)).await.unwrap();
    drop(store);
    let mut store = LogStore::open(&dir, options(256)).unwrap();
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(3, 26)));
    assert_eq!(state.last_log_id, Some(log_id(3, 26)));
    assert!(all_entries(&mut store).await.is_empty());
}

#[tokio::test]
async fn a_leaders_vote_comes_back_without_its_leadership() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("log");
    let mut store = LogStore::open(&dir, options(256)).unwrap();
    store.save_vote(&Vote::new_committed(7, 3)).await.unwrap();
    // Until a restart the vote reads back exactly as saved (openraft's contract).
    assert_eq!(
        store.read_vote().await.unwrap(),
        Some(Vote::new_committed(7, 3))
    );
    drop(store);
    let mut store = LogStore::open(&dir, options(256)).unwrap();
    // Same term and candidate, so no other vote in term 7; but no longer a leader's.
    assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(7, 3)));
}

#[tokio::test]
async fn a_damaged_vote_file_refuses_to_start() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("log");
    let mut store = LogStore::open(&dir, options(256)).unwrap();
    store.save_vote(&Vote::new(5, 1)).await.unwrap();
    drop(store);
    let mut bytes = std::fs::read(dir.join("vote")).unwrap();
    let end = bytes.len();
    bytes[end - 1] ^= 0x40;
    std::fs::write(dir.join("vote"), bytes).unwrap();
    let err = LogStore::open(&dir, options(256)).err().expect("refused");
    assert!(err.to_string().contains("vote"), "{err}");
}

#[tokio::test]
async fn losing_unsynced_bytes_keeps_everything_reported_saved() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("log");
    let lossy = LogOptions {
        segment_bytes: 256,
        lose_unsynced_on_open: true,
        ..LogOptions::default()
    };
    let mut store = LogStore::open(&dir, lossy.clone()).unwrap();
    let written: Vec<Entry> = (0..20).map(|i| entry(1, i)).collect();
    for e in &written {
        append_saved(&mut store, vec![e.clone()]).await;
    }
    // Written, never waited for: no fdatasync covers it, so a power cut may take it.
    store.save_committed(Some(log_id(1, 19))).await.unwrap();
    // Give the IO thread time to write it to the page cache.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    drop(store);

    let mut store = LogStore::open(&dir, lossy).unwrap();
    assert_eq!(all_entries(&mut store).await, written);
    assert_eq!(
        store.read_committed().await.unwrap(),
        None,
        "the unsynced record is gone"
    );
}

#[tokio::test]
async fn segments_are_zeros_that_records_overwrite_and_a_torn_spare_is_ignored() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("log");
    let written = written_log(&dir, 40).await;
    for (_, path) in segments::list(&dir).unwrap() {
        let bytes = std::fs::read(&path).unwrap();
        // Filled to its size before the first record, so no sync had to grow it.
        assert!(
            bytes.len() >= 200,
            "{} is {} bytes",
            path.display(),
            bytes.len()
        );
        record_starts(&bytes);
    }

    // A crash while the next segment was being filled leaves a half-written spare: not a
    // segment, so recovery never reads it, and the next spare replaces it.
    std::fs::write(dir.join(node::wal::spare::SPARE_NAME), b"\x07 half filled").unwrap();
    let mut store = LogStore::open(&dir, options(200)).unwrap();
    assert_eq!(all_entries(&mut store).await, written);
    append_saved(&mut store, vec![entry(2, 40), entry(2, 41)]).await;
    drop(store);
    let spare = std::fs::read(dir.join(node::wal::spare::SPARE_NAME)).unwrap();
    assert!(spare.len() == 200 && spare.iter().all(|b| *b == 0));
    let mut store = LogStore::open(&dir, options(200)).unwrap();
    let after = all_entries(&mut store).await;
    assert_eq!(after.len(), 42);
    assert_eq!(after[..40], written[..]);
}
