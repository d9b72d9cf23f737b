//! Order ids the leader has proposed whose entries have not come back from apply. A retry of
//! such an order must wait for its first attempt's entry (through the log), never be answered
//! from the state before it: see `state_machine::Store::refusals_as_reads`.
//!
//! Ids are kept as 64-bit hashes: a collision only sends an order through the log, which is
//! always correct, and a hash costs no allocation per order. The hash is foldhash's, seeded
//! per process, and the map keyed by it hashes its keys with foldhash's fast hasher: with
//! std's SipHash for both, hashing an id twice over was 2 % of the leader's samples under
//! batches (`perf`), a fifth of the work this set adds to each order.

use state_machine::{Command, OrderId};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

/// The map's own hasher: its keys are already uniform hashes, so the cheapest mixing does.
type Counts = HashMap<u64, u32, foldhash::fast::FixedState>;

#[derive(Clone, Default)]
pub struct InFlightOrders {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    ids: foldhash::quality::RandomState,
    counts: Mutex<Counts>,
}

/// Holds its orders in flight until dropped: the proposer drops it once the entry's apply
/// has answered (or the entry can no longer be applied by this leader's term).
pub struct Entered {
    set: InFlightOrders,
    keys: Vec<u64>,
}

impl InFlightOrders {
    /// Marks the orders among `commands` in flight.
    pub fn enter(&self, commands: &[Command]) -> Entered {
        let keys: Vec<u64> = commands
            .iter()
            .filter_map(|c| match c {
                Command::PlaceOrder { order_id, .. } => Some(self.key(order_id)),
                _ => None,
            })
            .collect();
        if !keys.is_empty() {
            let mut counts = self.lock();
            for k in &keys {
                *counts.entry(*k).or_default() += 1;
            }
        }
        Entered {
            set: self.clone(),
            keys,
        }
    }

    pub fn contains(&self, order_id: &OrderId) -> bool {
        self.lock().contains_key(&self.key(order_id))
    }

    fn key(&self, order_id: &OrderId) -> u64 {
        self.shared.ids.hash_one(order_id.as_str())
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.shared
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        if self.keys.is_empty() {
            return;
        }
        let mut counts = self.set.lock();
        for k in &self.keys {
            if let Some(n) = counts.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(k);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state_machine::{Item, Items, Qty, SkuId, UserId};

    fn place(id: &str) -> Command {
        Command::PlaceOrder {
            order_id: OrderId::new(id).unwrap(),
            user_id: UserId::new("u").unwrap(),
            items: Items::new(vec![Item {
                sku: SkuId::new("A").unwrap(),
                qty: Qty::new(1).unwrap(),
            }])
            .unwrap(),
            ttl_ms: 60_000,
            request_tag: 0,
        }
    }

    #[test]
    fn an_order_stays_in_flight_until_every_proposal_of_it_is_done() {
        let set = InFlightOrders::default();
        let id = OrderId::new("o1").unwrap();
        let first = set.enter(&[place("o1"), Command::Expire]);
        let retry = set.enter(&[place("o1")]);
        assert!(set.contains(&id));
        drop(first);
        assert!(set.contains(&id), "the retry is still in flight");
        drop(retry);
        assert!(!set.contains(&id));
        assert!(set.lock().is_empty());
    }
}
