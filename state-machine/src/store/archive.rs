//! Orders out of memory. Only a reserved order can still change on its own (its deadline); a
//! paid, cancelled, expired or refunded one changes at most once more (a refund), and most
//! are only ever read again by id. So a checkpoint writes every order that is no longer
//! reserved to sled's `archive` tree, keyed by its id, instead of to a run, and once that is
//! durable drops it from the working set. The working set then holds the reserved orders and
//! whatever changed since the last checkpoint, whatever the store has seen.
//!
//! Which copy is an order's: the working set's if it holds one, else the archive's. An order
//! enters the archive only once it has left `reserved`, never to return, so every copy of it
//! in a run is older than the archive's (a load drops those); and the archive's copy of an
//! order the working set does not hold changes only when a checkpoint writes the order, which
//! it can do only after an apply brought it back into the working set.
//!
//! A lookup that misses the working set asks `KeyFilter` before sled: every new order's id
//! misses the working set, and a sled read for each would cost more than the rest of its
//! apply.

use super::error::StoreError;
use super::memory::Value;
use crate::model::OrderStatus;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// A Bloom filter over the archived ids that grows with them: layers of doubling capacity,
/// each filled to its capacity, at about 1 % false positives each.
#[derive(Default)]
pub(crate) struct KeyFilter {
    hasher: foldhash::quality::RandomState,
    layers: Vec<Layer>,
}

struct Layer {
    bits: Vec<u64>,
    held: usize,
    capacity: usize,
}

/// About 1 % false positives at capacity with `PROBES` probes.
const BITS_PER_KEY: usize = 10;
const PROBES: u64 = 7;
const FIRST_CAPACITY: usize = 1 << 16;

impl Layer {
    fn new(capacity: usize) -> Self {
        Self {
            bits: vec![0; (capacity * BITS_PER_KEY).div_ceil(64)],
            held: 0,
            capacity,
        }
    }

    /// The bit positions of a hash: double hashing, the second step odd so that it walks
    /// the whole table.
    fn probes(&self, hash: u64) -> impl Iterator<Item = usize> {
        let len = self.bits.len() as u64 * 64;
        let step = (hash >> 32) | 1;
        (0..PROBES).map(move |i| (hash.wrapping_add(i.wrapping_mul(step)) % len) as usize)
    }

    fn insert(&mut self, hash: u64) {
        for bit in self.probes(hash).collect::<Vec<_>>() {
            self.bits[bit / 64] |= 1 << (bit % 64);
        }
        self.held += 1;
    }

    fn may_contain(&self, hash: u64) -> bool {
        self.probes(hash)
            .all(|bit| self.bits[bit / 64] & (1 << (bit % 64)) != 0)
    }
}

impl KeyFilter {
    pub fn insert(&mut self, key: &[u8]) {
        let hash = self.hasher.hash_one(key);
        // An id archived again (a refund) need not take room twice.
        if self.layers.iter().any(|layer| layer.may_contain(hash)) {
            return;
        }
        if self.layers.last().is_none_or(|l| l.held >= l.capacity) {
            let capacity = self
                .layers
                .last()
                .map_or(FIRST_CAPACITY, |l| l.capacity * 2);
            self.layers.push(Layer::new(capacity));
        }
        if let Some(layer) = self.layers.last_mut() {
            layer.insert(hash);
        }
    }

    /// False only for a key never inserted.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        let hash = self.hasher.hash_one(key);
        self.layers.iter().any(|layer| layer.may_contain(hash))
    }
}

/// The archive of one generation: its sled tree, and the filter of the ids it holds.
pub(crate) struct Archive {
    tree: sled::Tree,
    filter: KeyFilter,
}

impl Archive {
    pub fn new(tree: sled::Tree) -> Self {
        Self {
            tree,
            filter: KeyFilter::default(),
        }
    }

    /// The archived copy of an order, if it has one.
    pub fn get(&self, key: &[u8]) -> Result<Option<Value>, StoreError> {
        if !self.filter.may_contain(key) {
            return Ok(None);
        }
        Ok(self.tree.get(key)?.map(|bytes| Value::from(bytes.as_ref())))
    }

    /// Notes that `key` is archived: from here on a miss of the working set looks in sled.
    pub fn note(&mut self, key: &[u8]) {
        self.filter.insert(key);
    }

    pub fn tree(&self) -> &sled::Tree {
        &self.tree
    }
}

/// Whether an order's record goes to the archive: it has left `reserved` for good.
pub(crate) fn is_archived(order: &[u8]) -> Result<bool, StoreError> {
    Ok(super::wire::decode_order(order)?.status != OrderStatus::Reserved)
}

/// The records of `held` (the working set's, in key order) and `archived` (the archive's,
/// in key order) as one sequence in key order; for a key in both, the working set's copy.
pub(crate) fn merged<'a>(
    held: impl Iterator<Item = (Vec<u8>, Value)> + 'a,
    archived: impl Iterator<Item = Result<(Vec<u8>, Value), StoreError>> + 'a,
) -> impl Iterator<Item = Result<(Vec<u8>, Value), StoreError>> + 'a {
    let mut held = held.peekable();
    let mut archived = archived.peekable();
    std::iter::from_fn(move || {
        use std::cmp::Ordering;
        let order = match (held.peek(), archived.peek()) {
            (None, None) => return None,
            (_, Some(Err(_))) | (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some((key, _)), Some(Ok((archived_key, _)))) => archived_key.cmp(key),
        };
        match order {
            Ordering::Less => archived.next(),
            Ordering::Equal => {
                // The working set's copy is the newer.
                archived.next();
                held.next().map(Ok)
            }
            Ordering::Greater => held.next().map(Ok),
        }
    })
}

/// Every record of an archive tree, in key order.
pub(crate) fn records(
    tree: &sled::Tree,
) -> impl Iterator<Item = Result<(Vec<u8>, Value), StoreError>> {
    tree.iter().map(|item| {
        item.map(|(key, value)| (key.to_vec(), Value::from(value.as_ref())))
            .map_err(StoreError::from)
    })
}

/// The archive as it stood when an export took its view, for the orders a checkpoint has
/// archived since: their earlier copy, or `None` for one the archive did not hold. An
/// export reads the archive as it goes, while checkpoints go on archiving.
pub(crate) type Stash = HashMap<Vec<u8>, Option<Value>>;

/// The stashes of the exports under way (`Stash`).
#[derive(Default)]
pub(crate) struct Exports {
    running: Mutex<Vec<Weak<Mutex<Stash>>>>,
}

impl Exports {
    fn running(&self) -> MutexGuard<'_, Vec<Weak<Mutex<Stash>>>> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts an export's stash; it lasts while the export holds it. Called with the
    /// checkpointer's lock held, as the export takes its view: no checkpoint falls between.
    pub fn start(&self) -> Arc<Mutex<Stash>> {
        let stash = Arc::new(Mutex::new(Stash::new()));
        let mut running = self.running();
        running.retain(|export| export.strong_count() > 0);
        running.push(Arc::downgrade(&stash));
        stash
    }

    /// Keeps, for every export under way, the archive's copies of `archived` before a
    /// checkpoint overwrites them. Called with the checkpointer's lock held, before the write.
    pub fn keep(&self, tree: &sled::Tree, archived: &[(Vec<u8>, Value)]) -> Result<(), StoreError> {
        let running: Vec<_> = self.running().iter().filter_map(Weak::upgrade).collect();
        if running.is_empty() {
            return Ok(());
        }
        for (key, _) in archived {
            let earlier = tree.get(key)?.map(|bytes| Value::from(bytes.as_ref()));
            for stash in &running {
                let mut stash = stash
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                // The first copy kept is the one the export's view saw.
                stash.entry(key.clone()).or_insert_with(|| earlier.clone());
            }
        }
        Ok(())
    }

    /// Whether an export is under way. An install waits for none: it drops the archive
    /// they read.
    pub fn any(&self) -> bool {
        self.running()
            .iter()
            .any(|export| export.strong_count() > 0)
    }
}

/// The archive's records as they stood when the export that holds `stash` took its view.
pub(crate) fn as_of_view<'a>(
    tree: &sled::Tree,
    stash: &'a Mutex<Stash>,
) -> impl Iterator<Item = Result<(Vec<u8>, Value), StoreError>> + 'a {
    records(tree).filter_map(move |item| {
        let (key, value) = match item {
            Ok(record) => record,
            Err(e) => return Some(Err(e)),
        };
        let stash = stash
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match stash.get(&key) {
            Some(earlier) => earlier.clone().map(|value| Ok((key, value))),
            None => Some(Ok((key, value))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_never_forgets_a_key_and_mostly_refuses_others() {
        let mut filter = KeyFilter::default();
        let inserted = 3 * FIRST_CAPACITY;
        for i in 0..inserted {
            filter.insert(format!("order-{i}").as_bytes());
        }
        assert!(filter.layers.len() >= 2, "it grew");
        for i in 0..inserted {
            assert!(filter.may_contain(format!("order-{i}").as_bytes()), "{i}");
        }
        let false_positives = (0..100_000)
            .filter(|i| filter.may_contain(format!("other-{i}").as_bytes()))
            .count();
        assert!(false_positives < 3_000, "{false_positives} of 100,000");
    }

    #[test]
    fn a_merge_lists_each_key_once_the_working_sets_copy_first() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let archive = db.open_tree("archive").unwrap();
        for key in ["b", "c", "e"] {
            archive
                .insert(key, format!("archived {key}").as_bytes())
                .unwrap();
        }
        let held = ["a", "c", "d", "f"].map(|key| {
            (
                key.as_bytes().to_vec(),
                Value::from(format!("held {key}").as_bytes()),
            )
        });
        let all: Vec<(String, String)> = merged(held.into_iter(), records(&archive))
            .map(|item| {
                let (key, value) = item.unwrap();
                (
                    String::from_utf8(key).unwrap(),
                    String::from_utf8(value.to_vec()).unwrap(),
                )
            })
            .collect();
        let expected = [
            ("a", "held a"),
            ("b", "archived b"),
            ("c", "held c"),
            ("d", "held d"),
            ("e", "archived e"),
            ("f", "held f"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(all, expected);
    }
}
