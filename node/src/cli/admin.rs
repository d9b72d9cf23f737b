//! Admin calls against one node, and against the leader by following hints.

use anyhow::{anyhow, bail, Context};
use cluster_config::mtls::Dialer;
use futures::stream::{FuturesUnordered, StreamExt};
use proto::admin::admin_client::AdminClient;
use proto::admin::{admin_reply, AdminReply, StatusReply, StatusRequest};
use proto::MemberRole;
use std::sync::OnceLock;
use std::time::Duration;
use tonic::transport::Channel;

/// Timeout of one admin call; membership changes wait for commits, so generous.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How many "not leader" hints to follow before giving up.
const MAX_HOPS: usize = 5;

/// How invctl dials: one identity per run (its `--ca --cert --key`), set once at start.
static DIALER: OnceLock<Dialer> = OnceLock::new();

/// Sets the identity every admin call of this process uses; the first call wins.
pub fn use_dialer(dialer: Dialer) {
    let _ = DIALER.set(dialer);
}

pub fn dialer() -> Dialer {
    DIALER.get().cloned().unwrap_or_default()
}

pub async fn connect(addr: &str, timeout: Duration) -> anyhow::Result<AdminClient<Channel>> {
    let channel = dialer()
        .endpoint(addr)
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

/// The first answer from `addrs` that knows the leader (or is it); failing that, any answer.
/// All are asked at once: a node that is down or hung must not cost its timeout before the
/// next is tried. A node that just restarted or was just removed often knows no leader while
/// the others do.
pub async fn informed_status(addrs: &[String]) -> anyhow::Result<StatusReply> {
    first_status(addrs, |s| {
        MemberRole::reports_leader(&s.role) || !s.leader_addr.is_empty()
    })
    .await
}

/// Asks all of `addrs` at once and returns the first answer `wanted` accepts, else the first
/// answer.
async fn first_status(
    addrs: &[String],
    wanted: impl Fn(&StatusReply) -> bool,
) -> anyhow::Result<StatusReply> {
    let mut probes: FuturesUnordered<_> = addrs
        .iter()
        .map(|addr| async move { (addr, status(addr).await) })
        .collect();
    let mut fallback = None;
    let mut errors = Vec::new();
    while let Some((addr, answer)) = probes.next().await {
        match answer {
            Ok(s) if wanted(&s) => return Ok(s),
            Ok(s) => {
                fallback.get_or_insert(s);
            }
            Err(e) => errors.push(format!("{addr}: {e:#}")),
        }
    }
    fallback.ok_or_else(|| anyhow!("no node answered: {}", errors.join("; ")))
}

/// The leader's address, asking the nodes in `addrs`.
pub async fn leader_addr(addrs: &[String]) -> anyhow::Result<String> {
    let s = informed_status(addrs).await?;
    if MemberRole::reports_leader(&s.role) {
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
