//! The gateway-facing service: `Submit` through the leader's group commit, and linearisable
//! reads after the read-index barrier. A follower answers "not leader" with the leader hint.

use crate::codec::{decode, encode};
use crate::group_commit::{GroupCommit, ProposeError};
use crate::leader::LeaderHint;
use crate::read_index::{ReadError, ReadIndex};
use crate::types::Raft;
use proto::inventory::inventory_server;
use proto::inventory::{
    read_reply, submit_reply, GetOrderRequest, GetSkuRequest, ListOrdersRequest, ListSkusRequest,
    NotLeader, Outcomes, ReadReply, Record, SubmitReply, SubmitRequest, Unavailable,
};
use serde::Serialize;
use state_machine::{Command, OrderId, SkuId, Store, UserId, MAX_BATCH_COMMANDS};
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// How long a Submit waits for its entry to commit before answering unavailable (maybe
/// applied): a leader cut off from its quorum must not hold callers forever.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Likewise for the read-index round of a read.
#[cfg(not(feature = "stale-reads"))]
const READ_TIMEOUT: Duration = Duration::from_secs(5);

pub struct InventoryService {
    raft: Raft,
    store: Arc<Store>,
    proposer: GroupCommit,
    #[cfg_attr(feature = "stale-reads", allow(dead_code))]
    reads: ReadIndex,
}

impl InventoryService {
    pub fn new(raft: Raft, store: Arc<Store>, proposer: GroupCommit, reads: ReadIndex) -> Self {
        Self {
            raft,
            store,
            proposer,
            reads,
        }
    }

    fn local_leader_hint(&self) -> Option<LeaderHint> {
        let hint = LeaderHint::from_metrics(&self.raft);
        (hint.id != Some(self.raft.metrics().borrow().id)).then_some(hint)
    }

    async fn read<T: Serialize>(
        &self,
        answer: impl FnOnce(&Store) -> Result<T, state_machine::StoreError>,
    ) -> Result<Response<ReadReply>, Status> {
        // DELIBERATELY BROKEN with the `stale-reads` feature (jepsen-tests' proof that the
        // harness can fail): answer from the local applied state, on any node, without the
        // read-index barrier. Never enable it outside that test.
        #[cfg(feature = "stale-reads")]
        let barrier: Result<(), ReadError> = Ok(());
        #[cfg(not(feature = "stale-reads"))]
        let barrier = tokio::time::timeout(READ_TIMEOUT, self.reads.barrier())
            .await
            .unwrap_or_else(|_| {
                Err(ReadError::Unavailable(
                    "no quorum confirmed the read".into(),
                ))
            });
        let result = match barrier {
            Ok(()) => {
                let applied = self
                    .raft
                    .metrics()
                    .borrow()
                    .last_applied
                    .map_or(0, |l| l.index);
                match answer(&self.store) {
                    Ok(value) => read_reply::Result::Record(Record {
                        value: encode(&value),
                        applied_index: applied,
                    }),
                    Err(e) => {
                        tracing::error!(error = %e, "read failed");
                        return Err(Status::internal(e.to_string()));
                    }
                }
            }
            Err(ReadError::NotLeader(hint)) => read_reply::Result::NotLeader(not_leader(hint)),
            Err(ReadError::Unavailable(message)) => {
                read_reply::Result::Unavailable(Unavailable { message })
            }
        };
        Ok(Response::new(ReadReply {
            result: Some(result),
        }))
    }
}

fn not_leader(hint: LeaderHint) -> NotLeader {
    NotLeader {
        leader_id: hint.id,
        leader_addr: hint.addr,
    }
}

fn invalid(message: String) -> Result<Response<ReadReply>, Status> {
    Ok(Response::new(ReadReply {
        result: Some(read_reply::Result::Invalid(message)),
    }))
}

fn page_limit(limit: u32) -> Result<usize, String> {
    match limit {
        0 => Ok(100),
        1..=1000 => Ok(limit as usize),
        _ => Err(format!("limit: must be between 1 and 1000, got {limit}")),
    }
}

#[tonic::async_trait]
impl inventory_server::Inventory for InventoryService {
    async fn submit(&self, req: Request<SubmitRequest>) -> Result<Response<SubmitReply>, Status> {
        let req = req.into_inner();
        if req.commands.is_empty() || req.commands.len() > MAX_BATCH_COMMANDS {
            return Err(Status::invalid_argument(format!(
                "a submit carries 1 to {MAX_BATCH_COMMANDS} commands, got {}",
                req.commands.len()
            )));
        }
        // Fail fast off the leader rather than queueing a proposal that must fail.
        if let Some(hint) = self.local_leader_hint() {
            return Ok(Response::new(SubmitReply {
                result: Some(submit_reply::Result::NotLeader(not_leader(hint))),
            }));
        }
        let bytes = req.commands.iter().map(|c| c.len()).sum();
        let commands = req
            .commands
            .iter()
            .map(|bytes| decode::<Command>(bytes))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Status::invalid_argument(format!("undecodable command: {e}")))?;
        let result =
            match tokio::time::timeout(SUBMIT_TIMEOUT, self.proposer.submit(commands, bytes))
                .await
                .unwrap_or_else(|_| {
                    Err(ProposeError::Unavailable(format!(
                        "not committed within {SUBMIT_TIMEOUT:?}"
                    )))
                }) {
                Ok(committed) => submit_reply::Result::Outcomes(Outcomes {
                    outcomes: committed.outcomes.iter().map(encode).collect(),
                    log_index: committed.log_index,
                }),
                Err(ProposeError::NotLeader(hint)) => {
                    submit_reply::Result::NotLeader(not_leader(hint))
                }
                Err(ProposeError::Unavailable(message)) => {
                    submit_reply::Result::Unavailable(Unavailable { message })
                }
            };
        Ok(Response::new(SubmitReply {
            result: Some(result),
        }))
    }

    async fn get_sku(&self, req: Request<GetSkuRequest>) -> Result<Response<ReadReply>, Status> {
        let sku = match SkuId::new(req.into_inner().sku) {
            Ok(sku) => sku,
            Err(e) => return invalid(e.to_string()),
        };
        self.read(|store| store.get_sku(&sku)).await
    }

    async fn get_order(
        &self,
        req: Request<GetOrderRequest>,
    ) -> Result<Response<ReadReply>, Status> {
        let id = match OrderId::new(req.into_inner().order_id) {
            Ok(id) => id,
            Err(e) => return invalid(e.to_string()),
        };
        self.read(|store| store.get_order(&id)).await
    }

    async fn list_skus(
        &self,
        req: Request<ListSkusRequest>,
    ) -> Result<Response<ReadReply>, Status> {
        let req = req.into_inner();
        let after = match req.after.as_str() {
            "" => None,
            raw => match SkuId::parse("after", raw) {
                Ok(sku) => Some(sku),
                Err(e) => return invalid(e.to_string()),
            },
        };
        let limit = match page_limit(req.limit) {
            Ok(limit) => limit,
            Err(e) => return invalid(e),
        };
        self.read(|store| store.list_skus(after.as_ref(), limit))
            .await
    }

    async fn list_orders(
        &self,
        req: Request<ListOrdersRequest>,
    ) -> Result<Response<ReadReply>, Status> {
        let req = req.into_inner();
        let user = match UserId::new(req.user_id) {
            Ok(user) => user,
            Err(e) => return invalid(e.to_string()),
        };
        let limit = match page_limit(req.limit) {
            Ok(limit) => limit,
            Err(e) => return invalid(e),
        };
        self.read(|store| store.list_user_orders(&user, limit))
            .await
    }
}
