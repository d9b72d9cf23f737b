//! Hand-built histories of a SKU with a sale window through the linearizability checker,
//! judged on the harness's wall clock: orders clearly outside the window must be refused
//! `sale_not_active`, orders clearly inside must not be, and orders within the tolerance of
//! an edge may be either. Op times are ms on the history's clock; the window is
//! [10 s, 20 s) after its zero; each op has its own process.

use std::time::Duration;

use jepsen_tests::clock_tolerance::TOLERANCE_MS;
use jepsen_tests::history::{Item, OrderView, SkuView};
use jepsen_tests::model::OrderStatus;
use jepsen_tests::sale_window::SaleWindow;
use jepsen_tests::{check, check_on_wall_clock, History, Input, Op, Output, Verdict};

const BUDGET: Duration = Duration::from_secs(10);
/// The wall clock at the history's zero.
const ORIGIN: u64 = 1_700_000_000_000;
const MS: u64 = 1_000_000;
const WINDOW: SaleWindow = SaleWindow {
    start_ms: ORIGIN + 10_000,
    end_ms: ORIGIN + 20_000,
};

#[derive(Default)]
struct Builder {
    history: History,
}

impl Builder {
    /// An answered op from `at_ms` to `at_ms + 10`.
    fn ok(&mut self, input: Input, at_ms: u64, http: u16, output: Option<Output>) -> &mut Self {
        let process = self.history.len() as u64;
        let (invoke, complete) = (at_ms * MS, (at_ms + 10) * MS);
        self.history
            .push(Op::answered(process, input, invoke, complete, http, output))
            .expect("well-formed op");
        self
    }

    fn info(&mut self, input: Input, at_ms: u64) -> &mut Self {
        let process = self.history.len() as u64;
        self.history
            .push(Op::info(process, input, at_ms * MS, (at_ms + 10) * MS))
            .expect("well-formed op");
        self
    }

    /// SKU A of stock 2, on sale in [`WINDOW`], created at once.
    fn on_sale() -> Builder {
        let mut b = Builder::default();
        b.ok(
            Input::create_sku_on_sale("A", 2, None, WINDOW),
            0,
            201,
            sku((2, 2, 0)),
        );
        b
    }

    fn build(&mut self) -> History {
        std::mem::take(&mut self.history)
    }
}

/// A SKU body: (total, available, reserved).
fn sku(c: (u64, u64, u64)) -> Option<Output> {
    Some(Output::Sku(SkuView {
        total: c.0,
        available: c.1,
        reserved: c.2,
        sold: 0,
        refunded: 0,
        revision: 0,
    }))
}

fn reserved(user: &str) -> Option<Output> {
    Some(Output::Order(OrderView {
        user_id: user.into(),
        items: vec![Item {
            sku: "A".into(),
            qty: 1,
        }],
        status: OrderStatus::Reserved,
        revision: 0,
        created_ms: None,
        expires_ms: None,
    }))
}

fn not_active() -> Option<Output> {
    Some(Output::error("sale_not_active"))
}

fn order(id: &str) -> Input {
    Input::order(id, "u1", "A", 1)
}

fn verdict(history: &History) -> Verdict {
    check_on_wall_clock(history, ORIGIN, BUDGET)
        .expect("checkable history")
        .verdict()
}

#[test]
fn refused_before_accepted_within_refused_after_passes() {
    let edge = TOLERANCE_MS / 2;
    let mut b = Builder::on_sale();
    b.ok(order("o1"), 1_000, 409, not_active())
        // Within the tolerance of the opening: the cluster's clock may be either side.
        .ok(order("o2"), 10_000 - edge, 409, not_active())
        .ok(order("o3"), 10_000 - edge, 201, reserved("u1"))
        .ok(order("o4"), 15_000, 201, reserved("u1"))
        .ok(
            order("o5"),
            15_100,
            409,
            Some(Output::error("out_of_stock")),
        )
        .ok(Input::read_sku("A"), 16_000, 200, sku((2, 0, 2)))
        .ok(Input::cancel("A", "o4"), 17_000, 200, None)
        // Within the tolerance of the close: still on sale by the cluster's clock.
        .ok(order("o6"), 20_000 + edge, 201, reserved("u1"))
        .ok(order("o7"), 25_000, 409, not_active())
        // Unanswered before the window: it may have been proposed within it, or never.
        .info(order("o8"), 2_000)
        .ok(Input::read_sku("A"), 26_000, 200, sku((2, 0, 2)));
    let history = b.build();
    let report = check_on_wall_clock(&history, ORIGIN, BUDGET).unwrap();
    assert_eq!(report.verdict(), Verdict::Pass, "{report}");
}

#[test]
fn an_order_accepted_well_before_the_window_fails() {
    let mut b = Builder::on_sale();
    b.ok(order("o1"), 5_000, 201, reserved("u1"));
    let history = b.build();
    let report = check_on_wall_clock(&history, ORIGIN, BUDGET).unwrap();
    assert_eq!(report.verdict(), Verdict::Fail, "{report}");
    assert!(
        report.to_string().contains("409 sale_not_active"),
        "the counterexample names the right answer: {report}"
    );
    // Without the wall clock the checker cannot place the order, and lets it be.
    assert_eq!(check(&history, BUDGET).unwrap().verdict(), Verdict::Pass);
}

#[test]
fn an_order_accepted_well_after_the_window_fails() {
    let mut b = Builder::on_sale();
    b.ok(order("o1"), 22_000, 201, reserved("u1"));
    assert_eq!(verdict(&b.build()), Verdict::Fail);
}

#[test]
fn sale_not_active_well_inside_the_window_fails() {
    let mut b = Builder::on_sale();
    b.ok(order("o1"), 15_000, 409, not_active());
    let history = b.build();
    let report = check_on_wall_clock(&history, ORIGIN, BUDGET).unwrap();
    assert_eq!(report.verdict(), Verdict::Fail, "{report}");
    assert!(
        report.to_string().contains("201 order reserved"),
        "{report}"
    );
}

#[test]
fn the_tolerance_ends_where_the_deadline_checks_end_it() {
    // Answered just over the tolerance before the opening: clearly before.
    let mut b = Builder::on_sale();
    b.ok(order("o1"), 10_000 - TOLERANCE_MS - 20, 201, reserved("u1"));
    assert_eq!(verdict(&b.build()), Verdict::Fail);
    // Invoked just inside the shrunk window: clearly within.
    let mut b = Builder::on_sale();
    b.ok(order("o1"), 10_000 + TOLERANCE_MS, 409, not_active());
    assert_eq!(verdict(&b.build()), Verdict::Fail);
    // Answered a little less than the tolerance before the opening: either answer.
    for (http, answer) in [(201, reserved("u1")), (409, not_active())] {
        let mut b = Builder::on_sale();
        b.ok(order("o1"), 10_000 - TOLERANCE_MS + 10, http, answer);
        assert_eq!(verdict(&b.build()), Verdict::Pass);
    }
}

#[test]
fn an_order_refused_at_the_edge_reserves_nothing() {
    // o1 at the edge saw the sale closed: a read after it must not show its unit held.
    let mut b = Builder::on_sale();
    b.ok(order("o1"), 9_800, 409, not_active()).ok(
        Input::read_sku("A"),
        15_000,
        200,
        sku((2, 1, 1)),
    );
    assert_eq!(verdict(&b.build()), Verdict::Fail);
    let mut b = Builder::on_sale();
    b.ok(order("o1"), 9_800, 409, not_active()).ok(
        Input::read_sku("A"),
        15_000,
        200,
        sku((2, 2, 0)),
    );
    assert_eq!(verdict(&b.build()), Verdict::Pass);
}

#[test]
fn a_replay_of_an_order_placed_in_the_window_is_no_refusal() {
    // API.md: the same order id and content returns the order, whatever the clock says now.
    let mut b = Builder::on_sale();
    b.ok(order("o1"), 12_000, 201, reserved("u1"))
        .ok(order("o1"), 25_000, 200, reserved("u1"));
    assert_eq!(verdict(&b.build()), Verdict::Pass);
    let mut b = Builder::on_sale();
    b.ok(order("o1"), 12_000, 201, reserved("u1"))
        .ok(order("o1"), 25_000, 409, not_active());
    assert_eq!(verdict(&b.build()), Verdict::Fail);
}
