//! A Porcupine-style linearizability checker (Wing–Gong–Lowe search with a memo cache) of the
//! recorded history against the [`model`] of one SKU.
//!
//! The history is split per SKU (P-compositionality: a history is linearizable iff every
//! SKU's part is), which requires every op to touch one SKU: single-item orders, and order
//! transitions/reads that carry their order's SKU. `fail` ops are dropped (they never
//! happened), and so are `info` reads (no effect). An `info` write has its return time at
//! +infinity and no expected output: the model steps it like any other, and placing it last is
//! the same as "never applied".
//!
//! Two refinements of the plain search, both sound because an `info` op may take effect at
//! any point after its invocation or never: an `info` op whose step would change nothing is
//! left pending rather than linearized (it can always go later), and once the walk reaches the
//! return of an `info` op every op with a real return has been placed, so the history is
//! linearizable. Without them every pending `info` op doubles the configurations explored.
//!
//! The search is bounded by a time budget and a memory limit. Running out of either yields
//! [`Verdict::Unknown`], which callers must count as a failure: a checker that could not decide
//! has not shown the history is correct. On a violation the report shows the shortest window
//! of consecutive ops (by invocation) ending at the first op whose output cannot be explained,
//! and starting at the latest op it contradicts; both are found by re-running the search with
//! some outputs unchecked (see `shortest_window`).

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::history::{fmt_duration_ns, Completion, History, Input, Op, Output};
use crate::model::{
    self, Body, Command, Counters, Id, Observed, OrderSnapshot, Refusal, Reply, SkuState,
};
use crate::Verdict;

/// Upper bound on the memo cache of one search (approximate bytes). The box is shared and a
/// search that needs more than this is better reported as Unknown than allowed to OOM.
pub const MAX_MEMO_BYTES: usize = 1 << 30;
/// The deadline is read every this many search steps: often enough to stop within
/// milliseconds, rarely enough that reading the clock costs nothing.
const DEADLINE_CHECK_EVERY: u64 = 256;
const _: () = assert!(DEADLINE_CHECK_EVERY.is_power_of_two());
/// A window probe may take this many times the steps of the full search (or
/// [`PROBE_MIN_STEPS`]): bounded, so minimising never costs much more than checking did.
const PROBE_STEPS_FACTOR: u64 = 4;
const PROBE_MIN_STEPS: u64 = 100_000;
/// Ops shown before a counterexample's window: enough to see the writes a stale read missed,
/// few enough to read.
pub const CONTEXT_OPS: usize = 8;
/// Distinct replies collected for a counterexample's culprit.
pub const MAX_WATCHED_REPLIES: usize = 8;
/// Orders listed when describing a model state.
const MAX_ORDERS_SHOWN: usize = 12;
/// Longer windows are printed as their first and last ops.
const MAX_WINDOW_SHOWN: usize = 24;
/// Rough per-entry overhead of the memo `HashSet` (hash, tuple, Vec headers).
const MEMO_ENTRY_OVERHEAD: usize = 64;

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
    /// Up to [`CONTEXT_OPS`] ops invoked just before the window, for the reader.
    pub context: Vec<Op>,
    /// False when a probe ran out of budget, so an earlier op may be the one contradicted.
    pub minimised: bool,
    /// The distinct replies a correct store gives the culprit at the points where it could
    /// have taken effect (given the outputs of the ops invoked before it); at most
    /// [`MAX_WATCHED_REPLIES`], then "...".
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
    let started = Instant::now();
    let all = search_ops(part, &|_| Treatment::Checked, &ranks(part));
    let limits = Limits {
        deadline,
        max_steps: u64::MAX,
    };
    let Searched { outcome, steps } = search(&all, limits, None);
    let mut check = SkuCheck {
        sku: part.sku.clone(),
        ops: part.ops.len(),
        info_ops: part.info_ops(),
        elapsed: Duration::ZERO,
        verdict: Verdict::Pass,
        unknown_reason: None,
        counterexample: None,
    };
    match outcome {
        Outcome::Linearizable => {}
        Outcome::Exhausted(reason) => {
            check.verdict = Verdict::Unknown;
            check.unknown_reason = Some(reason.to_owned());
        }
        Outcome::Illegal(deepest) => {
            check.verdict = Verdict::Fail;
            let (window, minimised) = shortest_window(part, deadline, steps);
            let culprit = window.end - 1;
            // Re-run the search that first failed at the culprit, noting what the model would
            // have answered it wherever it could have taken effect.
            let mut watch = Watch {
                rank: culprit,
                replies: Vec::new(),
                more: false,
            };
            let ranks = ranks(part);
            let probe = Limits {
                deadline,
                max_steps: probe_steps(steps),
            };
            let treat = |rank: usize| {
                if rank < window.end {
                    Treatment::Checked
                } else {
                    Treatment::Unchecked
                }
            };
            let watched = search(&search_ops(part, &treat, &ranks), probe, Some(&mut watch));
            let mut could_answer: Vec<String> = watch
                .replies
                .iter()
                .map(|reply| describe_reply(reply, &part.names))
                .collect();
            if matches!(watched.outcome, Outcome::Exhausted(_)) {
                could_answer.push("... (budget ran out)".to_owned());
            } else if watch.more {
                could_answer.push("...".to_owned());
            }
            let by_invocation = by_invocation(part);
            let ops_at = |ranks: &[usize]| -> Vec<Op> {
                ranks
                    .iter()
                    .map(|&i| history.ops()[part.ops[i].history_index].clone())
                    .collect()
            };
            let context_start = window.start.saturating_sub(CONTEXT_OPS);
            check.counterexample = Some(Counterexample {
                context: ops_at(&by_invocation[context_start..window.start]),
                window: ops_at(&by_invocation[window]),
                minimised,
                could_answer,
                deepest_linearized: deepest.linearized,
                deepest_state: describe_state(&deepest.state, &part.names),
                ops: part.ops.len(),
            });
        }
    }
    check.elapsed = started.elapsed();
    check
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

/// Positions of `part.ops` sorted by invocation (ties by history order).
fn by_invocation(part: &SkuHistory) -> Vec<usize> {
    let mut order: Vec<usize> = (0..part.ops.len()).collect();
    order.sort_by_key(|&i| (part.ops[i].call, part.ops[i].history_index));
    order
}

/// `ranks[i]` is the invocation rank of `part.ops[i]`.
fn ranks(part: &SkuHistory) -> Vec<usize> {
    let mut ranks = vec![0; part.ops.len()];
    for (rank, i) in by_invocation(part).into_iter().enumerate() {
        ranks[i] = rank;
    }
    ranks
}

/// How a window probe treats an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Treatment {
    /// As recorded.
    Checked,
    /// It happened within its interval (or maybe, if `info`), but its output is not checked.
    Unchecked,
    /// As if it were `info`: it may have taken effect at any point after its invocation, or
    /// never.
    Maybe,
}

/// The search input, each op treated as `treat(rank)` says. Reads whose output is not
/// checked have no effect and are left out.
fn search_ops<'a>(
    part: &'a SkuHistory,
    treat: &dyn Fn(usize) -> Treatment,
    ranks: &[usize],
) -> Vec<SearchOp<'a>> {
    part.ops
        .iter()
        .zip(ranks)
        .filter_map(|(op, &rank)| {
            let treatment = treat(rank);
            let observed = match treatment {
                Treatment::Checked => op.observed.as_ref(),
                Treatment::Unchecked | Treatment::Maybe => None,
            };
            if observed.is_none() && op.command.is_read() {
                return None;
            }
            Some(SearchOp {
                rank,
                call: op.call,
                ret: if treatment == Treatment::Maybe {
                    INFINITY
                } else {
                    op.ret
                },
                command: &op.command,
                observed,
            })
        })
        .collect()
}

fn probe_steps(full_search_steps: u64) -> u64 {
    full_search_steps
        .saturating_mul(PROBE_STEPS_FACTOR)
        .max(PROBE_MIN_STEPS)
}

/// Finds the window to report, as invocation ranks `start..end`, and whether it is a proven
/// minimum. Checking fewer outputs, or treating an op as `info`, only removes constraints, so
/// both steps are monotone searches:
///
/// 1. the culprit `end - 1`: the first op whose output cannot be explained together with the
///    outputs of every op invoked before it (binary search over checked prefixes `0..e`; the
///    ops after it still happen, unchecked; each probe costs about what the full search did);
/// 2. `start`: the latest op the culprit contradicts. With ops `0..s` and the culprit as
///    recorded and the ops between treated as `info` (maybe applied, maybe not), the smallest
///    `s` that still fails to linearize is `start + 1`: op `start` is needed, and the ops
///    after it are not. Galloping back from the culprit keeps that stretch short. If the
///    culprit fails even with every earlier op as `info`, the window is the culprit alone.
///
/// The relaxed ops are not pruned by their outputs, so a probe can cost far more than the
/// full search: each may spend at most a multiple of the full search's steps, and one that
/// runs out ends the minimisation with the window proven so far.
fn shortest_window(
    part: &SkuHistory,
    deadline: Option<Instant>,
    full_search_steps: u64,
) -> (Range<usize>, bool) {
    let n = part.ops.len();
    let ranks = ranks(part);
    let limits = Limits {
        deadline,
        max_steps: probe_steps(full_search_steps),
    };
    let fails = |treat: &dyn Fn(usize) -> Treatment| -> Option<bool> {
        match search(&search_ops(part, treat, &ranks), limits, None).outcome {
            Outcome::Linearizable => Some(false),
            Outcome::Illegal(_) => Some(true),
            Outcome::Exhausted(_) => None,
        }
    };
    // Step 1. Invariant: checking 0..hi fails, 0..lo does not (checking nothing never fails).
    let (mut lo, mut hi) = (0, n);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match fails(&|rank| {
            if rank < mid {
                Treatment::Checked
            } else {
                Treatment::Unchecked
            }
        }) {
            Some(true) => hi = mid,
            Some(false) => lo = mid,
            None => return (0..hi, false),
        }
    }
    let end = hi;
    let culprit = end - 1;
    let window = |s: usize| s.saturating_sub(1)..end;
    // Step 2. Invariant: fails_from(known_fail) (true for the culprit itself: step 1's result).
    let fails_from = |s: usize| {
        fails(&|rank| {
            if rank < s || rank == culprit {
                Treatment::Checked
            } else if rank < culprit {
                Treatment::Maybe
            } else {
                Treatment::Unchecked
            }
        })
    };
    let mut known_fail = culprit;
    let mut known_pass = None;
    let mut stride = 1;
    while known_fail > 0 {
        let s = known_fail.saturating_sub(stride);
        match fails_from(s) {
            Some(true) => {
                known_fail = s;
                stride *= 2;
            }
            Some(false) => {
                known_pass = Some(s);
                break;
            }
            None => return (window(known_fail), false),
        }
    }
    if let Some(mut pass) = known_pass {
        while known_fail - pass > 1 {
            let mid = pass + (known_fail - pass) / 2;
            match fails_from(mid) {
                Some(true) => known_fail = mid,
                Some(false) => pass = mid,
                None => return (window(known_fail), false),
            }
        }
    }
    // known_fail == 0: the culprit fails on its own.
    if known_fail == 0 {
        return (culprit..end, true);
    }
    (window(known_fail), true)
}

/// One op as the search sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SearchOp<'a> {
    /// Invocation rank within the SKU's ops.
    pub rank: usize,
    pub call: u64,
    pub ret: u64,
    pub command: &'a Command,
    pub observed: Option<&'a Observed>,
}

#[derive(Debug)]
pub(crate) struct Deepest {
    pub linearized: usize,
    pub state: SkuState,
}

/// Collects the distinct replies the model gives one op wherever the search tries it.
#[derive(Debug)]
pub(crate) struct Watch {
    pub rank: usize,
    pub replies: Vec<Reply>,
    /// More distinct replies than [`MAX_WATCHED_REPLIES`] were seen.
    pub more: bool,
}

impl Watch {
    fn record(&mut self, reply: Reply) {
        if self.replies.contains(&reply) {
            return;
        }
        if self.replies.len() < MAX_WATCHED_REPLIES {
            self.replies.push(reply);
        } else {
            self.more = true;
        }
    }
}

/// What one search may spend.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub deadline: Option<Instant>,
    pub max_steps: u64,
}

#[derive(Debug)]
pub(crate) struct Searched {
    pub outcome: Outcome,
    /// Search steps taken (entries visited), a machine-independent measure of effort.
    pub steps: u64,
}

#[derive(Debug)]
pub(crate) enum Outcome {
    Linearizable,
    Illegal(Deepest),
    /// The time budget, the step limit or the memo limit ran out.
    Exhausted(&'static str),
}

/// Which ops are linearized: a fixed-size bitset, part of the memo key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Bitset(Vec<u64>);

impl Bitset {
    fn new(bits: usize) -> Bitset {
        Bitset(vec![0; bits.div_ceil(64)])
    }
    fn set(&mut self, bit: usize) {
        self.0[bit / 64] |= 1 << (bit % 64);
    }
    fn clear(&mut self, bit: usize) {
        self.0[bit / 64] &= !(1 << (bit % 64));
    }
    fn bytes(&self) -> usize {
        self.0.len() * 8
    }
}

const NIL: usize = usize::MAX;
/// The return time of an `info` op.
const INFINITY: u64 = u64::MAX;
const HEAD: usize = 0;

/// A call or return entry of the doubly linked list, stored in a Vec (index links).
#[derive(Clone, Copy, Debug)]
struct Node {
    op: usize,
    is_call: bool,
    prev: usize,
    next: usize,
    /// For a call: its return entry.
    matched: usize,
}

/// Call and return entries sorted by time, behind a head sentinel. At equal times calls come
/// first: intervals are closed, so ops touching at an instant are concurrent.
fn entries(ops: &[SearchOp]) -> Vec<Node> {
    let mut events: Vec<(u64, bool, usize)> = ops
        .iter()
        .enumerate()
        .flat_map(|(i, op)| [(op.call, false, i), (op.ret, true, i)])
        .collect();
    events.sort_unstable();
    let len = events.len();
    let mut nodes = Vec::with_capacity(len + 1);
    nodes.push(Node {
        op: NIL,
        is_call: false,
        prev: NIL,
        next: if len > 0 { 1 } else { NIL },
        matched: NIL,
    });
    let mut call_of = vec![NIL; ops.len()];
    for (k, &(_, is_return, op)) in events.iter().enumerate() {
        let at = k + 1;
        nodes.push(Node {
            op,
            is_call: !is_return,
            prev: k,
            next: if at < len { at + 1 } else { NIL },
            matched: NIL,
        });
        if is_return {
            nodes[call_of[op]].matched = at;
        } else {
            call_of[op] = at;
        }
    }
    nodes
}

/// Unlinks a call and its return.
fn lift(nodes: &mut [Node], call: usize) {
    let Node { prev, next, .. } = nodes[call];
    nodes[prev].next = next;
    // A call's return follows it, so `next` is never NIL.
    nodes[next].prev = prev;
    let ret = nodes[call].matched;
    let Node { prev, next, .. } = nodes[ret];
    nodes[prev].next = next;
    if next != NIL {
        nodes[next].prev = prev;
    }
}

/// Relinks what `lift` unlinked, in reverse order.
fn unlift(nodes: &mut [Node], call: usize) {
    let ret = nodes[call].matched;
    let Node { prev, next, .. } = nodes[ret];
    nodes[prev].next = ret;
    if next != NIL {
        nodes[next].prev = ret;
    }
    let Node { prev, next, .. } = nodes[call];
    nodes[prev].next = call;
    nodes[next].prev = call;
}

/// The WGL search: walk the entries; at a call, try to linearize the op now (the model accepts
/// its output, and the resulting (linearized set, state) is new), and restart from the head;
/// at a return, the op should already have been linearized, so undo the last choice.
pub(crate) fn search(ops: &[SearchOp], limits: Limits, watch: Option<&mut Watch>) -> Searched {
    let mut steps: u64 = 0;
    let outcome = search_counting(ops, limits, watch, &mut steps);
    Searched { outcome, steps }
}

fn search_counting(
    ops: &[SearchOp],
    limits: Limits,
    mut watch: Option<&mut Watch>,
    steps: &mut u64,
) -> Outcome {
    if ops.is_empty() {
        return Outcome::Linearizable;
    }
    let mut nodes = entries(ops);
    let mut state = SkuState::default();
    let mut linearized = Bitset::new(ops.len());
    let mut stack: Vec<(usize, SkuState)> = Vec::new();
    let mut memo: HashSet<(Bitset, SkuState)> = HashSet::new();
    let mut memo_bytes = 0usize;
    let mut deepest = Deepest {
        linearized: 0,
        state: state.clone(),
    };
    let mut entry = nodes[HEAD].next;
    while nodes[HEAD].next != NIL {
        // Checked on the first step too, so a zero budget never decides anything.
        // (A mask, not `is_multiple_of`: the workspace's minimum Rust is 1.85.)
        if *steps & (DEADLINE_CHECK_EVERY - 1) == 0
            && limits.deadline.is_some_and(|d| Instant::now() >= d)
        {
            return Outcome::Exhausted("time budget exhausted");
        }
        if *steps >= limits.max_steps {
            return Outcome::Exhausted("step limit reached");
        }
        *steps += 1;
        let node = nodes[entry];
        if node.is_call {
            let op = &ops[node.op];
            let (next, reply) = model::step(&state, op.command);
            if let Some(watch) = watch.as_deref_mut().filter(|w| w.rank == op.rank) {
                watch.record(reply);
            }
            // An info op that would change nothing here is better left pending: it can still
            // take effect later, or never, so placing it now only multiplies configurations.
            let idle_info = op.ret == INFINITY && matches!(next, Cow::Borrowed(_));
            if !idle_info && op.observed.is_none_or(|seen| seen.accepts(&reply)) {
                let next = next.into_owned();
                let mut candidate = linearized.clone();
                candidate.set(node.op);
                let cost = candidate.bytes() + next.approx_bytes() + MEMO_ENTRY_OVERHEAD;
                if memo.insert((candidate.clone(), next.clone())) {
                    memo_bytes += cost;
                    if memo_bytes > MAX_MEMO_BYTES {
                        return Outcome::Exhausted("memo cache limit reached");
                    }
                    stack.push((entry, std::mem::replace(&mut state, next)));
                    linearized = candidate;
                    lift(&mut nodes, entry);
                    if stack.len() > deepest.linearized {
                        deepest = Deepest {
                            linearized: stack.len(),
                            state: state.clone(),
                        };
                    }
                    entry = nodes[HEAD].next;
                    continue;
                }
            }
            entry = node.next;
        } else {
            if ops[node.op].ret == INFINITY {
                // Returns are sorted, so every op with a finite return is linearized; the
                // info ops still pending may never have been applied.
                return Outcome::Linearizable;
            }
            let Some((call, previous)) = stack.pop() else {
                return Outcome::Illegal(deepest);
            };
            state = previous;
            linearized.clear(nodes[call].op);
            unlift(&mut nodes, call);
            entry = nodes[call].next;
        }
    }
    Outcome::Linearizable
}

/// A brute-force reference: tries every order of the ops that respects real time, with none
/// of the search's memo or pruning. Exponential; for differential tests on tiny histories.
#[doc(hidden)]
pub fn brute_force_linearizable(part: &SkuHistory) -> bool {
    fn place(ops: &[CheckedOp], placed: &mut Vec<bool>, state: &SkuState, left: usize) -> bool {
        if left == 0 {
            return true;
        }
        for i in 0..ops.len() {
            if placed[i] {
                continue;
            }
            // `i` may go next only if no unplaced op returned before `i` was called.
            let blocked = (0..ops.len()).any(|j| !placed[j] && j != i && ops[j].ret < ops[i].call);
            if blocked {
                continue;
            }
            let (next, reply) = model::step(state, &ops[i].command);
            if ops[i].observed.is_some_and(|seen| !seen.accepts(&reply)) {
                continue;
            }
            placed[i] = true;
            if place(ops, placed, &next, left - 1) {
                return true;
            }
            placed[i] = false;
        }
        false
    }
    let mut placed = vec![false; part.ops.len()];
    place(&part.ops, &mut placed, &SkuState::default(), part.ops.len())
}
