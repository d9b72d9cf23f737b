//! The working set: every state tree held in memory, in the same key and value encodings as
//! on disk. Apply reads and writes only this; the checkpointer later copies what changed to
//! sled. Values are shared (`Arc`) between the working set and the checkpointer's dirty set,
//! so a record changed once is encoded once.

use super::trees::{Trees, NAMES};
use std::collections::BTreeMap;
use std::ops::RangeBounds;
use std::sync::Arc;

pub(crate) type Value = Arc<[u8]>;

/// Position of each tree in `NAMES` (and in snapshots).
pub(crate) const SKUS: usize = 0;
pub(crate) const ORDERS: usize = 1;
pub(crate) const HOLDS: usize = 2;
pub(crate) const RESTOCKS: usize = 3;
pub(crate) const DEADLINES: usize = 4;
pub(crate) const USER_ORDERS: usize = 5;
pub(crate) const APPLIED: usize = 6;

#[derive(Default, Clone)]
pub(crate) struct MemTree(BTreeMap<Vec<u8>, Value>);

impl MemTree {
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.0.get(key)
    }

    pub fn range<'a>(
        &'a self,
        range: impl RangeBounds<[u8]> + 'a,
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a Value)> + 'a {
        self.0.range::<[u8], _>(range)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Value)> {
        self.0.iter()
    }

    pub fn first(&self) -> Option<(&Vec<u8>, &Value)> {
        self.0.first_key_value()
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
pub(crate) type Changes = [BTreeMap<Vec<u8>, Option<Value>>; 7];

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
    pub trees: [MemTree; 7],
}

impl MemTrees {
    pub fn load(disk: &Trees) -> sled::Result<Self> {
        let mut mem = Self::default();
        for (into, tree) in mem.trees.iter_mut().zip(disk.in_order()) {
            for item in tree.iter() {
                let (key, value) = item?;
                into.0.insert(key.to_vec(), Arc::from(value.as_ref()));
            }
        }
        Ok(mem)
    }

    pub fn apply(&mut self, changes: &Changes) {
        for (tree, writes) in self.trees.iter_mut().zip(changes) {
            for (key, value) in writes {
                tree.write(key.clone(), value.clone());
            }
        }
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

    /// Records held, all trees together.
    pub fn records(&self) -> usize {
        self.trees.iter().map(MemTree::len).sum()
    }
}

// The tree positions above must name the trees of `NAMES` in the same order.
const _: () = {
    assert!(NAMES.len() == 7);
};
