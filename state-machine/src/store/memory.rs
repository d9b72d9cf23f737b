//! The working set: every state tree held in memory, in the same key and value encodings as
//! on disk. Apply reads and writes only this; the checkpointer later copies what changed to
//! sled. Values are shared (`Arc`) between the working set and the checkpointer's dirty set,
//! so a record changed once is encoded once. The trees are persistent maps (`imbl`), and the
//! events a persistent sequence (`numbered`): a snapshot's copy of the whole state is O(1),
//! so export never stops apply for long.
//!
//! Only the primary trees (SKUs, orders, restocks, patches, events, sales figures, the
//! applied marker and clock) go to disk.
//! The holds and the deadline and user indexes follow from the orders alone, so they live in
//! memory only and are rebuilt from the orders when the state is loaded: an order then
//! costs one record at a checkpoint, not four. The deadline and user indexes are not trees
//! at all (`order_indexes`); their positions in `NAMES` stay empty.

use super::codec::encode;
use super::error::StoreError;
use super::event_seq::EventSeq;
use super::keys;
use super::numbered::Numbered;
use super::order_indexes::{IndexWrites, OrderIndexes};
use super::sku_sales;
use super::tree_key::TreeKey;
use super::trees::{Trees, NAMES};
use crate::model::OrderStatus;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeBounds;
use std::sync::Arc;

pub(crate) use super::codec::Value;
/// A key and its value, as a tree holds them.
pub(crate) type Record = (Vec<u8>, Value);
/// Records read for some trees, by tree position.
pub(crate) type Loaded = Vec<(usize, Vec<Record>)>;

/// Position of each tree in `NAMES` (and in snapshots).
pub(crate) const SKUS: usize = 0;
pub(crate) const ORDERS: usize = 1;
pub(crate) const HOLDS: usize = 2;
pub(crate) const RESTOCKS: usize = 3;
// 4 and 5, the deadline and user indexes, are not trees (`order_indexes`): always empty.
pub(crate) const APPLIED: usize = 6;
pub(crate) const PATCHES: usize = 7;
pub(crate) const EVENTS: usize = 8;
pub(crate) const SALES: usize = 9;

/// The persisted trees whose records sled holds in runs (`runs`): all but the events (in
/// chunks) and the applied marker and clock (a few fixed keys).
pub(crate) const IN_RUNS: [usize; 5] = [SKUS, ORDERS, RESTOCKS, PATCHES, SALES];

/// The trees stored in runs, in `IN_RUNS` order, as of one moment (`MemTrees::in_runs`).
pub(crate) type InRuns = [MemTree; IN_RUNS.len()];

/// Whether a tree is written to disk; the others are rebuilt from the orders.
pub(crate) fn is_persisted(tree: usize) -> bool {
    matches!(
        tree,
        SKUS | ORDERS | RESTOCKS | APPLIED | PATCHES | EVENTS | SALES
    )
}

/// A record's key as a tree yields it: stored beside the record, or made from its id.
pub(crate) enum Key<'a> {
    Stored(&'a [u8]),
    Id([u8; 8]),
}

impl std::ops::Deref for Key<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Key::Stored(key) => key,
            Key::Id(key) => key,
        }
    }
}

type Records<'a> = Box<dyn Iterator<Item = (Key<'a>, &'a Value)> + 'a>;

/// An order's record in the working set. Its key is the order id the record begins with
/// (`wire::order_id_bytes`), so the tree stores no copy of it: a key cost each order a
/// heap block of its own and half of its entry in the tree's nodes.
///
/// Beside the record, the id's first 8 bytes (`head`) sit in the tree's node, and comparisons
/// look at them first. Ids that come in no order (the gateway's own, UUIDs) are found by a
/// search from the root, and each comparison that had to read the id from its record was a
/// cache miss once the orders outgrew the caches: with such ids, that search was a third of
/// apply's cycles (perf) and apply ran at 40 % of the speed of time-ordered ids. The heads
/// settle nearly every comparison between such ids without leaving the node. Ids that share
/// a longer prefix (`order-` and random digits) gain little; a 16-byte head served them too,
/// but cost 16 % more memory per order, where 8 bytes cost about none (README).
#[derive(Clone)]
pub(crate) struct OrderRecord {
    head: u64,
    record: Value,
}

impl OrderRecord {
    /// The record stored under `key`, which must be the id it begins with.
    fn new(key: &[u8], record: Value) -> Result<Self, StoreError> {
        Self::check(key, &record)?;
        Ok(Self::checked(record))
    }

    /// A record whose id was checked (`check`).
    fn checked(record: Value) -> Self {
        let head = head(super::wire::order_id_bytes(&record).unwrap_or_default());
        Self { head, record }
    }

    /// What a search for `id` compares the records with: a record of the id alone (the
    /// varint of its length, then the id), which is all `id` reads of it.
    fn probe(id: &[u8]) -> Self {
        let mut record = Vec::with_capacity(id.len() + 2);
        super::wire::put_varint(&mut record, id.len() as u64);
        record.extend_from_slice(id);
        Self {
            head: head(id),
            record: Value::from(record),
        }
    }

    fn check(key: &[u8], record: &[u8]) -> Result<(), StoreError> {
        match super::wire::order_id_bytes(record) {
            Some(id) if id == key => Ok(()),
            _ => Err(StoreError::Corrupt(format!(
                "orders: the record under {:?} is not that order's",
                String::from_utf8_lossy(key)
            ))),
        }
    }

    #[inline]
    fn id(&self) -> &[u8] {
        // Checked by `new`, or before `checked`; a probe is made from its id.
        super::wire::order_id_bytes(&self.record).unwrap_or_default()
    }
}

/// The first 8 bytes of `id`, zeros after a shorter one, as one big-endian number. If one
/// id's head is below another's, that id sorts first (at the first byte where the heads
/// differ, either both ids have their own bytes, or the one with the zero ended there and is
/// a prefix of the other), so comparing heads first keeps the ids' byte order.
#[inline]
fn head(id: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = id.len().min(8);
    bytes[..n].copy_from_slice(&id[..n]);
    u64::from_be_bytes(bytes)
}

// Equality, order and borrowing are the id's alone, as `Borrow` requires: `head` only
// settles a comparison early, in the id's own order.
impl std::borrow::Borrow<[u8]> for OrderRecord {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.id()
    }
}

impl PartialEq for OrderRecord {
    fn eq(&self, other: &Self) -> bool {
        self.head == other.head && self.id() == other.id()
    }
}

impl Eq for OrderRecord {}

impl PartialOrd for OrderRecord {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderRecord {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.head
            .cmp(&other.head)
            .then_with(|| self.id().cmp(other.id()))
    }
}

#[derive(Clone)]
pub(crate) enum MemTree {
    Keyed(imbl::OrdMap<TreeKey, Value>),
    /// The orders, each keyed by the id inside its record.
    Orders(imbl::OrdSet<OrderRecord>),
    /// The events, whose keys are their ids (`keys::event`). Only the held ones are
    /// records here (`get`, `range`, `len`); the moved ones are read from sled
    /// (`Store::event_values`).
    Numbered(EventSeq),
}

impl MemTree {
    fn empty(tree: usize) -> Self {
        match tree {
            EVENTS => MemTree::Numbered(EventSeq::default()),
            ORDERS => MemTree::Orders(imbl::OrdSet::new()),
            _ => MemTree::Keyed(imbl::OrdMap::new()),
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        match self {
            MemTree::Keyed(map) => map.get(key),
            MemTree::Orders(set) => set.get(&OrderRecord::probe(key)).map(|found| &found.record),
            MemTree::Numbered(seq) => keys::event_id(key).and_then(|id| seq.held().get(id)),
        }
    }

    /// As `get`, first comparing `key` with the largest key: one past it is absent, found
    /// without a search. Order services' ids are mostly time-ordered (sequence numbers,
    /// snowflakes, ULIDs), so nearly every new order's id lands past the last, and its check
    /// for a replay cost a search of the largest tree (callgrind: a seventh of apply on
    /// a hot SKU). For ids in random order, it costs one comparison more.
    pub fn get_unless_past_last(&self, key: &[u8]) -> Option<&Value> {
        let last = match self {
            MemTree::Keyed(map) => map.get_max().map(|(last, _)| &**last),
            MemTree::Orders(set) => set.get_max().map(OrderRecord::id),
            MemTree::Numbered(_) => return self.get(key),
        };
        match last {
            Some(last) if last < key => return None,
            None => return None,
            Some(_) => {}
        }
        self.get(key)
    }

    /// The records whose keys lie in `range`, in key order.
    pub fn range<'a>(&'a self, range: impl RangeBounds<[u8]> + 'a) -> Records<'a> {
        match self {
            MemTree::Keyed(map) => Box::new(
                map.range::<_, [u8]>(range)
                    .map(|(k, v)| (Key::Stored(k), v)),
            ),
            MemTree::Orders(set) => Box::new(
                set.range::<_, [u8]>(range)
                    .map(|record| (Key::Stored(record.id()), &record.record)),
            ),
            MemTree::Numbered(seq) => {
                let seq = seq.held();
                let (from, to) = positions(seq, range);
                Box::new((from..to).filter_map(|i| {
                    seq.at(i)
                        .map(|(id, value)| (Key::Id(id.to_be_bytes()), value))
                }))
            }
        }
    }

    pub fn iter(&self) -> Records<'_> {
        self.range(..)
    }

    pub fn len(&self) -> usize {
        match self {
            MemTree::Keyed(map) => map.len(),
            MemTree::Orders(set) => set.len(),
            MemTree::Numbered(seq) => seq.held().len(),
        }
    }

    /// Writes one record (`None`: removes it). Event ids come in the one unbroken run that
    /// apply assigns, so a write that would break it is a broken store, reported as corrupt.
    fn write(&mut self, key: &[u8], value: Option<Value>) -> Result<(), StoreError> {
        match self {
            MemTree::Numbered(seq) => {
                let id = keys::event_id(key)
                    .ok_or_else(|| StoreError::Corrupt("events: bad key".into()))?;
                seq.write(id, value)
                    .map_err(|gap| StoreError::Corrupt(format!("events: {gap}")))
            }
            MemTree::Orders(set) => {
                match value {
                    Some(record) => {
                        set.insert(OrderRecord::new(key, record)?);
                    }
                    None => {
                        set.remove(key);
                    }
                }
                Ok(())
            }
            MemTree::Keyed(map) => {
                match value {
                    Some(v) => {
                        map.insert(TreeKey::from(key), v);
                    }
                    None => {
                        map.remove(key);
                    }
                }
                Ok(())
            }
        }
    }

    /// As `write`, for an order whose record was checked against its key (`OrderRecord::check`)
    /// before: `MemTrees::apply` checks them all before it changes anything, and checking again
    /// here would read every id twice.
    fn write_checked_order(&mut self, key: &[u8], value: Option<Value>) {
        let MemTree::Orders(set) = self else {
            unreachable!("the orders tree holds orders")
        };
        match value {
            Some(record) => {
                set.insert(OrderRecord::checked(record));
            }
            None => {
                set.remove(key);
            }
        }
    }

    /// As `write`, keeping a long key without a copy where the tree stores it.
    fn write_owned(&mut self, key: Vec<u8>, value: Option<Value>) -> Result<(), StoreError> {
        match (self, value) {
            (MemTree::Keyed(map), Some(v)) => {
                map.insert(TreeKey::from(key), v);
            }
            (MemTree::Keyed(map), None) => {
                map.remove(&key[..]);
            }
            (tree @ (MemTree::Numbered(_) | MemTree::Orders(_)), value) => {
                return tree.write(&key, value)
            }
        }
        Ok(())
    }
}

/// The positions `[from, to)` in `seq` of the ids whose keys lie in `range`: ids and their
/// big-endian keys sort alike, so each bound is a binary search over the positions.
fn positions(seq: &Numbered<Value>, range: impl RangeBounds<[u8]>) -> (usize, usize) {
    use std::ops::Bound;
    let key_at = |i: usize| seq.at(i).map(|(id, _)| id.to_be_bytes());
    // The first position whose key is not before `bound` (or, `inclusive`, not after it).
    let first_past = |bound: &[u8], inclusive: bool| {
        let (mut low, mut high) = (0, seq.len());
        while low < high {
            let mid = low + (high - low) / 2;
            let key = key_at(mid).unwrap_or_default();
            let past = if inclusive {
                key[..] > *bound
            } else {
                key[..] >= *bound
            };
            if past {
                high = mid;
            } else {
                low = mid + 1;
            }
        }
        low
    };
    let from = match range.start_bound() {
        Bound::Included(key) => first_past(key, false),
        Bound::Excluded(key) => first_past(key, true),
        Bound::Unbounded => 0,
    };
    let to = match range.end_bound() {
        Bound::Included(key) => first_past(key, true),
        Bound::Excluded(key) => first_past(key, false),
        Bound::Unbounded => seq.len(),
    };
    (from, to.max(from))
}

/// One checkpoint's changes: per tree, key to new value (`None`: deleted), each key once;
/// the events in id order, the others in no particular order.
pub(crate) type Changes = [TreeWrites; NAMES.len()];

/// One tree's writes of one apply: each key at most once; the events in id order, the
/// others in no particular order (nothing needs them sorted before the checkpoint).
pub(crate) type TreeWrites = Vec<(Vec<u8>, Option<Value>)>;

/// One apply's writes, per tree. Lists, not ordered maps: building a map per tree per apply
/// sorted keys with long shared prefixes that nothing read in order.
pub(crate) type Writes = [TreeWrites; NAMES.len()];

pub(crate) fn is_empty(changes: &Changes) -> bool {
    changes.iter().all(Vec::is_empty)
}

/// Not `Clone`: a copy of the indexes would be a deep one (`view` copies the rest).
pub(crate) struct MemTrees {
    pub trees: [MemTree; NAMES.len()],
    pub indexes: OrderIndexes,
}

impl Default for MemTrees {
    fn default() -> Self {
        Self {
            trees: std::array::from_fn(MemTree::empty),
            indexes: OrderIndexes::default(),
        }
    }
}

impl MemTrees {
    /// Reads the primary trees from disk, except those already read in a layout of their own
    /// (`preloaded`: every record of each, in order; for a key given twice the later wins),
    /// and rebuilds the rest.
    pub fn load(disk: &Trees, preloaded: Loaded, events: EventSeq) -> Result<Self, StoreError> {
        let mut mem = Self::default();
        mem.trees[EVENTS] = MemTree::Numbered(events);
        let mut done = [false; NAMES.len()];
        done[EVENTS] = true;
        for (position, records) in preloaded {
            for (key, value) in records {
                mem.trees[position].write_owned(key, Some(value))?;
            }
            done[position] = true;
        }
        for (position, (into, tree)) in mem.trees.iter_mut().zip(disk.in_order()).enumerate() {
            if !is_persisted(position) || done[position] {
                continue;
            }
            for item in tree.iter() {
                let (key, value) = item?;
                into.write(&key, Some(Arc::from(value.as_ref())))?;
            }
        }
        mem.rebuild_indexes()?;
        Ok(mem)
    }

    /// Holds are the units of reserved and paid orders per user of each SKU that has a
    /// per-user limit (`Tx::recount_holds`); deadlines list the reserved orders; the user
    /// index lists every order (apply keeps all three so).
    fn rebuild_indexes(&mut self) -> Result<(), StoreError> {
        let mut limited = BTreeSet::new();
        for (key, bytes) in self.skus().iter() {
            if sku_sales::decode_sku(bytes)?.per_user_limit.is_some() {
                limited.insert(key.to_vec());
            }
        }
        let mut holds: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        let mut indexes = OrderIndexes::default();
        indexes.reserve(self.orders().len());
        for (_, bytes) in self.orders().iter() {
            let order = super::wire::decode_order(bytes)?;
            let order_id: Box<str> = order.order_id.as_str().into();
            let deadline = (order.status == OrderStatus::Reserved).then_some(order.expires_ms);
            indexes.push_loaded(order.user_id.as_str(), order.created_ms, order_id, deadline);
            let counted = order
                .held_items()
                .iter()
                .filter(|item| limited.contains(item.sku.as_str().as_bytes()));
            for item in counted {
                let held = holds
                    .entry(keys::hold(&item.sku, &order.user_id))
                    .or_default();
                *held = held.checked_add(item.qty.get()).ok_or_else(|| {
                    StoreError::Corrupt(format!("holds of {} overflow", item.sku))
                })?;
            }
        }
        self.trees[HOLDS] = MemTree::Keyed(
            holds
                .into_iter()
                .map(|(key, units)| (TreeKey::from(key), Value::from(encode(&units))))
                .collect(),
        );
        indexes.link();
        self.indexes = indexes;
        Ok(())
    }

    /// A copy of the trees for a snapshot export: O(1), the trees being persistent. The
    /// indexes, which an export leaves out, stay empty in it.
    pub fn view(&self) -> Self {
        Self {
            trees: self.trees.clone(),
            indexes: OrderIndexes::default(),
        }
    }

    /// The trees stored in runs as they stand: O(1), the trees being persistent. Apply then
    /// copies each node it changes while this lives, so a checkpoint drops it once planned.
    pub fn in_runs(&self) -> InRuns {
        IN_RUNS.map(|tree| self.trees[tree].clone())
    }

    /// Applies one apply's changes and returns those a checkpoint writes. The holds and
    /// the indexes, rebuilt at load, need not wait for it, so their writes move into memory
    /// uncopied (perf: the key copies were a visible share of apply).
    ///
    /// Only an event's write (a broken run of ids) or an order's (a record that is not its
    /// key's order) can fail. The orders are checked and the events written, into a copy
    /// (`imbl`: O(1)), before anything else, so a failure leaves the working set as it was.
    pub fn apply(
        &mut self,
        mut changes: Writes,
        index_writes: IndexWrites,
    ) -> Result<Writes, StoreError> {
        for (key, value) in &changes[ORDERS] {
            if let Some(record) = value {
                OrderRecord::check(key, record)?;
            }
        }
        let mut events = self.trees[EVENTS].clone();
        for (key, value) in &changes[EVENTS] {
            events.write(key, value.clone())?;
        }
        self.trees[EVENTS] = events;
        for (position, (tree, writes)) in self.trees.iter_mut().zip(&mut changes).enumerate() {
            if position == EVENTS {
                continue;
            }
            if position == ORDERS {
                for (key, value) in writes.iter() {
                    tree.write_checked_order(key, value.clone());
                }
            } else if is_persisted(position) {
                for (key, value) in writes.iter() {
                    tree.write(key, value.clone())?;
                }
            } else {
                for (key, value) in std::mem::take(writes) {
                    tree.write_owned(key, value)?;
                }
            }
        }
        self.indexes.apply(index_writes);
        Ok(changes)
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
    pub fn applied(&self) -> &MemTree {
        &self.trees[APPLIED]
    }
    pub fn patches(&self) -> &MemTree {
        &self.trees[PATCHES]
    }
    pub fn event_seq(&self) -> &EventSeq {
        match &self.trees[EVENTS] {
            MemTree::Numbered(seq) => seq,
            _ => unreachable!("the events tree is numbered"),
        }
    }

    /// Moves held events with ids up to `up_to` out of memory, oldest first and at most
    /// `max`: their records must be in sled. Returns how many moved.
    pub fn move_events_out(&mut self, up_to: u64, max: usize) -> Result<usize, StoreError> {
        match &mut self.trees[EVENTS] {
            MemTree::Numbered(seq) => seq.move_out(up_to, max),
            _ => unreachable!("the events tree is numbered"),
        }
    }
    pub fn sales(&self) -> &MemTree {
        &self.trees[SALES]
    }

    /// Records held, all trees together, an index entry counting as one.
    pub fn records(&self) -> usize {
        self.trees.iter().map(MemTree::len).sum::<usize>() + self.indexes.len()
    }
}

// The tree positions above must name the trees of `NAMES` in the same order.
const _: () = {
    assert!(NAMES.len() == 10);
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::Bound::{self, Excluded, Included, Unbounded};

    /// A record as the orders tree holds it: beginning with its id, as an order's does.
    fn record_of(id: &[u8]) -> Value {
        let mut record = Vec::new();
        super::super::wire::put_varint(&mut record, id.len() as u64);
        record.extend_from_slice(id);
        record.extend_from_slice(b" and the rest");
        Arc::from(record)
    }

    /// Found or not exactly as `get` finds it: below, at and past the largest key, and in
    /// an empty tree; for a tree that stores its keys and for the orders, keyed by the id
    /// inside each record.
    #[test]
    fn a_lookup_past_the_last_key_agrees_with_a_search() {
        for position in [SKUS, ORDERS] {
            let mut tree = MemTree::empty(position);
            let probes: [&[u8]; 6] = [b"", b"a", b"order-1", b"order-2", b"order-20", b"order-3"];
            for probe in probes {
                assert_eq!(tree.get_unless_past_last(probe), None);
            }
            for key in [&b"order-1"[..], b"order-2"] {
                tree.write(key, Some(record_of(key))).unwrap();
            }
            for probe in probes {
                assert_eq!(
                    tree.get_unless_past_last(probe),
                    tree.get(probe),
                    "{probe:?}"
                );
            }
            assert!(
                tree.get_unless_past_last(b"order-2").is_some(),
                "the last key itself"
            );
        }
    }

    /// The orders tree lists, finds and removes its records by the ids inside them, long
    /// ones (two bytes of length) too, and refuses a record stored under another id.
    #[test]
    fn the_orders_are_keyed_by_the_ids_inside_their_records() {
        let long = vec![b'x'; 128];
        let ids: [&[u8]; 4] = [b"b", b"a", &long, b"c"];
        let mut orders = MemTree::empty(ORDERS);
        for id in ids {
            orders.write(id, Some(record_of(id))).unwrap();
        }
        let listed: Vec<Vec<u8>> = orders.iter().map(|(key, _)| key.to_vec()).collect();
        let mut sorted: Vec<Vec<u8>> = ids.iter().map(|id| id.to_vec()).collect();
        sorted.sort();
        assert_eq!(listed, sorted);
        for id in ids {
            assert_eq!(orders.get(id), Some(&record_of(id)));
        }
        let after_a: Vec<Vec<u8>> = orders
            .range((Excluded(&b"a"[..]), Unbounded))
            .map(|(key, _)| key.to_vec())
            .collect();
        assert_eq!(after_a, sorted[1..]);
        orders.write(b"b", None).unwrap();
        assert_eq!(orders.get(b"b"), None);
        assert_eq!(orders.len(), 3);
        assert!(matches!(
            orders.write(b"d", Some(record_of(b"e"))),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            orders.write(b"d", Some(Arc::from(&[0x85u8, 0x80][..]))),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(orders.len(), 3);
    }

    proptest::proptest! {
        /// Comparing the ids' first 8 bytes first keeps the ids' byte order: pairs of ids
        /// from a tiny alphabet (zero bytes too, the heads' padding) that share long prefixes,
        /// on both sides of 8 bytes, compare as their bytes do; the tree lists them in that
        /// order and finds each, and no id it lacks.
        #[test]
        fn the_heads_of_ids_keep_their_order(
            ids in proptest::collection::vec(proptest::collection::vec(0u8..3, 0..20), 1..40),
            absent in proptest::collection::vec(proptest::collection::vec(0u8..3, 0..20), 0..10),
        ) {
            let records: Vec<OrderRecord> =
                ids.iter().map(|id| OrderRecord::checked(record_of(id))).collect();
            for (a, x) in ids.iter().zip(&records) {
                for (b, y) in ids.iter().zip(&records) {
                    proptest::prop_assert_eq!(x.cmp(y), a.cmp(b), "{:?} against {:?}", a, b);
                }
            }
            let mut orders = MemTree::empty(ORDERS);
            for id in &ids {
                orders.write(id, Some(record_of(id))).unwrap();
            }
            let mut sorted = ids.clone();
            sorted.sort();
            sorted.dedup();
            let listed: Vec<Vec<u8>> = orders.iter().map(|(key, _)| key.to_vec()).collect();
            proptest::prop_assert_eq!(&listed, &sorted);
            for id in &ids {
                proptest::prop_assert_eq!(orders.get(id), Some(&record_of(id)));
            }
            for id in absent.iter().filter(|id| !ids.contains(id)) {
                proptest::prop_assert_eq!(orders.get(id), None);
            }
        }
    }

    /// The events tree answers every range as an ordered map of the same records would.
    #[test]
    fn numbered_ranges_match_an_ordered_map() {
        let mut numbered = MemTree::empty(EVENTS);
        let mut keyed = MemTree::empty(SKUS);
        for id in 250..=260u64 {
            let value: Value = Arc::from(&id.to_be_bytes()[..]);
            numbered
                .write(&keys::event(id), Some(value.clone()))
                .unwrap();
            keyed.write(&keys::event(id), Some(value)).unwrap();
        }
        let odd: &[u8] = &[0, 0, 0, 0, 0, 0, 1];
        let probes: Vec<Vec<u8>> = [0, 249, 250, 255, 260, 261, u64::MAX]
            .iter()
            .map(|id| keys::event(*id))
            .chain([odd.to_vec(), vec![0, 0, 0, 0, 0, 0, 1, 0, 9], vec![]])
            .collect();
        let mut bounds: Vec<Bound<&[u8]>> = vec![Unbounded];
        for probe in &probes {
            bounds.push(Included(probe));
            bounds.push(Excluded(probe));
        }
        let listed = |tree: &MemTree, from: Bound<&[u8]>, to: Bound<&[u8]>| {
            tree.range((from, to))
                .map(|(key, value)| (key.to_vec(), value.to_vec()))
                .collect::<Vec<_>>()
        };
        for from in &bounds {
            for to in &bounds {
                if let (Included(a) | Excluded(a), Included(b) | Excluded(b)) = (from, to) {
                    // An ordered map refuses a range that ends before it starts.
                    if a > b || (a == b && matches!((from, to), (Excluded(_), Excluded(_)))) {
                        continue;
                    }
                }
                assert_eq!(
                    listed(&numbered, *from, *to),
                    listed(&keyed, *from, *to),
                    "range {from:?}..{to:?}"
                );
            }
        }
        assert_eq!(
            numbered.iter().next().map(|(k, _)| k.to_vec()),
            Some(keys::event(250))
        );
        assert_eq!(
            numbered.get(&keys::event(255)),
            keyed.get(&keys::event(255))
        );
        assert_eq!(numbered.get(&keys::event(261)), None);
        assert_eq!(numbered.get(odd), None);
    }

    /// A broken run of event ids fails the apply and leaves every tree as it was.
    #[test]
    fn a_gap_in_event_ids_changes_nothing() {
        let mut mem = MemTrees::default();
        let mut first = Writes::default();
        first[EVENTS].push((keys::event(1), Some(Arc::from(&b"one"[..]))));
        mem.apply(first, IndexWrites::default()).unwrap();
        let mut broken = Writes::default();
        broken[SKUS].push((b"sku".to_vec(), Some(Arc::from(&b"x"[..]))));
        broken[EVENTS].push((keys::event(3), Some(Arc::from(&b"three"[..]))));
        assert!(matches!(
            mem.apply(broken, IndexWrites::default()),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(mem.skus().len(), 0);
        assert_eq!(mem.event_seq().held().len(), 1);
    }

    /// An order's record under another order's id fails the apply and leaves every tree as
    /// it was, though the SKU and event written with it come first.
    #[test]
    fn an_order_under_another_id_changes_nothing() {
        let mut mem = MemTrees::default();
        let mut broken = Writes::default();
        broken[SKUS].push((b"sku".to_vec(), Some(Arc::from(&b"x"[..]))));
        broken[EVENTS].push((keys::event(1), Some(Arc::from(&b"one"[..]))));
        broken[ORDERS].push((b"o1".to_vec(), Some(record_of(b"o1"))));
        broken[ORDERS].push((b"o2".to_vec(), Some(record_of(b"o3"))));
        assert!(matches!(
            mem.apply(broken, IndexWrites::default()),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(mem.skus().len(), 0);
        assert_eq!(mem.orders().len(), 0);
        assert_eq!(mem.event_seq().held().len(), 0);
    }
}
