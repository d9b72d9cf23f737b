//! The working set: every state tree held in memory, in the same key and value encodings as
//! on disk. Apply reads and writes only this; the checkpointer later copies what changed to
//! sled. Values are shared (`Arc`) between the working set and the checkpointer's dirty set,
//! so a record changed once is encoded once. The trees are persistent maps (`imbl`): a
//! snapshot's copy of the whole state is O(1), so export never stops apply for long.
//!
//! Only the primary trees (SKUs, orders, restocks, patches, events, sales figures, the
//! applied marker and clock) go to disk.
//! The holds and the deadline and user indexes follow from the orders alone, so they live in
//! memory only and are rebuilt from the orders when the state is loaded: an order then
//! costs one record at a checkpoint, not four.

use super::codec::{decode, encode};
use super::error::StoreError;
use super::keys;
use super::trees::{Trees, NAMES};
use crate::model::{Order, OrderStatus};
use std::collections::BTreeMap;
use std::ops::RangeBounds;
use std::sync::Arc;

pub(crate) type Value = Arc<[u8]>;
/// A key and its value, as a tree holds them.
pub(crate) type Record = (Vec<u8>, Value);
/// Records read for some trees, by tree position.
pub(crate) type Loaded = Vec<(usize, Vec<Record>)>;

/// Position of each tree in `NAMES` (and in snapshots).
pub(crate) const SKUS: usize = 0;
pub(crate) const ORDERS: usize = 1;
pub(crate) const HOLDS: usize = 2;
pub(crate) const RESTOCKS: usize = 3;
pub(crate) const DEADLINES: usize = 4;
pub(crate) const USER_ORDERS: usize = 5;
pub(crate) const APPLIED: usize = 6;
pub(crate) const PATCHES: usize = 7;
pub(crate) const EVENTS: usize = 8;
pub(crate) const SALES: usize = 9;

/// The persisted trees whose records sled holds in runs (`runs`): all but the events (in
/// chunks) and the applied marker and clock (a few fixed keys).
pub(crate) const IN_RUNS: [usize; 5] = [SKUS, ORDERS, RESTOCKS, PATCHES, SALES];

/// Whether a tree is written to disk; the others are rebuilt from the orders.
pub(crate) fn is_persisted(tree: usize) -> bool {
    matches!(
        tree,
        SKUS | ORDERS | RESTOCKS | APPLIED | PATCHES | EVENTS | SALES
    )
}

#[derive(Default, Clone)]
pub(crate) struct MemTree(imbl::OrdMap<Vec<u8>, Value>);

impl MemTree {
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.0.get(key)
    }

    pub fn range<'a>(
        &'a self,
        range: impl RangeBounds<[u8]> + 'a,
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a Value)> + 'a {
        self.0.range::<_, [u8]>(range)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Value)> {
        self.0.iter()
    }

    pub fn first(&self) -> Option<(&Vec<u8>, &Value)> {
        self.0.get_min().map(|(k, v)| (k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Value>) {
        match value {
            Some(v) => self.0.insert(key, v),
            None => self.0.remove(&key),
        };
    }
}

/// One apply's (or one checkpoint's) changes: per tree, key to new value (`None`: deleted).
pub(crate) type Changes = [BTreeMap<Vec<u8>, Option<Value>>; NAMES.len()];

pub(crate) fn no_changes() -> Changes {
    Default::default()
}

/// Later changes win: `newer` is folded into `older`.
pub(crate) fn merge(older: &mut Changes, newer: Changes) {
    for (into, from) in older.iter_mut().zip(newer) {
        into.extend(from);
    }
}

pub(crate) fn is_empty(changes: &Changes) -> bool {
    changes.iter().all(BTreeMap::is_empty)
}

#[derive(Default, Clone)]
pub(crate) struct MemTrees {
    pub trees: [MemTree; NAMES.len()],
}

impl MemTrees {
    /// Reads the primary trees from disk, except those already read in a layout of their own
    /// (`preloaded`: every record of each, in order; for a key given twice the later wins),
    /// and rebuilds the rest.
    pub fn load(disk: &Trees, preloaded: Loaded) -> Result<Self, StoreError> {
        let mut mem = Self::default();
        let mut done = [false; NAMES.len()];
        for (position, records) in preloaded {
            mem.trees[position].0.extend(records);
            done[position] = true;
        }
        for (position, (into, tree)) in mem.trees.iter_mut().zip(disk.in_order()).enumerate() {
            if !is_persisted(position) || done[position] {
                continue;
            }
            for item in tree.iter() {
                let (key, value) = item?;
                into.0.insert(key.to_vec(), Arc::from(value.as_ref()));
            }
        }
        mem.rebuild_indexes()?;
        Ok(mem)
    }

    /// Holds are the units of reserved and paid orders per SKU and user; deadlines list
    /// the reserved orders; the user index lists every order (apply keeps all three so).
    fn rebuild_indexes(&mut self) -> Result<(), StoreError> {
        let mut holds: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        let mut deadlines = BTreeMap::new();
        let mut user_orders = BTreeMap::new();
        let empty: Value = Arc::from(&[][..]);
        for (_, bytes) in self.orders().iter() {
            let order: Order = decode("orders", bytes)?;
            user_orders.insert(
                keys::user_order(&order.user_id, order.created_ms, &order.order_id),
                empty.clone(),
            );
            if order.status == OrderStatus::Reserved {
                deadlines.insert(
                    keys::deadline(order.expires_ms, &order.order_id),
                    empty.clone(),
                );
            }
            if matches!(order.status, OrderStatus::Reserved | OrderStatus::Paid) {
                for item in order.items.as_slice() {
                    let held = holds
                        .entry(keys::hold(&item.sku, &order.user_id))
                        .or_default();
                    *held = held.checked_add(item.qty.get()).ok_or_else(|| {
                        StoreError::Corrupt(format!("holds of {} overflow", item.sku))
                    })?;
                }
            }
        }
        self.trees[HOLDS] = MemTree(
            holds
                .into_iter()
                .map(|(key, units)| (key, Value::from(encode(&units))))
                .collect(),
        );
        self.trees[DEADLINES] = MemTree(deadlines.into_iter().collect());
        self.trees[USER_ORDERS] = MemTree(user_orders.into_iter().collect());
        Ok(())
    }

    /// Applies one apply's changes and returns those a checkpoint writes. The indexes,
    /// rebuilt at load, need not wait for it, so their writes move into memory uncopied:
    /// three of an order's five writes (perf: the key copies were a visible share of apply).
    pub fn apply(&mut self, mut changes: Changes) -> Changes {
        for (position, (tree, writes)) in self.trees.iter_mut().zip(&mut changes).enumerate() {
            if is_persisted(position) {
                for (key, value) in writes.iter() {
                    tree.write(key.clone(), value.clone());
                }
            } else {
                for (key, value) in std::mem::take(writes) {
                    tree.write(key, value);
                }
            }
        }
        changes
    }

    pub fn skus(&self) -> &MemTree {
        &self.trees[SKUS]
    }
    pub fn orders(&self) -> &MemTree {
        &self.trees[ORDERS]
    }
    pub fn holds(&self) -> &MemTree {
        &self.trees[HOLDS]
    }
    pub fn restocks(&self) -> &MemTree {
        &self.trees[RESTOCKS]
    }
    pub fn deadlines(&self) -> &MemTree {
        &self.trees[DEADLINES]
    }
    pub fn user_orders(&self) -> &MemTree {
        &self.trees[USER_ORDERS]
    }
    pub fn applied(&self) -> &MemTree {
        &self.trees[APPLIED]
    }
    pub fn patches(&self) -> &MemTree {
        &self.trees[PATCHES]
    }
    pub fn events(&self) -> &MemTree {
        &self.trees[EVENTS]
    }
    pub fn sales(&self) -> &MemTree {
        &self.trees[SALES]
    }

    /// Records held, all trees together.
    pub fn records(&self) -> usize {
        self.trees.iter().map(MemTree::len).sum()
    }
}

// The tree positions above must name the trees of `NAMES` in the same order.
const _: () = {
    assert!(NAMES.len() == 10);
};
