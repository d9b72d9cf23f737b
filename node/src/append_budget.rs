//! How many bytes one AppendEntries to a peer may carry.
//!
//! openraft 0.9 gives every AppendEntries the heartbeat interval as its deadline and, when it
//! passes, sends the same range again. A follower that needs longer than that for one message
//! (a slow disk or CPU, a debug build, a catch-up read of a MiB of orders) then never answers
//! in time: every resend is the same work again, queued behind the last, and replication to
//! it stalls for good (seen: a resumed follower stuck at one index for 30 s, every append to
//! it timing out). So each peer has a byte budget. It halves whenever an append that carried
//! entries misses its deadline, and grows back while appends return well within it. An
//! append over the budget goes back to openraft as `PayloadTooLarge` with a smaller entry
//! count, which openraft then sends instead.

use openraft::error::PayloadTooLarge;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The budget while a peer keeps up, and its ceiling. One entry always goes alone, whatever
/// its size (group commit caps entries at `group_commit::MAX_ENTRY_BYTES`, far below
/// `network::MAX_MESSAGE_BYTES`).
pub const MAX_APPEND_BYTES: usize = 8 * 1024 * 1024;

/// The floor: about one entry of a few hundred orders; below it halving gains nothing.
pub const MIN_APPEND_BYTES: usize = 64 * 1024;

#[derive(Debug)]
pub struct AppendBudget {
    bytes: AtomicUsize,
}

impl Default for AppendBudget {
    fn default() -> Self {
        Self {
            bytes: AtomicUsize::new(MAX_APPEND_BYTES),
        }
    }
}

impl AppendBudget {
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// `Err` with the entry count to try instead when `encoded` bytes of `entries` entries are
    /// more than the budget allows at once.
    pub fn check(&self, encoded: usize, entries: usize) -> Result<(), PayloadTooLarge> {
        let budget = self.bytes();
        if encoded <= budget || entries <= 1 {
            return Ok(());
        }
        // Entries differ in size: aim below the budget by the average, and always shrink.
        let fitting = (entries as u128 * budget as u128 / encoded as u128) as u64;
        Err(PayloadTooLarge::new_entries_hint(
            fitting.clamp(1, entries as u64 - 1),
        ))
    }

    /// An append of `sent` bytes with entries missed its deadline. Returns the budget before
    /// and after when it changed. An append no larger than the floor says nothing about size
    /// (a connection being set up, a busy moment).
    pub fn missed_deadline(&self, sent: usize) -> Option<(usize, usize)> {
        if sent <= MIN_APPEND_BYTES {
            return None;
        }
        let before = self.bytes();
        let after = (before.min(sent) / 2).max(MIN_APPEND_BYTES);
        self.bytes.store(after, Ordering::Relaxed);
        (after != before).then_some((before, after))
    }

    /// An append of `sent` bytes came back after `took`, its deadline being `deadline`. Only an
    /// append that used most of the budget and came back in under half its deadline is
    /// evidence that the peer can take more.
    pub fn answered(&self, sent: usize, took: Duration, deadline: Duration) {
        let before = self.bytes();
        if sent >= before / 2 && took < deadline / 2 && before < MAX_APPEND_BYTES {
            let after = (before + before / 4).min(MAX_APPEND_BYTES);
            self.bytes.store(after, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINE: Duration = Duration::from_millis(100);

    fn hint(e: PayloadTooLarge) -> u64 {
        e.entries_hint()
    }

    #[test]
    fn large_appends_are_split_and_single_entries_always_go() {
        let budget = AppendBudget::default();
        assert!(budget.check(MAX_APPEND_BYTES, 64).is_ok());
        assert!(budget.check(MAX_APPEND_BYTES * 10, 1).is_ok());
        // Four times too large: a quarter of the entries.
        assert_eq!(
            hint(budget.check(MAX_APPEND_BYTES * 4, 64).unwrap_err()),
            16
        );
        // Barely too large: still fewer entries than before.
        assert_eq!(hint(budget.check(MAX_APPEND_BYTES + 1, 2).unwrap_err()), 1);
        // Hugely too large: one at a time.
        assert_eq!(hint(budget.check(usize::MAX, 64).unwrap_err()), 1);
    }

    #[test]
    fn a_missed_deadline_halves_what_was_sent_down_to_the_floor() {
        let budget = AppendBudget::default();
        // A 1 MiB append timed out: the budget falls below it, not merely to half of 8 MiB,
        // which would let the same 1 MiB go again.
        assert_eq!(
            budget.missed_deadline(1 << 20),
            Some((MAX_APPEND_BYTES, 512 << 10))
        );
        assert_eq!(hint(budget.check(1 << 20, 16).unwrap_err()), 8);
        for _ in 0..20 {
            budget.missed_deadline(usize::MAX);
        }
        assert_eq!(budget.bytes(), MIN_APPEND_BYTES);
        assert_eq!(budget.missed_deadline(usize::MAX), None);
        // A small append that timed out proves nothing about large ones.
        let budget = AppendBudget::default();
        assert_eq!(budget.missed_deadline(MIN_APPEND_BYTES), None);
        assert_eq!(budget.bytes(), MAX_APPEND_BYTES);
        // At the floor a single entry of any size still goes.
        assert!(budget.check(MAX_APPEND_BYTES, 1).is_ok());
    }

    #[test]
    fn quick_full_answers_grow_the_budget_back_to_its_ceiling() {
        let budget = AppendBudget::default();
        for _ in 0..20 {
            budget.missed_deadline(usize::MAX);
        }
        let fast = Duration::from_millis(10);
        // Small appends (heartbeats, a trickle of orders) prove nothing about large ones.
        budget.answered(100, fast, DEADLINE);
        assert_eq!(budget.bytes(), MIN_APPEND_BYTES);
        // Nor does a full one that used most of its deadline.
        budget.answered(MIN_APPEND_BYTES, Duration::from_millis(60), DEADLINE);
        assert_eq!(budget.bytes(), MIN_APPEND_BYTES);
        let mut rounds = 0;
        while budget.bytes() < MAX_APPEND_BYTES {
            budget.answered(budget.bytes(), fast, DEADLINE);
            rounds += 1;
            assert!(rounds < 100, "the budget never regrew: {}", budget.bytes());
        }
        assert_eq!(budget.bytes(), MAX_APPEND_BYTES);
    }
}
