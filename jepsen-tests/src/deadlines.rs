//! Deadlines judged on the harness's wall clock. API.md: "Deadlines are exact": once the
//! cluster clock has passed an order's `expires_ms`, the order is `expired` to every command
//! and read. The cluster clock is the nodes' wall clock as a leader stamps it, and a node whose
//! clock disagrees with its peers' does not lead; the nodes of a run share this machine's
//! clock (a `clock-skew` fault moves one of them, which then must not lead). So every order
//! the cluster shows must agree with the harness's own wall clock, within [`TOLERANCE_MS`]:
//!
//! - no answer shows an order `expired` that completed clearly before its `expires_ms`;
//! - none shows it `reserved` when invoked clearly after `expires_ms`, nor a pay succeeding
//!   or a cancel answering `cancelled` then, unless an earlier pay (or cancel) of the order
//!   was invoked in time (its replay answers 200 the same, legitimately);
//! - no order was stamped `created_ms` clearly after the answer that showed it arrived: the
//!   cluster clock ran ahead of every healthy node's.
//!
//! Ops carry the history's monotonic ns; `origin_wall_ms` is the wall clock at its zero.

use std::collections::BTreeMap;

use crate::history::{History, Op, OpKind, Output};
use crate::model::OrderStatus;

use crate::clock_tolerance::TOLERANCE_MS;

/// Every deadline anomaly of the history, one line each.
pub fn check(history: &History, origin_wall_ms: u64) -> Vec<String> {
    let wall = |ns: u64| origin_wall_ms + ns / 1_000_000;
    // Per order and command kind, when it was first invoked: a later 200 of the same command
    // may be the replay of one that took effect in time.
    let mut first_invoked: BTreeMap<(&str, OpKind), u64> = BTreeMap::new();
    for op in history.ops() {
        if let Some(order) = op.input.order_id() {
            first_invoked
                .entry((order, op.kind()))
                .and_modify(|at| *at = (*at).min(op.invoke_ns))
                .or_insert(op.invoke_ns);
        }
    }
    let mut anomalies = Vec::new();
    for op in history.ops() {
        let Some(Output::Order(view)) = &op.output else {
            continue;
        };
        if !op.is_success() {
            continue;
        }
        let order = op.input.order_id().unwrap_or("?");
        let (invoked, completed) = (wall(op.invoke_ns), wall(op.complete_ns));
        if let Some(created_ms) = view.created_ms {
            if created_ms > completed + TOLERANCE_MS {
                anomalies.push(format!(
                    "order {order} stamped created_ms {created_ms}, {} ms after the answer \
                     arrived (the cluster clock ran ahead): {}",
                    created_ms - completed,
                    squeeze(op)
                ));
            }
        }
        let Some(expires_ms) = view.expires_ms else {
            continue;
        };
        if view.status == OrderStatus::Expired && completed + TOLERANCE_MS < expires_ms {
            anomalies.push(format!(
                "order {order} shown expired {} ms before its expires_ms {expires_ms}: {}",
                expires_ms - completed,
                squeeze(op)
            ));
        }
        let late = invoked > expires_ms + TOLERANCE_MS;
        if !late {
            continue;
        }
        let first_in_time = |kind| {
            first_invoked
                .get(&(order, kind))
                .is_some_and(|&ns| wall(ns) <= expires_ms + TOLERANCE_MS)
        };
        let what = match (op.kind(), view.status) {
            (_, OrderStatus::Reserved) => Some("shown reserved"),
            (OpKind::Pay, OrderStatus::Paid) if !first_in_time(OpKind::Pay) => Some("paid"),
            (OpKind::Cancel, OrderStatus::Cancelled) if !first_in_time(OpKind::Cancel) => {
                Some("cancelled")
            }
            _ => None,
        };
        if let Some(what) = what {
            anomalies.push(format!(
                "order {order} {what} by an op invoked {} ms after its expires_ms {expires_ms}: {}",
                invoked - expires_ms,
                squeeze(op)
            ));
        }
    }
    anomalies
}

/// The history's column padding, squeezed for a one-line report.
fn squeeze(op: &Op) -> String {
    op.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Input, Item, OrderView};

    /// The wall clock at the history's zero.
    const ORIGIN: u64 = 1_700_000_000_000;
    const MS: u64 = 1_000_000;

    fn view(status: OrderStatus, created_ms: u64, expires_ms: u64) -> Option<Output> {
        Some(Output::Order(OrderView {
            user_id: "u".into(),
            items: vec![Item {
                sku: "A".into(),
                qty: 1,
            }],
            status,
            revision: 1,
            created_ms: Some(created_ms),
            expires_ms: Some(expires_ms),
        }))
    }

    /// An answered op from `at_ms` to `at_ms + 10` on the history's clock.
    fn op(input: Input, at_ms: u64, http: u16, output: Option<Output>) -> Op {
        Op::answered(1, input, at_ms * MS, (at_ms + 10) * MS, http, output)
    }

    fn history(ops: Vec<Op>) -> History {
        let mut history = History::new();
        for op in ops {
            history.push(op).unwrap();
        }
        history
    }

    /// An order placed at 0 ms with a 3 s reservation, on a cluster clock equal to ours.
    fn placed() -> Op {
        let created = ORIGIN;
        op(
            Input::order("o1", "u", "A", 1),
            0,
            201,
            view(OrderStatus::Reserved, created, created + 3_000),
        )
    }

    #[test]
    fn a_history_that_keeps_its_deadlines_passes() {
        let deadline = ORIGIN + 3_000;
        let h = history(vec![
            placed(),
            op(
                Input::read_order("A", "o1"),
                1_000,
                200,
                view(OrderStatus::Reserved, ORIGIN, deadline),
            ),
            // Expired a little early by our clock: within the tolerance.
            op(
                Input::read_order("A", "o1"),
                2_500,
                200,
                view(OrderStatus::Expired, ORIGIN, deadline),
            ),
            // Still reserved a little late: within the tolerance.
            op(
                Input::read_order("A", "o1"),
                3_500,
                200,
                view(OrderStatus::Reserved, ORIGIN, deadline),
            ),
            op(
                Input::read_order("A", "o1"),
                9_000,
                200,
                view(OrderStatus::Expired, ORIGIN, deadline),
            ),
        ]);
        assert_eq!(check(&h, ORIGIN), Vec::<String>::new());
    }

    #[test]
    fn an_order_expired_early_is_reported() {
        let h = history(vec![
            placed(),
            op(
                Input::cancel("A", "o1"),
                1_200,
                200,
                view(OrderStatus::Expired, ORIGIN, ORIGIN + 3_000),
            ),
        ]);
        let found = check(&h, ORIGIN);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("shown expired 1790 ms before"),
            "{found:?}"
        );
    }

    #[test]
    fn reserved_paid_or_cancelled_after_the_deadline_is_reported() {
        let deadline = ORIGIN + 3_000;
        let h = history(vec![
            placed(),
            op(
                Input::read_order("A", "o1"),
                5_000,
                200,
                view(OrderStatus::Reserved, ORIGIN, deadline),
            ),
            op(
                Input::pay("A", "o1"),
                6_000,
                200,
                view(OrderStatus::Paid, ORIGIN, deadline),
            ),
            op(
                Input::cancel("A", "o1"),
                7_000,
                200,
                view(OrderStatus::Cancelled, ORIGIN, deadline),
            ),
        ]);
        let found = check(&h, ORIGIN);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].contains("shown reserved by an op invoked 2000 ms after"));
        assert!(found[1].contains("paid by an op invoked 3000 ms after"));
        assert!(found[2].contains("cancelled by an op invoked 4000 ms after"));
    }

    #[test]
    fn a_late_replay_of_a_pay_invoked_in_time_is_no_anomaly() {
        let deadline = ORIGIN + 3_000;
        let h = history(vec![
            placed(),
            Op::info(2, Input::pay("A", "o1"), 2_000 * MS, 5_000 * MS),
            op(
                Input::pay("A", "o1"),
                6_000,
                200,
                view(OrderStatus::Paid, ORIGIN, deadline),
            ),
        ]);
        assert_eq!(check(&h, ORIGIN), Vec::<String>::new());
    }

    #[test]
    fn a_stamp_from_a_clock_an_hour_ahead_is_reported() {
        let skewed = ORIGIN + 3_600_000;
        let h = history(vec![op(
            Input::order("o2", "u", "A", 1),
            0,
            201,
            view(OrderStatus::Reserved, skewed, skewed + 86_400_000),
        )]);
        let found = check(&h, ORIGIN);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("3599990 ms after the answer"),
            "{found:?}"
        );
    }
}
