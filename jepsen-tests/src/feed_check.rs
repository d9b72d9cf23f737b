//! The event feed held against the history (issue: "the feed's events must match the
//! acknowledged history"). The consumer's record must be ids `1..=head` exactly once each in
//! order; every order event must be about an order a client placed, in a legal order of
//! statuses; every acknowledged change must have its event, at the revision its answer
//! named; and orders acknowledged one after another in real time must be numbered so.

use std::collections::{BTreeMap, BTreeSet};

use crate::feed::{FeedEvent, FeedLog};
use crate::history::{History, Input, Op, OpKind, Output};
use crate::model::OrderStatus;

/// Every problem found, in words; empty when the feed matches.
pub fn check(log: &FeedLog, head: u64, history: &History) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(why) = &log.unfinished {
        problems.push(format!("the consumer did not finish: {why}"));
        return problems;
    }
    problems.extend(ids_run_once_each(&log.events, head));
    problems.extend(order_paths(&log.events, history));
    problems.extend(acknowledged_changes_have_events(&log.events, history));
    problems.extend(placements_in_real_time_order(&log.events, history));
    problems
}

/// Ids as received are exactly 1, 2, …, head.
fn ids_run_once_each(events: &[FeedEvent], head: u64) -> Vec<String> {
    for (position, event) in events.iter().enumerate() {
        let expected = position as u64 + 1;
        if event.id != expected {
            let what = if event.id < expected { "repeat" } else { "gap" };
            return vec![format!(
                "{what}: event {} received where {expected} was due",
                event.id
            )];
        }
    }
    if events.len() as u64 != head {
        return vec![format!(
            "received {} events, the feed's head is {head}",
            events.len()
        )];
    }
    Vec::new()
}

fn status_of(kind: &str) -> Option<OrderStatus> {
    OrderStatus::ALL
        .into_iter()
        .find(|s| kind.strip_prefix("order.") == Some(s.as_str()))
}

/// Each order's events: placed by a client, `reserved` first, then at most one way out of it,
/// `refunded` only after `paid`; revisions never fall as ids rise.
fn order_paths(events: &[FeedEvent], history: &History) -> Vec<String> {
    let placed: BTreeSet<&str> = history
        .ops()
        .iter()
        .filter(|op| op.input.kind() == OpKind::Order)
        .filter_map(|op| op.input.order_id())
        .collect();
    let mut problems = Vec::new();
    let mut paths: BTreeMap<&str, Vec<OrderStatus>> = BTreeMap::new();
    let mut last_revision = 0;
    for event in events {
        if event.revision < last_revision {
            problems.push(format!(
                "event {} has revision {} after revision {last_revision}",
                event.id, event.revision
            ));
        }
        last_revision = last_revision.max(event.revision);
        let Some(order_id) = event.order_id.as_deref() else {
            continue;
        };
        if !placed.contains(order_id) {
            problems.push(format!(
                "event {} is about order {order_id}, which no client placed",
                event.id
            ));
        }
        let Some(status) = status_of(&event.kind) else {
            problems.push(format!(
                "event {} has unknown type {}",
                event.id, event.kind
            ));
            continue;
        };
        if event.status.as_deref() != Some(status.as_str()) {
            problems.push(format!(
                "event {} ({}) carries an order in status {:?}",
                event.id, event.kind, event.status
            ));
        }
        let path = paths.entry(order_id).or_default();
        let legal = matches!(
            (path.last(), status),
            (None, OrderStatus::Reserved)
                | (
                    Some(OrderStatus::Reserved),
                    OrderStatus::Paid | OrderStatus::Cancelled | OrderStatus::Expired
                )
                | (Some(OrderStatus::Paid), OrderStatus::Refunded)
        );
        if !legal {
            problems.push(format!(
                "order {order_id}: event {} ({}) after {:?}",
                event.id, event.kind, path
            ));
        }
        path.push(status);
    }
    problems
}

/// The event an acknowledged answer implies: its kind, subject and revision.
fn implied_event(op: &Op) -> Option<(String, String, u64)> {
    if !op.is_success() {
        return None;
    }
    match (&op.input, &op.output) {
        (Input::CreateSku { sku, .. }, Some(Output::Sku(view))) if op.http == Some(201) => {
            Some(("sku.created".into(), sku.clone(), view.revision))
        }
        (Input::Order { order_id, .. }, Some(Output::Order(view))) if op.http == Some(201) => {
            Some(("order.reserved".into(), order_id.clone(), view.revision))
        }
        (
            Input::Pay { order_id, .. }
            | Input::Cancel { order_id, .. }
            | Input::Refund { order_id, .. },
            Some(Output::Order(view)),
        ) => {
            let moved = match op.input.kind() {
                OpKind::Pay => view.status == OrderStatus::Paid,
                OpKind::Cancel => {
                    matches!(view.status, OrderStatus::Cancelled | OrderStatus::Expired)
                }
                _ => view.status == OrderStatus::Refunded,
            };
            moved.then(|| {
                (
                    format!("order.{}", view.status.as_str()),
                    order_id.clone(),
                    view.revision,
                )
            })
        }
        _ => None,
    }
}

/// Every acknowledged change has its event, at the revision the answer named.
fn acknowledged_changes_have_events(events: &[FeedEvent], history: &History) -> Vec<String> {
    let mut seen: BTreeSet<(String, String, u64)> = BTreeSet::new();
    for event in events {
        let subject = event.order_id.clone().or_else(|| event.sku.clone());
        if let Some(subject) = subject {
            seen.insert((event.kind.clone(), subject, event.revision));
        }
    }
    let mut problems = Vec::new();
    for op in history.ops() {
        if let Some(implied) = implied_event(op) {
            if !seen.contains(&implied) {
                problems.push(format!(
                    "#{} ({}) was answered {} at revision {}, but the feed has no such event",
                    op.index, op.input, implied.0, implied.2
                ));
            }
        }
    }
    problems
}

/// An order acknowledged as placed (201) before another was sent has the lower event id.
fn placements_in_real_time_order(events: &[FeedEvent], history: &History) -> Vec<String> {
    let reserved_at: BTreeMap<&str, u64> = events
        .iter()
        .filter(|e| e.kind == "order.reserved")
        .filter_map(|e| Some((e.order_id.as_deref()?, e.id)))
        .collect();
    let mut placements: Vec<(&Op, u64)> = history
        .ops()
        .iter()
        .filter(|op| op.input.kind() == OpKind::Order && op.is_success() && op.http == Some(201))
        .filter_map(|op| Some((op, *reserved_at.get(op.input.order_id()?)?)))
        .collect();
    placements.sort_by_key(|(op, _)| op.complete_ns);
    // The highest event id among placements completed by each point, to compare with what
    // is invoked after it.
    let mut highest_before: Vec<(u64, u64, &Op)> = Vec::with_capacity(placements.len());
    for (op, id) in &placements {
        let best = match highest_before.last() {
            Some((_, best, best_op)) if *best > *id => (*best, *best_op),
            _ => (*id, *op),
        };
        highest_before.push((op.complete_ns, best.0, best.1));
    }
    let mut problems = Vec::new();
    for (op, id) in &placements {
        let done_before =
            highest_before.partition_point(|(complete, _, _)| *complete < op.invoke_ns);
        if done_before == 0 {
            continue;
        }
        let (_, highest, earlier) = highest_before[done_before - 1];
        if highest > *id {
            problems.push(format!(
                "#{} ({}) completed before #{} ({}) was sent, yet its event {highest} comes after {id}",
                earlier.index, earlier.input, op.index, op.input
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u64, kind: &str, order: &str, revision: u64) -> FeedEvent {
        FeedEvent {
            id,
            kind: kind.into(),
            revision,
            order_id: Some(order.into()),
            status: kind.strip_prefix("order.").map(str::to_owned),
            sku: None,
        }
    }

    #[test]
    fn ids_must_run_from_one_to_the_head_once_each() {
        let run = |ids: &[u64], head| {
            let events: Vec<_> = ids
                .iter()
                .map(|&i| event(i, "order.reserved", "o", i))
                .collect();
            ids_run_once_each(&events, head)
        };
        assert!(run(&[1, 2, 3], 3).is_empty());
        assert!(run(&[1, 3], 3)[0].starts_with("gap"));
        assert!(run(&[1, 2, 2, 3], 3)[0].starts_with("repeat"));
        assert!(!run(&[1, 2], 3).is_empty());
    }

    #[test]
    fn an_order_cannot_be_paid_after_it_was_cancelled() {
        let history = History::default();
        let events = vec![
            event(1, "order.reserved", "o", 1),
            event(2, "order.cancelled", "o", 2),
            event(3, "order.paid", "o", 3),
        ];
        let problems = order_paths(&events, &history);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("order.paid") && p.contains("Cancelled")),
            "{problems:?}"
        );
        // And o was never placed by a client in this (empty) history.
        assert!(
            problems.iter().any(|p| p.contains("no client placed")),
            "{problems:?}"
        );
    }

    fn placed(history: &mut History, process: u64, order: &str, at: (u64, u64), revision: u64) {
        let view = crate::history::OrderView {
            user_id: "u".into(),
            items: vec![crate::history::Item {
                sku: "A".into(),
                qty: 1,
            }],
            status: OrderStatus::Reserved,
            revision,
            created_ms: None,
            expires_ms: None,
        };
        let input = Input::order(order, "u", "A", 1);
        let op = Op::ok(process, input, at.0, at.1, 201, Some(Output::Order(view)));
        history.push(op).unwrap();
    }

    #[test]
    fn an_acknowledged_order_needs_its_event_at_the_answered_revision() {
        let mut history = History::default();
        placed(&mut history, 1, "o1", (0, 10), 5);
        let right = vec![event(1, "order.reserved", "o1", 5)];
        assert!(acknowledged_changes_have_events(&right, &history).is_empty());
        let wrong_revision = vec![event(1, "order.reserved", "o1", 6)];
        assert_eq!(
            acknowledged_changes_have_events(&wrong_revision, &history).len(),
            1
        );
        assert_eq!(acknowledged_changes_have_events(&[], &history).len(), 1);
    }

    #[test]
    fn orders_placed_one_after_another_are_numbered_in_that_order() {
        let mut history = History::default();
        placed(&mut history, 1, "first", (0, 10), 5);
        placed(&mut history, 2, "second", (20, 30), 6);
        let in_order = vec![
            event(1, "order.reserved", "first", 5),
            event(2, "order.reserved", "second", 6),
        ];
        assert!(placements_in_real_time_order(&in_order, &history).is_empty());
        let swapped = vec![
            event(1, "order.reserved", "second", 6),
            event(2, "order.reserved", "first", 5),
        ];
        assert_eq!(placements_in_real_time_order(&swapped, &history).len(), 1);
    }
}
