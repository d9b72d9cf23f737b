//! The runs' index in memory: for each record, the run holding its newest copy, and for each
//! run, its copies and how many of them are still the newest. Every record a checkpoint
//! writes passes through it, so it was a third of a checkpoint's CPU (`benches/checkpoint`);
//! three choices keep it lean:
//!
//! - A record is named by 96 bits of a keyed hash of its key (SipHash-2-4 under a secret
//!   drawn per process), not by a copy of the key. The copy was a heap allocation per
//!   record, as many as the orders, and a lookup compared against it on the heap. Two
//!   records named alike would have the older one's copy counted as superseded and dropped
//!   by a clean-up, so the name must never repeat: SipHash is a pseudo-random function, so
//!   among n records two share a name with odds of about n²/2⁹⁷ (10⁻¹¹ at a billion
//!   records), and order ids chosen by a client cannot raise them without the secret. The
//!   index is rebuilt from the runs at every start, so the secret never needs to outlive
//!   the process.
//! - An entry is 16 bytes: the name, and the low 32 bits of its run's sequence number. The
//!   runs still counted span far fewer than 2³² numbers (a clean-up keeps the stored copies
//!   near the live ones), so the low bits and the oldest run counted give the whole number.
//! - Each entry keeps its name beside it, and its first 64 bits are the table's hash.
//!   Growing the table then re-hashes nothing.
//! - Run sequence numbers are consecutive (runs are written in sequence and deleted oldest
//!   first), so the counts are a deque indexed by sequence, not an ordered map.

use hashbrown::HashTable;
use siphasher::sip128::{Hasher128, SipHasher24};
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};

/// Copies a run holds: all of them, and those still the newest of their record.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunCount {
    pub copies: usize,
    pub live: usize,
}

/// A record's name: 96 bits of its key's keyed hash.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Name {
    lo: u64,
    hi: u32,
}

struct Newest {
    name_lo: u64,
    name_hi: u32,
    /// The low 32 bits of the run's sequence number (`RunIndex::seq_of`).
    seq: u32,
}

impl Newest {
    fn is(&self, name: Name) -> bool {
        self.name_lo == name.lo && self.name_hi == name.hi
    }
}

// The layout the index is sized for: a field added or widened shows here.
const _: () = assert!(std::mem::size_of::<Newest>() == 16);

/// The secret key of the names.
struct Namer {
    k0: u64,
    k1: u64,
}

impl Default for Namer {
    fn default() -> Self {
        // std's `RandomState` is seeded from the operating system's randomness.
        let seed = std::collections::hash_map::RandomState::new();
        Namer {
            k0: seed.hash_one(0u8),
            k1: seed.hash_one(1u8),
        }
    }
}

impl Namer {
    fn name(&self, key: &[u8]) -> Name {
        let mut hasher = SipHasher24::new_with_keys(self.k0, self.k1);
        hasher.write(key);
        let hash = hasher.finish128();
        Name {
            lo: hash.h1,
            hi: hash.h2 as u32,
        }
    }
}

#[derive(Default)]
pub(crate) struct RunIndex {
    namer: Namer,
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
        let name = self.namer.name(key);
        let low = seq as u32;
        let older = match self.newest.find_mut(name.lo, |e| e.is(name)) {
            Some(entry) => Some(std::mem::replace(&mut entry.seq, low)),
            None => {
                let entry = Newest {
                    name_lo: name.lo,
                    name_hi: name.hi,
                    seq: low,
                };
                self.newest.insert_unique(name.lo, entry, |e| e.name_lo);
                None
            }
        };
        let older = older.map(|low| self.seq_of(low));
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
        let name = self.namer.name(key);
        self.newest
            .find(name.lo, |e| e.is(name))
            .map(|entry| self.seq_of(entry.seq))
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

    /// The whole sequence number of a counted run from its low 32 bits: the one at or after
    /// the oldest counted, which `count_for` keeps within 2³² of every counted run.
    fn seq_of(&self, low: u32) -> u64 {
        self.first_seq + u64::from(low.wrapping_sub(self.first_seq as u32))
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
        // Entries keep 32 bits of a run's number (`seq_of`). A clean-up keeps the stored
        // copies near the live ones, so the span stays far below this.
        assert!(
            seq - self.first_seq < 1 << 32,
            "run {seq} placed 2^32 or more after the oldest counted, {}",
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

    /// Names are keyed by a secret of each index's own: keys crafted against one process's
    /// names mean nothing to another's.
    #[test]
    fn each_index_draws_its_own_secret() {
        let (a, b) = (Namer::default(), Namer::default());
        assert_ne!((a.k0, a.k1), (b.k0, b.k1));
        assert_ne!(a.name(b"order-1"), b.name(b"order-1"));
        assert_eq!(a.name(b"order-1"), a.name(b"order-1"));
        assert_ne!(a.name(b"order-1"), a.name(b"order-10"));
    }

    /// Entries keep 32 bits of a run's number: runs numbered across 2³² read back whole.
    #[test]
    fn run_numbers_across_two_to_the_32_read_back_whole() {
        let mut index = RunIndex::default();
        let base = (1u64 << 32) - 2;
        index.place(b"a", base);
        index.place(b"b", base + 1);
        index.place(b"a", base + 3);
        assert_eq!(index.newest(b"a"), Some(base + 3));
        assert_eq!(index.newest(b"b"), Some(base + 1));
        assert_eq!(
            counts(&index),
            [
                (base, 1, 0),
                (base + 1, 1, 1),
                (base + 2, 0, 0),
                (base + 3, 1, 1)
            ]
        );
        assert!(index.remove_oldest(base).is_some());
        index.place(b"b", base + 4);
        assert_eq!(index.newest(b"b"), Some(base + 4));
        assert_eq!(counts(&index)[0], (base + 1, 1, 0));
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
