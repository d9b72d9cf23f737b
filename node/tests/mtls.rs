//! mTLS on the node port: who may call which service, decided by the certificate alone.
//! Processes without a certificate, with one from another CA or an expired one get nothing
//! done; a gateway certificate reaches only the inventory service; a node certificate cannot
//! speak for another node.

mod common;

use cluster_config::mtls::certs::{self, Ca};
use cluster_config::mtls::{Dialer, PemIdentity, Role, NODE_DNS_NAME};
use cluster_config::{TlsFiles, TlsSettings};
use common::Cluster;
use node::codec::encode;
use node::types::TypeConfig;
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::Vote;
use proto::admin::admin_client::AdminClient;
use proto::admin::{AddLearnerRequest, StatusRequest};
use proto::inventory::inventory_client::InventoryClient;
use proto::inventory::GetSkuRequest;
use proto::raft::raft_client::RaftClient;
use proto::raft::RaftRequest;
use std::time::{Duration, Instant};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic::Code;

struct Pki {
    _dir: tempfile::TempDir,
    ca_dir: std::path::PathBuf,
    ca: Ca,
    rogue: Ca,
}

impl Pki {
    fn new(nodes: u64) -> Self {
        cluster_config::mtls::provider::install_tls13_only();
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("certs");
        Ca::init(&ca_dir, 1).unwrap();
        let local = ["127.0.0.1".to_string()];
        for id in 1..=nodes {
            certs::issue_into(&ca_dir, &Role::Node(id), &local, 1).unwrap();
        }
        Pki {
            ca: Ca::load(&ca_dir).unwrap(),
            rogue: Ca::generate(1).unwrap(),
            _dir: dir,
            ca_dir,
        }
    }

    fn node_files(&self, id: u64) -> TlsFiles {
        TlsFiles {
            ca: self.ca_dir.join("ca.pem"),
            cert: self.ca_dir.join(format!("node-{id}.pem")),
            key: self.ca_dir.join(format!("node-{id}.key")),
        }
    }

    /// A dialer presenting a fresh certificate for `role` from `ca`, trusting the real CA.
    fn dialer(&self, ca: &Ca, role: Role) -> Dialer {
        let issued = ca.issue(&role, &["127.0.0.1".into()], 1).unwrap();
        Dialer::tls(&PemIdentity::from_pem(
            self.ca.cert_pem(),
            issued.cert_pem,
            issued.key_pem,
        ))
    }

    fn expired(&self, role: Role) -> Dialer {
        let now = time::OffsetDateTime::now_utc();
        let issued = self
            .ca
            .issue_between(
                &role,
                &[],
                now - time::Duration::days(10),
                now - time::Duration::days(1),
            )
            .unwrap();
        Dialer::tls(&PemIdentity::from_pem(
            self.ca.cert_pem(),
            issued.cert_pem,
            issued.key_pem,
        ))
    }

    /// TLS that checks the server but presents no certificate of its own.
    fn anonymous(&self) -> Dialer {
        Dialer::Tls(Box::new(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(self.ca.cert_pem()))
                .domain_name(NODE_DNS_NAME),
        ))
    }
}

fn start(pki: &Pki) -> Cluster {
    let files: Vec<TlsFiles> = (1..=3).map(|id| pki.node_files(id)).collect();
    Cluster::start(3, |c| {
        c.tls = TlsSettings::files(files[c.id as usize - 1].clone());
    })
}

async fn channel(dialer: &Dialer, addr: &str) -> Result<Channel, String> {
    dialer
        .endpoint(addr)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| e.to_string())
}

async fn wait_for_leader(admin: &Dialer, cluster: &Cluster) -> u64 {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        for addr in cluster.addrs() {
            if let Ok(s) = node::client::status_via(admin, &addr, Duration::from_secs(1)).await {
                if s.role == "leader" && s.last_applied > 0 {
                    return s.node_id;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no leader under mTLS; logs in {}",
        cluster.dir.path().display()
    );
}

/// A vote from `candidate`, sent in the name of `from` to node `target`.
fn vote(target: u64, from: u64, candidate: u64) -> RaftRequest {
    let rpc: VoteRequest<u64> = VoteRequest::new(Vote::new(0, candidate), None);
    RaftRequest {
        target,
        from,
        payload: encode(&rpc),
        seq: 0,
    }
}

fn append(target: u64, from: u64, leader: u64) -> RaftRequest {
    let rpc = AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(1, leader),
        prev_log_id: None,
        entries: vec![],
        leader_commit: None,
    };
    RaftRequest {
        target,
        from,
        payload: encode(&rpc),
        seq: 0,
    }
}

/// One AppendEntries on an append stream of its own: the first reply, or why there is none.
async fn streamed(raft: &mut RaftClient<Channel>, req: RaftRequest) -> Result<(), tonic::Status> {
    let mut replies = raft
        .append_stream(futures::stream::iter([req]))
        .await?
        .into_inner();
    match replies.message().await? {
        Some(_) => Ok(()),
        None => Err(tonic::Status::unknown("the stream ended without a reply")),
    }
}

/// Every call a rogue process would make: vote, append (alone and on a stream), status,
/// join as a learner.
async fn calls(
    dialer: &Dialer,
    addr: &str,
    target: u64,
) -> Vec<(&'static str, Result<(), tonic::Status>)> {
    let ch = match channel(dialer, addr).await {
        Ok(ch) => ch,
        // With TLS 1.3 a refused client certificate often fails only the first call, but it
        // may fail the connect too: either way nothing got through.
        Err(e) => {
            return vec![("connect", Err(tonic::Status::unavailable(e)))];
        }
    };
    let mut raft = RaftClient::new(ch.clone());
    let mut admin = AdminClient::new(ch.clone());
    let mut inventory = InventoryClient::new(ch);
    vec![
        ("vote", raft.vote(vote(target, 2, 2)).await.map(drop)),
        (
            "append",
            raft.append_entries(append(target, 2, 2)).await.map(drop),
        ),
        (
            "append stream",
            streamed(&mut raft, append(target, 2, 2)).await,
        ),
        ("status", admin.status(StatusRequest {}).await.map(drop)),
        (
            "join",
            admin
                .add_learner(AddLearnerRequest {
                    id: 9,
                    addr: "127.0.0.1:1".into(),
                    ..Default::default()
                })
                .await
                .map(drop),
        ),
        (
            "read",
            inventory
                .get_sku(GetSkuRequest { sku: "x".into() })
                .await
                .map(drop),
        ),
    ]
}

fn assert_all_fail(who: &str, results: &[(&str, Result<(), tonic::Status>)]) {
    for (call, result) in results {
        assert!(result.is_err(), "{who}: {call} went through");
    }
}

fn denied(result: &Result<(), tonic::Status>, needed: &str) {
    let status = result.as_ref().expect_err("must be refused");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains(needed), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_decides_who_may_call_what() {
    let pki = Pki::new(3);
    let cluster = start(&pki);
    let admin = pki.dialer(&pki.ca, Role::Admin("alice".into()));
    let leader = wait_for_leader(&admin, &cluster).await;
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let addr = cluster.addr(follower);

    // No certificate at all, in plaintext or over TLS; another CA's node and admin; expired.
    assert_all_fail("plaintext", &calls(&Dialer::Plain, &addr, follower).await);
    assert_all_fail(
        "no certificate",
        &calls(&pki.anonymous(), &addr, follower).await,
    );
    let rogue_node = pki.dialer(&pki.rogue, Role::Node(2));
    assert_all_fail("other CA node", &calls(&rogue_node, &addr, follower).await);
    let rogue_admin = pki.dialer(&pki.rogue, Role::Admin("alice".into()));
    assert_all_fail(
        "other CA admin",
        &calls(&rogue_admin, &addr, follower).await,
    );
    assert_all_fail(
        "expired",
        &calls(&pki.expired(Role::Node(2)), &addr, follower).await,
    );

    // A gateway: inventory yes (answered, whatever the answer), Raft and admin no, but for
    // the read-only Status its /v1/cluster shows.
    let gateway = calls(&pki.dialer(&pki.ca, Role::Gateway), &addr, follower).await;
    for (call, result) in &gateway {
        match *call {
            "vote" | "append" | "append stream" => denied(result, "needs a node certificate"),
            "join" => denied(result, "needs a admin or node certificate"),
            "read" | "status" => assert!(result.is_ok(), "gateway {call}: {result:?}"),
            other => panic!("unexpected call {other}"),
        }
    }

    // An admin: admin yes, inventory and Raft no.
    let ch = channel(&admin, &addr).await.unwrap();
    assert!(AdminClient::new(ch.clone())
        .status(StatusRequest {})
        .await
        .is_ok());
    let read = InventoryClient::new(ch.clone())
        .get_sku(GetSkuRequest { sku: "x".into() })
        .await
        .map(drop);
    denied(&read, "needs a gateway or node certificate");
    denied(
        &RaftClient::new(ch)
            .vote(vote(follower, 2, 2))
            .await
            .map(drop),
        "needs a node certificate",
    );

    // Node 2's certificate speaks for node 2 only: not in the envelope, not in the message.
    let node2 = pki.dialer(&pki.ca, Role::Node(2));
    let target = if follower == 2 { leader } else { follower };
    let mut raft = RaftClient::new(channel(&node2, &cluster.addr(target)).await.unwrap());
    for (what, req) in [
        ("vote as 3", vote(target, 3, 3)),
        ("vote for candidate 3", vote(target, 2, 3)),
        ("append as 3", append(target, 3, 3)),
        ("append for leader 3", append(target, 2, 3)),
    ] {
        let mut results = vec![];
        if what.starts_with("append") {
            results.push(raft.append_entries(req.clone()).await.map(drop));
            results.push(streamed(&mut raft, req).await);
        } else {
            results.push(raft.vote(req).await.map(drop));
        }
        for result in results {
            let status = result.expect_err(what);
            assert_eq!(status.code(), Code::PermissionDenied, "{what}: {status:?}");
            assert!(
                status.message().contains("node 2 cannot send as node 3"),
                "{what}: {status:?}"
            );
        }
    }
    // Its own (stale) vote is heard: refused by Raft on its merits, not by the gate.
    let own = raft.vote(vote(target, 2, 2)).await;
    assert!(own.is_ok(), "node 2's own vote: {own:?}");

    // The cluster itself still works through all of this.
    wait_for_leader(&admin, &cluster).await;

    // Everything the nodes logged (their stderr) holds no private key material.
    let mut logs = String::new();
    for id in 1..=3 {
        let log = cluster.dir.path().join(format!("node{id}.log"));
        logs += &std::fs::read_to_string(&log).unwrap();
    }
    assert!(logs.contains("node listening"), "the logs were captured");
    for id in 1..=3 {
        let key = std::fs::read_to_string(pki.node_files(id).key).unwrap();
        for line in key.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!logs.contains(line), "node {id}'s key is in the logs");
        }
    }
}
