//! `add-node`, `remove-node` and `snapshot`: membership changes through openraft's joint
//! consensus, with the refusals an operator needs before anything changes.
//!
//! A change names only the node it is about ("make 4 a voter", "remove 2"); the leader applies
//! it to the membership it holds at that moment. The status read here only feeds the refusals:
//! a voter set computed from it would be stale as soon as another change commits, and
//! replacing the voters with it would undo that change.

use super::admin::{self, on_leader};
use super::status;
use anyhow::{bail, Context};
use proto::admin::change_membership_request::Change;
use proto::admin::{AddLearnerRequest, ChangeMembershipRequest, NodeIds, SnapshotRequest};
use std::time::{Duration, Instant};

/// A learner this close to the leader's log is promoted.
const CAUGHT_UP_LAG: u64 = 64;
/// How long add-node waits for the learner to catch up.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(300);

pub async fn add_node(addrs: &[String], id: u64, addr: &str) -> anyhow::Result<()> {
    let view = status::collect(addrs).await?;
    if let Some(existing) = view.nodes.iter().find(|n| n.id == id) {
        if existing.addr != addr {
            bail!(
                "node {id} is already a member at {}; remove it first or use another id",
                existing.addr
            );
        }
        if existing.voter {
            println!("node {id} at {addr} is already a voter: nothing to do");
            return Ok(());
        }
        println!("node {id} is already a learner; promoting it");
    } else if let Some(other) = view.nodes.iter().find(|n| n.addr == addr) {
        bail!(
            "{addr} already belongs to node {}; one address per node",
            other.id
        );
    }
    let answered = admin::status(addr)
        .await
        .with_context(|| format!("node {id} must be running at {addr} before it is added"))?;
    if answered.node_id != id {
        bail!(
            "{addr} answers as node {}, not node {id}: check the address and the node's config",
            answered.node_id
        );
    }
    let message = on_leader(addrs, |mut c| {
        let req = AddLearnerRequest {
            id,
            addr: addr.to_string(),
            blocking: false,
        };
        async move { c.add_learner(req).await }
    })
    .await?;
    println!("{message}");

    let started = Instant::now();
    loop {
        let view = status::collect(addrs).await?;
        let lag = view.nodes.iter().find(|n| n.id == id).and_then(|n| n.lag);
        match lag {
            Some(lag) if lag <= CAUGHT_UP_LAG => {
                println!("node {id} is caught up (lag {lag})");
                break;
            }
            Some(lag) => println!("node {id} is catching up: {lag} entries behind"),
            None => println!("node {id}: waiting for replication to start"),
        }
        if started.elapsed() > CATCH_UP_TIMEOUT {
            bail!("node {id} did not catch up within {CATCH_UP_TIMEOUT:?}; it stays a learner (run add-node again to retry)");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let message = change_membership(addrs, Change::AddVoters(NodeIds { ids: vec![id] })).await?;
    println!("{message}");
    println!("node {id} is a voter");
    Ok(())
}

pub async fn remove_node(addrs: &[String], id: u64, force: bool) -> anyhow::Result<()> {
    let view = status::collect(addrs).await?;
    let Some(target) = view.nodes.iter().find(|n| n.id == id) else {
        bail!("node {id} is not a member; `invctl status` lists the members");
    };
    if target.voter {
        let remaining: Vec<u64> = view
            .nodes
            .iter()
            .filter(|n| n.voter && n.id != id)
            .map(|n| n.id)
            .collect();
        if remaining.is_empty() {
            bail!("node {id} is the last voter; a cluster needs at least one");
        }
        let answering = view
            .nodes
            .iter()
            .filter(|n| n.voter && n.id != id && n.role != "unreachable")
            .count();
        if answering * 2 <= remaining.len() && !force {
            bail!(
                "only {answering} of the {} remaining voters answer now, not a quorum: the \
                 cluster could not commit the change or serve afterwards. Bring nodes back, \
                 or pass --force if you know they will return",
                remaining.len()
            );
        }
    }
    let message = change_membership(addrs, Change::RemoveNodes(NodeIds { ids: vec![id] })).await?;
    println!("{message}");
    println!(
        "node {id} is no longer a member. Next: stop its process and wipe its data dir before \
         it is ever started again (a removed node keeps campaigning until stopped)."
    );
    Ok(())
}

/// Sends `change` to the leader. Following a "not leader" hint sends the same change again,
/// which is safe: adding a voter or removing a node a second time changes nothing.
async fn change_membership(addrs: &[String], change: Change) -> anyhow::Result<String> {
    on_leader(addrs, |mut c| {
        let req = ChangeMembershipRequest {
            change: Some(change.clone()),
        };
        async move { c.change_membership(req).await }
    })
    .await
}

pub async fn snapshot(addrs: &[String], node: Option<u64>) -> anyhow::Result<()> {
    let addr = match node {
        None => admin::leader_addr(addrs).await?,
        Some(id) => {
            let view = status::collect(addrs).await?;
            match view.nodes.iter().find(|n| n.id == id) {
                Some(n) => n.addr.clone(),
                None => bail!("node {id} is not a member"),
            }
        }
    };
    let mut client = admin::connect(&addr, Duration::from_secs(130)).await?;
    println!("building a snapshot on {addr} ...");
    let reply = client
        .trigger_snapshot(SnapshotRequest { wait: true })
        .await?
        .into_inner();
    match reply.result {
        Some(proto::admin::admin_reply::Result::Ok(m)) => {
            println!("{m}");
            Ok(())
        }
        Some(proto::admin::admin_reply::Result::Error(e)) => bail!("{e}"),
        _ => bail!("unexpected answer from {addr}"),
    }
}
