//! Outcomes as the leader answers them to the caller that sent their commands, without what
//! those commands already name: an order's id always, and a placed order's user and items
//! when they are the command's own. The caller keeps its commands, so it restores the whole
//! outcome from the two; an order's answer then carries its status, times and revision, not
//! its strings a second time (issue 9: "send compact outcomes back, not whole records").

use crate::command::{Command, Effect, Outcome};
use crate::model::{Items, Order, OrderStatus};
use crate::validation::{PaymentRef, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShortOutcome {
    /// An outcome that is not an order's, or an order other than the command's: whole.
    Whole(Outcome),
    /// The order the command is about, as the caller shows it.
    Order { order: ShortOrder, effect: Effect },
}

/// An order without its id, which is its command's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortOrder {
    /// `None` when the command placed this user's order of these items, in this order.
    pub owner: Option<(UserId, Items)>,
    pub status: OrderStatus,
    pub created_ms: u64,
    pub expires_ms: u64,
    pub updated_ms: u64,
    pub payment_ref: Option<PaymentRef>,
    pub revision: u64,
}

/// A short outcome that does not fit the command it is said to answer: a node's bug, or the
/// outcomes' order lost on the way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an order's short outcome answers a command that is no order's, or names no items")]
pub struct MismatchedOutcome;

impl ShortOutcome {
    /// `outcome` without what `command` names.
    pub fn shorten(outcome: Outcome, command: &Command) -> Self {
        let Outcome::Order { order, effect } = outcome else {
            return Self::Whole(outcome);
        };
        if command.order_id() != Some(&order.order_id) {
            return Self::Whole(Outcome::Order { order, effect });
        }
        let named_by_command = matches!(
            command,
            Command::PlaceOrder { user_id, items, .. }
                if *user_id == order.user_id && *items == order.items
        );
        let owner = (!named_by_command).then_some((order.user_id, order.items));
        Self::Order {
            order: ShortOrder {
                owner,
                status: order.status,
                created_ms: order.created_ms,
                expires_ms: order.expires_ms,
                updated_ms: order.updated_ms,
                payment_ref: order.payment_ref,
                revision: order.revision,
            },
            effect,
        }
    }

    /// The outcome, with `command`'s names put back. An order restored from its short form
    /// lacks what is never shown to clients: its request tag (0) and payment record (`None`).
    pub fn restore(self, command: &Command) -> Result<Outcome, MismatchedOutcome> {
        let (order, effect) = match self {
            Self::Whole(outcome) => return Ok(outcome),
            Self::Order { order, effect } => (order, effect),
        };
        let order_id = command.order_id().ok_or(MismatchedOutcome)?.clone();
        let (user_id, items) = match (order.owner, command) {
            (Some(owner), _) => owner,
            (None, Command::PlaceOrder { user_id, items, .. }) => (user_id.clone(), items.clone()),
            (None, _) => return Err(MismatchedOutcome),
        };
        Ok(Outcome::Order {
            order: Order {
                order_id,
                user_id,
                items,
                status: order.status,
                created_ms: order.created_ms,
                expires_ms: order.expires_ms,
                updated_ms: order.updated_ms,
                payment_ref: order.payment_ref,
                revision: order.revision,
                request_tag: 0,
                paid: None,
            },
            effect,
        })
    }
}

/// The bytes of `outcome` as a `Submit` answers it: short of what `command` names when
/// `short` (a refusal answered as a read has no command, and travels whole either way).
pub fn encode(outcome: Outcome, command: Option<&Command>, short: bool) -> Vec<u8> {
    encode_onto(Vec::new(), outcome, command, short)
}

/// As `encode`, appended to `out`: a `Submit`'s outcomes can share one buffer, not one
/// growing allocation each.
pub fn encode_onto(
    out: Vec<u8>,
    outcome: Outcome,
    command: Option<&Command>,
    short: bool,
) -> Vec<u8> {
    let encoded = match (short, command) {
        (true, Some(command)) => postcard::to_extend(&ShortOutcome::shorten(outcome, command), out),
        (true, None) => postcard::to_extend(&ShortOutcome::Whole(outcome), out),
        (false, _) => postcard::to_extend(&outcome, out),
    };
    // Encoding our own in-memory values into a Vec cannot fail.
    encoded.expect("postcard encoding into memory")
}

/// The outcome of `command` from the bytes a `Submit` answered: short when the node says so,
/// else whole (a node of an earlier release).
pub fn decode(bytes: &[u8], short: bool, command: &Command) -> Result<Outcome, String> {
    let undecodable = |e: postcard::Error| format!("undecodable outcome: {e}");
    if !short {
        return postcard::from_bytes(bytes).map_err(undecodable);
    }
    postcard::from_bytes::<ShortOutcome>(bytes)
        .map_err(undecodable)?
        .restore(command)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Refusal;
    use crate::model::{Item, Payment, Sku, SkuCreation};
    use crate::validation::{OrderId, Qty, SkuId};

    fn items(skus: &[(&str, u64)]) -> Items {
        Items::new(
            skus.iter()
                .map(|(sku, qty)| Item {
                    sku: SkuId::new(*sku).unwrap(),
                    qty: Qty::new(*qty).unwrap(),
                })
                .collect(),
        )
        .unwrap()
    }

    fn place(order_id: &str, user_id: &str, order_items: Items) -> Command {
        Command::PlaceOrder {
            order_id: OrderId::new(order_id).unwrap(),
            user_id: UserId::new(user_id).unwrap(),
            items: order_items,
            ttl_ms: 60_000,
            request_tag: 7,
        }
    }

    fn order(order_id: &str, user_id: &str, order_items: Items, status: OrderStatus) -> Order {
        Order {
            order_id: OrderId::new(order_id).unwrap(),
            user_id: UserId::new(user_id).unwrap(),
            items: order_items,
            status,
            created_ms: 1_000,
            expires_ms: 61_000,
            updated_ms: 2_000,
            payment_ref: Some(PaymentRef::new("pay-1").unwrap()),
            revision: 42,
            request_tag: 7,
            paid: Some(Payment {
                request_tag: 9,
                at_ms: 2_000,
                revision: 42,
            }),
        }
    }

    /// What a client is shown of an order: all but the request tag and the payment record.
    fn shown(outcome: Outcome) -> Outcome {
        match outcome {
            Outcome::Order { order, effect } => Outcome::Order {
                order: Order {
                    request_tag: 0,
                    paid: None,
                    ..order
                },
                effect,
            },
            other => other,
        }
    }

    fn round_trip(outcome: &Outcome, command: &Command) -> (Outcome, usize) {
        let bytes = encode(outcome.clone(), Some(command), true);
        // Asked for whole outcomes, a caller gets them as they are.
        let whole = encode(outcome.clone(), Some(command), false);
        assert_eq!(decode(&whole, false, command).unwrap(), *outcome);
        (decode(&bytes, true, command).unwrap(), bytes.len())
    }

    #[test]
    fn every_order_command_gets_back_what_the_client_is_shown() {
        let two = items(&[("phone", 1), ("case", 2)]);
        let placed = order("o-1", "u-1", two.clone(), OrderStatus::Reserved);
        let commands = [
            place("o-1", "u-1", two.clone()),
            // A replay listing the items in another order is shown the order's own.
            place("o-1", "u-1", items(&[("case", 2), ("phone", 1)])),
            Command::Pay {
                order_id: OrderId::new("o-1").unwrap(),
                payment_ref: None,
                request_tag: 3,
            },
            Command::Cancel {
                order_id: OrderId::new("o-1").unwrap(),
            },
            Command::Refund {
                order_id: OrderId::new("o-1").unwrap(),
                restock: true,
            },
        ];
        for command in &commands {
            for effect in [Effect::Applied, Effect::Unchanged] {
                let outcome = Outcome::Order {
                    order: placed.clone(),
                    effect,
                };
                assert_eq!(
                    round_trip(&outcome, command).0,
                    shown(outcome),
                    "{command:?}"
                );
            }
        }
    }

    #[test]
    fn a_placed_order_travels_without_its_strings() {
        let command = place(
            "order-000000001234",
            "user-5678",
            items(&[("sku-00042", 1)]),
        );
        let outcome = Outcome::Order {
            order: order(
                "order-000000001234",
                "user-5678",
                items(&[("sku-00042", 1)]),
                OrderStatus::Reserved,
            ),
            effect: Effect::Applied,
        };
        let whole = postcard::to_allocvec(&ShortOutcome::Whole(outcome.clone()))
            .unwrap()
            .len();
        let (restored, short) = round_trip(&outcome, &command);
        assert_eq!(restored, shown(outcome));
        assert!(short + 30 < whole, "short {short} bytes, whole {whole}");
    }

    #[test]
    fn other_outcomes_travel_whole() {
        let command = place("o-1", "u-1", items(&[("phone", 1)]));
        let sku = Sku {
            sku: SkuId::new("phone").unwrap(),
            total: 10,
            available: 9,
            reserved: 1,
            sold: 0,
            refunded: 0,
            per_user_limit: None,
            sale_window: None,
            revision: 3,
            created: SkuCreation {
                stock: 10,
                per_user_limit: None,
                sale_window: None,
            },
            request_tag: 0,
            created_revision: 1,
        };
        let outcomes = [
            Outcome::Refused(Refusal::SkuNotFound {
                sku: SkuId::new("phone").unwrap(),
            }),
            Outcome::Expired { orders: 3 },
            Outcome::Sku {
                sku,
                effect: Effect::Applied,
            },
            // Not the command's order: nothing of it can be restored from the command.
            Outcome::Order {
                order: order("o-2", "u-1", items(&[("phone", 1)]), OrderStatus::Paid),
                effect: Effect::Applied,
            },
        ];
        for outcome in outcomes {
            let short = ShortOutcome::shorten(outcome.clone(), &command);
            assert_eq!(short, ShortOutcome::Whole(outcome.clone()));
            assert_eq!(short.restore(&command).unwrap(), outcome);
        }
    }

    #[test]
    fn a_short_order_under_the_wrong_command_is_refused() {
        let placed = Outcome::Order {
            order: order("o-1", "u-1", items(&[("phone", 1)]), OrderStatus::Reserved),
            effect: Effect::Applied,
        };
        let short = ShortOutcome::shorten(placed, &place("o-1", "u-1", items(&[("phone", 1)])));
        // Only a PlaceOrder names the user and items a short order leaves out.
        let pay = Command::Pay {
            order_id: OrderId::new("o-1").unwrap(),
            payment_ref: None,
            request_tag: 0,
        };
        assert_eq!(short.clone().restore(&pay), Err(MismatchedOutcome));
        assert_eq!(short.restore(&Command::Expire), Err(MismatchedOutcome));
    }
}
