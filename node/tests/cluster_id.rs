//! The cluster id against real node processes: one id on every member and across restarts,
//! nodes of another cluster refused, a node without an id voting for no one until a leader
//! replicates to it, and a wiped initialiser that must not start a second cluster.

mod common;

use common::*;
use node::codec::encode;
use openraft::{CommittedLeaderId, LogId, Vote};
use proto::raft::raft_client::RaftClient;
use proto::raft::RaftRequest;
use std::time::Duration;
use tonic::metadata::MetadataValue;

fn status_json(cluster: &Cluster, via: &[u64]) -> serde_json::Value {
    let out = cluster.invctl(&["status", "--output", "json"], via);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
}

/// The cluster id of the status, after checking every node reports it.
fn one_id_everywhere(status: &serde_json::Value) -> String {
    let id = status["cluster_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32, "{status}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{status}");
    for n in status["nodes"].as_array().unwrap() {
        assert_eq!(n["cluster_id"].as_str(), Some(id.as_str()), "{status}");
    }
    id
}

fn file_id(cluster: &Cluster, id: u64) -> String {
    let path = cluster.configs[id as usize - 1].data_dir.join("cluster-id");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim_end()
        .to_string()
}

async fn raft_client(addr: &str) -> RaftClient<tonic::transport::Channel> {
    RaftClient::connect(format!("http://{addr}")).await.unwrap()
}

fn stamped<T>(request: T, cluster_id: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(request);
    request.metadata_mut().insert(
        "flashstock-cluster-id",
        MetadataValue::try_from(cluster_id).unwrap(),
    );
    request
}

/// A vote of candidate `from` in a late term, with a log a stateless node cannot judge.
fn late_vote(target: u64, from: u64) -> RaftRequest {
    let rpc = openraft::raft::VoteRequest::new(
        Vote::new(7, from),
        Some(LogId::new(CommittedLeaderId::new(3, from), 42)),
    );
    RaftRequest {
        target,
        from,
        payload: encode(&rpc),
        seq: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_shows_one_id_which_survives_restarts() {
    let mut cluster = Cluster::start(3, |_| {});
    cluster.leader(&[1, 2, 3]).await;
    let (_, index) = cluster.client().submit(&[create("A", 5)]).await.unwrap();
    cluster.wait_applied(&[1, 2, 3], index).await;
    let id = one_id_everywhere(&status_json(&cluster, &[1]));
    for n in 1..=3 {
        assert_eq!(file_id(&cluster, n), id, "node {n}'s file");
    }
    let table = cluster.invctl(&["status"], &[2]);
    assert!(String::from_utf8_lossy(&table.stdout).contains(&format!("cluster: {id}")));

    cluster.stop_all();
    for n in 1..=3 {
        cluster.restart(n);
    }
    cluster.leader(&[1, 2, 3]).await;
    let (_, index) = cluster.client().submit(&[create("B", 5)]).await.unwrap();
    cluster.wait_applied(&[1, 2, 3], index).await;
    assert_eq!(one_id_everywhere(&status_json(&cluster, &[3])), id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clusters_node_is_refused_and_a_node_without_id_does_not_vote() {
    let mut a = Cluster::start(3, |_| {});
    a.leader(&[1, 2, 3]).await;
    let (_, index) = a.client().submit(&[create("A", 5)]).await.unwrap();
    a.wait_applied(&[1, 2, 3], index).await;
    let a_id = one_id_everywhere(&status_json(&a, &[1]));

    // Cluster B: one node, id 4, a cluster of its own.
    let b = Cluster::start(1, |c| {
        c.id = 4;
        c.initial_members = [(4, c.advertise.clone())].into();
    });
    let b_addr = b.addr(4);
    let mut b_id = String::new();
    for _ in 0..300 {
        let s = node::client::status(&b_addr, Duration::from_millis(300)).await;
        if let Some(s) = s.ok().filter(|s| s.role == "leader") {
            b_id = s.cluster_id;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(b_id.len(), 32, "cluster B never elected its node");
    assert_ne!(a_id, b_id);

    let out = a.invctl(&["add-node", "--id", "4", "--addr", &b_addr], &[1]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "add-node of B's node succeeded");
    assert!(text.contains(&a_id) && text.contains(&b_id), "{text}");
    assert_eq!(status_json(&a, &[1])["nodes"].as_array().unwrap().len(), 3);

    // B's node replicating to or campaigning at A's: refused before Raft sees it, naming both.
    let mut to_a = raft_client(&a.addr(2)).await;
    let err = to_a
        .append_entries(stamped(
            RaftRequest {
                target: 2,
                from: 4,
                payload: vec![],
                seq: 0,
            },
            &b_id,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err}");
    assert!(
        err.message().contains(&a_id) && err.message().contains(&b_id),
        "{err}"
    );
    let err = to_a
        .vote(stamped(late_vote(2, 4), &b_id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err}");
    // The append stream is refused at its opening, the same way.
    let err = to_a
        .append_stream(stamped(futures::stream::pending::<RaftRequest>(), &b_id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err}");

    // A new node of A (join config) has no id: it votes for no one, even A's own members...
    let n4 = a.spawn_extra(|_| {});
    let addr4 = a.addr(n4);
    let mut to_new = raft_client(&addr4).await;
    let err = to_new
        .vote(stamped(late_vote(n4, 2), &a_id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err}");
    assert!(err.message().contains("no cluster id"), "{err}");
    // ...until a leader replicates to it, when it takes A's id and keeps it.
    let out = a.invctl(
        &["add-node", "--id", &n4.to_string(), "--addr", &addr4],
        &[1],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(one_id_everywhere(&status_json(&a, &[1])), a_id);
    assert_eq!(file_id(&a, n4), a_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_initialiser_refuses_to_start_a_second_cluster() {
    let mut cluster = Cluster::start(3, |_| {});
    cluster.leader(&[1, 2, 3]).await;
    let client = cluster.client();
    let (_, index) = client.submit(&[create("A", 5)]).await.unwrap();
    cluster.wait_applied(&[1, 2, 3], index).await;
    let id = one_id_everywhere(&status_json(&cluster, &[1]));

    cluster.kill(1);
    cluster.wipe(1);
    cluster.restart(1);
    let exit = cluster
        .wait_exit(1, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the wiped initialiser kept running: {}", cluster.log(1)));
    assert!(!exit.success());
    let log = cluster.log(1);
    assert!(log.contains(&id), "{log}");
    assert!(log.contains("Recovering a wiped node"), "{log}");
    assert!(
        log.contains("node 2") || log.contains("node 3"),
        "no peer named: {log}"
    );
    assert!(!cluster.configs[0].data_dir.join("cluster-id").exists());

    // Nodes 2 and 3 go on as one cluster with one leader.
    cluster.leader(&[2, 3]).await;
    let (_, index) = client.submit(&[create("B", 5)]).await.unwrap();
    cluster.wait_applied(&[2, 3], index).await;
    let status = status_json(&cluster, &[2, 3]);
    assert_eq!(status["cluster_id"].as_str(), Some(id.as_str()));
}
