//! Coalesces concurrent commands into batched `Submit`s: commands that arrive while earlier
//! batches are in flight wait in a queue and leave together in the next `Submit`, each
//! caller getting its own outcome back.
//!
//! This is what lets ten thousand concurrent buyers finish fast: the leader commits one log
//! entry per batch instead of one per buyer. Under light load a command leaves at once, alone.
//! The batcher never interprets outcomes; it only routes them back.

use std::sync::Arc;

use axum::body::Bytes;
use state_machine::{Command, Outcome};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::{
    decode_outcome, encode_command, outcome_count_mismatch, Cluster, ClusterError, RequestIds,
};

/// Most commands in one `Submit`. Large enough to carry a flash sale's burst in a few log
/// entries, small enough that one entry applies in tens of milliseconds.
pub const MAX_BATCH_COMMANDS: usize = 1_024;
/// Most encoded command bytes in one `Submit`: under tonic's 4 MiB default request limit on
/// the node, with room to spare.
pub const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;
/// `Submit`s in flight at once. One: everything that arrives while a batch commits leaves
/// together in the next, so batches are as large as the load makes them. More slots split
/// the same orders into more, smaller log entries, and every process pays per entry: at W2
/// (256 clients, two shared cores) the leader spent about 41 ms of CPU per 1,000 orders with
/// four slots, 35 with two and 30 with one, and one gave the most orders/s. The leader
/// still overlaps proposals from several gateways (`group_commit`).
pub const MAX_SUBMITS_IN_FLIGHT: usize = 1;

struct Pending {
    command: Bytes,
    /// The HTTP request's id: the batch's `Submit` carries its commands' ids to the node.
    request_id: Option<String>,
    deadline: Instant,
    /// The encoded outcome, and whether it is short (`Submitted::short`): the caller, who
    /// holds the command, decodes it.
    reply: oneshot::Sender<Result<(Bytes, bool), ClusterError>>,
}

/// The callers' handle; cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    queue: mpsc::Sender<Pending>,
}

impl Batcher {
    /// Starts the batching task. `queue_bound` bounds the commands waiting for a batch
    /// (admission control bounds the callers to the same number).
    pub fn spawn(cluster: Arc<Cluster>, queue_bound: usize) -> Self {
        let (queue, rx) = mpsc::channel(queue_bound.max(1));
        tokio::spawn(run(cluster, rx));
        Self { queue }
    }

    /// Submits one command through the next batch and waits for its outcome until `deadline`.
    pub async fn submit(
        &self,
        command: &Command,
        deadline: Instant,
    ) -> Result<Outcome, ClusterError> {
        let encoded = encode_command(command)?;
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            command: encoded,
            request_id: crate::request_id::current(),
            deadline,
            reply,
        };
        let queued = tokio::time::timeout_at(deadline, self.queue.send(pending)).await;
        match queued {
            Err(_) => return Err(unanswered()),
            Ok(Err(_)) => {
                return Err(ClusterError::Unavailable(
                    "the gateway is shutting down".into(),
                ))
            }
            Ok(Ok(())) => {}
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(result)) => result.and_then(|(raw, short)| decode_outcome(&raw, short, command)),
            // The batch task ended without an answer: only at shutdown.
            Ok(Err(_)) => Err(ClusterError::Unavailable(
                "the gateway is shutting down".into(),
            )),
            Err(_) => Err(unanswered()),
        }
    }
}

fn unanswered() -> ClusterError {
    ClusterError::Unavailable("the request deadline passed before the cluster answered".into())
}

async fn run(cluster: Arc<Cluster>, mut rx: mpsc::Receiver<Pending>) {
    let slots = Arc::new(Semaphore::new(MAX_SUBMITS_IN_FLIGHT));
    // A command that did not fit the previous batch's byte budget starts the next one.
    let mut carried: Option<Pending> = None;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut bytes = first.command.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_COMMANDS {
            let Ok(p) = rx.try_recv() else { break };
            // Its caller gave up (deadline passed): nobody would read the outcome.
            if p.reply.is_closed() {
                continue;
            }
            if bytes + p.command.len() > MAX_BATCH_BYTES {
                carried = Some(p);
                break;
            }
            bytes += p.command.len();
            batch.push(p);
        }
        tokio::spawn(submit(cluster.clone(), batch, slot));
    }
}

async fn submit(cluster: Arc<Cluster>, batch: Vec<Pending>, slot: OwnedSemaphorePermit) {
    let deadline = batch
        .iter()
        .map(|p| p.deadline)
        .max()
        .unwrap_or_else(Instant::now);
    let commands: Vec<Bytes> = batch.iter().map(|p| p.command.clone()).collect();
    let request_ids = RequestIds::joined(batch.iter().filter_map(|p| p.request_id.as_deref()));
    let result = cluster.submit(commands, request_ids, deadline).await;
    // The next batch leaves before this one's callers hear back. Each answer wakes a
    // request's task, which writes its HTTP answer (about 13 µs each); queued first, some
    // hundred of them held the next `Submit`, started by tasks woken later, for over a
    // millisecond while the leader sat idle. Freed, the slot wakes the batching task, and
    // the yield lets it, the new `Submit`'s task and the channel's tasks run (a yield
    // resumes only once the tasks queued meanwhile have run) before the answers go out.
    drop(slot);
    tokio::task::yield_now().await;
    match result {
        Ok(submitted) if submitted.outcomes.len() == batch.len() => {
            for (p, raw) in batch.into_iter().zip(submitted.outcomes) {
                let _ = p.reply.send(Ok((raw, submitted.short)));
            }
        }
        Ok(submitted) => {
            let err = outcome_count_mismatch(submitted.outcomes.len(), batch.len());
            for p in batch {
                let _ = p.reply.send(Err(err.clone()));
            }
        }
        Err(err) => {
            for p in batch {
                let _ = p.reply.send(Err(err.clone()));
            }
        }
    }
}
