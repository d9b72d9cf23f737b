//! The deadline and user indexes of the orders. They follow from the orders alone, so they
//! are never written to disk or into a snapshot: rebuilt when the state is loaded, and left
//! out of the copy a snapshot export takes. Nothing copies them, so they are plain maps, not
//! persistent ones. As ordered persistent sets of byte keys they took about a seventh of
//! apply's instructions (callgrind, 10,000 SKUs): two inserts an order, each a search that
//! compares keys on the heap. Here a new order is a push into the bucket of its deadline's
//! millisecond and into its user's list, found by one hash.

use crate::validation::UserId;
use hashbrown::HashTable;
use std::cmp::Ordering;
use std::collections::btree_map::{BTreeMap, Entry};
use std::hash::BuildHasher;

/// Reserved orders by deadline. An entry is the order's position in the user index, which
/// holds its id: 4 bytes, where a copy of the id cost an allocation of its own and 16 bytes
/// more (about 36 bytes per reserved order). A bucket's entries are in no order (inserts
/// are pushes); what reads them in order (`before`) sorts the bucket it reaches.
#[derive(Default)]
pub(crate) struct Deadlines {
    by_ms: BTreeMap<u64, Vec<u32>>,
    len: usize,
}

impl Deadlines {
    /// Each order has one deadline and enters the index once, when it is placed.
    fn insert(&mut self, expires_ms: u64, at: u32) {
        let bucket = self.by_ms.entry(expires_ms).or_default();
        debug_assert!(!bucket.contains(&at), "a deadline entered twice");
        bucket.push(at);
        self.len += 1;
    }

    /// Removes the entry if there is one (an order placed and closed in one apply never
    /// entered the index).
    fn remove<S>(&mut self, expires_ms: u64, order_id: &str, ids: &UserOrders<S>) {
        let Entry::Occupied(mut bucket) = self.by_ms.entry(expires_ms) else {
            return;
        };
        let Some(at) = bucket
            .get()
            .iter()
            .position(|&at| ids.order_id(at) == order_id)
        else {
            return;
        };
        bucket.get_mut().swap_remove(at);
        self.len -= 1;
        if bucket.get().is_empty() {
            bucket.remove();
        }
    }

    fn earliest(&self) -> Option<u64> {
        self.by_ms.keys().next().copied()
    }

    /// The entries with a deadline before `end`, by deadline, then id.
    fn before<'a, S>(
        &'a self,
        end: u64,
        ids: &'a UserOrders<S>,
    ) -> impl Iterator<Item = (u64, &'a str)> {
        self.by_ms.range(..end).flat_map(move |(&ms, bucket)| {
            let mut listed: Vec<&str> = bucket.iter().map(|&at| ids.order_id(at)).collect();
            listed.sort_unstable();
            listed.into_iter().map(move |id| (ms, id))
        })
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// Every order's id under its user, newest first as the API lists them.
///
/// Most buyers of a sale place one order, so the index is laid out for a million users of
/// one order each: one dense entry per order, linked to the same user's next older one, and
/// a table of 4-byte positions from the user's hash to the newest. A map of `user → Vec`
/// held per user a copy of the id and a list, each an allocation of its own, in 40-byte
/// slots of a power-of-two table: this layout holds about 84 bytes per order less (massif,
/// 300,000 orders of as many users); where a few users hold thousands each (the soak's
/// 128), an entry's 32 bytes cost about 9 more than a list's 24. The user's id is not
/// kept, so two users whose ids hash alike share one list: a reader checks each order's
/// `user_id` (`newest_first`).
pub(crate) struct UserOrders<S = foldhash::fast::RandomState> {
    hasher: S,
    /// Per user hash, the position in `entries` of its newest order.
    newest: HashTable<u32>,
    entries: Entries,
    /// A load's orders, before `link` sorts them into `entries`.
    unlinked: Vec<UserOrder>,
}

/// The entries in chunks of `CHUNK`, filled in turn: growing never moves them. In one
/// array, a node of millions of orders copied it whole at each doubling (tens of megabytes,
/// on the apply thread) and held up to twice the room it used.
#[derive(Default)]
struct Entries {
    chunks: Vec<Vec<UserOrder>>,
    len: usize,
}

// Small in unit tests, so that they cross chunks.
#[cfg(not(test))]
const CHUNK_BITS: u32 = 16;
#[cfg(test)]
const CHUNK_BITS: u32 = 2;
const CHUNK: usize = 1 << CHUNK_BITS;

impl Entries {
    fn get(&self, at: u32) -> Option<&UserOrder> {
        let chunk = self.chunks.get((at >> CHUNK_BITS) as usize)?;
        chunk.get(at as usize & (CHUNK - 1))
    }

    fn push(&mut self, entry: UserOrder) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(entry),
            _ => {
                // The first chunk grows as a small index needs; later ones are made whole.
                let mut chunk = if self.chunks.is_empty() {
                    Vec::new()
                } else {
                    Vec::with_capacity(CHUNK)
                };
                chunk.push(entry);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }
}

impl std::ops::Index<u32> for Entries {
    type Output = UserOrder;

    fn index(&self, at: u32) -> &UserOrder {
        &self.chunks[(at >> CHUNK_BITS) as usize][at as usize & (CHUNK - 1)]
    }
}

impl std::ops::IndexMut<u32> for Entries {
    fn index_mut(&mut self, at: u32) -> &mut UserOrder {
        &mut self.chunks[(at >> CHUNK_BITS) as usize][at as usize & (CHUNK - 1)]
    }
}

/// One order in its user's list.
struct UserOrder {
    /// 32 bits of the user's hash: an entry then packs into 32 bytes, not 40. Users who
    /// share them share a list, which readers filter anyway; among a million users about
    /// a hundred pairs do, and each reads the other's orders too.
    user_hash: u32,
    created_ms: u64,
    order_id: Box<str>,
    /// The position of the same user's next older order, or `END`.
    older: u32,
}

// The layout this index is sized for: a field added or widened shows here.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<UserOrder>() == 32);

/// No older order.
const END: u32 = u32::MAX;

impl<S: Default> Default for UserOrders<S> {
    fn default() -> Self {
        Self {
            hasher: S::default(),
            newest: HashTable::new(),
            entries: Entries::default(),
            unlinked: Vec::new(),
        }
    }
}

impl<S> UserOrders<S> {
    /// The id of the order at `at`, a position `insert` or `link` gave.
    fn order_id(&self, at: u32) -> &str {
        &self.entries[at].order_id
    }
}

impl<S: BuildHasher> UserOrders<S> {
    /// Returns the order's position, which it keeps.
    pub fn insert(&mut self, user: &str, created_ms: u64, order_id: Box<str>) -> u32 {
        let user_hash = self.user_hash(user);
        let at = self.next_position();
        let entries = &mut self.entries;
        let mut entry = UserOrder {
            user_hash,
            created_ms,
            order_id,
            older: END,
        };
        match self.newest.find_mut(table_hash(user_hash), |&i| {
            entries[i].user_hash == user_hash
        }) {
            None => {
                self.newest.insert_unique(table_hash(user_hash), at, |&i| {
                    table_hash(entries[i].user_hash)
                });
            }
            Some(head) => {
                // A new order's `created_ms` is the clock, never behind the user's others:
                // it goes first. The list is kept by `created_ms` alone, orders of one
                // millisecond in any order (`newest_first` sorts them as it reads): ordered
                // by id here, a batch of a thousand orders of one user, all of one clock,
                // walked the batch's earlier orders for each.
                let mut after: Option<u32> = None;
                let mut next = *head;
                while next != END && entries[next].created_ms > created_ms {
                    after = Some(next);
                    next = entries[next].older;
                }
                entry.older = next;
                match after {
                    None => *head = at,
                    Some(before) => entries[before].older = at,
                }
            }
        }
        entries.push(entry);
        at
    }

    /// The order ids under `user`'s hash, newest `created_ms` first, ties by id ascending.
    /// They may include another user's whose id hashes alike: check each order's user.
    pub fn newest_first(&self, user: &str) -> impl Iterator<Item = &str> {
        let user_hash = self.user_hash(user);
        let entries = &self.entries;
        let head = self.newest.find(table_hash(user_hash), |&i| {
            entries[i].user_hash == user_hash
        });
        let mut next = head.copied().unwrap_or(END);
        // One millisecond's orders at a time, sorted by id.
        let mut group: Vec<&str> = Vec::new();
        std::iter::from_fn(move || {
            if group.is_empty() {
                let first = entries.get(next)?;
                while let Some(entry) = entries.get(next) {
                    if entry.created_ms != first.created_ms {
                        break;
                    }
                    group.push(&entry.order_id);
                    next = entry.older;
                }
                // Descending, so that `pop` gives the smallest first.
                group.sort_unstable_by(|a, b| b.cmp(a));
            }
            group.pop()
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len + self.unlinked.len()
    }

    /// Room for `more` orders, so that a load gathers them without growing.
    pub fn reserve(&mut self, more: usize) {
        self.unlinked.reserve_exact(more);
    }

    /// Adds an order to an index being built from every order at once (a load): `link` then
    /// puts them in place with one sort, rather than each in turn as `insert` does.
    pub fn push_unlinked(&mut self, user: &str, created_ms: u64, order_id: Box<str>) {
        let pushed = position(self.unlinked.len());
        self.unlinked.push(UserOrder {
            user_hash: self.user_hash(user),
            created_ms,
            order_id,
            // Until `link`, the order it was pushed in.
            older: pushed,
        });
    }

    /// Sorts and links every entry pushed since the index was new. Returns each one's
    /// position, in the order they were pushed.
    pub fn link(&mut self) -> Vec<u32> {
        debug_assert!(self.entries.len == 0, "link builds a new index");
        let mut entries = std::mem::take(&mut self.unlinked);
        // By user, then oldest first: each entry's older one is the entry before it.
        entries
            .sort_unstable_by(|a, b| a.user_hash.cmp(&b.user_hash).then_with(|| list_order(b, a)));
        let mut placed = vec![END; entries.len()];
        for (i, entry) in entries.iter_mut().enumerate() {
            placed[entry.older as usize] = position(i);
            entry.older = END;
        }
        self.newest.clear();
        for i in 0..entries.len() {
            let hash = entries[i].user_hash;
            if i > 0 && entries[i - 1].user_hash == hash {
                entries[i].older = position(i - 1);
            }
            if entries.get(i + 1).is_none_or(|next| next.user_hash != hash) {
                self.newest
                    .insert_unique(table_hash(hash), position(i), |&at| {
                        table_hash(entries[at as usize].user_hash)
                    });
            }
        }
        // In the same order: each entry keeps its position.
        for entry in entries {
            self.entries.push(entry);
        }
        placed
    }

    fn next_position(&self) -> u32 {
        position(self.entries.len)
    }

    /// The high half of the user's hash, the better mixed.
    fn user_hash(&self, user: &str) -> u32 {
        (self.hasher.hash_one(user) >> 32) as u32
    }
}

/// The table's hash of a stored 32-bit user hash: the table takes its probe position
/// from the low bits and a tag from the top seven, so the 32 bits are spread over all 64.
fn table_hash(user_hash: u32) -> u64 {
    u64::from(user_hash).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A position in the entries as the links hold it. Four billion orders would take over
/// 150 GiB of this index alone, so a node runs out of memory long before.
fn position(at: usize) -> u32 {
    let at = u32::try_from(at).expect("fewer than 2^32 orders in memory");
    assert!(at != END, "fewer than 2^32 - 1 orders in memory");
    at
}

/// The order a user's list is read in: newest `created_ms` first, ties by id ascending.
fn list_order(a: &UserOrder, b: &UserOrder) -> Ordering {
    b.created_ms
        .cmp(&a.created_ms)
        .then_with(|| a.order_id.cmp(&b.order_id))
}

/// A change to the deadline index.
pub(crate) enum DeadlineWrite {
    /// A placed order's deadline; the order is `user_orders[placed]` of the same writes.
    Insert { placed: usize },
    /// A closed order's, by its id.
    Remove(Box<str>),
}

/// One apply's changes to the indexes, each order's at most once.
#[derive(Default)]
pub(crate) struct IndexWrites {
    pub deadlines: Vec<(u64, DeadlineWrite)>,
    /// `(user, created_ms, order id)`: user index entries are never removed.
    pub user_orders: Vec<(UserId, u64, Box<str>)>,
}

#[derive(Default)]
pub(crate) struct OrderIndexes {
    deadlines: Deadlines,
    pub user_orders: UserOrders,
    /// A load's deadlines, by the order their orders were pushed in, until `link`.
    unlinked_deadlines: Vec<(u64, u32)>,
}

impl OrderIndexes {
    pub fn apply(&mut self, writes: IndexWrites) {
        let first = self.user_orders.next_position();
        for (i, (user, created_ms, order_id)) in writes.user_orders.into_iter().enumerate() {
            let at = self.user_orders.insert(user.as_str(), created_ms, order_id);
            debug_assert_eq!(at, first + position(i), "positions out of sequence");
        }
        for (expires_ms, write) in writes.deadlines {
            match write {
                // Positions are handed out in sequence (asserted above).
                DeadlineWrite::Insert { placed } => {
                    self.deadlines.insert(expires_ms, first + position(placed))
                }
                DeadlineWrite::Remove(order_id) => {
                    self.deadlines
                        .remove(expires_ms, &order_id, &self.user_orders)
                }
            }
        }
    }

    /// Room for `more` orders of a load.
    pub fn reserve(&mut self, more: usize) {
        self.user_orders.reserve(more);
    }

    /// Adds an order to indexes being built from every order at once (a load), with its
    /// deadline if it is reserved; `link` then puts them in place.
    pub fn push_loaded(
        &mut self,
        user: &str,
        created_ms: u64,
        order_id: Box<str>,
        deadline: Option<u64>,
    ) {
        if let Some(expires_ms) = deadline {
            let pushed = position(self.user_orders.unlinked.len());
            self.unlinked_deadlines.push((expires_ms, pushed));
        }
        self.user_orders.push_unlinked(user, created_ms, order_id);
    }

    pub fn link(&mut self) {
        let placed = self.user_orders.link();
        for (expires_ms, pushed) in std::mem::take(&mut self.unlinked_deadlines) {
            self.deadlines.insert(expires_ms, placed[pushed as usize]);
        }
    }

    /// The earliest deadline of a reserved order.
    pub fn earliest_deadline(&self) -> Option<u64> {
        self.deadlines.earliest()
    }

    /// The reserved orders with a deadline before `end`, by deadline, then id.
    pub fn due_before(&self, end: u64) -> impl Iterator<Item = (u64, &str)> {
        self.deadlines.before(end, &self.user_orders)
    }

    /// Reserved orders.
    #[cfg(test)]
    pub fn reserved(&self) -> usize {
        self.deadlines.len()
    }

    pub fn len(&self) -> usize {
        self.deadlines.len() + self.user_orders.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn boxed(s: &str) -> Box<str> {
        s.into()
    }

    /// Against an ordered set of `(deadline, id)`, the layout this index replaced: the same
    /// entries in the same order after any mix of inserts and removes.
    #[test]
    fn deadlines_read_as_an_ordered_set() {
        let mut index = Deadlines::default();
        // The user index holds the ids; a deadline entry is a position in it.
        let mut ids = UserOrders::<foldhash::fast::RandomState>::default();
        let mut model = BTreeSet::new();
        // A fixed pseudo-random walk: deadlines in a few shared milliseconds, ids unsorted.
        let mut seed = 7u64;
        for step in 0..2_000u64 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let ms = 100 + (seed >> 60);
            let id = format!("o-{}", (seed >> 33) % 300);
            if step % 3 == 2 || model.contains(&(ms, id.clone())) {
                index.remove(ms, &id, &ids);
                model.remove(&(ms, id));
            } else if !model.iter().any(|(_, held)| *held == id) {
                let at = ids.insert("u", 0, boxed(&id));
                index.insert(ms, at);
                model.insert((ms, id));
            }
            assert_eq!(index.len(), model.len());
        }
        assert!(model.len() > 20, "the walk left too few entries to compare");
        for end in [0, 100, 103, 108, 116, u64::MAX] {
            let listed: Vec<(u64, String)> = index
                .before(end, &ids)
                .map(|(ms, id)| (ms, id.to_string()))
                .collect();
            let expected: Vec<(u64, String)> =
                model.iter().filter(|(ms, _)| *ms < end).cloned().collect();
            assert_eq!(listed, expected, "before {end}");
        }
        assert_eq!(index.earliest(), model.first().map(|(ms, _)| *ms));
        index.remove(1, "absent", &ids);
        index.remove(model.first().unwrap().0, "absent", &ids);
        assert_eq!(index.len(), model.len());
    }

    #[test]
    fn a_users_orders_list_newest_first_ties_by_id() {
        let mut index = UserOrders::<foldhash::fast::RandomState>::default();
        for (created, id) in [(5, "b"), (7, "c"), (5, "a"), (7, "a"), (9, "z"), (5, "c")] {
            index.insert("u1", created, boxed(id));
        }
        index.insert("u2", 6, boxed("x"));
        // A second order that goes before the first.
        index.insert("u3", 5, boxed("b"));
        index.insert("u3", 5, boxed("c"));
        index.insert("u4", 7, boxed("a"));
        index.insert("u4", 3, boxed("z"));
        assert_eq!(index.newest_first("u3").collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(index.newest_first("u4").collect::<Vec<_>>(), ["a", "z"]);
        let listed: Vec<&str> = index.newest_first("u1").collect();
        assert_eq!(listed, ["z", "a", "c", "a", "b", "c"]);
        assert_eq!(index.newest_first("u2").collect::<Vec<_>>(), ["x"]);
        assert_eq!(index.newest_first("u").count(), 0);
        assert_eq!(index.len(), 11);

        let mut rebuilt = UserOrders::<foldhash::fast::RandomState>::default();
        let unsorted = [
            ("u1", 9, "z"),
            ("u2", 6, "x"),
            ("u1", 5, "c"),
            ("u1", 7, "a"),
            ("u3", 5, "c"),
            ("u1", 5, "a"),
            ("u1", 7, "c"),
            ("u3", 5, "b"),
            ("u1", 5, "b"),
        ];
        for (user, created, id) in unsorted {
            rebuilt.push_unlinked(user, created, boxed(id));
        }
        let placed = rebuilt.link();
        for (pushed, (_, _, id)) in unsorted.iter().enumerate() {
            assert_eq!(rebuilt.order_id(placed[pushed]), *id, "pushed {pushed}");
        }
        assert_eq!(rebuilt.newest_first("u1").collect::<Vec<_>>(), listed);
        assert_eq!(rebuilt.newest_first("u2").collect::<Vec<_>>(), ["x"]);
        assert_eq!(rebuilt.newest_first("u3").collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(rebuilt.newest_first("u").count(), 0);
        assert_eq!(rebuilt.len(), 9);
        // Inserts after a load go in place as before it.
        rebuilt.insert("u1", 7, boxed("b"));
        rebuilt.insert("u2", 6, boxed("w"));
        assert_eq!(
            rebuilt.newest_first("u1").collect::<Vec<_>>(),
            ["z", "a", "b", "c", "a", "b", "c"]
        );
        assert_eq!(rebuilt.newest_first("u2").collect::<Vec<_>>(), ["w", "x"]);
    }

    /// A batch of one user's orders shares one clock: whatever order their ids come in,
    /// they read by id, between the user's newer and older orders.
    #[test]
    fn one_milliseconds_orders_read_by_id() {
        let mut index = UserOrders::<foldhash::fast::RandomState>::default();
        index.insert("u", 1, boxed("old"));
        for id in ["o3", "o1", "o4", "o0", "o2"] {
            index.insert("u", 5, boxed(id));
        }
        index.insert("u", 9, boxed("new"));
        assert_eq!(
            index.newest_first("u").collect::<Vec<_>>(),
            ["new", "o0", "o1", "o2", "o3", "o4", "old"]
        );
        assert_eq!(index.newest_first("u").take(3).count(), 3);
    }

    /// Every user hashes alike.
    #[derive(Default)]
    struct OneHash;

    impl BuildHasher for OneHash {
        type Hasher = OneHasher;
        fn build_hasher(&self) -> OneHasher {
            OneHasher
        }
    }

    struct OneHasher;

    impl std::hash::Hasher for OneHasher {
        fn finish(&self) -> u64 {
            42
        }
        fn write(&mut self, _: &[u8]) {}
    }

    /// Users whose ids hash alike share one list, in the list's order, whether built by
    /// inserts or by a load; a reader tells them apart by the orders' users.
    #[test]
    fn users_that_hash_alike_share_one_list_in_order() {
        let mut inserted = UserOrders::<OneHash>::default();
        let mut loaded = UserOrders::<OneHash>::default();
        for (user, created, id) in [
            ("u1", 5, "a"),
            ("u2", 6, "b"),
            ("u1", 6, "c"),
            ("u2", 5, "d"),
        ] {
            inserted.insert(user, created, boxed(id));
            loaded.push_unlinked(user, created, boxed(id));
        }
        loaded.link();
        for index in [&inserted, &loaded] {
            assert_eq!(
                index.newest_first("u1").collect::<Vec<_>>(),
                ["b", "c", "a", "d"]
            );
            assert_eq!(index.newest_first("anyone").count(), 4);
        }
    }

    /// A load's deadlines land on their own orders, whatever order the link sorts them
    /// into, and later writes find them by id.
    #[test]
    fn a_load_and_later_writes_keep_each_deadline_with_its_order() {
        let mut indexes = OrderIndexes::default();
        let loaded = [
            ("u2", 4, "b", Some(40)),
            ("u1", 9, "c", None),
            ("u1", 3, "a", Some(30)),
            ("u3", 1, "d", Some(30)),
        ];
        for (user, created, id, deadline) in loaded {
            indexes.push_loaded(user, created, boxed(id), deadline);
        }
        indexes.link();
        let due = |indexes: &OrderIndexes| -> Vec<(u64, String)> {
            indexes
                .due_before(u64::MAX)
                .map(|(ms, id)| (ms, id.to_string()))
                .collect()
        };
        let owned = |list: &[(u64, &str)]| -> Vec<(u64, String)> {
            list.iter().map(|(ms, id)| (*ms, id.to_string())).collect()
        };
        assert_eq!(due(&indexes), owned(&[(30, "a"), (30, "d"), (40, "b")]));
        assert_eq!(indexes.earliest_deadline(), Some(30));

        let user = |id: &str| UserId::new(id).unwrap();
        indexes.apply(IndexWrites {
            deadlines: vec![
                (25, DeadlineWrite::Insert { placed: 1 }),
                (30, DeadlineWrite::Remove(boxed("a"))),
            ],
            user_orders: vec![(user("u4"), 10, boxed("e")), (user("u1"), 11, boxed("f"))],
        });
        assert_eq!(due(&indexes), owned(&[(25, "f"), (30, "d"), (40, "b")]));
        assert_eq!(indexes.reserved(), 3);
        assert_eq!(indexes.len(), 3 + 6);
    }
}
