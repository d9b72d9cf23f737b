//! The peer-facing Raft service: decodes openraft's requests and hands them to the local
//! Raft, after checking the request is meant for this node and, under mTLS, that the node it
//! claims to come from (sender, leader or candidate) is the one its certificate names.
//!
//! AppendEntries come one at a time (`append_entries`) or as messages on a long-lived stream
//! (`append_stream`); both go through `append`.
//!
//! Calls stamped with another cluster's id never get here (`cluster_id::Check` refuses them).
//! A node without an id takes the one a leader's AppendEntries or InstallSnapshot carries,
//! stored before it answers. Until then a node with no Raft state (new or wiped) votes for no
//! one, with one exception: the initialiser's first campaign of a brand-new cluster (see
//! `may_vote_without_id`).

use crate::cluster_id::{self, AdoptError, ClusterIdentity};
use crate::codec::{decode, encode};
use crate::types::{NodeId, Raft, TypeConfig};
use cluster_config::mtls::Role;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::LogId;
use proto::raft::raft_server;
use proto::raft::{raft_reply, RaftReply, RaftRequest, WrongNode};
use serde::Serialize;
use std::pin::Pin;
use tokio::sync::watch;
use tonic::codegen::tokio_stream::Stream;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

#[derive(Clone)]
pub struct RaftService {
    raft: Raft,
    id: NodeId,
    identity: ClusterIdentity,
    /// The lowest id of `initial_members`, when this node's config has them.
    initialiser: Option<NodeId>,
    /// True once the node is stopping: append streams end then, since a server that stops
    /// waits for its open streams, and a leader never ends its own.
    stopping: watch::Receiver<bool>,
}

impl RaftService {
    pub fn new(
        raft: Raft,
        id: NodeId,
        identity: ClusterIdentity,
        initialiser: Option<NodeId>,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        Self {
            raft,
            id,
            identity,
            initialiser,
            stopping,
        }
    }

    /// Takes the leader's cluster id if this node has none, durably, before the request is
    /// acted on.
    async fn adopt(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
        let Some(offered) = cluster_id::offered(metadata)? else {
            return Ok(());
        };
        if self.identity.get().is_some() {
            return Ok(()); // equal: the gate refused any other
        }
        match self.identity.adopt(offered).await {
            Ok(()) => {
                tracing::info!(cluster_id = %offered, "joined cluster: adopted its id from the leader");
                Ok(())
            }
            Err(AdoptError::Mismatch { mine, offered }) => Err(cluster_id::mismatch(mine, offered)),
            Err(e @ AdoptError::Store(_)) => Err(Status::unavailable(e.to_string())),
        }
    }

    /// A node that does not know its cluster must not vote: a wiped member restarted under its
    /// old id would vote again in a term it already voted in, for a candidate that may lack
    /// entries it had acknowledged. Nodes with Raft state but no id (data dirs of older
    /// versions) vote as before: their stored vote keeps them from voting twice. The one vote
    /// a stateless node gives is to the initialiser campaigning with nothing but the initial
    /// membership entry (log id 0-0): no leader has been elected with that log, so nothing
    /// can have been committed that the vote could lose, and without it a new cluster of more
    /// than one voter would never elect its first leader.
    async fn may_vote_without_id(&self, rpc: &VoteRequest<NodeId>) -> Result<(), Status> {
        if self.identity.get().is_some()
            || self
                .raft
                .is_initialized()
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?
        {
            return Ok(());
        }
        let candidate = rpc.vote.leader_id().voted_for();
        if candidate.is_some()
            && candidate == self.initialiser
            && rpc.last_log_id == Some(LogId::default())
        {
            return Ok(());
        }
        Err(Status::failed_precondition(format!(
            "node {} has no cluster id yet and votes for no one until a leader replicates to it",
            self.id
        )))
    }

    fn check(&self, req: &RaftRequest) -> Option<RaftReply> {
        (req.target != self.id).then_some(RaftReply {
            result: Some(raft_reply::Result::WrongNode(WrongNode { actual: self.id })),
            seq: req.seq,
        })
    }

    /// One AppendEntries, from a unary call or a message on a stream.
    async fn append(
        &self,
        role: Option<&Role>,
        metadata: &MetadataMap,
        req: RaftRequest,
    ) -> Result<RaftReply, Status> {
        if let Some(wrong) = self.check(&req) {
            return Ok(wrong);
        }
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&req.payload).map_err(bad)?;
        check_sender(role, req.from, rpc.vote.leader_id().voted_for())?;
        self.adopt(metadata).await?;
        let mut reply = reply(self.raft.append_entries(rpc).await);
        reply.seq = req.seq;
        Ok(reply)
    }
}

fn reply<T: Serialize, E: Serialize>(result: Result<T, E>) -> RaftReply {
    let result = match result {
        Ok(ok) => raft_reply::Result::Ok(encode(&ok)),
        Err(e) => raft_reply::Result::RaftError(encode(&e)),
    };
    RaftReply {
        result: Some(result),
        seq: 0,
    }
}

/// The replies of one append stream, in the order of its requests.
type Replies = Pin<Box<dyn Stream<Item = Result<RaftReply, Status>> + Send>>;

/// What an append stream's replies are made from: the requests still to come and what each
/// is checked with. A refused request ends the stream with its status, as a unary call
/// would have failed; the node stopping ends it too.
struct AppendStream {
    service: RaftService,
    role: Option<Role>,
    metadata: MetadataMap,
    requests: Streaming<RaftRequest>,
    ended: bool,
}

impl AppendStream {
    fn replies(self) -> Replies {
        Box::pin(futures::stream::unfold(self, |mut this| async move {
            if this.ended {
                return None;
            }
            let mut stopping = this.service.stopping.clone();
            let next = tokio::select! {
                next = this.requests.message() => next,
                _ = stopping.wait_for(|stopping| *stopping) => return None,
            };
            let reply = match next {
                Ok(None) => return None,
                Ok(Some(req)) => {
                    this.service
                        .append(this.role.as_ref(), &this.metadata, req)
                        .await
                }
                Err(status) => Err(status),
            };
            this.ended = reply.is_err();
            Some((reply, this))
        }))
    }
}

/// Under mTLS the gate put the caller's role in the request; a node certificate for one id
/// must not speak for another (a stolen key of one node cannot forge votes of all).
fn check_sender(role: Option<&Role>, from: NodeId, leader: Option<NodeId>) -> Result<(), Status> {
    let Some(role) = role else {
        return Ok(()); // an insecure cluster: no roles
    };
    let Role::Node(id) = role else {
        return Err(Status::permission_denied(
            "the raft service needs a node certificate",
        ));
    };
    if from != *id || leader.is_some_and(|l| l != *id) {
        return Err(Status::permission_denied(format!(
            "the certificate of node {id} cannot send as node {}",
            leader.filter(|l| l != id).unwrap_or(from)
        )));
    }
    Ok(())
}

fn bad(e: postcard::Error) -> Status {
    Status::invalid_argument(format!("undecodable raft request: {e}"))
}

#[tonic::async_trait]
impl raft_server::Raft for RaftService {
    async fn append_entries(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let role = req.extensions().get::<Role>().cloned();
        let (metadata, _, req) = req.into_parts();
        self.append(role.as_ref(), &metadata, req)
            .await
            .map(Response::new)
    }

    type AppendStreamStream = Replies;

    async fn append_stream(
        &self,
        req: Request<Streaming<RaftRequest>>,
    ) -> Result<Response<Replies>, Status> {
        let role = req.extensions().get::<Role>().cloned();
        let (metadata, _, requests) = req.into_parts();
        let stream = AppendStream {
            service: self.clone(),
            role,
            metadata,
            requests,
            ended: false,
        };
        Ok(Response::new(stream.replies()))
    }

    async fn vote(&self, req: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let role = req.extensions().get::<Role>().cloned();
        let req = req.into_inner();
        if let Some(wrong) = self.check(&req) {
            return Ok(Response::new(wrong));
        }
        let rpc: VoteRequest<NodeId> = decode(&req.payload).map_err(bad)?;
        check_sender(role.as_ref(), req.from, rpc.vote.leader_id().voted_for())?;
        self.may_vote_without_id(&rpc).await?;
        Ok(Response::new(reply(self.raft.vote(rpc).await)))
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let role = req.extensions().get::<Role>().cloned();
        let (metadata, _, req) = req.into_parts();
        if let Some(wrong) = self.check(&req) {
            return Ok(Response::new(wrong));
        }
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(&req.payload).map_err(bad)?;
        check_sender(role.as_ref(), req.from, rpc.vote.leader_id().voted_for())?;
        self.adopt(&metadata).await?;
        Ok(Response::new(reply(self.raft.install_snapshot(rpc).await)))
    }
}
