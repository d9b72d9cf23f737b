//! A leader-following gRPC client of the cluster, for the node's tests, the benchmark and the
//! admin CLI. It follows "not leader" hints, tries the other nodes on transport errors, and
//! gives up at its deadline. (The gateway has its own, with HTTP-facing policy.)

use crate::codec::{decode, encode};
use crate::network::{Channels, NodeChannel, MAX_MESSAGE_BYTES};
use cluster_config::mtls::Dialer;
use proto::admin::StatusReply;
use proto::inventory::inventory_client::InventoryClient;
use proto::inventory::{
    read_reply, submit_reply, GetOrderRequest, GetSkuRequest, ListSkusRequest, SubmitRequest,
};
use state_machine::{short_outcome, Command, Order, Outcome, Sku};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::codegen::Bytes;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no leader answered within {0:?}: {1}")]
    Unavailable(Duration, String),
    #[error("the cluster refused the request: {0}")]
    Invalid(String),
}

#[derive(Clone)]
pub struct Client {
    addrs: Arc<Vec<String>>,
    channels: Channels,
    /// Index into `addrs` (or a hinted address appended on the fly) of the last leader.
    leader: Arc<AtomicUsize>,
    hinted: Arc<std::sync::Mutex<Vec<String>>>,
    deadline: Duration,
}

enum Attempt<T> {
    Done(T),
    Redirect(String),
    Retry(String),
}

impl Client {
    /// A plaintext client (an `insecure` cluster).
    pub fn new(addrs: Vec<String>, deadline: Duration) -> Self {
        Self::with_dialer(addrs, deadline, Dialer::Plain)
    }

    pub fn with_dialer(addrs: Vec<String>, deadline: Duration, dialer: Dialer) -> Self {
        Self {
            addrs: Arc::new(addrs),
            channels: Channels::new(dialer),
            leader: Arc::new(AtomicUsize::new(0)),
            hinted: Default::default(),
            deadline,
        }
    }

    fn addr(&self, i: usize) -> String {
        let n = self.addrs.len();
        if i < n {
            self.addrs[i].clone()
        } else {
            let hinted = self.hinted.lock().unwrap_or_else(|p| p.into_inner());
            hinted
                .get(i - n)
                .cloned()
                .unwrap_or_else(|| self.addrs[0].clone())
        }
    }

    fn index_of(&self, addr: &str) -> usize {
        if let Some(i) = self.addrs.iter().position(|a| a == addr) {
            return i;
        }
        let mut hinted = self.hinted.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = hinted.iter().position(|a| a == addr) {
            return self.addrs.len() + i;
        }
        hinted.push(addr.to_string());
        self.addrs.len() + hinted.len() - 1
    }

    async fn with_leader<T, F, Fut>(&self, mut attempt: F) -> Result<T, ClientError>
    where
        F: FnMut(NodeChannel) -> Fut,
        Fut: std::future::Future<Output = Result<Attempt<T>, ClientError>>,
    {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(10);
        let mut last_error = String::from("no attempt made");
        let mut i = self.leader.load(Ordering::Relaxed);
        while started.elapsed() < self.deadline {
            let addr = self.addr(i);
            let channel = self
                .channels
                .get(&addr)
                .map_err(|e| ClientError::Invalid(e.to_string()))?;
            let remaining = self.deadline.saturating_sub(started.elapsed());
            let outcome = match tokio::time::timeout(remaining, attempt(channel)).await {
                Ok(outcome) => outcome?,
                Err(_) => Attempt::Retry("no answer before the deadline".into()),
            };
            match outcome {
                Attempt::Done(value) => {
                    self.leader.store(i, Ordering::Relaxed);
                    return Ok(value);
                }
                Attempt::Redirect(to) => {
                    i = self.index_of(&to);
                    continue;
                }
                Attempt::Retry(why) => {
                    last_error = format!("{addr}: {why}");
                    i = (i + 1) % self.addrs.len().max(1);
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(200));
        }
        Err(ClientError::Unavailable(self.deadline, last_error))
    }

    /// Submits commands; returns their outcomes and the log index that carried them.
    pub async fn submit(&self, commands: &[Command]) -> Result<(Vec<Outcome>, u64), ClientError> {
        let encoded: Vec<Bytes> = commands.iter().map(|c| encode(c).into()).collect();
        self.with_leader(|channel| {
            let request = SubmitRequest {
                commands: encoded.clone(),
                short_outcomes: true,
            };
            async move {
                let mut client = InventoryClient::new(channel)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES);
                let reply = match client.submit(request).await {
                    Ok(reply) => reply.into_inner(),
                    Err(status) if status.code() == tonic::Code::InvalidArgument => {
                        return Err(ClientError::Invalid(status.message().to_string()))
                    }
                    Err(status) => return Ok(Attempt::Retry(status.to_string())),
                };
                Ok(match reply.result {
                    Some(submit_reply::Result::Outcomes(o)) => {
                        let outcomes = decode_outcomes(&o.outcomes, o.short, commands)
                            .map_err(ClientError::Invalid)?;
                        Attempt::Done((outcomes, o.log_index))
                    }
                    Some(submit_reply::Result::NotLeader(n)) if !n.leader_addr.is_empty() => {
                        Attempt::Redirect(n.leader_addr)
                    }
                    Some(submit_reply::Result::NotLeader(_)) => {
                        Attempt::Retry("no leader known".into())
                    }
                    Some(submit_reply::Result::Unavailable(u)) => Attempt::Retry(u.message),
                    None => Attempt::Retry("empty reply".into()),
                })
            }
        })
        .await
    }

    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        call: impl Fn(
            InventoryClient<NodeChannel>,
        ) -> futures::future::BoxFuture<
            'static,
            Result<tonic::Response<proto::inventory::ReadReply>, tonic::Status>,
        >,
    ) -> Result<T, ClientError> {
        self.with_leader(|channel| {
            let fut =
                call(InventoryClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES));
            async move {
                let reply = match fut.await {
                    Ok(reply) => reply.into_inner(),
                    Err(status) => return Ok(Attempt::Retry(status.to_string())),
                };
                Ok(match reply.result {
                    Some(read_reply::Result::Record(r)) => Attempt::Done(
                        decode(&r.value).map_err(|e| ClientError::Invalid(e.to_string()))?,
                    ),
                    Some(read_reply::Result::NotLeader(n)) if !n.leader_addr.is_empty() => {
                        Attempt::Redirect(n.leader_addr)
                    }
                    Some(read_reply::Result::NotLeader(_)) => {
                        Attempt::Retry("no leader known".into())
                    }
                    Some(read_reply::Result::Unavailable(u)) => Attempt::Retry(u.message),
                    Some(read_reply::Result::Invalid(m)) => return Err(ClientError::Invalid(m)),
                    None => Attempt::Retry("empty reply".into()),
                })
            }
        })
        .await
    }

    pub async fn get_sku(&self, sku: &str) -> Result<Option<Sku>, ClientError> {
        let sku = sku.to_string();
        self.read(move |mut c| {
            let req = GetSkuRequest { sku: sku.clone() };
            Box::pin(async move { c.get_sku(req).await })
        })
        .await
    }

    pub async fn get_order(&self, order_id: &str) -> Result<Option<Order>, ClientError> {
        let id = order_id.to_string();
        self.read(move |mut c| {
            let req = GetOrderRequest {
                order_id: id.clone(),
            };
            Box::pin(async move { c.get_order(req).await })
        })
        .await
    }

    pub async fn list_skus(
        &self,
        after: &str,
        limit: u32,
    ) -> Result<(Vec<Sku>, Option<state_machine::SkuId>), ClientError> {
        let after = after.to_string();
        self.read(move |mut c| {
            let req = ListSkusRequest {
                after: after.clone(),
                limit,
            };
            Box::pin(async move { c.list_skus(req).await })
        })
        .await
    }
}

/// The admin `Status` of one node, straight from that node (no leader following), in
/// plaintext (an `insecure` cluster).
pub async fn status(addr: &str, timeout: Duration) -> Result<StatusReply, String> {
    status_via(&Dialer::Plain, addr, timeout).await
}

/// As [`status`], dialling with `dialer` (an admin or node certificate).
pub async fn status_via(
    dialer: &Dialer,
    addr: &str,
    timeout: Duration,
) -> Result<StatusReply, String> {
    cluster_config::launch::probe::status(dialer, addr, timeout).await
}

/// A `Submit`'s outcomes, one per command (`short_outcome::decode`).
fn decode_outcomes(
    raw: &[Bytes],
    short: bool,
    commands: &[Command],
) -> Result<Vec<Outcome>, String> {
    if raw.len() != commands.len() {
        return Err(format!(
            "the node answered {} outcomes for {} commands",
            raw.len(),
            commands.len()
        ));
    }
    raw.iter()
        .zip(commands)
        .map(|(bytes, command)| short_outcome::decode(bytes, short, command))
        .collect()
}
