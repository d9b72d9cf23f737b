//! The rules of every command, applied to one transaction's working set. Deterministic:
//! only the state, the command, the log index and the state machine's clock decide.

use crate::command::{Command, Effect, Outcome, Refusal, RequestTag};
use crate::events::EventKind;
use crate::model::{
    Items, Order, OrderStatus, PatchRecord, Payment, RestockRecord, SaleWindow, Sku, SkuCreation,
};
use crate::store::error::StoreError;
use crate::store::tx::Tx;
use crate::validation::{OrderId, PaymentRef, RequestId, SkuId, UserId, MAX_COUNT};

/// Most orders one `Expire` command expires; the leader's ticker proposes again while the
/// earliest deadline is still past, so a backlog drains in bounded entries.
pub const MAX_EXPIRE_PER_COMMAND: usize = 10_000;

type Applied = Result<Outcome, StoreError>;

fn refuse(refusal: Refusal) -> Applied {
    Ok(Outcome::Refused(refusal))
}

/// Arithmetic on counters the invariants say cannot fail; failing means corrupt state.
fn checked(value: Option<u64>, what: &str, sku: &SkuId) -> Result<u64, StoreError> {
    value.ok_or_else(|| StoreError::Invariant(format!("sku {sku}: {what} out of range")))
}

pub(crate) fn apply_command(tx: &mut Tx, index: u64, command: &Command) -> Applied {
    if let Err(e) = command.validate() {
        return refuse(Refusal::Invalid(e));
    }
    match command {
        Command::CreateSku {
            sku,
            stock,
            per_user_limit,
            sale_window,
            request_tag,
        } => create_sku(
            tx,
            index,
            sku,
            SkuCreation {
                stock: *stock,
                per_user_limit: *per_user_limit,
                sale_window: *sale_window,
            },
            *request_tag,
        ),
        Command::Restock {
            sku,
            request_id,
            delta,
            request_tag,
        } => restock(tx, index, sku, request_id, *delta, *request_tag),
        Command::UpdateSku {
            sku,
            per_user_limit,
            sale_window,
            request_tag,
        } => update_sku(tx, index, sku, *per_user_limit, *sale_window, *request_tag),
        Command::PlaceOrder {
            order_id,
            user_id,
            items,
            ttl_ms,
            request_tag,
        } => place_order(tx, index, order_id, user_id, items, *ttl_ms, *request_tag),
        Command::Pay {
            order_id,
            payment_ref,
            request_tag,
        } => pay(tx, index, order_id, payment_ref.as_ref(), *request_tag),
        Command::Cancel { order_id } => cancel(tx, index, order_id),
        Command::Refund { order_id, restock } => refund(tx, index, order_id, *restock),
        Command::Expire => expire(tx, index),
    }
}

/// The refusal `apply_command` would answer for `command` at `tx`'s state if it is a
/// `PlaceOrder` refused by its item checks, found by those checks alone: none of the
/// order's writes are made. `None` for every other case (another command, an invalid one,
/// an order id that exists, an order the checks let through), which only applying decides.
pub(crate) fn order_refusal(tx: &mut Tx, command: &Command) -> Result<Option<Refusal>, StoreError> {
    let Command::PlaceOrder {
        order_id,
        user_id,
        items,
        ..
    } = command
    else {
        return Ok(None);
    };
    if command.validate().is_err() || tx.order(order_id)?.is_some() {
        return Ok(None);
    }
    Ok(check_items(tx, user_id, items)?.err())
}

/// A replay of a create is the creating request's own resend when the tags match.
fn replay_effect(stored: RequestTag, replayed: RequestTag) -> Effect {
    if replayed != 0 && stored == replayed {
        Effect::Applied
    } else {
        Effect::Unchanged
    }
}

fn create_sku(
    tx: &mut Tx,
    index: u64,
    sku: &SkuId,
    created: SkuCreation,
    request_tag: RequestTag,
) -> Applied {
    if let Some(existing) = tx.sku(sku)? {
        return if existing.created == created {
            // The creating request's resend answers as the creation did, not with what
            // orders and restocks made of the SKU since.
            Ok(match replay_effect(existing.request_tag, request_tag) {
                Effect::Applied => Outcome::Sku {
                    sku: existing.as_created(),
                    effect: Effect::Applied,
                },
                Effect::Unchanged => Outcome::Sku {
                    sku: existing,
                    effect: Effect::Unchanged,
                },
            })
        } else {
            refuse(Refusal::SkuExists { sku: sku.clone() })
        };
    }
    let new = Sku {
        sku: sku.clone(),
        total: created.stock,
        available: created.stock,
        reserved: 0,
        sold: 0,
        refunded: 0,
        per_user_limit: created.per_user_limit,
        sale_window: created.sale_window,
        revision: index,
        created,
        request_tag,
        created_revision: index,
    };
    tx.record_sku_event(EventKind::SkuCreated, index, &new)?;
    tx.put_sku(new.clone());
    Ok(Outcome::Sku {
        sku: new,
        effect: Effect::Applied,
    })
}

fn restock(
    tx: &mut Tx,
    index: u64,
    sku_id: &SkuId,
    request_id: &RequestId,
    delta: i64,
    request_tag: RequestTag,
) -> Applied {
    let Some(mut sku) = tx.sku(sku_id)? else {
        return refuse(Refusal::SkuNotFound {
            sku: sku_id.clone(),
        });
    };
    if let Some(applied) = tx.restock(sku_id, request_id)? {
        if applied.delta != delta {
            return refuse(Refusal::RequestIdConflict {
                sku: sku_id.clone(),
                request_id: request_id.clone(),
                applied_delta: applied.delta,
            });
        }
        // The applying request's own resend gets the answer its first attempt carried;
        // anyone else's replay sees the SKU as it stands.
        return Ok(match replay_effect(applied.request_tag, request_tag) {
            Effect::Applied => Outcome::Sku {
                sku: applied.sku_after,
                effect: Effect::Applied,
            },
            Effect::Unchanged => Outcome::Sku {
                sku,
                effect: Effect::Unchanged,
            },
        });
    }
    let magnitude = delta.unsigned_abs();
    if delta > 0 {
        match sku.total.checked_add(magnitude) {
            Some(total) if total <= MAX_COUNT => {
                sku.total = total;
                sku.available = checked(sku.available.checked_add(magnitude), "available", sku_id)?;
            }
            _ => {
                return refuse(Refusal::TotalOverflow {
                    sku: sku_id.clone(),
                    total: sku.total,
                })
            }
        }
    } else {
        if sku.available < magnitude {
            return refuse(Refusal::InsufficientAvailable {
                sku: sku_id.clone(),
                available: sku.available,
                requested: magnitude,
            });
        }
        sku.available -= magnitude;
        sku.total = checked(sku.total.checked_sub(magnitude), "total", sku_id)?;
    }
    sku.revision = index;
    tx.put_restock(
        request_id,
        RestockRecord {
            delta,
            request_tag,
            sku_after: sku.clone(),
        },
    );
    tx.record_sku_event(EventKind::SkuRestocked, index, &sku)?;
    tx.put_sku(sku.clone());
    Ok(Outcome::Sku {
        sku,
        effect: Effect::Applied,
    })
}

fn update_sku(
    tx: &mut Tx,
    index: u64,
    sku_id: &SkuId,
    per_user_limit: Option<Option<u64>>,
    sale_window: Option<Option<SaleWindow>>,
    request_tag: RequestTag,
) -> Applied {
    let Some(mut sku) = tx.sku(sku_id)? else {
        return refuse(Refusal::SkuNotFound {
            sku: sku_id.clone(),
        });
    };
    if request_tag != 0 {
        if let Some(applied) = tx.patch(sku_id, request_tag)? {
            // An attempt of a request that already applied: its first attempt's answer,
            // and nothing overwritten, though a newer patch may have come in between.
            return Ok(Outcome::Sku {
                sku: applied.sku_after,
                effect: if applied.changed {
                    Effect::Applied
                } else {
                    Effect::Unchanged
                },
            });
        }
    }
    let limit = per_user_limit.unwrap_or(sku.per_user_limit);
    let window = sale_window.unwrap_or(sku.sale_window);
    let effect = if limit == sku.per_user_limit && window == sku.sale_window {
        Effect::Unchanged
    } else {
        if limit.is_some() != sku.per_user_limit.is_some() {
            tx.recount_holds(sku_id, limit.is_some())?;
        }
        sku.per_user_limit = limit;
        sku.sale_window = window;
        sku.revision = index;
        tx.record_sku_event(EventKind::SkuUpdated, index, &sku)?;
        tx.put_sku(sku.clone());
        Effect::Applied
    };
    // Recorded even when it changed nothing: a late attempt must not undo a newer patch.
    if request_tag != 0 {
        tx.put_patch(
            request_tag,
            PatchRecord {
                changed: effect == Effect::Applied,
                sku_after: sku.clone(),
            },
        );
    }
    Ok(Outcome::Sku { sku, effect })
}

fn place_order(
    tx: &mut Tx,
    index: u64,
    order_id: &OrderId,
    user_id: &UserId,
    items: &Items,
    ttl_ms: u64,
    request_tag: RequestTag,
) -> Applied {
    if let Some(existing) = tx.order(order_id)? {
        return if existing.user_id == *user_id && existing.items.same_content(items) {
            let existing = current_order(tx, index, existing)?;
            let effect = replay_effect(existing.request_tag, request_tag);
            Ok(Outcome::Order {
                order: existing,
                effect,
            })
        } else {
            refuse(Refusal::OrderIdConflict {
                order_id: order_id.clone(),
            })
        };
    }
    let clock = tx.clock;
    let reserved = match check_items(tx, user_id, items)? {
        Ok(reserved) => reserved,
        Err(refusal) => return refuse(refusal),
    };
    let Some(expires_ms) = clock.checked_add(ttl_ms) else {
        return refuse(Refusal::Invalid(crate::ValidationError::new(
            "reservation_ttl_ms",
            "deadline overflows the clock",
        )));
    };
    for (mut sku, held, qty) in reserved {
        sku.available -= qty;
        sku.reserved = checked(sku.reserved.checked_add(qty), "reserved", &sku.sku)?;
        sku.revision = index;
        if sku.per_user_limit.is_some() {
            tx.put_hold(&sku.sku, user_id, held + qty);
        }
        tx.put_sku(sku);
    }
    let order = Order {
        order_id: order_id.clone(),
        user_id: user_id.clone(),
        items: items.clone(),
        status: OrderStatus::Reserved,
        created_ms: clock,
        expires_ms,
        updated_ms: clock,
        payment_ref: None,
        revision: index,
        request_tag,
        paid: None,
    };
    tx.index_placed_order(user_id, clock, expires_ms, order_id);
    tx.put_order_with_event(EventKind::OrderReserved, index, &order)?;
    Ok(Outcome::Order {
        order,
        effect: Effect::Applied,
    })
}

/// Units each item would reserve: the SKU as read, what the user held of it and the
/// quantity.
type Reservations = Vec<(Sku, u64, u64)>;

/// The checks of a `PlaceOrder`'s items, in API order (the first failing item decides):
/// the reservations they allow, or the refusal. Nothing is written.
fn check_items(
    tx: &mut Tx,
    user_id: &UserId,
    items: &Items,
) -> Result<Result<Reservations, Refusal>, StoreError> {
    let clock = tx.clock;
    // Every item is checked before any is reserved: all or nothing.
    let mut reserved = Vec::with_capacity(items.as_slice().len());
    for item in items.as_slice() {
        let qty = item.qty.get();
        let Some(sku) = tx.sku(&item.sku)? else {
            return Ok(Err(Refusal::SkuNotFound {
                sku: item.sku.clone(),
            }));
        };
        if let Some(window) = sku.sale_window {
            if !window.contains(clock) {
                return Ok(Err(Refusal::SaleNotActive {
                    sku: item.sku.clone(),
                    start_ms: window.start_ms,
                    end_ms: window.end_ms,
                }));
            }
        }
        // Holds are counted only where a limit reads them (`Tx::recount_holds`).
        let held = match sku.per_user_limit {
            Some(_) => tx.hold(&item.sku, user_id)?,
            None => 0,
        };
        if let Some(limit) = sku.per_user_limit {
            if held.saturating_add(qty) > limit {
                return Ok(Err(Refusal::PerUserLimitExceeded {
                    sku: item.sku.clone(),
                    limit,
                    held,
                    requested: qty,
                }));
            }
        }
        if sku.available < qty {
            return Ok(Err(Refusal::OutOfStock {
                sku: item.sku.clone(),
                available: sku.available,
                requested: qty,
            }));
        }
        reserved.push((sku, held, qty));
    }
    Ok(Ok(reserved))
}

/// How a status change moves one item's units between a SKU's counters.
#[derive(Clone, Copy)]
enum Movement {
    /// reserved -> available (cancel, expire)
    Release,
    /// reserved -> sold (pay)
    Sell,
    /// sold -> available (refund with restock)
    RefundRestock,
    /// sold -> out of stock: total shrinks (refund without restock)
    RefundWithdraw,
}

/// Moves every item's units and, where the user stops holding them, releases the holds.
fn move_units(
    tx: &mut Tx,
    index: u64,
    order: &Order,
    movement: Movement,
) -> Result<(), StoreError> {
    for item in order.items.as_slice() {
        let qty = item.qty.get();
        let mut sku = tx.sku(&item.sku)?.ok_or_else(|| {
            StoreError::Invariant(format!(
                "order {} names missing sku {}",
                order.order_id, item.sku
            ))
        })?;
        let id = sku.sku.clone();
        match movement {
            Movement::Release => {
                sku.reserved = checked(sku.reserved.checked_sub(qty), "reserved", &id)?;
                sku.available = checked(sku.available.checked_add(qty), "available", &id)?;
            }
            Movement::Sell => {
                sku.reserved = checked(sku.reserved.checked_sub(qty), "reserved", &id)?;
                sku.sold = checked(sku.sold.checked_add(qty), "sold", &id)?;
            }
            Movement::RefundRestock | Movement::RefundWithdraw => {
                sku.sold = checked(sku.sold.checked_sub(qty), "sold", &id)?;
                sku.refunded = sku.refunded.saturating_add(qty);
                if matches!(movement, Movement::RefundRestock) {
                    sku.available = checked(sku.available.checked_add(qty), "available", &id)?;
                } else {
                    sku.total = checked(sku.total.checked_sub(qty), "total", &id)?;
                }
            }
        }
        if !matches!(movement, Movement::Sell) && sku.per_user_limit.is_some() {
            let held = tx.hold(&id, &order.user_id)?;
            let left = checked(held.checked_sub(qty), "hold", &id)?;
            tx.put_hold(&id, &order.user_id, left);
        }
        sku.revision = index;
        tx.put_sku(sku);
    }
    Ok(())
}

fn transition(
    tx: &mut Tx,
    index: u64,
    order: Order,
    movement: Movement,
    status: OrderStatus,
) -> Applied {
    Ok(Outcome::Order {
        order: move_order(tx, index, order, movement, status)?,
        effect: Effect::Applied,
    })
}

fn move_order(
    tx: &mut Tx,
    index: u64,
    mut order: Order,
    movement: Movement,
    status: OrderStatus,
) -> Result<Order, StoreError> {
    move_units(tx, index, &order, movement)?;
    if order.status == OrderStatus::Reserved {
        tx.remove_deadline(order.expires_ms, &order.order_id);
    }
    order.status = status;
    order.updated_ms = tx.clock;
    order.revision = index;
    tx.put_order_with_event(EventKind::of_order_status(status), index, &order)?;
    Ok(order)
}

/// The order as the cluster clock has it now. A reservation whose deadline has been reached
/// is expired here and now, exactly as the sweep would expire it, so that no command can
/// act on it between its deadline and the sweep.
fn current_order(tx: &mut Tx, index: u64, order: Order) -> Result<Order, StoreError> {
    if order.deadline_reached(tx.clock) {
        move_order(tx, index, order, Movement::Release, OrderStatus::Expired)
    } else {
        Ok(order)
    }
}

fn find_order(
    tx: &mut Tx,
    index: u64,
    order_id: &OrderId,
) -> Result<Result<Order, Refusal>, StoreError> {
    match tx.order(order_id)? {
        Some(order) => Ok(Ok(current_order(tx, index, order)?)),
        None => Ok(Err(Refusal::OrderNotFound {
            order_id: order_id.clone(),
        })),
    }
}

fn unchanged(order: Order) -> Applied {
    Ok(Outcome::Order {
        order,
        effect: Effect::Unchanged,
    })
}

fn invalid_transition(order: &Order) -> Applied {
    refuse(Refusal::InvalidTransition {
        order_id: order.order_id.clone(),
        status: order.status,
    })
}

fn pay(
    tx: &mut Tx,
    index: u64,
    order_id: &OrderId,
    payment_ref: Option<&PaymentRef>,
    request_tag: RequestTag,
) -> Applied {
    let mut order = match find_order(tx, index, order_id)? {
        Ok(order) => order,
        Err(refusal) => return refuse(refusal),
    };
    let paid_by_this_request = order
        .paid
        .as_ref()
        .is_some_and(|p| replay_effect(p.request_tag, request_tag) == Effect::Applied);
    if paid_by_this_request {
        // The paying request's resend after a lost answer: it answers as the payment did,
        // even if a refund came in between (it would otherwise be refused).
        if let Some(as_paid) = order.as_paid() {
            return Ok(Outcome::Order {
                order: as_paid,
                effect: Effect::Applied,
            });
        }
    }
    match order.status {
        OrderStatus::Reserved => {
            order.payment_ref = payment_ref.cloned();
            order.paid = Some(Payment {
                request_tag,
                at_ms: tx.clock,
                revision: index,
            });
            transition(tx, index, order, Movement::Sell, OrderStatus::Paid)
        }
        OrderStatus::Paid => unchanged(order),
        _ => invalid_transition(&order),
    }
}

fn cancel(tx: &mut Tx, index: u64, order_id: &OrderId) -> Applied {
    let order = match find_order(tx, index, order_id)? {
        Ok(order) => order,
        Err(refusal) => return refuse(refusal),
    };
    match order.status {
        OrderStatus::Reserved => {
            transition(tx, index, order, Movement::Release, OrderStatus::Cancelled)
        }
        OrderStatus::Cancelled | OrderStatus::Expired => unchanged(order),
        _ => invalid_transition(&order),
    }
}

fn refund(tx: &mut Tx, index: u64, order_id: &OrderId, restock: bool) -> Applied {
    let order = match find_order(tx, index, order_id)? {
        Ok(order) => order,
        Err(refusal) => return refuse(refusal),
    };
    let movement = if restock {
        Movement::RefundRestock
    } else {
        Movement::RefundWithdraw
    };
    match order.status {
        OrderStatus::Paid => transition(tx, index, order, movement, OrderStatus::Refunded),
        OrderStatus::Refunded => unchanged(order),
        _ => invalid_transition(&order),
    }
}

fn expire(tx: &mut Tx, index: u64) -> Applied {
    let due = tx.due(MAX_EXPIRE_PER_COMMAND)?;
    let mut expired = 0u64;
    for order_id in due {
        let order = tx.order(&order_id)?.ok_or_else(|| {
            StoreError::Invariant(format!("deadline of missing order {order_id}"))
        })?;
        if order.status != OrderStatus::Reserved {
            return Err(StoreError::Invariant(format!(
                "deadline of {} order {order_id}",
                order.status.as_str()
            )));
        }
        transition(tx, index, order, Movement::Release, OrderStatus::Expired)?;
        expired += 1;
    }
    Ok(Outcome::Expired { orders: expired })
}
