//! What changed in the working set since the last checkpoint. Apply only appends its changes
//! here; the checkpoint folds them into one set (later changes win) after taking them, on its
//! own thread. Folding every apply into one set for the whole second put an insert into an
//! ever larger ordered map per record on the apply path, a twelfth of its cycles (perf, apply
//! bench). Keeping every apply's changes apart instead cost more for small applies (each one's
//! maps kept for a second; one-command applies fell by a third), so applies are folded into
//! chunks of a bounded size: small maps, cheap to insert into, and few of them to keep.

use super::memory::{self, Changes, Value};
use super::trees::NAMES;

/// An apply's changes are folded into the newest chunk while it holds fewer records than
/// this (the figures for 4,096 are in the README's benchmarks).
const CHUNK_RECORDS: usize = 4_096;

#[derive(Default)]
pub(crate) struct Dirty {
    /// Chunks of applies' changes, oldest first.
    pending: Vec<Changes>,
}

impl Dirty {
    pub fn push(&mut self, changes: Changes) {
        if memory::is_empty(&changes) {
            return;
        }
        match self.pending.last_mut() {
            Some(newest) if records(newest) < CHUNK_RECORDS => memory::merge(newest, changes),
            _ => self.pending.push(changes),
        }
    }

    /// Takes everything pending, leaving nothing; the caller folds it with `fold`, outside
    /// the lock apply also takes.
    pub fn take(&mut self) -> Vec<Changes> {
        std::mem::take(&mut self.pending)
    }

    /// Puts changes a checkpoint failed to write back under everything pushed since.
    pub fn put_back(&mut self, older: Changes) {
        if !memory::is_empty(&older) {
            self.pending.insert(0, older);
        }
    }
}

fn records(changes: &Changes) -> usize {
    changes.iter().map(|tree| tree.len()).sum()
}

/// One set of changes from a run of them, oldest first: for a key changed more than once,
/// the newest change. Each tree's changes are gathered and sorted once (a stable sort, so a
/// key's changes stay oldest first; each chunk is already a sorted run) and the map built
/// from the sorted result in one pass: inserting chunk after chunk into one map was a fifth
/// of the checkpoint's cycles (perf, batch load).
pub(crate) fn fold(pending: Vec<Changes>) -> Changes {
    if pending.len() <= 1 {
        return pending
            .into_iter()
            .next()
            .unwrap_or_else(memory::no_changes);
    }
    let mut trees: [Vec<(Vec<u8>, Option<Value>)>; NAMES.len()] = Default::default();
    for changes in pending {
        for (records, writes) in trees.iter_mut().zip(changes) {
            records.extend(writes);
        }
    }
    trees.map(|mut records| {
        records.sort_by(|a, b| a.0.cmp(&b.0));
        let mut newest: Vec<(Vec<u8>, Option<Value>)> = Vec::with_capacity(records.len());
        for (key, value) in records {
            match newest.last_mut() {
                Some(last) if last.0 == key => last.1 = value,
                _ => newest.push((key, value)),
            }
        }
        newest.into_iter().collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::SKUS;

    fn change(key: &str, value: Option<&str>) -> Changes {
        let mut changes = memory::no_changes();
        changes[SKUS].insert(
            key.as_bytes().to_vec(),
            value.map(|v| Value::from(v.as_bytes())),
        );
        changes
    }

    fn listed(changes: &Changes) -> Vec<(String, Option<String>)> {
        changes[SKUS]
            .iter()
            .map(|(k, v)| {
                (
                    String::from_utf8(k.clone()).unwrap(),
                    v.as_ref().map(|v| String::from_utf8(v.to_vec()).unwrap()),
                )
            })
            .collect()
    }

    #[test]
    fn the_newest_change_of_a_key_wins() {
        let mut dirty = Dirty::default();
        dirty.push(change("a", Some("1")));
        dirty.push(change("b", Some("1")));
        dirty.push(change("a", None));
        dirty.push(memory::no_changes());
        dirty.push(change("b", Some("2")));
        let taken = dirty.take();
        assert_eq!(taken.len(), 1, "small changes share a chunk");
        assert_eq!(
            listed(&fold(taken)),
            [("a".into(), None), ("b".into(), Some("2".into()))]
        );
        assert!(dirty.take().is_empty());
    }

    /// Changes past a chunk's size start the next chunk; folding the chunks keeps the newest
    /// change of each key.
    #[test]
    fn large_changes_start_chunks_and_fold_in_order() {
        let mut dirty = Dirty::default();
        let mut big = memory::no_changes();
        for i in 0..CHUNK_RECORDS {
            big[SKUS].insert(format!("k{i:05}").into_bytes(), None);
        }
        dirty.push(big.clone());
        dirty.push(change("k00007", Some("newer")));
        dirty.push(big);
        dirty.push(change("k00009", Some("newest")));
        let taken = dirty.take();
        assert_eq!(taken.len(), 3);
        let folded = fold(taken);
        assert_eq!(folded[SKUS].len(), CHUNK_RECORDS);
        assert_eq!(
            folded[SKUS][&b"k00007"[..]],
            None,
            "the later deletion wins"
        );
        assert_eq!(
            folded[SKUS][&b"k00009"[..]].as_deref(),
            Some(&b"newest"[..])
        );
    }

    /// A failed checkpoint's changes go back under what was applied meanwhile, so the next
    /// checkpoint writes the newer values, not the failed ones.
    #[test]
    fn changes_put_back_stay_older_than_those_pushed_since() {
        let mut dirty = Dirty::default();
        dirty.push(change("a", Some("old")));
        dirty.push(change("b", Some("old")));
        let failed = fold(dirty.take());
        dirty.push(change("a", Some("new")));
        dirty.put_back(failed);
        assert_eq!(
            listed(&fold(dirty.take())),
            [
                ("a".into(), Some("new".into())),
                ("b".into(), Some("old".into()))
            ]
        );
    }
}
