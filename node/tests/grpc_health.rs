//! `grpc.health.v1.Health` on real nodes: SERVING for the server and the inventory service
//! while the cluster has a leader, NOT_SERVING on a node left without one, as `/readyz` says.

mod common;

use common::*;
use std::time::{Duration, Instant};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const SERVICES: [&str; 2] = ["", "inventory.Inventory"];

async fn status(addr: &str, service: &str) -> ServingStatus {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(reply.status).unwrap()
}

/// Polls until every service of node `addr` reports `want`, for at most `within`.
async fn wait_for(addr: &str, want: ServingStatus, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let mut seen = Vec::new();
        for service in SERVICES {
            seen.push(status(addr, service).await);
        }
        if seen.iter().all(|s| *s == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{addr}: {seen:?}, waited for {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_readiness() {
    let mut cluster = Cluster::start(3, |_| {});
    let leader = cluster.leader(&[1, 2, 3]).await;
    for id in 1..=3 {
        wait_for(
            &cluster.addr(id),
            ServingStatus::Serving,
            Duration::from_secs(10),
        )
        .await;
    }

    // A service the node does not have is an error, not a guess.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", cluster.addr(1)))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let unknown = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "no.Such".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    // Alone, a follower loses its leader: it still answers, NOT_SERVING.
    let kept = (1..=3).find(|id| *id != leader).unwrap();
    for id in (1..=3).filter(|id| *id != kept) {
        cluster.stop(id);
    }
    wait_for(
        &cluster.addr(kept),
        ServingStatus::NotServing,
        Duration::from_secs(20),
    )
    .await;
}
