//! The peer-facing Raft service: decodes openraft's requests and hands them to the local
//! Raft, after checking the request is meant for this node and, under mTLS, that the node it
//! claims to come from (sender, leader or candidate) is the one its certificate names.

use crate::codec::{decode, encode};
use crate::types::{NodeId, Raft, TypeConfig};
use cluster_config::mtls::Role;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use proto::raft::raft_server;
use proto::raft::{raft_reply, RaftReply, RaftRequest, WrongNode};
use serde::Serialize;
use tonic::{Request, Response, Status};

pub struct RaftService {
    raft: Raft,
    id: NodeId,
}

impl RaftService {
    pub fn new(raft: Raft, id: NodeId) -> Self {
        Self { raft, id }
    }

    fn check(&self, req: &RaftRequest) -> Option<RaftReply> {
        (req.target != self.id).then_some(RaftReply {
            result: Some(raft_reply::Result::WrongNode(WrongNode { actual: self.id })),
        })
    }
}

fn reply<T: Serialize, E: Serialize>(result: Result<T, E>) -> Response<RaftReply> {
    let result = match result {
        Ok(ok) => raft_reply::Result::Ok(encode(&ok)),
        Err(e) => raft_reply::Result::RaftError(encode(&e)),
    };
    Response::new(RaftReply {
        result: Some(result),
    })
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
        let req = req.into_inner();
        if let Some(wrong) = self.check(&req) {
            return Ok(Response::new(wrong));
        }
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&req.payload).map_err(bad)?;
        check_sender(role.as_ref(), req.from, rpc.vote.leader_id().voted_for())?;
        Ok(reply(self.raft.append_entries(rpc).await))
    }

    async fn vote(&self, req: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let role = req.extensions().get::<Role>().cloned();
        let req = req.into_inner();
        if let Some(wrong) = self.check(&req) {
            return Ok(Response::new(wrong));
        }
        let rpc: VoteRequest<NodeId> = decode(&req.payload).map_err(bad)?;
        check_sender(role.as_ref(), req.from, rpc.vote.leader_id().voted_for())?;
        Ok(reply(self.raft.vote(rpc).await))
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let role = req.extensions().get::<Role>().cloned();
        let req = req.into_inner();
        if let Some(wrong) = self.check(&req) {
            return Ok(Response::new(wrong));
        }
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(&req.payload).map_err(bad)?;
        check_sender(role.as_ref(), req.from, rpc.vote.leader_id().voted_for())?;
        Ok(reply(self.raft.install_snapshot(rpc).await))
    }
}
