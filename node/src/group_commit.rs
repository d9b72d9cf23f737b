//! Group commit on the leader: commands that arrive while earlier proposals are in flight
//! are gathered (up to a cap) into one `Batch` and proposed with one `client_write`, so one
//! log entry — one fsync on each node — carries many orders. Each caller gets back exactly
//! the outcomes of its own commands.

use crate::clock::Clocks;
use crate::in_flight::{Entered, InFlightOrders};
use crate::leader::LeaderHint;
use crate::metrics::{Histogram, HotPath};
use crate::types::Raft;
use prometheus_client::metrics::gauge::Gauge;
use state_machine::{Batch, Command, Outcome};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Proposals in flight at once. Two lets the next batch be appended and replicated while the
/// previous one is applied; more adds latency without adding throughput on 2 cores.
const IN_FLIGHT: usize = 2;
/// Bytes of commands (as they came over the wire) one log entry may carry: bounds an
/// entry, and so an AppendEntries, even when each command is large. A single submit larger
/// than this still travels alone in one entry.
pub const MAX_ENTRY_BYTES: usize = 4 * 1024 * 1024;
/// Callers that may wait for a proposal slot; beyond it `submit` answers unavailable at once
/// rather than queueing without bound.
const QUEUE: usize = 65_536;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposeError {
    NotLeader(LeaderHint),
    /// Maybe applied: retrying with the same ids is safe.
    Unavailable(String),
}

#[derive(Debug)]
pub struct Committed {
    pub outcomes: Vec<Outcome>,
    pub log_index: u64,
    /// The entry's payload, shared with the log: the proposal's commands are its
    /// `first..first + outcomes.len()`.
    batch: Arc<Batch>,
    first: usize,
}

impl Committed {
    /// Each outcome with the command it answers, in the proposal's order.
    pub fn into_answers(self) -> Answers {
        Answers {
            outcomes: self.outcomes.into_iter(),
            batch: self.batch,
            next: self.first,
        }
    }
}

pub struct Answers {
    outcomes: std::vec::IntoIter<Outcome>,
    batch: Arc<Batch>,
    next: usize,
}

impl Answers {
    pub fn next_answer(&mut self) -> Option<(Outcome, &Command)> {
        let outcome = self.outcomes.next()?;
        let command = self.batch.commands.get(self.next)?;
        self.next += 1;
        Some((outcome, command))
    }
}

#[cfg(test)]
impl Answers {
    /// The answers to `batch`'s commands, from the first.
    pub fn of(outcomes: Vec<Outcome>, batch: Batch) -> Self {
        Self {
            outcomes: outcomes.into_iter(),
            batch: Arc::new(batch),
            next: 0,
        }
    }
}

struct Proposal {
    commands: Vec<Command>,
    /// The commands' size on the wire.
    bytes: usize,
    reply: oneshot::Sender<Result<Committed, ProposeError>>,
    /// Dropped only after `client_write` returned, so a caller that gave up waiting does not
    /// take its orders out of flight.
    in_flight: Entered,
    /// Counts this proposal in `proposals_pending` until dropped with `in_flight`.
    pending: Pending,
}

/// One submit in the node's `proposals_pending` gauge, for as long as it lives.
struct Pending(Gauge);

impl Pending {
    fn enter(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Proposal>,
    in_flight: InFlightOrders,
    clocks: Clocks,
    pending: Gauge,
}

impl GroupCommit {
    /// Proposals are stamped with `clocks.proposal_ms()`; the state machine keeps
    /// `clock = max(clock, now_ms)`. `metrics` counts pending submits and commands per entry.
    pub fn start(raft: Raft, max_batch: usize, clocks: Clocks, metrics: &HotPath) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let per_entry = metrics.commands_per_entry.clone();
        tokio::spawn(run(raft, rx, max_batch.max(1), clocks.clone(), per_entry));
        Self {
            tx,
            in_flight: InFlightOrders::default(),
            clocks,
            pending: metrics.proposals_pending.clone(),
        }
    }

    pub fn clocks(&self) -> &Clocks {
        &self.clocks
    }

    /// The orders proposed through this proposer and not yet answered by apply.
    pub fn in_flight(&self) -> &InFlightOrders {
        &self.in_flight
    }

    /// Proposes `commands`, whose encoded size is about `bytes`, in the next entry with room.
    pub async fn submit(
        &self,
        commands: Vec<Command>,
        bytes: usize,
    ) -> Result<Committed, ProposeError> {
        // A node whose clock disagrees with its peers' must not stamp the cluster's time.
        if !self.clocks.fit_to_lead() {
            return Err(ProposeError::Unavailable(self.clocks.verdict().problem));
        }
        let (reply, rx) = oneshot::channel();
        let in_flight = self.in_flight.enter(&commands);
        self.tx
            .try_send(Proposal {
                commands,
                bytes,
                reply,
                in_flight,
                pending: Pending::enter(&self.pending),
            })
            .map_err(|_| ProposeError::Unavailable("leader proposal queue is full".into()))?;
        rx.await
            .map_err(|_| ProposeError::Unavailable("node is shutting down".into()))?
    }
}

async fn run(
    raft: Raft,
    mut rx: mpsc::Receiver<Proposal>,
    max_batch: usize,
    clocks: Clocks,
    per_entry: Histogram,
) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut carry: Option<Proposal> = None;
    loop {
        let first = match carry.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        // Waiting for a slot is what lets a group form: callers keep arriving meanwhile.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut size = first.commands.len();
        let mut bytes = first.bytes;
        let mut group = vec![first];
        while size < max_batch && bytes < MAX_ENTRY_BYTES {
            match rx.try_recv() {
                Ok(p) if fits(size, bytes, &p, max_batch) => {
                    size += p.commands.len();
                    bytes += p.bytes;
                    group.push(p);
                }
                Ok(p) => {
                    carry = Some(p);
                    break;
                }
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        let now_ms = clocks.proposal_ms();
        per_entry.observe(size as u64);
        tokio::spawn(async move {
            propose(&raft, group, now_ms).await;
            drop(slot);
        });
    }
}

/// Whether `next` joins an entry that already holds `size` commands of `bytes`.
fn fits(size: usize, bytes: usize, next: &Proposal, max_batch: usize) -> bool {
    size + next.commands.len() <= max_batch && bytes + next.bytes <= MAX_ENTRY_BYTES
}

async fn propose(raft: &Raft, group: Vec<Proposal>, now_ms: u64) {
    let mut commands = Vec::with_capacity(group.iter().map(|p| p.commands.len()).sum());
    let mut replies = Vec::with_capacity(group.len());
    let mut in_flight = Vec::with_capacity(group.len());
    for p in group {
        replies.push((p.commands.len(), p.reply));
        commands.extend(p.commands);
        in_flight.push((p.in_flight, p.pending));
    }
    let total = commands.len();
    let batch = Arc::new(Batch { now_ms, commands });
    let written = raft.client_write(batch.clone()).await;
    // Applied, or refused by a leader that lost its term: a read index of any later term
    // waits for this entry to be applied or gone, so the orders are out of flight either way.
    drop(in_flight);
    match written {
        Ok(resp) if resp.data.outcomes.len() == total => {
            let sizes: Vec<usize> = replies.iter().map(|(n, _)| *n).collect();
            let committed = split(resp.data.outcomes, &sizes, &batch, resp.log_id.index);
            for ((_, reply), committed) in replies.into_iter().zip(committed) {
                let _ = reply.send(Ok(committed));
            }
        }
        Ok(resp) => {
            tracing::error!(
                expected = total,
                got = resp.data.outcomes.len(),
                "outcome count mismatch"
            );
            for (_, reply) in replies {
                let _ = reply.send(Err(ProposeError::Unavailable(
                    "outcome count mismatch".into(),
                )));
            }
        }
        Err(e) => {
            let err = match e.forward_to_leader() {
                Some(fwd) => ProposeError::NotLeader(LeaderHint::from_forward(fwd)),
                None => ProposeError::Unavailable(e.to_string()),
            };
            for (_, reply) in replies {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}

/// One entry's outcomes, split among the proposals that made it (`sizes` commands each, in
/// the entry's order).
fn split(
    outcomes: Vec<Outcome>,
    sizes: &[usize],
    batch: &Arc<Batch>,
    log_index: u64,
) -> Vec<Committed> {
    let mut outcomes = outcomes.into_iter();
    let mut first = 0;
    sizes
        .iter()
        .map(|&n| {
            let committed = Committed {
                outcomes: outcomes.by_ref().take(n).collect(),
                log_index,
                batch: batch.clone(),
                first,
            };
            first += n;
            committed
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use state_machine::{Refusal, SkuId};

    #[test]
    fn each_proposal_gets_its_own_commands_beside_its_outcomes() {
        let cancel = |i: usize| Command::Cancel {
            order_id: state_machine::OrderId::new(format!("o-{i}")).unwrap(),
        };
        let batch = Arc::new(Batch {
            now_ms: 1,
            commands: (0..6).map(cancel).collect(),
        });
        // The outcome of command i names SKU i, so a pairing shows which is whose.
        let outcomes = (0..6)
            .map(|i| {
                Outcome::Refused(Refusal::SkuNotFound {
                    sku: SkuId::new(format!("s-{i}")).unwrap(),
                })
            })
            .collect();
        let committed = split(outcomes, &[1, 3, 2], &batch, 9);
        let mut seen = 0;
        for (proposal, size) in committed.into_iter().zip([1, 3, 2]) {
            assert_eq!(proposal.log_index, 9);
            let mut answers = proposal.into_answers();
            for _ in 0..size {
                let (outcome, command) = answers.next_answer().unwrap();
                assert_eq!(*command, cancel(seen));
                let Outcome::Refused(Refusal::SkuNotFound { sku }) = outcome else {
                    panic!("{outcome:?}");
                };
                assert_eq!(sku.as_str(), format!("s-{seen}"));
                seen += 1;
            }
            assert!(answers.next_answer().is_none());
        }
        assert_eq!(seen, 6);
    }

    fn proposal(commands: usize, bytes: usize) -> Proposal {
        Proposal {
            commands: vec![Command::Expire; commands],
            bytes,
            reply: oneshot::channel().0,
            in_flight: InFlightOrders::default().enter(&[]),
            pending: Pending::enter(&Gauge::default()),
        }
    }

    #[test]
    fn an_entry_is_capped_by_commands_and_by_bytes() {
        assert!(fits(10, 1_000, &proposal(5, 1_000), 16));
        assert!(!fits(10, 1_000, &proposal(7, 1_000), 16));
        assert!(fits(1, MAX_ENTRY_BYTES - 100, &proposal(1, 100), 4096));
        assert!(!fits(1, MAX_ENTRY_BYTES - 100, &proposal(1, 101), 4096));
    }

    #[test]
    fn a_proposal_is_pending_until_dropped() {
        let gauge = Gauge::default();
        let first = Pending::enter(&gauge);
        let second = Pending::enter(&gauge);
        assert_eq!(gauge.get(), 2);
        drop(first);
        assert_eq!(gauge.get(), 1);
        drop(second);
        assert_eq!(gauge.get(), 0);
    }
}
