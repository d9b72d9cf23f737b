//! One apply's working set: reads go through to the current trees, writes stay in memory
//! until `commit` turns them into one atomic sled transaction with the new applied marker.
//! Nothing is written half-way: a batch either lands whole with its marker or not at all.

use super::error::StoreError;
use super::keys;
use super::trees::Trees;
use crate::model::{Order, RestockRecord, Sku};
use crate::validation::{OrderId, RequestId, SkuId, UserId};
use serde::{de::DeserializeOwned, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::collections::BTreeMap;

pub(crate) fn encode<V: Serialize>(value: &V) -> Vec<u8> {
    // Encoding our own in-memory types into a Vec cannot fail.
    postcard::to_allocvec(value).expect("postcard encoding into memory")
}

pub(crate) fn decode<V: DeserializeOwned>(tree: &str, bytes: &[u8]) -> Result<V, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("{tree}: {e}")))
}

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

    fn get(&mut self, tree: &sled::Tree, key: Vec<u8>) -> Result<Option<V>, StoreError> {
        if let Some((value, _)) = self.slots.get(&key) {
            return Ok(value.clone());
        }
        let value = match tree.get(&key)? {
            Some(bytes) => Some(decode::<V>(self.name, &bytes)?),
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
    trees: &'a Trees,
    pub clock: u64,
    skus: Slots<Sku>,
    orders: Slots<Order>,
    holds: Slots<u64>,
    restocks: Slots<RestockRecord>,
    /// Index keys to insert (`true`) or remove (`false`).
    deadlines: BTreeMap<Vec<u8>, bool>,
    user_orders: BTreeMap<Vec<u8>, bool>,
}

/// The encoded writes of a transaction, prepared outside the sled closure (which may rerun).
type Writes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

impl<'a> Tx<'a> {
    pub fn new(trees: &'a Trees, clock: u64) -> Self {
        Self {
            trees,
            clock,
            skus: Slots::new("skus"),
            orders: Slots::new("orders"),
            holds: Slots::new("holds"),
            restocks: Slots::new("restocks"),
            deadlines: BTreeMap::new(),
            user_orders: BTreeMap::new(),
        }
    }

    pub fn sku(&mut self, sku: &SkuId) -> Result<Option<Sku>, StoreError> {
        self.skus
            .get(&self.trees.skus, sku.as_str().as_bytes().to_vec())
    }

    pub fn put_sku(&mut self, sku: Sku) {
        self.skus
            .set(sku.sku.as_str().as_bytes().to_vec(), Some(sku));
    }

    pub fn order(&mut self, order_id: &OrderId) -> Result<Option<Order>, StoreError> {
        self.orders
            .get(&self.trees.orders, order_id.as_str().as_bytes().to_vec())
    }

    pub fn put_order(&mut self, order: Order) {
        self.orders
            .set(order.order_id.as_str().as_bytes().to_vec(), Some(order));
    }

    pub fn hold(&mut self, sku: &SkuId, user: &UserId) -> Result<u64, StoreError> {
        Ok(self
            .holds
            .get(&self.trees.holds, keys::hold(sku, user))?
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
            .get(&self.trees.restocks, keys::restock(sku, request_id))
    }

    pub fn put_restock(&mut self, request_id: &RequestId, record: RestockRecord) {
        self.restocks.set(
            keys::restock(&record.sku_after.sku, request_id),
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
        for entry in self.trees.deadlines.range(..&end[..]) {
            let (key, _) = entry?;
            if self.deadlines.get(key.as_ref()) != Some(&false) {
                due.insert(key.to_vec(), ());
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

    /// Checks the invariants of every touched SKU, then writes everything and the applied
    /// state in one sled transaction.
    pub fn commit(self, marker: Option<&[u8]>) -> Result<(), StoreError> {
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
        let skus = encode_dirty(&self.skus);
        let orders = encode_dirty(&self.orders);
        let holds = encode_dirty(&self.holds);
        let restocks = encode_dirty(&self.restocks);
        let deadlines = index_writes(&self.deadlines);
        let user_orders = index_writes(&self.user_orders);
        let mut applied: Writes = vec![(
            keys::CLOCK_KEY.to_vec(),
            Some(self.clock.to_be_bytes().to_vec()),
        )];
        if let Some(marker) = marker {
            applied.push((keys::MARKER_KEY.to_vec(), Some(marker.to_vec())));
        }
        let t = self.trees;
        let all = [
            &skus,
            &orders,
            &holds,
            &restocks,
            &deadlines,
            &user_orders,
            &applied,
        ];
        let result: Result<(), TransactionError<()>> = (
            &t.skus,
            &t.orders,
            &t.holds,
            &t.restocks,
            &t.deadlines,
            &t.user_orders,
            &t.applied,
        )
            .transaction(|(a, b, c, d, e, f, g)| {
                for (tree, writes) in [a, b, c, d, e, f, g].into_iter().zip(all) {
                    for (key, value) in writes {
                        match value {
                            Some(v) => tree.insert(key.as_slice(), v.as_slice())?,
                            None => tree.remove(key.as_slice())?,
                        };
                    }
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
            Err(TransactionError::Abort(())) => {
                Err(StoreError::Corrupt("transaction aborted".into()))
            }
        }
    }
}

use sled::Transactional;

fn encode_dirty<V: Clone + Serialize + DeserializeOwned>(slots: &Slots<V>) -> Writes {
    slots
        .dirty()
        .map(|(k, v)| (k.clone(), v.as_ref().map(encode)))
        .collect()
}

fn index_writes(index: &BTreeMap<Vec<u8>, bool>) -> Writes {
    index
        .iter()
        .map(|(k, insert)| (k.clone(), insert.then(Vec::new)))
        .collect()
}
