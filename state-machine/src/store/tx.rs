//! One apply's changes: reads go through to the in-memory state, writes stay here until
//! `commit` checks them and turns them, with the new applied marker, into one set of changes
//! that the store applies at once. Nothing is written half-way: a batch either lands whole
//! with its marker or not at all.

use super::codec::{encode_shared_with, Record};
use super::error::StoreError;
use super::event_seq::{self, Slot};
use super::keys;
use super::memory::{self, MemTree, MemTrees, TreeWrites, Writes};
use super::order_indexes::{DeadlineWrite, IndexWrites};
use super::sku_sales::{self, Added};
use super::wire;
use crate::events::{bucket_start, EventKind, Retention, SalesCounts};
use crate::model::{Order, PatchRecord, RestockRecord, Sku};
use crate::validation::{OrderId, RequestId, SkuId, UserId};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Most records a transaction's maps are sized for up front; beyond it they grow.
const PRESIZED_RECORDS: usize = 4_096;

/// A record the transaction wrote: its new value (`None`: deleted), or only its encoding,
/// when that was made for its event and nothing needs the value again (a later read in
/// the same transaction decodes it).
enum Written<V> {
    Value(Option<V>),
    Encoded(memory::Value),
}

/// The records of one tree the transaction wrote. Reads of records it did not write go to
/// the working set, which does not change under the transaction, so they are not kept:
/// keeping them cost each a copy and a map insert that the write then replaced.
///
/// A hash map, not an ordered one: the transaction only looks records up by key, and only
/// the checkpoint sorts what it writes (`dirty::fold`). Its keys share long prefixes (`order-0000…`), so
/// an ordered map's comparisons were a visible share of apply (perf). Nothing depends on the
/// order the slots are visited in.
struct Slots<V> {
    name: &'static str,
    slots: KeyMap<Written<V>>,
}

/// Records by key. hashbrown's rather than std's for `entry_ref`, which copies a key only
/// when it inserts it, after one lookup.
type KeyMap<V> = hashbrown::HashMap<Vec<u8>, V, foldhash::fast::FixedState>;

impl<V: Record> Slots<V> {
    fn new(name: &'static str, capacity: usize) -> Self {
        Self {
            name,
            slots: KeyMap::with_capacity_and_hasher(capacity, Default::default()),
        }
    }

    fn get(&self, tree: &MemTree, key: &[u8]) -> Result<Option<V>, StoreError> {
        self.get_or(key, || tree.get(key))
    }

    /// As `get`, reading a record the transaction did not write with `stored`.
    fn get_or<'t>(
        &'t self,
        key: &[u8],
        stored: impl FnOnce() -> Option<&'t memory::Value>,
    ) -> Result<Option<V>, StoreError> {
        let bytes = match self.slots.get(key) {
            Some(Written::Value(value)) => return Ok(value.clone()),
            Some(Written::Encoded(bytes)) => Some(bytes),
            None => stored(),
        };
        bytes.map(|b| V::decode(self.name, b)).transpose()
    }

    fn set(&mut self, key: Vec<u8>, value: Option<V>) {
        self.slots.insert(key, Written::Value(value));
    }

    /// As `set`, copying `key` only when the transaction has not written it yet: a hot
    /// SKU is written by every order of a batch.
    fn set_at(&mut self, key: &[u8], value: Option<V>) {
        // Not `entry_ref`: for a key already here, as a hot SKU's is, that cost more.
        match self.slots.get_mut(key) {
            Some(slot) => *slot = Written::Value(value),
            None => {
                self.slots.insert(key.to_vec(), Written::Value(value));
            }
        }
    }

    /// As `set`, for a record already encoded.
    fn set_encoded(&mut self, key: Vec<u8>, encoded: memory::Value) {
        self.slots.insert(key, Written::Encoded(encoded));
    }

    /// The written records held as values, in no particular order: for the SKUs, which are
    /// never written as encodings alone, every written record.
    fn written_values(&self) -> impl Iterator<Item = (&Vec<u8>, &Option<V>)> {
        self.slots.iter().filter_map(|(k, written)| match written {
            Written::Value(value) => Some((k, value)),
            Written::Encoded(_) => None,
        })
    }
}

/// What a transaction does to an order's deadline entry.
enum DeadlineChange {
    /// Enter it; the order is `user_orders[placed]`.
    Insert {
        placed: usize,
    },
    Remove,
}

pub(crate) struct Tx<'a> {
    trees: &'a MemTrees,
    pub clock: u64,
    skus: Slots<Sku>,
    orders: Slots<Order>,
    holds: Slots<u64>,
    restocks: Slots<RestockRecord>,
    patches: Slots<PatchRecord>,
    /// Per order id, its deadline and whether to insert it (with its place in
    /// `user_orders`) or remove it. Hashed, like the slots: only `due` needs them in order,
    /// and it sorts what it finds.
    /// Keyed by the command's own id (a reference count, no copy): only a removal's id is
    /// copied, at commit, into the index.
    deadlines: HashMap<OrderId, (u64, DeadlineChange), foldhash::fast::FixedState>,
    /// User index entries to insert: each order's once, when it is placed; never removed.
    user_orders: Vec<(UserId, u64, Box<str>)>,
    /// The newest event id as this transaction leaves it; read on first use.
    events_head: Option<u64>,
    /// Events appended (`Some`, encoded, in id order) and then those pruned (`None`, oldest
    /// first); `commit` merges them into one run by id.
    events: Vec<(u64, Option<memory::Value>)>,
    /// Per SKU read or sold: its record as the working set holds it and the units added to
    /// its sales; `commit` settles them into the SKU's record, and any older bucket into the
    /// sales tree (`sku_sales`).
    sku_sales: KeyMap<SkuSales>,
    /// Whether `sku_sales` keeps the SKUs read: not for a transaction that only checks a
    /// command and is never committed (`for_checks`).
    keeps_skus_read: bool,
    /// Records of the sales tree: buckets that a newer one moved out of a SKU's record.
    sales: Slots<SalesCounts>,
}

/// What a transaction knows of one SKU's sales.
#[derive(Default)]
struct SkuSales {
    /// The working set's record, once read (`Some(None)`: there is none). Kept from the
    /// first read, so `commit` finds the bucket it carried without a second lookup in a tree
    /// of every SKU (callgrind: that lookup took a third of what carrying the bucket saved).
    stored: Option<Option<memory::Value>>,
    added: Added,
}

/// What an event's encoding starts with: `Event`'s fields before its subject, then the
/// subject's variant. The subject's record follows as its own tree encodes it (postcard
/// writes a struct's fields one after another, and a variant as its index and then its
/// content), so an order is encoded once for its record and its event.
struct EventHead {
    id: u64,
    kind: EventKind,
    time_ms: u64,
    revision: u64,
    subject: SubjectKind,
}

impl EventHead {
    /// The whole event: this head, by hand in postcard's format (`wire`), then `record`.
    fn encode_with(&self, record: &[u8]) -> memory::Value {
        encode_shared_with(|out| {
            // Fieldless enums: `as` gives the declaration index, which serde writes.
            for value in [
                self.id,
                self.kind as u64,
                self.time_ms,
                self.revision,
                self.subject as u64,
            ] {
                wire::put_varint(out, value);
            }
            out.extend_from_slice(record);
        })
    }
}

/// Same variants, in the same order, as `EventSubject`, without their records.
#[derive(Clone, Copy)]
enum SubjectKind {
    Sku,
    Order,
}

impl<'a> Tx<'a> {
    /// `commands`: how many commands the transaction will apply, to size its maps once
    /// (growing them from empty was about 3 % of apply's instructions, callgrind); 0 when
    /// unknown or small, and nothing is allocated before it is needed. Capped: a follower
    /// catching up applies many entries at once, and maps sized for all their commands
    /// would be mostly empty where they touch one hot SKU.
    pub fn new(trees: &'a MemTrees, clock: u64, commands: usize) -> Self {
        let commands = commands.min(PRESIZED_RECORDS);
        Self {
            trees,
            clock,
            skus: Slots::new("skus", commands),
            orders: Slots::new("orders", commands),
            holds: Slots::new("holds", commands),
            restocks: Slots::new("restocks", 0),
            patches: Slots::new("patches", 0),
            deadlines: HashMap::with_capacity_and_hasher(commands, Default::default()),
            user_orders: Vec::with_capacity(commands),
            events_head: None,
            events: Vec::with_capacity(commands),
            sku_sales: KeyMap::with_capacity_and_hasher(commands, Default::default()),
            keeps_skus_read: true,
            sales: Slots::new("sales", 0),
        }
    }

    /// A transaction that only checks what a command would do and is dropped, never
    /// committed: it keeps nothing for `commit`.
    pub fn for_checks(trees: &'a MemTrees, clock: u64) -> Self {
        Self {
            keeps_skus_read: false,
            ..Self::new(trees, clock, 0)
        }
    }

    /// Whether nothing was written or kept: a transaction for checks may then judge the
    /// next command too.
    pub fn holds_nothing(&self) -> bool {
        self.skus.slots.is_empty()
            && self.orders.slots.is_empty()
            && self.holds.slots.is_empty()
            && self.deadlines.is_empty()
            && self.events.is_empty()
            && self.sku_sales.is_empty()
    }

    fn events_head(&mut self) -> Result<u64, StoreError> {
        if let Some(head) = self.events_head {
            return Ok(head);
        }
        let head = read_u64(
            self.trees.applied(),
            keys::EVENTS_HEAD_KEY,
            "applied: events head",
        )?;
        self.events_head = Some(head);
        Ok(head)
    }

    /// Appends the event of an accepted change to `sku` with the next id.
    pub fn record_sku_event(
        &mut self,
        kind: EventKind,
        revision: u64,
        sku: &Sku,
    ) -> Result<(), StoreError> {
        self.append_event(kind, revision, SubjectKind::Sku, &sku.encode_shared())
    }

    /// Writes `order`, appends its event with the next id, and adds its units to each
    /// SKU's sales bucket of the current clock (settled at `commit`). The order is encoded
    /// once, for its record and its event (callgrind: 1.4 % of apply's instructions, net of
    /// the copy that joins the event's bytes).
    pub fn put_order_with_event(
        &mut self,
        kind: EventKind,
        revision: u64,
        order: &Order,
    ) -> Result<(), StoreError> {
        let start = bucket_start(self.clock);
        for item in order.items.as_slice() {
            let sku = item.sku.as_str().as_bytes();
            let add = |counts: &mut SalesCounts| counts.add(kind, item.qty.get());
            // Checking the order read its SKUs, so their entries are nearly always here.
            match self.sku_sales.get_mut(sku) {
                Some(entry) => entry.added.add(start, add),
                None => {
                    let mut entry = SkuSales::default();
                    entry.added.add(start, add);
                    self.sku_sales.insert(sku.to_vec(), entry);
                }
            }
        }
        let encoded = order.encode_shared();
        self.append_event(kind, revision, SubjectKind::Order, &encoded)?;
        self.orders
            .set_encoded(order.order_id.as_str().as_bytes().to_vec(), encoded);
        Ok(())
    }

    fn append_event(
        &mut self,
        kind: EventKind,
        revision: u64,
        subject: SubjectKind,
        record: &[u8],
    ) -> Result<(), StoreError> {
        let id = self.events_head()? + 1;
        let head = EventHead {
            id,
            kind,
            time_ms: self.clock,
            revision,
            subject,
        };
        self.events.push((id, Some(head.encode_with(record))));
        self.events_head = Some(id);
        Ok(())
    }

    /// Drops, oldest first and at most `limit` of them, the events `retention` no longer
    /// keeps: a deterministic function of the applied state, like the rest of apply.
    pub fn prune_events(&mut self, retention: Retention, limit: usize) -> Result<(), StoreError> {
        let head = self.events_head()?;
        let (Some(last_prunable), Some(age_cutoff)) = (
            head.checked_sub(retention.min_events),
            self.clock.checked_sub(retention.min_age_ms),
        ) else {
            return Ok(());
        };
        let committed = self.trees.event_seq().slots();
        let appended = self
            .events
            .iter()
            .filter_map(|(id, value)| value.as_ref().map(|v| (*id, Slot::Held(v))));
        let mut pruned = Vec::new();
        for (id, slot) in committed.chain(appended) {
            if id > last_prunable || pruned.len() >= limit {
                break;
            }
            let time_ms = match slot {
                Slot::Held(value) => event_seq::time_of(value)?,
                Slot::Moved(time_ms) => time_ms,
            };
            if time_ms > age_cutoff {
                break;
            }
            pruned.push(id);
        }
        self.events.extend(pruned.into_iter().map(|id| (id, None)));
        Ok(())
    }

    pub fn sku(&mut self, sku: &SkuId) -> Result<Option<Sku>, StoreError> {
        let key = sku.as_str().as_bytes();
        if self.skus.slots.contains_key(key) {
            return self.skus.get(self.trees.skus(), key);
        }
        if !self.keeps_skus_read {
            let stored = self.trees.skus().get(key);
            return stored
                .map(|record| wire::decode_sku_of(record, sku))
                .transpose();
        }
        let entry = self.sku_sales.entry_ref(key).or_default();
        let stored = match &entry.stored {
            Some(stored) => stored.clone(),
            None => entry
                .stored
                .insert(self.trees.skus().get(key).cloned())
                .clone(),
        };
        stored
            .map(|record| wire::decode_sku_of(&record, sku))
            .transpose()
    }

    pub fn put_sku(&mut self, sku: Sku) {
        let id = sku.sku.clone();
        self.skus.set_at(id.as_str().as_bytes(), Some(sku));
    }

    pub fn order(&mut self, order_id: &OrderId) -> Result<Option<Order>, StoreError> {
        let key = order_id.as_str().as_bytes();
        let orders = self.trees.orders();
        self.orders.get_or(key, || orders.get_unless_past_last(key))
    }

    pub fn hold(&mut self, sku: &SkuId, user: &UserId) -> Result<u64, StoreError> {
        Ok(self
            .holds
            .get(self.trees.holds(), &keys::hold(sku, user))?
            .unwrap_or(0))
    }

    /// Zero holds are deleted, so the holds tree only lists users who hold something.
    pub fn put_hold(&mut self, sku: &SkuId, user: &UserId, units: u64) {
        self.holds
            .set(keys::hold(sku, user), (units > 0).then_some(units));
    }

    /// Holds are kept only for SKUs with a per-user limit: nothing else reads them, and an
    /// unlimited SKU's orders each cost a lookup and a map insert fewer. So when an update
    /// adds or removes a SKU's limit, its holds are recounted: all dropped, and, when
    /// `counted`, summed again from every reserved and paid order as this transaction leaves
    /// them. That is a scan of all orders, paid only by such an update.
    pub fn recount_holds(&mut self, sku: &SkuId, counted: bool) -> Result<(), StoreError> {
        let prefix = keys::hold_prefix(sku);
        let from = (
            std::ops::Bound::Included(&prefix[..]),
            std::ops::Bound::Unbounded,
        );
        let stale: Vec<Vec<u8>> = self
            .trees
            .holds()
            .range(from)
            .map(|(key, _)| key.to_vec())
            .take_while(|key| key.starts_with(&prefix))
            .chain(
                self.holds
                    .slots
                    .keys()
                    .filter(|key| key.starts_with(&prefix))
                    .cloned(),
            )
            .collect();
        for key in stale {
            self.holds.set(key, None);
        }
        if !counted {
            return Ok(());
        }
        let mut held: BTreeMap<UserId, u64> = BTreeMap::new();
        let mut count = |order: &Order| -> Result<(), StoreError> {
            for item in order.held_items().iter().filter(|i| i.sku == *sku) {
                let units = held.entry(order.user_id.clone()).or_default();
                *units = units
                    .checked_add(item.qty.get())
                    .ok_or_else(|| StoreError::Corrupt(format!("holds of {sku} overflow")))?;
            }
            Ok(())
        };
        for (key, bytes) in self.trees.orders().iter() {
            // This transaction's copy, where it has one, is the newer.
            if !self.orders.slots.contains_key(&*key) {
                count(&wire::decode_order(bytes)?)?;
            }
        }
        for written in self.orders.slots.values() {
            match written {
                Written::Value(Some(order)) => count(order)?,
                Written::Value(None) => {}
                Written::Encoded(bytes) => count(&wire::decode_order(bytes)?)?,
            }
        }
        for (user, units) in held {
            self.holds.set(keys::hold(sku, &user), Some(units));
        }
        Ok(())
    }

    pub fn restock(
        &mut self,
        sku: &SkuId,
        request_id: &RequestId,
    ) -> Result<Option<RestockRecord>, StoreError> {
        self.restocks
            .get(self.trees.restocks(), &keys::restock(sku, request_id))
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
            .get(self.trees.patches(), &keys::patch(sku, request_tag))
    }

    pub fn put_patch(&mut self, request_tag: u64, record: PatchRecord) {
        self.patches.set(
            keys::patch(&record.sku_after.sku, request_tag),
            Some(record),
        );
    }

    /// Enters a placed order in the indexes: under its user, and under its deadline.
    pub fn index_placed_order(
        &mut self,
        user: &UserId,
        created_ms: u64,
        expires_ms: u64,
        order_id: &OrderId,
    ) {
        let placed = self.user_orders.len();
        self.user_orders
            .push((user.clone(), created_ms, order_id.as_str().into()));
        self.deadlines.insert(
            order_id.clone(),
            (expires_ms, DeadlineChange::Insert { placed }),
        );
    }

    pub fn remove_deadline(&mut self, expires_ms: u64, order_id: &OrderId) {
        self.deadlines
            .insert(order_id.clone(), (expires_ms, DeadlineChange::Remove));
    }

    /// Up to `limit` reserved orders with `expires_ms <= clock`, by deadline then id, as
    /// the committed index and this transaction's own changes together say.
    pub fn due(&self, limit: usize) -> Result<Vec<OrderId>, StoreError> {
        let end = self.clock.saturating_add(1);
        let mut due: BTreeSet<(u64, &str)> = BTreeSet::new();
        for (expires_ms, id) in self.trees.indexes.due_before(end) {
            if !matches!(self.deadlines.get(id), Some((_, DeadlineChange::Remove))) {
                due.insert((expires_ms, id));
            }
            if due.len() >= limit {
                break;
            }
        }
        for (id, (expires_ms, change)) in &self.deadlines {
            if matches!(change, DeadlineChange::Insert { .. }) && *expires_ms < end {
                due.insert((*expires_ms, id.as_str()));
            }
        }
        due.into_iter()
            .take(limit)
            .map(|(_, id)| {
                OrderId::new(id)
                    .map_err(|_| StoreError::Corrupt(format!("deadlines: bad order id {id:?}")))
            })
            .collect()
    }

    /// Checks the invariants of every touched SKU, then hands back everything the
    /// transaction wrote, with the clock and `marker`, as one set of changes.
    pub fn commit(self, marker: Option<&[u8]>) -> Result<(Writes, IndexWrites), StoreError> {
        // The unbalanced SKU with the least key: every replica names the same one.
        let unbalanced = self
            .skus
            .written_values()
            .filter_map(|(key, sku)| sku.as_ref().filter(|s| !s.is_balanced()).map(|s| (key, s)))
            .min_by(|a, b| a.0.cmp(b.0));
        if let Some((_, sku)) = unbalanced {
            return Err(StoreError::Invariant(format!(
                "sku {}: available {} + reserved {} + sold {} != total {}",
                sku.sku, sku.available, sku.reserved, sku.sold, sku.total
            )));
        }
        let mut changes = Writes::default();
        let mut sales = self.sales;
        changes[memory::SKUS] = settle_skus(self.skus, self.sku_sales, &mut sales, self.trees)?;
        changes[memory::ORDERS] = encode_dirty(self.orders);
        changes[memory::HOLDS] = encode_dirty(self.holds);
        changes[memory::RESTOCKS] = encode_dirty(self.restocks);
        changes[memory::PATCHES] = encode_dirty(self.patches);
        changes[memory::SALES] = encode_dirty(sales);
        changes[memory::EVENTS] = merged_by_id(self.events)
            .into_iter()
            .map(|(id, value)| (keys::event(id), value))
            .collect();
        let applied = &mut changes[memory::APPLIED];
        if let Some(head) = self.events_head {
            applied.push((
                keys::EVENTS_HEAD_KEY.to_vec(),
                Some(Arc::from(&head.to_be_bytes()[..])),
            ));
        }
        applied.push((
            keys::CLOCK_KEY.to_vec(),
            Some(Arc::from(&self.clock.to_be_bytes()[..])),
        ));
        if let Some(marker) = marker {
            applied.push((keys::MARKER_KEY.to_vec(), Some(Arc::from(marker))));
        }
        let index_writes = IndexWrites {
            deadlines: self
                .deadlines
                .into_iter()
                .map(|(id, (expires_ms, change))| {
                    let write = match change {
                        DeadlineChange::Insert { placed } => DeadlineWrite::Insert { placed },
                        DeadlineChange::Remove => DeadlineWrite::Remove(id.as_str().into()),
                    };
                    (expires_ms, write)
                })
                .collect(),
            user_orders: self.user_orders,
        };
        Ok((changes, index_writes))
    }
}

/// Takes the transaction's keys rather than copying them: one allocation and copy fewer per
/// record written.
fn encode_dirty<V: Record>(slots: Slots<V>) -> TreeWrites {
    slots
        .slots
        .into_iter()
        .map(|(k, written)| match written {
            Written::Value(value) => (k, value.as_ref().map(V::encode_shared)),
            Written::Encoded(bytes) => (k, Some(bytes)),
        })
        .collect()
}

/// Encodes the written SKUs, each with the newest of its sales buckets, and adds the older
/// buckets (and those of SKUs not written, or deleted) to the sales tree.
fn settle_skus(
    skus: Slots<Sku>,
    mut known: KeyMap<SkuSales>,
    sales: &mut Slots<SalesCounts>,
    trees: &MemTrees,
) -> Result<TreeWrites, StoreError> {
    let mut older = Vec::new();
    let mut writes = Vec::with_capacity(skus.slots.len());
    for (key, written) in skus.slots {
        let sku = match written {
            Written::Value(sku) => sku,
            Written::Encoded(record) => Some(sku_sales::decode_sku(&record)?),
        };
        let SkuSales { stored, added } = known.remove(&key).unwrap_or_default();
        let stored = stored.unwrap_or_else(|| trees.skus().get(&key).cloned());
        let carried = match stored {
            Some(record) => sku_sales::split(&record)?.1,
            None => None,
        };
        let (newest, rest) = sku_sales::settle(carried, added);
        older.extend(rest.into_iter().map(|bucket| (key.clone(), bucket)));
        let value = match sku {
            Some(sku) => Some(sku_sales::encode(&sku, newest.as_ref())),
            // A deleted SKU has no record for its newest bucket to ride in.
            None => {
                older.extend(newest.map(|bucket| (key.clone(), bucket)));
                None
            }
        };
        writes.push((key, value));
    }
    // SKUs read, or sold without being written (which apply never does).
    for (key, SkuSales { added, .. }) in known {
        let (newest, rest) = sku_sales::settle(None, added);
        older.extend(newest.into_iter().chain(rest).map(|b| (key.clone(), b)));
    }
    for (sku, bucket) in older {
        let key = keys::sales(&sku, bucket.start_ms);
        let mut counts = sales.get(trees.sales(), &key)?.unwrap_or_default();
        counts.merge(&bucket.counts);
        sales.set(key, Some(counts));
    }
    Ok(writes)
}

/// A big-endian u64 stored under `key`, 0 when absent.
pub(crate) fn read_u64(tree: &MemTree, key: &[u8], what: &str) -> Result<u64, StoreError> {
    match tree.get(key) {
        Some(raw) => raw
            .as_ref()
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt(what.into())),
        None => Ok(0),
    }
}

/// The events in id order, each once: an event appended and pruned by the same transaction
/// is pruned (the later change wins).
fn merged_by_id(
    mut events: Vec<(u64, Option<memory::Value>)>,
) -> Vec<(u64, Option<memory::Value>)> {
    // Stable: of two changes to one id, the later stays behind the earlier.
    events.sort_by_key(|(id, _)| *id);
    let mut merged: Vec<(u64, Option<memory::Value>)> = Vec::with_capacity(events.len());
    for (id, value) in events {
        match merged.last_mut() {
            Some(last) if last.0 == id => last.1 = value,
            _ => merged.push((id, value)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Event, EventSubject};
    use crate::model::{Item, Items, OrderStatus, Payment};
    use crate::validation::{PaymentRef, Qty};

    /// An event put together from its head and its record's own encoding is byte for byte
    /// the encoding of the whole `Event`, for both kinds of subject.
    #[test]
    fn a_joined_event_encodes_as_the_whole_event() {
        let order = Order {
            order_id: OrderId::new("order-7").unwrap(),
            user_id: UserId::new("user-1").unwrap(),
            items: Items::new(vec![
                Item {
                    sku: SkuId::new("phone").unwrap(),
                    qty: Qty::new(2).unwrap(),
                },
                Item {
                    sku: SkuId::new("case").unwrap(),
                    qty: Qty::new(300).unwrap(),
                },
            ])
            .unwrap(),
            status: OrderStatus::Paid,
            created_ms: 1_700_000_000_000,
            expires_ms: 1_700_000_900_000,
            updated_ms: 1_700_000_000_500,
            payment_ref: Some(PaymentRef::new("pay-1").unwrap()),
            revision: 12_345,
            request_tag: u64::MAX,
            paid: Some(Payment {
                request_tag: 9,
                at_ms: 1_700_000_000_500,
                revision: 12_345,
            }),
        };
        let sku = Sku {
            sku: SkuId::new("phone").unwrap(),
            total: 10,
            available: 8,
            reserved: 0,
            sold: 2,
            refunded: 0,
            per_user_limit: Some(2),
            sale_window: None,
            revision: 12_345,
            created: crate::model::SkuCreation {
                stock: 10,
                per_user_limit: Some(2),
                sale_window: None,
            },
            request_tag: 3,
            created_revision: 1,
        };
        let joined = |kind, subject, record: &[u8]| {
            let head = EventHead {
                id: 300,
                kind,
                time_ms: 1_700_000_000_500,
                revision: 12_345,
                subject,
            };
            head.encode_with(record).to_vec()
        };
        let whole = |kind, subject| {
            super::super::codec::encode(&Event {
                id: 300,
                kind,
                time_ms: 1_700_000_000_500,
                revision: 12_345,
                subject,
            })
        };
        // Every kind with each subject, whether or not apply pairs them: the head's kind
        // and subject are written by their declaration index.
        for kind in EventKind::ALL {
            assert_eq!(
                joined(
                    kind,
                    SubjectKind::Order,
                    &super::super::codec::encode_shared(&order)
                ),
                whole(kind, EventSubject::Order(order.clone())),
                "{kind:?}"
            );
            assert_eq!(
                joined(
                    kind,
                    SubjectKind::Sku,
                    &super::super::codec::encode_shared(&sku)
                ),
                whole(kind, EventSubject::Sku(sku.clone())),
                "{kind:?}"
            );
        }
    }
}
