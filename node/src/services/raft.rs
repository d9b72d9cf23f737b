//! The peer-facing Raft service: decodes openraft's requests and hands them to the local
//! Raft, after checking the request is meant for this node.

use crate::codec::{decode, encode};
use crate::types::{NodeId, Raft};
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

fn bad(e: postcard::Error) -> Status {
    Status::invalid_argument(format!("undecodable raft request: {e}"))
}

#[tonic::async_trait]
impl raft_server::Raft for RaftService {
    async fn append_entries(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let req = req.into_inner();
        if let Some(wrong) = self.check(&req) {
            return Ok(Response::new(wrong));
        }
        let rpc = decode(&req.payload).map_err(bad)?;
        Ok(reply(self.raft.append_entries(rpc).await))
    }

    async fn vote(&self, req: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let req = req.into_inner();
        if let Some(wrong) = self.check(&req) {
            return Ok(Response::new(wrong));
        }
        let rpc = decode(&req.payload).map_err(bad)?;
        Ok(reply(self.raft.vote(rpc).await))
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftRequest>,
    ) -> Result<Response<RaftReply>, Status> {
        let req = req.into_inner();
        if let Some(wrong) = self.check(&req) {
            return Ok(Response::new(wrong));
        }
        let rpc = decode(&req.payload).map_err(bad)?;
        Ok(reply(self.raft.install_snapshot(rpc).await))
    }
}
