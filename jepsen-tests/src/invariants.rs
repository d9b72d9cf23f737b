//! Cheap whole-history invariants (jepsen.md §3 "Invariants beyond linearizability"): each is
//! one pass over the history, so they answer even when the linearizability search runs out of
//! budget, and each names what broke in words a person can act on.
//!
//! "Final reads" are the ok reads of a SKU, or of an order on it, invoked after every write
//! touching that SKU had completed (the harness takes them after healing and recovery). An
//! invariant that needs final reads and finds none reports a violation: a check that could
//! not look must not pass.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::history::{Completion, History, Input, Op, OpKind, Output, SkuView};
use crate::model::OrderStatus;
use crate::Verdict;

/// At most this many violations of one invariant are printed; the rest are counted.
const SHOWN_PER_INVARIANT: usize = 5;

/// The invariants, named for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Invariant {
    /// Every ok SKU answer has `available + reserved + sold == total`.
    SkuBalance,
    /// Never more reserved and sold than was ever stocked.
    NoOversell,
    /// Acknowledged orders are never lost and never move back to an earlier status.
    AckedOrdersSurvive,
    /// Final `sold`/`reserved` equal the qty of paid/reserved orders.
    NoDoublePay,
    /// An order whose create definitely failed never appears.
    FailedCreatesInvisible,
    /// `revision` never decreases across real-time-ordered ok answers.
    RevisionsMonotonic,
    /// All nodes end with the same applied state.
    Convergence,
    /// The run did enough work to mean something.
    EnoughOkOps,
}

impl Invariant {
    pub fn name(self) -> &'static str {
        match self {
            Invariant::SkuBalance => "sku-balance",
            Invariant::NoOversell => "no-oversell",
            Invariant::AckedOrdersSurvive => "acked-orders-survive",
            Invariant::NoDoublePay => "no-double-pay",
            Invariant::FailedCreatesInvisible => "failed-creates-invisible",
            Invariant::RevisionsMonotonic => "revisions-monotonic",
            Invariant::Convergence => "convergence",
            Invariant::EnoughOkOps => "enough-ok-ops",
        }
    }
}

/// One broken invariant, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: Invariant,
    pub text: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.invariant.name(), self.text)
    }
}

fn violation(invariant: Invariant, text: String) -> Violation {
    Violation { invariant, text }
}

/// What a node reported after the run (the caller gathers it, e.g. from `GET /v1/cluster`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFinal {
    pub node: u64,
    /// `None`: the node did not answer.
    pub last_applied: Option<u64>,
    /// A digest of the whole applied state, with the index it was taken at.
    pub digest: Option<String>,
}

fn describe(op: &Op) -> String {
    format!("#{} ({})", op.index, op.input)
}

fn sku_views(history: &History) -> impl Iterator<Item = (&Op, &SkuView)> {
    history.ops().iter().filter_map(|op| match &op.output {
        Some(Output::Sku(view)) if op.is_success() => Some((op, view)),
        _ => None,
    })
}

fn sku_name(op: &Op) -> &str {
    // SKU bodies come only from single-SKU kinds (History::push checks the body's kind).
    op.input.skus().first().copied().unwrap_or("?")
}

/// Invariant 1: every ok SKU answer balances.
pub fn sku_balance(history: &History) -> Vec<Violation> {
    sku_views(history)
        .filter(|(_, v)| {
            u128::from(v.available) + u128::from(v.reserved) + u128::from(v.sold)
                != u128::from(v.total)
        })
        .map(|(op, v)| {
            violation(
                Invariant::SkuBalance,
                format!(
                    "{} answered available {} + reserved {} + sold {} != total {}",
                    describe(op),
                    v.available,
                    v.reserved,
                    v.sold,
                    v.total
                ),
            )
        })
        .collect()
}

/// Whether an op may have been applied (ok with 2xx, or info).
fn maybe_applied(op: &Op) -> bool {
    op.is_success() || op.completion == Completion::Info
}

/// The qty an order input puts on `sku`.
fn qty_on(input: &Input, sku: &str) -> u64 {
    match input {
        Input::Order { items, .. } => items.iter().filter(|i| i.sku == sku).map(|i| i.qty).sum(),
        _ => 0,
    }
}

/// Invariant 2: no SKU answer shows more reserved + sold than was ever stocked less the units
/// surely taken out before the read was sent (acknowledged withdrawals and refunds without
/// restock), and the units acknowledged as reserved by new orders or withdrawn by restocks
/// never exceed the units stocked plus units that may have been returned to `available` (by a
/// cancel, a restocking refund, or an observed expiry).
pub fn no_oversell(history: &History) -> Vec<Violation> {
    let ops = history.ops();
    // Upper bound on units ever stocked per SKU: the largest create that may have applied,
    // plus each restock request's largest positive delta that may have applied (dedup by id).
    let mut created: BTreeMap<&str, u64> = BTreeMap::new();
    let mut restocks: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for op in ops.iter().filter(|op| maybe_applied(op)) {
        match &op.input {
            Input::CreateSku { sku, stock, .. } => {
                let entry = created.entry(sku).or_default();
                *entry = (*entry).max(*stock);
            }
            Input::Restock {
                sku,
                request_id,
                delta,
            } if *delta > 0 => {
                let entry = restocks.entry((sku, request_id)).or_default();
                *entry = (*entry).max(delta.unsigned_abs());
            }
            _ => {}
        }
    }
    let mut stocked: BTreeMap<&str, u128> = created
        .iter()
        .map(|(sku, stock)| (*sku, u128::from(*stock)))
        .collect();
    for ((sku, _), delta) in &restocks {
        *stocked.entry(sku).or_default() += u128::from(*delta);
    }
    let stocked_on = |sku: &str| stocked.get(sku).copied().unwrap_or(0);
    let removals = Removals::of(ops);

    let mut violations = Vec::new();
    for (op, v) in sku_views(history) {
        let sku = sku_name(op);
        let held = u128::from(v.reserved) + u128::from(v.sold);
        let removed = removals.before(sku, op.invoke_ns);
        if held + removed > stocked_on(sku) {
            violations.push(violation(
                Invariant::NoOversell,
                format!(
                    "{} shows reserved {} + sold {} but at most {} units were ever stocked on \
                     {sku}, and {removed} were withdrawn or refunded without restock before it",
                    describe(op),
                    v.reserved,
                    v.sold,
                    stocked_on(sku)
                ),
            ));
        }
    }

    // Orders that may have given their units back (at most once each: cancel/expiry from
    // reserved and refund from paid exclude each other).
    let mut returned: BTreeSet<&str> = BTreeSet::new();
    for op in ops {
        let gives_back = match &op.input {
            Input::Cancel { .. } => maybe_applied(op),
            Input::Refund { restock: true, .. } => maybe_applied(op),
            _ => false,
        } || matches!(&op.output, Some(Output::Order(o))
            if op.is_success() && o.status == OrderStatus::Expired);
        if gives_back {
            if let Some(order_id) = op.input.order_id() {
                returned.insert(order_id);
            }
        }
    }
    let mut order_qty: BTreeMap<&str, &Input> = BTreeMap::new();
    let mut acked: BTreeMap<&str, (u128, Vec<u64>)> = BTreeMap::new();
    for op in ops {
        if let Input::Order {
            order_id, items, ..
        } = &op.input
        {
            order_qty.entry(order_id).or_insert(&op.input);
            if op.completion == Completion::Ok && op.http == Some(201) {
                for item in items {
                    let entry = acked.entry(&item.sku).or_default();
                    entry.0 += u128::from(item.qty);
                    entry.1.push(op.index);
                }
            }
        }
    }
    // Withdrawals take units out of `available` as orders do.
    for (sku, units, index) in &removals.withdrawn {
        let entry = acked.entry(sku).or_default();
        entry.0 += u128::from(*units);
        entry.1.push(*index);
    }
    for (sku, (reserved, indices)) in acked {
        let given_back: u128 = returned
            .iter()
            .filter_map(|id| order_qty.get(id))
            .map(|input| u128::from(qty_on(input, sku)))
            .sum();
        let bound = stocked_on(sku) + given_back;
        if reserved > bound {
            violations.push(violation(
                Invariant::NoOversell,
                format!(
                    "{} orders and withdrawals on {sku} were acknowledged 201 for {reserved} units, \
                     but at most {} were stocked and at most {given_back} given back (ops {:?})",
                    indices.len(),
                    stocked_on(sku),
                    first_few(&indices)
                ),
            ));
        }
    }
    violations
}

/// Units surely taken out of SKUs' totals: acknowledged withdrawals (once per request id:
/// replays are no-ops) and acknowledged refunds without restock (once per order, and only for
/// orders no restocking refund may have refunded first: a refund of a refunded order is a
/// no-op `200`).
#[derive(Default)]
struct Removals<'a> {
    /// Per SKU: (acknowledged at, units), sorted by time, with running sums.
    by_sku: BTreeMap<&'a str, Vec<(u64, u128)>>,
    /// (SKU, units, op index) of each acknowledged withdrawal.
    withdrawn: Vec<(&'a str, u64, u64)>,
}

impl<'a> Removals<'a> {
    fn of(ops: &'a [Op]) -> Removals<'a> {
        let restocked: BTreeSet<&str> = ops
            .iter()
            .filter(|op| maybe_applied(op))
            .filter_map(|op| match &op.input {
                Input::Refund {
                    order_id,
                    restock: true,
                    ..
                } => Some(order_id.as_str()),
                _ => None,
            })
            .collect();
        // The first acknowledgement of each removal, by (sku, is a withdrawal, request or
        // order id): (at, units, op index).
        let mut first: BTreeMap<(&str, bool, &str), (u64, u64, u64)> = BTreeMap::new();
        let mut note = |key, at, units, index| {
            let entry = first.entry(key).or_insert((at, units, index));
            if at < entry.0 {
                *entry = (at, units, index);
            }
        };
        for op in ops.iter().filter(|op| op.is_success()) {
            match (&op.input, &op.output) {
                (
                    Input::Restock {
                        sku,
                        request_id,
                        delta,
                    },
                    _,
                ) if *delta < 0 => {
                    note(
                        (sku.as_str(), true, request_id.as_str()),
                        op.complete_ns,
                        delta.unsigned_abs(),
                        op.index,
                    );
                }
                (
                    Input::Refund {
                        order_id,
                        restock: false,
                        ..
                    },
                    Some(Output::Order(view)),
                ) if !restocked.contains(order_id.as_str()) => {
                    // The answer names the order's items: what left each SKU's total.
                    for item in &view.items {
                        note(
                            (item.sku.as_str(), false, order_id.as_str()),
                            op.complete_ns,
                            item.qty,
                            op.index,
                        );
                    }
                }
                _ => {}
            }
        }
        let mut removals = Removals::default();
        for ((sku, withdrawal, _), (at, units, index)) in first {
            removals
                .by_sku
                .entry(sku)
                .or_default()
                .push((at, u128::from(units)));
            if withdrawal {
                removals.withdrawn.push((sku, units, index));
            }
        }
        for list in removals.by_sku.values_mut() {
            list.sort_unstable();
            let mut sum = 0;
            for entry in list.iter_mut() {
                sum += entry.1;
                entry.1 = sum;
            }
        }
        removals
    }

    /// Units surely removed from `sku` by ops acknowledged before `at`.
    fn before(&self, sku: &str, at: u64) -> u128 {
        let Some(list) = self.by_sku.get(sku) else {
            return 0;
        };
        match list.partition_point(|entry| entry.0 < at) {
            0 => 0,
            n => list[n - 1].1,
        }
    }
}

fn first_few(indices: &[u64]) -> Vec<u64> {
    indices.iter().copied().take(10).collect()
}

/// A set of order statuses as a bitmask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Statuses(u8);

impl Statuses {
    const ANY: Statuses = Statuses(0b1_1111);

    fn bit(status: OrderStatus) -> u8 {
        1 << (status as u8)
    }

    fn reachable_from(status: OrderStatus) -> Statuses {
        Statuses(
            status
                .reachable()
                .iter()
                .fold(0, |m, s| m | Statuses::bit(*s)),
        )
    }

    fn contains(self, status: OrderStatus) -> bool {
        self.0 & Statuses::bit(status) != 0
    }

    fn names(self) -> String {
        OrderStatus::ALL
            .iter()
            .filter(|s| self.contains(**s))
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// What an ok op says about its order's status from then on (statuses it may still reach),
/// or `None` if it says nothing (a refusal, a 404).
fn status_floor(op: &Op) -> Option<Statuses> {
    if !op.is_success() {
        return None;
    }
    if let Some(Output::Order(view)) = &op.output {
        return Some(Statuses::reachable_from(view.status));
    }
    // A 2xx without a recorded body: what the transition guarantees.
    Some(match op.kind() {
        OpKind::Pay => Statuses::reachable_from(OrderStatus::Paid),
        OpKind::Cancel => {
            Statuses(Statuses::bit(OrderStatus::Cancelled) | Statuses::bit(OrderStatus::Expired))
        }
        OpKind::Refund => Statuses::reachable_from(OrderStatus::Refunded),
        _ => Statuses::ANY,
    })
}

/// Per SKU, the completion time of the last write touching it; final reads come after.
fn quiescence(history: &History) -> BTreeMap<&str, u64> {
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    for op in history.ops().iter().filter(|op| !op.kind().is_read()) {
        for sku in op.input.skus() {
            let entry = last.entry(sku).or_default();
            *entry = (*entry).max(op.complete_ns);
        }
    }
    last
}

fn is_final(op: &Op, quiet: &BTreeMap<&str, u64>) -> bool {
    op.completion == Completion::Ok
        && op
            .input
            .skus()
            .iter()
            .all(|sku| quiet.get(sku).is_none_or(|&t| op.invoke_ns > t))
}

/// The last final read of each order id and of each SKU.
struct FinalReads<'h> {
    orders: BTreeMap<&'h str, &'h Op>,
    skus: BTreeMap<&'h str, &'h Op>,
}

fn final_reads(history: &History) -> FinalReads<'_> {
    let quiet = quiescence(history);
    let mut reads = FinalReads {
        orders: BTreeMap::new(),
        skus: BTreeMap::new(),
    };
    for op in history.ops().iter().filter(|op| is_final(op, &quiet)) {
        let slot = match &op.input {
            Input::ReadOrder { order_id, .. } => reads.orders.entry(order_id.as_str()),
            Input::ReadSku { sku } => reads.skus.entry(sku.as_str()),
            _ => continue,
        };
        let latest = slot.or_insert(op);
        if op.complete_ns >= latest.complete_ns {
            *latest = op;
        }
    }
    reads
}

/// Ops grouped by the order they are about, in history order.
fn ops_by_order(history: &History) -> BTreeMap<&str, Vec<&Op>> {
    let mut by_order: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history.ops() {
        if let Some(order_id) = op.input.order_id() {
            by_order.entry(order_id).or_default().push(op);
        }
    }
    by_order
}

/// Invariant 3: an order acknowledged as created is present in the final reads; and no ok
/// answer about an order contradicts what completed before it was invoked: never "not found"
/// once it was seen, and never a status unreachable from an earlier acknowledged or read one
/// (e.g. a paid order never reads as cancelled).
pub fn acked_orders_survive(history: &History) -> Vec<Violation> {
    let mut violations = Vec::new();
    let finals = final_reads(history);
    for (order_id, ops) in ops_by_order(history) {
        for later in &ops {
            if later.completion != Completion::Ok {
                continue;
            }
            // Everything known about this order before `later` was invoked.
            let earlier: Vec<(&Op, Statuses)> = ops
                .iter()
                .filter(|op| op.complete_ns < later.invoke_ns)
                .filter_map(|op| status_floor(op).map(|floor| (*op, floor)))
                .collect();
            let Some((witness, _)) = earlier.last() else {
                continue;
            };
            if later.error_code() == Some("order_not_found") {
                violations.push(violation(
                    Invariant::AckedOrdersSurvive,
                    format!(
                        "order {order_id} was answered by {} but {} then found no such order",
                        describe(witness),
                        describe(later)
                    ),
                ));
                continue;
            }
            if let Some(Output::Order(view)) = &later.output {
                if let Some((op, floor)) = earlier.iter().find(|(_, f)| !f.contains(view.status)) {
                    violations.push(violation(
                        Invariant::AckedOrdersSurvive,
                        format!(
                            "order {order_id} read as {} by {}, but {} had completed before, \
                             after which it can only be {}",
                            view.status,
                            describe(later),
                            describe(op),
                            floor.names()
                        ),
                    ));
                }
            }
        }
        let acked = ops
            .iter()
            .find(|op| op.kind() == OpKind::Order && op.is_success());
        if let Some(ack) = acked {
            if !finals.orders.contains_key(order_id) {
                violations.push(violation(
                    Invariant::AckedOrdersSurvive,
                    format!(
                        "order {order_id} was acknowledged by {} but never read after the run, \
                         so it cannot be shown to survive",
                        describe(ack)
                    ),
                ));
            }
        }
    }
    violations
}

/// Invariant 4: in the final state of every SKU, `sold` equals the qty of its paid orders and
/// `reserved` the qty of its reserved orders (a double pay or a double refund breaks one).
pub fn no_double_pay(history: &History) -> Vec<Violation> {
    let mut violations = Vec::new();
    let finals = final_reads(history);
    // Orders that may exist on each SKU: creates that may have applied, plus any order an ok
    // answer showed to exist.
    let mut orders_on: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut skus: BTreeSet<&str> = BTreeSet::new();
    for op in history.ops() {
        if op.completion == Completion::Fail {
            continue;
        }
        skus.extend(op.input.skus());
        let exists = match op.kind() {
            OpKind::Order => maybe_applied(op),
            _ => op.is_success(),
        };
        if let (true, Some(order_id)) = (exists, op.input.order_id()) {
            for sku in op.input.skus() {
                orders_on.entry(sku).or_default().insert(order_id);
            }
        }
    }
    for sku in skus {
        let Some(read) = finals.skus.get(sku) else {
            violations.push(violation(
                Invariant::NoDoublePay,
                format!("SKU {sku} has no final read, so sold/reserved cannot be checked"),
            ));
            continue;
        };
        let Some(Output::Sku(view)) = &read.output else {
            // sku_not_found at the end: then no order may hold units either.
            if orders_on.get(sku).is_some_and(|o| !o.is_empty()) {
                violations.push(violation(
                    Invariant::NoDoublePay,
                    format!(
                        "SKU {sku} reads as not found at the end ({}) but has orders",
                        describe(read)
                    ),
                ));
            }
            continue;
        };
        let (mut paid, mut reserved) = (0u128, 0u128);
        let mut unread = Vec::new();
        for order_id in orders_on.get(sku).into_iter().flatten() {
            match finals.orders.get(order_id).map(|op| &op.output) {
                None => unread.push(*order_id),
                Some(Some(Output::Order(order))) => {
                    let qty: u64 = order
                        .items
                        .iter()
                        .filter(|i| i.sku == sku)
                        .map(|i| i.qty)
                        .sum();
                    match order.status {
                        OrderStatus::Paid => paid += u128::from(qty),
                        OrderStatus::Reserved => reserved += u128::from(qty),
                        _ => {}
                    }
                }
                // Not found at the end: it holds nothing (a lost ack is invariant 3's).
                Some(_) => {}
            }
        }
        if !unread.is_empty() {
            violations.push(violation(
                Invariant::NoDoublePay,
                format!(
                    "SKU {sku}: {} orders have no final read (e.g. {:?}), so sold/reserved cannot be checked",
                    unread.len(),
                    unread.iter().take(5).collect::<Vec<_>>()
                ),
            ));
            continue;
        }
        if u128::from(view.sold) != paid || u128::from(view.reserved) != reserved {
            violations.push(violation(
                Invariant::NoDoublePay,
                format!(
                    "SKU {sku} ends with sold {} and reserved {} ({}), but its orders hold {paid} paid \
                     and {reserved} reserved",
                    view.sold,
                    view.reserved,
                    describe(read)
                ),
            ));
        }
    }
    violations
}

/// Invariant 5: an order none of whose creates may have applied (every attempt failed or was
/// refused) never shows up as existing.
pub fn failed_creates_invisible(history: &History) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (order_id, ops) in ops_by_order(history) {
        let attempts: Vec<&&Op> = ops.iter().filter(|op| op.kind() == OpKind::Order).collect();
        if attempts.iter().any(|op| maybe_applied(op)) {
            continue;
        }
        // 2xx answers about the order, and refusals that imply it exists.
        let seen = ops.iter().find(|op| {
            op.completion == Completion::Ok
                && (op.is_success()
                    || matches!(
                        op.error_code(),
                        Some("order_id_conflict" | "invalid_transition")
                    ))
        });
        if let Some(seen) = seen {
            let how = match attempts.first() {
                Some(first) => format!(
                    "its creates all failed or were refused (e.g. {})",
                    describe(first)
                ),
                None => "it was never created".to_owned(),
            };
            violations.push(violation(
                Invariant::FailedCreatesInvisible,
                format!(
                    "order {order_id} exists according to {}, but {how}",
                    describe(seen)
                ),
            ));
        }
    }
    violations
}

/// Invariant 6: for each SKU and each order, no ok answer shows a lower `revision` than an
/// answer that completed before it was invoked.
pub fn revisions_monotonic(history: &History) -> Vec<Violation> {
    // (key, invoke, complete, revision, op)
    let mut by_key: BTreeMap<(bool, &str), Vec<&Op>> = BTreeMap::new();
    for op in history.ops().iter().filter(|op| op.is_success()) {
        match &op.output {
            Some(Output::Sku(_)) => by_key.entry((true, sku_name(op))).or_default().push(op),
            Some(Output::Order(_)) => {
                if let Some(order_id) = op.input.order_id() {
                    by_key.entry((false, order_id)).or_default().push(op);
                }
            }
            _ => {}
        }
    }
    let revision = |op: &Op| match &op.output {
        Some(Output::Sku(v)) => v.revision,
        Some(Output::Order(v)) => v.revision,
        _ => 0,
    };
    let mut violations = Vec::new();
    for ((is_sku, key), ops) in by_key {
        // Sweep: answers by completion, queries by invocation, carrying the highest revision
        // completed so far.
        let mut completed = ops.clone();
        completed.sort_by_key(|op| op.complete_ns);
        let mut queries = ops;
        queries.sort_by_key(|op| op.invoke_ns);
        let mut highest: Option<&Op> = None;
        let mut next = 0;
        for query in queries {
            while next < completed.len() && completed[next].complete_ns < query.invoke_ns {
                if highest.is_none_or(|h| revision(completed[next]) > revision(h)) {
                    highest = Some(completed[next]);
                }
                next += 1;
            }
            if let Some(h) = highest.filter(|h| revision(h) > revision(query)) {
                violations.push(violation(
                    Invariant::RevisionsMonotonic,
                    format!(
                        "{} {key}: {} answered revision {} after {} had answered {}",
                        if is_sku { "SKU" } else { "order" },
                        describe(query),
                        revision(query),
                        describe(h),
                        revision(h)
                    ),
                ));
            }
        }
    }
    violations
}

/// Invariant 7: after the run every node answers, has applied the same log prefix, and
/// holds the same state (equal digests of its whole state machine at that index). A node
/// that does not answer, or cannot give a digest, is a failure, never a silent skip.
pub fn convergence(nodes: &[NodeFinal]) -> Vec<Violation> {
    let fail = |text: String| violation(Invariant::Convergence, text);
    if nodes.is_empty() {
        return vec![fail("no node reported its final state".to_owned())];
    }
    let mut violations = Vec::new();
    for node in nodes {
        if node.last_applied.is_none() {
            violations.push(fail(format!(
                "node {} did not answer its status",
                node.node
            )));
        } else if node.digest.is_none() {
            violations.push(fail(format!("node {} gave no state digest", node.node)));
        }
    }
    let answered: Vec<&NodeFinal> = nodes.iter().filter(|n| n.last_applied.is_some()).collect();
    if let Some(first) = answered.first() {
        for node in &answered[1..] {
            if node.last_applied != first.last_applied {
                violations.push(fail(format!(
                    "node {} applied up to {} but node {} up to {}",
                    node.node,
                    node.last_applied.unwrap_or_default(),
                    first.node,
                    first.last_applied.unwrap_or_default()
                )));
            }
        }
    }
    let digests: Vec<&NodeFinal> = nodes.iter().filter(|n| n.digest.is_some()).collect();
    if let Some(reference) = digests.first() {
        for node in &digests[1..] {
            if node.digest != reference.digest {
                violations.push(fail(format!(
                    "node {} has state digest {} but node {} has {}",
                    node.node,
                    node.digest.as_deref().unwrap_or_default(),
                    reference.node,
                    reference.digest.as_deref().unwrap_or_default()
                )));
            }
        }
    }
    violations
}

/// A run with fewer ok operations than `min_ok` has not exercised anything (an idle or
/// permanently partitioned cluster would pass every other check).
pub fn enough_ok_ops(history: &History, min_ok: usize) -> Vec<Violation> {
    let ok = history
        .ops()
        .iter()
        .filter(|op| op.completion == Completion::Ok)
        .count();
    if ok >= min_ok {
        return Vec::new();
    }
    vec![violation(
        Invariant::EnoughOkOps,
        format!("only {ok} ok operations, at least {min_ok} required"),
    )]
}

/// Every invariant's violations for one run.
#[derive(Clone, Debug, Default)]
pub struct InvariantReport {
    pub results: Vec<(Invariant, Vec<Violation>)>,
}

impl InvariantReport {
    /// Pass only if no invariant was violated.
    pub fn verdict(&self) -> Verdict {
        if self.results.iter().all(|(_, v)| v.is_empty()) {
            Verdict::Pass
        } else {
            Verdict::Fail
        }
    }

    /// All violations, invariant by invariant.
    pub fn violations(&self) -> impl Iterator<Item = &Violation> {
        self.results.iter().flat_map(|(_, v)| v)
    }
}

/// Runs every invariant.
pub fn check_all(history: &History, nodes: &[NodeFinal], min_ok_ops: usize) -> InvariantReport {
    InvariantReport {
        results: vec![
            (Invariant::SkuBalance, sku_balance(history)),
            (Invariant::NoOversell, no_oversell(history)),
            (Invariant::AckedOrdersSurvive, acked_orders_survive(history)),
            (Invariant::NoDoublePay, no_double_pay(history)),
            (
                Invariant::FailedCreatesInvisible,
                failed_creates_invisible(history),
            ),
            (Invariant::RevisionsMonotonic, revisions_monotonic(history)),
            (Invariant::Convergence, convergence(nodes)),
            (Invariant::EnoughOkOps, enough_ok_ops(history, min_ok_ops)),
        ],
    }
}

impl fmt::Display for InvariantReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (invariant, violations) in &self.results {
            if violations.is_empty() {
                writeln!(f, "invariant {}: pass", invariant.name())?;
                continue;
            }
            writeln!(
                f,
                "invariant {}: FAIL ({} violations)",
                invariant.name(),
                violations.len()
            )?;
            for v in violations.iter().take(SHOWN_PER_INVARIANT) {
                writeln!(f, "  {}", v.text)?;
            }
            if violations.len() > SHOWN_PER_INVARIANT {
                writeln!(
                    f,
                    "  ... and {} more",
                    violations.len() - SHOWN_PER_INVARIANT
                )?;
            }
        }
        Ok(())
    }
}
