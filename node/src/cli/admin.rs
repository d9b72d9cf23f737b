//! Admin calls against one node, and against the leader by following hints.

use anyhow::{anyhow, bail, Context};
use proto::admin::admin_client::AdminClient;
use proto::admin::{admin_reply, AdminReply, StatusReply, StatusRequest};
use std::time::Duration;
use tonic::transport::Channel;

/// Timeout of one admin call; membership changes wait for commits, so generous.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How many "not leader" hints to follow before giving up.
const MAX_HOPS: usize = 5;

pub async fn connect(addr: &str, timeout: Duration) -> anyhow::Result<AdminClient<Channel>> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .with_context(|| format!("{addr} is not a host:port"))?
        .connect_timeout(Duration::from_millis(800))
        .timeout(timeout)
        .connect()
        .await
        .with_context(|| format!("cannot reach {addr}"))?;
    Ok(AdminClient::new(channel))
}

pub async fn status(addr: &str) -> anyhow::Result<StatusReply> {
    let mut client = connect(addr, Duration::from_secs(2)).await?;
    Ok(client.status(StatusRequest {}).await?.into_inner())
}

/// The status of the first of `addrs` that answers.
pub async fn any_status(addrs: &[String]) -> anyhow::Result<StatusReply> {
    let mut errors = Vec::new();
    for addr in addrs {
        match status(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => errors.push(format!("{addr}: {e:#}")),
        }
    }
    bail!("no node answered: {}", errors.join("; "))
}

/// The leader's address, asking the nodes in `addrs`.
pub async fn leader_addr(addrs: &[String]) -> anyhow::Result<String> {
    let s = any_status(addrs).await?;
    if s.role == "leader" {
        return Ok(s.addr);
    }
    if s.leader_addr.is_empty() {
        bail!("no leader is known right now (an election may be under way); try again in a second");
    }
    Ok(s.leader_addr)
}

/// Runs `call` on the leader, following hints; returns the `ok` message.
pub async fn on_leader<F, Fut>(addrs: &[String], mut call: F) -> anyhow::Result<String>
where
    F: FnMut(AdminClient<Channel>) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<AdminReply>, tonic::Status>>,
{
    let mut addr = leader_addr(addrs).await?;
    for _ in 0..MAX_HOPS {
        let client = connect(&addr, CALL_TIMEOUT).await?;
        let reply = call(client).await?.into_inner();
        match reply.result {
            Some(admin_reply::Result::Ok(message)) => return Ok(message),
            Some(admin_reply::Result::Error(e)) => bail!("{e}"),
            Some(admin_reply::Result::NotLeader(n)) if !n.leader_addr.is_empty() => {
                addr = n.leader_addr;
            }
            Some(admin_reply::Result::NotLeader(_)) | None => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                addr = leader_addr(addrs).await?;
            }
        }
    }
    Err(anyhow!("the leader kept moving; try again"))
}
