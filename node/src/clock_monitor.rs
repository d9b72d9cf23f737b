//! The clock monitor, after CockroachDB's: every half second, ask each voter peer for its
//! wall clock, keep the offsets measured within the last few seconds, and judge this node's
//! clock with `clock::judge`. A node whose clock is too far off must not lead: it stops
//! campaigning, and a leader stops its heartbeats so that the others elect a new leader in
//! a higher term. Proposals and reads wait for a good verdict (`Clocks::fit_to_lead`).

use crate::clock::{judge, Clocks, Offset, Verdict};
use crate::cluster_id::{ClusterIdentity, Stamp};
use crate::metrics::PeerLabels;
use crate::types::{NodeId, Raft};
use cluster_config::mtls::Dialer;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use proto::admin::admin_client::AdminClient;
use proto::admin::ClockRequest;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

const INTERVAL: Duration = Duration::from_millis(500);
/// Slow calls still count (with their round trip as uncertainty): under network delay a
/// healthy node must stay fit, and a slow answer only widens the benefit of the doubt.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// Measurements older than this no longer count.
const FRESH: Duration = Duration::from_secs(5);

struct Peer {
    addr: String,
    client: AdminClient<InterceptedService<Channel, Stamp>>,
    last: Option<(Offset, Instant)>,
}

/// Each peer's last fresh offset, in seconds, for the node's metrics.
pub type OffsetGauges = Family<PeerLabels, Gauge<f64, AtomicU64>>;

pub fn start(
    raft: Raft,
    clocks: Clocks,
    me: NodeId,
    dialer: Dialer,
    identity: ClusterIdentity,
    offsets: OffsetGauges,
) {
    tokio::spawn(async move {
        let mut peers: HashMap<NodeId, Peer> = HashMap::new();
        let mut standing_aside = false;
        let mut exported = BTreeSet::new();
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(voters) = voter_peers(&raft, me) else {
                // Not a member yet: no one to compare with, and nothing to lead.
                clocks.set_verdict(Verdict::not_yet());
                continue;
            };
            peers.retain(|id, _| voters.iter().any(|(v, _)| v == id));
            for (id, addr) in &voters {
                if peers.get(id).is_none_or(|p| &p.addr != addr) {
                    match dialer.endpoint(addr) {
                        Ok(endpoint) => {
                            let channel = endpoint
                                .connect_timeout(CALL_TIMEOUT)
                                .timeout(CALL_TIMEOUT)
                                .connect_lazy();
                            peers.insert(
                                *id,
                                Peer {
                                    addr: addr.clone(),
                                    client: AdminClient::with_interceptor(
                                        channel,
                                        Stamp(identity.clone()),
                                    ),
                                    last: None,
                                },
                            );
                        }
                        Err(e) => tracing::warn!(peer = id, %addr, error = %e, "bad peer address"),
                    }
                }
            }
            let calls = peers.iter().map(|(id, peer)| {
                let mut client = peer.client.clone();
                let clocks = clocks.clone();
                let id = *id;
                async move {
                    let sent = clocks.wall_ms();
                    let reply = client.clock(ClockRequest {}).await;
                    let received = clocks.wall_ms();
                    (
                        id,
                        reply.map(|r| Offset::measure(sent, r.into_inner().wall_ms, received)),
                    )
                }
            });
            for (id, measured) in futures::future::join_all(calls).await {
                match measured {
                    Ok(offset) => {
                        if let Some(peer) = peers.get_mut(&id) {
                            peer.last = Some((offset, Instant::now()));
                        }
                    }
                    Err(status) => tracing::debug!(peer = id, %status, "clock call failed"),
                }
            }
            let fresh: Vec<Offset> = peers
                .values()
                .filter_map(|p| p.last)
                .filter(|(_, at)| at.elapsed() < FRESH)
                .map(|(offset, _)| offset)
                .collect();
            export_offsets(&offsets, &peers, &mut exported);
            let verdict = judge(clocks.max_offset_ms(), voters.len(), &fresh);
            let previous = clocks.set_verdict(verdict.clone());
            log_change(&previous, &verdict);
            // Standing aside is safe only once the membership is committed: until then this
            // node may be the only one that knows it (the bootstrapping node of a new
            // cluster), and without its campaign no one would ever lead. As leader meanwhile
            // it still refuses every proposal and read.
            let aside = verdict.too_far
                && membership_committed(&raft)
                && !crate::clock::WALL_CLOCK_DEADLINES;
            if aside != standing_aside {
                stand_aside(&raft, aside);
                standing_aside = aside;
            }
        }
    });
}

/// The voters other than `me`, with their addresses; `None` while this node knows no
/// membership (before the cluster is initialised or before it was added). A learner does not
/// vote, so its clock is not asked; a learner itself still judges its clock by the voters.
fn voter_peers(raft: &Raft, me: NodeId) -> Option<Vec<(NodeId, String)>> {
    let metrics = raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    membership.nodes().next()?;
    Some(
        membership
            .voter_ids()
            .filter(|id| *id != me)
            .filter_map(|id| membership.get_node(&id).map(|n| (id, n.addr.clone())))
            .collect(),
    )
}

/// A peer that left, or whose measurement went stale, drops out rather than keep its last
/// figure: an alert on the offset must not fire (or stay quiet) on old news. `exported` is
/// the set of peers this exported last time.
fn export_offsets(
    offsets: &OffsetGauges,
    peers: &HashMap<NodeId, Peer>,
    exported: &mut BTreeSet<NodeId>,
) {
    let mut now = BTreeSet::new();
    for (id, peer) in peers {
        if let Some((offset, at)) = peer.last {
            if at.elapsed() < FRESH {
                offsets
                    .get_or_create(&PeerLabels { peer: *id })
                    .set(offset.ahead_ms as f64 / 1000.0);
                now.insert(*id);
            }
        }
    }
    for gone in exported.difference(&now) {
        offsets.remove(&PeerLabels { peer: *gone });
    }
    *exported = now;
}

fn membership_committed(raft: &Raft) -> bool {
    let metrics = raft.metrics().borrow().clone();
    let membership_at = metrics.membership_config.log_id().map(|l| l.index);
    let applied = metrics.last_applied.map(|l| l.index);
    membership_at <= applied
}

/// Campaigning and heartbeats are what make a node lead; a node with a bad clock gives both
/// up (a leader's silence lets the others elect a new one), and gets them back once its
/// clock agrees again.
fn stand_aside(raft: &Raft, aside: bool) {
    raft.runtime_config().elect(!aside);
    raft.runtime_config().heartbeat(!aside);
    if aside {
        tracing::warn!("standing aside: no campaigns, no heartbeats, until the clock agrees");
    } else {
        tracing::info!("campaigning and heartbeats resumed");
    }
}

fn log_change(previous: &Verdict, now: &Verdict) {
    if previous.fit != now.fit {
        if now.fit {
            tracing::info!(offset_ms = ?now.offset_ms, "clock agrees with the peers; this node may lead");
        } else {
            tracing::warn!(offset_ms = ?now.offset_ms, problem = %now.problem, "this node may not lead");
        }
    }
}
