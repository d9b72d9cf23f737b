//! Linearisable reads: before answering from the applied state, the leader confirms with a
//! quorum that it still leads and waits until it has applied up to that point
//! (`ensure_linearizable`). Concurrent readers share one confirmation round: a reader waits
//! for a round that starts after it arrived, never for one already under way.

use crate::clock::Clocks;
use crate::leader::LeaderHint;
use crate::types::Raft;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Readers that may wait for a round; beyond it reads answer unavailable at once.
const QUEUE: usize = 65_536;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    NotLeader(LeaderHint),
    Unavailable(String),
}

#[derive(Clone)]
pub struct ReadIndex {
    tx: mpsc::Sender<oneshot::Sender<Result<(), ReadError>>>,
    clocks: Clocks,
}

impl ReadIndex {
    pub fn start(raft: Raft, clocks: Clocks) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(raft, rx));
        Self { tx, clocks }
    }

    /// Returns once a read of the local state is linearisable, or unavailable after `timeout`
    /// without a quorum's confirmation.
    pub async fn confirm(&self, timeout: Duration) -> Result<(), ReadError> {
        // DELIBERATELY BROKEN with the `stale-reads` feature (jepsen-tests' proof that the
        // harness can fail): every read is answered from the local applied state, on any
        // node, without the round. Never enable it outside that test.
        if cfg!(feature = "stale-reads") {
            return Ok(());
        }
        // A leader with a bad clock must send nothing that keeps its followers from electing
        // another, and a read's round is such a heartbeat.
        if !self.clocks.fit_to_lead() {
            return Err(ReadError::Unavailable(self.clocks.verdict().problem));
        }
        tokio::time::timeout(timeout, self.barrier())
            .await
            .unwrap_or_else(|_| {
                Err(ReadError::Unavailable(
                    "no quorum confirmed the read".into(),
                ))
            })
    }

    async fn barrier(&self) -> Result<(), ReadError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(reply)
            .map_err(|_| ReadError::Unavailable("read queue is full".into()))?;
        rx.await
            .map_err(|_| ReadError::Unavailable("node is shutting down".into()))?
    }
}

async fn run(raft: Raft, mut rx: mpsc::Receiver<oneshot::Sender<Result<(), ReadError>>>) {
    while let Some(first) = rx.recv().await {
        let mut waiters = vec![first];
        while let Ok(w) = rx.try_recv() {
            waiters.push(w);
        }
        let result = match raft.ensure_linearizable().await {
            Ok(_) => Ok(()),
            Err(e) => Err(match e.forward_to_leader() {
                Some(fwd) => ReadError::NotLeader(LeaderHint::from_forward(fwd)),
                None => ReadError::Unavailable(e.to_string()),
            }),
        };
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}
