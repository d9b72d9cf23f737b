//! What the state machine holds: SKUs with their counters and orders with their items.

use crate::validation::{
    check_limit, OrderId, PaymentRef, Qty, SkuId, UserId, ValidationError, MAX_ITEMS,
};
use serde::{Deserialize, Deserializer, Serialize};

/// A half-open sale window `[start_ms, end_ms)`, `start_ms < end_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct SaleWindow {
    pub start_ms: u64,
    pub end_ms: u64,
}

impl SaleWindow {
    pub fn new(start_ms: u64, end_ms: u64) -> Result<Self, ValidationError> {
        if start_ms < end_ms {
            Ok(Self { start_ms, end_ms })
        } else {
            Err(ValidationError::new(
                "sale_window.start_ms",
                format!("must be below sale_window.end_ms ({start_ms} >= {end_ms})"),
            ))
        }
    }

    pub fn contains(&self, t_ms: u64) -> bool {
        self.start_ms <= t_ms && t_ms < self.end_ms
    }
}

impl<'de> Deserialize<'de> for SaleWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            start_ms: u64,
            end_ms: u64,
        }
        let raw = Raw::deserialize(d)?;
        SaleWindow::new(raw.start_ms, raw.end_ms).map_err(serde::de::Error::custom)
    }
}

/// The settings a SKU was created with: a repeated create is "the same" when they match,
/// whatever restocks and patches happened since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuCreation {
    pub stock: u64,
    pub per_user_limit: Option<u64>,
    pub sale_window: Option<SaleWindow>,
}

/// A SKU. Invariant: `available + reserved + sold == total`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sku {
    pub sku: SkuId,
    pub total: u64,
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
    /// Units ever refunded.
    pub refunded: u64,
    pub per_user_limit: Option<u64>,
    pub sale_window: Option<SaleWindow>,
    /// Log index of the SKU's last change.
    pub revision: u64,
    pub created: SkuCreation,
    /// The tag of the request that created it (see `command::RequestTag`); never shown to
    /// clients.
    pub request_tag: u64,
    /// Log index of the creation: with `created`, what the creating request answered.
    pub created_revision: u64,
}

impl Sku {
    /// The SKU as its creation left it: what the creating request answered.
    pub fn as_created(&self) -> Sku {
        Sku {
            total: self.created.stock,
            available: self.created.stock,
            reserved: 0,
            sold: 0,
            refunded: 0,
            per_user_limit: self.created.per_user_limit,
            sale_window: self.created.sale_window,
            revision: self.created_revision,
            ..self.clone()
        }
    }

    /// `available + reserved + sold == total`, computed without overflow.
    pub fn is_balanced(&self) -> bool {
        self.available
            .checked_add(self.reserved)
            .and_then(|s| s.checked_add(self.sold))
            == Some(self.total)
    }
}

/// An applied restock, kept per SKU for dedup: its delta, the request that applied it and the
/// SKU as that restock left it. A resend by the same request answers with `sku_after`, the
/// answer its lost first attempt carried, not a state later commands have since changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestockRecord {
    pub delta: i64,
    pub request_tag: u64,
    pub sku_after: Sku,
}

/// A tagged patch already applied to a SKU, with the SKU as that patch left it: any later
/// attempt of the same request answers with it and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchRecord {
    /// Whether the patch changed the SKU's settings, so a resend answers as it did.
    pub changed: bool,
    pub sku_after: Sku,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Item {
    pub sku: SkuId,
    pub qty: Qty,
}

/// The items of an order: 1–64 lines, each SKU at most once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Items(Vec<Item>);

impl Items {
    pub fn new(items: Vec<Item>) -> Result<Self, ValidationError> {
        if items.is_empty() || items.len() > MAX_ITEMS {
            return Err(ValidationError::new(
                "items",
                format!("must have 1 to {MAX_ITEMS} entries, got {}", items.len()),
            ));
        }
        for (i, item) in items.iter().enumerate() {
            if items[..i].iter().any(|earlier| earlier.sku == item.sku) {
                return Err(ValidationError::new(
                    format!("items[{i}].sku"),
                    format!("sku {} appears more than once in the order", item.sku),
                ));
            }
        }
        Ok(Self(items))
    }

    pub fn as_slice(&self) -> &[Item] {
        &self.0
    }

    /// Same items as a multiset: the order of lines does not matter.
    pub fn same_content(&self, other: &Items) -> bool {
        self.0.len() == other.0.len() && self.0.iter().all(|item| other.0.contains(item))
    }
}

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Items::new(Vec::<Item>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    Reserved,
    Paid,
    Cancelled,
    Expired,
    Refunded,
}

impl OrderStatus {
    /// Every status, in the order of the API reference.
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Reserved,
        OrderStatus::Paid,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
        OrderStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Reserved => "reserved",
            OrderStatus::Paid => "paid",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
            OrderStatus::Refunded => "refunded",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: OrderId,
    pub user_id: UserId,
    pub items: Items,
    pub status: OrderStatus,
    pub created_ms: u64,
    pub expires_ms: u64,
    pub updated_ms: u64,
    pub payment_ref: Option<PaymentRef>,
    /// Log index of the order's last change.
    pub revision: u64,
    /// The tag of the request that placed it (see `command::RequestTag`); never shown to
    /// clients.
    pub request_tag: u64,
    /// Set by the payment; a refund later overwrites status, `updated_ms` and `revision`, so
    /// this keeps what the paying request's resend must answer.
    pub paid: Option<Payment>,
}

/// The request that paid an order, with the clock and log index of the payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub request_tag: u64,
    pub at_ms: u64,
    pub revision: u64,
}

impl Order {
    /// The items whose units this order holds against its user's per-user limits: all of a
    /// reserved or paid order's, none of any other's. Every count of holds goes by this.
    pub fn held_items(&self) -> &[Item] {
        match self.status {
            OrderStatus::Reserved | OrderStatus::Paid => self.items.as_slice(),
            _ => &[],
        }
    }

    /// Whether the cluster clock has reached this reservation's deadline: from then on it
    /// is expired to every command and read, swept or not (API.md "Deadlines are exact").
    /// The sweep uses the same test, so the two never disagree about an order.
    pub fn deadline_reached(&self, clock: u64) -> bool {
        self.status == OrderStatus::Reserved && self.expires_ms <= clock
    }

    /// The order as a read at cluster clock `clock` must show it: a reservation whose
    /// deadline has been reached shows `expired` as of its deadline, before the sweep has
    /// released its units.
    pub fn as_of(self, clock: u64) -> Order {
        if self.deadline_reached(clock) {
            Order {
                status: OrderStatus::Expired,
                updated_ms: self.expires_ms,
                ..self
            }
        } else {
            self
        }
    }

    /// The order as its payment left it: what the paying request answered.
    pub fn as_paid(&self) -> Option<Order> {
        let paid = self.paid.as_ref()?;
        Some(Order {
            status: OrderStatus::Paid,
            updated_ms: paid.at_ms,
            revision: paid.revision,
            ..self.clone()
        })
    }
}

/// Validates an optional `per_user_limit`.
pub fn check_optional_limit(value: Option<u64>) -> Result<Option<u64>, ValidationError> {
    value.map(|v| check_limit("per_user_limit", v)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(sku: &str, qty: u64) -> Item {
        Item {
            sku: SkuId::new(sku).unwrap(),
            qty: Qty::new(qty).unwrap(),
        }
    }

    #[test]
    fn items_reject_empty_too_many_and_duplicates() {
        assert_eq!(Items::new(vec![]).unwrap_err().field, "items");
        let many = (0..65).map(|i| item(&format!("s{i}"), 1)).collect();
        assert_eq!(Items::new(many).unwrap_err().field, "items");
        let dup = vec![item("a", 1), item("b", 1), item("a", 2)];
        assert_eq!(Items::new(dup).unwrap_err().field, "items[2].sku");
    }

    #[test]
    fn same_content_ignores_line_order_but_not_quantities() {
        let a = Items::new(vec![item("a", 1), item("b", 2)]).unwrap();
        let b = Items::new(vec![item("b", 2), item("a", 1)]).unwrap();
        let c = Items::new(vec![item("b", 3), item("a", 1)]).unwrap();
        assert!(a.same_content(&b));
        assert!(!a.same_content(&c));
    }

    #[test]
    fn sale_window_is_half_open_and_ordered() {
        assert!(SaleWindow::new(5, 5).is_err());
        let w = SaleWindow::new(5, 10).unwrap();
        assert!(!w.contains(4));
        assert!(w.contains(5));
        assert!(w.contains(9));
        assert!(!w.contains(10));
    }
}
