//! How many copies each stored run holds, for the trees stored in runs (`runs`). Run sequence
//! numbers are consecutive (runs are written in sequence and deleted oldest first), so the
//! counts are a deque indexed by sequence number: a few bytes per run of 256 records.
//!
//! Which copies are still the newest of their record is not kept here: a clean-up tells
//! them apart by comparing each copy with the working set as of its checkpoint's cut
//! (`Runs::plan`).

use std::collections::VecDeque;

#[derive(Default)]
pub(crate) struct RunCounts {
    /// `copies[i]` is run `first_seq + i`'s; a sequence number never written counts zero.
    copies: VecDeque<usize>,
    first_seq: u64,
    /// Copies stored, live or superseded.
    stored: usize,
}

impl RunCounts {
    /// Counts `copies` more in run `seq`. Runs are added in sequence order, and never before
    /// the oldest one still counted.
    pub fn add(&mut self, seq: u64, copies: usize) {
        if self.copies.is_empty() {
            self.first_seq = seq;
        }
        assert!(
            seq >= self.first_seq,
            "run {seq} added before the oldest counted, {}",
            self.first_seq
        );
        let at = usize::try_from(seq - self.first_seq).expect("runs counted fit in memory");
        if at >= self.copies.len() {
            self.copies.resize(at + 1, 0);
        }
        self.copies[at] += copies;
        self.stored += copies;
    }

    /// Copies stored, live or superseded.
    pub fn stored(&self) -> usize {
        self.stored
    }

    /// Every run counted, oldest first, with its copies.
    pub fn runs(&self) -> impl Iterator<Item = (u64, usize)> + '_ {
        (self.first_seq..).zip(self.copies.iter().copied())
    }

    /// Forgets the oldest run, which must be `seq`.
    pub fn remove_oldest(&mut self, seq: u64) {
        assert_eq!(
            seq, self.first_seq,
            "run {seq} removed before the oldest, {}",
            self.first_seq
        );
        if let Some(copies) = self.copies.pop_front() {
            self.first_seq += 1;
            self.stored -= copies;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(runs: &RunCounts) -> Vec<(u64, usize)> {
        runs.runs().collect()
    }

    #[test]
    fn gaps_count_empty_and_the_oldest_leave_in_order() {
        let mut runs = RunCounts::default();
        runs.add(5, 2);
        runs.add(5, 1);
        runs.add(8, 4);
        assert_eq!(counts(&runs), [(5, 3), (6, 0), (7, 0), (8, 4)]);
        assert_eq!(runs.stored(), 7);
        runs.remove_oldest(5);
        runs.remove_oldest(6);
        assert_eq!(counts(&runs), [(7, 0), (8, 4)]);
        assert_eq!(runs.stored(), 4);
        runs.remove_oldest(7);
        runs.remove_oldest(8);
        assert_eq!(runs.stored(), 0);
        // Emptied, the next run added starts the count again.
        runs.add(20, 1);
        assert_eq!(counts(&runs), [(20, 1)]);
    }

    #[test]
    #[should_panic(expected = "removed before the oldest")]
    fn a_run_removed_out_of_order_is_a_bug() {
        let mut runs = RunCounts::default();
        runs.add(1, 1);
        runs.add(2, 1);
        runs.remove_oldest(2);
    }
}
