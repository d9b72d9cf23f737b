//! A node whose disk fills up. Each node's data dir is a small tmpfs of its own. Once a
//! follower's or the leader's is full, its first failed write (a checkpoint, or the vote in an election)
//! stops it with the reason; the other two go on acknowledging orders; a restart on the
//! still-full disk stops again with the reason; and once space is freed a restart brings it
//! back with every acknowledged order and the same state as the others. Mounting needs root
//! (CI runs as root); elsewhere the tests say so and skip.

mod common;

use common::*;
use state_machine::{OrderId, SkuId};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant};

/// Room for the log's active and spare segments (64 MiB each) and sled, with some to spare.
const DISK_MIB: u64 = 200;

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, mib: u64) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Process::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Process::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes a ballast file in `dir` until the file system refuses more.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("ballast");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xA5u8; 1 << 20];
    loop {
        if let Err(e) = file.write_all(&chunk) {
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
            break;
        }
    }
    // Also the last partial pages.
    while file.write_all(&[0u8; 4096]).is_ok() {}
    path
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// Three nodes, each on a tmpfs of its own, placing single-unit orders for one SKU.
struct OnSmallDisks {
    // Dropped in this order: the nodes stop before their disks are unmounted.
    cluster: Cluster,
    client: node::client::Client,
    disks: Vec<Mount>,
    _base: tempfile::TempDir,
    placed: usize,
    last: u64,
}

impl OnSmallDisks {
    /// `None` (the test skips, saying so) unless running as root.
    async fn start(checkpoint_interval_ms: u64) -> Option<Self> {
        if !is_root() {
            eprintln!("skipped: mounting a tmpfs per node needs root (CI runs as root)");
            return None;
        }
        let base = tempfile::tempdir().unwrap();
        let disks: Vec<Mount> = (1..=3)
            .map(|id| {
                Mount::tmpfs(&base.path().join(format!("disk{id}")), DISK_MIB)
                    .expect("mount a tmpfs (root is needed)")
            })
            .collect();
        let dirs: Vec<PathBuf> = disks.iter().map(|m| m.0.clone()).collect();
        let mut cluster = Cluster::configure(3, |c| {
            c.data_dir = dirs[c.id as usize - 1].join("data");
            c.storage.checkpoint_interval_ms = checkpoint_interval_ms;
            // openraft times an AppendEntries out after one heartbeat interval, and a
            // restarted node takes in MiB-sized ones while it catches up: give this debug
            // build the production ratio's room rather than the tests' fast 50 ms.
            c.raft.heartbeat_ms = 150;
            c.raft.election_timeout_min_ms = 900;
            c.raft.election_timeout_max_ms = 1800;
        });
        cluster.spawn_all();
        // Patient: a restarted node that catches up in MiB-sized AppendEntries slower than
        // one heartbeat can call an election or two in this debug build (openraft 0.9 has no
        // pre-vote); what these tests hold to is that nothing acknowledged is lost.
        let client = node::client::Client::new(cluster.addrs(), Duration::from_secs(60));
        cluster.leader(&[1, 2, 3]).await;
        client.submit(&[create("A", 10_000_000)]).await.unwrap();
        Some(Self {
            cluster,
            client,
            disks,
            _base: base,
            placed: 0,
            last: 0,
        })
    }

    /// Places `count` more orders; the client follows the leader and retries, and every
    /// order must be acknowledged.
    async fn place(&mut self, count: usize) {
        let orders: Vec<_> = (self.placed..self.placed + count)
            .map(|i| order(&order_id(i), &format!("user-{i}"), "A", 1))
            .collect();
        let (outcomes, index) = match self.client.submit(&orders).await {
            Ok(answer) => answer,
            Err(e) => {
                let mut report = String::new();
                for id in 1..=3 {
                    let status =
                        node::client::status(&self.cluster.addr(id), Duration::from_secs(2)).await;
                    let log = self.cluster.log(id);
                    let tail: Vec<&str> = log
                        .lines()
                        .rev()
                        .filter(|l| !l.starts_with(' '))
                        .take(15)
                        .collect();
                    report += &format!(
                        "\nnode {id}: {status:?}\n{}",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
                panic!("orders {} not acknowledged: {e}{report}", self.placed);
            }
        };
        assert_eq!(outcomes.len(), count);
        self.placed += count;
        self.last = index;
    }

    fn disk(&self, id: u64) -> &Path {
        &self.disks[id as usize - 1].0
    }

    /// Places orders until node `id` has stopped and two seconds more, and checks that it
    /// said why.
    async fn place_until_stopped(&mut self, id: u64, reason: &str) {
        let started = Instant::now();
        let mut stopped_at = None;
        while stopped_at.is_none_or(|at: Instant| at.elapsed() < Duration::from_secs(2)) {
            self.place(500).await;
            if stopped_at.is_none() && self.cluster.exited(id).is_some() {
                stopped_at = Some(Instant::now());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "node {id} kept running on a full disk; its log:\n{}",
                self.cluster.log(id)
            );
        }
        let log = self.cluster.log(id);
        assert!(
            log.contains("No space left on device")
                && log.contains(reason)
                && log.contains("the node stopped"),
            "node {id} stopped without saying why ({reason}):\n{log}"
        );
    }

    /// Starts node `id` on its still-full disk: it must stop again, saying why.
    fn restart_while_full(&mut self, id: u64) {
        self.cluster.restart(id);
        let status = self.cluster.wait_exit(id, Duration::from_secs(30));
        let log = self.cluster.log(id);
        assert!(
            status.is_some_and(|s| !s.success()),
            "node {id} ran on a full disk after a restart: {status:?}\n{log}"
        );
        assert!(log.contains("No space left on device"), "{log}");
    }

    /// Frees node `id`'s disk and starts it: it must catch up to the others' state and, like
    /// them, hold every order placed.
    async fn free_and_restart(mut self, id: u64, ballast: &Path) {
        std::fs::remove_file(ballast).unwrap();
        self.cluster.restart(id);
        self.place(10).await;
        self.cluster.wait_applied(&[1, 2, 3], self.last).await;
        self.cluster.assert_same_state(&[1, 2, 3], self.last).await;
        self.cluster.stop_all();
        for node in 1..=3 {
            let (_db, store) = self.cluster.inspect(node);
            let sku = store.get_sku(&SkuId::new("A").unwrap()).unwrap().unwrap();
            assert_eq!(sku.reserved, self.placed as u64, "node {node}");
            for i in (0..self.placed).step_by(97).chain([self.placed - 1]) {
                let order = OrderId::new(order_id(i)).unwrap();
                assert!(
                    store.get_order(&order).unwrap().is_some(),
                    "node {node} lost {order}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_checkpoint_fails_on_a_full_disk_stops_and_comes_back() {
    checkpoint_fails_on_a_full_disk(false).await;
}

/// The leader's disk: it stops, the other two elect a leader between them, and the client
/// (following the leader, retrying by order id) sees every order acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_checkpoint_fails_on_a_full_disk_stops_and_comes_back() {
    checkpoint_fails_on_a_full_disk(true).await;
}

/// Checkpoints every 100 ms, so the first write to fail on the full disk is a checkpoint.
async fn checkpoint_fails_on_a_full_disk(on_the_leader: bool) {
    let Some(mut test) = OnSmallDisks::start(100).await else {
        return;
    };
    let leader = test.cluster.leader(&[1, 2, 3]).await;
    let full = match (on_the_leader, leader) {
        (true, leader) => leader,
        (false, 3) => 2,
        (false, _) => 3,
    };
    test.place(200).await;

    let ballast = fill(test.disk(full));
    test.place_until_stopped(full, "a checkpoint of the state failed")
        .await;
    let others: Vec<u64> = (1..=3).filter(|id| *id != full).collect();
    assert_ne!(test.cluster.leader(&others).await, full);
    test.restart_while_full(full);
    test.place(500).await;
    test.free_and_restart(full, &ballast).await;
}

/// The log writes into segments filled with zeros ahead of time, so with checkpoints rare a
/// full disk first shows in the vote file, at the next election: openraft stops on the
/// failed write, and so must the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_vote_cannot_be_saved_stops_and_comes_back() {
    let rare = cluster_config::Storage::MAX_CHECKPOINT_INTERVAL_MS;
    let Some(mut test) = OnSmallDisks::start(rare).await else {
        return;
    };
    let leader = test.cluster.leader(&[1, 2, 3]).await;
    let full = if leader == 3 { 2 } else { 3 };
    test.place(200).await;

    let ballast = fill(test.disk(full));
    test.place(500).await;
    assert!(
        test.cluster.is_running(full),
        "node {full} stopped before it had to write outside its log"
    );
    // An election: both followers outlive the leader's lease, and whichever campaigns, node
    // `full` must save a new vote.
    test.cluster.pause(leader);
    tokio::time::sleep(Duration::from_secs(5)).await;
    test.cluster.resume(leader);
    test.place_until_stopped(full, "raft stopped").await;
    test.restart_while_full(full);
    test.place(500).await;
    test.free_and_restart(full, &ballast).await;
}

fn order_id(i: usize) -> String {
    format!("order-{i:06}")
}
