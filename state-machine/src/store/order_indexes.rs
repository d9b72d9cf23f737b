//! The deadline and user indexes of the orders. They follow from the orders alone, so they
//! are never written to disk or into a snapshot: rebuilt when the state is loaded, and left
//! out of the copy a snapshot export takes. Nothing copies them, so they are plain maps, not
//! persistent ones. As ordered persistent sets of byte keys they took about a seventh of
//! apply's instructions (callgrind, 10,000 SKUs): two inserts an order, each a search that
//! compares keys on the heap. Here a new order is a push into the bucket of its deadline's
//! millisecond and into its user's list, found by one hash.

use std::cmp::Ordering;
use std::collections::btree_map::{BTreeMap, Entry};

type UserMap = hashbrown::HashMap<Box<str>, Vec<(u64, Box<str>)>, foldhash::fast::RandomState>;

/// Reserved orders by deadline. A bucket's ids are in no order (inserts are pushes); what
/// reads them in order (`due`) sorts the bucket it reaches.
#[derive(Default)]
pub(crate) struct Deadlines {
    by_ms: BTreeMap<u64, Vec<Box<str>>>,
    len: usize,
}

impl Deadlines {
    /// Each order has one deadline and enters the index once, when it is placed.
    pub fn insert(&mut self, expires_ms: u64, order_id: Box<str>) {
        let bucket = self.by_ms.entry(expires_ms).or_default();
        debug_assert!(!bucket.contains(&order_id), "a deadline entered twice");
        bucket.push(order_id);
        self.len += 1;
    }

    /// Removes the entry if there is one (an order placed and closed in one apply never
    /// entered the index).
    pub fn remove(&mut self, expires_ms: u64, order_id: &str) {
        let Entry::Occupied(mut bucket) = self.by_ms.entry(expires_ms) else {
            return;
        };
        let Some(at) = bucket.get().iter().position(|id| &**id == order_id) else {
            return;
        };
        bucket.get_mut().swap_remove(at);
        self.len -= 1;
        if bucket.get().is_empty() {
            bucket.remove();
        }
    }

    pub fn earliest(&self) -> Option<u64> {
        self.by_ms.keys().next().copied()
    }

    /// The entries with a deadline before `end`, by deadline, then id.
    pub fn before(&self, end: u64) -> impl Iterator<Item = (u64, &str)> {
        self.by_ms.range(..end).flat_map(|(&ms, ids)| {
            let mut ids: Vec<&str> = ids.iter().map(|id| &**id).collect();
            ids.sort_unstable();
            ids.into_iter().map(move |id| (ms, id))
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

/// Every order's id under its user, newest first as the API lists them.
#[derive(Default)]
pub(crate) struct UserOrders {
    /// Per user, `(created_ms, order id)` ascending by `created_ms` and, within one
    /// millisecond, descending by id: read backwards, newest first with ties by id
    /// ascending. A new order's `created_ms` is the clock, never behind the user's others,
    /// so it lands at or near the end.
    by_user: UserMap,
    len: usize,
}

impl UserOrders {
    pub fn insert(&mut self, user: &str, created_ms: u64, order_id: Box<str>) {
        let list = self
            .by_user
            .entry_ref(user)
            // One order per user is the common case: no room for four.
            .or_insert_with(|| Vec::with_capacity(1));
        let entry = (created_ms, order_id);
        let at = list.partition_point(|held| list_order(held, &entry) == Ordering::Less);
        list.insert(at, entry);
        self.len += 1;
    }

    /// `user`'s order ids, newest `created_ms` first, ties by id ascending.
    pub fn newest_first(&self, user: &str) -> impl Iterator<Item = &str> {
        self.by_user
            .get(user)
            .into_iter()
            .flat_map(|list| list.iter().rev().map(|(_, id)| &**id))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Builds the index from every order at once: each list sorted once, not kept sorted
    /// through one insert per order.
    pub fn from_unsorted(entries: impl IntoIterator<Item = (Box<str>, u64, Box<str>)>) -> Self {
        let mut index = Self::default();
        for (user, created_ms, order_id) in entries {
            index
                .by_user
                .entry(user)
                .or_insert_with(|| Vec::with_capacity(1))
                .push((created_ms, order_id));
            index.len += 1;
        }
        for list in index.by_user.values_mut() {
            list.sort_unstable_by(list_order);
            // Growth by pushes left room that most users' lists never fill.
            list.shrink_to_fit();
        }
        index
    }
}

/// The order of a user's list: ascending by `created_ms`, then descending by id.
fn list_order(a: &(u64, Box<str>), b: &(u64, Box<str>)) -> Ordering {
    a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1))
}

/// One apply's changes to the indexes, each order's at most once.
#[derive(Default)]
pub(crate) struct IndexWrites {
    /// `(deadline, order id, insert)`: `false` removes.
    pub deadlines: Vec<(u64, Box<str>, bool)>,
    /// `(user, created_ms, order id)`: user index entries are never removed.
    pub user_orders: Vec<(Box<str>, u64, Box<str>)>,
}

#[derive(Default)]
pub(crate) struct OrderIndexes {
    pub deadlines: Deadlines,
    pub user_orders: UserOrders,
}

impl OrderIndexes {
    pub fn apply(&mut self, writes: IndexWrites) {
        for (expires_ms, order_id, insert) in writes.deadlines {
            if insert {
                self.deadlines.insert(expires_ms, order_id);
            } else {
                self.deadlines.remove(expires_ms, &order_id);
            }
        }
        for (user, created_ms, order_id) in writes.user_orders {
            self.user_orders.insert(&user, created_ms, order_id);
        }
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
                index.remove(ms, &id);
                model.remove(&(ms, id));
            } else if !model.iter().any(|(_, held)| *held == id) {
                index.insert(ms, boxed(&id));
                model.insert((ms, id));
            }
            assert_eq!(index.len(), model.len());
        }
        assert!(model.len() > 20, "the walk left too few entries to compare");
        for end in [0, 100, 103, 108, 116, u64::MAX] {
            let listed: Vec<(u64, String)> = index
                .before(end)
                .map(|(ms, id)| (ms, id.to_string()))
                .collect();
            let expected: Vec<(u64, String)> =
                model.iter().filter(|(ms, _)| *ms < end).cloned().collect();
            assert_eq!(listed, expected, "before {end}");
        }
        assert_eq!(index.earliest(), model.first().map(|(ms, _)| *ms));
        index.remove(1, "absent");
        index.remove(model.first().unwrap().0, "absent");
        assert_eq!(index.len(), model.len());
    }

    #[test]
    fn a_users_orders_list_newest_first_ties_by_id() {
        let mut index = UserOrders::default();
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

        let rebuilt = UserOrders::from_unsorted(
            [(9, "z"), (5, "c"), (7, "a"), (5, "a"), (7, "c"), (5, "b")]
                .into_iter()
                .map(|(created, id)| (boxed("u1"), created, boxed(id))),
        );
        assert_eq!(rebuilt.newest_first("u1").collect::<Vec<_>>(), listed);
        assert_eq!(rebuilt.len(), 6);
    }
}
