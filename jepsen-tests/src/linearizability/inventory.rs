//! The inventory instance of the checker: the recorded history split into groups of SKUs
//! (one SKU each, unless multi-item orders join several) and each group checked against the
//! [`model`] of its SKUs and their orders.
//!
//! Order transitions and reads carry one of their order's SKUs, which puts them in its group.
//! `fail` ops are dropped (they never happened), and so are `info` reads (no effect). A group
//! holds every op on its SKUs, so multi-item workloads keep groups small by drawing each
//! order's items within a few SKUs.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::checker::{brute_force, check_part, PartCheck};
use super::search::INFINITY;
use super::{Model, Operation};
use crate::history::{fmt_duration_ns, Completion, History, Input, Op, Output};
use crate::model::{
    self, AtEdge, Body, Command, Counters, Id, ItemLists, Observed, OrderSnapshot, Refusal, Reply,
    SkuIx, StoreState,
};
use crate::sale_window::WallInterval;
use crate::Verdict;

/// Orders listed when describing a model state.
const MAX_ORDERS_SHOWN: usize = 12;
/// Longer windows are printed as their first and last ops.
const MAX_WINDOW_SHOWN: usize = 24;

/// Why a history cannot be checked by this checker (a harness or workload error, not a
/// verdict about the cluster).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CheckError {
    #[error("{skus} SKUs (from {first}) are joined by multi-item orders into one group; the checker takes at most 65536")]
    GroupTooLarge { skus: usize, first: String },
}

/// One op of a group's history, as the search sees it.
#[derive(Clone, Debug)]
pub struct CheckedOp {
    /// Index of the op in the [`History`].
    pub history_index: usize,
    pub call: u64,
    /// `u64::MAX` (+infinity) for `info` ops.
    pub ret: u64,
    pub command: Command,
    /// `None` for `info` ops: any reply is acceptable.
    pub observed: Option<Observed>,
}

/// The ops of one group of SKUs, with the names behind its interned ids.
#[derive(Clone, Debug)]
pub struct SkuHistory {
    /// The group's SKUs joined by `+` (one SKU: its name).
    pub sku: String,
    /// The group's SKUs, by [`SkuIx`].
    pub skus: Vec<String>,
    pub ops: Vec<CheckedOp>,
    /// `names[id]` is the order/user/request id interned as `id`.
    pub names: Vec<String>,
    /// The item lists its commands and answers name.
    pub lists: ItemLists,
}

impl SkuHistory {
    pub fn info_ops(&self) -> usize {
        self.ops.iter().filter(|op| op.observed.is_none()).count()
    }
}

#[derive(Default)]
struct Interner {
    ids: HashMap<String, Id>,
    names: Vec<String>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> Id {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        // A group's history has far fewer than 2^32 distinct ids; the checker would run out of
        // memory long before.
        let id = Id::try_from(self.names.len()).expect("fewer than 2^32 ids per group");
        self.ids.insert(name.to_owned(), id);
        self.names.push(name.to_owned());
        id
    }
}

/// Splits the history into groups of SKUs that no op spans (sorted by name), dropping `fail`
/// ops and `info` reads.
///
/// Two SKUs are in one group when an order has items of both, or when ops about one order id
/// name both (an order's transitions and reads are filed under one of its SKUs). A history is
/// linearizable iff each group's ops are (P-compositionality): no op touches two groups.
///
/// Without the wall clock at the history's zero no order is placed in time, so a sale
/// window may have been open or closed for any of them (see [`partition_on_wall_clock`]).
pub fn partition(history: &History) -> Result<Vec<SkuHistory>, CheckError> {
    partition_with(history, None)
}

/// [`partition`], each order placed on the harness's wall clock (`origin_wall_ms` at the
/// history's zero) so that the model can judge sale windows.
pub fn partition_on_wall_clock(
    history: &History,
    origin_wall_ms: u64,
) -> Result<Vec<SkuHistory>, CheckError> {
    partition_with(history, Some(origin_wall_ms))
}

/// When `op` ran, on the wall clock (the deadline checks convert the same way).
fn wall_interval(op: &Op, origin_wall_ms: Option<u64>) -> WallInterval {
    let Some(origin) = origin_wall_ms else {
        return WallInterval::UNKNOWN;
    };
    let wall = |ns: u64| origin + ns / 1_000_000;
    WallInterval {
        invoke_ms: wall(op.invoke_ns),
        complete_ms: match op.completion {
            Completion::Ok => wall(op.complete_ns),
            _ => u64::MAX,
        },
    }
}

fn partition_with(
    history: &History,
    origin_wall_ms: Option<u64>,
) -> Result<Vec<SkuHistory>, CheckError> {
    let mut skus = SkuGroups::default();
    // An order id's first SKU: later ops about the order join it.
    let mut order_skus: HashMap<&str, usize> = HashMap::new();
    for op in history.ops() {
        let named: Vec<usize> = op.input.skus().into_iter().map(|s| skus.add(s)).collect();
        for pair in named.windows(2) {
            skus.join(pair[0], pair[1]);
        }
        if let (Some(order_id), Some(&first)) = (op.input.order_id(), named.first()) {
            let anchor = *order_skus.entry(order_id).or_insert(first);
            skus.join(anchor, first);
        }
    }
    let groups = skus.groups()?;
    let mut parts: Vec<(Vec<CheckedOp>, Interner, ItemLists)> =
        groups.iter().map(|_| Default::default()).collect();
    for (position, op) in history.ops().iter().enumerate() {
        let dropped = match op.completion {
            Completion::Fail => true,
            Completion::Info => op.kind().is_read(),
            Completion::Ok => false,
        };
        if dropped {
            continue;
        }
        let first = op.input.skus()[0];
        let (group, _) = skus.place(first);
        let names = &groups[group];
        let (ops, interner, lists) = &mut parts[group];
        let at = wall_interval(op, origin_wall_ms);
        let command = command(&op.input, at, names, &skus, interner, lists);
        let observed = match op.completion {
            Completion::Ok => Some(observed(op, &skus, group, interner, lists)),
            _ => None,
        };
        ops.push(CheckedOp {
            history_index: position,
            call: op.invoke_ns,
            ret: if observed.is_some() {
                op.complete_ns
            } else {
                INFINITY
            },
            command,
            observed,
        });
    }
    Ok(groups
        .into_iter()
        .zip(parts)
        .map(|(skus, (ops, interner, lists))| SkuHistory {
            sku: skus.join("+"),
            skus,
            ops,
            names: interner.names,
            lists,
        })
        .collect())
}

/// The SKUs of a history, joined into groups (union-find over SKU names).
#[derive(Default)]
struct SkuGroups {
    index: HashMap<String, usize>,
    names: Vec<String>,
    parent: Vec<usize>,
    /// After [`groups`](Self::groups): each SKU's (group, index within the group).
    placed: Vec<(usize, SkuIx)>,
}

impl SkuGroups {
    fn add(&mut self, sku: &str) -> usize {
        if let Some(&i) = self.index.get(sku) {
            return i;
        }
        let i = self.names.len();
        self.index.insert(sku.to_owned(), i);
        self.names.push(sku.to_owned());
        self.parent.push(i);
        i
    }

    fn root(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn join(&mut self, a: usize, b: usize) {
        let (a, b) = (self.root(a), self.root(b));
        self.parent[a.max(b)] = a.min(b);
    }

    /// The groups' SKU names, each sorted, groups sorted by their first name; and from now on
    /// [`place`](Self::place) answers.
    fn groups(&mut self) -> Result<Vec<Vec<String>>, CheckError> {
        let mut by_root: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for i in 0..self.names.len() {
            let root = self.root(i);
            by_root.entry(root).or_default().push(i);
        }
        let mut groups: Vec<Vec<usize>> = by_root.into_values().collect();
        for members in &mut groups {
            members.sort_by(|&a, &b| self.names[a].cmp(&self.names[b]));
        }
        groups.sort_by(|a, b| self.names[a[0]].cmp(&self.names[b[0]]));
        self.placed = vec![(0, 0); self.names.len()];
        let mut named = Vec::with_capacity(groups.len());
        for (group, members) in groups.iter().enumerate() {
            if members.len() > usize::from(SkuIx::MAX) + 1 {
                return Err(CheckError::GroupTooLarge {
                    skus: members.len(),
                    first: self.names[members[0]].clone(),
                });
            }
            for (at, &sku) in members.iter().enumerate() {
                // Fits: checked just above.
                self.placed[sku] = (group, at as SkuIx);
            }
            named.push(members.iter().map(|&i| self.names[i].clone()).collect());
        }
        Ok(named)
    }

    /// The group of a SKU of the history, and its index there.
    fn place(&self, sku: &str) -> (usize, SkuIx) {
        self.placed[self.index[sku]]
    }

    /// The index of `sku` in `group`, or `None` if it is elsewhere (or unknown).
    fn index_in(&self, group: usize, sku: &str) -> Option<SkuIx> {
        let &i = self.index.get(sku)?;
        let (its_group, at) = self.placed[i];
        (its_group == group).then_some(at)
    }
}

fn command(
    input: &Input,
    at: WallInterval,
    group: &[String],
    skus: &SkuGroups,
    ids: &mut Interner,
    lists: &mut ItemLists,
) -> Command {
    // Every SKU an op names is in the op's group: partition() joined them.
    let ix = |sku: &str| skus.place(sku).1;
    debug_assert!(input.skus().iter().all(|s| group.iter().any(|g| g == s)));
    match input {
        Input::CreateSku {
            sku,
            stock,
            per_user_limit,
            sale_window,
        } => Command::CreateSku {
            sku: ix(sku),
            stock: *stock,
            per_user_limit: *per_user_limit,
            sale_window: *sale_window,
        },
        Input::Restock {
            sku,
            request_id,
            delta,
        } => Command::Restock {
            sku: ix(sku),
            request: ids.intern(request_id),
            delta: *delta,
        },
        Input::Order {
            order_id,
            user_id,
            items,
            ..
        } => {
            let items: Vec<(SkuIx, u64)> =
                items.iter().map(|item| (ix(&item.sku), item.qty)).collect();
            lists.order_at(ids.intern(order_id), ids.intern(user_id), &items, at)
        }
        Input::Pay { order_id, .. } => Command::Pay {
            order: ids.intern(order_id),
        },
        Input::Cancel { order_id, .. } => Command::Cancel {
            order: ids.intern(order_id),
        },
        Input::Refund {
            order_id, restock, ..
        } => Command::Refund {
            order: ids.intern(order_id),
            restock: *restock,
        },
        Input::ReadSku { sku } => Command::ReadSku { sku: ix(sku) },
        Input::ReadOrder { order_id, .. } => Command::ReadOrder {
            order: ids.intern(order_id),
        },
    }
}

fn observed(
    op: &Op,
    skus: &SkuGroups,
    group: usize,
    ids: &mut Interner,
    lists: &mut ItemLists,
) -> Observed {
    let body = op.output.as_ref().map(|output| match output {
        Output::Error { code } => Body::Refused(Refusal::from_code(code)),
        Output::Sku(view) => Body::Sku(Counters {
            total: view.total,
            available: view.available,
            reserved: view.reserved,
            sold: view.sold,
            refunded: view.refunded,
        }),
        Output::Order(view) => {
            let items: Option<Vec<(SkuIx, u64)>> = view
                .items
                .iter()
                .map(|item| Some((skus.index_in(group, &item.sku)?, item.qty)))
                .collect();
            match items {
                Some(items) => Body::Order(OrderSnapshot {
                    user: ids.intern(&view.user_id),
                    items: lists.intern_content(&items),
                    status: view.status,
                }),
                // An order body naming a SKU outside the group cannot be the right answer.
                None => Body::Malformed,
            }
        }
    });
    Observed {
        // History::push refuses an ok op without a status.
        http: op.http.unwrap_or(0),
        body,
    }
}

/// The checker's result for one group of SKUs.
#[derive(Clone, Debug)]
pub struct SkuCheck {
    /// The group's SKUs joined by `+` (one SKU: its name).
    pub sku: String,
    /// SKUs in the group.
    pub skus: usize,
    /// Ops checked (after dropping `fail` ops and `info` reads).
    pub ops: usize,
    pub info_ops: usize,
    pub elapsed: Duration,
    pub verdict: Verdict,
    /// Why the verdict is `Unknown`.
    pub unknown_reason: Option<String>,
    pub counterexample: Option<Counterexample>,
}

/// A readable account of a violation.
#[derive(Clone, Debug)]
pub struct Counterexample {
    /// Consecutive ops by invocation. The last is the culprit: the first op whose output
    /// cannot be explained together with the outputs of the ops invoked before it. The first
    /// is the latest op the culprit contradicts: the contradiction stands even if the ops in
    /// between are taken as `info` (maybe never applied). A window of one op: its output
    /// cannot be explained even if every earlier op is taken as `info`.
    pub window: Vec<Op>,
    /// Up to [`CONTEXT_OPS`](super::CONTEXT_OPS) ops invoked just before the window, for the reader.
    pub context: Vec<Op>,
    /// False when a probe ran out of budget, so an earlier op may be the one contradicted.
    pub minimised: bool,
    /// The distinct replies a correct store gives the culprit at the points where it could
    /// have taken effect (given the outputs of the ops invoked before it); at most
    /// [`MAX_WATCHED_REPLIES`](super::MAX_WATCHED_REPLIES), then "...".
    pub could_answer: Vec<String>,
    /// The most ops the full search ever linearized, and the model state there.
    pub deepest_linearized: usize,
    pub deepest_state: String,
    pub ops: usize,
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "    the search linearized at most {} of {} ops; model state there: {}",
            self.deepest_linearized, self.ops, self.deepest_state
        )?;
        if !self.context.is_empty() {
            writeln!(
                f,
                "    context (the {} ops invoked just before the window):",
                self.context.len()
            )?;
            for op in &self.context {
                writeln!(f, "      {op}")?;
            }
        }
        let explanation = match (self.window.len(), self.minimised) {
            (1, _) => "its output cannot be explained by any of the ops invoked before it having \
                       taken effect or not, in any order"
                .to_owned(),
            (n, true) => format!(
                "{n} ops: the last one's output contradicts the first one's, given every op \
                 invoked before; those in between may as well not have happened"
            ),
            (n, false) => format!(
                "{n} ops: the last one's output contradicts those of the ops invoked before it; \
                 the probe budget ran out before the window was shortest"
            ),
        };
        writeln!(f, "    window ({explanation}):")?;
        // Long (unminimised) windows: the start and the end are what a reader needs.
        let shown_head = if self.window.len() > MAX_WINDOW_SHOWN {
            MAX_WINDOW_SHOWN / 4
        } else {
            self.window.len()
        };
        for op in &self.window[..shown_head] {
            writeln!(f, "    > {op}")?;
        }
        if shown_head < self.window.len() {
            let tail = self.window.len() - (MAX_WINDOW_SHOWN - shown_head);
            writeln!(f, "    > ... {} ops ...", tail - shown_head)?;
            for op in &self.window[tail..] {
                writeln!(f, "    > {op}")?;
            }
        }
        if let Some(culprit) = self.window.last() {
            writeln!(
                f,
                "    where #{} could have taken effect, a correct store answers: {}",
                culprit.index,
                if self.could_answer.is_empty() {
                    "(nothing: it could not take effect anywhere)".to_owned()
                } else {
                    self.could_answer.join(" | ")
                }
            )?;
        }
        Ok(())
    }
}

/// The checker's result for a whole history.
#[derive(Clone, Debug, Default)]
pub struct LinearizabilityReport {
    pub skus: Vec<SkuCheck>,
}

impl LinearizabilityReport {
    /// Fail if any group failed, else Unknown if any is unknown, else Pass.
    pub fn verdict(&self) -> Verdict {
        self.skus
            .iter()
            .fold(Verdict::Pass, |v, sku| v.combine(sku.verdict))
    }
}

impl fmt::Display for LinearizabilityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let skus: usize = self.skus.iter().map(|group| group.skus).sum();
        write!(f, "linearizability: {} ({skus} SKUs", self.verdict())?;
        if skus != self.skus.len() {
            write!(
                f,
                " in {} groups joined by multi-item orders",
                self.skus.len()
            )?;
        }
        writeln!(f, ")")?;
        for sku in &self.skus {
            write!(
                f,
                "  {}: {} ({} ops, {} info, {})",
                sku.sku,
                sku.verdict,
                sku.ops,
                sku.info_ops,
                fmt_duration_ns(u64::try_from(sku.elapsed.as_nanos()).unwrap_or(u64::MAX))
            )?;
            if let Some(reason) = &sku.unknown_reason {
                write!(f, ": {reason}")?;
            }
            writeln!(f)?;
            if let Some(counterexample) = &sku.counterexample {
                write!(f, "{counterexample}")?;
            }
        }
        Ok(())
    }
}

/// Checks `history` for linearizability within `budget` (shared by all groups, checked in
/// order of name). A `Verdict::Unknown` in the report must be counted as a failure.
///
/// Orders are not placed in time: a sale window is taken as possibly open or closed for
/// each of them. A run's history, whose wall clock is known, goes to
/// [`check_on_wall_clock`].
pub fn check(history: &History, budget: Duration) -> Result<LinearizabilityReport, CheckError> {
    check_parts(history, partition(history)?, budget)
}

/// [`check`], with every order placed on the harness's wall clock (`origin_wall_ms` at the
/// history's zero), so that an order clearly outside its SKU's sale window must be refused
/// `sale_not_active` and one clearly inside must not be.
pub fn check_on_wall_clock(
    history: &History,
    origin_wall_ms: u64,
    budget: Duration,
) -> Result<LinearizabilityReport, CheckError> {
    check_parts(
        history,
        partition_on_wall_clock(history, origin_wall_ms)?,
        budget,
    )
}

fn check_parts(
    history: &History,
    parts: Vec<SkuHistory>,
    budget: Duration,
) -> Result<LinearizabilityReport, CheckError> {
    let deadline = Instant::now().checked_add(budget);
    let skus = parts
        .iter()
        .map(|part| check_sku(history, part, deadline))
        .collect();
    Ok(LinearizabilityReport { skus })
}

fn check_sku(history: &History, part: &SkuHistory, deadline: Option<Instant>) -> SkuCheck {
    let model = Inventory {
        names: &part.names,
        skus: &part.skus,
        lists: &part.lists,
    };
    let PartCheck {
        verdict,
        unknown_reason,
        violation,
        elapsed,
    } = check_part(&model, &operations(part), deadline);
    let ops_at = |positions: &[usize]| -> Vec<Op> {
        positions
            .iter()
            .map(|&i| history.ops()[part.ops[i].history_index].clone())
            .collect()
    };
    SkuCheck {
        sku: part.sku.clone(),
        skus: part.skus.len(),
        ops: part.ops.len(),
        info_ops: part.info_ops(),
        elapsed,
        verdict,
        unknown_reason,
        counterexample: violation.map(|violation| Counterexample {
            window: ops_at(&violation.window),
            context: ops_at(&violation.context),
            minimised: violation.minimised,
            could_answer: violation.could_answer,
            deepest_linearized: violation.deepest_linearized,
            deepest_state: violation.deepest_state,
            ops: part.ops.len(),
        }),
    }
}

/// A group of SKUs and their orders; `names` spells the ids interned in its commands and
/// `skus` its SKUs, for reports.
struct Inventory<'a> {
    names: &'a [String],
    skus: &'a [String],
    lists: &'a ItemLists,
}

impl Model for Inventory<'_> {
    type State = StoreState;
    type Input = Command;
    type Output = Observed;
    type Answer = Reply;

    fn init(&self) -> StoreState {
        StoreState::default()
    }

    fn step<'s>(
        &self,
        state: &'s StoreState,
        input: &Command,
        output: Option<&Observed>,
    ) -> Option<Cow<'s, StoreState>> {
        let (next, reply) = model::step(state, self.lists, input);
        let Some(seen) = output else {
            // An `info` order: its closed-sale branch changes nothing, as if it never took
            // effect, which the search allows anyway. (An `ok` order a counterexample probe
            // leaves unchecked is held to the open branch: at worst the reported window is
            // not the shortest; the verdict comes from the search with every output checked.)
            return Some(next);
        };
        if seen.accepts(&reply) {
            return Some(next);
        }
        // An order at a sale window's edge may have found the sale closed.
        if seen.body == Some(Body::Refused(Refusal::SaleNotActive)) {
            let (next, reply) = model::step_at_edge(state, self.lists, input, AtEdge::Closed);
            return seen.accepts(&reply).then_some(next);
        }
        None
    }

    fn is_read(&self, input: &Command) -> bool {
        input.is_read()
    }

    fn state_bytes(&self, state: &StoreState) -> usize {
        state.approx_bytes()
    }

    fn describe_state(&self, state: &StoreState) -> String {
        describe_state(state, self)
    }

    fn answer(&self, state: &StoreState, input: &Command) -> Reply {
        model::step(state, self.lists, input).1
    }

    fn describe_answer(&self, reply: &Reply) -> String {
        describe_reply(reply, self)
    }
}

/// The SKU's ops as the generic checker takes them.
fn operations(part: &SkuHistory) -> Vec<Operation<'_, Command, Observed>> {
    part.ops
        .iter()
        .map(|op| Operation {
            call: op.call,
            returned: op.observed.as_ref().map(|observed| (op.ret, observed)),
            input: &op.command,
        })
        .collect()
}

/// A brute-force reference: tries every order of the ops that respects real time, with none
/// of the search's memo or pruning. Exponential; for differential tests on tiny histories.
#[doc(hidden)]
pub fn brute_force_linearizable(part: &SkuHistory) -> bool {
    brute_force(
        &Inventory {
            names: &part.names,
            skus: &part.skus,
            lists: &part.lists,
        },
        &operations(part),
    )
}

fn describe_items(items: &[(SkuIx, u64)], skus: &[String]) -> String {
    items
        .iter()
        .map(|&(sku, qty)| {
            let name = skus.get(usize::from(sku)).map_or("?", String::as_str);
            format!("{name}x{qty}")
        })
        .collect::<Vec<_>>()
        .join("+")
}

fn describe_reply(reply: &Reply, group: &Inventory) -> String {
    let name = |id: Id| group.names.get(id as usize).map_or("?", String::as_str);
    match reply.body {
        Body::Sku(counters) => format!("{} sku {counters}", reply.http),
        Body::Order(order) => format!(
            "{} order {} user={} {}",
            reply.http,
            order.status,
            name(order.user),
            describe_items(group.lists.get(order.items), group.skus)
        ),
        Body::Refused(refusal) => format!("{} {}", reply.http, refusal.code()),
        Body::Malformed => format!("{} (malformed)", reply.http),
    }
}

fn describe_state(state: &StoreState, group: &Inventory) -> String {
    let skus = group.skus;
    let sku_name = |sku: SkuIx| skus.get(usize::from(sku)).map_or("?", String::as_str);
    let existing: Vec<String> = state
        .existing_skus()
        .filter_map(|sku| {
            let counters = state.counters(sku)?;
            Some(if skus.len() == 1 {
                counters.to_string()
            } else {
                format!("{}: {counters}", sku_name(sku))
            })
        })
        .collect();
    if existing.is_empty() {
        return "no SKU exists".to_owned();
    }
    let name = |id: Id| group.names.get(id as usize).map_or("?", String::as_str);
    let mut text = existing.join("; ");
    let count = state.orders().count();
    let mut orders: Vec<String> = state
        .orders()
        .take(MAX_ORDERS_SHOWN)
        .map(|(order, user, items, status)| {
            format!(
                "{} {status} {} ({})",
                name(order),
                describe_items(group.lists.get(items), skus),
                name(user)
            )
        })
        .collect();
    if count > MAX_ORDERS_SHOWN {
        orders.push(format!("... {} more", count - MAX_ORDERS_SHOWN));
    }
    if !orders.is_empty() {
        text.push_str("; orders ");
        text.push_str(&orders.join(", "));
    }
    text
}
