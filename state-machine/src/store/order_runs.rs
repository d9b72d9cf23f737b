//! Orders on disk, many to a sled record. With events in chunks, the order record was the
//! one sled insert left per order at a checkpoint, and a follower's profile showed those
//! inserts as the larger part of its CPU. Orders are keyed by id, not by time, so they
//! cannot share records by key; instead each checkpoint writes the orders it changed as
//! *runs* of up to `ORDERS_PER_RUN`, keyed by a sequence number that only grows. A later
//! run's copy of an order supersedes an earlier one.
//!
//! An index in memory (order key → run holding its newest copy, live copies per run) says
//! which copies are superseded. When superseded copies outnumber live ones, a checkpoint
//! also moves the live copies of the oldest runs into its own runs and deletes those runs,
//! in the same atomic write, so the disk holds at most about twice the live orders.
//!
//! A run's key is a NUL byte and the sequence number (big-endian). Order ids never contain
//! NUL, so a run can never be taken for an order stored one per record, the layout of
//! earlier releases, which `migrate_legacy` folds into runs when a store opens. Orders are
//! never deleted, so a run holds no deletions.

use super::error::StoreError;
use super::memory::{Record, Value};
use std::collections::{BTreeMap, HashMap};

/// Orders per run: large enough that an order costs a small fraction of an insert.
pub(crate) const ORDERS_PER_RUN: usize = 256;

/// Superseded copies below this many never trigger a clean-up: small stores stay as written.
const SLACK: usize = 4_096;

const RUN_TAG: u8 = 0;

pub(crate) type RunKey = [u8; 9];

fn run_key(seq: u64) -> RunKey {
    let mut key = [0u8; 9];
    key[0] = RUN_TAG;
    key[1..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn seq_of_key(key: &[u8]) -> Option<u64> {
    match key {
        [RUN_TAG, rest @ ..] => rest.try_into().ok().map(u64::from_be_bytes),
        _ => None,
    }
}

/// `key length (u32 BE) · key · value length (u32 BE) · value` for each order.
fn encode_run<'a>(orders: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in orders {
        for part in [key, value] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

/// An order's key and record, borrowed from a run.
type OrderCopy<'a> = (&'a [u8], &'a [u8]);

fn decode_run(seq: u64, bytes: &[u8]) -> Result<Vec<OrderCopy<'_>>, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("orders: run {seq}: {what}"));
    let mut rest = bytes;
    let mut orders = Vec::new();
    loop {
        let key = take_part(&mut rest).ok_or_else(|| corrupt("torn order key"))?;
        let value = take_part(&mut rest).ok_or_else(|| corrupt("torn order"))?;
        if key.is_empty() || key.contains(&0) {
            return Err(corrupt("bad order key"));
        }
        orders.push((key, value));
        if rest.is_empty() {
            return Ok(orders);
        }
    }
}

/// The length-prefixed part at the front of `rest`, which moves past it.
fn take_part<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, tail) = rest.split_at_checked(4)?;
    let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
    let (part, tail) = tail.split_at_checked(len)?;
    *rest = tail;
    Some(part)
}

/// Copies a run holds: all of them, and those still the newest of their order.
#[derive(Default, Clone, Copy)]
struct RunCount {
    copies: usize,
    live: usize,
}

/// Which run holds each order's newest copy, and how many copies each run holds.
#[derive(Default)]
pub(crate) struct OrderRuns {
    next_seq: u64,
    newest: HashMap<Vec<u8>, u64>,
    /// Every stored run, oldest first.
    runs: BTreeMap<u64, RunCount>,
    /// Copies stored, live or superseded.
    stored: usize,
}

/// A checkpoint's writes to the orders tree, made before its transaction (which may run its
/// closure more than once) and folded into the index only once that commits.
pub(crate) struct RunWrites {
    pub inserts: Vec<(RunKey, Vec<u8>)>,
    pub removes: Vec<RunKey>,
    /// The order keys each new run holds, in `inserts` order.
    placed: Vec<(u64, Vec<Vec<u8>>)>,
    removed_runs: Vec<u64>,
}

impl OrderRuns {
    /// Reads every run in sequence order: the index, and each order's newest copy.
    pub fn load(tree: &sled::Tree) -> Result<(Self, Vec<Record>), StoreError> {
        let mut runs = OrderRuns::default();
        let mut orders: HashMap<Vec<u8>, Value> = HashMap::new();
        for item in tree.iter() {
            let (key, bytes) = item?;
            let seq = seq_of_key(&key)
                .ok_or_else(|| StoreError::Corrupt(format!("orders: bad run key {key:?}")))?;
            for (order, value) in decode_run(seq, &bytes)? {
                runs.place(order.to_vec(), seq);
                orders.insert(order.to_vec(), Value::from(value));
            }
            runs.next_seq = seq + 1;
        }
        Ok((runs, orders.into_iter().collect()))
    }

    /// Records a copy of `order` in run `seq`, its newest.
    fn place(&mut self, order: Vec<u8>, seq: u64) {
        if let Some(older) = self.newest.insert(order, seq) {
            if let Some(count) = self.runs.get_mut(&older) {
                count.live -= 1;
            }
        }
        let count = self.runs.entry(seq).or_default();
        count.copies += 1;
        count.live += 1;
        self.stored += 1;
    }

    /// Plans a checkpoint's orders: `changes` in new runs, and, when superseded copies
    /// outnumber live ones, the live copies of the oldest runs moved along (read from
    /// `tree`) and those runs deleted.
    pub fn plan(
        &self,
        tree: &sled::Tree,
        changes: &BTreeMap<Vec<u8>, Option<Value>>,
    ) -> Result<RunWrites, StoreError> {
        let added = changes.len();
        let live = self.newest.len();
        // Each copy added supersedes a stored one or is a new live order; count the worst.
        let superseded = (self.stored + added).saturating_sub(live);
        let mut moved: Vec<(Vec<u8>, Value)> = Vec::new();
        let mut removed_runs = Vec::new();
        if superseded > live + SLACK {
            // Clean at least as many copies as this checkpoint writes, so the stored total
            // shrinks towards the live one however fast orders change.
            let mut cleaned = 0usize;
            for (&seq, count) in &self.runs {
                if cleaned >= added.max(ORDERS_PER_RUN) {
                    break;
                }
                cleaned += count.copies;
                removed_runs.push(seq);
                if count.live == 0 {
                    continue;
                }
                let Some(bytes) = tree.get(run_key(seq))? else {
                    return Err(StoreError::Corrupt(format!("orders: run {seq} missing")));
                };
                for (order, value) in decode_run(seq, &bytes)? {
                    let newest_here = self.newest.get(order) == Some(&seq);
                    if newest_here && !changes.contains_key(order) {
                        moved.push((order.to_vec(), Value::from(value)));
                    }
                }
            }
        }
        let mut all: Vec<(&[u8], &[u8])> = Vec::with_capacity(added + moved.len());
        for (key, value) in changes {
            let value = value.as_ref().ok_or_else(|| {
                StoreError::Invariant(format!(
                    "order {:?} deleted: orders are never deleted, and runs cannot hold that",
                    String::from_utf8_lossy(key)
                ))
            })?;
            all.push((key, value));
        }
        all.extend(moved.iter().map(|(k, v)| (k.as_slice(), v.as_ref())));
        let mut writes = RunWrites {
            inserts: Vec::new(),
            removes: removed_runs.iter().map(|seq| run_key(*seq)).collect(),
            placed: Vec::new(),
            removed_runs,
        };
        for (offset, run) in all.chunks(ORDERS_PER_RUN).enumerate() {
            let seq = self.next_seq + offset as u64;
            writes
                .inserts
                .push((run_key(seq), encode_run(run.iter().copied())));
            writes
                .placed
                .push((seq, run.iter().map(|(k, _)| k.to_vec()).collect()));
        }
        Ok(writes)
    }

    /// Folds a committed checkpoint's writes into the index.
    pub fn committed(&mut self, writes: RunWrites) {
        for (seq, orders) in writes.placed {
            for order in orders {
                self.place(order, seq);
            }
            self.next_seq = seq + 1;
        }
        // After the moves, the runs deleted hold no live copy.
        for seq in writes.removed_runs {
            if let Some(count) = self.runs.remove(&seq) {
                debug_assert_eq!(count.live, 0, "run {seq} deleted with live copies");
                self.stored -= count.copies;
            }
        }
    }
}

/// Folds orders stored one per record (the layout before runs) into runs, in one atomic
/// write. Nothing to do, and no write, when there are none.
pub(crate) fn migrate_legacy(tree: &sled::Tree) -> Result<(), StoreError> {
    let mut legacy = Vec::new();
    let mut next_seq = 0;
    for item in tree.iter() {
        let (key, value) = item?;
        match seq_of_key(&key) {
            Some(seq) => next_seq = seq + 1,
            None => legacy.push((key, value)),
        }
    }
    if legacy.is_empty() {
        return Ok(());
    }
    let runs: Vec<(RunKey, Vec<u8>)> = legacy
        .chunks(ORDERS_PER_RUN)
        .enumerate()
        .map(|(offset, run)| {
            let bytes = encode_run(run.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
            (run_key(next_seq + offset as u64), bytes)
        })
        .collect();
    let mut batch = sled::Batch::default();
    for (key, _) in &legacy {
        batch.remove(key.as_ref());
    }
    for (key, bytes) in runs {
        batch.insert(&key[..], bytes);
    }
    tree.apply_batch(batch)?;
    tree.flush()?;
    Ok(())
}

/// Writes an install's orders (in key order, each once) as runs from sequence 0.
pub(crate) fn install_runs(orders: &[(Vec<u8>, Vec<u8>)]) -> Vec<(RunKey, Vec<u8>)> {
    orders
        .chunks(ORDERS_PER_RUN)
        .enumerate()
        .map(|(seq, run)| {
            let bytes = encode_run(run.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
            (run_key(seq as u64), bytes)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_round_trips_and_rejects_damage() {
        let orders = [(&b"o-1"[..], &b"first"[..]), (b"o-2", b"")];
        let bytes = encode_run(orders);
        assert_eq!(decode_run(0, &bytes).unwrap(), orders);
        let boundary = 4 + 3 + 4 + 5;
        for cut in 1..bytes.len() {
            if cut == boundary {
                assert_eq!(decode_run(0, &bytes[..cut]).unwrap(), orders[..1]);
            } else {
                assert!(decode_run(0, &bytes[..cut]).is_err(), "cut at {cut}");
            }
        }
        assert!(decode_run(0, &encode_run([(&b"a\0b"[..], &b"x"[..])])).is_err());
        assert!(decode_run(0, &encode_run([(&b""[..], &b"x"[..])])).is_err());
    }
}
