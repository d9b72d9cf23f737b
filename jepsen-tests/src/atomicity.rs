//! The multi-item check: an order is all or nothing, so every answer that shows an order must
//! show exactly the items it was placed with. (That the SKUs' counters match their orders at
//! the end is the `no-double-pay` invariant, which counts multi-item orders per SKU.)

use std::collections::BTreeMap;

use crate::history::{History, Input, Item, Output};

fn sorted(items: &[Item]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = items.iter().map(|i| (i.sku.clone(), i.qty)).collect();
    v.sort();
    v
}

/// Violations, in words.
pub fn check(history: &History) -> Vec<String> {
    let mut placed: BTreeMap<&str, Vec<(String, u64)>> = BTreeMap::new();
    for op in history.ops() {
        if let Input::Order {
            order_id, items, ..
        } = &op.input
        {
            placed.entry(order_id).or_insert_with(|| sorted(items));
        }
    }
    let mut violations = Vec::new();
    for op in history.ops().iter().filter(|op| op.is_success()) {
        let (Some(order_id), Some(Output::Order(view))) = (op.input.order_id(), &op.output) else {
            continue;
        };
        match placed.get(order_id) {
            Some(items) if *items == sorted(&view.items) => {}
            Some(items) => violations.push(format!(
                "#{} ({}) shows order {order_id} with items {:?}, but it was placed with {:?}",
                op.index,
                op.input,
                sorted(&view.items),
                items
            )),
            None => violations.push(format!(
                "#{} ({}) shows order {order_id}, which no client placed",
                op.index, op.input
            )),
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, OrderView};
    use crate::model::OrderStatus;

    fn order_input(id: &str) -> Input {
        Input::Order {
            reservation_ttl_ms: None,
            order_id: id.into(),
            user_id: "u".into(),
            items: vec![
                Item {
                    sku: "A".into(),
                    qty: 1,
                },
                Item {
                    sku: "B".into(),
                    qty: 2,
                },
            ],
        }
    }

    fn view(items: Vec<Item>) -> Option<Output> {
        Some(Output::Order(OrderView {
            user_id: "u".into(),
            items,
            status: OrderStatus::Reserved,
            revision: 3,
            created_ms: None,
            expires_ms: None,
        }))
    }

    #[test]
    fn a_partial_order_is_reported() {
        let mut h = History::new();
        let full = match order_input("o1") {
            Input::Order { items, .. } => items,
            _ => unreachable!(),
        };
        let mut reversed = full.clone();
        reversed.reverse();
        h.push(Op::ok(0, order_input("o1"), 0, 1, 201, view(reversed)))
            .unwrap();
        assert!(check(&h).is_empty(), "item order does not matter");
        h.push(Op::ok(
            1,
            Input::read_order("A", "o1"),
            2,
            3,
            200,
            view(full[..1].to_vec()),
        ))
        .unwrap();
        let violations = check(&h);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].contains("placed with"));
    }
}
