//! A Porcupine-style linearizability checker (Wing–Gong–Lowe search with a memo cache), generic
//! over a sequential [`Model`]; the inventory (a group of SKUs and their orders, see
//! [`inventory`]) and the compare-and-set register of [`crate::cas_register`] are its instances.
//!
//! A model checks one partition of a history: the caller splits it (P-compositionality: a
//! history is linearizable iff every part is, when no op touches two parts). `fail` ops are
//! the caller's to drop (they never happened). An `info` op (unknown outcome) has its return
//! time at +infinity and no output to check: the model steps it like any other, and placing it
//! last is the same as "never applied".
//!
//! Two refinements of the plain search, both sound because an `info` op may take effect at
//! any point after its invocation or never: an `info` op whose step would change nothing is
//! left pending rather than linearized (it can always go later), and once the walk reaches the
//! return of an `info` op every op with a real return has been placed, so the history is
//! linearizable. Without them every pending `info` op doubles the configurations explored.
//!
//! The search is bounded by a time budget and a memory limit. Running out of either yields
//! [`Verdict::Unknown`](crate::Verdict::Unknown), which callers must count as a failure: a
//! checker that could not decide has not shown the history is correct. On a violation the
//! report shows the shortest window of consecutive ops (by invocation) ending at the first op
//! whose output cannot be explained, and starting at the latest op it contradicts; both are
//! found by re-running the search with some outputs unchecked (see [`checker`]).

use std::borrow::Cow;
use std::hash::Hash;

pub mod checker;
pub mod inventory;
mod search;

pub use checker::{brute_force, check_part, PartCheck, Violation, CONTEXT_OPS};
pub use inventory::{
    brute_force_linearizable, check, check_on_wall_clock, partition, partition_on_wall_clock,
    CheckError, CheckedOp, Counterexample, LinearizabilityReport, SkuCheck, SkuHistory,
};

/// Upper bound on the memo cache of one search (approximate bytes). The box is shared and a
/// search that needs more than this is better reported as Unknown than allowed to OOM.
pub const MAX_MEMO_BYTES: usize = 1 << 30;
/// Distinct answers collected for a counterexample's culprit.
pub const MAX_WATCHED_REPLIES: usize = 8;

/// The sequential specification of one partition of a history, in Porcupine's shape.
pub trait Model {
    /// Hashed into the memo cache with the set of linearized ops: keep it small.
    type State: Clone + Eq + Hash;
    type Input;
    type Output;
    /// What a correct system answers an op, for counterexamples: compared while searching,
    /// described only for the report.
    type Answer: PartialEq;

    fn init(&self) -> Self::State;

    /// The state after `input` takes effect in `state`, or `None` if a correct system could
    /// not have answered `output` there. `output` is `None` when it is not checked: the op's
    /// outcome is unknown (`info`), or a counterexample probe relaxed it.
    ///
    /// Return `Cow::Borrowed(state)` when nothing changes: an `info` op that would change
    /// nothing is then left pending, which keeps such ops from doubling the search (returning
    /// `Owned` is still correct, only slower).
    fn step<'s>(
        &self,
        state: &'s Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Cow<'s, Self::State>>;

    /// Whether `input` never changes any state: such an op constrains nothing unless its output
    /// is checked, so the search leaves it out then.
    fn is_read(&self, _input: &Self::Input) -> bool {
        false
    }

    /// Approximate size of a state, for the memo cache's memory limit.
    fn state_bytes(&self, _state: &Self::State) -> usize {
        std::mem::size_of::<Self::State>()
    }

    /// A state, for counterexamples.
    fn describe_state(&self, state: &Self::State) -> String;

    /// What a correct system answers `input` in `state`.
    fn answer(&self, state: &Self::State, input: &Self::Input) -> Self::Answer;

    fn describe_answer(&self, answer: &Self::Answer) -> String;
}

/// One op of a partition, as the checker takes it.
#[derive(Debug)]
pub struct Operation<'a, I, O> {
    /// Invocation time (any clock, as long as it orders events; equal times are concurrent).
    pub call: u64,
    /// Return time and output; `None` for an op whose outcome is unknown (`info`): it may have
    /// taken effect at any point after `call`, or never.
    pub returned: Option<(u64, &'a O)>,
    pub input: &'a I,
}

// Derived impls would require `I: Clone` and `O: Clone`; the fields are references.
impl<I, O> Clone for Operation<'_, I, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I, O> Copy for Operation<'_, I, O> {}

impl<I, O> Operation<'_, I, O> {
    /// +infinity for an `info` op.
    pub(crate) fn ret(&self) -> u64 {
        self.returned.map_or(search::INFINITY, |(ret, _)| ret)
    }

    pub(crate) fn output(&self) -> Option<&O> {
        self.returned.map(|(_, output)| output)
    }
}
