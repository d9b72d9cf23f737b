//! The sequential specification of a group of SKUs and the orders over them, as API.md and
//! STATE_MACHINE.md describe them: given a state and a command, the one reply a correct store
//! gives and the state after it.
//!
//! The linearizability checker asks this model, never the server's own code, what each
//! operation should have answered; so the model is written from the contract, kept small and
//! hashable (ids interned to `u32`, SKUs to their index in the group, item lists to their
//! index in the group's [`ItemLists`], orders in a sorted `Vec`), and never reads a clock: the chaos workload uses
//! a reservation TTL of a day, so expiry is not modelled (an order is never `expired` here; the
//! expiry path is tested elsewhere). Per-user limits are modelled (holds are the units of a
//! user's `reserved` and `paid` orders), and so are sale windows: an order carries when it
//! ran on the harness's wall clock, and [`crate::sale_window`] says whether its window was
//! open then, closed, or too near an edge to tell (then the step takes the answer the client
//! saw: see [`AtEdge`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::sale_window::{SaleState, SaleWindow, WallInterval};

/// An interned identifier (order id, user id, restock request id) within one group's history.
pub type Id = u32;
/// A SKU's index within the group of SKUs one check covers.
pub type SkuIx = u16;
/// An order's items as `(sku, qty)`, interned in the group's [`ItemLists`].
pub type ListId = u32;

/// The item lists of a group's orders and order answers, each stored once: a state's orders
/// then stay plain `Copy` entries, cheap to clone and hash, and two lists are equal iff their
/// ids are.
#[derive(Clone, Debug, Default)]
pub struct ItemLists {
    lists: Vec<Vec<(SkuIx, u64)>>,
    ids: HashMap<Vec<(SkuIx, u64)>, ListId>,
}

impl ItemLists {
    pub fn intern(&mut self, items: Vec<(SkuIx, u64)>) -> ListId {
        if let Some(&id) = self.ids.get(&items) {
            return id;
        }
        let id = ListId::try_from(self.lists.len()).expect("fewer than 2^32 item lists");
        self.lists.push(items.clone());
        self.ids.insert(items, id);
        id
    }

    /// An order's content: its items as a multiset, i.e. sorted by SKU.
    pub fn intern_content(&mut self, items: &[(SkuIx, u64)]) -> ListId {
        let mut sorted = items.to_vec();
        sorted.sort_unstable();
        self.intern(sorted)
    }

    pub fn get(&self, id: ListId) -> &[(SkuIx, u64)] {
        &self.lists[id as usize]
    }

    /// An order command: `items` in request order, at no known time (a sale window's
    /// edges are then never clearly behind or ahead of it).
    pub fn order(&mut self, order: Id, user: Id, items: &[(SkuIx, u64)]) -> Command {
        self.order_at(order, user, items, WallInterval::UNKNOWN)
    }

    /// An order command that ran during `at` on the harness's wall clock.
    pub fn order_at(
        &mut self,
        order: Id,
        user: Id,
        items: &[(SkuIx, u64)],
        at: WallInterval,
    ) -> Command {
        Command::Order {
            order,
            user,
            content: self.intern_content(items),
            items: self.intern(items.to_vec()),
            at,
        }
    }
}

/// Largest count the API allows (2^53 − 1, safe in JSON); a restock past it is a `400`.
pub const MAX_COUNT: u64 = (1 << 53) - 1;
/// Largest order quantity the API accepts.
pub const MAX_QTY: u64 = 1_000_000;
/// Most items one order may have.
pub const MAX_ITEMS: usize = 64;

/// An order's status, as the API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Reserved,
    Paid,
    Cancelled,
    Expired,
    Refunded,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Reserved,
        OrderStatus::Paid,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
        OrderStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Reserved => "reserved",
            OrderStatus::Paid => "paid",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
            OrderStatus::Refunded => "refunded",
        }
    }

    /// Statuses an order in `self` can reach through any number of transitions, itself included.
    /// Used by the invariants: after a transition was acknowledged, later reads must show one
    /// of these.
    pub fn reachable(self) -> &'static [OrderStatus] {
        use OrderStatus::*;
        match self {
            Reserved => &[Reserved, Paid, Cancelled, Expired, Refunded],
            Paid => &[Paid, Refunded],
            Cancelled => &[Cancelled],
            Expired => &[Expired],
            Refunded => &[Refunded],
        }
    }

    /// Whether an order in this status holds its units against the user's per-user limit
    /// (STATE_MACHINE.md, "Holds": reserved or paid orders).
    pub fn holds_units(self) -> bool {
        matches!(self, OrderStatus::Reserved | OrderStatus::Paid)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The five counters of a SKU; every read compares all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Counters {
    pub total: u64,
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
    pub refunded: u64,
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "total={} available={} reserved={} sold={} refunded={}",
            self.total, self.available, self.reserved, self.sold, self.refunded
        )
    }
}

/// A command against the group, with ids interned and SKUs as indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    CreateSku {
        sku: SkuIx,
        stock: u64,
        per_user_limit: Option<u64>,
        sale_window: Option<SaleWindow>,
    },
    Restock {
        sku: SkuIx,
        request: Id,
        delta: i64,
    },
    /// `items` in request order: the first failing item decides the refusal; `content` the
    /// same items sorted (see [`ItemLists::order`]); `at` when it ran, for sale windows.
    Order {
        order: Id,
        user: Id,
        items: ListId,
        content: ListId,
        at: WallInterval,
    },
    Pay {
        order: Id,
    },
    Cancel {
        order: Id,
    },
    Refund {
        order: Id,
        restock: bool,
    },
    ReadSku {
        sku: SkuIx,
    },
    ReadOrder {
        order: Id,
    },
}

impl Command {
    /// Reads change nothing, so one whose answer is unknown (or not checked) can be dropped.
    pub fn is_read(&self) -> bool {
        matches!(self, Command::ReadSku { .. } | Command::ReadOrder { .. })
    }
}

/// A committed refusal (409, or 404 on a command), or a `400` the model predicts for an input
/// the API rejects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    InvalidRequest,
    SkuNotFound,
    OrderNotFound,
    SkuExists,
    OutOfStock,
    PerUserLimitExceeded,
    OrderIdConflict,
    InvalidTransition,
    InsufficientAvailable,
    RequestIdConflict,
    SaleNotActive,
    /// A code this model never produces: an observation carrying it matches no expected
    /// reply.
    Unrecognised,
}

impl Refusal {
    pub fn from_code(code: &str) -> Refusal {
        match code {
            "invalid_request" => Refusal::InvalidRequest,
            "sku_not_found" => Refusal::SkuNotFound,
            "order_not_found" => Refusal::OrderNotFound,
            "sku_exists" => Refusal::SkuExists,
            "out_of_stock" => Refusal::OutOfStock,
            "per_user_limit_exceeded" => Refusal::PerUserLimitExceeded,
            "order_id_conflict" => Refusal::OrderIdConflict,
            "invalid_transition" => Refusal::InvalidTransition,
            "insufficient_available" => Refusal::InsufficientAvailable,
            "request_id_conflict" => Refusal::RequestIdConflict,
            "sale_not_active" => Refusal::SaleNotActive,
            _ => Refusal::Unrecognised,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Refusal::InvalidRequest => "invalid_request",
            Refusal::SkuNotFound => "sku_not_found",
            Refusal::OrderNotFound => "order_not_found",
            Refusal::SkuExists => "sku_exists",
            Refusal::OutOfStock => "out_of_stock",
            Refusal::PerUserLimitExceeded => "per_user_limit_exceeded",
            Refusal::OrderIdConflict => "order_id_conflict",
            Refusal::InvalidTransition => "invalid_transition",
            Refusal::InsufficientAvailable => "insufficient_available",
            Refusal::RequestIdConflict => "request_id_conflict",
            Refusal::SaleNotActive => "sale_not_active",
            Refusal::Unrecognised => "unrecognised",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Refusal::InvalidRequest => 400,
            Refusal::SkuNotFound | Refusal::OrderNotFound => 404,
            _ => 409,
        }
    }
}

/// What an order read (or an order-bearing reply) shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrderSnapshot {
    pub user: Id,
    /// Sorted by SKU: an order's content is its items as a multiset.
    pub items: ListId,
    pub status: OrderStatus,
}

/// The body of a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Body {
    Sku(Counters),
    Order(OrderSnapshot),
    Refused(Refusal),
    /// An observed body that cannot describe this group (e.g. an order body naming a SKU
    /// outside it); it matches no expected reply.
    Malformed,
}

/// The reply the model expects: HTTP status and body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reply {
    pub http: u16,
    pub body: Body,
}

impl Reply {
    fn refused(refusal: Refusal) -> Reply {
        Reply {
            http: refusal.http_status(),
            body: Body::Refused(refusal),
        }
    }
}

/// What a client saw for an `ok` operation. `body` is `None` when the harness did not record
/// the body of a successful write; then only the status is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Observed {
    pub http: u16,
    pub body: Option<Body>,
}

impl Observed {
    /// Whether this observation is the reply the model expects.
    pub fn accepts(&self, expected: &Reply) -> bool {
        self.http == expected.http && self.body.is_none_or(|body| body == expected.body)
    }
}

/// The settings a SKU was created with: a create is "the same" when all of them are equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct SkuSettings {
    stock: u64,
    per_user_limit: Option<u64>,
    sale_window: Option<SaleWindow>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct SkuEntry {
    /// `Some` once created.
    created_with: Option<SkuSettings>,
    counters: Counters,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct OrderEntry {
    id: Id,
    user: Id,
    /// Sorted by SKU (each SKU at most once).
    items: ListId,
    status: OrderStatus,
}

/// A group of SKUs and the orders over them. Initially no SKU exists (`Default`).
///
/// Small and hashable: the checker's memo cache holds one per explored configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct StoreState {
    /// Indexed by [`SkuIx`]; as long as the highest SKU created so far needs (so equal stores
    /// are equal states).
    skus: Vec<SkuEntry>,
    /// Applied restocks `(sku, request, delta)`, sorted: the per-SKU dedup table.
    restocks: Vec<(SkuIx, Id, i64)>,
    /// Orders sorted by id.
    orders: Vec<OrderEntry>,
}

impl StoreState {
    pub fn exists(&self, sku: SkuIx) -> bool {
        self.sku(sku).is_some()
    }

    /// The counters of `sku`, if it exists.
    pub fn counters(&self, sku: SkuIx) -> Option<Counters> {
        self.sku(sku).map(|entry| entry.counters)
    }

    /// Indices of the SKUs that exist.
    pub fn existing_skus(&self) -> impl Iterator<Item = SkuIx> + '_ {
        (0..self.skus.len())
            .filter(|&i| self.skus[i].created_with.is_some())
            // `skus` grows only to a SkuIx + 1.
            .map(|i| i as SkuIx)
    }

    /// `(order, user, items, status)` for every order, sorted by order id.
    pub fn orders(&self) -> impl Iterator<Item = (Id, Id, ListId, OrderStatus)> + '_ {
        self.orders
            .iter()
            .map(|o| (o.id, o.user, o.items, o.status))
    }

    /// Units `user` holds of `sku` in reserved or paid orders: what the per-user limit bounds.
    pub fn held(&self, lists: &ItemLists, sku: SkuIx, user: Id) -> u64 {
        self.orders
            .iter()
            .filter(|o| o.user == user && o.status.holds_units())
            .filter_map(|o| qty_of(lists.get(o.items), sku))
            .sum()
    }

    /// Approximate heap and inline size, for the checker's memory limit.
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.skus.len() * std::mem::size_of::<SkuEntry>()
            + self.restocks.len() * std::mem::size_of::<(SkuIx, Id, i64)>()
            + self.orders.len() * std::mem::size_of::<OrderEntry>()
    }

    fn sku(&self, sku: SkuIx) -> Option<&SkuEntry> {
        self.skus
            .get(usize::from(sku))
            .filter(|entry| entry.created_with.is_some())
    }

    fn order(&self, id: Id) -> Option<&OrderEntry> {
        self.orders
            .binary_search_by_key(&id, |o| o.id)
            .ok()
            .map(|i| &self.orders[i])
    }

    /// The STATE_MACHINE.md invariants, per SKU: the counters balance, and `reserved`/`sold`
    /// equal the quantities of reserved/paid orders.
    fn holds_invariants(&self, lists: &ItemLists) -> bool {
        // (reserved, sold) per SKU from the orders, in one pass: this runs on every step.
        let mut held = vec![(0u64, 0u64); self.skus.len()];
        for order in &self.orders {
            for &(sku, qty) in lists.get(order.items) {
                let Some(entry) = held.get_mut(usize::from(sku)) else {
                    return false;
                };
                match order.status {
                    OrderStatus::Reserved => entry.0 += qty,
                    OrderStatus::Paid => entry.1 += qty,
                    _ => {}
                }
            }
        }
        self.skus.iter().zip(held).all(|(entry, (reserved, sold))| {
            let c = entry.counters;
            u128::from(c.available) + u128::from(c.reserved) + u128::from(c.sold)
                == u128::from(c.total)
                && c.reserved == reserved
                && c.sold == sold
        })
    }
}

fn qty_of(items: &[(SkuIx, u64)], sku: SkuIx) -> Option<u64> {
    items
        .binary_search_by_key(&sku, |item| item.0)
        .ok()
        .map(|i| items[i].1)
}

/// How an order whose interval comes within the tolerance of a sale window's edge
/// ([`SaleState::Either`]) is judged. The cluster's clock may have put it on either side, so
/// both answers are right; the checker asks [`AtEdge::Open`] first and, only when the client
/// saw `sale_not_active`, [`AtEdge::Closed`]. Each step stays one function of the state, the
/// op and its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtEdge {
    Open,
    Closed,
}

/// Applies `command` to `state`: the reply a correct store gives, and the state after it
/// (`Cow::Borrowed` when nothing changed, so reads and refusals cost no clone). `lists` holds
/// the item lists the command and the state name. An order at a sale window's edge finds the
/// sale open (see [`step_at_edge`]).
pub fn step<'a>(
    state: &'a StoreState,
    lists: &ItemLists,
    command: &Command,
) -> (Cow<'a, StoreState>, Reply) {
    step_at_edge(state, lists, command, AtEdge::Open)
}

/// [`step`], with an order at a sale window's edge judged as `edge` says.
pub fn step_at_edge<'a>(
    state: &'a StoreState,
    lists: &ItemLists,
    command: &Command,
    edge: AtEdge,
) -> (Cow<'a, StoreState>, Reply) {
    let (next, reply) = match command {
        Command::CreateSku {
            sku,
            stock,
            per_user_limit,
            sale_window,
        } => create_sku(
            state,
            *sku,
            SkuSettings {
                stock: *stock,
                per_user_limit: *per_user_limit,
                sale_window: *sale_window,
            },
        ),
        Command::Restock {
            sku,
            request,
            delta,
        } => restock(state, *sku, *request, *delta),
        Command::Order {
            order,
            user,
            items,
            content,
            at,
        } => place_order(
            state,
            lists,
            (*order, *user),
            (*items, *content),
            (*at, edge),
        ),
        Command::Pay { order } => transition(state, lists, *order, Transition::Pay),
        Command::Cancel { order } => transition(state, lists, *order, Transition::Cancel),
        Command::Refund { order, restock } => transition(
            state,
            lists,
            *order,
            Transition::Refund { restock: *restock },
        ),
        Command::ReadSku { sku } => (None, read_sku(state, *sku)),
        Command::ReadOrder { order } => (None, read_order(state, *order)),
    };
    match next {
        Some(next) => {
            // A model that breaks the store's own invariants would judge histories wrongly:
            // stop loudly.
            assert!(
                next.holds_invariants(lists),
                "model broke its invariants: {next:?}"
            );
            (Cow::Owned(next), reply)
        }
        None => (Cow::Borrowed(state), reply),
    }
}

type Stepped = (Option<StoreState>, Reply);

fn sku_reply(http: u16, counters: Counters) -> Reply {
    Reply {
        http,
        body: Body::Sku(counters),
    }
}

fn order_reply(http: u16, order: &OrderEntry) -> Reply {
    Reply {
        http,
        body: Body::Order(OrderSnapshot {
            user: order.user,
            items: order.items,
            status: order.status,
        }),
    }
}

fn refuse(refusal: Refusal) -> Stepped {
    (None, Reply::refused(refusal))
}

fn create_sku(state: &StoreState, sku: SkuIx, settings: SkuSettings) -> Stepped {
    if settings.stock > MAX_COUNT
        || settings.per_user_limit == Some(0)
        || settings.sale_window.is_some_and(|w| !w.is_valid())
    {
        return refuse(Refusal::InvalidRequest);
    }
    if let Some(entry) = state.sku(sku) {
        return if entry.created_with == Some(settings) {
            (None, sku_reply(200, entry.counters))
        } else {
            refuse(Refusal::SkuExists)
        };
    }
    let mut next = state.clone();
    let at = usize::from(sku);
    if next.skus.len() <= at {
        next.skus.resize_with(at + 1, SkuEntry::default);
    }
    next.skus[at] = SkuEntry {
        created_with: Some(settings),
        counters: Counters {
            total: settings.stock,
            available: settings.stock,
            ..Counters::default()
        },
    };
    let reply = sku_reply(201, next.skus[at].counters);
    (Some(next), reply)
}

fn restock(state: &StoreState, sku: SkuIx, request: Id, delta: i64) -> Stepped {
    // Checks in the store's order: the gateway's validation, SKU, dedup, then the amount.
    if delta == 0 {
        return refuse(Refusal::InvalidRequest);
    }
    let Some(entry) = state.sku(sku) else {
        return refuse(Refusal::SkuNotFound);
    };
    let slot = state
        .restocks
        .binary_search_by_key(&(sku, request), |r| (r.0, r.1));
    if let Ok(i) = slot {
        return if state.restocks[i].2 == delta {
            (None, sku_reply(200, entry.counters))
        } else {
            refuse(Refusal::RequestIdConflict)
        };
    }
    let magnitude = delta.unsigned_abs();
    let mut counters = entry.counters;
    if delta > 0 {
        match counters.total.checked_add(magnitude) {
            Some(total) if total <= MAX_COUNT => {
                counters.total = total;
                counters.available += magnitude;
            }
            // API.md: a restock past 2^53 − 1 is a 400.
            _ => return refuse(Refusal::InvalidRequest),
        }
    } else {
        if counters.available < magnitude {
            return refuse(Refusal::InsufficientAvailable);
        }
        counters.total -= magnitude;
        counters.available -= magnitude;
    }
    let mut next = state.clone();
    next.skus[usize::from(sku)].counters = counters;
    // Refused restocks are not remembered (API.md): only an applied one enters the table.
    next.restocks
        .insert(slot.unwrap_err(), (sku, request, delta));
    (Some(next), sku_reply(200, counters))
}

/// Whether the API accepts an order's items, given them sorted (else `400`).
fn valid_content(sorted: &[(SkuIx, u64)]) -> bool {
    (1..=MAX_ITEMS).contains(&sorted.len())
        && sorted.iter().all(|&(_, qty)| (1..=MAX_QTY).contains(&qty))
        // API.md: each SKU at most once in one order.
        && sorted.windows(2).all(|pair| pair[0].0 != pair[1].0)
}

fn place_order(
    state: &StoreState,
    lists: &ItemLists,
    (order, user): (Id, Id),
    (items, content): (ListId, ListId),
    (at, edge): (WallInterval, AtEdge),
) -> Stepped {
    if !valid_content(lists.get(content)) {
        return refuse(Refusal::InvalidRequest);
    }
    let slot = state.orders.binary_search_by_key(&order, |o| o.id);
    if let Ok(i) = slot {
        let existing = &state.orders[i];
        return if existing.user == user && existing.items == content {
            // Idempotent replay: the order as it stands now, never a second reservation.
            (None, order_reply(200, existing))
        } else {
            refuse(Refusal::OrderIdConflict)
        };
    }
    // API.md, "Order of checks": items in request order; for each: SKU exists, sale active,
    // per-user limit, stock; the first failure decides. Refusals leave no trace.
    for &(sku, qty) in lists.get(items) {
        let Some(entry) = state.sku(sku) else {
            return refuse(Refusal::SkuNotFound);
        };
        let window = entry.created_with.and_then(|s| s.sale_window);
        if window.is_some_and(|w| !on_sale(w.judge(at), edge)) {
            return refuse(Refusal::SaleNotActive);
        }
        let limit = entry.created_with.and_then(|s| s.per_user_limit);
        if limit.is_some_and(|limit| state.held(lists, sku, user).saturating_add(qty) > limit) {
            return refuse(Refusal::PerUserLimitExceeded);
        }
        if entry.counters.available < qty {
            return refuse(Refusal::OutOfStock);
        }
    }
    let mut next = state.clone();
    for &(sku, qty) in lists.get(content) {
        let c = &mut next.skus[usize::from(sku)].counters;
        c.available -= qty;
        c.reserved += qty;
    }
    let entry = OrderEntry {
        id: order,
        user,
        items: content,
        status: OrderStatus::Reserved,
    };
    let reply = order_reply(201, &entry);
    next.orders.insert(slot.unwrap_err(), entry);
    (Some(next), reply)
}

fn on_sale(state: SaleState, edge: AtEdge) -> bool {
    match state {
        SaleState::Open => true,
        SaleState::Closed => false,
        SaleState::Either => edge == AtEdge::Open,
    }
}

#[derive(Clone, Copy)]
enum Transition {
    Pay,
    Cancel,
    Refund { restock: bool },
}

fn transition(state: &StoreState, lists: &ItemLists, order: Id, transition: Transition) -> Stepped {
    use OrderStatus::*;
    let Ok(i) = state.orders.binary_search_by_key(&order, |o| o.id) else {
        return refuse(Refusal::OrderNotFound);
    };
    let current = &state.orders[i];
    // The new status, or a no-op / refusal, per API.md's transition rules.
    let target = match (transition, current.status) {
        (Transition::Pay, Reserved) => Paid,
        (Transition::Cancel, Reserved) => Cancelled,
        (Transition::Refund { .. }, Paid) => Refunded,
        (Transition::Pay, Paid)
        | (Transition::Cancel, Cancelled | Expired)
        | (Transition::Refund { .. }, Refunded) => return (None, order_reply(200, current)),
        _ => return refuse(Refusal::InvalidTransition),
    };
    let mut next = state.clone();
    for &(sku, qty) in lists.get(current.items) {
        let c = &mut next.skus[usize::from(sku)].counters;
        // The invariants (reserved/sold equal the qty of reserved/paid orders) make these
        // subtractions exact.
        match transition {
            Transition::Pay => {
                c.reserved -= qty;
                c.sold += qty;
            }
            Transition::Cancel => {
                c.reserved -= qty;
                c.available += qty;
            }
            Transition::Refund { restock } => {
                c.sold -= qty;
                c.refunded = c.refunded.saturating_add(qty);
                if restock {
                    c.available += qty;
                } else {
                    c.total -= qty;
                }
            }
        }
    }
    next.orders[i].status = target;
    let reply = order_reply(200, &next.orders[i]);
    (Some(next), reply)
}

fn read_sku(state: &StoreState, sku: SkuIx) -> Reply {
    match state.sku(sku) {
        Some(entry) => sku_reply(200, entry.counters),
        None => Reply::refused(Refusal::SkuNotFound),
    }
}

fn read_order(state: &StoreState, order: Id) -> Reply {
    match state.order(order) {
        Some(entry) => order_reply(200, entry),
        None => Reply::refused(Refusal::OrderNotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lists: &ItemLists, commands: &[Command]) -> (StoreState, Vec<Reply>) {
        let mut state = StoreState::default();
        let mut replies = Vec::new();
        for command in commands {
            let (next, reply) = step(&state, lists, command);
            state = next.into_owned();
            replies.push(reply);
        }
        (state, replies)
    }

    fn create(stock: u64) -> Command {
        Command::CreateSku {
            sku: 0,
            stock,
            per_user_limit: None,
            sale_window: None,
        }
    }

    fn http(replies: &[Reply]) -> Vec<u16> {
        replies.iter().map(|r| r.http).collect()
    }

    fn refusal(reply: &Reply) -> Option<Refusal> {
        match reply.body {
            Body::Refused(r) => Some(r),
            _ => None,
        }
    }

    #[test]
    fn absent_sku_refuses_everything() {
        let mut l = ItemLists::default();
        let commands = [
            Command::ReadSku { sku: 0 },
            l.order(1, 1, &[(0, 1)]),
            Command::Restock {
                sku: 0,
                request: 1,
                delta: 1,
            },
            Command::Pay { order: 1 },
            Command::ReadOrder { order: 1 },
        ];
        let (state, replies) = run(&l, &commands);
        assert_eq!(state, StoreState::default());
        let refusals: Vec<_> = replies.iter().map(refusal).collect();
        assert_eq!(
            refusals,
            vec![
                Some(Refusal::SkuNotFound),
                Some(Refusal::SkuNotFound),
                Some(Refusal::SkuNotFound),
                Some(Refusal::OrderNotFound),
                Some(Refusal::OrderNotFound),
            ]
        );
        assert_eq!(http(&replies), vec![404; 5]);
    }

    #[test]
    fn create_is_idempotent_by_stock() {
        let l = ItemLists::default();
        let commands = [create(2), create(2), create(3)];
        let (state, replies) = run(&l, &commands);
        assert_eq!(http(&replies), vec![201, 200, 409]);
        assert_eq!(refusal(&replies[2]), Some(Refusal::SkuExists));
        assert_eq!(state.counters(0).unwrap().total, 2);
    }

    #[test]
    fn orders_reserve_replay_conflict_and_run_out() {
        let mut l = ItemLists::default();
        let commands = [
            create(3),
            l.order(1, 1, &[(0, 2)]),
            l.order(1, 1, &[(0, 2)]),
            l.order(1, 2, &[(0, 2)]),
            l.order(2, 1, &[(0, 2)]),
            l.order(2, 1, &[(0, 1)]),
            l.order(3, 1, &[(0, 0)]),
        ];
        let (state, replies) = run(&l, &commands);
        assert_eq!(http(&replies), vec![201, 201, 200, 409, 409, 201, 400]);
        assert_eq!(refusal(&replies[3]), Some(Refusal::OrderIdConflict));
        assert_eq!(refusal(&replies[4]), Some(Refusal::OutOfStock));
        let c = state.counters(0).unwrap();
        assert_eq!((c.total, c.available, c.reserved), (3, 0, 3));
    }

    #[test]
    fn pay_cancel_refund_follow_the_transition_rules() {
        let mut l = ItemLists::default();
        let commands = [
            create(10),
            l.order(1, 1, &[(0, 2)]),
            l.order(2, 1, &[(0, 3)]),
            Command::Pay { order: 1 },
            Command::Pay { order: 1 },
            Command::Cancel { order: 1 },
            Command::Cancel { order: 2 },
            Command::Cancel { order: 2 },
            Command::Pay { order: 2 },
            Command::Refund {
                order: 2,
                restock: true,
            },
            Command::Refund {
                order: 1,
                restock: false,
            },
            Command::Refund {
                order: 1,
                restock: true,
            },
            Command::Pay { order: 1 },
        ];
        let (state, replies) = run(&l, &commands);
        assert_eq!(
            http(&replies),
            vec![201, 201, 201, 200, 200, 409, 200, 200, 409, 409, 200, 200, 409]
        );
        assert_eq!(
            state.counters(0).unwrap(),
            Counters {
                total: 8,
                available: 8,
                reserved: 0,
                sold: 0,
                refunded: 2
            }
        );
        let statuses: Vec<_> = state.orders().map(|o| o.3).collect();
        assert_eq!(
            statuses,
            vec![OrderStatus::Refunded, OrderStatus::Cancelled]
        );
    }

    #[test]
    fn restock_dedups_by_request_and_refuses_withdrawing_reserved_units() {
        let mut l = ItemLists::default();
        let commands = [
            create(2),
            Command::Restock {
                sku: 0,
                request: 1,
                delta: 3,
            },
            Command::Restock {
                sku: 0,
                request: 1,
                delta: 3,
            },
            Command::Restock {
                sku: 0,
                request: 1,
                delta: 4,
            },
            l.order(1, 1, &[(0, 4)]),
            Command::Restock {
                sku: 0,
                request: 2,
                delta: -2,
            },
            Command::Restock {
                sku: 0,
                request: 2,
                delta: -1,
            },
            Command::Restock {
                sku: 0,
                request: 3,
                delta: 0,
            },
        ];
        let (state, replies) = run(&l, &commands);
        assert_eq!(http(&replies), vec![201, 200, 200, 409, 201, 409, 200, 400]);
        assert_eq!(refusal(&replies[3]), Some(Refusal::RequestIdConflict));
        assert_eq!(refusal(&replies[5]), Some(Refusal::InsufficientAvailable));
        // The refused -2 was not remembered, so the same request id with -1 applied afresh.
        let c = state.counters(0).unwrap();
        assert_eq!((c.total, c.available, c.reserved), (4, 0, 4));
    }

    #[test]
    fn restock_past_max_count_is_invalid() {
        let l = ItemLists::default();
        let commands = [
            create(MAX_COUNT),
            Command::Restock {
                sku: 0,
                request: 1,
                delta: 1,
            },
        ];
        let (_, replies) = run(&l, &commands);
        assert_eq!(refusal(&replies[1]), Some(Refusal::InvalidRequest));
    }

    #[test]
    fn observation_without_body_compares_status_only() {
        let expected = Reply {
            http: 200,
            body: Body::Sku(Counters::default()),
        };
        assert!(Observed {
            http: 200,
            body: None
        }
        .accepts(&expected));
        assert!(!Observed {
            http: 201,
            body: None
        }
        .accepts(&expected));
        let other = Body::Sku(Counters {
            total: 1,
            ..Counters::default()
        });
        assert!(!Observed {
            http: 200,
            body: Some(other)
        }
        .accepts(&expected));
        assert!(!Observed {
            http: 200,
            body: Some(Body::Malformed)
        }
        .accepts(&expected));
    }

    #[test]
    fn multi_item_orders_reserve_all_items_or_none() {
        let b = |stock| Command::CreateSku {
            sku: 1,
            stock,
            per_user_limit: None,
            sale_window: None,
        };
        let mut l = ItemLists::default();
        let commands = [
            create(3),
            b(1),
            l.order(1, 1, &[(1, 1), (0, 2)]),
            // B is out: nothing of A is reserved either.
            l.order(2, 1, &[(0, 1), (1, 1)]),
            // The same content in another item order is a replay.
            l.order(1, 1, &[(0, 2), (1, 1)]),
            l.order(3, 1, &[(0, 1), (0, 1)]),
            Command::Cancel { order: 1 },
        ];
        let (state, replies) = run(&l, &commands);
        assert_eq!(http(&replies), vec![201, 201, 201, 409, 200, 400, 200]);
        assert_eq!(refusal(&replies[3]), Some(Refusal::OutOfStock));
        let Body::Order(order) = &replies[4].body else {
            panic!("{:?}", replies[4]);
        };
        assert_eq!(l.get(order.items), &[(0, 2), (1, 1)]);
        assert_eq!(state.counters(0).unwrap().available, 3);
        assert_eq!(state.counters(1).unwrap().available, 1);
    }

    #[test]
    fn per_user_limit_counts_reserved_and_paid_units_only() {
        let limited = Command::CreateSku {
            sku: 0,
            stock: 10,
            per_user_limit: Some(2),
            sale_window: None,
        };
        let mut l = ItemLists::default();
        let commands = [
            limited,
            l.order(1, 1, &[(0, 1)]),
            l.order(2, 1, &[(0, 1)]),
            Command::Pay { order: 2 },
            // Holds 2 (one reserved, one paid): a third unit is over the limit.
            l.order(3, 1, &[(0, 1)]),
            // Another user has a limit of their own.
            l.order(4, 2, &[(0, 2)]),
            // Cancelled and refunded orders release their units.
            Command::Cancel { order: 1 },
            Command::Refund {
                order: 2,
                restock: false,
            },
            l.order(3, 1, &[(0, 2)]),
            l.order(5, 1, &[(0, 1)]),
            // A create with another limit is another SKU.
            create(10),
            limited,
        ];
        let (state, replies) = run(&l, &commands);
        assert_eq!(
            http(&replies),
            vec![201, 201, 201, 200, 409, 201, 200, 200, 201, 409, 409, 200]
        );
        assert_eq!(refusal(&replies[4]), Some(Refusal::PerUserLimitExceeded));
        assert_eq!(refusal(&replies[9]), Some(Refusal::PerUserLimitExceeded));
        assert_eq!(refusal(&replies[10]), Some(Refusal::SkuExists));
        assert_eq!(state.held(&l, 0, 1), 2);
        assert_eq!(state.held(&l, 0, 2), 2);
    }

    #[test]
    fn limit_is_checked_before_stock_and_items_in_request_order() {
        let mut l = ItemLists::default();
        let commands = [
            Command::CreateSku {
                sku: 0,
                stock: 0,
                per_user_limit: Some(1),
                sale_window: None,
            },
            create_at(1, 0),
            // Over the limit and out of stock: the limit is checked first.
            l.order(1, 1, &[(0, 2)]),
            // B (first in the request) is out of stock; A would be over the limit.
            l.order(2, 1, &[(1, 1), (0, 2)]),
            l.order(3, 1, &[(2, 1), (0, 1)]),
        ];
        let (_, replies) = run(&l, &commands);
        assert_eq!(refusal(&replies[2]), Some(Refusal::PerUserLimitExceeded));
        assert_eq!(refusal(&replies[3]), Some(Refusal::OutOfStock));
        assert_eq!(refusal(&replies[4]), Some(Refusal::SkuNotFound));
    }

    fn create_at(sku: SkuIx, stock: u64) -> Command {
        Command::CreateSku {
            sku,
            stock,
            per_user_limit: None,
            sale_window: None,
        }
    }

    #[test]
    fn a_sale_window_is_part_of_the_sku_and_checked_before_the_limit() {
        let window = SaleWindow {
            start_ms: 10_000,
            end_ms: 20_000,
        };
        let on_sale = |sale_window| Command::CreateSku {
            sku: 0,
            stock: 0,
            per_user_limit: Some(1),
            sale_window,
        };
        let at = |invoke_ms| WallInterval {
            invoke_ms,
            complete_ms: invoke_ms + 10,
        };
        let mut l = ItemLists::default();
        let commands = [
            on_sale(Some(SaleWindow {
                start_ms: 5,
                end_ms: 5,
            })),
            on_sale(Some(window)),
            on_sale(None),
            on_sale(Some(window)),
            // Out of stock and over the limit, but the sale is checked first.
            l.order_at(1, 1, &[(0, 2)], at(1_000)),
            l.order_at(2, 1, &[(0, 2)], at(15_000)),
        ];
        let (_, replies) = run(&l, &commands);
        assert_eq!(http(&replies), vec![400, 201, 409, 200, 409, 409]);
        assert_eq!(refusal(&replies[2]), Some(Refusal::SkuExists));
        assert_eq!(refusal(&replies[4]), Some(Refusal::SaleNotActive));
        assert_eq!(refusal(&replies[5]), Some(Refusal::PerUserLimitExceeded));
        // At the edge: open unless asked to judge it closed.
        let state = run(&l, &commands[..2]).0;
        let edge = l.order_at(3, 1, &[(0, 1)], at(9_500));
        let open = step(&state, &l, &edge).1;
        let closed = step_at_edge(&state, &l, &edge, AtEdge::Closed).1;
        assert_eq!(refusal(&open), Some(Refusal::OutOfStock));
        assert_eq!(refusal(&closed), Some(Refusal::SaleNotActive));
    }

    #[test]
    fn reachable_statuses_never_go_back() {
        assert!(!OrderStatus::Paid
            .reachable()
            .contains(&OrderStatus::Cancelled));
        assert!(OrderStatus::Reserved
            .reachable()
            .contains(&OrderStatus::Refunded));
        for s in OrderStatus::ALL {
            assert!(s.reachable().contains(&s));
        }
    }
}
