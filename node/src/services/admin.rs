//! The admin service: status for the CLI and the gateway's `/v1/cluster`, and the
//! membership and snapshot operations, which need the leader (others answer "not leader").

use crate::clock::Clocks;
use crate::cluster_id::ClusterIdentity;
use crate::leader::LeaderHint;
use crate::types::{NodeId, Raft, TypeConfig};
use cluster_config::mtls::Role;
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::raft::ClientWriteResponse;
use openraft::{BasicNode, ChangeMembers, Membership, ServerState};
use proto::admin::admin_server;
use proto::admin::change_membership_request::Change;
use proto::admin::{
    admin_reply, AddLearnerRequest, AdminReply, ChangeMembershipRequest, ClockReply, ClockRequest,
    Member, MetricsReply, MetricsRequest, NotLeader, Replication, SnapshotRequest,
    StateDigestReply, StateDigestRequest, StatusReply, StatusRequest,
};
use proto::MemberRole;
use state_machine::Store;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};

/// How long `snapshot --wait` waits for the build before giving up.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(120);
/// How long a membership call waits for an earlier change to commit. openraft refuses a change
/// while the last one is uncommitted; two operators growing the cluster at once should queue,
/// not fail. Below invctl's 30 s call timeout, so the operator sees why it gave up.
const IN_PROGRESS_WAIT: Duration = Duration::from_secs(15);
const IN_PROGRESS_POLL: Duration = Duration::from_millis(50);

type WriteError = RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>;
type Written = ClientWriteResponse<TypeConfig>;

pub struct AdminService {
    raft: Raft,
    addr: String,
    clocks: Clocks,
    store: Arc<Store>,
    identity: ClusterIdentity,
}

impl AdminService {
    pub fn new(
        raft: Raft,
        addr: String,
        clocks: Clocks,
        store: Arc<Store>,
        identity: ClusterIdentity,
    ) -> Self {
        Self {
            raft,
            addr,
            clocks,
            store,
            identity,
        }
    }

    fn leads(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// Runs one membership write, again while an earlier change is still uncommitted. Every
    /// write we send names only the nodes it is about and is applied by the leader to the
    /// membership it holds then, so running it again after a partial success (openraft's
    /// second, uniform step refused because another change got in first) is harmless.
    async fn membership_write<F, Fut>(&self, mut write: F) -> Result<Written, Response<AdminReply>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Written, WriteError>>,
    {
        let deadline = Instant::now() + IN_PROGRESS_WAIT;
        loop {
            let err = match write().await {
                Ok(written) => return Ok(written),
                Err(err) => err,
            };
            if let Some(fwd) = err.forward_to_leader() {
                return Err(failed(&err, Some(fwd)));
            }
            // openraft checks a change against this node's membership before it checks that
            // this node leads, so a follower can refuse (in progress, unknown learner) a
            // change the leader would accept: send the caller to the leader instead.
            if !self.leads() {
                let hint = LeaderHint::from_metrics(&self.raft);
                return Err(Response::new(AdminReply {
                    result: Some(admin_reply::Result::NotLeader(NotLeader {
                        leader_id: hint.id,
                        leader_addr: hint.addr,
                    })),
                }));
            }
            if !in_progress(&err) {
                return Err(failed(&err, None));
            }
            if Instant::now() >= deadline {
                return Err(error(format!(
                    "another membership change has not committed within {IN_PROGRESS_WAIT:?} \
                     (is a voter of it down?): {err}"
                )));
            }
            tokio::time::sleep(IN_PROGRESS_POLL).await;
        }
    }

    async fn add_voters(&self, ids: BTreeSet<NodeId>) -> Response<AdminReply> {
        if ids.is_empty() {
            return error("no node ids to add as voters");
        }
        let (raft, change) = (&self.raft, ChangeMembers::AddVoterIds(ids.clone()));
        match self
            .membership_write(move || raft.change_membership(change.clone(), false))
            .await
        {
            Ok(w) => ok(format!(
                "{ids:?} added as voters; voters are now {:?} (log {})",
                voters(&installed(&w)),
                w.log_id
            )),
            Err(reply) => reply,
        }
    }

    /// Voters leave through `RemoveVoters` (joint consensus; not retained, so the same change
    /// takes them out of the node list), learners through `RemoveNodes`. `RemoveNodes` also
    /// follows for any of `ids` still listed after `RemoveVoters`, which only a voter kept as
    /// a learner would be: the node list, not the voter set, is what makes a node a member.
    async fn remove_nodes(&self, ids: BTreeSet<NodeId>) -> Response<AdminReply> {
        if ids.is_empty() {
            return error("no node ids to remove");
        }
        // Only chooses the first step; a wrong guess (the membership changed since) costs
        // one needless entry or ends as "learner not found", and decides nothing about the
        // other nodes.
        let voting = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| ids.contains(&id));
        let without_voters = if voting {
            let (raft, change) = (&self.raft, ChangeMembers::RemoveVoters(ids.clone()));
            match self
                .membership_write(move || raft.change_membership(change.clone(), false))
                .await
            {
                Ok(w) => Some(w),
                Err(reply) => return reply,
            }
        } else {
            None
        };
        let left: BTreeSet<NodeId> = match &without_voters {
            Some(w) => {
                let m = installed(w);
                ids.iter()
                    .copied()
                    .filter(|id| m.get_node(id).is_some())
                    .collect()
            }
            None => ids.clone(),
        };
        let last = match without_voters {
            Some(w) if left.is_empty() => w,
            _ => {
                let (raft, change) = (&self.raft, ChangeMembers::RemoveNodes(left));
                match self
                    .membership_write(move || raft.change_membership(change.clone(), false))
                    .await
                {
                    Ok(w) => w,
                    Err(reply) => return reply,
                }
            }
        };
        ok(format!(
            "{ids:?} removed; voters are now {:?} (log {})",
            voters(&installed(&last)),
            last.log_id
        ))
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

fn error(message: impl Into<String>) -> Response<AdminReply> {
    Response::new(AdminReply {
        result: Some(admin_reply::Result::Error(message.into())),
    })
}

fn in_progress(err: &WriteError) -> bool {
    matches!(
        err,
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(_)
        ))
    )
}

fn voters(membership: &Membership<NodeId, BasicNode>) -> BTreeSet<NodeId> {
    membership.voter_ids().collect()
}

/// The membership a membership entry installed (always present for one).
fn installed(written: &Written) -> Membership<NodeId, BasicNode> {
    written.membership.clone().unwrap_or_default()
}

fn role(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => MemberRole::Leader,
        ServerState::Follower => MemberRole::Follower,
        ServerState::Candidate => MemberRole::Candidate,
        ServerState::Learner => MemberRole::Learner,
        ServerState::Shutdown => MemberRole::Shutdown,
    }
    .as_str()
}

/// The gate admits gateways to this service for `Status` alone (their `/v1/cluster`); every
/// other call needs an admin or node certificate. Without mTLS there are no roles.
fn operators_only<T>(req: &Request<T>, call: &str) -> Result<(), Status> {
    match req.extensions().get::<Role>() {
        Some(Role::Gateway) => Err(Status::permission_denied(format!(
            "the admin service's {call} needs a admin or node certificate; this one is gateway"
        ))),
        _ => Ok(()),
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
        let clock = self.clocks.verdict();
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
            clock_offset_ms: clock.offset_ms,
            clock_problem: clock.problem,
            cluster_id: self
                .identity
                .get()
                .map(|id| id.to_string())
                .unwrap_or_default(),
        }))
    }

    async fn add_learner(
        &self,
        req: Request<AddLearnerRequest>,
    ) -> Result<Response<AdminReply>, Status> {
        operators_only(&req, "AddLearner")?;
        let req = req.into_inner();
        let (raft, node) = (&self.raft, BasicNode::new(&req.addr));
        let written = self
            .membership_write(move || raft.add_learner(req.id, node.clone(), req.blocking))
            .await;
        Ok(match written {
            Ok(w) => ok(format!(
                "node {} added as learner at log {}",
                req.id, w.log_id
            )),
            Err(reply) => reply,
        })
    }

    async fn change_membership(
        &self,
        req: Request<ChangeMembershipRequest>,
    ) -> Result<Response<AdminReply>, Status> {
        operators_only(&req, "ChangeMembership")?;
        Ok(match req.into_inner().change {
            Some(Change::AddVoters(ids)) => self.add_voters(ids.ids.into_iter().collect()).await,
            Some(Change::RemoveNodes(ids)) => {
                self.remove_nodes(ids.ids.into_iter().collect()).await
            }
            None => error(
                "no membership change given (is this invctl older than the node? it must \
                 name the nodes to add or remove, not a whole voter list)",
            ),
        })
    }

    async fn trigger_snapshot(
        &self,
        req: Request<SnapshotRequest>,
    ) -> Result<Response<AdminReply>, Status> {
        operators_only(&req, "TriggerSnapshot")?;
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
        let raft = &self.raft;
        let ask = || async move { raft.trigger().snapshot().await.map_err(|e| e.to_string()) };
        let covered = |within: Duration| async move {
            let waited = raft
                .wait(Some(within))
                .metrics(
                    |m| m.snapshot.map_or(0, |l| l.index) >= target,
                    "snapshot built",
                )
                .await;
            match waited {
                Ok(m) => Ok(Some(m.snapshot.map_or(0, |l| l.index))),
                Err(openraft::metrics::WaitError::Timeout(..)) => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        };
        let waited = super::snapshot_wait::until_covered(
            target,
            SNAPSHOT_WAIT,
            super::snapshot_wait::ASK_AGAIN,
            ask,
            covered,
        )
        .await;
        match waited {
            Ok(index) => Ok(ok(format!("snapshot built at log index {index}"))),
            Err(e) => Ok(Response::new(AdminReply {
                result: Some(admin_reply::Result::Error(format!(
                    "snapshot not built: {e}"
                ))),
            })),
        }
    }

    async fn state_digest(
        &self,
        req: Request<StateDigestRequest>,
    ) -> Result<Response<StateDigestReply>, Status> {
        operators_only(&req, "StateDigest")?;
        let store = self.store.clone();
        let (marker, digest) = tokio::task::spawn_blocking(move || store.digest())
            .await
            .map_err(|e| Status::internal(format!("digest task failed: {e}")))?
            .map_err(|e| Status::internal(format!("digest: {e}")))?;
        let applied = crate::state_machine_store::applied_index(marker)
            .map_err(|e| Status::internal(format!("unreadable applied marker: {e}")))?;
        Ok(Response::new(StateDigestReply {
            applied_index: applied,
            digest,
        }))
    }

    async fn clock(&self, req: Request<ClockRequest>) -> Result<Response<ClockReply>, Status> {
        operators_only(&req, "Clock")?;
        Ok(Response::new(ClockReply {
            wall_ms: self.clocks.wall_ms(),
        }))
    }

    async fn metrics(
        &self,
        req: Request<MetricsRequest>,
    ) -> Result<Response<MetricsReply>, Status> {
        operators_only(&req, "Metrics")?;
        let m = self.raft.metrics().borrow().clone();
        let json = serde_json::to_string(&m).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(MetricsReply { json }))
    }
}
