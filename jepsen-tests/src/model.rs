//! The sequential specification of ONE SKU and its orders, as API.md and STATE_MACHINE.md
//! describe them: given a state and a command, the one reply a correct store gives and the state
//! after it.
//!
//! The linearizability checker asks this model, never the server's own code, what each
//! operation should have answered; so the model is written from the contract, kept small and
//! hashable (ids interned to `u32`, orders in a sorted `Vec`), and never touches a clock: the
//! chaos workload uses a reservation TTL of a day, so expiry is not modelled (an order is never
//! `expired` here; the expiry path is tested elsewhere). Per-user limits and sale windows are out
//! of scope too: chaos runs create SKUs without them.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// An interned identifier (order id, user id, restock request id) within one SKU's history.
pub type Id = u32;

/// Largest count the API allows (2^53 − 1, safe in JSON); a restock past it is a `400`.
pub const MAX_COUNT: u64 = (1 << 53) - 1;
/// Largest order quantity the API accepts.
pub const MAX_QTY: u64 = 1_000_000;

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

/// A command against one SKU, with ids interned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    CreateSku { stock: u64 },
    Restock { request: Id, delta: i64 },
    Order { order: Id, user: Id, qty: u64 },
    Pay { order: Id },
    Cancel { order: Id },
    Refund { order: Id, restock: bool },
    ReadSku,
    ReadOrder { order: Id },
}

impl Command {
    /// Reads change nothing, so one whose answer is unknown (or not checked) can be dropped.
    pub fn is_read(&self) -> bool {
        matches!(self, Command::ReadSku | Command::ReadOrder { .. })
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
    OrderIdConflict,
    InvalidTransition,
    InsufficientAvailable,
    RequestIdConflict,
    /// A code this model never produces (e.g. `per_user_limit_exceeded` in a run without
    /// limits): an observation carrying it matches no expected reply.
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
            "order_id_conflict" => Refusal::OrderIdConflict,
            "invalid_transition" => Refusal::InvalidTransition,
            "insufficient_available" => Refusal::InsufficientAvailable,
            "request_id_conflict" => Refusal::RequestIdConflict,
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
            Refusal::OrderIdConflict => "order_id_conflict",
            Refusal::InvalidTransition => "invalid_transition",
            Refusal::InsufficientAvailable => "insufficient_available",
            Refusal::RequestIdConflict => "request_id_conflict",
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

/// What an order read (or an order-bearing reply) shows, restricted to this SKU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrderSnapshot {
    pub user: Id,
    pub qty: u64,
    pub status: OrderStatus,
}

/// The body of a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Body {
    Sku(Counters),
    Order(OrderSnapshot),
    Refused(Refusal),
    /// An observed body that cannot describe this SKU (e.g. an order body naming other
    /// items); it matches no expected reply.
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct OrderEntry {
    id: Id,
    user: Id,
    // u32 keeps an entry at 16 bytes; MAX_QTY fits, and quantities are validated before an
    // entry is made.
    qty: u32,
    status: OrderStatus,
}

/// One SKU and its orders. Initially the SKU does not exist (`Default`).
///
/// Small and hashable: the checker's memo cache holds one per explored configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SkuState {
    /// `Some(stock)` once created: a create is "the same" when its stock equals this.
    created_with: Option<u64>,
    counters: Counters,
    /// Applied restocks `(request, delta)`, sorted by request: the per-SKU dedup table.
    restocks: Vec<(Id, i64)>,
    /// Orders sorted by id.
    orders: Vec<OrderEntry>,
}

impl SkuState {
    pub fn exists(&self) -> bool {
        self.created_with.is_some()
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// `(order, user, qty, status)` for every order, sorted by order id.
    pub fn orders(&self) -> impl Iterator<Item = (Id, Id, u64, OrderStatus)> + '_ {
        self.orders
            .iter()
            .map(|o| (o.id, o.user, u64::from(o.qty), o.status))
    }

    /// Approximate heap and inline size, for the checker's memory limit.
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.restocks.len() * std::mem::size_of::<(Id, i64)>()
            + self.orders.len() * std::mem::size_of::<OrderEntry>()
    }

    fn order(&self, id: Id) -> Option<&OrderEntry> {
        self.orders
            .binary_search_by_key(&id, |o| o.id)
            .ok()
            .map(|i| &self.orders[i])
    }

    /// The STATE_MACHINE.md invariants: the counters balance, and `reserved`/`sold` equal the
    /// quantities of reserved/paid orders.
    fn holds_invariants(&self) -> bool {
        let sum = |status: OrderStatus| -> u64 {
            self.orders
                .iter()
                .filter(|o| o.status == status)
                .map(|o| u64::from(o.qty))
                .sum()
        };
        let c = self.counters;
        u128::from(c.available) + u128::from(c.reserved) + u128::from(c.sold) == u128::from(c.total)
            && c.reserved == sum(OrderStatus::Reserved)
            && c.sold == sum(OrderStatus::Paid)
    }
}

/// Applies `command` to `state`: the reply a correct store gives, and the state after it
/// (`Cow::Borrowed` when nothing changed, so reads and refusals cost no clone).
pub fn step<'a>(state: &'a SkuState, command: &Command) -> (Cow<'a, SkuState>, Reply) {
    let (next, reply) = match *command {
        Command::CreateSku { stock } => create_sku(state, stock),
        Command::Restock { request, delta } => restock(state, request, delta),
        Command::Order { order, user, qty } => place_order(state, order, user, qty),
        Command::Pay { order } => transition(state, order, Transition::Pay),
        Command::Cancel { order } => transition(state, order, Transition::Cancel),
        Command::Refund { order, restock } => {
            transition(state, order, Transition::Refund { restock })
        }
        Command::ReadSku => (None, read_sku(state)),
        Command::ReadOrder { order } => (None, read_order(state, order)),
    };
    match next {
        Some(next) => {
            // A model that breaks the store's own invariants would judge histories wrongly:
            // stop loudly.
            assert!(
                next.holds_invariants(),
                "model broke its invariants: {next:?}"
            );
            (Cow::Owned(next), reply)
        }
        None => (Cow::Borrowed(state), reply),
    }
}

type Stepped = (Option<SkuState>, Reply);

fn sku_reply(http: u16, state: &SkuState) -> Reply {
    Reply {
        http,
        body: Body::Sku(state.counters),
    }
}

fn order_reply(http: u16, order: &OrderEntry) -> Reply {
    Reply {
        http,
        body: Body::Order(OrderSnapshot {
            user: order.user,
            qty: u64::from(order.qty),
            status: order.status,
        }),
    }
}

fn refuse(refusal: Refusal) -> Stepped {
    (None, Reply::refused(refusal))
}

fn create_sku(state: &SkuState, stock: u64) -> Stepped {
    if stock > MAX_COUNT {
        return refuse(Refusal::InvalidRequest);
    }
    match state.created_with {
        Some(created) if created == stock => (None, sku_reply(200, state)),
        Some(_) => refuse(Refusal::SkuExists),
        None => {
            let next = SkuState {
                created_with: Some(stock),
                counters: Counters {
                    total: stock,
                    available: stock,
                    ..Counters::default()
                },
                ..SkuState::default()
            };
            let reply = sku_reply(201, &next);
            (Some(next), reply)
        }
    }
}

fn restock(state: &SkuState, request: Id, delta: i64) -> Stepped {
    // Checks in the store's order: the gateway's validation, SKU, dedup, then the amount.
    if delta == 0 {
        return refuse(Refusal::InvalidRequest);
    }
    if !state.exists() {
        return refuse(Refusal::SkuNotFound);
    }
    let slot = state.restocks.binary_search_by_key(&request, |r| r.0);
    if let Ok(i) = slot {
        return if state.restocks[i].1 == delta {
            (None, sku_reply(200, state))
        } else {
            refuse(Refusal::RequestIdConflict)
        };
    }
    let magnitude = delta.unsigned_abs();
    let mut next = state.clone();
    let c = &mut next.counters;
    if delta > 0 {
        match c.total.checked_add(magnitude) {
            Some(total) if total <= MAX_COUNT => {
                c.total = total;
                c.available += magnitude;
            }
            // API.md: a restock past 2^53 − 1 is a 400.
            _ => return refuse(Refusal::InvalidRequest),
        }
    } else {
        if c.available < magnitude {
            return refuse(Refusal::InsufficientAvailable);
        }
        c.total -= magnitude;
        c.available -= magnitude;
    }
    // Refused restocks are not remembered (API.md): only an applied one enters the table.
    let at = slot.unwrap_err();
    next.restocks.insert(at, (request, delta));
    let reply = sku_reply(200, &next);
    (Some(next), reply)
}

fn place_order(state: &SkuState, order: Id, user: Id, qty: u64) -> Stepped {
    if qty == 0 || qty > MAX_QTY {
        return refuse(Refusal::InvalidRequest);
    }
    let slot = state.orders.binary_search_by_key(&order, |o| o.id);
    if let Ok(i) = slot {
        let existing = &state.orders[i];
        return if existing.user == user && u64::from(existing.qty) == qty {
            // Idempotent replay: the order as it stands now, never a second reservation.
            (None, order_reply(200, existing))
        } else {
            refuse(Refusal::OrderIdConflict)
        };
    }
    if !state.exists() {
        return refuse(Refusal::SkuNotFound);
    }
    if state.counters.available < qty {
        // Refusals leave no trace: a retry with this id is judged afresh.
        return refuse(Refusal::OutOfStock);
    }
    let mut next = state.clone();
    next.counters.available -= qty;
    next.counters.reserved += qty;
    let entry = OrderEntry {
        id: order,
        user,
        // qty <= MAX_QTY < u32::MAX, checked above.
        qty: qty as u32,
        status: OrderStatus::Reserved,
    };
    next.orders.insert(slot.unwrap_err(), entry);
    (Some(next), order_reply(201, &entry))
}

#[derive(Clone, Copy)]
enum Transition {
    Pay,
    Cancel,
    Refund { restock: bool },
}

fn transition(state: &SkuState, order: Id, transition: Transition) -> Stepped {
    use OrderStatus::*;
    let Ok(i) = state.orders.binary_search_by_key(&order, |o| o.id) else {
        return refuse(Refusal::OrderNotFound);
    };
    let current = state.orders[i];
    let qty = u64::from(current.qty);
    // (new status, counter movement) or a no-op / refusal, per API.md's transition rules.
    let target = match (transition, current.status) {
        (Transition::Pay, Reserved) => Paid,
        (Transition::Cancel, Reserved) => Cancelled,
        (Transition::Refund { .. }, Paid) => Refunded,
        (Transition::Pay, Paid)
        | (Transition::Cancel, Cancelled | Expired)
        | (Transition::Refund { .. }, Refunded) => return (None, order_reply(200, &current)),
        _ => return refuse(Refusal::InvalidTransition),
    };
    let mut next = state.clone();
    let c = &mut next.counters;
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
    next.orders[i].status = target;
    let reply = order_reply(200, &next.orders[i]);
    (Some(next), reply)
}

fn read_sku(state: &SkuState) -> Reply {
    if state.exists() {
        sku_reply(200, state)
    } else {
        Reply::refused(Refusal::SkuNotFound)
    }
}

fn read_order(state: &SkuState, order: Id) -> Reply {
    match state.order(order) {
        Some(entry) => order_reply(200, entry),
        None => Reply::refused(Refusal::OrderNotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(commands: &[Command]) -> (SkuState, Vec<Reply>) {
        let mut state = SkuState::default();
        let mut replies = Vec::new();
        for command in commands {
            let (next, reply) = step(&state, command);
            state = next.into_owned();
            replies.push(reply);
        }
        (state, replies)
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
        let (state, replies) = run(&[
            Command::ReadSku,
            Command::Order {
                order: 1,
                user: 1,
                qty: 1,
            },
            Command::Restock {
                request: 1,
                delta: 1,
            },
            Command::Pay { order: 1 },
            Command::ReadOrder { order: 1 },
        ]);
        assert_eq!(state, SkuState::default());
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
        let (state, replies) = run(&[
            Command::CreateSku { stock: 2 },
            Command::CreateSku { stock: 2 },
            Command::CreateSku { stock: 3 },
        ]);
        assert_eq!(http(&replies), vec![201, 200, 409]);
        assert_eq!(refusal(&replies[2]), Some(Refusal::SkuExists));
        assert_eq!(state.counters().total, 2);
    }

    #[test]
    fn orders_reserve_replay_conflict_and_run_out() {
        let (state, replies) = run(&[
            Command::CreateSku { stock: 3 },
            Command::Order {
                order: 1,
                user: 1,
                qty: 2,
            },
            Command::Order {
                order: 1,
                user: 1,
                qty: 2,
            },
            Command::Order {
                order: 1,
                user: 2,
                qty: 2,
            },
            Command::Order {
                order: 2,
                user: 1,
                qty: 2,
            },
            Command::Order {
                order: 2,
                user: 1,
                qty: 1,
            },
            Command::Order {
                order: 3,
                user: 1,
                qty: 0,
            },
        ]);
        assert_eq!(http(&replies), vec![201, 201, 200, 409, 409, 201, 400]);
        assert_eq!(refusal(&replies[3]), Some(Refusal::OrderIdConflict));
        assert_eq!(refusal(&replies[4]), Some(Refusal::OutOfStock));
        let c = state.counters();
        assert_eq!((c.total, c.available, c.reserved), (3, 0, 3));
    }

    #[test]
    fn pay_cancel_refund_follow_the_transition_rules() {
        let (state, replies) = run(&[
            Command::CreateSku { stock: 10 },
            Command::Order {
                order: 1,
                user: 1,
                qty: 2,
            },
            Command::Order {
                order: 2,
                user: 1,
                qty: 3,
            },
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
        ]);
        assert_eq!(
            http(&replies),
            vec![201, 201, 201, 200, 200, 409, 200, 200, 409, 409, 200, 200, 409]
        );
        assert_eq!(
            state.counters(),
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
        let (state, replies) = run(&[
            Command::CreateSku { stock: 2 },
            Command::Restock {
                request: 1,
                delta: 3,
            },
            Command::Restock {
                request: 1,
                delta: 3,
            },
            Command::Restock {
                request: 1,
                delta: 4,
            },
            Command::Order {
                order: 1,
                user: 1,
                qty: 4,
            },
            Command::Restock {
                request: 2,
                delta: -2,
            },
            Command::Restock {
                request: 2,
                delta: -1,
            },
            Command::Restock {
                request: 3,
                delta: 0,
            },
        ]);
        assert_eq!(http(&replies), vec![201, 200, 200, 409, 201, 409, 200, 400]);
        assert_eq!(refusal(&replies[3]), Some(Refusal::RequestIdConflict));
        assert_eq!(refusal(&replies[5]), Some(Refusal::InsufficientAvailable));
        // The refused -2 was not remembered, so the same request id with -1 applied afresh.
        let c = state.counters();
        assert_eq!((c.total, c.available, c.reserved), (4, 0, 4));
    }

    #[test]
    fn restock_past_max_count_is_invalid() {
        let (_, replies) = run(&[
            Command::CreateSku { stock: MAX_COUNT },
            Command::Restock {
                request: 1,
                delta: 1,
            },
        ]);
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
