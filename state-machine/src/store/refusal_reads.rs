//! Refusals answered as reads (STATE_MACHINE.md, "Reads"). A `PlaceOrder` that the applied
//! state refuses changes nothing, so a leader that has just confirmed its leadership (read
//! index) may answer the refusal without a log write: it is exactly what the command would
//! have answered as the next entry, and the state after it is the state before it.
//!
//! Which refusals qualify, and when, is decided here, next to the engine that would otherwise
//! apply them; the caller only supplies the leader's view of what is still in flight.

use super::tx::Tx;
use super::{read_clock, Store, StoreError};
use crate::command::{Command, Refusal};
use crate::engine;
use crate::validation::{OrderId, SkuId};
use std::collections::HashSet;

impl Store {
    /// For each command, the refusal the leader may answer without proposing it, judged
    /// against one applied state as if its entry were stamped `now_ms`; `None` means
    /// "propose it".
    ///
    /// Only the linearisability argument's safe cases qualify:
    /// - only `PlaceOrder`, and only refusals that leave nothing behind for a later entry to
    ///   contradict: `sku_not_found`, `out_of_stock`, `per_user_limit_exceeded`, and
    ///   `sale_not_active` when the sale has not started by the proposal's clock or had
    ///   already ended by the applied clock. (A refused entry would still have advanced the
    ///   clock; a sale that ends between the two clocks is proposed, so that a later
    ///   leader's lagging clock cannot reopen a sale this answer called over.)
    /// - never an order whose id `in_flight` reports: an earlier attempt that will still be
    ///   applied must decide, not the state before it. An id already applied is a replay and
    ///   is proposed too, so its answer comes from the log;
    /// - never an order behind a command of the same call that will be proposed and could
    ///   change its verdict (another order on one of its SKUs or with its id, or any command
    ///   that is not an order): callers send commands that must apply in this order, and a
    ///   refusal judged before them could name counts they would have changed.
    pub fn refusals_as_reads(
        &self,
        now_ms: u64,
        commands: &[Command],
        in_flight: impl Fn(&OrderId) -> bool,
    ) -> Result<Vec<Option<Refusal>>, StoreError> {
        let mem = self.mem();
        let applied_clock = read_clock(&mem)?;
        let clock = applied_clock.max(now_ms);
        let mut verdicts = Vec::with_capacity(commands.len());
        let mut ahead = Ahead::with_capacity(commands.len());
        // One for every order: it only reads (`order_refusal` makes none of an order's
        // writes), and a transaction for checks keeps nothing of what it read.
        let mut checks = Tx::for_checks(&mem, clock);
        for command in commands {
            let Command::PlaceOrder {
                order_id, items, ..
            } = command
            else {
                ahead.anything = true;
                verdicts.push(None);
                continue;
            };
            let skus = || items.as_slice().iter().map(|item| &item.sku);
            let independent = !ahead.anything
                && !ahead.orders.contains(order_id)
                && !skus().any(|sku| ahead.skus.contains(sku))
                && !in_flight(order_id);
            let refusal = if independent {
                // The order's checks alone: what apply would refuse it for, without the
                // order, event and sales writes that a refusal throws away (perf: judging
                // every order of a batch that way was a sixth of the leader).
                let refusal = engine::order_refusal(&mut checks, command)?;
                debug_assert!(
                    checks.holds_nothing(),
                    "judging an order wrote to its checks"
                );
                refusal.filter(|refusal| final_refusal(refusal, applied_clock, clock))
            } else {
                None
            };
            if refusal.is_none() {
                ahead.orders.insert(order_id);
                ahead.skus.extend(skus());
            }
            verdicts.push(refusal);
        }
        Ok(verdicts)
    }
}

/// What the commands proposed so far in one call may change. Hashed with foldhash, seeded
/// per process: with std's SipHash these sets cost each order of a batch four hashes of its
/// ids (perf: SipHash was 1 % of the leader's samples under batches on 10,000 SKUs).
struct Ahead<'a> {
    anything: bool,
    orders: HashSet<&'a OrderId, foldhash::quality::RandomState>,
    skus: HashSet<&'a SkuId, foldhash::quality::RandomState>,
}

impl Ahead<'_> {
    /// Sized for every command of the call: growing them a batch at a time was a sixth of
    /// judging a batch on 10,000 SKUs (callgrind, `bench judge`).
    fn with_capacity(commands: usize) -> Self {
        Self {
            anything: false,
            orders: HashSet::with_capacity_and_hasher(commands, Default::default()),
            skus: HashSet::with_capacity_and_hasher(commands, Default::default()),
        }
    }
}

/// Whether a refusal judged at `clock` (the clock the entry would carry) may be answered
/// without the entry: see `refusals_as_reads`.
fn final_refusal(refusal: &Refusal, applied_clock: u64, clock: u64) -> bool {
    match refusal {
        Refusal::SkuNotFound { .. }
        | Refusal::OutOfStock { .. }
        | Refusal::PerUserLimitExceeded { .. } => true,
        Refusal::SaleNotActive {
            start_ms, end_ms, ..
        } => clock < *start_ms || applied_clock >= *end_ms,
        _ => false,
    }
}
