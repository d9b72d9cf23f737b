//! Snapshots by log size: with a count of entries too high to matter, a log that outgrows
//! `raft.snapshot_log_mib_since_last` is snapshotted and purged on every node, and a log
//! below it is left alone; and a snapshot past that size is not rebuilt for a count of
//! entries.

mod common;

use common::*;
use proto::admin::StatusReply;
use std::time::{Duration, Instant};

/// Submits `batches` entries of `per_batch` orders each (distinct users, so no per-user
/// limit applies), returning the last entry's index.
async fn place_batches(
    client: &node::client::Client,
    prefix: &str,
    batches: usize,
    per_batch: usize,
) -> u64 {
    let mut last = 0;
    for b in 0..batches {
        let orders: Vec<_> = (0..per_batch)
            .map(|i| order(&format!("{prefix}-{b}-{i}"), &format!("u{i}"), "A", 1))
            .collect();
        let (outcomes, index) = client.submit(&orders).await.unwrap();
        assert_eq!(outcomes.len(), per_batch);
        last = index;
    }
    last
}

async fn status(cluster: &Cluster, id: u64) -> StatusReply {
    node::client::status(&cluster.addr(id), Duration::from_secs(1))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_larger_than_the_configured_bytes_is_snapshotted_and_purged() {
    let mut cluster = Cluster::start(3, |c| {
        c.raft.snapshot_logs_since_last = 1_000_000;
        c.raft.snapshot_log_mib_since_last = 1;
        c.raft.max_in_snapshot_log_to_keep = 0;
    });
    let client = cluster.client();
    cluster.leader(&[1, 2, 3]).await;
    client.submit(&[create("A", 10_000_000)]).await.unwrap();

    // About 100 KB of log: well under a MiB.
    let index = place_batches(&client, "small", 4, 500).await;
    cluster.wait_applied(&[1, 2, 3], index).await;
    // The trigger looks every 100 ms.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for id in 1..=3 {
        let s = status(&cluster, id).await;
        assert_eq!(
            s.snapshot_index, 0,
            "node {id} snapshotted a small log: {s:?}"
        );
    }

    // About 2 MiB of log (80,000 orders): past every voter's scaled floor (at most 1.5 MiB),
    // each reaching it after more entries than openraft purges at once (64).
    let index = place_batches(&client, "big", 160, 500).await;
    cluster.wait_applied(&[1, 2, 3], index).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in 1..=3 {
        loop {
            let s = status(&cluster, id).await;
            if s.snapshot_index > 0 && s.purged_index > 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} never snapshotted and purged its log: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    cluster.stop_all();
}

/// Past `raft.snapshot_log_mib_since_last`, a count of entries no longer rebuilds the
/// snapshot: only a log that outgrows it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_past_the_size_floor_is_not_rebuilt_for_a_count_of_entries() {
    let mut cluster = Cluster::start(3, |c| {
        c.raft.snapshot_logs_since_last = 20;
        c.raft.snapshot_log_mib_since_last = 1;
    });
    let client = cluster.client();
    cluster.leader(&[1, 2, 3]).await;
    client.submit(&[create("A", 10_000_000)]).await.unwrap();
    // 40,000 orders: a state of several MiB.
    let index = place_batches(&client, "big", 80, 500).await;
    cluster.wait_applied(&[1, 2, 3], index).await;

    // A snapshot of all of it on every node, so the log after each is empty.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut built = Vec::new();
    for id in 1..=3u64 {
        let at = loop {
            let out = cluster.invctl(&["snapshot", "--node", &id.to_string()], &[id]);
            let s = status(&cluster, id).await;
            if s.snapshot_index >= index {
                break s.snapshot_index;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} built no snapshot at {index}: {s:?}, {}",
                String::from_utf8_lossy(&out.stderr)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let snapshots = cluster.configs[id as usize - 1].data_dir.join("snapshots");
        let current: serde_json::Value =
            serde_json::from_slice(&std::fs::read(snapshots.join("current.json")).unwrap())
                .unwrap();
        let bytes = std::fs::metadata(snapshots.join(current["file"].as_str().unwrap()))
            .unwrap()
            .len();
        assert!(bytes > 1 << 20, "node {id}: a snapshot of {bytes} bytes");
        built.push(at);
    }

    // Twice the count, in entries of one order: a few KB of log.
    let mut last = 0;
    for i in 0..40 {
        let (_, at) = client
            .submit(&[order(&format!("small-{i}"), "u", "A", 1)])
            .await
            .unwrap();
        last = at;
    }
    cluster.wait_applied(&[1, 2, 3], last).await;
    // The trigger looks every 100 ms.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for id in 1..=3u64 {
        let s = status(&cluster, id).await;
        assert_eq!(
            s.snapshot_index,
            built[id as usize - 1],
            "node {id} rebuilt its snapshot for {} entries: {s:?}",
            last - index
        );
    }
    cluster.stop_all();
}

/// Submits one order per entry until the log's last index reaches `to`; returns that index.
async fn entries_up_to(client: &node::client::Client, prefix: &str, to: u64) -> u64 {
    let mut index = 0;
    let mut i = 0;
    while index < to {
        let (_, at) = client
            .submit(&[order(&format!("{prefix}-{i}"), "u", "A", 1)])
            .await
            .unwrap();
        index = at;
        i += 1;
    }
    index
}

/// The voters read the same log, so each scales the count by its place among them (ids 1, 2
/// and 3: 30, 35 and 40 entries): their snapshots follow one another, never all at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_snapshot_one_after_another() {
    let mut cluster = Cluster::start(3, |c| {
        c.raft.snapshot_logs_since_last = 30;
    });
    let client = cluster.client();
    cluster.leader(&[1, 2, 3]).await;
    client.submit(&[create("A", 10_000_000)]).await.unwrap();

    let index = entries_up_to(&client, "first", 37).await;
    assert!(index < 40, "the log ran ahead to {index}");
    cluster.wait_applied(&[1, 2, 3], index).await;
    // The trigger looks every 100 ms.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let snapshots = |replies: &[StatusReply]| -> Vec<u64> {
        replies.iter().map(|s| s.snapshot_index).collect()
    };
    let mut replies = Vec::new();
    for id in 1..=3 {
        replies.push(status(&cluster, id).await);
    }
    let at = snapshots(&replies);
    assert!(at[0] >= 30, "node 1 (threshold 30) at {index}: {at:?}");
    assert!(at[1] >= 35, "node 2 (threshold 35) at {index}: {at:?}");
    assert_eq!(at[2], 0, "node 3 (threshold 40) at {index}: {at:?}");

    let index = entries_up_to(&client, "second", 41).await;
    cluster.wait_applied(&[1, 2, 3], index).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = status(&cluster, 3).await;
        if s.snapshot_index > 0 {
            assert!(s.snapshot_index >= 40, "{s:?}");
            break;
        }
        assert!(Instant::now() < deadline, "node 3 never snapshotted: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.stop_all();
}
