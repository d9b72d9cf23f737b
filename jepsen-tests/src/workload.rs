//! What the clients ask: four workloads over small sets of SKUs that rotate, so no history
//! the linearizability search must take in one piece grows past what it handles in seconds.
//!
//! - `register`: 4 SKUs of stock 5–8; single-item orders (qty 1–2), pay, cancel, refund,
//!   restock (mostly positive, sometimes a withdrawal), and many SKU and order reads.
//! - `flash-sale`: 2 SKUs of stock 10, each with a per-user limit of 3, and demand far beyond
//!   it (mostly orders of 1) from 4 buyers, so both `out_of_stock` and
//!   `per_user_limit_exceeded` refusals happen.
//! - `retry`: `register`, and a write that ended `info` is resent with the same ids
//!   (order id, restock request id) by the client's next process, up to 4 times.
//! - `multi-item`: 6 SKUs of stock 20 in two groups of 3; orders of 2–3 items within one
//!   group, so the linearizability search checks each group (SKUs joined by orders) as one
//!   piece of about half the generation's ops; atomicity is checked on every order answer and
//!   the final reads too.
//! - `short-ttl`: `register`'s SKUs, orders reserved for 2–5 s only, and pays, cancels and
//!   order reads aimed mostly at orders within a second of their deadline, so that they race
//!   the expiry. The model has no expiry, so no linearizability search: the deadline checks
//!   (`deadlines`), the invariants and the final reads judge it.
//! - `sale-window`: `flash-sale`'s buyers and limit on 3 SKUs of stock 6, each generation's
//!   SKUs on sale only from 2.5 s after the generation starts for 4 s; its generation lasts
//!   9 s, so orders are refused `sale_not_active` before the window, reserve (or run into the
//!   stock and the limit) within it, and are refused again after it. The model judges the
//!   window on the harness's wall clock (`sale_window`).
//!
//! SKUs of generation G are `gG-sK`; a generation ends after a number of ops or 10 s
//! (`sale-window`: 9 s, whatever the number of ops, so that every window closes). A client
//! about to use a SKU no client has yet seen exist creates it first, with a recorded
//! (idempotent) `create_sku`. A client cut off from the majority still reads SKUs the others
//! created: a correct cluster refuses (503), a stale one answers "not found" or old counters.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use crate::history::{Input, Item, Op, Output};
use crate::model::OrderStatus;
use crate::rng::Rng;
use crate::sale_window::SaleWindow;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Register,
    FlashSale,
    Retry,
    MultiItem,
    ShortTtl,
    SaleWindow,
}

impl Workload {
    pub const ALL: [Workload; 6] = [
        Workload::Register,
        Workload::FlashSale,
        Workload::Retry,
        Workload::MultiItem,
        Workload::ShortTtl,
        Workload::SaleWindow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::FlashSale => "flash-sale",
            Workload::Retry => "retry",
            Workload::MultiItem => "multi-item",
            Workload::ShortTtl => "short-ttl",
            Workload::SaleWindow => "sale-window",
        }
    }

    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }

    /// Whether every op touches one SKU (else multi-item atomicity is checked too).
    pub fn single_sku(self) -> bool {
        self != Workload::MultiItem
    }

    /// Whether the linearizability model judges this workload's histories: not `short-ttl`'s,
    /// because the model has no expiry (the deadline checks judge those).
    pub fn modelled(self) -> bool {
        self != Workload::ShortTtl
    }

    /// Whether an `info` write is resent with the same ids.
    pub fn retries(self) -> bool {
        self == Workload::Retry
    }

    fn skus_per_generation(self) -> usize {
        match self {
            Workload::Register | Workload::Retry | Workload::ShortTtl => 4,
            Workload::FlashSale => 2,
            Workload::MultiItem => MULTI_ITEM_GROUP * 2,
            Workload::SaleWindow => 3,
        }
    }

    /// Each flash-sale (and sale-window) buyer may hold at most this many units of a SKU.
    fn per_user_limit(self) -> Option<u64> {
        matches!(self, Workload::FlashSale | Workload::SaleWindow).then_some(FLASH_SALE_LIMIT)
    }

    fn ops_per_generation(self) -> u64 {
        match self {
            Workload::Register | Workload::Retry | Workload::ShortTtl => 600,
            Workload::FlashSale => 300,
            Workload::MultiItem => 600,
            // Ended by time alone: a window cut short by a fast run would never close.
            Workload::SaleWindow => u64::MAX,
        }
    }

    fn generation_time(self) -> Duration {
        match self {
            Workload::SaleWindow => SALE_GENERATION_TIME,
            _ => GENERATION_TIME,
        }
    }

    fn stock(self, rng: &mut Rng) -> u64 {
        match self {
            Workload::Register | Workload::Retry | Workload::ShortTtl => rng.range(5, 8),
            Workload::FlashSale => 10,
            Workload::MultiItem => 20,
            Workload::SaleWindow => SALE_STOCK,
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// SKUs per multi-item group: orders never span two groups. Small, because the search checks
/// a group's ops as one history and its state holds every order of the group.
const MULTI_ITEM_GROUP: usize = 3;
/// Flash-sale buyers: few, so their per-user limit is reached.
const FLASH_SALE_USERS: u64 = 4;
/// Flash-sale per-user limit: 4 buyers × 3 > 10 units, so stock runs out too.
const FLASH_SALE_LIMIT: u64 = 3;

/// The longest a SKU generation lasts.
const GENERATION_TIME: Duration = Duration::from_secs(10);
/// `sale-window`: the window opens this long after its generation starts (its SKUs are
/// created at their first use, just after), stays open this long, and the generation ends
/// this long after it closes. Each phase is longer than twice the checker's 1 s tolerance,
/// so each has orders the model judges strictly.
const SALE_OPENS_AFTER_MS: u64 = 2_500;
const SALE_OPEN_MS: u64 = 4_000;
const SALE_AFTER_MS: u64 = 2_500;
/// `sale-window`'s stock per SKU: below its 4 buyers' 3 units each, so a window sees both
/// `out_of_stock` and `per_user_limit_exceeded`.
const SALE_STOCK: u64 = 6;
const SALE_GENERATION_TIME: Duration =
    Duration::from_millis(SALE_OPENS_AFTER_MS + SALE_OPEN_MS + SALE_AFTER_MS);
/// Reservation TTL in every order but `short-ttl`'s: a day, so nothing expires during a run
/// (the model has no expiry).
pub const RESERVATION_TTL_MS: u64 = 86_400_000;
/// `short-ttl`'s reservation TTLs (API.md's minimum is 1 s).
pub const SHORT_TTL_MS: (u64, u64) = (2_000, 5_000);
/// `short-ttl` aims its transitions at orders whose deadline is at most this far away (either
/// side), by the harness's wall clock.
const RACE_WINDOW_MS: u64 = 1_000;

/// What the clients know about an order (from answers), to pick sensible transitions.
#[derive(Clone, Debug)]
struct KnownOrder {
    id: String,
    /// The SKU the order's transitions and reads are filed under (its first item's).
    sku: String,
    status: Option<OrderStatus>,
    /// The deadline its answers showed.
    expires_ms: Option<u64>,
}

/// State shared by all clients of a run.
pub struct Shared {
    workload: Workload,
    rng: Rng,
    generation: u64,
    generation_started: Instant,
    generation_ops: u64,
    skus: Vec<String>,
    stock: HashMap<String, u64>,
    limit: HashMap<String, u64>,
    sale_window: HashMap<String, SaleWindow>,
    orders: HashMap<String, Vec<KnownOrder>>,
    order_index: HashMap<String, (String, usize)>,
    /// SKUs some client saw exist (a 2xx on them): nobody needs to create them again.
    confirmed: HashSet<String>,
    next_id: u64,
}

impl Shared {
    pub fn new(workload: Workload, seed: u64) -> Shared {
        let mut shared = Shared {
            workload,
            rng: Rng::fork(seed, 0x776f_726b),
            generation: 0,
            generation_started: Instant::now(),
            generation_ops: 0,
            skus: Vec::new(),
            stock: HashMap::new(),
            limit: HashMap::new(),
            sale_window: HashMap::new(),
            orders: HashMap::new(),
            order_index: HashMap::new(),
            confirmed: HashSet::new(),
            next_id: 0,
        };
        shared.new_generation();
        shared
    }

    fn new_generation(&mut self) {
        self.generation += 1;
        self.generation_started = Instant::now();
        self.generation_ops = 0;
        self.skus = (1..=self.workload.skus_per_generation())
            .map(|k| format!("g{}-s{k}", self.generation))
            .collect();
        // On the wall clock, which the cluster's clock follows: the window is absolute.
        let opens = wall_ms() + SALE_OPENS_AFTER_MS;
        let window = SaleWindow {
            start_ms: opens,
            end_ms: opens + SALE_OPEN_MS,
        };
        for sku in &self.skus {
            let stock = self.workload.stock(&mut self.rng);
            self.stock.insert(sku.clone(), stock);
            if let Some(limit) = self.workload.per_user_limit() {
                self.limit.insert(sku.clone(), limit);
            }
            if self.workload == Workload::SaleWindow {
                self.sale_window.insert(sku.clone(), window);
            }
        }
    }

    /// The create every client sends for `sku` (one with other settings would conflict).
    pub fn create_input(&self, sku: &str) -> Input {
        let stock = self.stock_of(sku);
        let limit = self.limit.get(sku).copied();
        match (self.sale_window.get(sku), limit) {
            (Some(&window), _) => Input::create_sku_on_sale(sku, stock, limit, window),
            (None, Some(limit)) => Input::create_limited_sku(sku, stock, limit),
            (None, None) => Input::create_sku(sku, stock),
        }
    }

    /// The stock every client creates `sku` with (a create with other stock would conflict).
    pub fn stock_of(&self, sku: &str) -> u64 {
        self.stock.get(sku).copied().unwrap_or(0)
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    /// Chooses the next op of client `client`.
    pub fn next_op(&mut self, rng: &mut Rng, client: u32) -> Input {
        self.generation_ops += 1;
        if self.generation_ops > self.workload.ops_per_generation()
            || self.generation_started.elapsed() > self.workload.generation_time()
        {
            self.new_generation();
        }
        let user = format!("u{client}");
        let sku = rng.pick(&self.skus).clone();
        let roll = rng.below(100);
        match self.workload {
            Workload::Register | Workload::Retry => match roll {
                0..=34 => Input::read_sku(&sku),
                35..=44 => self.order_op(rng, &sku, OpChoice::Read),
                45..=69 => {
                    let id = self.fresh("o");
                    Input::order(&id, &user, &sku, rng.range(1, 2))
                }
                70..=79 => self.order_op(rng, &sku, OpChoice::Pay),
                80..=86 => self.order_op(rng, &sku, OpChoice::Cancel),
                87..=91 => self.order_op(rng, &sku, OpChoice::Refund),
                _ => {
                    let id = self.fresh("r");
                    let delta = if rng.percent(20) {
                        -1
                    } else {
                        rng.range(1, 3) as i64
                    };
                    Input::restock(&sku, &id, delta)
                }
            },
            Workload::FlashSale => match roll {
                0..=64 => {
                    let id = self.fresh("o");
                    let buyer = format!("u{}", rng.below(FLASH_SALE_USERS));
                    Input::order(&id, &buyer, &sku, 1)
                }
                65..=79 => Input::read_sku(&sku),
                80..=89 => self.order_op(rng, &sku, OpChoice::Pay),
                90..=93 => self.order_op(rng, &sku, OpChoice::Cancel),
                _ => self.order_op(rng, &sku, OpChoice::Read),
            },
            Workload::MultiItem => match roll {
                0..=24 => Input::read_sku(&sku),
                25..=34 => self.order_op(rng, &sku, OpChoice::Read),
                35..=69 => {
                    let id = self.fresh("o");
                    // The group of the SKU drawn above.
                    let at = self.skus.iter().position(|s| *s == sku).unwrap_or(0);
                    let first = at - at % MULTI_ITEM_GROUP;
                    let mut skus = self.skus[first..first + MULTI_ITEM_GROUP].to_vec();
                    rng.shuffle(&mut skus);
                    skus.truncate(rng.range(2, MULTI_ITEM_GROUP as u64) as usize);
                    Input::Order {
                        order_id: id,
                        user_id: user,
                        reservation_ttl_ms: None,
                        items: skus
                            .into_iter()
                            .map(|sku| Item {
                                sku,
                                qty: rng.range(1, 2),
                            })
                            .collect(),
                    }
                }
                70..=81 => self.order_op(rng, &sku, OpChoice::Pay),
                82..=91 => self.order_op(rng, &sku, OpChoice::Cancel),
                _ => self.order_op(rng, &sku, OpChoice::Refund),
            },
            Workload::SaleWindow => match roll {
                0..=49 => {
                    let id = self.fresh("o");
                    let buyer = format!("u{}", rng.below(FLASH_SALE_USERS));
                    Input::order(&id, &buyer, &sku, 1)
                }
                50..=64 => Input::read_sku(&sku),
                65..=77 => self.order_op(rng, &sku, OpChoice::Pay),
                // Cancels give units and the buyer's limit back for the rest of the window.
                78..=88 => self.order_op(rng, &sku, OpChoice::Cancel),
                89..=98 => self.order_op(rng, &sku, OpChoice::Read),
                // Rare, so that the window's demand (4 buyers of 3) still outruns the stock.
                _ => {
                    let id = self.fresh("r");
                    Input::restock(&sku, &id, 1)
                }
            },
            Workload::ShortTtl => match roll {
                0..=14 => Input::read_sku(&sku),
                15..=39 => self.order_op(rng, &sku, OpChoice::Read),
                40..=64 => {
                    let id = self.fresh("o");
                    let ttl_ms = rng.range(SHORT_TTL_MS.0, SHORT_TTL_MS.1);
                    Input::order_with_ttl(&id, &user, &sku, rng.range(1, 2), ttl_ms)
                }
                65..=84 => self.order_op(rng, &sku, OpChoice::Pay),
                _ => self.order_op(rng, &sku, OpChoice::Cancel),
            },
        }
    }

    /// A transition or read of a known order on `sku`, preferring orders whose last known
    /// status allows the transition; with no order known yet, a SKU read.
    fn order_op(&mut self, rng: &mut Rng, sku: &str, choice: OpChoice) -> Input {
        let Some(orders) = self.orders.get(sku).filter(|o| !o.is_empty()) else {
            return Input::read_sku(sku);
        };
        let wanted = match choice {
            OpChoice::Pay | OpChoice::Cancel => Some(OrderStatus::Reserved),
            OpChoice::Refund => Some(OrderStatus::Paid),
            OpChoice::Read => None,
        };
        // Mostly a fitting order among the recent ones; sometimes any (exercises refusals).
        let recent = &orders[orders.len().saturating_sub(64)..];
        let now_ms = wall_ms();
        // Orders at their deadline that no answer showed paid, cancelled or refunded yet.
        let racing = |o: &&KnownOrder| {
            o.expires_ms
                .is_some_and(|deadline| deadline.abs_diff(now_ms) <= RACE_WINDOW_MS)
                && o.status.is_none_or(|s| s == OrderStatus::Reserved)
        };
        let race = self.workload == Workload::ShortTtl && recent.iter().any(|o| racing(&o));
        if self.workload == Workload::ShortTtl && !race && wanted.is_some() {
            // Paying or cancelling early would leave nothing to race the deadline with.
            return Input::read_sku(sku);
        }
        let fitting: Vec<&KnownOrder> = if race {
            recent.iter().filter(racing).collect()
        } else {
            recent
                .iter()
                .filter(|o| wanted.is_none() || o.status == wanted)
                .collect()
        };
        let order = if !fitting.is_empty() && rng.percent(85) {
            (*rng.pick(&fitting)).clone()
        } else {
            rng.pick(recent).clone()
        };
        match choice {
            OpChoice::Read => Input::read_order(&order.sku, &order.id),
            OpChoice::Pay => Input::pay(&order.sku, &order.id),
            OpChoice::Cancel => Input::cancel(&order.sku, &order.id),
            OpChoice::Refund => Input::refund(&order.sku, &order.id, rng.percent(70)),
        }
    }

    /// Whether some client saw `sku` exist.
    pub fn is_confirmed(&self, sku: &str) -> bool {
        self.confirmed.contains(sku)
    }

    /// Learns from a completed op: SKUs that exist, orders that may exist, and their last
    /// known status.
    pub fn observe(&mut self, op: &Op) {
        if op.is_success() {
            for sku in op.input.skus() {
                if !self.confirmed.contains(sku) {
                    self.confirmed.insert(sku.to_owned());
                }
            }
        }
        if let Input::Order {
            order_id, items, ..
        } = &op.input
        {
            let may_exist = op.completion != crate::history::Completion::Fail
                && !matches!(op.output, Some(Output::Error { .. }));
            if may_exist && !self.order_index.contains_key(order_id) {
                let sku = items[0].sku.clone();
                let list = self.orders.entry(sku.clone()).or_default();
                list.push(KnownOrder {
                    id: order_id.clone(),
                    sku: sku.clone(),
                    status: None,
                    expires_ms: None,
                });
                self.order_index
                    .insert(order_id.clone(), (sku, list.len() - 1));
            }
        }
        if let (Some(order_id), Some(Output::Order(view))) = (op.input.order_id(), &op.output) {
            if let Some((sku, i)) = self.order_index.get(order_id) {
                if let Some(known) = self.orders.get_mut(sku).and_then(|l| l.get_mut(*i)) {
                    known.status = Some(view.status);
                    known.expires_ms = view.expires_ms.or(known.expires_ms);
                }
            }
        }
    }
}

#[cfg(test)]
impl Shared {
    /// Makes the current generation look `age` old.
    fn age_generation(&mut self, age: Duration) {
        if let Some(then) = self.generation_started.checked_sub(age) {
            self.generation_started = then;
        }
    }
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Clone, Copy)]
enum OpChoice {
    Read,
    Pay,
    Cancel,
    Refund,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::OpKind;

    #[test]
    fn ops_stay_on_the_current_generation_and_orders_keep_their_sku() {
        for workload in Workload::ALL {
            let mut shared = Shared::new(workload, 1);
            let mut rng = Rng::new(2);
            for i in 0..2_000u64 {
                let input = shared.next_op(&mut rng, 1);
                let skus = input.skus();
                assert!(!skus.is_empty());
                if workload.single_sku() {
                    assert_eq!(skus.len(), 1, "{input}");
                }
                for sku in &skus {
                    assert!(shared.stock_of(sku) > 0, "{sku}");
                }
                // Pretend every order was created.
                let op = Op::ok(0, input, i, i, 201, None);
                shared.observe(&op);
                if workload == Workload::SaleWindow && i % 500 == 499 {
                    // Its generations end by time alone.
                    shared.age_generation(SALE_GENERATION_TIME);
                }
            }
            assert!(shared.generation > 1, "{workload}: SKUs rotated");
        }
    }

    #[test]
    fn multi_item_orders_stay_within_one_group() {
        let mut shared = Shared::new(Workload::MultiItem, 3);
        let mut rng = Rng::new(4);
        let mut orders = 0;
        for _ in 0..500 {
            let input = shared.next_op(&mut rng, 1);
            if let Input::Order { items, .. } = &input {
                orders += 1;
                let groups: HashSet<usize> = items
                    .iter()
                    .map(|item| {
                        let at = shared.skus.iter().position(|s| *s == item.sku).unwrap();
                        at / MULTI_ITEM_GROUP
                    })
                    .collect();
                assert_eq!(groups.len(), 1, "{input}");
                assert!((2..=MULTI_ITEM_GROUP).contains(&items.len()), "{input}");
            }
        }
        assert!(orders > 100);
    }

    #[test]
    fn flash_sale_skus_have_a_limit_and_few_buyers() {
        let mut shared = Shared::new(Workload::FlashSale, 5);
        let mut rng = Rng::new(6);
        let mut buyers = HashSet::new();
        for client in 0..200 {
            let input = shared.next_op(&mut rng, client);
            if let Input::Order { user_id, items, .. } = &input {
                buyers.insert(user_id.clone());
                assert_eq!(
                    shared.create_input(&items[0].sku),
                    Input::create_limited_sku(&items[0].sku, 10, FLASH_SALE_LIMIT)
                );
            }
        }
        assert_eq!(buyers.len() as u64, FLASH_SALE_USERS);
        let register = Shared::new(Workload::Register, 5);
        let sku = register.skus[0].clone();
        assert!(matches!(
            register.create_input(&sku),
            Input::CreateSku {
                per_user_limit: None,
                ..
            }
        ));
    }

    #[test]
    fn sale_window_skus_open_after_creation_and_close_seconds_later() {
        let before = wall_ms();
        let mut shared = Shared::new(Workload::SaleWindow, 7);
        let mut rng = Rng::new(8);
        let first = shared.skus.clone();
        let window = |shared: &Shared, sku: &str| match shared.create_input(sku) {
            Input::CreateSku {
                stock,
                per_user_limit,
                sale_window: Some(window),
                ..
            } => {
                assert_eq!(
                    (stock, per_user_limit),
                    (SALE_STOCK, Some(FLASH_SALE_LIMIT))
                );
                window
            }
            other => panic!("a sale-window SKU created without its window: {other}"),
        };
        let opened = window(&shared, &first[0]);
        // Opens a little after the generation starts (the SKUs are created at first use,
        // just after), for a few seconds, and every SKU of the generation shares it.
        assert!(
            opened.start_ms >= before + SALE_OPENS_AFTER_MS,
            "{opened:?}"
        );
        assert!(
            opened.start_ms <= wall_ms() + SALE_OPENS_AFTER_MS,
            "{opened:?}"
        );
        assert_eq!(opened.end_ms - opened.start_ms, SALE_OPEN_MS);
        for sku in &first {
            assert_eq!(window(&shared, sku), opened);
        }
        // The generation outlives its window by more than the checker's tolerance.
        assert!(
            SALE_GENERATION_TIME.as_millis() as u64
                > SALE_OPENS_AFTER_MS + SALE_OPEN_MS + crate::clock_tolerance::TOLERANCE_MS
        );
        // Time, not the number of ops, ends a generation: the window must get to close.
        let (mut orders, mut buyers) = (0, HashSet::new());
        for i in 0..3_000u64 {
            let input = shared.next_op(&mut rng, 1);
            assert!(first.contains(&input.skus()[0].to_owned()), "{input}");
            if let Input::Order { user_id, items, .. } = &input {
                orders += 1;
                buyers.insert(user_id.clone());
                assert_eq!(items[0].qty, 1);
            }
            shared.observe(&Op::ok(0, input, i, i, 201, None));
        }
        assert!(orders > 1_000, "{orders} orders");
        assert_eq!(buyers.len() as u64, FLASH_SALE_USERS);
        shared.age_generation(SALE_GENERATION_TIME);
        let input = shared.next_op(&mut rng, 1);
        let next = window(&shared, input.skus()[0]);
        assert!(!first.contains(&input.skus()[0].to_owned()), "{input}");
        assert!(next.start_ms >= opened.start_ms, "{next:?} {opened:?}");
        // Other workloads create SKUs always on sale.
        let register = Shared::new(Workload::Register, 5);
        assert!(matches!(
            register.create_input(&register.skus[0]),
            Input::CreateSku {
                sale_window: None,
                ..
            }
        ));
    }

    #[test]
    fn short_ttl_orders_race_their_deadlines() {
        let mut shared = Shared::new(Workload::ShortTtl, 3);
        let mut rng = Rng::new(4);
        let now = wall_ms();
        let (mut orders, mut racing, mut transitions) = (0, 0, 0);
        for i in 0..2_000u64 {
            let input = shared.next_op(&mut rng, 1);
            if let Input::Order {
                reservation_ttl_ms, ..
            } = &input
            {
                let ttl = reservation_ttl_ms.expect("short-ttl orders carry their TTL");
                assert!((SHORT_TTL_MS.0..=SHORT_TTL_MS.1).contains(&ttl), "{ttl}");
                orders += 1;
            }
            if matches!(input.kind(), OpKind::Pay | OpKind::Cancel) {
                transitions += 1;
                let id = input.order_id().unwrap();
                racing += usize::from(id.ends_with('0'));
            }
            // Every order ending in 0 is at its deadline now; the others far from it.
            let expires = |id: &str| if id.ends_with('0') { now } else { now + 60_000 };
            let view = input.order_id().map(|id| {
                Output::Order(crate::history::OrderView {
                    user_id: "u1".into(),
                    items: vec![Item {
                        sku: input.skus()[0].into(),
                        qty: 1,
                    }],
                    status: OrderStatus::Reserved,
                    revision: i,
                    created_ms: Some(now),
                    expires_ms: Some(expires(id)),
                })
            });
            shared.observe(&Op::ok(0, input, i, i, 201, view));
        }
        assert!(orders > 300, "{orders} orders");
        // One order in ten is at its deadline, yet most transitions aim at those.
        assert!(
            racing * 2 > transitions,
            "{racing} of {transitions} at the deadline"
        );
    }

    #[test]
    fn names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(Workload::parse(w.name()), Some(w));
        }
        assert_eq!(Workload::parse("bank"), None);
    }
}
