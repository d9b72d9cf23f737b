//! `invctl status` asks every member at once: hung nodes cost one status timeout (2 s) in
//! total, not one each.

mod common;

use common::*;
use std::process::Command as Process;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hung_nodes_cost_one_timeout_not_two() {
    let cluster = Cluster::start(3, |_| {});
    let leader = cluster.leader(&[1, 2, 3]).await;
    let hung: Vec<u64> = [leader]
        .into_iter()
        .chain((1..=3).filter(|i| *i != leader).take(1))
        .collect();
    let live = (1..=3).find(|i| !hung.contains(i)).unwrap();
    for id in &hung {
        cluster.pause(*id);
    }
    // The hung nodes come first, so asking in turn would wait for each of them.
    let nodes: Vec<String> = hung
        .iter()
        .chain([&live])
        .map(|id| cluster.addr(*id))
        .collect();
    let started = Instant::now();
    let out = Process::new(env!("CARGO_BIN_EXE_invctl"))
        .args(["status", "--output", "json", "--nodes", &nodes.join(",")])
        .output()
        .unwrap();
    let took = started.elapsed();
    for id in &hung {
        cluster.resume(*id);
    }
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["voters_answering"], 1);
    for node in status["nodes"].as_array().unwrap() {
        if hung.contains(&node["id"].as_u64().unwrap()) {
            assert_eq!(node["role"], "unreachable", "{status}");
        }
    }
    // One 2 s timeout plus process start; in turn it would be at least 2 s per hung node
    // for finding a node that answers and 2 s per hung member again for the table.
    assert!(took < Duration::from_millis(3_500), "status took {took:?}");
    assert!(
        took >= Duration::from_secs(2),
        "the hung nodes answered? {took:?}"
    );
}
