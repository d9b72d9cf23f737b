//! One apply's changes: reads go through to the in-memory state, writes stay here until
//! `commit` checks them and turns them, with the new applied marker, into one set of changes
//! that the store applies at once. Nothing is written half-way: a batch either lands whole
//! with its marker or not at all.

use super::codec::{decode, encode};
use super::error::StoreError;
use super::keys;
use super::memory::{self, Changes, MemTree, MemTrees};
use crate::model::{Order, PatchRecord, RestockRecord, Sku};
use crate::validation::{OrderId, RequestId, SkuId, UserId};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Cached records of one tree: `None` is a deletion; `dirty` marks what commit must write.
struct Slots<V> {
    name: &'static str,
    slots: BTreeMap<Vec<u8>, (Option<V>, bool)>,
}

impl<V: Clone + Serialize + DeserializeOwned> Slots<V> {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            slots: BTreeMap::new(),
        }
    }

    fn get(&mut self, tree: &MemTree, key: Vec<u8>) -> Result<Option<V>, StoreError> {
        if let Some((value, _)) = self.slots.get(&key) {
            return Ok(value.clone());
        }
        let value = match tree.get(&key) {
            Some(bytes) => Some(decode::<V>(self.name, bytes)?),
            None => None,
        };
        self.slots.insert(key, (value.clone(), false));
        Ok(value)
    }

    fn set(&mut self, key: Vec<u8>, value: Option<V>) {
        self.slots.insert(key, (value, true));
    }

    fn dirty(&self) -> impl Iterator<Item = (&Vec<u8>, &Option<V>)> {
        self.slots
            .iter()
            .filter(|(_, (_, dirty))| *dirty)
            .map(|(k, (v, _))| (k, v))
    }
}

pub(crate) struct Tx<'a> {
    trees: &'a MemTrees,
    pub clock: u64,
    skus: Slots<Sku>,
    orders: Slots<Order>,
    holds: Slots<u64>,
    restocks: Slots<RestockRecord>,
    patches: Slots<PatchRecord>,
    /// Index keys to insert (`true`) or remove (`false`).
    deadlines: BTreeMap<Vec<u8>, bool>,
    user_orders: BTreeMap<Vec<u8>, bool>,
}

impl<'a> Tx<'a> {
    pub fn new(trees: &'a MemTrees, clock: u64) -> Self {
        Self {
            trees,
            clock,
            skus: Slots::new("skus"),
            orders: Slots::new("orders"),
            holds: Slots::new("holds"),
            restocks: Slots::new("restocks"),
            patches: Slots::new("patches"),
            deadlines: BTreeMap::new(),
            user_orders: BTreeMap::new(),
        }
    }

    pub fn sku(&mut self, sku: &SkuId) -> Result<Option<Sku>, StoreError> {
        self.skus
            .get(self.trees.skus(), sku.as_str().as_bytes().to_vec())
    }

    pub fn put_sku(&mut self, sku: Sku) {
        self.skus
            .set(sku.sku.as_str().as_bytes().to_vec(), Some(sku));
    }

    pub fn order(&mut self, order_id: &OrderId) -> Result<Option<Order>, StoreError> {
        self.orders
            .get(self.trees.orders(), order_id.as_str().as_bytes().to_vec())
    }

    pub fn put_order(&mut self, order: Order) {
        self.orders
            .set(order.order_id.as_str().as_bytes().to_vec(), Some(order));
    }

    pub fn hold(&mut self, sku: &SkuId, user: &UserId) -> Result<u64, StoreError> {
        Ok(self
            .holds
            .get(self.trees.holds(), keys::hold(sku, user))?
            .unwrap_or(0))
    }

    /// Zero holds are deleted, so the holds tree only lists users who hold something.
    pub fn put_hold(&mut self, sku: &SkuId, user: &UserId, units: u64) {
        self.holds
            .set(keys::hold(sku, user), (units > 0).then_some(units));
    }

    pub fn restock(
        &mut self,
        sku: &SkuId,
        request_id: &RequestId,
    ) -> Result<Option<RestockRecord>, StoreError> {
        self.restocks
            .get(self.trees.restocks(), keys::restock(sku, request_id))
    }

    pub fn put_restock(&mut self, request_id: &RequestId, record: RestockRecord) {
        self.restocks.set(
            keys::restock(&record.sku_after.sku, request_id),
            Some(record),
        );
    }

    pub fn patch(
        &mut self,
        sku: &SkuId,
        request_tag: u64,
    ) -> Result<Option<PatchRecord>, StoreError> {
        self.patches
            .get(self.trees.patches(), keys::patch(sku, request_tag))
    }

    pub fn put_patch(&mut self, request_tag: u64, record: PatchRecord) {
        self.patches.set(
            keys::patch(&record.sku_after.sku, request_tag),
            Some(record),
        );
    }

    pub fn add_deadline(&mut self, expires_ms: u64, order_id: &OrderId) {
        self.deadlines
            .insert(keys::deadline(expires_ms, order_id), true);
    }

    pub fn remove_deadline(&mut self, expires_ms: u64, order_id: &OrderId) {
        self.deadlines
            .insert(keys::deadline(expires_ms, order_id), false);
    }

    pub fn add_user_order(&mut self, user: &UserId, created_ms: u64, order_id: &OrderId) {
        self.user_orders
            .insert(keys::user_order(user, created_ms, order_id), true);
    }

    /// Up to `limit` reserved orders with `expires_ms <= clock`, by deadline then id, as
    /// the committed index and this transaction's own changes together say.
    pub fn due(&self, limit: usize) -> Result<Vec<OrderId>, StoreError> {
        let end = self.clock.saturating_add(1).to_be_bytes();
        let mut due: BTreeMap<Vec<u8>, ()> = BTreeMap::new();
        let before_end = (
            std::ops::Bound::Unbounded,
            std::ops::Bound::Excluded(&end[..]),
        );
        for (key, _) in self.trees.deadlines().range(before_end) {
            if self.deadlines.get(key.as_slice()) != Some(&false) {
                due.insert(key.clone(), ());
            }
            if due.len() >= limit {
                break;
            }
        }
        for (key, _) in self
            .deadlines
            .range(..end.to_vec())
            .filter(|(_, insert)| **insert)
        {
            due.insert(key.clone(), ());
        }
        due.into_keys()
            .take(limit)
            .map(|key| {
                keys::deadline_order(&key)
                    .and_then(|id| OrderId::new(id).ok())
                    .ok_or_else(|| StoreError::Corrupt("deadlines: bad key".into()))
            })
            .collect()
    }

    /// Checks the invariants of every touched SKU, then hands back everything the
    /// transaction wrote, with the clock and `marker`, as one set of changes.
    pub fn commit(self, marker: Option<&[u8]>) -> Result<Changes, StoreError> {
        for (_, sku) in self.skus.dirty() {
            if let Some(sku) = sku {
                if !sku.is_balanced() {
                    return Err(StoreError::Invariant(format!(
                        "sku {}: available {} + reserved {} + sold {} != total {}",
                        sku.sku, sku.available, sku.reserved, sku.sold, sku.total
                    )));
                }
            }
        }
        let mut changes = memory::no_changes();
        changes[memory::SKUS] = encode_dirty(&self.skus);
        changes[memory::ORDERS] = encode_dirty(&self.orders);
        changes[memory::HOLDS] = encode_dirty(&self.holds);
        changes[memory::RESTOCKS] = encode_dirty(&self.restocks);
        changes[memory::PATCHES] = encode_dirty(&self.patches);
        changes[memory::DEADLINES] = index_writes(self.deadlines);
        changes[memory::USER_ORDERS] = index_writes(self.user_orders);
        let applied = &mut changes[memory::APPLIED];
        applied.insert(
            keys::CLOCK_KEY.to_vec(),
            Some(Arc::from(&self.clock.to_be_bytes()[..])),
        );
        if let Some(marker) = marker {
            applied.insert(keys::MARKER_KEY.to_vec(), Some(Arc::from(marker)));
        }
        Ok(changes)
    }
}

fn encode_dirty<V: Clone + Serialize + DeserializeOwned>(
    slots: &Slots<V>,
) -> BTreeMap<Vec<u8>, Option<memory::Value>> {
    slots
        .dirty()
        .map(|(k, v)| (k.clone(), v.as_ref().map(|v| Arc::from(encode(v)))))
        .collect()
}

fn index_writes(index: BTreeMap<Vec<u8>, bool>) -> BTreeMap<Vec<u8>, Option<memory::Value>> {
    index
        .into_iter()
        .map(|(k, insert)| (k, insert.then(|| Arc::from(&[][..]))))
        .collect()
}
