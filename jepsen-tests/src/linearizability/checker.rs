//! The check of one partition against a [`Model`]: the search, and on a violation the shortest
//! window of ops that shows it.

use std::ops::Range;
use std::time::{Duration, Instant};

use super::search::{search, Limits, Outcome, SearchOp, Searched, Watch, INFINITY};
use super::{Model, Operation};
use crate::Verdict;

/// A window probe may take this many times the steps of the full search (or
/// [`PROBE_MIN_STEPS`]): bounded, so minimising never costs much more than checking did.
const PROBE_STEPS_FACTOR: u64 = 4;
const PROBE_MIN_STEPS: u64 = 100_000;
/// Ops named before a violation's window: enough to see the writes a stale read missed, few
/// enough to read.
pub const CONTEXT_OPS: usize = 8;

/// The checker's answer for one partition.
#[derive(Clone, Debug)]
pub struct PartCheck {
    pub verdict: Verdict,
    /// Why the verdict is `Unknown`.
    pub unknown_reason: Option<String>,
    /// Set when the verdict is `Fail`.
    pub violation: Option<Violation>,
    pub elapsed: Duration,
}

/// Where a partition stops being linearizable. Ops are named by their position in the slice
/// given to [`check_part`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Consecutive ops by invocation. The last is the culprit: the first op whose output
    /// cannot be explained together with the outputs of the ops invoked before it. The first
    /// is the latest op the culprit contradicts: the contradiction stands even if the ops in
    /// between are taken as `info` (maybe never applied). A window of one op: its output
    /// cannot be explained even if every earlier op is taken as `info`.
    pub window: Vec<usize>,
    /// Up to [`CONTEXT_OPS`] ops invoked just before the window, for the reader.
    pub context: Vec<usize>,
    /// False when a probe ran out of budget, so an earlier op may be the one contradicted.
    pub minimised: bool,
    /// The distinct answers a correct system gives the culprit at the points where it could
    /// have taken effect (given the outputs of the ops invoked before it); at most
    /// [`MAX_WATCHED_REPLIES`](super::MAX_WATCHED_REPLIES), then "...".
    pub could_answer: Vec<String>,
    /// The most ops the full search ever linearized, and the model state there.
    pub deepest_linearized: usize,
    pub deepest_state: String,
}

/// Checks one partition within `deadline` (`None`: no limit but the memo cache's).
///
/// Panics if an op returns before it is called: the callers' histories guarantee otherwise.
pub fn check_part<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    deadline: Option<Instant>,
) -> PartCheck {
    let started = Instant::now();
    assert!(
        ops.iter().all(|op| op.call <= op.ret()),
        "an op returns before it is called"
    );
    let ranks = ranks(ops);
    let all = search_ops(model, ops, &|_| Treatment::Checked, &ranks);
    let limits = Limits {
        deadline,
        max_steps: u64::MAX,
    };
    let Searched { outcome, steps } = search(model, &all, limits, None);
    let mut check = PartCheck {
        verdict: Verdict::Pass,
        unknown_reason: None,
        violation: None,
        elapsed: Duration::ZERO,
    };
    match outcome {
        Outcome::Linearizable => {}
        Outcome::Exhausted(reason) => {
            check.verdict = Verdict::Unknown;
            check.unknown_reason = Some(reason.to_owned());
        }
        Outcome::Illegal(deepest) => {
            check.verdict = Verdict::Fail;
            let (window, minimised) = shortest_window(model, ops, &ranks, deadline, steps);
            let culprit = window.end - 1;
            // Re-run the search that first failed at the culprit, noting what the model would
            // have answered it wherever it could have taken effect.
            let mut watch = Watch::new(culprit);
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
            let watched = search(
                model,
                &search_ops(model, ops, &treat, &ranks),
                probe,
                Some(&mut watch),
            );
            let mut could_answer: Vec<String> = watch
                .answers
                .iter()
                .map(|answer| model.describe_answer(answer))
                .collect();
            if matches!(watched.outcome, Outcome::Exhausted(_)) {
                could_answer.push("... (budget ran out)".to_owned());
            } else if watch.more {
                could_answer.push("...".to_owned());
            }
            let by_invocation = by_invocation(ops);
            let context_start = window.start.saturating_sub(CONTEXT_OPS);
            check.violation = Some(Violation {
                context: by_invocation[context_start..window.start].to_vec(),
                window: by_invocation[window].to_vec(),
                minimised,
                could_answer,
                deepest_linearized: deepest.linearized,
                deepest_state: model.describe_state(&deepest.state),
            });
        }
    }
    check.elapsed = started.elapsed();
    check
}

/// Positions of `ops` sorted by invocation (ties by position).
fn by_invocation<I, O>(ops: &[Operation<I, O>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (ops[i].call, i));
    order
}

/// `ranks[i]` is the invocation rank of `ops[i]`.
fn ranks<I, O>(ops: &[Operation<I, O>]) -> Vec<usize> {
    let mut ranks = vec![0; ops.len()];
    for (rank, i) in by_invocation(ops).into_iter().enumerate() {
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
fn search_ops<'a, M: Model>(
    model: &M,
    ops: &[Operation<'a, M::Input, M::Output>],
    treat: &dyn Fn(usize) -> Treatment,
    ranks: &[usize],
) -> Vec<SearchOp<'a, M::Input, M::Output>> {
    ops.iter()
        .zip(ranks)
        .filter_map(|(op, &rank)| {
            let treatment = treat(rank);
            let output = match treatment {
                Treatment::Checked => op.returned.map(|(_, output)| output),
                Treatment::Unchecked | Treatment::Maybe => None,
            };
            if output.is_none() && model.is_read(op.input) {
                return None;
            }
            Some(SearchOp {
                rank,
                call: op.call,
                ret: if treatment == Treatment::Maybe {
                    INFINITY
                } else {
                    op.ret()
                },
                input: op.input,
                output,
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
fn shortest_window<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    ranks: &[usize],
    deadline: Option<Instant>,
    full_search_steps: u64,
) -> (Range<usize>, bool) {
    let n = ops.len();
    let limits = Limits {
        deadline,
        max_steps: probe_steps(full_search_steps),
    };
    let fails = |treat: &dyn Fn(usize) -> Treatment| -> Option<bool> {
        match search(model, &search_ops(model, ops, treat, ranks), limits, None).outcome {
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

/// A brute-force reference: tries every order of the ops that respects real time, with none
/// of the search's memo or pruning. Exponential; for differential tests on tiny histories.
#[doc(hidden)]
pub fn brute_force<M: Model>(model: &M, ops: &[Operation<M::Input, M::Output>]) -> bool {
    fn place<M: Model>(
        model: &M,
        ops: &[Operation<M::Input, M::Output>],
        placed: &mut Vec<bool>,
        state: &M::State,
        left: usize,
    ) -> bool {
        if left == 0 {
            return true;
        }
        for i in 0..ops.len() {
            if placed[i] {
                continue;
            }
            // `i` may go next only if no unplaced op returned before `i` was called.
            let blocked =
                (0..ops.len()).any(|j| !placed[j] && j != i && ops[j].ret() < ops[i].call);
            if blocked {
                continue;
            }
            let Some(next) = model.step(state, ops[i].input, ops[i].output()) else {
                continue;
            };
            placed[i] = true;
            if place(model, ops, placed, &next, left - 1) {
                return true;
            }
            placed[i] = false;
        }
        false
    }
    let mut placed = vec![false; ops.len()];
    place(model, ops, &mut placed, &model.init(), ops.len())
}
