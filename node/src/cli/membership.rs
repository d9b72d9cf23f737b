//! `add-node`, `remove-node` and `snapshot`: membership changes through openraft's joint
//! consensus, with the refusals an operator needs before anything changes.
//!
//! A change names only the node it is about ("make 4 a voter", "remove 2"); the leader applies
//! it to the membership it holds at that moment. The status read here only feeds the refusals:
//! a voter set computed from it would be stale as soon as another change commits, and
//! replacing the voters with it would undo that change.

use super::admin::{self, on_leader};
use super::output::Format;
use super::status;
use anyhow::{bail, Context};
use proto::admin::change_membership_request::Change;
use proto::admin::{AddLearnerRequest, ChangeMembershipRequest, NodeIds, SnapshotRequest};
use serde::Serialize;
use std::time::{Duration, Instant};

/// A learner this close to the leader's log is promoted.
const CAUGHT_UP_LAG: u64 = 64;
/// How long add-node waits for the learner to catch up.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(300);

/// The result of `add-node`: the node is a voter now.
#[derive(Debug, Serialize)]
pub struct Added {
    pub id: u64,
    pub addr: String,
    /// False when it already was a voter and nothing was done.
    pub changed: bool,
}

/// The result of `remove-node`.
#[derive(Debug, Serialize)]
pub struct Removed {
    pub id: u64,
    pub addr: String,
    /// Whether it was a voter (else a learner) before.
    pub was_voter: bool,
}

/// The result of `snapshot`.
#[derive(Debug, Serialize)]
pub struct SnapshotBuilt {
    pub node_id: u64,
    pub addr: String,
    /// The last log index the node's newest snapshot covers.
    pub snapshot_index: u64,
}

/// `out` says where progress lines go; the caller prints the result.
pub async fn add_node(addrs: &[String], id: u64, addr: &str, out: Format) -> anyhow::Result<Added> {
    let view = status::collect(addrs).await?;
    let added = |changed| Added {
        id,
        addr: addr.to_string(),
        changed,
    };
    if let Some(existing) = view.nodes.iter().find(|n| n.id == id) {
        if existing.addr != addr {
            bail!(
                "node {id} is already a member at {}; remove it first or use another id",
                existing.addr
            );
        }
        if existing.voter {
            out.progress(format_args!(
                "node {id} at {addr} is already a voter: nothing to do"
            ));
            return Ok(added(false));
        }
        out.progress(format_args!("node {id} is already a learner; promoting it"));
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
    if !answered.cluster_id.is_empty() && answered.cluster_id != view.cluster_id {
        bail!(
            "node {id} at {addr} belongs to cluster {}, not to this cluster ({}): it cannot \
             join. If it is meant to, stop it, empty its data dir and start it with a join \
             config (see \"Recovering a wiped node\" in the README)",
            answered.cluster_id,
            if view.cluster_id.is_empty() {
                "no id"
            } else {
                &view.cluster_id
            }
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
    out.progress(&message);

    let started = Instant::now();
    loop {
        let view = status::collect(addrs).await?;
        let lag = view.nodes.iter().find(|n| n.id == id).and_then(|n| n.lag);
        match lag {
            Some(lag) if lag <= CAUGHT_UP_LAG => {
                out.progress(format_args!("node {id} is caught up (lag {lag})"));
                break;
            }
            Some(lag) => out.progress(format_args!(
                "node {id} is catching up: {lag} entries behind"
            )),
            None => out.progress(format_args!("node {id}: waiting for replication to start")),
        }
        if started.elapsed() > CATCH_UP_TIMEOUT {
            bail!("node {id} did not catch up within {CATCH_UP_TIMEOUT:?}; it stays a learner (run add-node again to retry)");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let message = change_membership(addrs, Change::AddVoters(NodeIds { ids: vec![id] })).await?;
    out.progress(&message);
    Ok(added(true))
}

pub async fn remove_node(
    addrs: &[String],
    id: u64,
    force: bool,
    out: Format,
) -> anyhow::Result<Removed> {
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
            .filter(|n| n.voter && n.id != id && n.role != proto::MemberRole::Unreachable)
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
    let removed = Removed {
        id,
        addr: target.addr.clone(),
        was_voter: target.voter,
    };
    let message = change_membership(addrs, Change::RemoveNodes(NodeIds { ids: vec![id] })).await?;
    out.progress(&message);
    Ok(removed)
}

pub fn print_added(a: &Added) {
    if a.changed {
        println!("node {} is a voter", a.id);
    }
}

pub fn print_removed(r: &Removed) {
    println!(
        "node {} is no longer a member. Next: stop its process and wipe its data dir before \
         it is ever started again (a removed node keeps campaigning until stopped).",
        r.id
    );
}

pub fn print_snapshot(s: &SnapshotBuilt) {
    println!(
        "node {} ({}) has a snapshot up to log index {}",
        s.node_id, s.addr, s.snapshot_index
    );
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

pub async fn snapshot(
    addrs: &[String],
    node: Option<u64>,
    out: Format,
) -> anyhow::Result<SnapshotBuilt> {
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
    out.progress(format_args!("building a snapshot on {addr} ..."));
    let reply = client
        .trigger_snapshot(SnapshotRequest { wait: true })
        .await?
        .into_inner();
    match reply.result {
        Some(proto::admin::admin_reply::Result::Ok(m)) => {
            out.progress(&m);
            let s = admin::status(&addr).await?;
            Ok(SnapshotBuilt {
                node_id: s.node_id,
                addr,
                snapshot_index: s.snapshot_index,
            })
        }
        Some(proto::admin::admin_reply::Result::Error(e)) => bail!("{e}"),
        _ => bail!("unexpected answer from {addr}"),
    }
}
