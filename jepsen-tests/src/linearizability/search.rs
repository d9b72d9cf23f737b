//! The Wing–Gong–Lowe walk over call and return entries, with its memo cache and limits.

use std::borrow::Cow;
use std::collections::HashSet;
use std::time::Instant;

use super::{Model, MAX_MEMO_BYTES, MAX_WATCHED_REPLIES};

/// The deadline is read every this many search steps: often enough to stop within
/// milliseconds, rarely enough that reading the clock costs nothing.
const DEADLINE_CHECK_EVERY: u64 = 256;
const _: () = assert!(DEADLINE_CHECK_EVERY.is_power_of_two());
/// Rough per-entry overhead of the memo `HashSet` (hash, tuple, Vec headers).
const MEMO_ENTRY_OVERHEAD: usize = 64;

/// One op as the search sees it.
#[derive(Debug)]
pub(crate) struct SearchOp<'a, I, O> {
    /// Invocation rank within the partition's ops.
    pub rank: usize,
    pub call: u64,
    /// [`INFINITY`] for ops that may never have taken effect.
    pub ret: u64,
    pub input: &'a I,
    /// `None`: any output is acceptable.
    pub output: Option<&'a O>,
}

#[derive(Debug)]
pub(crate) struct Deepest<S> {
    pub linearized: usize,
    pub state: S,
}

/// Collects the distinct answers the model gives one op wherever the search tries it.
#[derive(Debug)]
pub(crate) struct Watch<A> {
    pub rank: usize,
    pub answers: Vec<A>,
    /// More distinct answers than [`MAX_WATCHED_REPLIES`] were seen.
    pub more: bool,
}

impl<A: PartialEq> Watch<A> {
    pub fn new(rank: usize) -> Watch<A> {
        Watch {
            rank,
            answers: Vec::new(),
            more: false,
        }
    }

    fn record(&mut self, answer: A) {
        if self.answers.contains(&answer) {
            return;
        }
        if self.answers.len() < MAX_WATCHED_REPLIES {
            self.answers.push(answer);
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
pub(crate) struct Searched<S> {
    pub outcome: Outcome<S>,
    /// Search steps taken (entries visited), a machine-independent measure of effort.
    pub steps: u64,
}

#[derive(Debug)]
pub(crate) enum Outcome<S> {
    Linearizable,
    Illegal(Deepest<S>),
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
pub(crate) const INFINITY: u64 = u64::MAX;
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
fn entries<I, O>(ops: &[SearchOp<I, O>]) -> Vec<Node> {
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
///
/// Every op's `ret` must be at or after its `call`.
pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[SearchOp<M::Input, M::Output>],
    limits: Limits,
    watch: Option<&mut Watch<M::Answer>>,
) -> Searched<M::State> {
    let mut steps: u64 = 0;
    let outcome = search_counting(model, ops, limits, watch, &mut steps);
    Searched { outcome, steps }
}

fn search_counting<M: Model>(
    model: &M,
    ops: &[SearchOp<M::Input, M::Output>],
    limits: Limits,
    mut watch: Option<&mut Watch<M::Answer>>,
    steps: &mut u64,
) -> Outcome<M::State> {
    if ops.is_empty() {
        return Outcome::Linearizable;
    }
    let mut nodes = entries(ops);
    let mut state = model.init();
    let mut linearized = Bitset::new(ops.len());
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut memo: HashSet<(Bitset, M::State)> = HashSet::new();
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
            if let Some(watch) = watch.as_deref_mut().filter(|w| w.rank == op.rank) {
                watch.record(model.answer(&state, op.input));
            }
            let next = model.step(&state, op.input, op.output);
            // An info op that would change nothing here is better left pending: it can still
            // take effect later, or never, so placing it now only multiplies configurations.
            let idle_info = op.ret == INFINITY && matches!(next, Some(Cow::Borrowed(_)));
            if let Some(next) = next.filter(|_| !idle_info) {
                let next = next.into_owned();
                let mut candidate = linearized.clone();
                candidate.set(node.op);
                let cost = candidate.bytes() + model.state_bytes(&next) + MEMO_ENTRY_OVERHEAD;
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
