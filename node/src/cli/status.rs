//! `invctl status`: one table of every member and learner, and whether the cluster can
//! serve (a leader is known and a quorum of voters answers).

use super::admin;
use proto::admin::StatusReply;
use proto::MemberRole;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Serialize)]
pub struct NodeRow {
    pub id: u64,
    pub addr: String,
    pub voter: bool,
    /// leader, follower, candidate, learner or unreachable
    pub role: MemberRole,
    pub term: Option<u64>,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    /// Entries behind the leader's log, as the leader's replication state says.
    pub lag: Option<u64>,
    /// Median offset of the node's wall clock from its peers' (positive: ahead).
    pub clock_offset_ms: Option<i64>,
    /// Why the node may not lead because of its clock; empty while it may.
    pub clock_problem: String,
    /// The cluster id the node reports; empty while it has none, absent if unreachable.
    pub cluster_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ClusterStatus {
    /// The cluster id of the node whose view this is (the leader's when one answers).
    pub cluster_id: String,
    pub leader: Option<u64>,
    pub term: u64,
    /// "uniform", or "joint" while a membership change is between its two configs.
    pub membership: String,
    pub nodes: Vec<NodeRow>,
    pub voters_answering: usize,
    pub voters: usize,
    pub healthy: bool,
}

pub async fn collect(addrs: &[String]) -> anyhow::Result<ClusterStatus> {
    let first = admin::informed_status(addrs).await?;
    // Every member is asked at once, so a dead or stalled node costs one timeout in total,
    // not one each. The leader is asked too even if `first` does not list it yet.
    let mut asked: BTreeSet<String> = first.members.iter().map(|m| m.addr.clone()).collect();
    if !first.leader_addr.is_empty() {
        asked.insert(first.leader_addr.clone());
    }
    asked.remove(&first.addr);
    let mut replies = probe(&asked).await;
    replies.insert(first.addr.clone(), first.clone());
    // The leader knows the replication state and the newest membership; prefer its view,
    // and ask the members only it knows of.
    let view = leader_of(replies.values()).unwrap_or(first);
    let missing: BTreeSet<String> = view
        .members
        .iter()
        .map(|m| m.addr.clone())
        .filter(|a| !replies.contains_key(a) && !asked.contains(a))
        .collect();
    replies.extend(probe(&missing).await);
    let answers: BTreeMap<u64, &StatusReply> = view
        .members
        .iter()
        .filter_map(|m| {
            let s = replies.get(&m.addr).filter(|s| s.node_id == m.id)?;
            Some((m.id, s))
        })
        .collect();
    let leader = leader_of(answers.values().copied());
    let matched: BTreeMap<u64, Option<u64>> = leader
        .as_ref()
        .map(|l| {
            l.replication
                .iter()
                .map(|r| (r.id, r.matched_index))
                .collect()
        })
        .unwrap_or_default();
    let leader_last = leader.as_ref().map(|l| l.last_log_index);
    let nodes: Vec<NodeRow> = view
        .members
        .iter()
        .map(|m| {
            let s = answers.get(&m.id);
            let lag = match (leader_last, matched.get(&m.id)) {
                (Some(last), Some(Some(at))) => Some(last.saturating_sub(*at)),
                (Some(last), Some(None)) => Some(last),
                _ => None,
            };
            NodeRow {
                id: m.id,
                addr: m.addr.clone(),
                voter: m.voter,
                role: s.map_or(MemberRole::Unreachable, |s| {
                    MemberRole::seen(&s.role, Some(m.voter))
                }),
                term: s.map(|s| s.term),
                last_log_index: s.map(|s| s.last_log_index),
                last_applied: s.map(|s| s.last_applied),
                lag,
                clock_offset_ms: s.and_then(|s| s.clock_offset_ms),
                clock_problem: s.map(|s| s.clock_problem.clone()).unwrap_or_default(),
                cluster_id: s.map(|s| s.cluster_id.clone()),
            }
        })
        .collect();
    let voters = nodes.iter().filter(|n| n.voter).count();
    let voters_answering = nodes
        .iter()
        .filter(|n| n.voter && n.role != MemberRole::Unreachable)
        .count();
    Ok(ClusterStatus {
        cluster_id: leader.as_ref().unwrap_or(&view).cluster_id.clone(),
        leader: leader.as_ref().map(|l| l.node_id),
        term: answers.values().map(|s| s.term).max().unwrap_or(view.term),
        membership: if view.joint { "joint" } else { "uniform" }.into(),
        healthy: leader.is_some() && voters_answering * 2 > voters,
        nodes,
        voters_answering,
        voters,
    })
}

/// The node that calls itself leader at the highest term.
fn leader_of<'a>(replies: impl Iterator<Item = &'a StatusReply>) -> Option<StatusReply> {
    replies
        .filter(|s| MemberRole::reports_leader(&s.role))
        .max_by_key(|s| s.term)
        .cloned()
}

/// The status of each address that answers, all asked at once.
async fn probe(addrs: &BTreeSet<String>) -> BTreeMap<String, StatusReply> {
    futures::future::join_all(
        addrs
            .iter()
            .map(|addr| async move { admin::status(addr).await.ok().map(|s| (addr.clone(), s)) }),
    )
    .await
    .into_iter()
    .flatten()
    .collect()
}

pub fn print(status: &ClusterStatus) {
    println!(
        "leader: {}   term: {}   membership: {}   voters answering: {}/{}   cluster: {}",
        status.leader.map_or("none".into(), |l| l.to_string()),
        status.term,
        status.membership,
        status.voters_answering,
        status.voters,
        if status.cluster_id.is_empty() {
            "(no id)"
        } else {
            &status.cluster_id
        }
    );
    println!(
        "{:>4}  {:<22} {:<12} {:<6} {:>6} {:>10} {:>10} {:>8} {:>10}",
        "id", "address", "role", "voter", "term", "last log", "applied", "lag", "clock ms"
    );
    let dash = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    for n in &status.nodes {
        println!(
            "{:>4}  {:<22} {:<12} {:<6} {:>6} {:>10} {:>10} {:>8} {:>10}",
            n.id,
            n.addr,
            n.role,
            if n.voter { "yes" } else { "no" },
            dash(n.term),
            dash(n.last_log_index),
            dash(n.last_applied),
            dash(n.lag),
            n.clock_offset_ms
                .map_or("-".to_string(), |v| format!("{v:+}"))
        );
    }
    for n in &status.nodes {
        match &n.cluster_id {
            Some(id) if id.is_empty() => println!("node {} has no cluster id yet", n.id),
            Some(id) if *id != status.cluster_id => {
                println!("node {} reports another cluster: {id}", n.id)
            }
            _ => {}
        }
    }
    for n in status.nodes.iter().filter(|n| !n.clock_problem.is_empty()) {
        println!("node {} may not lead: {}", n.id, n.clock_problem);
    }
    if !status.healthy {
        println!("NOT HEALTHY: no leader, or fewer than a majority of voters answer");
    }
}
