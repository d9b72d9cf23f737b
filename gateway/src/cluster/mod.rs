//! The gateway's side of the `inventory` gRPC contract: leader following, retries with
//! capped exponential backoff until the request's deadline, and postcard decoding of replies.
//!
//! Every call goes to the node believed to lead; a `NotLeader` hint is followed at once, a
//! transport error or `Unavailable` moves on to the other configured nodes after a backoff.
//! Retrying a command is safe because every command carries its own idempotency key (sku,
//! order id, restock request id), so a command that "may have been applied" is re-sent with the
//! same bytes. Reads are never answered here: they go to the leader, which makes them
//! linearisable.

mod batcher;
mod leader;
mod pool;
mod request_ids;
pub mod status;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use proto::inventory::inventory_client::InventoryClient;
use proto::inventory::{
    read_reply, submit_reply, GetOrderRequest, GetSalesRequest, GetSkuRequest, ListOrdersRequest,
    ListSkusRequest, ReadEventsRequest, ReadReply, SubmitReply, SubmitRequest,
};
use serde::de::DeserializeOwned;
use state_machine::{Command, Outcome};
use tokio::time::Instant;
use tonic::Code;

pub use batcher::{Batcher, MAX_SUBMITS_IN_FLIGHT};
use leader::LeaderTracker;
use pool::{ChannelPool, NodeChannel};
pub use request_ids::RequestIds;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// Largest reply accepted from a node. A batch of 1,024 orders of 64 lines each answers
/// about 5 MiB, above tonic's 4 MiB default.
const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;
/// `NotLeader` hints followed back to back before backing off: two nodes with stale views
/// could otherwise send a call back and forth until its deadline without pause.
const MAX_HINT_HOPS: u32 = 3;
/// Shortest time one attempt may take before the next node is tried.
const MIN_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(100);

/// Why the cluster gave no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// No leader answered before the deadline. A command may or may not have been applied.
    #[error("no leader answered in time: {0}")]
    Unavailable(String),
    /// The node refused the read as malformed (it should have been caught here first).
    #[error("{0}")]
    Invalid(String),
    /// A reply the gateway cannot understand: a bug or a version mismatch.
    #[error("{0}")]
    Internal(String),
}

impl From<ClusterError> for ApiError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::Unavailable(m) => ApiError::unavailable(format!(
                "no leader answered in time ({m}); the command may or may not have been \
                 applied, retrying with the same id is safe"
            )),
            ClusterError::Invalid(m) => ApiError::invalid_request(m),
            ClusterError::Internal(m) => ApiError::internal(m),
        }
    }
}

/// What one node said to one attempt.
pub enum Answer<T> {
    Done(T),
    NotLeader { id: Option<u64>, addr: String },
    Unavailable(String),
    Invalid(String),
}

/// A linearisable read.
#[derive(Debug, Clone)]
pub enum Read {
    Sku(String),
    Order(String),
    Skus {
        after: String,
        limit: u32,
    },
    Orders {
        user_id: String,
        limit: u32,
    },
    /// With `wait_ms`, the node holds the call until an event past `after` commits (or the
    /// wait ends): how a stream follows the feed without polling in a loop.
    Events {
        after: u64,
        limit: u32,
        wait_ms: u32,
    },
    Sales {
        sku: String,
        from_ms: u64,
        to_ms: u64,
    },
}

pub struct ClusterOptions {
    pub nodes: Vec<String>,
    pub request_deadline: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Plaintext, or mTLS with the gateway certificate.
    pub dialer: cluster_config::mtls::Dialer,
}

pub struct Cluster {
    nodes: Vec<String>,
    pool: ChannelPool,
    leader: LeaderTracker,
    metrics: Arc<Metrics>,
    request_deadline: Duration,
    attempt_timeout: Duration,
    backoff_initial: Duration,
    backoff_max: Duration,
    /// Spreads first attempts over the nodes while no leader is known.
    next_probe: AtomicUsize,
    /// One readiness probe at a time (see `probe_leader`).
    leader_probe: tokio::sync::Mutex<()>,
}

impl Cluster {
    pub fn new(options: ClusterOptions, metrics: Arc<Metrics>) -> Self {
        Self {
            pool: ChannelPool::new(options.nodes.clone(), options.dialer),
            nodes: options.nodes,
            leader: LeaderTracker::new(metrics.clone()),
            metrics,
            request_deadline: options.request_deadline,
            // A third of the deadline: a paused leader costs one attempt, and two more nodes
            // can still be tried before the deadline.
            attempt_timeout: (options.request_deadline / 3).max(MIN_ATTEMPT_TIMEOUT),
            backoff_initial: options.backoff_initial,
            backoff_max: options.backoff_max,
            next_probe: AtomicUsize::new(0),
            leader_probe: tokio::sync::Mutex::new(()),
        }
    }

    /// The deadline of a request that starts now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.request_deadline
    }

    pub fn request_deadline(&self) -> Duration {
        self.request_deadline
    }

    /// How long a feed read may wait for new events at the node: well inside one attempt's
    /// timeout, so that an idle wait never counts as a node that failed to answer.
    pub fn events_wait(&self) -> Duration {
        self.attempt_timeout / 2
    }

    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// True when a leader answered within `window`.
    pub fn leader_answered_within(&self, window: Duration) -> bool {
        self.leader.answered_within(window)
    }

    /// Runs `probe` unless a probe is running already: then waits for that one (until
    /// `deadline`) instead. However many callers ask at once (`/readyz` polled by many load
    /// balancers), at most one probe reaches the cluster at a time.
    pub async fn probe_leader<F: std::future::Future>(
        &self,
        deadline: tokio::time::Instant,
        window: Duration,
        probe: F,
    ) {
        let Ok(_only_probe) = tokio::time::timeout_at(deadline, self.leader_probe.lock()).await
        else {
            return;
        };
        if self.leader_answered_within(window) {
            return; // the probe we waited for got its answer
        }
        let _ = tokio::time::timeout_at(deadline, probe).await;
    }

    pub(crate) fn pool(&self) -> &ChannelPool {
        &self.pool
    }

    /// The configured node after `addr`, or the next in turn if `addr` is not configured.
    fn next_node(&self, addr: &str) -> String {
        let n = self.nodes.len();
        match self.nodes.iter().position(|a| a == addr) {
            Some(i) => self.nodes[(i + 1) % n].clone(),
            None => self.nodes[self.next_probe.fetch_add(1, Ordering::Relaxed) % n].clone(),
        }
    }

    fn first_target(&self) -> String {
        self.leader.current().unwrap_or_else(|| {
            let n = self.nodes.len();
            self.nodes[self.next_probe.fetch_add(1, Ordering::Relaxed) % n].clone()
        })
    }

    /// Runs `attempt` against the leader until it answers or `deadline` passes.
    pub async fn call<T, F, Fut>(
        &self,
        deadline: Instant,
        mut attempt: F,
    ) -> Result<T, ClusterError>
    where
        F: FnMut(NodeChannel, Duration) -> Fut,
        Fut: Future<Output = Result<Answer<T>, tonic::Status>>,
    {
        let mut target = self.first_target();
        let mut backoff = self.backoff_initial;
        let mut hops = 0;
        let mut attempts: u64 = 0;
        let mut last_error = String::from("no node was tried");
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(ClusterError::Unavailable(last_error));
            }
            if attempts > 0 {
                self.metrics.retry();
            }
            attempts += 1;
            let timeout = (deadline - now).min(self.attempt_timeout);
            let result = match self.pool.channel(&target) {
                None => Err(format!("{target} is not a valid host:port")),
                Some(channel) => {
                    match tokio::time::timeout(timeout, attempt(channel, timeout)).await {
                        Err(_) => Err(format!("{target} gave no answer within {timeout:?}")),
                        Ok(Err(status)) if !retryable(&status) => {
                            return Err(ClusterError::Internal(format!(
                                "{target} answered {:?}: {}",
                                status.code(),
                                status.message()
                            )))
                        }
                        Ok(Err(status)) => Err(format!(
                            "{target}: {:?} {}",
                            status.code(),
                            status.message()
                        )),
                        Ok(Ok(answer)) => Ok(answer),
                    }
                }
            };
            match result {
                Ok(Answer::Done(value)) => {
                    self.leader.answered(&target);
                    return Ok(value);
                }
                Ok(Answer::Invalid(message)) => {
                    self.leader.answered(&target);
                    return Err(ClusterError::Invalid(message));
                }
                Ok(Answer::NotLeader { id, addr }) => {
                    self.leader.forget(&target);
                    last_error = format!("{target} is not the leader");
                    if !addr.is_empty() && addr != target && hops < MAX_HINT_HOPS {
                        tracing::debug!(from = %target, to = %addr, leader_id = ?id, "following leader hint");
                        self.leader.hint(&addr);
                        hops += 1;
                        target = addr;
                        continue;
                    }
                }
                Ok(Answer::Unavailable(message)) => {
                    self.leader.forget(&target);
                    last_error = format!("{target}: {message}");
                }
                Err(message) => {
                    self.leader.forget(&target);
                    last_error = message;
                }
            }
            tracing::debug!(node = %target, error = %last_error, ?backoff, "retrying on another node");
            hops = 0;
            let now = Instant::now();
            if now < deadline {
                tokio::time::sleep(backoff.min(deadline - now)).await;
            }
            backoff = (backoff * 2).min(self.backoff_max);
            // Another call may have found the leader while this one slept.
            target = match self.leader.current() {
                Some(leader) if leader != target => leader,
                _ => self.next_node(&target),
            };
        }
    }

    /// Proposes encoded commands; returns one encoded outcome per command, in order, short
    /// of what the commands name when the node could answer so (`decode_outcome`).
    /// `request_ids` (see [`RequestIds`]) travel as metadata, for the node's log.
    pub async fn submit(
        &self,
        commands: Vec<Bytes>,
        request_ids: RequestIds,
        deadline: Instant,
    ) -> Result<Submitted, ClusterError> {
        let commands = Arc::new(commands);
        self.call(deadline, |channel, timeout| {
            let commands = commands.clone();
            let request_ids = request_ids.clone();
            async move {
                let mut client = client(channel);
                let mut request = tonic::Request::new(SubmitRequest {
                    commands: commands.as_ref().clone(),
                    short_outcomes: true,
                });
                request.set_timeout(timeout);
                request_ids.attach(&mut request);
                let reply = client.submit(request).await?.into_inner();
                Ok(submit_answer(reply))
            }
        })
        .await
    }

    /// Proposes `commands` as one `Submit`, bypassing the batcher: they are applied in one
    /// log entry, in this order, with nothing between them. One outcome per command.
    pub async fn submit_together(
        &self,
        commands: &[Command],
        deadline: Instant,
    ) -> Result<Vec<Outcome>, ClusterError> {
        let encoded = commands
            .iter()
            .map(encode_command)
            .collect::<Result<Vec<_>, _>>()?;
        let submitted = self
            .submit(encoded, RequestIds::of_this_request(), deadline)
            .await?;
        if submitted.outcomes.len() != commands.len() {
            return Err(outcome_count_mismatch(
                submitted.outcomes.len(),
                commands.len(),
            ));
        }
        submitted
            .outcomes
            .iter()
            .zip(commands)
            .map(|(raw, command)| decode_outcome(raw, submitted.short, command))
            .collect()
    }

    /// A linearisable read, decoded as `T` (see inventory.proto for each read's type).
    pub async fn read<T: DeserializeOwned>(
        &self,
        read: Read,
        deadline: Instant,
    ) -> Result<T, ClusterError> {
        let value = self
            .call(deadline, |channel, timeout| {
                let read = read.clone();
                async move {
                    let mut client = client(channel);
                    let reply = match read {
                        Read::Sku(sku) => {
                            client.get_sku(timed(GetSkuRequest { sku }, timeout)).await
                        }
                        Read::Order(order_id) => {
                            client
                                .get_order(timed(GetOrderRequest { order_id }, timeout))
                                .await
                        }
                        Read::Skus { after, limit } => {
                            client
                                .list_skus(timed(ListSkusRequest { after, limit }, timeout))
                                .await
                        }
                        Read::Orders { user_id, limit } => {
                            client
                                .list_orders(timed(ListOrdersRequest { user_id, limit }, timeout))
                                .await
                        }
                        Read::Events {
                            after,
                            limit,
                            wait_ms,
                        } => {
                            let request = ReadEventsRequest {
                                after,
                                limit,
                                wait_ms,
                            };
                            client.read_events(timed(request, timeout)).await
                        }
                        Read::Sales {
                            sku,
                            from_ms,
                            to_ms,
                        } => {
                            let request = GetSalesRequest {
                                sku,
                                from_ms,
                                to_ms,
                            };
                            client.get_sales(timed(request, timeout)).await
                        }
                    }?;
                    Ok(read_answer(reply.into_inner()))
                }
            })
            .await?;
        postcard::from_bytes(&value)
            .map_err(|e| ClusterError::Internal(format!("undecodable read reply: {e}")))
    }
}

/// A command as `Submit` carries it: encoded once, then shared by every attempt.
pub(crate) fn encode_command(command: &Command) -> Result<Bytes, ClusterError> {
    postcard::to_allocvec(command)
        .map(Bytes::from)
        .map_err(|e| ClusterError::Internal(format!("encoding a command: {e}")))
}

/// A `Submit`'s answer: one encoded outcome per command, in order.
pub struct Submitted {
    pub outcomes: Vec<Bytes>,
    /// Each outcome is a `ShortOutcome`, to be restored from its command. A node of an
    /// earlier release answers whole outcomes.
    pub short: bool,
}

/// The outcome of `command` as `Submit` answered it (`Submitted::short`).
pub(crate) fn decode_outcome(
    raw: &[u8],
    short: bool,
    command: &Command,
) -> Result<Outcome, ClusterError> {
    state_machine::short_outcome::decode(raw, short, command).map_err(ClusterError::Internal)
}

/// A node that answers a `Submit` with more or fewer outcomes than commands is broken.
pub(crate) fn outcome_count_mismatch(outcomes: usize, commands: usize) -> ClusterError {
    ClusterError::Internal(format!(
        "the node answered {outcomes} outcomes for {commands} commands"
    ))
}

fn client(channel: NodeChannel) -> InventoryClient<NodeChannel> {
    InventoryClient::new(channel).max_decoding_message_size(MAX_REPLY_BYTES)
}

fn timed<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    RequestIds::of_this_request().attach(&mut request);
    request
}

/// Statuses that say something about the request itself: retrying elsewhere cannot help.
/// Everything else (connection refused or reset, timeouts, a node shutting down) may.
fn retryable(status: &tonic::Status) -> bool {
    !matches!(
        status.code(),
        Code::InvalidArgument
            | Code::Unimplemented
            | Code::OutOfRange
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::NotFound
            | Code::AlreadyExists
    )
}

fn submit_answer(reply: SubmitReply) -> Answer<Submitted> {
    match reply.result {
        Some(submit_reply::Result::Outcomes(o)) => Answer::Done(Submitted {
            outcomes: o.outcomes,
            short: o.short,
        }),
        Some(submit_reply::Result::NotLeader(n)) => Answer::NotLeader {
            id: n.leader_id,
            addr: n.leader_addr,
        },
        Some(submit_reply::Result::Unavailable(u)) => Answer::Unavailable(u.message),
        None => Answer::Unavailable("empty submit reply".into()),
    }
}

fn read_answer(reply: ReadReply) -> Answer<Vec<u8>> {
    match reply.result {
        Some(read_reply::Result::Record(r)) => Answer::Done(r.value),
        Some(read_reply::Result::NotLeader(n)) => Answer::NotLeader {
            id: n.leader_id,
            addr: n.leader_addr,
        },
        Some(read_reply::Result::Unavailable(u)) => Answer::Unavailable(u.message),
        Some(read_reply::Result::Invalid(m)) => Answer::Invalid(m),
        None => Answer::Unavailable("empty read reply".into()),
    }
}
