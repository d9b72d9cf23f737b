//! The leader's answer to orders its applied state refuses: a read, not a log write
//! (STATE_MACHINE.md, "Reads"; the argument is in ARCHITECTURE.md). Which refusals qualify
//! is the state machine's rule (`Store::refusals_as_reads`); this module supplies the
//! read-index round and the orders still in flight.
//!
//! The local state is consulted first without a round: an order it accepts is proposed at
//! once (proposing is always correct), so only refusals pay for the round, and concurrent
//! refusals share it.

use crate::clock::Clocks;
use crate::in_flight::InFlightOrders;
use crate::read_index::{ReadError, ReadIndex};
use state_machine::{Command, Refusal, Store};
use std::sync::Arc;
use std::time::Duration;

/// How long the round may take before the orders are answered unavailable.
const ROUND_TIMEOUT: Duration = Duration::from_secs(5);

pub struct RefusalReads {
    store: Arc<Store>,
    reads: ReadIndex,
    in_flight: InFlightOrders,
    clocks: Clocks,
}

impl RefusalReads {
    pub fn new(
        store: Arc<Store>,
        reads: ReadIndex,
        in_flight: InFlightOrders,
        clocks: Clocks,
    ) -> Self {
        Self {
            store,
            reads,
            in_flight,
            clocks,
        }
    }

    /// For each command, the refusal to answer now, or `None` to propose it.
    pub async fn judge(&self, commands: &[Command]) -> Result<Vec<Option<Refusal>>, ReadError> {
        let local = self.judge_now(commands);
        if local.iter().all(Option::is_none) {
            return Ok(local);
        }
        self.reads.confirm(ROUND_TIMEOUT).await?;
        // Judged again after the round: only the state at or after the read index counts.
        Ok(self.judge_now(commands))
    }

    fn judge_now(&self, commands: &[Command]) -> Vec<Option<Refusal>> {
        let in_flight = |id: &_| self.in_flight.contains(id);
        // Judged by the clock a proposal of these orders would carry.
        let now_ms = self.clocks.proposal_ms();
        match self.store.refusals_as_reads(now_ms, commands, in_flight) {
            Ok(verdicts) => verdicts,
            Err(e) => {
                // The log's apply meets the same state and reports it there.
                tracing::error!(error = %e, "judging orders as reads failed; proposing them");
                vec![None; commands.len()]
            }
        }
    }
}
