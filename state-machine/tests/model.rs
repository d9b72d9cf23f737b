//! Random command sequences applied to the sled store and to a small reference model written
//! here, independently of the engine. After every batch the outcomes agree, the stored state
//! equals the model's, and the invariants of STATE_MACHINE.md hold.

mod common;

use common::*;
use proptest::prelude::*;
use state_machine::{
    Batch, Command, Effect, Event, EventKind, EventRead, EventSubject, Item, Items, Order,
    OrderStatus, Outcome, Payment, Qty, Refusal, SaleWindow, SalesCounts, Sku, SkuCreation, Store,
    SALES_BUCKET_MS,
};
use std::collections::BTreeMap;

const SKUS: [&str; 3] = ["A", "B", "C"];
const USERS: [&str; 4] = ["u1", "u2", "u3", "u4"];
const ORDERS: usize = 12;

#[derive(Default, Clone)]
struct Model {
    clock: u64,
    skus: BTreeMap<String, Sku>,
    orders: BTreeMap<String, Order>,
    /// Applied restocks: delta, the applying request's tag and the SKU it left.
    restocks: BTreeMap<(String, String), (i64, u64, Sku)>,
    /// Applied tagged patches: whether each changed its SKU, and the SKU it left.
    patches: BTreeMap<(String, u64), (bool, Sku)>,
}

impl Model {
    fn held(&self, sku: &str, user: &str) -> u64 {
        self.orders
            .values()
            .filter(|o| o.user_id.as_str() == user)
            .filter(|o| matches!(o.status, OrderStatus::Reserved | OrderStatus::Paid))
            .flat_map(|o| o.items.as_slice().iter())
            .filter(|i| i.sku.as_str() == sku)
            .map(|i| i.qty.get())
            .sum()
    }

    /// Expires a reservation whose deadline the clock has reached: the sweep does it, and
    /// (deadlines are exact) so does any command that finds one first.
    fn expire_if_due(&mut self, rev: u64, order_id: &str) {
        let clock = self.clock;
        let Some(o) = self
            .orders
            .get_mut(order_id)
            .filter(|o| o.status == OrderStatus::Reserved && o.expires_ms <= clock)
        else {
            return;
        };
        o.status = OrderStatus::Expired;
        o.updated_ms = clock;
        o.revision = rev;
        for item in o.items.as_slice() {
            let s = self.skus.get_mut(item.sku.as_str()).unwrap();
            s.reserved -= item.qty.get();
            s.available += item.qty.get();
            s.revision = rev;
        }
    }

    /// What a read shows of `order` now: expired once its deadline is reached.
    fn read(&self, order_id: &str) -> Option<Order> {
        let mut o = self.orders.get(order_id)?.clone();
        if o.status == OrderStatus::Reserved && o.expires_ms <= self.clock {
            o.status = OrderStatus::Expired;
            o.updated_ms = o.expires_ms;
        }
        Some(o)
    }

    fn step(&mut self, rev: u64, command: &Command) -> Outcome {
        let clock = self.clock;
        match command {
            Command::Pay { order_id, .. }
            | Command::Cancel { order_id }
            | Command::Refund { order_id, .. } => self.expire_if_due(rev, order_id.as_str()),
            _ => {}
        }
        match command {
            Command::CreateSku {
                sku,
                stock,
                per_user_limit,
                sale_window,
                request_tag,
            } => {
                let created = SkuCreation {
                    stock: *stock,
                    per_user_limit: *per_user_limit,
                    sale_window: *sale_window,
                };
                if let Some(s) = self.skus.get(sku.as_str()) {
                    if s.created == created {
                        if *request_tag != 0 && s.request_tag == *request_tag {
                            let mut fresh = s.clone();
                            fresh.total = *stock;
                            fresh.available = *stock;
                            fresh.reserved = 0;
                            fresh.sold = 0;
                            fresh.refunded = 0;
                            fresh.per_user_limit = *per_user_limit;
                            fresh.sale_window = *sale_window;
                            fresh.revision = s.created_revision;
                            return Outcome::Sku {
                                sku: fresh,
                                effect: Effect::Applied,
                            };
                        }
                        return Outcome::Sku {
                            sku: s.clone(),
                            effect: Effect::Unchanged,
                        };
                    }
                    return Outcome::Refused(Refusal::SkuExists { sku: sku.clone() });
                }
                let s = Sku {
                    sku: sku.clone(),
                    total: *stock,
                    available: *stock,
                    reserved: 0,
                    sold: 0,
                    refunded: 0,
                    per_user_limit: *per_user_limit,
                    sale_window: *sale_window,
                    revision: rev,
                    created,
                    request_tag: *request_tag,
                    created_revision: rev,
                };
                self.skus.insert(sku.to_string(), s.clone());
                Outcome::Sku {
                    sku: s,
                    effect: Effect::Applied,
                }
            }
            Command::Restock {
                sku,
                request_id,
                delta,
                request_tag,
            } => {
                let Some(s) = self.skus.get_mut(sku.as_str()) else {
                    return Outcome::Refused(Refusal::SkuNotFound { sku: sku.clone() });
                };
                let key = (sku.to_string(), request_id.to_string());
                if let Some((applied, tag, after)) = self.restocks.get(&key) {
                    let applied = *applied;
                    if applied == *delta {
                        if *request_tag != 0 && tag == request_tag {
                            return Outcome::Sku {
                                sku: after.clone(),
                                effect: Effect::Applied,
                            };
                        }
                        return Outcome::Sku {
                            sku: s.clone(),
                            effect: Effect::Unchanged,
                        };
                    }
                    return Outcome::Refused(Refusal::RequestIdConflict {
                        sku: sku.clone(),
                        request_id: request_id.clone(),
                        applied_delta: applied,
                    });
                }
                if *delta < 0 && (s.available as i64) < -delta {
                    return Outcome::Refused(Refusal::InsufficientAvailable {
                        sku: sku.clone(),
                        available: s.available,
                        requested: delta.unsigned_abs(),
                    });
                }
                s.total = (s.total as i64 + delta) as u64;
                s.available = (s.available as i64 + delta) as u64;
                s.revision = rev;
                self.restocks.insert(key, (*delta, *request_tag, s.clone()));
                Outcome::Sku {
                    sku: s.clone(),
                    effect: Effect::Applied,
                }
            }
            Command::UpdateSku {
                sku,
                per_user_limit,
                sale_window,
                request_tag,
            } => {
                let Some(s) = self.skus.get_mut(sku.as_str()) else {
                    return Outcome::Refused(Refusal::SkuNotFound { sku: sku.clone() });
                };
                let key = (sku.to_string(), *request_tag);
                if *request_tag != 0 {
                    if let Some((changed, after)) = self.patches.get(&key) {
                        return Outcome::Sku {
                            sku: after.clone(),
                            effect: if *changed {
                                Effect::Applied
                            } else {
                                Effect::Unchanged
                            },
                        };
                    }
                }
                let before = (s.per_user_limit, s.sale_window);
                if let Some(l) = per_user_limit {
                    s.per_user_limit = *l;
                }
                if let Some(w) = sale_window {
                    s.sale_window = *w;
                }
                let changed = (s.per_user_limit, s.sale_window) != before;
                if changed {
                    s.revision = rev;
                }
                if *request_tag != 0 {
                    self.patches.insert(key, (changed, s.clone()));
                }
                Outcome::Sku {
                    sku: s.clone(),
                    effect: if changed {
                        Effect::Applied
                    } else {
                        Effect::Unchanged
                    },
                }
            }
            Command::PlaceOrder {
                order_id,
                user_id,
                items,
                ttl_ms,
                request_tag,
            } => {
                if let Some(o) = self.orders.get(order_id.as_str()) {
                    let mut a: Vec<_> = o.items.as_slice().to_vec();
                    let mut b: Vec<_> = items.as_slice().to_vec();
                    a.sort_by(|x, y| x.sku.cmp(&y.sku));
                    b.sort_by(|x, y| x.sku.cmp(&y.sku));
                    if o.user_id == *user_id && a == b {
                        self.expire_if_due(rev, order_id.as_str());
                        let o = &self.orders[order_id.as_str()];
                        let own = *request_tag != 0 && o.request_tag == *request_tag;
                        return Outcome::Order {
                            order: o.clone(),
                            effect: if own {
                                Effect::Applied
                            } else {
                                Effect::Unchanged
                            },
                        };
                    }
                    return Outcome::Refused(Refusal::OrderIdConflict {
                        order_id: order_id.clone(),
                    });
                }
                for item in items.as_slice() {
                    let Some(s) = self.skus.get(item.sku.as_str()) else {
                        return Outcome::Refused(Refusal::SkuNotFound {
                            sku: item.sku.clone(),
                        });
                    };
                    if let Some(w) = s.sale_window {
                        if clock < w.start_ms || clock >= w.end_ms {
                            return Outcome::Refused(Refusal::SaleNotActive {
                                sku: item.sku.clone(),
                                start_ms: w.start_ms,
                                end_ms: w.end_ms,
                            });
                        }
                    }
                    let held = self.held(item.sku.as_str(), user_id.as_str());
                    if let Some(limit) = s.per_user_limit {
                        if held + item.qty.get() > limit {
                            return Outcome::Refused(Refusal::PerUserLimitExceeded {
                                sku: item.sku.clone(),
                                limit,
                                held,
                                requested: item.qty.get(),
                            });
                        }
                    }
                    if s.available < item.qty.get() {
                        return Outcome::Refused(Refusal::OutOfStock {
                            sku: item.sku.clone(),
                            available: s.available,
                            requested: item.qty.get(),
                        });
                    }
                }
                for item in items.as_slice() {
                    let s = self.skus.get_mut(item.sku.as_str()).unwrap();
                    s.available -= item.qty.get();
                    s.reserved += item.qty.get();
                    s.revision = rev;
                }
                let o = Order {
                    order_id: order_id.clone(),
                    user_id: user_id.clone(),
                    items: items.clone(),
                    status: OrderStatus::Reserved,
                    created_ms: clock,
                    expires_ms: clock + ttl_ms,
                    updated_ms: clock,
                    payment_ref: None,
                    revision: rev,
                    request_tag: *request_tag,
                    paid: None,
                };
                self.orders.insert(order_id.to_string(), o.clone());
                Outcome::Order {
                    order: o,
                    effect: Effect::Applied,
                }
            }
            Command::Pay {
                order_id,
                payment_ref,
                request_tag,
            } => {
                if let Some(o) = self.orders.get(order_id.as_str()) {
                    if let Some(p) = o
                        .paid
                        .as_ref()
                        .filter(|p| *request_tag != 0 && p.request_tag == *request_tag)
                    {
                        let mut answer = o.clone();
                        answer.status = OrderStatus::Paid;
                        answer.updated_ms = p.at_ms;
                        answer.revision = p.revision;
                        return Outcome::Order {
                            order: answer,
                            effect: Effect::Applied,
                        };
                    }
                }
                let mut outcome = self.transition(rev, order_id.as_str(), |o| match o.status {
                    OrderStatus::Reserved => Ok(Some((OrderStatus::Paid, payment_ref.clone()))),
                    OrderStatus::Paid => Ok(None),
                    _ => Err(()),
                });
                if let Outcome::Order {
                    order,
                    effect: Effect::Applied,
                } = &mut outcome
                {
                    order.paid = Some(Payment {
                        request_tag: *request_tag,
                        at_ms: clock,
                        revision: rev,
                    });
                    self.orders.insert(order_id.to_string(), order.clone());
                }
                outcome
            }
            Command::Cancel { order_id } => {
                self.transition(rev, order_id.as_str(), |o| match o.status {
                    OrderStatus::Reserved => {
                        Ok(Some((OrderStatus::Cancelled, o.payment_ref.clone())))
                    }
                    OrderStatus::Cancelled | OrderStatus::Expired => Ok(None),
                    _ => Err(()),
                })
            }
            Command::Refund { order_id, restock } => {
                let target = OrderStatus::Refunded;
                let restock = *restock;
                let outcome = self.transition(rev, order_id.as_str(), |o| match o.status {
                    OrderStatus::Paid => Ok(Some((target, o.payment_ref.clone()))),
                    OrderStatus::Refunded => Ok(None),
                    _ => Err(()),
                });
                if let Outcome::Order {
                    order,
                    effect: Effect::Applied,
                } = &outcome
                {
                    for item in order.items.as_slice() {
                        let s = self.skus.get_mut(item.sku.as_str()).unwrap();
                        if restock {
                            s.available += item.qty.get();
                        } else {
                            s.total -= item.qty.get();
                        }
                    }
                }
                outcome
            }
            Command::Expire => {
                let mut due: Vec<(u64, String)> = self
                    .orders
                    .values()
                    .filter(|o| o.status == OrderStatus::Reserved && o.expires_ms <= clock)
                    .map(|o| (o.expires_ms, o.order_id.to_string()))
                    .collect();
                due.sort();
                for (_, id) in &due {
                    self.expire_if_due(rev, id);
                }
                Outcome::Expired {
                    orders: due.len() as u64,
                }
            }
        }
    }

    /// Pay, cancel and refund: `decide` says the new status (and payment ref), a no-op, or
    /// an invalid transition. Counter moves for reserved -> paid/cancelled and paid ->
    /// refunded live here; refund's restock choice is applied by the caller.
    fn transition(
        &mut self,
        rev: u64,
        id: &str,
        decide: impl Fn(&Order) -> Result<Option<(OrderStatus, Option<state_machine::PaymentRef>)>, ()>,
    ) -> Outcome {
        let Some(o) = self.orders.get(id).cloned() else {
            return Outcome::Refused(Refusal::OrderNotFound { order_id: oid(id) });
        };
        match decide(&o) {
            Err(()) => Outcome::Refused(Refusal::InvalidTransition {
                order_id: o.order_id.clone(),
                status: o.status,
            }),
            Ok(None) => Outcome::Order {
                order: o,
                effect: Effect::Unchanged,
            },
            Ok(Some((status, payment_ref))) => {
                for item in o.items.as_slice() {
                    let s = self.skus.get_mut(item.sku.as_str()).unwrap();
                    let q = item.qty.get();
                    match (o.status, status) {
                        (OrderStatus::Reserved, OrderStatus::Paid) => {
                            s.reserved -= q;
                            s.sold += q;
                        }
                        (OrderStatus::Reserved, _) => {
                            s.reserved -= q;
                            s.available += q;
                        }
                        (OrderStatus::Paid, _) => {
                            s.sold -= q;
                            s.refunded += q;
                        }
                        _ => unreachable!(),
                    }
                    s.revision = rev;
                }
                let o = self.orders.get_mut(id).unwrap();
                o.status = status;
                o.payment_ref = payment_ref;
                o.updated_ms = self.clock;
                o.revision = rev;
                Outcome::Order {
                    order: o.clone(),
                    effect: Effect::Applied,
                }
            }
        }
    }
}

fn arb_items() -> impl Strategy<Value = Items> {
    (
        prop::sample::subsequence(SKUS.to_vec(), 1..=2).prop_shuffle(),
        prop::collection::vec(1u64..=4, 2),
    )
        .prop_map(|(skus, qtys)| {
            let lines = skus
                .into_iter()
                .zip(qtys)
                .map(|(s, q)| Item {
                    sku: sku(s),
                    qty: Qty::new(q).unwrap(),
                })
                .collect();
            Items::new(lines).unwrap()
        })
}

fn arb_window() -> impl Strategy<Value = Option<SaleWindow>> {
    prop::option::weighted(
        0.2,
        (0u64..4_000, 1u64..6_000).prop_map(|(a, len)| SaleWindow::new(a, a + len).unwrap()),
    )
}

fn arb_command() -> impl Strategy<Value = Command> {
    let sku_ = prop::sample::select(SKUS.to_vec());
    let user = prop::sample::select(USERS.to_vec());
    let order_id = (0..ORDERS).prop_map(|i| format!("o{i}"));
    prop_oneof![
        1 => (sku_.clone(), 0u64..15, prop::option::weighted(0.4, 1u64..4), arb_window(), 0u64..3)
            .prop_map(|(s, stock, limit, window, tag)| Command::CreateSku { sku: sku(s), stock, per_user_limit: limit, sale_window: window, request_tag: tag }),
        1 => (sku_.clone(), 0u8..4, prop_oneof![-6i64..0, 1i64..8], 0u64..3)
            .prop_map(|(s, r, delta, tag)| tagged(restock(s, &format!("r{r}"), delta), tag)),
        1 => (sku_.clone(), prop::option::of(prop::option::of(1u64..4)), prop::option::of(arb_window()), 0u64..3)
            .prop_map(|(s, limit, window, tag)| Command::UpdateSku { sku: sku(s), per_user_limit: limit, sale_window: window, request_tag: tag }),
        6 => (order_id.clone(), user, arb_items(), 1_000u64..3_000, 0u64..3)
            .prop_map(|(id, u, items, ttl_ms, tag)| Command::PlaceOrder { order_id: oid(&id), user_id: uid(u), items, ttl_ms, request_tag: tag }),
        2 => (order_id.clone(), prop::option::of("p[0-9]"), 0u64..3).prop_map(|(id, r, tag)| tagged(pay(&id, r.as_deref()), tag)),
        2 => order_id.clone().prop_map(|id| cancel(&id)),
        2 => (order_id, any::<bool>()).prop_map(|(id, r)| refund(&id, r)),
        1 => Just(Command::Expire),
    ]
}

/// A batch: clock moves (sometimes backwards: a new leader's clock may lag; now and then a
/// minute or two ahead, so sales buckets roll over) and commands.
fn arb_batches() -> impl Strategy<Value = Vec<(i64, Vec<Command>)>> {
    let step = prop_oneof![9 => -300i64..1_500, 1 => 50_000i64..130_000];
    prop::collection::vec((step, prop::collection::vec(arb_command(), 1..4)), 1..40)
}

/// The events `command` should have made, told from how it changed the model: a new or
/// restocked or re-set SKU, and each order that is new or changed status (the sweep's in
/// deadline order, which is also id order within one deadline).
fn expected_events(before: &Model, after: &Model, command: &Command, rev: u64) -> Vec<Event> {
    let mut events = Vec::new();
    let mut push = |kind, subject| {
        events.push(Event {
            id: 0,
            kind,
            time_ms: after.clock,
            revision: rev,
            subject,
        })
    };
    match command {
        Command::CreateSku { sku, .. } if !before.skus.contains_key(sku.as_str()) => push(
            EventKind::SkuCreated,
            EventSubject::Sku(after.skus[sku.as_str()].clone()),
        ),
        Command::Restock {
            sku, request_id, ..
        } if after.restocks.len() > before.restocks.len() => {
            let key = (sku.to_string(), request_id.to_string());
            push(
                EventKind::SkuRestocked,
                EventSubject::Sku(after.restocks[&key].2.clone()),
            )
        }
        Command::UpdateSku { sku, .. } => {
            if let (Some(old), Some(new)) =
                (before.skus.get(sku.as_str()), after.skus.get(sku.as_str()))
            {
                if (old.per_user_limit, old.sale_window) != (new.per_user_limit, new.sale_window) {
                    push(EventKind::SkuUpdated, EventSubject::Sku(new.clone()))
                }
            }
        }
        _ => {}
    }
    let mut changed: Vec<&Order> = after
        .orders
        .values()
        .filter(|o| before.orders.get(o.order_id.as_str()).map(|b| b.status) != Some(o.status))
        .collect();
    changed.sort_by(|a, b| (a.expires_ms, &a.order_id).cmp(&(b.expires_ms, &b.order_id)));
    for order in changed {
        push(
            EventKind::of_order_status(order.status),
            EventSubject::Order(order.clone()),
        );
    }
    events
}

fn all_events(store: &Store) -> Vec<Event> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let EventRead::Page(page) = store.read_events(after, 7).unwrap() else {
            panic!("nothing is compacted under the default retention");
        };
        if page.events.is_empty() {
            assert_eq!(page.next, after);
            assert_eq!(
                page.head, after,
                "a read past the last event is at the head"
            );
            return events;
        }
        after = page.next;
        events.extend(page.events);
    }
}

/// The sales buckets the events imply, and the counters the buckets must add up to.
fn check_sales(store: &Store, model: &Model, events: &[Event]) {
    let mut expected: BTreeMap<(String, u64), SalesCounts> = BTreeMap::new();
    for event in events {
        if let EventSubject::Order(order) = &event.subject {
            for item in order.items.as_slice() {
                let start = event.time_ms - event.time_ms % SALES_BUCKET_MS;
                expected
                    .entry((item.sku.to_string(), start))
                    .or_default()
                    .add(event.kind, item.qty.get());
            }
        }
    }
    for (name, s) in &model.skus {
        let buckets = store.sales(&sku(name), 0, u64::MAX).unwrap().unwrap();
        let stored: BTreeMap<_, _> = buckets
            .iter()
            .map(|b| ((name.clone(), b.start_ms), b.counts))
            .collect();
        let implied: BTreeMap<_, _> = expected
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        assert_eq!(stored, implied, "sales buckets of {name}");
        let sum = |f: fn(&SalesCounts) -> u64| buckets.iter().map(|b| f(&b.counts)).sum::<u64>();
        let (reserved, paid, cancelled, expired, refunded) = (
            sum(|c| c.reserved),
            sum(|c| c.paid),
            sum(|c| c.cancelled),
            sum(|c| c.expired),
            sum(|c| c.refunded),
        );
        assert_eq!(
            reserved - paid - cancelled - expired,
            s.reserved,
            "reserved of {name}"
        );
        assert_eq!(paid - refunded, s.sold, "sold of {name}");
        assert_eq!(refunded, s.refunded, "refunded of {name}");
    }
}

fn check_invariants(store: &Store, model: &Model) {
    for name in SKUS {
        let stored = store.get_sku(&sku(name)).unwrap();
        assert_eq!(stored.as_ref(), model.skus.get(name), "sku {name}");
        let Some(s) = stored else { continue };
        assert_eq!(
            s.available + s.reserved + s.sold,
            s.total,
            "balance of {name}"
        );
        let mut reserved = 0;
        let mut sold = 0;
        // Counters follow the orders as stored: an order past its deadline holds its units
        // until a command or the sweep expires it, though reads show it expired.
        for o in model.orders.values() {
            for item in o.items.as_slice().iter().filter(|i| i.sku.as_str() == name) {
                match o.status {
                    OrderStatus::Reserved => reserved += item.qty.get(),
                    OrderStatus::Paid => sold += item.qty.get(),
                    _ => {}
                }
            }
        }
        assert_eq!(
            (s.reserved, s.sold),
            (reserved, sold),
            "order sums of {name}"
        );
        for user in USERS {
            assert_eq!(
                store.held(&sku(name), &uid(user)).unwrap(),
                model.held(name, user),
                "holds {name}/{user}"
            );
        }
    }
    for i in 0..ORDERS {
        let id = format!("o{i}");
        assert_eq!(
            store.get_order(&oid(&id)).unwrap(),
            model.read(&id),
            "order {id}"
        );
    }
    let due = model
        .orders
        .values()
        .filter(|o| o.status == OrderStatus::Reserved)
        .map(|o| o.expires_ms)
        .min();
    assert_eq!(store.earliest_deadline().unwrap(), due);
    for user in USERS {
        let mut expected: Vec<Order> = model
            .orders
            .values()
            .filter(|o| o.user_id.as_str() == user)
            .filter_map(|o| model.read(o.order_id.as_str()))
            .collect();
        expected.sort_by(|a, b| {
            b.created_ms
                .cmp(&a.created_ms)
                .then(a.order_id.cmp(&b.order_id))
        });
        let listed = store.list_user_orders(&uid(user), 100).unwrap();
        assert_eq!(listed, expected, "orders of {user}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, .. ProptestConfig::default() })]

    #[test]
    fn store_agrees_with_the_reference_model(batches in arb_batches()) {
        // Two events held: the others move out of memory after each checkpoint, and every
        // read below must still find them.
        let store = temp_store().with_events_held(2).unwrap();
        let mut model = Model::default();
        let mut events: Vec<Event> = Vec::new();
        let mut now: u64 = 10_000;
        for (index, (step, commands)) in batches.into_iter().enumerate() {
            let index = index as u64 + 1;
            now = now.saturating_add_signed(step);
            model.clock = model.clock.max(now);
            let batch = Batch { now_ms: now, commands };
            let outcomes = store.apply(&[(index, &batch)], None).unwrap().remove(0);
            for (command, outcome) in batch.commands.iter().zip(outcomes) {
                let before = model.clone();
                let expected = model.step(index, command);
                prop_assert_eq!(outcome, expected, "command {:?}", command);
                for mut event in expected_events(&before, &model, command, index) {
                    event.id = events.len() as u64 + 1;
                    events.push(event);
                }
            }
            if index.is_multiple_of(3) {
                store.checkpoint().unwrap();
            }
            check_invariants(&store, &model);
            prop_assert_eq!(&all_events(&store), &events);
            check_sales(&store, &model, &events);
        }
    }
}
