//! Refusals answered as reads: which `PlaceOrder`s qualify, and that each answer equals what
//! applying the command as the next entry would have answered.

mod common;

use common::*;
use state_machine::{Command, OrderId, Outcome, Refusal, Store};

fn nothing_in_flight(_: &OrderId) -> bool {
    false
}

fn judge(store: &Store, now_ms: u64, commands: &[Command]) -> Vec<Option<Refusal>> {
    store
        .refusals_as_reads(now_ms, commands, nothing_in_flight)
        .expect("judge")
}

fn sold_out_store() -> Store {
    let store = temp_store();
    run(&store, 1, 100, create("HOT", 1));
    run(&store, 2, 100, order("first", "u1", &[("HOT", 1)], 60_000));
    store
}

#[test]
fn a_sold_out_order_is_refused_without_changing_anything() {
    let store = sold_out_store();
    let before = (store.get_sku(&sku("HOT")).unwrap(), store.clock().unwrap());
    let verdicts = judge(&store, 200, &[order("late", "u2", &[("HOT", 1)], 60_000)]);
    assert!(matches!(
        &verdicts[0],
        Some(Refusal::OutOfStock {
            available: 0,
            requested: 1,
            ..
        })
    ));
    assert_eq!(
        (store.get_sku(&sku("HOT")).unwrap(), store.clock().unwrap()),
        before
    );
    assert_eq!(store.get_order(&oid("late")).unwrap(), None);
}

#[test]
fn an_order_the_state_accepts_is_proposed() {
    let store = temp_store();
    run(&store, 1, 100, create("A", 5));
    assert_eq!(
        judge(&store, 200, &[order("o", "u", &[("A", 5)], 60_000)]),
        [None]
    );
}

#[test]
fn unknown_skus_and_per_user_limits_are_refused() {
    let store = temp_store();
    run(&store, 1, 100, create_with("LIM", 10, Some(1), None));
    run(&store, 2, 100, order("mine", "u", &[("LIM", 1)], 60_000));
    let verdicts = judge(
        &store,
        200,
        &[
            order("a", "u", &[("NOPE", 1)], 60_000),
            order("b", "u", &[("LIM", 1)], 60_000),
        ],
    );
    assert!(matches!(&verdicts[0], Some(Refusal::SkuNotFound { .. })));
    assert!(matches!(
        &verdicts[1],
        Some(Refusal::PerUserLimitExceeded { held: 1, .. })
    ));
}

#[test]
fn an_order_still_in_flight_is_proposed_even_when_the_state_refuses_it() {
    // Its first attempt is in an entry not yet applied (here: behind a restock that frees
    // the unit it needs); the retry must wait for that entry's answer, not say sold out.
    let store = sold_out_store();
    let retry = [order("again", "u2", &[("HOT", 1)], 60_000)];
    let in_flight = |id: &OrderId| id.as_str() == "again";
    assert_eq!(
        store.refusals_as_reads(200, &retry, in_flight).unwrap(),
        [None]
    );
    assert!(judge(&store, 200, &retry)[0].is_some());
}

#[test]
fn an_applied_order_is_a_replay_and_goes_through_the_log() {
    let store = sold_out_store();
    assert_eq!(
        judge(&store, 200, &[order("first", "u1", &[("HOT", 1)], 60_000)]),
        [None]
    );
    // Same id, other content: also the log's to answer (order_id_conflict).
    assert_eq!(
        judge(&store, 200, &[order("first", "u9", &[("HOT", 1)], 60_000)]),
        [None]
    );
}

#[test]
fn an_order_behind_a_proposed_command_that_may_change_its_verdict_is_proposed() {
    let store = sold_out_store();
    run(&store, 3, 100, create("B", 0));
    run(&store, 4, 100, create("C", 3));
    let verdicts = judge(
        &store,
        200,
        &[
            // Proposed: C has stock.
            order("c1", "u1", &[("C", 1)], 60_000),
            // Shares C with c1: proposed, whatever the state says.
            order("c2", "u2", &[("B", 1), ("C", 9)], 60_000),
            // Independent of both: refused at once.
            order("h1", "u3", &[("HOT", 1)], 60_000),
            // Same id as a proposed order: proposed.
            order("c1", "u1", &[("C", 1)], 60_000),
            // Anything that is not an order may free stock: everything after it is proposed.
            cancel("first"),
            order("h2", "u4", &[("HOT", 1)], 60_000),
        ],
    );
    let refused: Vec<bool> = verdicts.iter().map(Option::is_some).collect();
    assert_eq!(refused, [false, false, true, false, false, false]);
}

#[test]
fn a_sale_window_refusal_is_answered_only_when_no_later_clock_can_contradict_it() {
    let store = temp_store();
    run(
        &store,
        1,
        1_000,
        create_with("W", 10, None, Some((5_000, 10_000))),
    );
    let place = [order("o", "u", &[("W", 1)], 60_000)];
    // Not started by the clock a proposal would carry.
    assert!(matches!(
        &judge(&store, 4_000, &place)[0],
        Some(Refusal::SaleNotActive { .. })
    ));
    // Ended by the leader's clock, not yet by the applied one: proposed.
    assert_eq!(judge(&store, 12_000, &place), [None]);
    // Ended by the applied clock.
    run(&store, 2, 11_000, create("other", 1));
    assert!(matches!(
        &judge(&store, 12_000, &place)[0],
        Some(Refusal::SaleNotActive { .. })
    ));
}

#[test]
fn every_refusal_answered_equals_what_the_next_entry_would_answer() {
    // A deterministic walk over a small catalogue: each order is first judged, then applied
    // as the next entry; whenever the judge answered, the log must answer the same.
    let store = temp_store();
    run(&store, 1, 0, create("A", 3));
    run(&store, 2, 0, create_with("B", 5, Some(2), None));
    run(&store, 3, 0, create_with("C", 4, None, Some((50, 400))));
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut answered = 0;
    for index in 4..600 {
        let now = index;
        let user = format!("u{}", next(6));
        let command = match next(10) {
            0 => cancel(&format!("o{}", next(index))),
            1 => restock(["A", "B", "C"][next(3) as usize], &format!("r{index}"), 1),
            _ => {
                let mut lines = vec![(["A", "B", "C", "X"][next(4) as usize], 1 + next(2))];
                if next(3) == 0 {
                    let other = ["A", "B", "C"][next(3) as usize];
                    if other != lines[0].0 {
                        lines.push((other, 1));
                    }
                }
                order(&format!("o{}", next(index)), &user, &lines, 60_000)
            }
        };
        let verdict = judge(&store, now, std::slice::from_ref(&command)).remove(0);
        let outcome = run(&store, index, now, command);
        if let Some(refusal) = verdict {
            answered += 1;
            assert_eq!(outcome, Outcome::Refused(refusal), "entry {index}");
        }
    }
    assert!(answered > 50, "the walk answered only {answered} refusals");
}
