//! The admin service: status for the CLI and the gateway's `/v1/cluster`, and the
//! membership and snapshot operations, which need the leader (others answer "not leader").

use crate::leader::LeaderHint;
use crate::types::{NodeId, Raft};
use openraft::{BasicNode, ChangeMembers, ServerState};
use proto::admin::admin_server;
use proto::admin::{
    admin_reply, AddLearnerRequest, AdminReply, ChangeMembershipRequest, Member, MetricsReply,
    MetricsRequest, NotLeader, Replication, SnapshotRequest, StatusReply, StatusRequest,
};
use std::collections::BTreeSet;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// How long `snapshot --wait` waits for the build before giving up.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(120);

pub struct AdminService {
    raft: Raft,
    addr: String,
}

impl AdminService {
    pub fn new(raft: Raft, addr: String) -> Self {
        Self { raft, addr }
    }
}

fn ok(message: impl Into<String>) -> Response<AdminReply> {
    Response::new(AdminReply {
        result: Some(admin_reply::Result::Ok(message.into())),
    })
}

fn failed<E: std::fmt::Display>(
    err: &openraft::error::RaftError<NodeId, E>,
    forward: Option<&openraft::error::ForwardToLeader<NodeId, BasicNode>>,
) -> Response<AdminReply> {
    let result = match forward {
        Some(fwd) => {
            let hint = LeaderHint::from_forward(fwd);
            admin_reply::Result::NotLeader(NotLeader {
                leader_id: hint.id,
                leader_addr: hint.addr,
            })
        }
        None => admin_reply::Result::Error(err.to_string()),
    };
    Response::new(AdminReply {
        result: Some(result),
    })
}

fn role(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

#[tonic::async_trait]
impl admin_server::Admin for AdminService {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, node)| Member {
                id: *id,
                addr: node.addr.clone(),
                voter: voters.contains(id),
            })
            .collect();
        let replication = m
            .replication
            .as_ref()
            .map(|r| {
                r.iter()
                    .map(|(id, matched)| Replication {
                        id: *id,
                        matched_index: matched.map(|l| l.index),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let hint = LeaderHint::from_metrics(&self.raft);
        Ok(Response::new(StatusReply {
            node_id: m.id,
            addr: self.addr.clone(),
            role: role(m.state).to_string(),
            term: m.current_term,
            leader_id: hint.id,
            leader_addr: hint.addr,
            last_log_index: m.last_log_index.unwrap_or(0),
            last_applied: m.last_applied.map_or(0, |l| l.index),
            snapshot_index: m.snapshot.map_or(0, |l| l.index),
            purged_index: m.purged.map_or(0, |l| l.index),
            members,
            joint: membership.get_joint_config().len() > 1,
            replication,
            millis_since_quorum_ack: m.millis_since_quorum_ack,
        }))
    }

    async fn add_learner(
        &self,
        req: Request<AddLearnerRequest>,
    ) -> Result<Response<AdminReply>, Status> {
        let req = req.into_inner();
        match self
            .raft
            .add_learner(req.id, BasicNode::new(&req.addr), req.blocking)
            .await
        {
            Ok(resp) => Ok(ok(format!(
                "node {} added as learner at log {}",
                req.id, resp.log_id
            ))),
            Err(e) => Ok(failed(&e, e.forward_to_leader())),
        }
    }

    async fn change_membership(
        &self,
        req: Request<ChangeMembershipRequest>,
    ) -> Result<Response<AdminReply>, Status> {
        let req = req.into_inner();
        if !req.remove_learners.is_empty() {
            let learners: BTreeSet<NodeId> = req.remove_learners.into_iter().collect();
            return match self
                .raft
                .change_membership(ChangeMembers::RemoveNodes(learners.clone()), false)
                .await
            {
                Ok(resp) => Ok(ok(format!(
                    "learners {learners:?} removed (log {})",
                    resp.log_id
                ))),
                Err(e) => Ok(failed(&e, e.forward_to_leader())),
            };
        }
        let voters: BTreeSet<NodeId> = req.voters.into_iter().collect();
        if voters.is_empty() {
            return Ok(Response::new(AdminReply {
                result: Some(admin_reply::Result::Error(
                    "a cluster needs at least one voter".into(),
                )),
            }));
        }
        match self
            .raft
            .change_membership(voters.clone(), req.retain)
            .await
        {
            Ok(resp) => Ok(ok(format!(
                "voters are now {voters:?} (log {})",
                resp.log_id
            ))),
            Err(e) => Ok(failed(&e, e.forward_to_leader())),
        }
    }

    async fn trigger_snapshot(
        &self,
        req: Request<SnapshotRequest>,
    ) -> Result<Response<AdminReply>, Status> {
        let target = self
            .raft
            .metrics()
            .borrow()
            .last_applied
            .map_or(0, |l| l.index);
        if let Err(e) = self.raft.trigger().snapshot().await {
            return Ok(Response::new(AdminReply {
                result: Some(admin_reply::Result::Error(e.to_string())),
            }));
        }
        if !req.into_inner().wait {
            return Ok(ok("snapshot requested"));
        }
        let waited = self
            .raft
            .wait(Some(SNAPSHOT_WAIT))
            .metrics(
                |m| m.snapshot.map_or(0, |l| l.index) >= target,
                "snapshot built",
            )
            .await;
        match waited {
            Ok(m) => Ok(ok(format!(
                "snapshot built at log index {}",
                m.snapshot.map_or(0, |l| l.index)
            ))),
            Err(e) => Ok(Response::new(AdminReply {
                result: Some(admin_reply::Result::Error(format!(
                    "snapshot not built: {e}"
                ))),
            })),
        }
    }

    async fn metrics(&self, _: Request<MetricsRequest>) -> Result<Response<MetricsReply>, Status> {
        let m = self.raft.metrics().borrow().clone();
        let json = serde_json::to_string(&m).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(MetricsReply { json }))
    }
}
