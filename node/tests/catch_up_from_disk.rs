//! A follower that fell far behind is fed from the leader's log files, over a slow link. With
//! no log cache (`storage.log_cache_mib = 0`) every entry the leader sends is read back from
//! its segments, in reads capped by bytes; the follower must catch up well within the test's
//! patience, end with the same state as the others (their digests), and the leader's
//! read-back counter must show that the entries came from disk.
//!
//! Every node sits behind a relay of 8 MiB/s, so a 1 MiB AppendEntries takes about 125 ms,
//! past its deadline (openraft's: the 50 ms heartbeat). Only appends cut to the peer's
//! shrinking budget (`append_budget`) arrive in time; without it the follower never moves.

mod common;

use common::scrape::*;
use common::*;
use std::time::Instant;

const READ_BACK: &str = "flashstock_node_log_entries_read_back_total";
const LINK_BYTES_PER_SEC: u64 = 8 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_follower_catches_up_from_the_log_on_disk() {
    let mut cluster = Cluster::configure(3, |c| {
        c.storage.log_cache_mib = 0;
        c.metrics_addr = Some(free_metrics_addr());
        // No snapshot may stand in for the entries: the follower must be sent every one.
        c.raft.snapshot_logs_since_last = 1_000_000;
        c.raft.snapshot_log_mib_since_last = cluster_config::RaftTiming::MAX_SNAPSHOT_LOG_MIB;
    });
    cluster.behind_slow_links(LINK_BYTES_PER_SEC).await;
    cluster.spawn_all();
    let client = cluster.client();
    let leader = cluster.leader(&[1, 2, 3]).await;
    let behind = if leader == 3 { 2 } else { 3 };
    let leader_metrics = cluster.configs[leader as usize - 1].metrics_addr.unwrap();
    client.submit(&[create("A", 10_000_000)]).await.unwrap();

    cluster.pause(behind);
    // About 9 MiB of log in 120 entries of 600 orders: past the AppendEntries cap (8 MiB)
    // in fewer entries than openraft asks for at once (300), and many times a replication
    // read's budget (1 MiB). A reader that ignored either limit never catches the follower up.
    let mut last = 0;
    for entry in 0..120 {
        let orders: Vec<_> = (0..600)
            .map(|i| {
                order(
                    &format!("order-{entry:04}-{i:04}-padded-to-a-realistic-length"),
                    &format!("user-{i:04}"),
                    "A",
                    1,
                )
            })
            .collect();
        let (outcomes, index) = client.submit(&orders).await.unwrap();
        assert_eq!(outcomes.len(), orders.len());
        last = index;
    }
    cluster.wait_applied(&[leader], last).await;
    let read_before = scrape(leader_metrics)
        .get(READ_BACK)
        .copied()
        .unwrap_or(0.0);

    let resumed = Instant::now();
    cluster.resume(behind);
    cluster.wait_applied(&[1, 2, 3], last).await;
    eprintln!(
        "node {behind} caught up {last} entries in {:?}",
        resumed.elapsed()
    );

    let read_after = value(&scrape(leader_metrics), READ_BACK);
    assert!(
        read_after - read_before >= 100.0,
        "the leader read back {} entries while feeding node {behind}; expected the 120 it missed",
        read_after - read_before
    );
    cluster.assert_same_state(&[1, 2, 3], last).await;
    cluster.stop_all();
}
