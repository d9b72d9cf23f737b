//! Sale windows as the checker judges them. A SKU created with a `sale_window` takes orders
//! only while the cluster clock is in `[start_ms, end_ms)` (API.md). The cluster clock is not
//! the harness's: the model sees only when each order was invoked and answered on the
//! harness's wall clock, so, as the deadline checks do ([`crate::clock_tolerance::TOLERANCE_MS`]),
//! it demands an answer only where the two clocks cannot disagree about it:
//!
//! - an order answered before `start_ms − tolerance`, or invoked after `end_ms + tolerance`,
//!   must be refused `sale_not_active`;
//! - one invoked at or after `start_ms + tolerance` and answered before `end_ms − tolerance`
//!   must not be;
//! - any other (its interval comes within the tolerance of an edge) may be either.

use serde::{Deserialize, Serialize};

use crate::clock_tolerance::TOLERANCE_MS;

/// A SKU's sale window, as API.md spells it: half-open, on the cluster clock (ms since the
/// Unix epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SaleWindow {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// When an op ran, on the harness's wall clock (ms since the Unix epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WallInterval {
    pub invoke_ms: u64,
    /// `u64::MAX` when no answer came (`info`): it may take effect any time after.
    pub complete_ms: u64,
}

impl WallInterval {
    /// An op whose time is not known (a history checked without its wall clock): no window
    /// edge is ever clearly behind or ahead of it.
    pub const UNKNOWN: WallInterval = WallInterval {
        invoke_ms: 0,
        complete_ms: u64::MAX,
    };
}

/// What an order may be told about a sale window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaleState {
    /// Clearly outside the window: `sale_not_active` is the only right answer.
    Closed,
    /// Clearly inside: `sale_not_active` is wrong.
    Open,
    /// Within the tolerance of an edge: either.
    Either,
}

impl SaleWindow {
    /// API.md: a window needs `start_ms < end_ms`.
    pub fn is_valid(&self) -> bool {
        self.start_ms < self.end_ms
    }

    pub fn judge(&self, at: WallInterval) -> SaleState {
        let before = at.complete_ms.saturating_add(TOLERANCE_MS) < self.start_ms;
        let after = at.invoke_ms > self.end_ms.saturating_add(TOLERANCE_MS);
        if before || after {
            return SaleState::Closed;
        }
        let inside = at.invoke_ms >= self.start_ms.saturating_add(TOLERANCE_MS)
            && at.complete_ms.saturating_add(TOLERANCE_MS) < self.end_ms;
        if inside {
            SaleState::Open
        } else {
            SaleState::Either
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: SaleWindow = SaleWindow {
        start_ms: 10_000,
        end_ms: 20_000,
    };

    fn at(invoke_ms: u64, complete_ms: u64) -> SaleState {
        WINDOW.judge(WallInterval {
            invoke_ms,
            complete_ms,
        })
    }

    #[test]
    fn only_orders_clear_of_both_edges_are_judged() {
        assert_eq!(at(0, 8_999), SaleState::Closed);
        assert_eq!(at(0, 9_000), SaleState::Either);
        assert_eq!(at(9_500, 10_500), SaleState::Either);
        assert_eq!(at(10_999, 12_000), SaleState::Either);
        assert_eq!(at(11_000, 18_999), SaleState::Open);
        assert_eq!(at(11_000, 19_000), SaleState::Either);
        assert_eq!(at(20_500, 20_600), SaleState::Either);
        assert_eq!(at(21_000, 21_100), SaleState::Either);
        assert_eq!(at(21_001, 21_100), SaleState::Closed);
    }

    #[test]
    fn an_unanswered_order_is_never_clearly_before_or_inside() {
        assert_eq!(at(0, u64::MAX), SaleState::Either);
        assert_eq!(at(12_000, u64::MAX), SaleState::Either);
        assert_eq!(at(21_001, u64::MAX), SaleState::Closed);
        assert_eq!(WINDOW.judge(WallInterval::UNKNOWN), SaleState::Either);
    }
}
