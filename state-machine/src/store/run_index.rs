//! The runs' index in memory: for each record, the run holding its newest copy, and for each
//! run, its copies and how many of them are still the newest. Every record a checkpoint
//! writes passes through it, so it was a third of a checkpoint's CPU (`benches/checkpoint`);
//! two choices keep it lean:
//!
//! - Each entry keeps its key's hash beside it. Growing the table then re-reads no key: a
//!   plain map re-hashed every key from the heap as it doubled, a burst of 40–50 ms at
//!   a few hundred thousand records, and of seconds at millions.
//! - Run sequence numbers are consecutive (runs are written in sequence and deleted oldest
//!   first), so the counts are a deque indexed by sequence, not an ordered map.

use hashbrown::HashTable;
use std::collections::VecDeque;
use std::hash::BuildHasher;

/// Seeded per process, so crafted order ids cannot aim at collisions; several times
/// cheaper than SipHash on short keys.
type Hasher = foldhash::quality::RandomState;

/// Copies a run holds: all of them, and those still the newest of their record.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunCount {
    pub copies: usize,
    pub live: usize,
}

struct Newest {
    hash: u64,
    key: Box<[u8]>,
    seq: u64,
}

#[derive(Default)]
pub(crate) struct RunIndex {
    hasher: Hasher,
    newest: HashTable<Newest>,
    /// `counts[i]` is run `first_seq + i`'s; a sequence number never written counts zero.
    counts: VecDeque<RunCount>,
    first_seq: u64,
    /// Copies stored, live or superseded.
    stored: usize,
}

impl RunIndex {
    /// Records a copy of `key` in run `seq`, now its newest. Runs are placed in sequence
    /// order, and never before the oldest one still counted.
    pub fn place(&mut self, key: &[u8], seq: u64) {
        let hash = self.hasher.hash_one(key);
        let older = match self.newest.find_mut(hash, |e| *e.key == *key) {
            Some(entry) => Some(std::mem::replace(&mut entry.seq, seq)),
            None => {
                let entry = Newest {
                    hash,
                    key: key.into(),
                    seq,
                };
                self.newest.insert_unique(hash, entry, |e| e.hash);
                None
            }
        };
        if let Some(count) = older.and_then(|older| self.count_mut(older)) {
            count.live -= 1;
        }
        let count = self.count_for(seq);
        count.copies += 1;
        count.live += 1;
        self.stored += 1;
    }

    /// The run holding `key`'s newest copy.
    pub fn newest(&self, key: &[u8]) -> Option<u64> {
        let hash = self.hasher.hash_one(key);
        self.newest
            .find(hash, |e| *e.key == *key)
            .map(|entry| entry.seq)
    }

    /// Records with a copy stored.
    pub fn live(&self) -> usize {
        self.newest.len()
    }

    /// Copies stored, live or superseded.
    pub fn stored(&self) -> usize {
        self.stored
    }

    /// Every run counted, oldest first.
    pub fn runs(&self) -> impl Iterator<Item = (u64, RunCount)> + '_ {
        (self.first_seq..).zip(self.counts.iter().copied())
    }

    /// Forgets the oldest run, which must be `seq` and hold no live copy. Returns its count.
    pub fn remove_oldest(&mut self, seq: u64) -> Option<RunCount> {
        if seq != self.first_seq {
            debug_assert!(false, "run {seq} removed before run {}", self.first_seq);
            return None;
        }
        let count = self.counts.pop_front()?;
        debug_assert_eq!(count.live, 0, "run {seq} deleted with live copies");
        self.first_seq += 1;
        self.stored -= count.copies;
        Some(count)
    }

    fn count_mut(&mut self, seq: u64) -> Option<&mut RunCount> {
        let at = seq.checked_sub(self.first_seq)?;
        self.counts.get_mut(usize::try_from(at).ok()?)
    }

    /// Run `seq`'s count, counting every run between the newest counted and it as empty.
    fn count_for(&mut self, seq: u64) -> &mut RunCount {
        if self.counts.is_empty() {
            self.first_seq = seq;
        }
        assert!(
            seq >= self.first_seq,
            "run {seq} placed before the oldest counted, {}",
            self.first_seq
        );
        let at = (seq - self.first_seq) as usize;
        if at >= self.counts.len() {
            self.counts.resize(at + 1, RunCount::default());
        }
        &mut self.counts[at]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(index: &RunIndex) -> Vec<(u64, usize, usize)> {
        index.runs().map(|(s, c)| (s, c.copies, c.live)).collect()
    }

    #[test]
    fn a_newer_copy_supersedes_the_older() {
        let mut index = RunIndex::default();
        index.place(b"a", 3);
        index.place(b"b", 3);
        index.place(b"a", 4);
        assert_eq!(index.newest(b"a"), Some(4));
        assert_eq!(index.newest(b"b"), Some(3));
        assert_eq!(index.newest(b"c"), None);
        assert_eq!((index.live(), index.stored()), (2, 3));
        assert_eq!(counts(&index), [(3, 2, 1), (4, 1, 1)]);
    }

    #[test]
    fn gaps_count_empty_and_the_oldest_leave_in_order() {
        let mut index = RunIndex::default();
        index.place(b"a", 5);
        index.place(b"a", 7);
        assert_eq!(counts(&index), [(5, 1, 0), (6, 0, 0), (7, 1, 1)]);
        assert_eq!(
            index.remove_oldest(5),
            Some(RunCount { copies: 1, live: 0 })
        );
        assert_eq!(index.remove_oldest(6), Some(RunCount::default()));
        assert_eq!((index.live(), index.stored()), (1, 1));
        assert_eq!(counts(&index), [(7, 1, 1)]);
    }

    /// Growth keeps every entry findable: the table re-places entries by their stored hash.
    #[test]
    fn every_key_is_found_after_the_table_grows() {
        let mut index = RunIndex::default();
        for i in 0..50_000u64 {
            index.place(format!("order-{i}").as_bytes(), i / 256);
        }
        for i in (0..50_000u64).step_by(7) {
            assert_eq!(index.newest(format!("order-{i}").as_bytes()), Some(i / 256));
        }
        assert_eq!(index.live(), 50_000);
    }
}
