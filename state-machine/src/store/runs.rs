//! Records on disk, many to a sled record. A sled insert costs far more than the bytes it
//! carries (tree descent, a page copy, splits), and a checkpoint wrote one per changed record:
//! each order, and on many-SKU workloads nearly every SKU and its sales bucket. These trees
//! are keyed by id, not by time, so their records cannot share sled records by key; instead
//! each checkpoint writes the records it changed as *runs* of up to `RECORDS_PER_RUN`, keyed
//! by a sequence number that only grows. A later run's copy of a record supersedes an earlier
//! one.
//!
//! Memory keeps only how many copies each run holds (`run_counts`). When superseded copies
//! outnumber live ones, a checkpoint also moves the live copies of the oldest runs into its
//! own runs and deletes those runs, in the same atomic write, so the disk holds at most about
//! twice the live records. A copy is live when it equals the record in the working set as of
//! the checkpoint's cut: once the checkpoint is written, sled's newest copy of every record
//! is that value, so an older copy that differs is superseded. A copy that equals it but is
//! superseded by an identical later one is moved too, which costs a duplicate, never a value.
//!
//! A run's key is a NUL byte and the sequence number (big-endian). No record key of these
//! trees starts with NUL (each starts with an identifier, which never holds one), so a run
//! can never be taken for a record stored one per sled record, the layout of earlier
//! releases, which `migrate_legacy` folds into runs when a store opens. These trees never
//! delete a record, so a run holds no deletions.

use super::error::StoreError;
use super::keys;
use super::memory::{self, Changes, InRuns, MemTree, Record, Value};
use super::packed;
use super::run_counts::RunCounts;
use super::trees::{Trees, NAMES};
use std::borrow::Cow;
use std::collections::HashSet;

/// Seeded per process, so crafted order ids cannot aim at collisions.
type Hasher = foldhash::quality::RandomState;

/// Records per run: large enough that a record costs a small fraction of an insert.
pub(crate) const RECORDS_PER_RUN: usize = 256;

/// Superseded copies below this many never trigger a clean-up: small stores stay as written.
const SLACK: usize = 4_096;

const RUN_TAG: u8 = 0;

pub(crate) type RunKey = [u8; 9];

fn run_key(seq: u64) -> RunKey {
    keys::tagged(RUN_TAG, seq)
}

fn seq_of_key(key: &[u8]) -> Option<u64> {
    keys::untagged(RUN_TAG, key)
}

/// `key length (u32 BE) · key · value length (u32 BE) · value` for each record, packed
/// (`packed`).
fn encode_run<'a>(records: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        for part in [key, value] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    packed::pack(out)
}

/// A run's stored bytes, unpacked.
fn unpack_run<'a>(tree: &str, seq: u64, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, StoreError> {
    packed::unpack(stored).map_err(|e| StoreError::Corrupt(format!("{tree}: run {seq}: {e}")))
}

/// A record's key and value, borrowed from a run.
type Copy<'a> = (&'a [u8], &'a [u8]);

fn decode_run<'a>(tree: &str, seq: u64, bytes: &'a [u8]) -> Result<Vec<Copy<'a>>, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("{tree}: run {seq}: {what}"));
    let mut rest = bytes;
    let mut records = Vec::new();
    loop {
        let key = take_part(&mut rest).ok_or_else(|| corrupt("torn key"))?;
        let value = take_part(&mut rest).ok_or_else(|| corrupt("torn record"))?;
        if key.first().is_none_or(|b| *b == RUN_TAG) {
            return Err(corrupt("bad record key"));
        }
        records.push((key, value));
        if rest.is_empty() {
            return Ok(records);
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

/// A tree's runs: the next sequence number, and the copies each run holds.
pub(crate) struct Runs {
    /// The tree's name, for messages.
    tree: &'static str,
    next_seq: u64,
    counts: RunCounts,
}

/// A checkpoint's writes to one tree, made before its transaction (which may run its
/// closure more than once) and counted only once that commits.
pub(crate) struct RunWrites {
    pub inserts: Vec<(RunKey, Vec<u8>)>,
    pub removes: Vec<RunKey>,
    /// The live copies of the cleaned runs, written after the checkpoint's changes: the new
    /// runs hold the changes' keys, then these, in order, `RECORDS_PER_RUN` to a run.
    moved: Vec<(Vec<u8>, Value)>,
    removed_runs: Vec<u64>,
}

impl Runs {
    /// Reads every run of `tree` (named `name`) in sequence order: the counts, and every copy
    /// in that order (inserted in turn into a map, each record ends as its newest copy).
    pub fn load(tree: &sled::Tree, name: &'static str) -> Result<(Self, Vec<Record>), StoreError> {
        let mut runs = Runs {
            tree: name,
            next_seq: 0,
            counts: RunCounts::default(),
        };
        // Every copy, oldest run first: inserted in this order, the newest of each wins.
        let mut records = Vec::new();
        for item in tree.iter() {
            let (key, bytes) = item?;
            let seq = seq_of_key(&key)
                .ok_or_else(|| StoreError::Corrupt(format!("{name}: bad run key {key:?}")))?;
            let raw = unpack_run(name, seq, &bytes)?;
            let copies = decode_run(name, seq, &raw)?;
            runs.counts.add(seq, copies.len());
            for (record, value) in copies {
                records.push((record.to_vec(), Value::from(value)));
            }
            runs.next_seq = seq + 1;
        }
        Ok((runs, records))
    }

    /// Plans a checkpoint's writes to the tree: `changes` in new runs, and, when superseded copies
    /// outnumber live ones, the live copies of the oldest runs moved along (read from
    /// `tree`) and those runs deleted. `at_cut` is the tree in the working set as of the cut
    /// that `changes` end at: taken with them, before any later apply.
    pub fn plan(
        &self,
        tree: &sled::Tree,
        changes: &[(Vec<u8>, Option<Value>)],
        at_cut: &MemTree,
    ) -> Result<RunWrites, StoreError> {
        let added = changes.len();
        // Once written, every record has one live copy: the one equal to it at the cut.
        let live = at_cut.len();
        let superseded = (self.counts.stored() + added).saturating_sub(live);
        let mut moved: Vec<(Vec<u8>, Value)> = Vec::new();
        let mut removed_runs = Vec::new();
        if superseded > live + SLACK {
            // Clean at least as many copies as this checkpoint writes, so the stored total
            // shrinks towards the live one however fast records change.
            let mut cleaned = 0usize;
            let changed: HashSet<&[u8], Hasher> =
                changes.iter().map(|(key, _)| key.as_slice()).collect();
            for (seq, copies) in self.counts.runs() {
                if cleaned >= added.max(RECORDS_PER_RUN) {
                    break;
                }
                cleaned += copies;
                removed_runs.push(seq);
                if copies == 0 {
                    continue;
                }
                let Some(bytes) = tree.get(run_key(seq))? else {
                    return Err(StoreError::Corrupt(format!(
                        "{}: run {seq} missing",
                        self.tree
                    )));
                };
                let raw = unpack_run(self.tree, seq, &bytes)?;
                for (record, value) in decode_run(self.tree, seq, &raw)? {
                    // The changes write this record's newest copy themselves.
                    if changed.contains(record) {
                        continue;
                    }
                    let Some(newest) = at_cut.get(record) else {
                        // These trees never delete, and memory holds every stored record.
                        return Err(StoreError::Invariant(format!(
                            "{}: {:?} stored in run {seq} but not in memory",
                            self.tree,
                            String::from_utf8_lossy(record)
                        )));
                    };
                    if **newest == *value {
                        moved.push((record.to_vec(), Value::from(value)));
                    }
                }
            }
        }
        let mut all: Vec<(&[u8], &[u8])> = Vec::with_capacity(added + moved.len());
        for (key, value) in changes {
            let value = value.as_ref().ok_or_else(|| {
                StoreError::Invariant(format!(
                    "{}: {:?} deleted: this tree never deletes, and runs cannot hold that",
                    self.tree,
                    String::from_utf8_lossy(key)
                ))
            })?;
            all.push((key, value));
        }
        all.extend(moved.iter().map(|(k, v)| (k.as_slice(), v.as_ref())));
        let inserts = all
            .chunks(RECORDS_PER_RUN)
            .enumerate()
            .map(|(offset, run)| {
                let seq = self.next_seq + offset as u64;
                (run_key(seq), encode_run(run.iter().copied()))
            })
            .collect();
        drop(all);
        Ok(RunWrites {
            inserts,
            removes: removed_runs.iter().map(|seq| run_key(*seq)).collect(),
            moved,
            removed_runs,
        })
    }

    /// Counts a committed checkpoint's writes; `changes` are those `plan` was given.
    pub fn committed(&mut self, changes: &[(Vec<u8>, Option<Value>)], writes: RunWrites) {
        let copies = changes.len() + writes.moved.len();
        for offset in 0..writes.inserts.len() {
            let in_run = (copies - offset * RECORDS_PER_RUN).min(RECORDS_PER_RUN);
            self.counts.add(self.next_seq + offset as u64, in_run);
        }
        self.next_seq += writes.inserts.len() as u64;
        for seq in writes.removed_runs {
            self.counts.remove_oldest(seq);
        }
    }
}

/// The runs of every tree stored in runs (`memory::IN_RUNS`), in that order.
pub(crate) struct RunTrees(Vec<(usize, Runs)>);

/// One checkpoint's writes to each tree stored in runs.
pub(crate) type RunPlans = Vec<(usize, RunWrites)>;

impl RunTrees {
    /// Folds the earlier layout into runs where a store was left so (`migrate`), then reads
    /// every tree stored in runs: the counts, and the records to hold in memory by tree.
    pub fn open(disk: &Trees, migrate: bool) -> Result<(Self, memory::Loaded), StoreError> {
        let trees = disk.in_order();
        let mut runs = Vec::new();
        let mut records = Vec::new();
        for position in memory::IN_RUNS {
            if migrate {
                migrate_legacy(trees[position])?;
            }
            let (counted, loaded) = Runs::load(trees[position], NAMES[position])?;
            runs.push((position, counted));
            records.push((position, loaded));
        }
        Ok((RunTrees(runs), records))
    }

    /// Plans a checkpoint's writes to each tree; `at_cut` holds the trees as of the cut
    /// `changes` end at (`MemTrees::in_runs`).
    pub fn plan(
        &self,
        disk: &Trees,
        changes: &Changes,
        at_cut: &InRuns,
    ) -> Result<RunPlans, StoreError> {
        let trees = disk.in_order();
        self.0
            .iter()
            .zip(at_cut)
            .map(|((position, runs), tree)| {
                let writes = runs.plan(trees[*position], &changes[*position], tree)?;
                Ok((*position, writes))
            })
            .collect()
    }

    pub fn committed(&mut self, changes: &Changes, plans: RunPlans) {
        for ((position, runs), (planned, writes)) in self.0.iter_mut().zip(plans) {
            debug_assert_eq!(*position, planned);
            runs.committed(&changes[*position], writes);
        }
    }
}

/// Folds records stored one per sled record (the layout before runs) into runs, in one atomic
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
        .chunks(RECORDS_PER_RUN)
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

/// Writes an install's records of one tree (in key order, each once) as runs from sequence 0.
pub(crate) fn install_runs(records: &[(Vec<u8>, Vec<u8>)]) -> Vec<(RunKey, Vec<u8>)> {
    records
        .chunks(RECORDS_PER_RUN)
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
        let records = [(&b"o-1"[..], &b"first"[..]), (b"s\0k", b"")];
        let bytes = encode_run(records);
        assert_eq!(decode_run("t", 0, &bytes).unwrap(), records);
        let boundary = 4 + 3 + 4 + 5;
        for cut in 1..bytes.len() {
            if cut == boundary {
                assert_eq!(decode_run("t", 0, &bytes[..cut]).unwrap(), records[..1]);
            } else {
                assert!(decode_run("t", 0, &bytes[..cut]).is_err(), "cut at {cut}");
            }
        }
        // A key starting with NUL would read back as a run's key.
        assert!(decode_run("t", 0, &encode_run([(&b"\0ab"[..], &b"x"[..])])).is_err());
        assert!(decode_run("t", 0, &encode_run([(&b""[..], &b"x"[..])])).is_err());
    }

    /// A full run is stored packed and reads back whole; a run stored unpacked (as releases
    /// before packing wrote them) reads as it is.
    #[test]
    fn runs_are_packed_and_unpacked_runs_still_read() {
        let keys: Vec<String> = (0..RECORDS_PER_RUN)
            .map(|i| format!("order-{i:06}"))
            .collect();
        let value = b"user-123 sku-phone reserved 1 unit";
        let records: Vec<(&[u8], &[u8])> =
            keys.iter().map(|k| (k.as_bytes(), &value[..])).collect();
        let stored = encode_run(records.iter().copied());
        let raw_len: usize = records.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
        assert!(
            stored.len() * 3 < raw_len,
            "{} of {raw_len} bytes",
            stored.len()
        );
        let raw = unpack_run("t", 0, &stored).unwrap();
        assert_eq!(decode_run("t", 0, &raw).unwrap(), records);

        let mut legacy = Vec::new();
        for (key, value) in &records {
            for part in [*key, *value] {
                legacy.extend_from_slice(&(part.len() as u32).to_be_bytes());
                legacy.extend_from_slice(part);
            }
        }
        let raw = unpack_run("t", 0, &legacy).unwrap();
        assert_eq!(decode_run("t", 0, &raw).unwrap(), records);
        assert!(unpack_run("t", 0, &stored[..stored.len() - 1]).is_err());
    }
}
