//! Snapshots by log size: with a count of entries too high to matter, a log that outgrows
//! `raft.snapshot_log_mib_since_last` is snapshotted and purged on every node, and a log
//! below it is left alone.

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
    // The trigger looks once a second.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    for id in 1..=3 {
        let s = status(&cluster, id).await;
        assert_eq!(
            s.snapshot_index, 0,
            "node {id} snapshotted a small log: {s:?}"
        );
    }

    // Several MiB, in more entries than openraft purges at once (64).
    let index = place_batches(&client, "big", 80, 500).await;
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
