//! The inventory instance of the checker: the recorded history split per SKU and checked
//! against the [`model`] of one SKU and its orders.
//!
//! Splitting per SKU requires every op to touch one SKU: single-item orders, and order
//! transitions/reads that carry their order's SKU. `fail` ops are dropped (they never
//! happened), and so are `info` reads (no effect).

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::checker::{brute_force, check_part, PartCheck};
use super::search::INFINITY;
use super::{Model, Operation};
use crate::history::{fmt_duration_ns, Completion, History, Input, Op, Output};
use crate::model::{
    self, Body, Command, Counters, Id, Observed, OrderSnapshot, Refusal, Reply, SkuState,
};
use crate::Verdict;

/// Orders listed when describing a model state.
const MAX_ORDERS_SHOWN: usize = 12;
/// Longer windows are printed as their first and last ops.
const MAX_WINDOW_SHOWN: usize = 24;

/// Why a history cannot be checked by this checker (a harness or workload error, not a
/// verdict about the cluster).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CheckError {
    #[error("op {index}: an order over {skus} SKUs; multi-item orders need a multi-SKU checker")]
    MultiSkuOrder { index: u64, skus: usize },
    #[error("op {index}: order {order_id} is on SKU {sku} but was created on {first_sku}; an order id must stay on one SKU")]
    OrderOnTwoSkus {
        index: u64,
        order_id: String,
        sku: String,
        first_sku: String,
    },
}

/// One op of a SKU's history, as the search sees it.
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

/// The ops of one SKU, with the names behind its interned ids.
#[derive(Clone, Debug)]
pub struct SkuHistory {
    pub sku: String,
    pub ops: Vec<CheckedOp>,
    /// `names[id]` is the order/user/request id interned as `id`.
    pub names: Vec<String>,
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
        // A SKU's history has far fewer than 2^32 distinct ids; the checker would run out of
        // memory long before.
        let id = Id::try_from(self.names.len()).expect("fewer than 2^32 ids per SKU");
        self.ids.insert(name.to_owned(), id);
        self.names.push(name.to_owned());
        id
    }
}

/// Splits the history per SKU (sorted by SKU), dropping `fail` ops and `info` reads.
pub fn partition(history: &History) -> Result<Vec<SkuHistory>, CheckError> {
    // Order id -> SKU, over every op (dropped ones too): a mismatch is a harness bug that
    // would silently break the per-SKU split.
    let mut order_skus: HashMap<&str, &str> = HashMap::new();
    let mut parts: BTreeMap<&str, (Vec<CheckedOp>, Interner)> = BTreeMap::new();
    for (position, op) in history.ops().iter().enumerate() {
        let skus = op.input.skus();
        let [sku] = skus[..] else {
            return Err(CheckError::MultiSkuOrder {
                index: op.index,
                skus: skus.len(),
            });
        };
        if let Some(order_id) = op.input.order_id() {
            match order_skus.entry(order_id) {
                Entry::Occupied(first) if *first.get() != sku => {
                    return Err(CheckError::OrderOnTwoSkus {
                        index: op.index,
                        order_id: order_id.to_owned(),
                        sku: sku.to_owned(),
                        first_sku: (*first.get()).to_owned(),
                    })
                }
                Entry::Occupied(_) => {}
                Entry::Vacant(slot) => {
                    slot.insert(sku);
                }
            }
        }
        let dropped = match op.completion {
            Completion::Fail => true,
            Completion::Info => op.kind().is_read(),
            Completion::Ok => false,
        };
        if dropped {
            continue;
        }
        let (ops, interner) = parts.entry(sku).or_default();
        let command = command(&op.input, interner);
        let observed = match op.completion {
            Completion::Ok => Some(observed(op, sku, interner)),
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
    Ok(parts
        .into_iter()
        .map(|(sku, (ops, interner))| SkuHistory {
            sku: sku.to_owned(),
            ops,
            names: interner.names,
        })
        .collect())
}

fn command(input: &Input, ids: &mut Interner) -> Command {
    match input {
        Input::CreateSku { stock, .. } => Command::CreateSku { stock: *stock },
        Input::Restock {
            request_id, delta, ..
        } => Command::Restock {
            request: ids.intern(request_id),
            delta: *delta,
        },
        Input::Order {
            order_id,
            user_id,
            items,
            ..
        } => Command::Order {
            order: ids.intern(order_id),
            user: ids.intern(user_id),
            // partition() admits single-item orders only.
            qty: items[0].qty,
        },
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
        Input::ReadSku { .. } => Command::ReadSku,
        Input::ReadOrder { order_id, .. } => Command::ReadOrder {
            order: ids.intern(order_id),
        },
    }
}

fn observed(op: &Op, sku: &str, ids: &mut Interner) -> Observed {
    let body = op.output.as_ref().map(|output| match output {
        Output::Error { code } => Body::Refused(Refusal::from_code(code)),
        Output::Sku(view) => Body::Sku(Counters {
            total: view.total,
            available: view.available,
            reserved: view.reserved,
            sold: view.sold,
            refunded: view.refunded,
        }),
        Output::Order(view) => match &view.items[..] {
            [item] if item.sku == sku => Body::Order(OrderSnapshot {
                user: ids.intern(&view.user_id),
                qty: item.qty,
                status: view.status,
            }),
            // An order body that is not this SKU's single item cannot be the right answer.
            _ => Body::Malformed,
        },
    });
    Observed {
        // History::push refuses an ok op without a status.
        http: op.http.unwrap_or(0),
        body,
    }
}

/// The checker's result for one SKU.
#[derive(Clone, Debug)]
pub struct SkuCheck {
    pub sku: String,
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
    /// Fail if any SKU failed, else Unknown if any is unknown, else Pass.
    pub fn verdict(&self) -> Verdict {
        self.skus
            .iter()
            .fold(Verdict::Pass, |v, sku| v.combine(sku.verdict))
    }
}

impl fmt::Display for LinearizabilityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "linearizability: {} ({} SKUs)",
            self.verdict(),
            self.skus.len()
        )?;
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

/// Checks `history` for linearizability within `budget` (shared by all SKUs, checked in SKU
/// order). A `Verdict::Unknown` in the report must be counted as a failure.
pub fn check(history: &History, budget: Duration) -> Result<LinearizabilityReport, CheckError> {
    let deadline = Instant::now().checked_add(budget);
    let skus = partition(history)?
        .iter()
        .map(|part| check_sku(history, part, deadline))
        .collect();
    Ok(LinearizabilityReport { skus })
}

fn check_sku(history: &History, part: &SkuHistory, deadline: Option<Instant>) -> SkuCheck {
    let model = Inventory { names: &part.names };
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

/// One SKU and its orders; `names` spells the ids interned in its commands, for reports.
struct Inventory<'a> {
    names: &'a [String],
}

impl Model for Inventory<'_> {
    type State = SkuState;
    type Input = Command;
    type Output = Observed;
    type Answer = Reply;

    fn init(&self) -> SkuState {
        SkuState::default()
    }

    fn step<'s>(
        &self,
        state: &'s SkuState,
        input: &Command,
        output: Option<&Observed>,
    ) -> Option<Cow<'s, SkuState>> {
        let (next, reply) = model::step(state, input);
        output
            .is_none_or(|seen| seen.accepts(&reply))
            .then_some(next)
    }

    fn is_read(&self, input: &Command) -> bool {
        input.is_read()
    }

    fn state_bytes(&self, state: &SkuState) -> usize {
        state.approx_bytes()
    }

    fn describe_state(&self, state: &SkuState) -> String {
        describe_state(state, self.names)
    }

    fn answer(&self, state: &SkuState, input: &Command) -> Reply {
        model::step(state, input).1
    }

    fn describe_answer(&self, reply: &Reply) -> String {
        describe_reply(reply, self.names)
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
    brute_force(&Inventory { names: &part.names }, &operations(part))
}

fn describe_reply(reply: &Reply, names: &[String]) -> String {
    let name = |id: Id| names.get(id as usize).map_or("?", String::as_str);
    match reply.body {
        Body::Sku(counters) => format!("{} sku {counters}", reply.http),
        Body::Order(order) => format!(
            "{} order {} user={} x{}",
            reply.http,
            order.status,
            name(order.user),
            order.qty
        ),
        Body::Refused(refusal) => format!("{} {}", reply.http, refusal.code()),
        Body::Malformed => format!("{} (malformed)", reply.http),
    }
}

fn describe_state(state: &SkuState, names: &[String]) -> String {
    if !state.exists() {
        return "SKU absent".to_owned();
    }
    let name = |id: Id| names.get(id as usize).map_or("?", String::as_str);
    let mut text = state.counters().to_string();
    let count = state.orders().count();
    let mut orders: Vec<String> = state
        .orders()
        .take(MAX_ORDERS_SHOWN)
        .map(|(order, user, qty, status)| {
            format!("{} {status} x{qty} ({})", name(order), name(user))
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
