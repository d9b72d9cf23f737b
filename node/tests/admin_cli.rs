//! The admin CLI against real node processes: growing and shrinking under a continuous
//! writer, replacing a dead node, and the refusals that must change nothing.

mod common;

use common::*;
use node::cli::membership;
use node::cli::output::Format;
use node::client::Client;
use state_machine::{Command, OrderId, Outcome};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn ok(out: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "invctl failed: {text}");
    text
}

fn refused(out: &std::process::Output, needle: &str) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "invctl should have refused: {text}");
    assert!(text.contains(needle), "expected {needle:?} in: {text}");
}

/// Places and pays orders until stopped; records every acknowledged order.
fn start_writer(client: Client) -> (Arc<AtomicBool>, tokio::task::JoinHandle<Vec<String>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = tokio::spawn(async move {
        let mut acked = Vec::new();
        let mut n = 0;
        while !flag.load(Ordering::Relaxed) {
            n += 1;
            let id = format!("w-{n}");
            if let Ok((o, _)) = client.submit(&[order(&id, "writer", "A", 1)]).await {
                if matches!(o[0], Outcome::Order { .. }) {
                    let pay = Command::Pay {
                        order_id: OrderId::new(id.as_str()).unwrap(),
                        payment_ref: None,
                        request_tag: 0,
                    };
                    if client.submit(&[pay]).await.is_ok() {
                        acked.push(id);
                    }
                }
            }
        }
        acked
    });
    (stop, handle)
}

async fn status_json(cluster: &Cluster, via: &[u64]) -> serde_json::Value {
    let out = cluster.invctl(&["status", "--output", "json"], via);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
}

fn voters(status: &serde_json::Value) -> Vec<u64> {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["voter"].as_bool() == Some(true))
        .map(|n| n["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grow_to_five_and_shrink_to_three_removing_the_leader_under_writes() {
    let mut cluster = Cluster::start(3, |_| {});
    cluster.leader(&[1, 2, 3]).await;
    let client = Client::new(cluster.addrs(), Duration::from_secs(15));
    client.submit(&[create("A", 1_000_000)]).await.unwrap();
    let (stop, writer) = start_writer(client.clone());

    let n4 = cluster.spawn_extra(|_| {});
    let n5 = cluster.spawn_extra(|_| {});
    for id in [n4, n5] {
        let addr = cluster.addr(id);
        let text = ok(&cluster.invctl(
            &["add-node", "--id", &id.to_string(), "--addr", &addr],
            &[1, 2, 3],
        ));
        assert!(text.contains("is a voter"), "{text}");
        // Idempotent: again is a no-op with a clear message.
        let text = ok(&cluster.invctl(
            &["add-node", "--id", &id.to_string(), "--addr", &addr],
            &[1],
        ));
        assert!(text.contains("nothing to do"), "{text}");
    }
    assert_eq!(
        voters(&status_json(&cluster, &[1]).await),
        vec![1, 2, 3, 4, 5]
    );

    // Shrink: remove the leader first, then one more.
    let leader = cluster.leader(&[1, 2, 3, 4, 5]).await;
    ok(&cluster.invctl(
        &["remove-node", "--id", &leader.to_string()],
        &[1, 2, 3, 4, 5],
    ));
    let rest: Vec<u64> = (1..=5).filter(|i| *i != leader).collect();
    let next_leader = cluster.leader(&rest).await;
    let second = *rest.iter().find(|i| **i != next_leader).unwrap();
    ok(&cluster.invctl(&["remove-node", "--id", &second.to_string()], &rest));
    let remaining: Vec<u64> = rest.iter().copied().filter(|i| *i != second).collect();
    cluster.stop(leader);
    cluster.stop(second);

    stop.store(true, Ordering::Relaxed);
    let acked = writer.await.unwrap();
    assert!(
        acked.len() > 10,
        "the writer made too little progress: {}",
        acked.len()
    );
    let status = status_json(&cluster, &remaining).await;
    assert_eq!(voters(&status), remaining);
    assert_eq!(status["healthy"], true);

    let (_, index) = client.submit(&[create("B", 1)]).await.unwrap();
    cluster.wait_applied(&remaining, index).await;
    cluster.stop_all();
    let mut exports = Vec::new();
    for id in &remaining {
        let (_db, store) = cluster.inspect(*id);
        for o in &acked {
            let order = store.get_order(&OrderId::new(o.as_str()).unwrap()).unwrap();
            assert!(
                order.is_some_and(|o| o.status == state_machine::OrderStatus::Paid),
                "node {id} lost {o}"
            );
        }
        let mut bytes = Vec::new();
        store.export_snapshot(&mut bytes).unwrap();
        exports.push(bytes);
    }
    assert!(
        exports.windows(2).all(|w| w[0] == w[1]),
        "remaining nodes differ"
    );
}

/// The id of every node, voter or learner, in the membership.
fn members(status: &serde_json::Value) -> Vec<u64> {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_u64().unwrap())
        .collect()
}

/// Two operators grow the cluster at the same moment. A promotion computed as "the voters I
/// saw plus mine" lets the later change drop the other's node; each add-node must add only
/// its own node to whatever the membership is when the leader applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_add_nodes_both_end_as_voters() {
    let mut cluster = Cluster::start(3, |_| {});
    cluster.leader(&[1, 2, 3]).await;
    let n4 = cluster.spawn_extra(|_| {});
    let n5 = cluster.spawn_extra(|_| {});
    let via: Vec<String> = (1..=3).map(|id| cluster.addr(id)).collect();
    let adds: Vec<_> = [n4, n5]
        .into_iter()
        .map(|id| {
            let (via, addr) = (via.clone(), cluster.addr(id));
            tokio::spawn(async move { membership::add_node(&via, id, &addr, Format::Table).await })
        })
        .collect();
    for (id, add) in [n4, n5].into_iter().zip(adds) {
        if let Err(e) = add.await.unwrap() {
            panic!("add-node {id} failed: {e:#}");
        }
    }
    let status = status_json(&cluster, &[1]).await;
    assert_eq!(voters(&status), vec![1, 2, 3, 4, 5]);
    assert_eq!(members(&status), vec![1, 2, 3, 4, 5]);
    assert_eq!(status["membership"], "uniform");
}

/// One node leaves while another joins. The removal's joint configuration is held open (one
/// of the voters that stay is down, and the new configuration needs it) while add-node runs,
/// so add-node's view of the voters still has the leaving node in it. Both must finish, and
/// the voters must be exactly the old ones minus the leaving node plus the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_node_while_adding_another_ends_with_exactly_the_expected_voters() {
    let mut cluster = Cluster::start(3, |_| {});
    let leader = cluster.leader(&[1, 2, 3]).await;
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let (down, leaving) = (followers[0], followers[1]);
    let joining = cluster.spawn_extra(|_| {});
    let via: Vec<String> = (1..=3).map(|id| cluster.addr(id)).collect();

    cluster.kill(down);
    let remove = {
        let via = via.clone();
        // --force: with `down` stopped only one of the two remaining voters answers.
        tokio::spawn(
            async move { membership::remove_node(&via, leaving, true, Format::Table).await },
        )
    };
    let leader_addr = cluster.addr(leader);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node::client::status(&leader_addr, Duration::from_secs(1))
        .await
        .is_ok_and(|s| s.joint)
    {
        assert!(
            Instant::now() < deadline,
            "the removal never reached its joint configuration"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let add = {
        let (via, addr) = (via.clone(), cluster.addr(joining));
        tokio::spawn(async move { membership::add_node(&via, joining, &addr, Format::Table).await })
    };
    // Long enough for add-node to read the joint view and reach the leader.
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.restart(down);

    if let Err(e) = remove.await.unwrap() {
        panic!("remove-node {leaving} failed: {e:#}");
    }
    // A removed node campaigns until stopped; stop it before it disturbs the add.
    cluster.stop(leaving);
    if let Err(e) = add.await.unwrap() {
        panic!("add-node {joining} failed: {e:#}");
    }
    let mut expected = vec![leader, down, joining];
    expected.sort();
    let status = status_json(&cluster, &[leader, down, joining]).await;
    assert_eq!(voters(&status), expected);
    assert_eq!(members(&status), expected);
    assert_eq!(status["membership"], "uniform");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_is_replaced_by_a_fresh_one_that_catches_up_by_snapshot() {
    let mut cluster = Cluster::start(3, |c| {
        c.raft.snapshot_logs_since_last = 20;
        c.raft.max_in_snapshot_log_to_keep = 0;
    });
    let leader = cluster.leader(&[1, 2, 3]).await;
    let client = Client::new(cluster.addrs(), Duration::from_secs(15));
    client.submit(&[create("A", 1_000)]).await.unwrap();
    for i in 0..100 {
        client
            .submit(&[order(&format!("o{i}"), "u", "A", 1)])
            .await
            .unwrap();
    }
    // The fresh node can only catch up by snapshot if the start of the leader's log is gone.
    // openraft purges 64 entries at a time (`purge_batch_size`) once a snapshot covers them,
    // and the snapshot trigger looks every 100 ms: wait for the purge rather than race it.
    let leader_addr = cluster.addr(leader);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = node::client::status(&leader_addr, Duration::from_secs(1)).await;
        if s.is_ok_and(|s| s.purged_index > 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the leader never purged its log"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead = if leader == 2 { 3 } else { 2 };
    cluster.kill(dead);
    cluster.wipe(dead);
    let live: Vec<u64> = (1..=3).filter(|i| *i != dead).collect();
    ok(&cluster.invctl(&["remove-node", "--id", &dead.to_string()], &live));
    let fresh = cluster.spawn_extra(|c| {
        c.raft.snapshot_logs_since_last = 20;
        c.raft.max_in_snapshot_log_to_keep = 0;
    });
    let addr = cluster.addr(fresh);
    ok(&cluster.invctl(
        &["add-node", "--id", &fresh.to_string(), "--addr", &addr],
        &live,
    ));
    let (_, index) = client.submit(&[create("B", 1)]).await.unwrap();
    cluster.wait_applied(&[fresh], index).await;
    let s = node::client::status(&addr, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(
        s.snapshot_index > 0,
        "the new node caught up without a snapshot"
    );
    cluster.stop_all();
    let (_db, store) = cluster.inspect(fresh);
    for i in 0..100 {
        assert!(store
            .get_order(&OrderId::new(format!("o{i}")).unwrap())
            .unwrap()
            .is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_explain_themselves_and_change_nothing() {
    let mut cluster = Cluster::start(3, |_| {});
    cluster.leader(&[1, 2, 3]).await;
    let before = status_json(&cluster, &[1]).await;
    let n4 = cluster.spawn_extra(|_| {});
    let addr4 = cluster.addr(n4);
    // Duplicate id with a different address.
    refused(
        &cluster.invctl(&["add-node", "--id", "2", "--addr", &addr4], &[1]),
        "already a member",
    );
    // An address that answers as another node id.
    refused(
        &cluster.invctl(&["add-node", "--id", "9", "--addr", &addr4], &[1]),
        "answers as node 4",
    );
    // Unknown node.
    refused(
        &cluster.invctl(&["remove-node", "--id", "7"], &[1]),
        "not a member",
    );
    // No quorum among the remaining voters.
    cluster.kill(3);
    refused(
        &cluster.invctl(&["remove-node", "--id", "2"], &[1, 2]),
        "not a quorum",
    );
    let after = status_json(&cluster, &[1, 2]).await;
    assert_eq!(voters(&before), voters(&after));
    assert_eq!(after["nodes"].as_array().unwrap().len(), 3);
    // status exits 3 (unhealthy) when no quorum answers.
    cluster.kill(2);
    let out = cluster.invctl(&["status"], &[1]);
    assert_eq!(out.status.code(), Some(3));
}
