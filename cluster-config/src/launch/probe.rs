//! Asking nodes whether they answer: the admin `Status` of one node, and waiting until the
//! live nodes agree on a leader or have applied an index. The one status call of the
//! workspace: `invctl`, the node's peer probe and every launcher use it.

use crate::mtls::Dialer;
use anyhow::bail;
use proto::admin::admin_client::AdminClient;
use proto::admin::{StatusReply, StatusRequest};
use std::time::{Duration, Instant};

/// How long one status call of a waiting loop may take (a paused node never answers).
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// The admin `Status` of the node at `addr`, straight from it (no leader following),
/// dialled with `dialer`; connecting and the call each within `timeout`.
pub async fn status(dialer: &Dialer, addr: &str, timeout: Duration) -> Result<StatusReply, String> {
    let channel = dialer
        .endpoint(addr)
        .map_err(|e| e.to_string())?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    AdminClient::new(channel)
        .status(StatusRequest {})
        .await
        .map(|r| r.into_inner())
        .map_err(|e| e.to_string())
}

/// The leader that every one of `members` (id and address) names, itself one of them;
/// an error after `patience`.
pub async fn agreed_leader(
    dialer: &Dialer,
    members: &[(u64, String)],
    patience: Duration,
) -> anyhow::Result<u64> {
    let deadline = Instant::now() + patience;
    loop {
        let mut named = Vec::new();
        for (_, addr) in members {
            if let Ok(s) = status(dialer, addr, PROBE_TIMEOUT).await {
                named.push(if proto::MemberRole::reports_leader(&s.role) {
                    Some(s.node_id)
                } else {
                    s.leader_id
                });
            }
        }
        if named.len() == members.len() {
            if let Some(Some(leader)) = named.first().copied() {
                let is_member = members.iter().any(|(id, _)| *id == leader);
                if is_member && named.iter().all(|n| *n == Some(leader)) {
                    return Ok(leader);
                }
            }
        }
        if Instant::now() >= deadline {
            let ids: Vec<u64> = members.iter().map(|(id, _)| *id).collect();
            bail!("nodes {ids:?} did not agree on a leader within {patience:?} (last: {named:?})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every one of `members` has applied at least `index`.
pub async fn wait_applied(
    dialer: &Dialer,
    members: &[(u64, String)],
    index: u64,
    patience: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + patience;
    for (id, addr) in members {
        loop {
            let applied = status(dialer, addr, PROBE_TIMEOUT)
                .await
                .ok()
                .map(|s| s.last_applied);
            if applied.is_some_and(|a| a >= index) {
                break;
            }
            if Instant::now() >= deadline {
                bail!("node {id} did not apply index {index} within {patience:?} (at {applied:?})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}
