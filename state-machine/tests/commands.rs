//! Every command of STATE_MACHINE.md with each of its refusals, one behaviour per test.

mod common;

use common::*;
use state_machine::{Batch, Command, Effect, OrderStatus, Outcome, Refusal, SaleWindow, Sku};

fn sku_of(outcome: Outcome) -> (Sku, Effect) {
    match outcome {
        Outcome::Sku { sku, effect } => (sku, effect),
        other => panic!("expected a sku, got {other:?}"),
    }
}

fn order_of(outcome: Outcome) -> (state_machine::Order, Effect) {
    match outcome {
        Outcome::Order { order, effect } => (order, effect),
        other => panic!("expected an order, got {other:?}"),
    }
}

fn refusal(outcome: Outcome) -> Refusal {
    match outcome {
        Outcome::Refused(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn create_sku_sets_counters_and_revision() {
    let store = temp_store();
    let (s, effect) = sku_of(run(&store, 7, 100, create("A1", 10)));
    assert_eq!(effect, Effect::Applied);
    assert_eq!(
        (s.total, s.available, s.reserved, s.sold, s.refunded),
        (10, 10, 0, 0, 0)
    );
    assert_eq!(s.revision, 7);
    assert_eq!(store.get_sku(&sku("A1")).unwrap(), Some(s));
}

#[test]
fn create_sku_again_is_idempotent_and_different_settings_conflict() {
    let store = temp_store();
    run(&store, 1, 0, create_with("A1", 10, Some(2), None));
    run(&store, 2, 0, restock("A1", "r1", 5));
    let (s, effect) = sku_of(run(&store, 3, 0, create_with("A1", 10, Some(2), None)));
    assert_eq!(effect, Effect::Unchanged);
    assert_eq!((s.total, s.revision), (15, 2));
    for different in [
        create_with("A1", 11, Some(2), None),
        create_with("A1", 10, None, None),
        create_with("A1", 10, Some(2), Some((1, 2))),
    ] {
        assert!(matches!(
            refusal(run(&store, 4, 0, different)),
            Refusal::SkuExists { .. }
        ));
    }
}

#[test]
fn restock_adds_withdraws_and_dedups_by_request_id() {
    let store = temp_store();
    run(&store, 1, 0, create("A1", 10));
    let (s, _) = sku_of(run(&store, 2, 0, restock("A1", "r1", 5)));
    assert_eq!((s.total, s.available, s.revision), (15, 15, 2));
    let (s, effect) = sku_of(run(&store, 3, 0, restock("A1", "r1", 5)));
    assert_eq!((s.total, effect, s.revision), (15, Effect::Unchanged, 2));
    assert!(matches!(
        refusal(run(&store, 4, 0, restock("A1", "r1", 6))),
        Refusal::RequestIdConflict {
            applied_delta: 5,
            ..
        }
    ));
    let (s, _) = sku_of(run(&store, 5, 0, restock("A1", "r2", -15)));
    assert_eq!((s.total, s.available), (0, 0));
}

#[test]
fn restock_dedup_is_per_sku() {
    let store = temp_store();
    run(&store, 1, 0, create("A1", 1));
    run(&store, 2, 0, create("B1", 1));
    run(&store, 3, 0, restock("A1", "r1", 5));
    let (s, effect) = sku_of(run(&store, 4, 0, restock("B1", "r1", 7)));
    assert_eq!((s.total, effect), (8, Effect::Applied));
}

#[test]
fn restock_refusals_leave_no_trace() {
    let store = temp_store();
    assert!(matches!(
        refusal(run(&store, 1, 0, restock("nope", "r1", 1))),
        Refusal::SkuNotFound { .. }
    ));
    run(&store, 2, 0, create("A1", 3));
    run(&store, 3, 0, order("o1", "u1", &[("A1", 2)], 60_000));
    match refusal(run(&store, 4, 0, restock("A1", "w", -2))) {
        Refusal::InsufficientAvailable {
            available,
            requested,
            ..
        } => assert_eq!((available, requested), (1, 2)),
        other => panic!("{other:?}"),
    }
    // The refused request id is judged afresh later.
    let (s, effect) = sku_of(run(&store, 5, 0, restock("A1", "w", -1)));
    assert_eq!((s.total, s.available, effect), (2, 0, Effect::Applied));
}

#[test]
fn restock_past_the_largest_count_is_refused() {
    let store = temp_store();
    run(&store, 1, 0, create("A1", state_machine::MAX_COUNT - 1));
    assert!(matches!(
        refusal(run(&store, 2, 0, restock("A1", "r", 2))),
        Refusal::TotalOverflow { .. }
    ));
    let (s, _) = sku_of(run(&store, 3, 0, restock("A1", "r", 1)));
    assert_eq!(s.total, state_machine::MAX_COUNT);
}

#[test]
fn update_sku_changes_only_present_fields() {
    let store = temp_store();
    run(&store, 1, 0, create_with("A1", 5, Some(1), Some((10, 20))));
    let cmd = Command::UpdateSku {
        sku: sku("A1"),
        per_user_limit: Some(Some(3)),
        sale_window: None,
        request_tag: 0,
    };
    let (s, _) = sku_of(run(&store, 2, 0, cmd));
    assert_eq!(s.per_user_limit, Some(3));
    assert_eq!(s.sale_window, Some(SaleWindow::new(10, 20).unwrap()));
    assert_eq!(s.revision, 2);
    let clear = Command::UpdateSku {
        sku: sku("A1"),
        per_user_limit: None,
        sale_window: Some(None),
        request_tag: 0,
    };
    let (s, _) = sku_of(run(&store, 3, 0, clear.clone()));
    assert_eq!((s.per_user_limit, s.sale_window), (Some(3), None));
    let (s, effect) = sku_of(run(&store, 4, 0, clear));
    assert_eq!((effect, s.revision), (Effect::Unchanged, 3));
    let missing = Command::UpdateSku {
        sku: sku("B"),
        per_user_limit: None,
        sale_window: None,
        request_tag: 0,
    };
    assert!(matches!(
        refusal(run(&store, 5, 0, missing)),
        Refusal::SkuNotFound { .. }
    ));
}

#[test]
fn a_late_attempt_of_a_patch_never_overwrites_a_newer_one() {
    let store = temp_store();
    run(&store, 1, 0, create("A1", 5));
    let patch = |limit: u64, tag: u64| Command::UpdateSku {
        sku: sku("A1"),
        per_user_limit: Some(Some(limit)),
        sale_window: None,
        request_tag: tag,
    };
    // Request 11 sets the limit to 2 (its retry applied first), then request 12 sets 3.
    let (s, effect) = sku_of(run(&store, 2, 0, patch(2, 11)));
    assert_eq!((s.per_user_limit, effect), (Some(2), Effect::Applied));
    run(&store, 3, 0, patch(3, 12));
    // Request 11's first attempt arrives late: it answers as request 11 did, and the
    // limit stays request 12's.
    let (s, effect) = sku_of(run(&store, 4, 0, patch(2, 11)));
    assert_eq!(
        (s.per_user_limit, s.revision, effect),
        (Some(2), 2, Effect::Applied)
    );
    let now = store.get_sku(&sku("A1")).unwrap().unwrap();
    assert_eq!((now.per_user_limit, now.revision), (Some(3), 3));
    // A patch that changed nothing is remembered too: its late attempt must not undo 14.
    run(&store, 5, 0, patch(3, 13));
    run(&store, 6, 0, patch(4, 14));
    let (_, effect) = sku_of(run(&store, 7, 0, patch(3, 13)));
    assert_eq!(effect, Effect::Unchanged);
    assert_eq!(
        store.get_sku(&sku("A1")).unwrap().unwrap().per_user_limit,
        Some(4)
    );
    // Untagged patches are applied every time.
    run(&store, 8, 0, patch(2, 0));
    run(&store, 9, 0, patch(4, 0));
    run(&store, 10, 0, patch(2, 0));
    assert_eq!(
        store.get_sku(&sku("A1")).unwrap().unwrap().per_user_limit,
        Some(2)
    );
}

#[test]
fn place_order_reserves_all_items_and_stamps_times() {
    let store = temp_store();
    run(&store, 1, 0, create("A", 5));
    run(&store, 2, 0, create("B", 5));
    let (o, effect) = order_of(run(
        &store,
        3,
        1_000,
        order("o1", "u1", &[("A", 2), ("B", 3)], 5_000),
    ));
    assert_eq!(effect, Effect::Applied);
    assert_eq!(
        (
            o.status,
            o.created_ms,
            o.expires_ms,
            o.updated_ms,
            o.revision
        ),
        (OrderStatus::Reserved, 1_000, 6_000, 1_000, 3)
    );
    let a = store.get_sku(&sku("A")).unwrap().unwrap();
    let b = store.get_sku(&sku("B")).unwrap().unwrap();
    assert_eq!((a.available, a.reserved, a.revision), (3, 2, 3));
    assert_eq!((b.available, b.reserved), (2, 3));
    assert_eq!(store.earliest_deadline().unwrap(), Some(6_000));
}

#[test]
fn place_order_is_all_or_nothing_and_first_failing_item_decides() {
    let store = temp_store();
    run(&store, 1, 0, create("A", 5));
    run(&store, 2, 0, create("B", 1));
    let r = refusal(run(
        &store,
        3,
        0,
        order("o1", "u1", &[("A", 2), ("B", 2), ("C", 1)], 5_000),
    ));
    assert!(
        matches!(r, Refusal::OutOfStock { ref sku, available: 1, requested: 2 } if sku.as_str() == "B")
    );
    let r = refusal(run(
        &store,
        4,
        0,
        order("o1", "u1", &[("C", 1), ("B", 2)], 5_000),
    ));
    assert!(matches!(r, Refusal::SkuNotFound { ref sku } if sku.as_str() == "C"));
    assert_eq!(store.get_sku(&sku("A")).unwrap().unwrap().available, 5);
    // A refused order leaves no trace: the id is unknown and judged afresh.
    assert_eq!(store.get_order(&oid("o1")).unwrap(), None);
    let (o, _) = order_of(run(&store, 5, 0, order("o1", "u1", &[("A", 2)], 5_000)));
    assert_eq!(o.status, OrderStatus::Reserved);
}

#[test]
fn place_order_replay_returns_the_current_order_and_conflicts_on_other_content() {
    let store = temp_store();
    run(&store, 1, 0, create("A", 5));
    run(&store, 2, 0, create("B", 5));
    run(
        &store,
        3,
        0,
        order("o1", "u1", &[("A", 1), ("B", 2)], 5_000),
    );
    run(&store, 4, 0, pay("o1", Some("p1")));
    let (o, effect) = order_of(run(
        &store,
        5,
        0,
        order("o1", "u1", &[("B", 2), ("A", 1)], 9_000),
    ));
    assert_eq!(
        (effect, o.status, o.revision),
        (Effect::Unchanged, OrderStatus::Paid, 4)
    );
    assert_eq!(store.get_sku(&sku("A")).unwrap().unwrap().sold, 1);
    for other in [
        order("o1", "u2", &[("A", 1), ("B", 2)], 5_000),
        order("o1", "u1", &[("A", 1)], 5_000),
        order("o1", "u1", &[("A", 2), ("B", 2)], 5_000),
    ] {
        assert!(matches!(
            refusal(run(&store, 6, 0, other)),
            Refusal::OrderIdConflict { .. }
        ));
    }
}

#[test]
fn a_resend_by_the_creating_request_reports_applied_and_reserves_once() {
    let store = temp_store();
    run(&store, 1, 0, create("A", 5));
    let place = || tagged(order("o1", "u1", &[("A", 2)], 5_000), 42);
    let (first, effect) = order_of(run(&store, 2, 0, place()));
    assert_eq!((effect, first.revision), (Effect::Applied, 2));
    // The gateway lost the first answer and resent the same command: still "created".
    let (again, effect) = order_of(run(&store, 3, 0, place()));
    assert_eq!((effect, again), (Effect::Applied, first));
    // Another request for the same order (another tag, or none) is a replay.
    for other in [
        tagged(order("o1", "u1", &[("A", 2)], 5_000), 43),
        order("o1", "u1", &[("A", 2)], 5_000),
    ] {
        assert_eq!(order_of(run(&store, 4, 0, other)).1, Effect::Unchanged);
    }
    let a = store.get_sku(&sku("A")).unwrap().unwrap();
    assert_eq!((a.available, a.reserved), (3, 2));
}

#[test]
fn a_restock_resent_by_its_request_answers_as_it_first_did() {
    let store = temp_store();
    run(&store, 1, 0, create("A", 0));
    let (first, _) = sku_of(run(&store, 2, 0, tagged(restock("A", "r1", 2), 5)));
    // Someone reserves the new units before the lost answer's resend arrives.
    run(&store, 3, 0, order("o1", "u1", &[("A", 2)], 5_000));
    let (again, effect) = sku_of(run(&store, 4, 0, tagged(restock("A", "r1", 2), 5)));
    assert_eq!((effect, &again), (Effect::Applied, &first));
    assert_eq!((again.available, again.revision), (2, 2));
    // Another request's replay sees the SKU as it stands; nothing is added twice.
    let (now, effect) = sku_of(run(&store, 5, 0, tagged(restock("A", "r1", 2), 6)));
    assert_eq!(effect, Effect::Unchanged);
    assert_eq!((now.total, now.available, now.reserved), (2, 0, 2));
}

#[test]
fn a_payment_resent_after_a_refund_answers_as_the_payment_did() {
    let store = temp_store();
    run(&store, 1, 0, create("A", 5));
    run(&store, 2, 10, order("o1", "u1", &[("A", 1)], 5_000));
    let (paid, _) = order_of(run(&store, 3, 20, tagged(pay("o1", Some("p1")), 9)));
    // Someone refunds the order before the payment's lost answer is resent.
    run(&store, 4, 30, refund("o1", true));
    let (again, effect) = order_of(run(&store, 5, 40, tagged(pay("o1", Some("p1")), 9)));
    assert_eq!((effect, &again), (Effect::Applied, &paid));
    assert_eq!(
        (again.status, again.updated_ms, again.revision),
        (OrderStatus::Paid, 20, 3)
    );
    // The store still holds the refund; another request's payment is refused.
    let stored = store.get_order(&oid("o1")).unwrap().unwrap();
    assert_eq!((stored.status, stored.revision), (OrderStatus::Refunded, 4));
    assert!(matches!(
        refusal(run(&store, 6, 50, tagged(pay("o1", Some("p1")), 10))),
        Refusal::InvalidTransition { .. }
    ));
    assert_eq!(store.get_sku(&sku("A")).unwrap().unwrap().sold, 0);
}

#[test]
fn a_create_resent_after_orders_answers_with_the_sku_as_created() {
    let store = temp_store();
    let (first, _) = sku_of(run(
        &store,
        1,
        0,
        tagged(create_with("A", 5, Some(3), None), 4),
    ));
    run(&store, 2, 0, order("o1", "u1", &[("A", 2)], 5_000));
    run(&store, 3, 0, restock("A", "r1", 1));
    let (again, effect) = sku_of(run(
        &store,
        4,
        0,
        tagged(create_with("A", 5, Some(3), None), 4),
    ));
    assert_eq!((effect, &again), (Effect::Applied, &first));
    let (now, effect) = sku_of(run(&store, 5, 0, create_with("A", 5, Some(3), None)));
    assert_eq!(effect, Effect::Unchanged);
    assert_eq!(
        (now.total, now.available, now.reserved, now.revision),
        (6, 4, 2, 3)
    );
}

#[test]
fn an_untagged_create_never_claims_a_record_made_by_another_untagged_one() {
    let store = temp_store();
    let (_, effect) = sku_of(run(&store, 1, 0, create("A", 5)));
    assert_eq!(effect, Effect::Applied);
    assert_eq!(
        sku_of(run(&store, 2, 0, create("A", 5))).1,
        Effect::Unchanged
    );
    let (_, effect) = sku_of(run(&store, 3, 0, tagged(create("B", 5), 7)));
    assert_eq!(effect, Effect::Applied);
    assert_eq!(
        sku_of(run(&store, 4, 0, tagged(create("B", 5), 7))).1,
        Effect::Applied
    );
    assert_eq!(
        sku_of(run(&store, 5, 0, tagged(create("B", 5), 8))).1,
        Effect::Unchanged
    );
}

#[test]
fn sale_window_is_half_open_on_the_state_machine_clock() {
    let store = temp_store();
    run(
        &store,
        1,
        0,
        create_with("A", 5, None, Some((1_000, 2_000))),
    );
    let r = refusal(run(&store, 2, 999, order("o1", "u", &[("A", 1)], 5_000)));
    assert!(matches!(
        r,
        Refusal::SaleNotActive {
            start_ms: 1_000,
            end_ms: 2_000,
            ..
        }
    ));
    assert!(matches!(
        run(&store, 3, 1_000, order("o2", "u", &[("A", 1)], 5_000)),
        Outcome::Order { .. }
    ));
    assert!(matches!(
        refusal(run(&store, 4, 2_000, order("o3", "u", &[("A", 1)], 5_000))),
        Refusal::SaleNotActive { .. }
    ));
    // The clock never runs backwards: a stale now_ms from a new leader does not reopen it.
    assert!(matches!(
        refusal(run(&store, 5, 1_500, order("o4", "u", &[("A", 1)], 5_000))),
        Refusal::SaleNotActive { .. }
    ));
    assert_eq!(store.clock().unwrap(), 2_000);
}

#[test]
fn per_user_limit_counts_reserved_and_paid_units() {
    let store = temp_store();
    run(&store, 1, 0, create_with("A", 10, Some(3), None));
    run(&store, 2, 0, order("o1", "u", &[("A", 2)], 5_000));
    run(&store, 3, 0, pay("o1", None));
    let r = refusal(run(&store, 4, 0, order("o2", "u", &[("A", 2)], 5_000)));
    assert!(matches!(
        r,
        Refusal::PerUserLimitExceeded {
            limit: 3,
            held: 2,
            requested: 2,
            ..
        }
    ));
    // Another user is not limited by u's holds.
    assert!(matches!(
        run(&store, 5, 0, order("o3", "v", &[("A", 3)], 5_000)),
        Outcome::Order { .. }
    ));
    // A refund gives the units back to the user's allowance.
    run(&store, 6, 0, refund("o1", true));
    assert!(matches!(
        run(&store, 7, 0, order("o2", "u", &[("A", 3)], 5_000)),
        Outcome::Order { .. }
    ));
}

/// Holds are counted only while a SKU has a limit: one added later must count what each
/// user already holds, including orders earlier in the same entry, and one removed and
/// added again must not count units released in between.
#[test]
fn a_limit_added_after_orders_counts_what_users_already_hold() {
    let store = temp_store();
    run(&store, 1, 0, create("A", 20));
    run(&store, 2, 0, order("o1", "u", &[("A", 2)], 5_000));
    run(&store, 3, 0, pay("o1", None));
    run(&store, 4, 0, order("o2", "v", &[("A", 1)], 5_000));
    let limit = |limit: Option<u64>| Command::UpdateSku {
        sku: sku("A"),
        per_user_limit: Some(limit),
        sale_window: None,
        request_tag: 0,
    };
    let batch = Batch {
        now_ms: 0,
        commands: vec![
            order("o3", "u", &[("A", 1)], 5_000),
            limit(Some(4)),
            order("o4", "u", &[("A", 2)], 5_000),
            order("o5", "v", &[("A", 3)], 5_000),
        ],
    };
    let results = store.apply(&[(5, &batch)], None).unwrap().remove(0);
    assert!(matches!(
        &results[2],
        Outcome::Refused(Refusal::PerUserLimitExceeded {
            held: 3,
            requested: 2,
            ..
        })
    ));
    assert!(matches!(&results[3], Outcome::Order { .. }));
    assert_eq!(store.held(&sku("A"), &uid("u")).unwrap(), 3);
    assert_eq!(store.held(&sku("A"), &uid("v")).unwrap(), 4);
    // Lifted, the released units are not counted; limited again, only what is held counts.
    run(&store, 6, 0, limit(None));
    run(&store, 7, 0, cancel("o3"));
    run(&store, 8, 0, refund("o1", true));
    assert_eq!(store.held(&sku("A"), &uid("u")).unwrap(), 0);
    run(&store, 9, 0, limit(Some(1)));
    assert_eq!(store.held(&sku("A"), &uid("u")).unwrap(), 0);
    assert!(matches!(
        run(&store, 10, 0, order("o6", "u", &[("A", 1)], 5_000)),
        Outcome::Order { .. }
    ));
    assert!(matches!(
        refusal(run(&store, 11, 0, order("o7", "v", &[("A", 1)], 5_000))),
        Refusal::PerUserLimitExceeded { held: 4, .. }
    ));
}

#[test]
fn per_user_limit_is_checked_before_stock() {
    let store = temp_store();
    run(&store, 1, 0, create_with("A", 1, Some(1), None));
    let r = refusal(run(&store, 2, 0, order("o1", "u", &[("A", 2)], 5_000)));
    assert!(matches!(r, Refusal::PerUserLimitExceeded { .. }));
}

#[test]
fn pay_moves_reserved_to_sold_and_is_a_no_op_when_paid() {
    let store = temp_store();
    run(&store, 1, 0, create("A", 5));
    run(&store, 2, 10, order("o1", "u", &[("A", 2)], 5_000));
    let (o, effect) = order_of(run(&store, 3, 20, pay("o1", Some("p1"))));
    assert_eq!(
        (o.status, effect, o.updated_ms, o.revision),
        (OrderStatus::Paid, Effect::Applied, 20, 3)
    );
    assert_eq!(o.payment_ref.as_ref().map(|p| p.as_str()), Some("p1"));
    let (o, effect) = order_of(run(&store, 4, 30, pay("o1", Some("p2"))));
    assert_eq!((effect, o.revision), (Effect::Unchanged, 3));
    assert_eq!(o.payment_ref.as_ref().map(|p| p.as_str()), Some("p1"));
    let s = store.get_sku(&sku("A")).unwrap().unwrap();
    assert_eq!((s.available, s.reserved, s.sold), (3, 0, 2));
    assert_eq!(store.earliest_deadline().unwrap(), None);
}

#[test]
fn pay_refused_from_terminal_states_and_for_unknown_orders() {
    let store = temp_store();
    run(&store, 1, 0, create("A", 5));
    run(&store, 2, 0, order("o1", "u", &[("A", 1)], 5_000));
    run(&store, 3, 0, cancel("o1"));
    let r = refusal(run(&store, 4, 0, pay("o1", None)));
    assert!(matches!(
        r,
        Refusal::InvalidTransition {
            status: OrderStatus::Cancelled,
            ..
        }
    ));
    assert!(matches!(
        refusal(run(&store, 5, 0, pay("nope", None))),
        Refusal::OrderNotFound { .. }
    ));
}

#[test]
fn cancel_releases_units_and_repeats_as_a_no_op() {
    let store = temp_store();
    run(&store, 1, 0, create("A", 5));
    run(&store, 2, 0, order("o1", "u", &[("A", 2)], 5_000));
    let (o, effect) = order_of(run(&store, 3, 0, cancel("o1")));
    assert_eq!(
        (o.status, effect),
        (OrderStatus::Cancelled, Effect::Applied)
    );
    let (_, effect) = order_of(run(&store, 4, 0, cancel("o1")));
    assert_eq!(effect, Effect::Unchanged);
    let s = store.get_sku(&sku("A")).unwrap().unwrap();
    assert_eq!((s.available, s.reserved), (5, 0));
    run(&store, 5, 0, order("o2", "u", &[("A", 1)], 5_000));
    run(&store, 6, 0, pay("o2", None));
    let r = refusal(run(&store, 7, 0, cancel("o2")));
    assert!(matches!(
        r,
        Refusal::InvalidTransition {
            status: OrderStatus::Paid,
            ..
        }
    ));
    assert!(matches!(
        refusal(run(&store, 8, 0, cancel("nope"))),
        Refusal::OrderNotFound { .. }
    ));
}

#[test]
fn refund_with_and_without_restock() {
    let store = temp_store();
    run(&store, 1, 0, create("A", 10));
    run(&store, 2, 0, order("o1", "u", &[("A", 2)], 5_000));
    run(&store, 3, 0, pay("o1", None));
    run(&store, 4, 0, order("o2", "u", &[("A", 3)], 5_000));
    run(&store, 5, 0, pay("o2", None));
    let (o, _) = order_of(run(&store, 6, 0, refund("o1", true)));
    assert_eq!(o.status, OrderStatus::Refunded);
    let s = store.get_sku(&sku("A")).unwrap().unwrap();
    assert_eq!((s.total, s.available, s.sold, s.refunded), (10, 7, 3, 2));
    run(&store, 7, 0, refund("o2", false));
    let s = store.get_sku(&sku("A")).unwrap().unwrap();
    assert_eq!((s.total, s.available, s.sold, s.refunded), (7, 7, 0, 5));
    let (_, effect) = order_of(run(&store, 8, 0, refund("o2", true)));
    assert_eq!(effect, Effect::Unchanged);
    assert_eq!(store.get_sku(&sku("A")).unwrap().unwrap().total, 7);
}

#[test]
fn refund_refused_unless_paid() {
    let store = temp_store();
    run(&store, 1, 0, create("A", 10));
    run(&store, 2, 0, order("o1", "u", &[("A", 2)], 5_000));
    let r = refusal(run(&store, 3, 0, refund("o1", true)));
    assert!(matches!(
        r,
        Refusal::InvalidTransition {
            status: OrderStatus::Reserved,
            ..
        }
    ));
    assert!(matches!(
        refusal(run(&store, 4, 0, refund("nope", true))),
        Refusal::OrderNotFound { .. }
    ));
}

#[test]
fn expire_releases_due_reservations_only() {
    let store = temp_store();
    run(&store, 1, 0, create("A", 10));
    run(&store, 2, 1_000, order("early", "u", &[("A", 1)], 1_000));
    run(&store, 3, 1_000, order("late", "u", &[("A", 2)], 5_000));
    run(&store, 4, 1_000, order("paid", "u", &[("A", 3)], 1_000));
    run(&store, 5, 1_000, pay("paid", None));
    assert_eq!(
        run(&store, 6, 1_999, Command::Expire),
        Outcome::Expired { orders: 0 }
    );
    assert_eq!(
        run(&store, 7, 2_000, Command::Expire),
        Outcome::Expired { orders: 1 }
    );
    let o = store.get_order(&oid("early")).unwrap().unwrap();
    assert_eq!(
        (o.status, o.updated_ms, o.revision),
        (OrderStatus::Expired, 2_000, 7)
    );
    assert_eq!(
        store.get_order(&oid("late")).unwrap().unwrap().status,
        OrderStatus::Reserved
    );
    let s = store.get_sku(&sku("A")).unwrap().unwrap();
    assert_eq!((s.available, s.reserved, s.sold), (5, 2, 3));
    assert_eq!(store.earliest_deadline().unwrap(), Some(6_000));
    // Expired is terminal: cancel is a no-op, pay is refused.
    assert!(matches!(
        run(&store, 8, 2_000, cancel("early")),
        Outcome::Order {
            effect: Effect::Unchanged,
            ..
        }
    ));
    assert!(matches!(
        refusal(run(&store, 9, 2_000, pay("early", None))),
        Refusal::InvalidTransition {
            status: OrderStatus::Expired,
            ..
        }
    ));
}

#[test]
fn deadlines_are_exact_before_any_sweep() {
    let store = temp_store();
    run(&store, 1, 0, create("A", 10));
    run(&store, 2, 1_000, order("o1", "u", &[("A", 2)], 1_000));
    run(&store, 3, 1_000, order("o2", "u", &[("A", 3)], 1_000));
    run(&store, 4, 1_000, order("o3", "u", &[("A", 1)], 5_000));
    // One millisecond before the deadline the reservation still stands.
    run(&store, 5, 1_999, restock("A", "r1", 0));
    assert_eq!(
        store.get_order(&oid("o1")).unwrap().unwrap().status,
        OrderStatus::Reserved
    );
    // The cluster clock reaches the deadline; no Expire has run. A read already shows it
    // expired (as of its deadline), though its units are not released yet.
    run(&store, 6, 2_000, restock("A", "r2", 0));
    let read = store.get_order(&oid("o1")).unwrap().unwrap();
    assert_eq!(
        (read.status, read.updated_ms, read.revision),
        (OrderStatus::Expired, 2_000, 2)
    );
    assert_eq!(
        store
            .list_user_orders(&uid("u"), 10)
            .unwrap()
            .iter()
            .map(|o| (o.order_id.as_str().to_owned(), o.status))
            .collect::<Vec<_>>(),
        vec![
            ("o1".to_owned(), OrderStatus::Expired),
            ("o2".to_owned(), OrderStatus::Expired),
            ("o3".to_owned(), OrderStatus::Reserved),
        ]
    );
    // Pay is refused as for an expired order, and the refusal expires it for good.
    assert!(matches!(
        refusal(run(&store, 7, 2_000, pay("o1", None))),
        Refusal::InvalidTransition {
            status: OrderStatus::Expired,
            ..
        }
    ));
    // Cancel is a no-op showing it expired, not a cancellation.
    for index in [8, 9] {
        let (o2, effect) = order_of(run(&store, index, 2_000, cancel("o2")));
        assert_eq!(
            (o2.status, o2.revision, effect),
            (OrderStatus::Expired, 8, Effect::Unchanged)
        );
    }
    // Both released their units exactly once; the sweep finds nothing left to do.
    let s = store.get_sku(&sku("A")).unwrap().unwrap();
    assert_eq!((s.available, s.reserved), (9, 1));
    assert_eq!(
        run(&store, 10, 2_000, Command::Expire),
        Outcome::Expired { orders: 0 }
    );
    assert_eq!(store.earliest_deadline().unwrap(), Some(6_000));
    let s = store.get_sku(&sku("A")).unwrap().unwrap();
    assert_eq!((s.available, s.reserved), (9, 1));
}

#[test]
fn batch_applies_in_order_with_one_outcome_each() {
    let store = temp_store();
    let batch = Batch {
        now_ms: 50,
        commands: vec![
            create("A", 1),
            order("o1", "u", &[("A", 1)], 5_000),
            order("o2", "v", &[("A", 1)], 5_000),
            cancel("o1"),
            order("o2", "v", &[("A", 1)], 5_000),
        ],
    };
    let results = store.apply(&[(9, &batch)], Some(b"m9")).unwrap();
    let outcomes = &results[0];
    assert_eq!(outcomes.len(), 5);
    assert!(matches!(
        outcomes[1],
        Outcome::Order {
            effect: Effect::Applied,
            ..
        }
    ));
    assert!(matches!(
        outcomes[2],
        Outcome::Refused(Refusal::OutOfStock { .. })
    ));
    assert!(matches!(
        outcomes[4],
        Outcome::Order {
            effect: Effect::Applied,
            ..
        }
    ));
    assert_eq!(store.marker().unwrap().as_deref(), Some(&b"m9"[..]));
}

#[test]
fn invalid_commands_are_refused_alike_on_every_replica() {
    let store = temp_store();
    run(&store, 1, 0, create("A", 1));
    let bad_ttl = order("o1", "u", &[("A", 1)], 10);
    let r = refusal(run(&store, 2, 0, bad_ttl));
    assert_eq!(r.code(), "invalid_request");
    assert!(matches!(
        refusal(run(&store, 3, 0, restock("A", "r", 0))),
        Refusal::Invalid(_)
    ));
    assert_eq!(store.get_order(&oid("o1")).unwrap(), None);
}

#[test]
fn user_orders_list_newest_first_ties_by_id() {
    let store = temp_store();
    run(&store, 1, 0, create("A", 100));
    run(&store, 2, 10, order("b", "u", &[("A", 1)], 5_000));
    run(&store, 3, 10, order("a", "u", &[("A", 1)], 5_000));
    run(&store, 4, 20, order("c", "u", &[("A", 1)], 5_000));
    run(&store, 5, 30, order("z", "u2", &[("A", 1)], 5_000));
    run(&store, 6, 40, order("y", "u-longer", &[("A", 1)], 5_000));
    let ids: Vec<_> = store
        .list_user_orders(&uid("u"), 10)
        .unwrap()
        .into_iter()
        .map(|o| o.order_id.into_string())
        .collect();
    assert_eq!(ids, ["c", "a", "b"]);
    assert_eq!(store.list_user_orders(&uid("u"), 2).unwrap().len(), 2);
}

#[test]
fn sku_pages_follow_byte_order_with_exclusive_after() {
    let store = temp_store();
    for (i, s) in ["b", "a", "c", "B"].into_iter().enumerate() {
        run(&store, i as u64 + 1, 0, create(s, 1));
    }
    let (page, next) = store.list_skus(None, 2).unwrap();
    let names: Vec<_> = page.iter().map(|s| s.sku.as_str()).collect();
    assert_eq!(
        (names, next.as_ref().map(|n| n.as_str())),
        (vec!["B", "a"], Some("a"))
    );
    let (page, next) = store.list_skus(next.as_ref(), 2).unwrap();
    let names: Vec<_> = page.iter().map(|s| s.sku.as_str()).collect();
    assert_eq!((names, next), (vec!["b", "c"], None));
}
