//! What changed in the working set since the last checkpoint. Apply only appends its changes
//! here, one list per tree, in the order it made them: no comparison of keys on the apply
//! path. The checkpoint folds them into one set (later changes win) after taking them, on its
//! own thread, with one hash table per tree.
//!
//! History (apply bench, `perf` and callgrind): folding every apply into one ordered map for
//! the whole second cost a twelfth of apply's cycles; keeping every apply's maps apart made
//! one-command applies a third slower (each one's maps kept for a second); merging applies
//! into ordered chunks of 4,096 records still cost about a tenth of apply's instructions,
//! inserts comparing keys with long shared prefixes. Appending costs a move per record.

use super::memory::{Changes, TreeWrites, Writes};
use super::trees::NAMES;

/// Every tree's changes since the last checkpoint, oldest first; a key may appear more than
/// once.
pub(crate) type Pending = [TreeWrites; NAMES.len()];

#[derive(Default)]
pub(crate) struct Dirty {
    pending: Pending,
    /// Emptied lists of a written checkpoint, kept for the next `take`: a second of changes
    /// is megabytes, and lists allocated afresh each time were first-touched page by page
    /// (perf: page faults under `Dirty::push` on a follower).
    spare: Pending,
}

impl Dirty {
    pub fn push(&mut self, changes: Writes) {
        for (records, writes) in self.pending.iter_mut().zip(changes) {
            records.extend(writes);
        }
    }

    /// Takes everything pending, leaving nothing; the caller folds it with `fold`, outside
    /// the lock apply also takes.
    pub fn take(&mut self) -> Pending {
        let spare = std::mem::take(&mut self.spare);
        std::mem::replace(&mut self.pending, spare)
    }

    /// Keeps a written checkpoint's lists, emptied, for the next `take`.
    pub fn recycle(&mut self, written: Changes) {
        for (spare, mut list) in self.spare.iter_mut().zip(written) {
            list.clear();
            if list.capacity() > spare.capacity() {
                *spare = list;
            }
        }
    }

    /// Puts changes a checkpoint failed to write back under everything pushed since.
    pub fn put_back(&mut self, older: Changes) {
        for (records, older) in self.pending.iter_mut().zip(older) {
            if older.is_empty() {
                continue;
            }
            let newer = std::mem::take(records);
            *records = older.into_iter().chain(newer).collect();
        }
    }
}

/// One set of changes from everything pending: for a key changed more than once, its newest
/// change, in the place of its first. The events keep their id order, the order they were
/// applied in. The list that came in is the list that goes out (and back to `recycle`).
///
/// Found with a hash table, not a sort: sorting a second of keys (the orders' with long
/// shared prefixes) was a quarter of a follower's checkpoint under order batches (perf).
pub(crate) fn fold(pending: Pending) -> Changes {
    pending.map(fold_tree)
}

fn fold_tree(mut records: TreeWrites) -> TreeWrites {
    // Ids only ever grow, so the events (and any list written once per key in order) need
    // no table.
    if records.windows(2).all(|pair| pair[0].0 < pair[1].0) {
        return records;
    }
    let repeats = repeats(&records);
    if repeats.is_empty() {
        return records;
    }
    let mut superseded = vec![false; records.len()];
    // In list order, so of three changes of a key the last one's value is the one kept.
    for (later, first) in repeats {
        let newer = records[later].1.take();
        records[first].1 = newer;
        superseded[later] = true;
    }
    let mut position = 0;
    records.retain(|_| {
        let keep = !superseded[position];
        position += 1;
        keep
    });
    records
}

/// For each change of a key seen before, its position and that of the key's first change.
fn repeats(records: &TreeWrites) -> Vec<(usize, usize)> {
    use std::collections::hash_map::{Entry, HashMap};
    // Seeded per process: crafted order ids cannot aim at collisions (as in `runs`).
    let mut first: HashMap<&[u8], usize, foldhash::quality::RandomState> =
        HashMap::with_capacity_and_hasher(records.len(), Default::default());
    let mut repeats = Vec::new();
    for (position, (key, _)) in records.iter().enumerate() {
        match first.entry(key.as_slice()) {
            Entry::Occupied(seen) => repeats.push((position, *seen.get())),
            Entry::Vacant(new) => {
                new.insert(position);
            }
        }
    }
    repeats
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::{self, Value, SKUS};

    fn change(key: &str, value: Option<&str>) -> Writes {
        let mut changes = Writes::default();
        changes[SKUS].push((
            key.as_bytes().to_vec(),
            value.map(|v| Value::from(v.as_bytes())),
        ));
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
        dirty.push(Writes::default());
        dirty.push(change("b", Some("2")));
        assert_eq!(
            listed(&fold(dirty.take())),
            [("a".into(), None), ("b".into(), Some("2".into()))]
        );
        assert!(memory::is_empty(&fold(dirty.take())));
    }

    /// Large sets of changes, pushed one after another, fold to the newest change of each
    /// key, whatever order the keys came in, each key where it first came.
    #[test]
    fn large_changes_fold_to_the_newest_of_each_key() {
        const KEYS: usize = 5_000;
        let mut dirty = Dirty::default();
        let mut big = Writes::default();
        for i in (0..KEYS).rev() {
            big[SKUS].push((format!("k{i:05}").into_bytes(), None));
        }
        dirty.push(big.clone());
        dirty.push(change("k00007", Some("newer")));
        dirty.push(big);
        dirty.push(change("k00009", Some("newest")));
        let folded = fold(dirty.take());
        assert_eq!(folded[SKUS].len(), KEYS);
        let first_order: Vec<Vec<u8>> = (0..KEYS)
            .rev()
            .map(|i| format!("k{i:05}").into_bytes())
            .collect();
        assert!(
            folded[SKUS].iter().map(|(k, _)| k).eq(first_order.iter()),
            "each key once, where it first came"
        );
        let value_of = |key: &[u8]| {
            let (_, value) = folded[SKUS]
                .iter()
                .find(|(k, _)| k.as_slice() == key)
                .expect("folded");
            value.clone()
        };
        assert_eq!(value_of(b"k00007"), None, "the later deletion wins");
        assert_eq!(value_of(b"k00009").as_deref(), Some(&b"newest"[..]));
    }

    /// Ids in order stay in order, a repeated one where it first came, with its newest
    /// change: the events are written to disk in id order.
    #[test]
    fn events_keep_their_order_through_a_fold() {
        let mut dirty = Dirty::default();
        for id in ["1", "2", "3"] {
            dirty.push(change(id, Some("v")));
        }
        let untouched = fold(dirty.take());
        assert_eq!(listed(&untouched).len(), 3);
        dirty.recycle(untouched);
        for id in ["4", "5", "6"] {
            dirty.push(change(id, Some("v")));
        }
        dirty.push(change("5", None));
        dirty.push(change("7", Some("v")));
        assert_eq!(
            listed(&fold(dirty.take())),
            [
                ("4".into(), Some("v".into())),
                ("5".into(), None),
                ("6".into(), Some("v".into())),
                ("7".into(), Some("v".into()))
            ]
        );
    }

    /// A written checkpoint's lists come back empty, with their room, for the next changes;
    /// the lists handed out afterwards hold only what was pushed since.
    #[test]
    fn written_lists_are_reused_empty() {
        let mut dirty = Dirty::default();
        for i in 0..1_000 {
            dirty.push(change(&format!("k{i:04}"), Some("v")));
        }
        let written = fold(dirty.take());
        let room = written[SKUS].capacity();
        dirty.push(change("late", Some("v")));
        dirty.recycle(written);
        let next = dirty.take();
        assert_eq!(next[SKUS].len(), 1, "only what came after the take");
        let reused = dirty.take();
        assert!(reused[SKUS].is_empty());
        assert!(reused[SKUS].capacity() >= room);
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
