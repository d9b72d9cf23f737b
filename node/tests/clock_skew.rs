//! One node's wall clock an hour off (the test-only `[clock] test_offset_ms`): it never
//! leads, says why in its status, and the cluster's clock stays true.

mod common;

use common::*;
use node::client::status;
use state_machine::Outcome;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn real_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_an_hour_ahead_never_leads_and_never_moves_the_cluster_clock() {
    const HOUR_MS: i64 = 3_600_000;
    // Node 1 bootstraps the cluster, so without the clock monitor it would usually lead.
    let cluster = Cluster::start(3, |c| {
        if c.id == 1 {
            c.clock.test_offset_ms = HOUR_MS;
        }
    });
    let client = cluster.client();
    client.submit(&[create("A", 10)]).await.unwrap();
    let (outcomes, _) = client.submit(&[order("o1", "u", "A", 1)]).await.unwrap();
    let Outcome::Order { order, .. } = &outcomes[0] else {
        panic!("{outcomes:?}");
    };
    let now = real_now_ms();
    assert!(
        order.created_ms.abs_diff(now) < 10_000,
        "order stamped {} ms from the real time",
        order.created_ms as i64 - now as i64
    );

    let leader = cluster.leader(&[1, 2, 3]).await;
    assert_ne!(leader, 1, "the node with the bad clock leads");
    let skewed = status(&cluster.addr(1), Duration::from_secs(2))
        .await
        .unwrap();
    assert_ne!(skewed.role, "leader");
    assert!(
        skewed.clock_problem.contains("max_offset_ms"),
        "{:?}",
        skewed.clock_problem
    );
    let offset = skewed.clock_offset_ms.expect("offset measured");
    assert!(
        (HOUR_MS - 5_000..HOUR_MS + 5_000).contains(&offset),
        "{offset}"
    );
    for id in [2, 3] {
        let healthy = status(&cluster.addr(id), Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(healthy.clock_problem, "", "node {id}");
    }
    // The operator sees it in invctl status.
    let out = cluster.invctl(&["status", "--output", "json"], &[2]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let node1 = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == 1)
        .unwrap();
    assert!(
        node1["clock_problem"]
            .as_str()
            .unwrap()
            .contains("max_offset_ms"),
        "{node1}"
    );
    assert!(node1["clock_offset_ms"].as_i64().unwrap() > HOUR_MS - 5_000);
}
