//! Hand-built histories of multi-item orders and per-user limits through the linearizability
//! checker: groups of SKUs joined by orders are checked as one, and a limit's refusals must
//! match the units each user holds. Times are small integers (ns); each op has its own process.

use std::time::Duration;

use jepsen_tests::history::{Item, OrderView, SkuView};
use jepsen_tests::model::OrderStatus;
use jepsen_tests::{check, History, Input, Op, Output, Verdict};

const BUDGET: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Builder {
    history: History,
}

impl Builder {
    fn ok(&mut self, input: Input, at: (u64, u64), http: u16, output: Option<Output>) -> &mut Self {
        let process = self.history.len() as u64;
        self.history
            .push(Op::ok(process, input, at.0, at.1, http, output))
            .expect("well-formed op");
        self
    }

    fn info(&mut self, input: Input, at: (u64, u64)) -> &mut Self {
        let process = self.history.len() as u64;
        self.history
            .push(Op::info(process, input, at.0, at.1))
            .expect("well-formed op");
        self
    }

    fn build(&mut self) -> History {
        std::mem::take(&mut self.history)
    }
}

fn items(list: &[(&str, u64)]) -> Vec<Item> {
    list.iter()
        .map(|&(sku, qty)| Item {
            sku: sku.into(),
            qty,
        })
        .collect()
}

fn multi(order_id: &str, user: &str, list: &[(&str, u64)]) -> Input {
    Input::Order {
        reservation_ttl_ms: None,
        order_id: order_id.into(),
        user_id: user.into(),
        items: items(list),
    }
}

/// A SKU body: (total, available, reserved, sold, refunded).
fn sku(c: (u64, u64, u64, u64, u64)) -> Option<Output> {
    Some(Output::Sku(SkuView {
        total: c.0,
        available: c.1,
        reserved: c.2,
        sold: c.3,
        refunded: c.4,
        revision: 0,
    }))
}

fn order(user: &str, list: &[(&str, u64)], status: OrderStatus) -> Option<Output> {
    Some(Output::Order(OrderView {
        user_id: user.into(),
        items: items(list),
        status,
        revision: 0,
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

/// A and B of stock 2, C of stock 1; o1 over A and B (C stays a group of its own).
fn two_skus(b: &mut Builder) -> &mut Builder {
    b.ok(
        Input::create_sku("A", 2),
        (0, 10),
        201,
        sku((2, 2, 0, 0, 0)),
    )
    .ok(Input::create_sku("B", 2), (0, 10), 201, None)
    .ok(Input::create_sku("C", 1), (0, 10), 201, None)
    .ok(
        multi("o1", "u1", &[("A", 1), ("B", 2)]),
        (20, 40),
        201,
        order("u1", &[("A", 1), ("B", 2)], OrderStatus::Reserved),
    )
}

#[test]
fn concurrent_multi_item_orders_and_reads_that_see_whole_orders_pass() {
    use OrderStatus::*;
    let mut b = Builder::default();
    two_skus(&mut b)
        // Concurrent with o1: reads of A and B that both saw it, and an order that lost B.
        .ok(Input::read_sku("A"), (25, 45), 200, sku((2, 1, 1, 0, 0)))
        .ok(Input::read_sku("B"), (26, 46), 200, sku((2, 0, 2, 0, 0)))
        .ok(
            multi("o2", "u2", &[("B", 1), ("A", 1)]),
            (30, 50),
            409,
            refused("out_of_stock"),
        )
        // An order whose outcome is unknown: both answers below hold if it never applied.
        .info(multi("o3", "u2", &[("A", 1), ("C", 1)]), (55, 60))
        .ok(
            Input::pay("B", "o1"),
            (60, 70),
            200,
            // Items in another order than the request's: an order's items are a multiset.
            order("u1", &[("B", 2), ("A", 1)], Paid),
        )
        .ok(Input::refund("A", "o1", false), (80, 90), 200, None)
        .ok(Input::read_sku("B"), (100, 110), 200, sku((0, 0, 0, 0, 2)))
        .ok(Input::read_sku("C"), (100, 110), 200, sku((1, 1, 0, 0, 0)));
    let report = check(&b.build(), BUDGET).unwrap();
    assert_eq!(report.verdict(), Verdict::Pass, "{report}");
    // o3 joins C to A and B: one group of three SKUs.
    assert_eq!(report.skus.len(), 1);
    assert_eq!(report.skus[0].sku, "A+B+C");
    assert!(
        report.to_string().contains("3 SKUs in 1 groups"),
        "{report}"
    );
}

#[test]
fn an_order_reserved_on_one_sku_but_not_the_other_fails() {
    let mut b = Builder::default();
    two_skus(&mut b)
        .ok(Input::read_sku("A"), (50, 60), 200, sku((2, 1, 1, 0, 0)))
        // B never saw o1's two units leave.
        .ok(Input::read_sku("B"), (50, 60), 200, sku((2, 2, 0, 0, 0)));
    let history = b.build();
    let report = check(&history, BUDGET).unwrap();
    assert_eq!(report.verdict(), Verdict::Fail, "{report}");
    let culprit = report.skus[0].counterexample.as_ref().unwrap();
    assert_eq!(culprit.window.last().unwrap().input, Input::read_sku("B"));
}

#[test]
fn a_read_of_half_an_order_fails() {
    let mut b = Builder::default();
    two_skus(&mut b).ok(
        Input::read_order("A", "o1"),
        (50, 60),
        200,
        order("u1", &[("A", 1)], OrderStatus::Reserved),
    );
    assert_eq!(verdict(&b.build()), Verdict::Fail);
}

#[test]
fn a_refusal_while_every_item_had_stock_fails() {
    let mut b = Builder::default();
    two_skus(&mut b).ok(
        multi("o2", "u2", &[("A", 1), ("C", 1)]),
        (50, 60),
        409,
        refused("out_of_stock"),
    );
    assert_eq!(verdict(&b.build()), Verdict::Fail);
}

#[test]
fn an_unknown_order_may_have_applied_on_all_its_items_but_never_on_half() {
    let history = |a_available: u64, c_available: u64| {
        let mut b = Builder::default();
        two_skus(&mut b)
            .info(multi("o2", "u2", &[("A", 1), ("C", 1)]), (50, 60))
            .ok(
                Input::read_sku("A"),
                (70, 80),
                200,
                sku((2, a_available, 2 - a_available, 0, 0)),
            )
            .ok(
                Input::read_sku("C"),
                (90, 100),
                200,
                sku((1, c_available, 1 - c_available, 0, 0)),
            );
        b.build()
    };
    assert_eq!(verdict(&history(1, 1)), Verdict::Pass);
    assert_eq!(verdict(&history(0, 0)), Verdict::Pass);
    assert_eq!(verdict(&history(0, 1)), Verdict::Fail);
}

#[test]
fn an_exhausted_budget_on_a_group_is_unknown_not_a_pass() {
    let mut b = Builder::default();
    two_skus(&mut b);
    let report = check(&b.build(), Duration::ZERO).unwrap();
    assert_eq!(report.verdict(), Verdict::Unknown);
}

/// A of stock 10 with a per-user limit of 2; u1 holds 2 after o1 and o2.
fn limited(b: &mut Builder) -> &mut Builder {
    b.ok(
        Input::create_limited_sku("A", 10, 2),
        (0, 10),
        201,
        sku((10, 10, 0, 0, 0)),
    )
    .ok(Input::order("o1", "u1", "A", 1), (20, 30), 201, None)
    .ok(Input::order("o2", "u1", "A", 1), (20, 30), 201, None)
}

#[test]
fn per_user_limit_refusals_match_what_each_user_holds() {
    let mut b = Builder::default();
    limited(&mut b)
        .ok(Input::pay("A", "o2"), (40, 50), 200, None)
        .ok(
            Input::order("o3", "u1", "A", 1),
            (60, 70),
            409,
            refused("per_user_limit_exceeded"),
        )
        .ok(Input::order("o4", "u2", "A", 2), (60, 70), 201, None)
        // Concurrent with the cancel that releases one of u1's units: either answer holds.
        .ok(Input::cancel("A", "o1"), (80, 90), 200, None)
        .ok(
            Input::order("o5", "u1", "A", 1),
            (85, 95),
            409,
            refused("per_user_limit_exceeded"),
        )
        .ok(Input::order("o6", "u1", "A", 1), (100, 110), 201, None);
    assert_eq!(verdict(&b.build()), Verdict::Pass);
}

#[test]
fn an_order_past_the_limit_accepted_fails() {
    let mut b = Builder::default();
    limited(&mut b).ok(Input::order("o3", "u1", "A", 1), (40, 50), 201, None);
    assert_eq!(verdict(&b.build()), Verdict::Fail);
}

#[test]
fn a_limit_refusal_for_a_user_within_the_limit_fails() {
    let mut b = Builder::default();
    limited(&mut b).ok(
        Input::order("o3", "u2", "A", 2),
        (40, 50),
        409,
        refused("per_user_limit_exceeded"),
    );
    assert_eq!(verdict(&b.build()), Verdict::Fail);
}

#[test]
fn a_limit_refusal_after_the_units_were_released_fails() {
    let mut b = Builder::default();
    limited(&mut b)
        .ok(Input::cancel("A", "o1"), (40, 50), 200, None)
        .ok(Input::pay("A", "o2"), (40, 50), 200, None)
        .ok(Input::refund("A", "o2", true), (60, 70), 200, None)
        .ok(
            Input::order("o3", "u1", "A", 2),
            (80, 90),
            409,
            refused("per_user_limit_exceeded"),
        );
    assert_eq!(verdict(&b.build()), Verdict::Fail);
}

#[test]
fn a_limit_refusal_on_a_sku_without_a_limit_fails() {
    let mut b = Builder::default();
    b.ok(Input::create_sku("A", 10), (0, 10), 201, None).ok(
        Input::order("o1", "u1", "A", 1),
        (20, 30),
        409,
        refused("per_user_limit_exceeded"),
    );
    assert_eq!(verdict(&b.build()), Verdict::Fail);
}
