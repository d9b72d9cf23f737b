//! The gateway-facing service: `Submit` through the leader's group commit, and linearisable
//! reads after the read-index barrier. A follower answers "not leader" with the leader hint.

use crate::codec::{decode, encode};
use crate::group_commit::{Answers, GroupCommit, ProposeError};
use crate::leader::LeaderHint;
use crate::read_index::{ReadError, ReadIndex};
use crate::refusal_reads::RefusalReads;
use crate::types::Raft;
use cluster_config::logging::REQUESTS;
use proto::inventory::inventory_server;
use proto::inventory::{
    read_reply, submit_reply, GetOrderRequest, GetSalesRequest, GetSkuRequest, ListOrdersRequest,
    ListSkusRequest, NotLeader, Outcomes, ReadEventsRequest, ReadReply, Record, SubmitReply,
    SubmitRequest, Unavailable,
};
use serde::Serialize;
use state_machine::{
    short_outcome, Command, OrderId, Outcome, Refusal, SkuId, Store, UserId, MAX_BATCH_COMMANDS,
};
use std::sync::Arc;
use std::time::Duration;
use tonic::codegen::Bytes;
use tonic::{Request, Response, Status};
use tracing::Instrument;

/// How long a Submit waits for its entry to commit before answering unavailable (maybe
/// applied): a leader cut off from its quorum must not hold callers forever.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Likewise for the read-index round of a read.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait of a feed read for its first event: a consumer's stream keeps one call open
/// at a time, and a call that outlives its caller's timeout would only be wasted.
const MAX_EVENTS_WAIT: Duration = Duration::from_secs(10);

pub struct InventoryService {
    raft: Raft,
    store: Arc<Store>,
    proposer: GroupCommit,
    reads: ReadIndex,
    refusals: RefusalReads,
}

impl InventoryService {
    pub fn new(raft: Raft, store: Arc<Store>, proposer: GroupCommit, reads: ReadIndex) -> Self {
        let refusals = RefusalReads::new(
            store.clone(),
            reads.clone(),
            proposer.in_flight().clone(),
            proposer.clocks().clone(),
        );
        Self {
            raft,
            store,
            proposer,
            reads,
            refusals,
        }
    }

    fn applied_index(&self) -> u64 {
        self.raft
            .metrics()
            .borrow()
            .last_applied
            .map_or(0, |l| l.index)
    }

    /// Answers the refusals `judge` found at once and proposes the rest in one submit,
    /// putting the outcomes back in the callers' order.
    async fn propose_unrefused(
        &self,
        commands: Vec<Command>,
        sizes: Vec<usize>,
        short: bool,
    ) -> submit_reply::Result {
        let verdicts = match self.refusals.judge(&commands).await {
            Ok(verdicts) => verdicts,
            Err(ReadError::NotLeader(hint)) => {
                return submit_reply::Result::NotLeader(not_leader(hint))
            }
            Err(ReadError::Unavailable(message)) => {
                return submit_reply::Result::Unavailable(Unavailable { message })
            }
        };
        let mut to_propose = Vec::with_capacity(commands.len());
        let mut bytes = 0;
        for ((command, verdict), size) in commands.into_iter().zip(&verdicts).zip(sizes) {
            if verdict.is_none() {
                to_propose.push(command);
                bytes += size;
            }
        }
        let (mut proposed, log_index) = if to_propose.is_empty() {
            (None, self.applied_index())
        } else {
            let submitted =
                tokio::time::timeout(SUBMIT_TIMEOUT, self.proposer.submit(to_propose, bytes))
                    .await
                    .unwrap_or_else(|_| {
                        Err(ProposeError::Unavailable(format!(
                            "not committed within {SUBMIT_TIMEOUT:?}"
                        )))
                    });
            match submitted {
                Ok(committed) => {
                    let log_index = committed.log_index;
                    (Some(committed.into_answers()), log_index)
                }
                Err(ProposeError::NotLeader(hint)) => {
                    return submit_reply::Result::NotLeader(not_leader(hint))
                }
                Err(ProposeError::Unavailable(message)) => {
                    return submit_reply::Result::Unavailable(Unavailable { message })
                }
            }
        };
        let outcomes = encode_outcomes(verdicts, proposed.as_mut(), short);
        match outcomes {
            Some(outcomes) => submit_reply::Result::Outcomes(Outcomes {
                outcomes,
                log_index,
                short,
            }),
            None => submit_reply::Result::Unavailable(Unavailable {
                message: "fewer outcomes than commands proposed".into(),
            }),
        }
    }

    fn local_leader_hint(&self) -> Option<LeaderHint> {
        let hint = LeaderHint::from_metrics(&self.raft);
        (hint.id != Some(self.raft.metrics().borrow().id)).then_some(hint)
    }

    /// The call's span: this node, and the HTTP request ids the gateway sent with it, so
    /// `RUST_LOG=info` follows an order from the gateway's answer header into the log.
    /// Nothing is formatted unless the `requests` target is on (see `cluster_config::logging`).
    fn span<T>(&self, call: &'static str, req: &Request<T>) -> tracing::Span {
        let ids = req
            .metadata()
            .get(proto::REQUEST_ID_METADATA)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info_span!(
            target: REQUESTS,
            "call",
            call,
            node = self.raft.metrics().borrow().id,
            request_id = ids
        )
    }

    async fn read<T: Serialize>(
        &self,
        answer: impl FnOnce(&Store) -> Result<T, state_machine::StoreError>,
    ) -> Result<Response<ReadReply>, Status> {
        self.read_waiting(None, answer).await
    }

    /// A read that, once confirmed, first waits (at most `wait`) for an event past `after`
    /// to be applied. Confirming first means a node that does not lead says so at once.
    async fn read_waiting<T: Serialize>(
        &self,
        event_after: Option<(u64, Duration)>,
        answer: impl FnOnce(&Store) -> Result<T, state_machine::StoreError>,
    ) -> Result<Response<ReadReply>, Status> {
        let confirmed = match self.reads.confirm(READ_TIMEOUT).await {
            // Deadlines are exact for reads too (API.md).
            Ok(()) => crate::expiry::expire_if_due(&self.store, &self.proposer).await,
            Err(ReadError::NotLeader(hint)) => Err(ProposeError::NotLeader(hint)),
            Err(ReadError::Unavailable(message)) => Err(ProposeError::Unavailable(message)),
        };
        let result = match confirmed {
            Ok(()) => {
                if let Some((after, wait)) = event_after {
                    wait_for_event_after(&self.raft, &self.store, after, wait).await;
                }
                let applied = self.applied_index();
                tracing::info!(target: REQUESTS, applied_index = applied, "read confirmed");
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
            Err(ProposeError::NotLeader(hint)) => read_reply::Result::NotLeader(not_leader(hint)),
            Err(ProposeError::Unavailable(message)) => {
                read_reply::Result::Unavailable(Unavailable { message })
            }
        };
        Ok(Response::new(ReadReply {
            result: Some(result),
        }))
    }
}

/// Waits, at most `wait`, until an event past `after` has been applied here. Any event
/// applied after the read's confirmation is committed, so answering it keeps the read
/// linearisable.
async fn wait_for_event_after(raft: &Raft, store: &Store, after: u64, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    let mut metrics = raft.metrics();
    loop {
        if store.events_head().map_or(true, |head| head > after) {
            return;
        }
        // Every apply updates the metrics; so do other things, which only cost a re-check.
        match tokio::time::timeout_at(deadline, metrics.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

/// Room per outcome in a `Submit`'s answer buffer: a short outcome of a placed order takes
/// a few dozen bytes; the buffer grows when they take more.
const OUTCOME_BYTES_GUESS: usize = 32;

/// Each command's outcome in the callers' order: a refusal found by judging, or the next
/// committed answer. `None` when the committed answers run out first. The outcomes are
/// encoded one after another into one buffer and handed out as slices of it: one allocation
/// per `Submit`, where each outcome used to take its own, grown several times over.
fn encode_outcomes(
    verdicts: Vec<Option<Refusal>>,
    mut proposed: Option<&mut Answers>,
    short: bool,
) -> Option<Vec<Bytes>> {
    let mut buffer = Vec::with_capacity(verdicts.len() * OUTCOME_BYTES_GUESS);
    let mut ends = Vec::with_capacity(verdicts.len());
    for verdict in verdicts {
        buffer = match verdict {
            Some(refusal) => {
                short_outcome::encode_onto(buffer, Outcome::Refused(refusal), None, short)
            }
            None => {
                let (outcome, command) = proposed.as_deref_mut()?.next_answer()?;
                short_outcome::encode_onto(buffer, outcome, Some(command), short)
            }
        };
        ends.push(buffer.len());
    }
    let all = Bytes::from(buffer);
    let mut start = 0;
    Some(
        ends.into_iter()
            .map(|end| {
                let one = all.slice(start..end);
                start = end;
                one
            })
            .collect(),
    )
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
        let span = self.span("submit", &req);
        self.submit_in(req.into_inner()).instrument(span).await
    }

    async fn get_sku(&self, req: Request<GetSkuRequest>) -> Result<Response<ReadReply>, Status> {
        let span = self.span("get_sku", &req);
        self.get_sku_in(req.into_inner()).instrument(span).await
    }

    async fn get_order(
        &self,
        req: Request<GetOrderRequest>,
    ) -> Result<Response<ReadReply>, Status> {
        let span = self.span("get_order", &req);
        self.get_order_in(req.into_inner()).instrument(span).await
    }

    async fn list_skus(
        &self,
        req: Request<ListSkusRequest>,
    ) -> Result<Response<ReadReply>, Status> {
        let span = self.span("list_skus", &req);
        self.list_skus_in(req.into_inner()).instrument(span).await
    }

    async fn list_orders(
        &self,
        req: Request<ListOrdersRequest>,
    ) -> Result<Response<ReadReply>, Status> {
        let span = self.span("list_orders", &req);
        self.list_orders_in(req.into_inner()).instrument(span).await
    }

    async fn read_events(
        &self,
        req: Request<ReadEventsRequest>,
    ) -> Result<Response<ReadReply>, Status> {
        let span = self.span("read_events", &req);
        self.read_events_in(req.into_inner()).instrument(span).await
    }

    async fn get_sales(
        &self,
        req: Request<GetSalesRequest>,
    ) -> Result<Response<ReadReply>, Status> {
        let span = self.span("get_sales", &req);
        self.get_sales_in(req.into_inner()).instrument(span).await
    }
}

/// The calls' bodies, inside their spans.
impl InventoryService {
    async fn submit_in(&self, req: SubmitRequest) -> Result<Response<SubmitReply>, Status> {
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
        let sizes = req.commands.iter().map(|c| c.len()).collect();
        let commands = req
            .commands
            .iter()
            .map(|bytes| decode::<Command>(bytes))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Status::invalid_argument(format!("undecodable command: {e}")))?;
        let result = self
            .propose_unrefused(commands, sizes, req.short_outcomes)
            .await;
        if let submit_reply::Result::Outcomes(outcomes) = &result {
            // The term is read only when the line is written.
            tracing::info!(
                target: REQUESTS,
                term = self.raft.metrics().borrow().current_term,
                log_index = outcomes.log_index,
                "submit answered"
            );
        }
        Ok(Response::new(SubmitReply {
            result: Some(result),
        }))
    }

    async fn get_sku_in(&self, req: GetSkuRequest) -> Result<Response<ReadReply>, Status> {
        let sku = match SkuId::new(req.sku) {
            Ok(sku) => sku,
            Err(e) => return invalid(e.to_string()),
        };
        self.read(|store| store.get_sku(&sku)).await
    }

    async fn get_order_in(&self, req: GetOrderRequest) -> Result<Response<ReadReply>, Status> {
        let id = match OrderId::new(req.order_id) {
            Ok(id) => id,
            Err(e) => return invalid(e.to_string()),
        };
        self.read(|store| store.get_order(&id)).await
    }

    async fn list_skus_in(&self, req: ListSkusRequest) -> Result<Response<ReadReply>, Status> {
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

    async fn list_orders_in(&self, req: ListOrdersRequest) -> Result<Response<ReadReply>, Status> {
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

    async fn read_events_in(&self, req: ReadEventsRequest) -> Result<Response<ReadReply>, Status> {
        let limit = match page_limit(req.limit) {
            Ok(limit) => limit,
            Err(e) => return invalid(e),
        };
        let wait = Duration::from_millis(req.wait_ms.into()).min(MAX_EVENTS_WAIT);
        let event_after = (!wait.is_zero()).then_some((req.after, wait));
        self.read_waiting(event_after, |store| store.read_events(req.after, limit))
            .await
    }

    async fn get_sales_in(&self, req: GetSalesRequest) -> Result<Response<ReadReply>, Status> {
        let sku = match SkuId::new(req.sku) {
            Ok(sku) => sku,
            Err(e) => return invalid(e.to_string()),
        };
        self.read(|store| store.sales(&sku, req.from_ms, req.to_ms))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state_machine::Batch;

    fn cancel(id: &str) -> Command {
        Command::Cancel {
            order_id: OrderId::new(id).unwrap(),
        }
    }

    fn not_found(id: &str) -> Outcome {
        Outcome::Refused(Refusal::OrderNotFound {
            order_id: OrderId::new(id).unwrap(),
        })
    }

    fn refused(sku: &str) -> Refusal {
        Refusal::SkuNotFound {
            sku: SkuId::new(sku).unwrap(),
        }
    }

    /// Judged refusals and committed answers interleave in the callers' order, each slice of
    /// the shared buffer decoding to its own outcome, short or whole.
    #[test]
    fn outcomes_share_one_buffer_and_each_decodes_to_its_own() {
        for short in [true, false] {
            let committed = [cancel("o-1"), cancel("o-22")];
            let mut answers = Answers::of(
                vec![not_found("o-1"), not_found("o-22")],
                Batch {
                    now_ms: 0,
                    commands: committed.to_vec(),
                },
            );
            let verdicts = vec![Some(refused("A")), None, Some(refused("BB")), None];
            let encoded = encode_outcomes(verdicts, Some(&mut answers), short).unwrap();
            assert_eq!(encoded.len(), 4);
            let expected = [
                (Outcome::Refused(refused("A")), cancel("x")),
                (not_found("o-1"), committed[0].clone()),
                (Outcome::Refused(refused("BB")), cancel("x")),
                (not_found("o-22"), committed[1].clone()),
            ];
            // A refusal judged as a read travels whole (no command to shorten by), so any
            // command restores it.
            for (bytes, (outcome, command)) in encoded.iter().zip(&expected) {
                assert_eq!(
                    &short_outcome::decode(bytes, short, command).unwrap(),
                    outcome
                );
            }
        }
    }

    #[test]
    fn answers_that_run_out_give_none() {
        let mut answers = Answers::of(
            vec![not_found("o-1")],
            Batch {
                now_ms: 0,
                commands: vec![cancel("o-1")],
            },
        );
        assert!(encode_outcomes(vec![None, None], Some(&mut answers), true).is_none());
        assert!(encode_outcomes(vec![None], None, true).is_none());
        let judged = encode_outcomes(vec![Some(refused("A"))], None, true).unwrap();
        assert_eq!(judged.len(), 1);
    }
}
