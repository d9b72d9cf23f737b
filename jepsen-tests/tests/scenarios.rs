//! Hand-built histories, good and bad, through the linearizability checker and the invariants.
//! Times are small integers (ns); every op gets its own process so the per-process rules
//! never get in the way.

use std::time::Duration;

use jepsen_tests::history::{Item, OrderView, SkuView};
use jepsen_tests::invariants::{self, Invariant, NodeFinal};
use jepsen_tests::linearizability;
use jepsen_tests::model::OrderStatus;
use jepsen_tests::report::{RunReport, Summary};
use jepsen_tests::{check, History, Input, Op, Output, Verdict};

const BUDGET: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Builder {
    history: History,
    next_process: u64,
}

impl Builder {
    fn push(&mut self, mut op: Op) -> &mut Self {
        op.process = self.next_process;
        self.next_process += 1;
        self.history.push(op).expect("well-formed op");
        self
    }

    fn ok(&mut self, input: Input, at: (u64, u64), http: u16, output: Option<Output>) -> &mut Self {
        self.push(Op::ok(0, input, at.0, at.1, http, output))
    }

    fn info(&mut self, input: Input, at: (u64, u64)) -> &mut Self {
        self.push(Op::info(0, input, at.0, at.1))
    }

    fn fail(&mut self, input: Input, at: (u64, u64)) -> &mut Self {
        self.push(Op::answered(
            0,
            input,
            at.0,
            at.1,
            400,
            Some(Output::error("invalid_request")),
        ))
    }

    fn build(&mut self) -> History {
        std::mem::take(&mut self.history)
    }
}

/// A SKU body: (total, available, reserved, sold, refunded), revision.
fn sku(c: (u64, u64, u64, u64, u64), revision: u64) -> Option<Output> {
    Some(Output::Sku(SkuView {
        total: c.0,
        available: c.1,
        reserved: c.2,
        sold: c.3,
        refunded: c.4,
        revision,
    }))
}

fn order(user: &str, sku: &str, qty: u64, status: OrderStatus, revision: u64) -> Option<Output> {
    Some(Output::Order(OrderView {
        user_id: user.into(),
        items: vec![Item {
            sku: sku.into(),
            qty,
        }],
        status,
        revision,
        created_ms: None,
        expires_ms: None,
    }))
}

fn refused(code: &str) -> Option<Output> {
    Some(Output::error(code))
}

fn verdict(history: &History) -> Verdict {
    check(history, BUDGET).expect("checkable history").verdict()
}

fn converged() -> Vec<NodeFinal> {
    (1..=3)
        .map(|node| NodeFinal {
            node,
            last_applied: Some(42),
            digest: Some("d1".into()),
        })
        .collect()
}

fn violated(history: &History) -> Vec<Invariant> {
    let report = invariants::check_all(history, &converged(), 1);
    report.violations().map(|v| v.invariant).collect()
}

/// A busy but correct history over two SKUs, ending with final reads of everything.
fn legal_concurrent_history() -> History {
    use OrderStatus::*;
    let mut b = Builder::default();
    b.ok(
        Input::create_sku("A", 2),
        (0, 10),
        201,
        sku((2, 2, 0, 0, 0), 1),
    )
    .ok(Input::create_sku("B", 1), (0, 12), 201, None)
    // Two concurrent orders and a read that saw exactly one of them.
    .ok(
        Input::order("o1", "u1", "A", 1),
        (20, 40),
        201,
        order("u1", "A", 1, Reserved, 2),
    )
    .ok(Input::order("o2", "u2", "A", 1), (25, 45), 201, None)
    .ok(Input::read_sku("A"), (30, 50), 200, sku((2, 1, 1, 0, 0), 2))
    // B sells out to whichever came first.
    .ok(
        Input::order("o4", "u1", "B", 1),
        (20, 60),
        409,
        refused("out_of_stock"),
    )
    .ok(Input::order("o5", "u2", "B", 1), (21, 30), 201, None)
    .ok(
        Input::pay("A", "o1"),
        (50, 60),
        200,
        order("u1", "A", 1, Paid, 4),
    )
    .ok(Input::cancel("A", "o2"), (55, 70), 200, None)
    // Out of stock whichever of the cancel and it came first.
    .ok(
        Input::order("o3", "u3", "A", 2),
        (58, 80),
        409,
        refused("out_of_stock"),
    )
    .ok(Input::pay("A", "o1"), (61, 65), 200, None)
    .ok(
        Input::read_sku("A"),
        (90, 100),
        200,
        sku((2, 1, 0, 1, 0), 5),
    )
    .ok(
        Input::refund("A", "o1", false),
        (110, 120),
        200,
        order("u1", "A", 1, Refunded, 6),
    )
    .ok(Input::restock("A", "r1", 3), (111, 125), 200, None)
    .ok(
        Input::restock("A", "r1", 3),
        (126, 127),
        200,
        sku((4, 4, 0, 0, 1), 7),
    )
    // Final reads.
    .ok(
        Input::read_sku("A"),
        (130, 140),
        200,
        sku((4, 4, 0, 0, 1), 7),
    )
    .ok(
        Input::read_sku("B"),
        (130, 140),
        200,
        sku((1, 0, 1, 0, 0), 3),
    )
    .ok(
        Input::read_order("A", "o1"),
        (141, 150),
        200,
        order("u1", "A", 1, Refunded, 6),
    )
    .ok(
        Input::read_order("A", "o2"),
        (141, 150),
        200,
        order("u2", "A", 1, Cancelled, 5),
    )
    .ok(
        Input::read_order("A", "o3"),
        (141, 150),
        404,
        refused("order_not_found"),
    )
    .ok(
        Input::read_order("B", "o4"),
        (141, 150),
        404,
        refused("order_not_found"),
    )
    .ok(
        Input::read_order("B", "o5"),
        (141, 150),
        200,
        order("u2", "B", 1, Reserved, 3),
    );
    b.build()
}

#[test]
fn legal_concurrent_history_passes_everything() {
    let history = legal_concurrent_history();
    let report = check(&history, BUDGET).unwrap();
    assert_eq!(report.verdict(), Verdict::Pass, "{report}");
    assert_eq!(report.skus.len(), 2);
    let invariants = invariants::check_all(&history, &converged(), 10);
    assert_eq!(invariants.verdict(), Verdict::Pass, "{invariants}");

    let mut run = RunReport::new("legal", &history);
    run.add_linearizability(&Ok(report));
    run.add_invariants(&invariants);
    let summary = Summary { runs: vec![run] };
    assert!(summary.to_string().ends_with("jepsen: 1 passed, 0 failed"));
}

#[test]
fn stale_read_fails_with_a_short_window() {
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 5), (0, 10), 201, None)
        .ok(Input::read_sku("A"), (11, 12), 200, sku((5, 5, 0, 0, 0), 1))
        .ok(Input::order("o1", "u1", "A", 1), (20, 30), 201, None)
        .ok(Input::read_sku("A"), (31, 33), 200, sku((5, 4, 1, 0, 0), 2))
        // Read after the order was acknowledged, showing the old stock.
        .ok(Input::read_sku("A"), (40, 50), 200, sku((5, 5, 0, 0, 0), 1))
        .ok(Input::read_sku("A"), (60, 70), 200, sku((5, 4, 1, 0, 0), 2));
    let history = b.build();
    let report = check(&history, BUDGET).unwrap();
    assert_eq!(report.verdict(), Verdict::Fail);
    let sku = &report.skus[0];
    let counterexample = sku.counterexample.as_ref().expect("a counterexample");
    assert!(counterexample.minimised);
    // From the order the read missed to the read; the read between does not matter.
    let window: Vec<u64> = counterexample.window.iter().map(|op| op.index).collect();
    assert_eq!(window, vec![2, 3, 4], "{report}");
    assert_eq!(counterexample.context.len(), 2);
    assert_eq!(counterexample.could_answer.len(), 1);
    assert_eq!(counterexample.deepest_linearized, 4);
    let text = report.to_string();
    assert!(text.contains("A: FAIL"), "{text}");
    assert!(
        text.contains("a correct store answers: 200 sku total=5 available=4 reserved=1"),
        "{text}"
    );
    assert!(text.contains("> "), "{text}");
}

#[test]
fn window_spans_the_ops_that_contradict_each_other() {
    // Two reads that each fit some order of the concurrent writes, but not the same one.
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 1), (0, 10), 201, None)
        .ok(Input::order("o1", "u1", "A", 1), (20, 100), 201, None)
        .ok(Input::read_sku("A"), (30, 40), 200, sku((1, 0, 1, 0, 0), 2))
        .ok(Input::read_sku("A"), (50, 60), 200, sku((1, 1, 0, 0, 0), 1));
    let history = b.build();
    let report = check(&history, BUDGET).unwrap();
    let counterexample = report.skus[0]
        .counterexample
        .as_ref()
        .expect("a counterexample");
    let window: Vec<u64> = counterexample.window.iter().map(|op| op.index).collect();
    assert_eq!(window, vec![2, 3], "{report}");
}

#[test]
fn oversell_fails() {
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 1), (0, 10), 201, None)
        .ok(Input::order("o1", "u1", "A", 1), (20, 40), 201, None)
        .ok(Input::order("o2", "u2", "A", 1), (25, 45), 201, None);
    let history = b.build();
    let report = check(&history, BUDGET).unwrap();
    assert_eq!(report.verdict(), Verdict::Fail);
    // The second acknowledgement contradicts the first.
    let window: Vec<u64> = report.skus[0]
        .counterexample
        .as_ref()
        .unwrap()
        .window
        .iter()
        .map(|op| op.index)
        .collect();
    assert_eq!(window, vec![1, 2], "{report}");
    assert!(invariants::no_oversell(&history)
        .iter()
        .any(|v| v.text.contains("acknowledged 201 for 2 units")));
}

#[test]
fn a_read_no_history_explains_is_its_own_window() {
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 5), (0, 10), 201, None)
        .ok(Input::order("o1", "u1", "A", 1), (20, 30), 201, None)
        .ok(Input::read_sku("A"), (40, 50), 200, sku((9, 9, 0, 0, 0), 1));
    let report = check(&b.build(), BUDGET).unwrap();
    let counterexample = report.skus[0].counterexample.as_ref().unwrap();
    assert_eq!(counterexample.window.len(), 1);
    assert_eq!(counterexample.window[0].index, 2);
    assert!(counterexample.minimised);
    assert!(report
        .to_string()
        .contains("cannot be explained by any of the ops"));
}

#[test]
fn oversold_read_breaks_the_invariants() {
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 1), (0, 10), 201, None).ok(
        Input::read_sku("A"),
        (20, 30),
        200,
        sku((1, 0, 2, 0, 0), 3),
    );
    let history = b.build();
    let found: Vec<Invariant> = invariants::no_oversell(&history)
        .into_iter()
        .chain(invariants::sku_balance(&history))
        .map(|v| v.invariant)
        .collect();
    assert_eq!(found, vec![Invariant::NoOversell, Invariant::SkuBalance]);
}

fn oversell_violations(history: &History) -> Vec<String> {
    invariants::no_oversell(history)
        .into_iter()
        .map(|v| v.text)
        .collect()
}

#[test]
fn no_oversell_counts_acknowledged_withdrawals() {
    // A read that balances, but holds 2 units after one of the 2 stocked was withdrawn.
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 2), (0, 10), 201, None)
        .ok(Input::restock("A", "r1", -1), (20, 30), 200, None)
        // A replay of the same request removes nothing more.
        .ok(Input::restock("A", "r1", -1), (31, 35), 200, None)
        .ok(Input::read_sku("A"), (40, 50), 200, sku((2, 0, 2, 0, 0), 3));
    let found = oversell_violations(&b.build());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("1 were withdrawn"), "{found:?}");

    // Orders and withdrawals both take units out of available: 1 + 2 > 2.
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 2), (0, 10), 201, None)
        .ok(Input::restock("A", "r1", -1), (20, 30), 200, None)
        .ok(Input::order("o1", "u1", "A", 1), (40, 50), 201, None)
        .ok(Input::order("o2", "u2", "A", 1), (40, 50), 201, None);
    let found = oversell_violations(&b.build());
    assert!(found.iter().any(|t| t.contains("for 3 units")), "{found:?}");
}

#[test]
fn no_oversell_counts_refunds_without_restock_once_and_only_when_sure() {
    use OrderStatus::*;
    let refunded_then_read = |read: Option<Output>| {
        let mut b = Builder::default();
        b.ok(Input::create_sku("A", 2), (0, 10), 201, None)
            .ok(Input::order("o1", "u1", "A", 1), (20, 30), 201, None)
            .ok(Input::pay("A", "o1"), (40, 50), 200, None)
            .ok(
                Input::refund("A", "o1", false),
                (60, 70),
                200,
                order("u1", "A", 1, Refunded, 4),
            )
            .ok(Input::order("o2", "u2", "A", 1), (80, 90), 201, None)
            .ok(Input::read_sku("A"), (100, 110), 200, read);
        b.build()
    };
    // After the refund took one unit out, 2 held units are one too many.
    let found = oversell_violations(&refunded_then_read(sku((2, 0, 1, 1, 1), 6)));
    assert_eq!(found.len(), 1, "{found:?}");
    // The right read passes.
    let found = oversell_violations(&refunded_then_read(sku((1, 0, 1, 0, 1), 6)));
    assert!(found.is_empty(), "{found:?}");
    // A restocking refund may have come first (then the 200 above was a no-op): the unit went
    // back to available, so o2 and o3 may hold 2 units.
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 2), (0, 10), 201, None)
        .ok(Input::order("o1", "u1", "A", 1), (20, 30), 201, None)
        .ok(Input::pay("A", "o1"), (40, 50), 200, None)
        .info(Input::refund("A", "o1", true), (55, 58))
        .ok(
            Input::refund("A", "o1", false),
            (60, 70),
            200,
            order("u1", "A", 1, Refunded, 4),
        )
        .ok(Input::order("o2", "u2", "A", 1), (80, 90), 201, None)
        .ok(Input::order("o3", "u3", "A", 1), (80, 90), 201, None)
        .ok(
            Input::read_sku("A"),
            (100, 110),
            200,
            sku((2, 0, 2, 0, 1), 7),
        );
    let found = oversell_violations(&b.build());
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn lost_order_fails_the_invariant() {
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 2), (0, 10), 201, None)
        .ok(Input::order("o1", "u1", "A", 1), (20, 30), 201, None)
        .ok(
            Input::read_sku("A"),
            (100, 110),
            200,
            sku((2, 2, 0, 0, 0), 1),
        )
        .ok(
            Input::read_order("A", "o1"),
            (100, 110),
            404,
            refused("order_not_found"),
        );
    let history = b.build();
    let lost = invariants::acked_orders_survive(&history);
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert!(lost[0].text.contains("found no such order"), "{}", lost[0]);
    assert_eq!(verdict(&history), Verdict::Fail);

    // Never reading it at the end is not a pass either.
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 2), (0, 10), 201, None)
        .ok(Input::order("o1", "u1", "A", 1), (20, 30), 201, None)
        .ok(
            Input::read_sku("A"),
            (100, 110),
            200,
            sku((2, 1, 1, 0, 0), 2),
        );
    let history = b.build();
    let unread = invariants::acked_orders_survive(&history);
    assert!(
        unread[0].text.contains("never read after the run"),
        "{unread:?}"
    );
    assert!(violated(&history).contains(&Invariant::NoDoublePay));
}

#[test]
fn a_paid_order_never_reads_as_cancelled() {
    use OrderStatus::*;
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 2), (0, 10), 201, None)
        .ok(Input::order("o1", "u1", "A", 1), (20, 30), 201, None)
        .ok(Input::pay("A", "o1"), (40, 50), 200, None)
        .ok(
            Input::read_order("A", "o1"),
            (60, 70),
            200,
            order("u1", "A", 1, Cancelled, 9),
        );
    let history = b.build();
    let found = invariants::acked_orders_survive(&history);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].text.contains("can only be paid/refunded"),
        "{}",
        found[0]
    );
}

#[test]
fn double_pay_fails() {
    use OrderStatus::*;
    // The server applied the second (no-op) pay again, selling o2's reserved unit.
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 2), (0, 10), 201, None)
        .ok(Input::order("o1", "u1", "A", 1), (20, 30), 201, None)
        .ok(Input::order("o2", "u2", "A", 1), (20, 30), 201, None)
        .ok(Input::pay("A", "o1"), (40, 50), 200, None)
        .ok(Input::pay("A", "o1"), (60, 70), 200, None)
        .ok(
            Input::read_sku("A"),
            (100, 110),
            200,
            sku((2, 0, 0, 2, 0), 5),
        )
        .ok(
            Input::read_order("A", "o1"),
            (100, 110),
            200,
            order("u1", "A", 1, Paid, 4),
        )
        .ok(
            Input::read_order("A", "o2"),
            (100, 110),
            200,
            order("u2", "A", 1, Reserved, 3),
        );
    let history = b.build();
    let found = invariants::no_double_pay(&history);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].text.contains("sold 2 and reserved 0"),
        "{}",
        found[0]
    );
    assert!(
        found[0].text.contains("1 paid and 1 reserved"),
        "{}",
        found[0]
    );
    assert_eq!(verdict(&history), Verdict::Fail);
}

#[test]
fn info_write_that_shows_up_later_is_legal() {
    use OrderStatus::*;
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 2), (0, 10), 201, None)
        .info(Input::order("o1", "u1", "A", 1), (20, 6_000))
        .ok(Input::read_sku("A"), (30, 40), 200, sku((2, 2, 0, 0, 0), 1))
        // Applied after the client gave up (a gateway retry, a slow commit).
        .ok(
            Input::read_sku("A"),
            (10_000, 10_010),
            200,
            sku((2, 1, 1, 0, 0), 2),
        )
        .ok(
            Input::read_order("A", "o1"),
            (10_000, 10_010),
            200,
            order("u1", "A", 1, Reserved, 2),
        );
    let history = b.build();
    assert_eq!(verdict(&history), Verdict::Pass);
    assert!(violated(&history).is_empty(), "{:?}", violated(&history));
}

#[test]
fn info_write_that_never_shows_up_is_legal() {
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 2), (0, 10), 201, None)
        .info(Input::order("o1", "u1", "A", 1), (20, 6_000))
        .info(Input::restock("A", "r1", 5), (21, 6_000))
        .ok(
            Input::read_sku("A"),
            (10_000, 10_010),
            200,
            sku((2, 2, 0, 0, 0), 1),
        )
        .ok(
            Input::read_order("A", "o1"),
            (10_000, 10_010),
            404,
            refused("order_not_found"),
        );
    let history = b.build();
    assert_eq!(verdict(&history), Verdict::Pass);
    assert!(violated(&history).is_empty(), "{:?}", violated(&history));
}

#[test]
fn info_write_that_appears_then_vanishes_fails() {
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 2), (0, 10), 201, None)
        .info(Input::order("o1", "u1", "A", 1), (20, 6_000))
        .ok(Input::read_sku("A"), (30, 40), 200, sku((2, 1, 1, 0, 0), 2))
        .ok(Input::read_sku("A"), (50, 60), 200, sku((2, 2, 0, 0, 0), 1));
    assert_eq!(verdict(&b.build()), Verdict::Fail);
}

#[test]
fn failed_ops_are_dropped_and_must_stay_invisible() {
    use OrderStatus::*;
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 2), (0, 10), 201, None)
        .fail(Input::order("o1", "u1", "A", 1), (20, 30))
        .ok(Input::read_sku("A"), (40, 50), 200, sku((2, 2, 0, 0, 0), 1));
    assert_eq!(verdict(&b.build()), Verdict::Pass);

    // A "failed" create whose order exists after all: fail was the wrong classification.
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 2), (0, 10), 201, None)
        .fail(Input::order("o1", "u1", "A", 1), (20, 30))
        .ok(
            Input::order("o2", "u1", "A", 1),
            (20, 30),
            409,
            refused("out_of_stock"),
        )
        .ok(
            Input::read_order("A", "o1"),
            (40, 50),
            200,
            order("u1", "A", 1, Reserved, 2),
        )
        .ok(
            Input::read_order("A", "o2"),
            (40, 50),
            200,
            order("u1", "A", 1, Reserved, 3),
        );
    let history = b.build();
    assert_eq!(verdict(&history), Verdict::Fail);
    let phantoms = invariants::failed_creates_invisible(&history);
    assert_eq!(phantoms.len(), 2, "{phantoms:?}");
    assert!(
        phantoms[0].text.contains("order o1 exists"),
        "{}",
        phantoms[0]
    );
}

#[test]
fn concurrent_orders_may_linearize_either_way() {
    for first_wins in [true, false] {
        let (a, b_) = if first_wins {
            ((201, None), (409, refused("out_of_stock")))
        } else {
            ((409, refused("out_of_stock")), (201, None))
        };
        let mut b = Builder::default();
        b.ok(Input::create_sku("A", 1), (0, 10), 201, None)
            .ok(Input::order("o1", "u1", "A", 1), (20, 50), a.0, a.1)
            .ok(Input::order("o2", "u2", "A", 1), (30, 40), b_.0, b_.1)
            // A read overlapping both may see either state.
            .ok(Input::read_sku("A"), (15, 45), 200, sku((1, 1, 0, 0, 0), 1))
            .ok(Input::read_sku("A"), (35, 55), 200, sku((1, 0, 1, 0, 0), 2));
        assert_eq!(
            verdict(&b.build()),
            Verdict::Pass,
            "first_wins={first_wins}"
        );
    }
    // Intervals that only touch are concurrent too (closed intervals).
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 1), (0, 10), 201, None).ok(
        Input::read_sku("A"),
        (10, 20),
        404,
        refused("sku_not_found"),
    );
    assert_eq!(verdict(&b.build()), Verdict::Pass);
}

#[test]
fn sequential_orders_must_follow_real_time() {
    // o1 completed before o2 was invoked, so o2 cannot have taken the last unit first.
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 1), (0, 10), 201, None)
        .ok(
            Input::order("o1", "u1", "A", 1),
            (20, 30),
            409,
            refused("out_of_stock"),
        )
        .ok(Input::order("o2", "u2", "A", 1), (40, 50), 201, None);
    assert_eq!(verdict(&b.build()), Verdict::Fail);
}

#[test]
fn zero_budget_is_unknown_and_unknown_fails_the_run() {
    let history = legal_concurrent_history();
    let report = check(&history, Duration::ZERO).unwrap();
    assert_eq!(report.verdict(), Verdict::Unknown);
    assert!(!report.verdict().is_pass());
    assert!(report.skus.iter().all(|s| s.unknown_reason.is_some()));
    let mut run = RunReport::new("slow", &history);
    run.add_linearizability(&Ok(report));
    run.add_invariants(&invariants::check_all(&history, &converged(), 1));
    assert!(!run.passed());
    assert!(Summary { runs: vec![run] }
        .to_string()
        .ends_with("jepsen: 0 passed, 1 failed"));
    // An empty history decides nothing and needs no time, but fails the min-ops invariant.
    assert_eq!(verdict(&History::new()), Verdict::Pass);
    assert_eq!(violated(&History::new()), vec![Invariant::EnoughOkOps]);
}

#[test]
fn revisions_never_go_backwards() {
    let mut b = Builder::default();
    b.ok(
        Input::create_sku("A", 1),
        (0, 10),
        201,
        sku((1, 1, 0, 0, 0), 5),
    )
    .ok(Input::read_sku("A"), (20, 30), 200, sku((1, 1, 0, 0, 0), 4))
    // Concurrent with the create: may see an older revision.
    .ok(Input::read_sku("A"), (5, 30), 200, sku((1, 1, 0, 0, 0), 3));
    let found = invariants::revisions_monotonic(&b.build());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].text.contains("revision 4 after #0"),
        "{}",
        found[0]
    );
}

#[test]
fn nodes_must_converge() {
    let mut nodes = converged();
    assert!(invariants::convergence(&nodes).is_empty());
    nodes[1].last_applied = Some(41);
    nodes[2].digest = Some("d2".into());
    assert_eq!(invariants::convergence(&nodes).len(), 2);
    assert_eq!(invariants::convergence(&[]).len(), 1);
    // A node that does not answer, or gives no digest, fails the run.
    let mut silent = converged();
    silent[0].last_applied = None;
    silent[0].digest = None;
    let found = invariants::convergence(&silent);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].text.contains("did not answer"), "{}", found[0]);
    let mut no_digest = converged();
    no_digest[2].digest = None;
    let found = invariants::convergence(&no_digest);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].text.contains("no state digest"), "{}", found[0]);
}

#[test]
fn idle_runs_fail() {
    let mut b = Builder::default();
    b.info(Input::create_sku("A", 1), (0, 10));
    let history = b.build();
    assert_eq!(invariants::enough_ok_ops(&history, 1).len(), 1);
    assert!(invariants::enough_ok_ops(&history, 0).is_empty());
}

#[test]
fn ops_about_one_order_join_its_skus_into_one_group() {
    // A pay filed under another SKU than its order's is checked with both SKUs: the order's
    // reservation on A explains its answer.
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 1), (0, 10), 201, None)
        .ok(Input::create_sku("B", 1), (0, 10), 201, None)
        .ok(Input::create_sku("C", 1), (0, 10), 201, None)
        .ok(Input::order("o1", "u1", "A", 1), (20, 30), 201, None)
        .ok(
            Input::pay("B", "o1"),
            (40, 50),
            200,
            order("u1", "A", 1, OrderStatus::Paid, 4),
        );
    let parts = linearizability::partition(&b.build()).unwrap();
    let names: Vec<&str> = parts.iter().map(|p| p.sku.as_str()).collect();
    assert_eq!(names, vec!["A+B", "C"]);
    assert_eq!(parts[0].ops.len(), 4);
    assert_eq!(parts[0].skus, vec!["A".to_owned(), "B".to_owned()]);
}

#[test]
fn history_survives_a_round_trip_through_jsonl_with_the_same_verdict() {
    let history = legal_concurrent_history();
    let back = History::from_jsonl(&history.to_jsonl()).unwrap();
    assert_eq!(back.ops(), history.ops());
    assert_eq!(verdict(&back), Verdict::Pass);
}
