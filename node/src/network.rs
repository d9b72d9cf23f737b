//! The Raft network over tonic. `new_client` is called per replication stream and per vote
//! or read-index round, so it only clones a cached, lazily connected channel per address.
//! A connect failure is `Unreachable` (openraft backs off); a peer that answers as another
//! node id is refused the same way, since its address is wrong, and so is a peer that refuses
//! this node's cluster id (`FailedPrecondition`): it belongs to another cluster, or has no id
//! yet and will not vote, and openraft's backoff keeps that from becoming a hot retry loop.

use crate::append_budget::{AppendBudget, MAX_APPEND_BYTES};
use crate::cluster_id::{ClusterIdentity, Stamp};
use crate::codec::{decode, encode};
use crate::types::{NodeId, TypeConfig};
use cluster_config::mtls::Dialer;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, BasicNode};
use proto::eager_end::EagerEnd;
use proto::raft::raft_client::RaftClient;
use proto::raft::{raft_reply, RaftRequest};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// Largest gRPC message a node sends or accepts, sized from what is legal rather than
/// "anything": an AppendEntries is split above its peer's budget (`append_budget`, at most
/// 8 MiB) unless it is one entry; one entry is one group commit (capped at
/// `group_commit::MAX_ENTRY_BYTES`, 4 MiB) or a single Submit larger than that. The largest
/// command is a 64-line order with 64-character SKUs and 128-character ids, about 5 KiB
/// encoded, so a gateway's largest order batch (1,000 orders) is about 5 MiB; a Submit of
/// 16 MiB already holds over 3,000 such orders. Snapshot chunks (openraft's 3 MiB) and read
/// pages (1,000 records) are far below. 32 MiB leaves room for all of these and bounds what
/// one peer or client can make a node buffer (256 MiB did not).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// A channel to one node, whose requests end with their last data frame (`eager_end`).
pub type NodeChannel = EagerEnd<Channel>;

/// Channels to peers, shared by all clients the factory makes.
#[derive(Clone, Default)]
pub struct Channels {
    by_addr: Arc<Mutex<HashMap<String, NodeChannel>>>,
    dialer: Dialer,
}

impl Channels {
    pub fn new(dialer: Dialer) -> Self {
        Self {
            by_addr: Default::default(),
            dialer,
        }
    }

    /// A lazily connected channel to `addr`, created once and reused.
    pub fn get(&self, addr: &str) -> Result<NodeChannel, tonic::transport::Error> {
        let mut map = self.by_addr.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ch) = map.get(addr) {
            return Ok(ch.clone());
        }
        let ch = self
            .dialer
            .endpoint(addr)?
            .connect_timeout(std::time::Duration::from_millis(500))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(std::time::Duration::from_secs(5))
            .connect_lazy();
        let ch = EagerEnd::new(ch);
        map.insert(addr.to_string(), ch.clone());
        Ok(ch)
    }
}

#[derive(Clone)]
pub struct Network {
    self_id: NodeId,
    channels: Channels,
    identity: ClusterIdentity,
    /// One per peer, kept across replication streams: a new term must not start a slow
    /// follower at the full budget again.
    budgets: Arc<Mutex<HashMap<NodeId, Arc<AppendBudget>>>>,
}

impl Network {
    pub fn new(self_id: NodeId, dialer: Dialer, identity: ClusterIdentity) -> Self {
        Self {
            self_id,
            channels: Channels::new(dialer),
            identity,
            budgets: Default::default(),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            self_id: self.self_id,
            target,
            channel: self.channels.get(&node.addr).map_err(|e| e.to_string()),
            identity: self.identity.clone(),
            budget: self
                .budgets
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(target)
                .or_default()
                .clone(),
        }
    }
}

pub struct PeerClient {
    self_id: NodeId,
    target: NodeId,
    channel: Result<NodeChannel, String>,
    identity: ClusterIdentity,
    budget: Arc<AppendBudget>,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

#[derive(Clone, Copy)]
enum Method {
    Append,
    Vote,
    Snapshot,
}

impl PeerClient {
    /// Sends `payload`, the postcard encoding of the request.
    async fn call<Resp, E>(
        &self,
        method: Method,
        payload: Vec<u8>,
        option: RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let channel = self
            .channel
            .clone()
            .map_err(|e| RPCError::Unreachable(Unreachable::from(AnyError::error(e))))?;
        let mut client = RaftClient::with_interceptor(channel, Stamp(self.identity.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let request = RaftRequest {
            target: self.target,
            from: self.self_id,
            payload,
        };
        let ttl = option.hard_ttl();
        let call = async {
            match method {
                Method::Append => client.append_entries(request).await,
                Method::Vote => client.vote(request).await,
                Method::Snapshot => client.install_snapshot(request).await,
            }
        };
        let reply = match tokio::time::timeout(ttl, call).await {
            Err(_) => {
                let action = match method {
                    Method::Append => RPCTypes::AppendEntries,
                    Method::Vote => RPCTypes::Vote,
                    Method::Snapshot => RPCTypes::InstallSnapshot,
                };
                return Err(RPCError::Timeout(Timeout {
                    action,
                    id: self.self_id,
                    target: self.target,
                    timeout: ttl,
                }));
            }
            Ok(Err(status))
                if matches!(
                    status.code(),
                    tonic::Code::Unavailable | tonic::Code::FailedPrecondition
                ) =>
            {
                if status.code() == tonic::Code::FailedPrecondition {
                    tracing::debug!(target = self.target, %status, "peer refused this node's cluster id");
                }
                return Err(RPCError::Unreachable(Unreachable::new(&status)));
            }
            Ok(Err(status)) => return Err(RPCError::Network(NetworkError::new(&status))),
            Ok(Ok(reply)) => reply.into_inner(),
        };
        let bad = |e: postcard::Error| RPCError::Network(NetworkError::new(&e));
        match reply.result {
            Some(raft_reply::Result::Ok(bytes)) => decode(&bytes).map_err(bad),
            Some(raft_reply::Result::RaftError(bytes)) => {
                let err: RaftError<NodeId, E> = decode(&bytes).map_err(bad)?;
                Err(RPCError::RemoteError(RemoteError::new(self.target, err)))
            }
            Some(raft_reply::Result::WrongNode(w)) => {
                tracing::warn!(
                    target = self.target,
                    actual = w.actual,
                    "peer address answers as another node"
                );
                Err(RPCError::Unreachable(Unreachable::from(AnyError::error(
                    format!(
                        "node {} answered at the address of node {}",
                        w.actual, self.target
                    ),
                ))))
            }
            None => Err(RPCError::Network(NetworkError::from(AnyError::error(
                "empty raft reply",
            )))),
        }
    }
}

/// An append with entries on its way: when it is dropped before `finish` (openraft's own
/// deadline, the heartbeat interval, ran out first), or finishes with a timeout, the peer's
/// budget shrinks.
struct AppendInFlight {
    budget: Arc<AppendBudget>,
    target: NodeId,
    sent: usize,
    started: Instant,
    finished: bool,
}

impl AppendInFlight {
    fn finish<T>(mut self, result: &RpcResult<T, openraft::error::Infallible>, deadline: Duration) {
        self.finished = true;
        match result {
            Err(RPCError::Timeout(_)) => self.missed(),
            Ok(_) => self
                .budget
                .answered(self.sent, self.started.elapsed(), deadline),
            // Unreachable or refused: nothing learnt about how much the peer can take.
            Err(_) => {}
        }
    }

    fn missed(&self) {
        let Some((before, after)) = self.budget.missed_deadline(self.sent) else {
            return;
        };
        // Once when a peer first falls behind; the budget's ups and downs after are detail.
        if before == MAX_APPEND_BYTES {
            tracing::warn!(
                target = self.target,
                sent = self.sent,
                budget = after,
                "an AppendEntries missed its deadline (the heartbeat interval); smaller ones follow"
            );
        } else {
            tracing::debug!(
                target = self.target,
                sent = self.sent,
                budget = after,
                "AppendEntries budget cut"
            );
        }
    }
}

impl Drop for AppendInFlight {
    fn drop(&mut self) {
        if !self.finished {
            self.missed();
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        let payload = encode(&rpc);
        if let Err(too_large) = self.budget.check(payload.len(), rpc.entries.len()) {
            tracing::debug!(bytes = payload.len(), entries = rpc.entries.len(), hint = %too_large, "AppendEntries split");
            return Err(RPCError::PayloadTooLarge(too_large));
        }
        if rpc.entries.is_empty() {
            return self.call(Method::Append, payload, option).await;
        }
        let in_flight = AppendInFlight {
            budget: self.budget.clone(),
            target: self.target,
            sent: payload.len(),
            started: Instant::now(),
            finished: false,
        };
        let deadline = option.hard_ttl();
        let result = self.call(Method::Append, payload, option).await;
        in_flight.finish(&result, deadline);
        result
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.call(Method::Snapshot, encode(&rpc), option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        self.call(Method::Vote, encode(&rpc), option).await
    }
}
