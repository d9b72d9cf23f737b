//! The Raft network over tonic. `new_client` is called per replication stream and per vote
//! or read-index round, so it only clones a cached, lazily connected channel per address.
//! AppendEntries travel on one long-lived stream per client (`AppendStream`): a unary call
//! costs a new HTTP/2 stream, whose headers go out a runtime poll or two before its data,
//! and headers and trailers both ways. Votes and snapshot chunks stay unary calls.
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
use proto::raft::{raft_reply, RaftReply, RaftRequest};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tonic::service::interceptor::InterceptedService;
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
    /// Per peer and address, shared by every client: openraft makes a client per read-index
    /// round as well, which sends one AppendEntries, and would otherwise open a stream each
    /// time.
    streams: Arc<Mutex<StreamsByPeer>>,
}

impl Network {
    pub fn new(self_id: NodeId, dialer: Dialer, identity: ClusterIdentity) -> Self {
        Self {
            self_id,
            channels: Channels::new(dialer),
            identity,
            budgets: Default::default(),
            streams: Default::default(),
        }
    }
}

/// Each peer's append streams, by its id and address.
type StreamsByPeer = HashMap<(NodeId, String), Arc<PeerStreams>>;

/// Idle append streams most kept per peer: one per replication stream and read-index round
/// in flight at once.
const IDLE_STREAMS: usize = 4;

/// How long a peer that did not know `AppendStream` gets calls of their own before the
/// stream is tried again (it may have been upgraded since).
const RETRY_STREAM_AFTER: Duration = Duration::from_secs(60);

/// The append streams open to one peer that no call is using, and whether the peer knows
/// them.
#[derive(Default)]
pub struct PeerStreams {
    idle: Mutex<Vec<AppendStream>>,
    unsupported_since: Mutex<Option<Instant>>,
}

impl PeerStreams {
    fn take(&self) -> Option<AppendStream> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn put_back(&self, stream: AppendStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_STREAMS {
            idle.push(stream);
        }
    }

    fn supported(&self) -> bool {
        let since = self
            .unsupported_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        since.is_none_or(|at| at.elapsed() >= RETRY_STREAM_AFTER)
    }

    fn unsupported(&self) {
        *self
            .unsupported_since
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
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
            streams: self
                .streams
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry((target, node.addr.clone()))
                .or_default()
                .clone(),
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
    /// The streams AppendEntries travel on (`AppendStream`). A call takes one out and puts
    /// it back only after a complete exchange: a call that times out, fails or is dropped
    /// halfway puts none back, so no reply can ever be read as the answer to a later
    /// request. The replies' `seq` checks that too.
    streams: Arc<PeerStreams>,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

type Client = RaftClient<InterceptedService<NodeChannel, Stamp>>;

#[derive(Clone, Copy)]
enum Method {
    Append,
    Vote,
    Snapshot,
}

impl Method {
    fn action(self) -> RPCTypes {
        match self {
            Method::Append => RPCTypes::AppendEntries,
            Method::Vote => RPCTypes::Vote,
            Method::Snapshot => RPCTypes::InstallSnapshot,
        }
    }
}

/// An open append stream: where requests go, where replies come from, and the next
/// request's number.
pub struct AppendStream {
    requests: mpsc::Sender<RaftRequest>,
    replies: tonic::Streaming<RaftReply>,
    next_seq: u64,
}

impl PeerClient {
    fn client<E: std::error::Error>(&self) -> RpcResult<Client, E> {
        let channel = self
            .channel
            .clone()
            .map_err(|e| RPCError::Unreachable(Unreachable::from(AnyError::error(e))))?;
        Ok(
            RaftClient::with_interceptor(channel, Stamp(self.identity.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
    }

    fn request(&self, payload: Vec<u8>, seq: u64) -> RaftRequest {
        RaftRequest {
            target: self.target,
            from: self.self_id,
            payload,
            seq,
        }
    }

    fn timeout<E: std::error::Error>(
        &self,
        method: Method,
        ttl: Duration,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        RPCError::Timeout(Timeout {
            action: method.action(),
            id: self.self_id,
            target: self.target,
            timeout: ttl,
        })
    }

    /// Sends `payload`, the postcard encoding of the request, in a call of its own.
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
        let mut client = self.client()?;
        let request = self.request(payload, 0);
        let ttl = option.hard_ttl();
        let call = async {
            match method {
                Method::Append => client.append_entries(request).await,
                Method::Vote => client.vote(request).await,
                Method::Snapshot => client.install_snapshot(request).await,
            }
        };
        match tokio::time::timeout(ttl, call).await {
            Err(_) => Err(self.timeout(method, ttl)),
            Ok(Err(status)) => Err(self.failed(&status)),
            Ok(Ok(reply)) => self.answer(reply.into_inner()),
        }
    }

    /// Sends an AppendEntries on the append stream, opening one if there is none; falls back
    /// to a call of its own for a peer that does not know the stream.
    async fn append<Resp, E>(&self, payload: Vec<u8>, option: RPCOption) -> RpcResult<Resp, E>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        if !self.streams.supported() {
            return self.call(Method::Append, payload, option).await;
        }
        let ttl = option.hard_ttl();
        let stream = self.streams.take();
        let exchanged = match tokio::time::timeout(ttl, self.exchange(stream, payload)).await {
            Err(_) => return Err(self.timeout(Method::Append, ttl)),
            Ok(exchanged) => exchanged,
        };
        match exchanged {
            Ok((reply, stream)) => {
                self.streams.put_back(stream);
                self.answer(reply)
            }
            Err(Exchange::Unsupported(payload)) => {
                tracing::info!(
                    target = self.target,
                    "peer does not take AppendStream (an older version): AppendEntries one call each"
                );
                self.streams.unsupported();
                self.call(Method::Append, payload, option).await
            }
            Err(Exchange::Failed(status)) => Err(self.failed(&status)),
        }
    }

    async fn exchange(
        &self,
        stream: Option<AppendStream>,
        payload: Vec<u8>,
    ) -> Result<(RaftReply, AppendStream), Exchange> {
        let mut stream = match stream {
            Some(stream) => stream,
            None => match self.open().await {
                Ok(stream) => stream,
                Err(None) => return Err(Exchange::Unsupported(payload)),
                Err(Some(status)) => return Err(Exchange::Failed(status)),
            },
        };
        let seq = stream.next_seq;
        stream.next_seq += 1;
        let gone = || Exchange::Failed(tonic::Status::unavailable("the append stream ended"));
        stream
            .requests
            .send(self.request(payload, seq))
            .await
            .map_err(|_| gone())?;
        match stream.replies.message().await.map_err(Exchange::Failed)? {
            Some(reply) if reply.seq == seq => Ok((reply, stream)),
            Some(reply) => Err(Exchange::Failed(tonic::Status::internal(format!(
                "the append stream answered request {} where {seq} was due",
                reply.seq
            )))),
            None => Err(gone()),
        }
    }

    /// A new append stream; `Err(None)` if the peer does not know `AppendStream`.
    async fn open(&self) -> Result<AppendStream, Option<tonic::Status>> {
        let mut client = self
            .client::<openraft::error::Infallible>()
            .map_err(|e| Some(tonic::Status::unavailable(e.to_string())))?;
        // One request waits at most: the next is sent only after this one's reply.
        let (requests, outgoing) = mpsc::channel(1);
        let outgoing = tonic::codegen::tokio_stream::wrappers::ReceiverStream::new(outgoing);
        match client.append_stream(outgoing).await {
            Ok(replies) => Ok(AppendStream {
                requests,
                replies: replies.into_inner(),
                next_seq: 1,
            }),
            Err(status) if status.code() == tonic::Code::Unimplemented => Err(None),
            Err(status) => Err(Some(status)),
        }
    }

    /// A call's failure as openraft takes it: a peer that is down, or refuses this node's
    /// cluster id, is unreachable (openraft backs off); anything else is a network error.
    fn failed<E: std::error::Error>(
        &self,
        status: &tonic::Status,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        match status.code() {
            tonic::Code::Unavailable | tonic::Code::FailedPrecondition => {
                if status.code() == tonic::Code::FailedPrecondition {
                    tracing::debug!(target = self.target, %status, "peer refused this node's cluster id");
                }
                RPCError::Unreachable(Unreachable::new(status))
            }
            _ => RPCError::Network(NetworkError::new(status)),
        }
    }

    fn answer<Resp, E>(&self, reply: RaftReply) -> RpcResult<Resp, E>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
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

/// Why an exchange on the append stream failed.
enum Exchange {
    /// The peer does not know `AppendStream`; the request was not sent.
    Unsupported(Vec<u8>),
    Failed(tonic::Status),
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
            return self.append(payload, option).await;
        }
        let in_flight = AppendInFlight {
            budget: self.budget.clone(),
            target: self.target,
            sent: payload.len(),
            started: Instant::now(),
            finished: false,
        };
        let deadline = option.hard_ttl();
        let result = self.append(payload, option).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::Vote;
    use proto::raft::raft_server::{Raft as RaftRpc, RaftServer};
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tonic::codegen::tokio_stream::Stream;
    use tonic::{Request, Response, Status, Streaming};

    /// A peer that answers every AppendEntries with success, counting how they came.
    #[derive(Clone, Default)]
    struct Peer {
        streams: bool,
        /// Replies on a stream carry the wrong `seq` from this request on.
        wrong_seq_from: Option<u64>,
        unary: Arc<AtomicUsize>,
        opened: Arc<AtomicUsize>,
        streamed: Arc<AtomicUsize>,
    }

    fn success(seq: u64) -> RaftReply {
        RaftReply {
            result: Some(raft_reply::Result::Ok(encode(
                &AppendEntriesResponse::<NodeId>::Success,
            ))),
            seq,
        }
    }

    type Replies = Pin<Box<dyn Stream<Item = Result<RaftReply, Status>> + Send>>;

    #[tonic::async_trait]
    impl RaftRpc for Peer {
        async fn append_entries(
            &self,
            _: Request<RaftRequest>,
        ) -> Result<Response<RaftReply>, Status> {
            self.unary.fetch_add(1, Ordering::SeqCst);
            Ok(Response::new(success(0)))
        }

        type AppendStreamStream = Replies;

        async fn append_stream(
            &self,
            req: Request<Streaming<RaftRequest>>,
        ) -> Result<Response<Replies>, Status> {
            if !self.streams {
                return Err(Status::unimplemented("not here"));
            }
            self.opened.fetch_add(1, Ordering::SeqCst);
            let peer = self.clone();
            let replies = futures::stream::unfold(req.into_inner(), move |mut requests| {
                let peer = peer.clone();
                async move {
                    let request = requests.message().await.ok()??;
                    peer.streamed.fetch_add(1, Ordering::SeqCst);
                    let seq = match peer.wrong_seq_from {
                        Some(from) if request.seq >= from => request.seq + 1,
                        _ => request.seq,
                    };
                    Some((Ok(success(seq)), requests))
                }
            });
            Ok(Response::new(Box::pin(replies)))
        }

        async fn vote(&self, _: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
            Err(Status::unimplemented("not here"))
        }

        async fn install_snapshot(
            &self,
            _: Request<RaftRequest>,
        ) -> Result<Response<RaftReply>, Status> {
            Err(Status::unimplemented("not here"))
        }
    }

    async fn serve(peer: Peer) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(RaftServer::new(peer))
                .serve_with_incoming(incoming),
        );
        addr
    }

    async fn client_of(addr: String, dir: &std::path::Path) -> PeerClient {
        let identity = ClusterIdentity::open(dir).unwrap();
        Network::new(1, Dialer::Plain, identity)
            .new_client(2, &BasicNode { addr })
            .await
    }

    async fn heartbeat(
        client: &mut PeerClient,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        let rpc = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(1, 1),
            prev_log_id: None,
            entries: vec![],
            leader_commit: None,
        };
        client
            .append_entries(rpc, RPCOption::new(Duration::from_secs(5)))
            .await
    }

    #[tokio::test]
    async fn appends_share_one_stream() {
        let dir = tempfile::tempdir().unwrap();
        let peer = Peer {
            streams: true,
            ..Peer::default()
        };
        let mut client = client_of(serve(peer.clone()).await, dir.path()).await;
        for _ in 0..3 {
            assert!(matches!(
                heartbeat(&mut client).await,
                Ok(AppendEntriesResponse::Success)
            ));
        }
        assert_eq!(peer.opened.load(Ordering::SeqCst), 1);
        assert_eq!(peer.streamed.load(Ordering::SeqCst), 3);
        assert_eq!(peer.unary.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn clients_of_one_network_share_its_streams() {
        // openraft makes a client per read-index round: each must not open a stream.
        let dir = tempfile::tempdir().unwrap();
        let peer = Peer {
            streams: true,
            ..Peer::default()
        };
        let addr = serve(peer.clone()).await;
        let mut network =
            Network::new(1, Dialer::Plain, ClusterIdentity::open(dir.path()).unwrap());
        for _ in 0..3 {
            let mut client = network
                .new_client(2, &BasicNode { addr: addr.clone() })
                .await;
            assert!(heartbeat(&mut client).await.is_ok());
        }
        assert_eq!(peer.opened.load(Ordering::SeqCst), 1);
        assert_eq!(peer.streamed.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_peer_without_the_stream_gets_calls_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let peer = Peer::default();
        let mut client = client_of(serve(peer.clone()).await, dir.path()).await;
        for _ in 0..2 {
            assert!(matches!(
                heartbeat(&mut client).await,
                Ok(AppendEntriesResponse::Success)
            ));
        }
        assert_eq!(peer.unary.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_reply_to_another_request_fails_the_call_and_the_stream_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let peer = Peer {
            streams: true,
            wrong_seq_from: Some(2),
            ..Peer::default()
        };
        let mut client = client_of(serve(peer.clone()).await, dir.path()).await;
        assert!(heartbeat(&mut client).await.is_ok());
        assert!(matches!(
            heartbeat(&mut client).await,
            Err(RPCError::Network(_))
        ));
        // A new stream, whose first request is answered as it should be.
        assert!(heartbeat(&mut client).await.is_ok());
        assert_eq!(peer.opened.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_call_dropped_halfway_leaves_no_stream_behind() {
        let dir = tempfile::tempdir().unwrap();
        let peer = Peer {
            streams: true,
            ..Peer::default()
        };
        let mut client = client_of(serve(peer.clone()).await, dir.path()).await;
        assert!(heartbeat(&mut client).await.is_ok());
        // Dropped at its first wait: the stream was taken out and is not put back.
        {
            let call = heartbeat(&mut client);
            futures::pin_mut!(call);
            assert!(futures::poll!(call.as_mut()).is_pending());
        }
        assert!(client.streams.idle.lock().unwrap().is_empty());
        assert!(heartbeat(&mut client).await.is_ok());
        assert_eq!(peer.opened.load(Ordering::SeqCst), 2);
    }
}
