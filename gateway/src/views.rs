//! The JSON shapes of successful answers: the SKU body, the order body, the list pages and an
//! order batch's results, exactly the fields API.md lists. Optional settings
//! (`per_user_limit`, `sale_window`, `payment_ref`) are always present, `null` when unset.
//!
//! Views borrow the state machine's records; they never add or compute state of their own.

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};
use state_machine::{Event, EventSubject, Order, SaleWindow, SalesBucket, Sku, SALES_BUCKET_MS};
use utoipa::ToSchema;

use crate::error::ApiError;

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Sku)]
pub struct SkuView<'a> {
    pub sku: &'a str,
    pub total: u64,
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
    pub refunded: u64,
    #[schema(required = true)]
    pub per_user_limit: Option<u64>,
    #[schema(required = true)]
    pub sale_window: Option<SaleWindowView>,
    pub revision: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SaleWindow)]
pub struct SaleWindowView {
    pub start_ms: u64,
    pub end_ms: u64,
}

impl From<&SaleWindow> for SaleWindowView {
    fn from(w: &SaleWindow) -> Self {
        Self {
            start_ms: w.start_ms,
            end_ms: w.end_ms,
        }
    }
}

impl<'a> From<&'a Sku> for SkuView<'a> {
    fn from(s: &'a Sku) -> Self {
        Self {
            sku: s.sku.as_str(),
            total: s.total,
            available: s.available,
            reserved: s.reserved,
            sold: s.sold,
            refunded: s.refunded,
            per_user_limit: s.per_user_limit,
            sale_window: s.sale_window.as_ref().map(SaleWindowView::from),
            revision: s.revision,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Item)]
pub struct ItemView<'a> {
    pub sku: &'a str,
    pub qty: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Order)]
pub struct OrderView<'a> {
    pub order_id: &'a str,
    pub user_id: &'a str,
    pub items: Vec<ItemView<'a>>,
    #[schema(schema_with = crate::openapi::field_schemas::order_status)]
    pub status: &'static str,
    pub created_ms: u64,
    pub expires_ms: u64,
    pub updated_ms: u64,
    #[schema(required = true)]
    pub payment_ref: Option<&'a str>,
    pub revision: u64,
}

impl<'a> From<&'a Order> for OrderView<'a> {
    fn from(o: &'a Order) -> Self {
        Self {
            order_id: o.order_id.as_str(),
            user_id: o.user_id.as_str(),
            items: o
                .items
                .as_slice()
                .iter()
                .map(|i| ItemView {
                    sku: i.sku.as_str(),
                    qty: i.qty.get(),
                })
                .collect(),
            status: o.status.as_str(),
            created_ms: o.created_ms,
            expires_ms: o.expires_ms,
            updated_ms: o.updated_ms,
            payment_ref: o.payment_ref.as_ref().map(|p| p.as_str()),
            revision: o.revision,
        }
    }
}

/// `GET /v1/skus`: one page and the cursor of the next (`null` at the end).
#[derive(Debug, Serialize, ToSchema)]
pub struct SkuPage<'a> {
    pub skus: Vec<SkuView<'a>>,
    #[schema(required = true)]
    pub next: Option<&'a str>,
}

/// `GET /v1/orders?user_id=`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderList<'a> {
    pub orders: Vec<OrderView<'a>>,
}

/// One event of the feed: the record as the event left it, under `order` or `sku`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Event)]
pub struct EventView<'a> {
    pub id: u64,
    #[serde(rename = "type")]
    #[schema(schema_with = crate::openapi::field_schemas::event_type)]
    pub kind: &'static str,
    pub time_ms: u64,
    pub revision: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub order: Option<OrderView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub sku: Option<SkuView<'a>>,
}

impl<'a> From<&'a Event> for EventView<'a> {
    fn from(e: &'a Event) -> Self {
        let (order, sku) = match &e.subject {
            EventSubject::Order(o) => (Some(OrderView::from(o)), None),
            EventSubject::Sku(s) => (None, Some(SkuView::from(s))),
        };
        Self {
            id: e.id,
            kind: e.kind.as_str(),
            time_ms: e.time_ms,
            revision: e.revision,
            order,
            sku,
        }
    }
}

/// `GET /v1/events`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EventPage)]
pub struct EventPageView<'a> {
    pub events: Vec<EventView<'a>>,
    pub next: u64,
    pub head: u64,
}

/// `GET /v1/skus/{sku}/sales`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Sales)]
pub struct SalesView<'a> {
    pub sku: &'a str,
    pub bucket_ms: u64,
    pub buckets: Vec<BucketView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SalesBucket)]
pub struct BucketView {
    pub start_ms: u64,
    pub reserved: u64,
    pub paid: u64,
    pub cancelled: u64,
    pub expired: u64,
    pub refunded: u64,
}

impl<'a> SalesView<'a> {
    pub fn new(sku: &'a str, buckets: &[SalesBucket]) -> Self {
        Self {
            sku,
            bucket_ms: SALES_BUCKET_MS,
            buckets: buckets
                .iter()
                .map(|b| BucketView {
                    start_ms: b.start_ms,
                    reserved: b.counts.reserved,
                    paid: b.counts.paid,
                    cancelled: b.counts.cancelled,
                    expired: b.counts.expired,
                    refunded: b.counts.refunded,
                })
                .collect(),
        }
    }
}

/// `POST /v1/orders/batch`: one result per order, in request order.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = BatchResults)]
pub struct BatchView<'a> {
    pub results: Vec<BatchResultView<'a>>,
}

/// One order of a batch: the status and body `POST /v1/orders` would have answered for it
/// alone, the body as `order` or as `error`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = BatchResult)]
pub enum BatchResultView<'a> {
    Order {
        status: u16,
        order: OrderView<'a>,
    },
    Error {
        status: u16,
        #[schema(schema_with = crate::openapi::field_schemas::error_detail_ref)]
        error: Map<String, Value>,
    },
}

impl<'a> BatchView<'a> {
    pub fn new(results: &'a [Result<(StatusCode, Order), ApiError>]) -> Self {
        let results = results
            .iter()
            .map(|result| match result {
                Ok((status, order)) => BatchResultView::Order {
                    status: status.as_u16(),
                    order: OrderView::from(order),
                },
                Err(e) => BatchResultView::Error {
                    status: e.status().as_u16(),
                    error: e.body(),
                },
            })
            .collect();
        Self { results }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use state_machine::{Item, Items, OrderId, OrderStatus, Qty, SkuCreation, SkuId, UserId};

    #[test]
    fn sku_body_has_exactly_the_api_fields_with_nulls() {
        let sku = Sku {
            sku: SkuId::new("A1").unwrap(),
            total: 10,
            available: 7,
            reserved: 2,
            sold: 1,
            refunded: 0,
            per_user_limit: None,
            sale_window: None,
            revision: 4,
            created: SkuCreation {
                stock: 10,
                per_user_limit: None,
                sale_window: None,
            },
            // Internal: must not show in the body.
            request_tag: 99,
            created_revision: 1,
        };
        assert_eq!(
            serde_json::to_value(SkuView::from(&sku)).unwrap(),
            json!({"sku": "A1", "total": 10, "available": 7, "reserved": 2, "sold": 1,
                   "refunded": 0, "per_user_limit": null, "sale_window": null, "revision": 4})
        );
    }

    #[test]
    fn order_body_has_exactly_the_api_fields() {
        let order = Order {
            order_id: OrderId::new("o-1").unwrap(),
            user_id: UserId::new("u-9").unwrap(),
            items: Items::new(vec![Item {
                sku: SkuId::new("A1").unwrap(),
                qty: Qty::new(2).unwrap(),
            }])
            .unwrap(),
            status: OrderStatus::Reserved,
            created_ms: 1,
            expires_ms: 900_001,
            updated_ms: 1,
            payment_ref: None,
            revision: 7,
            request_tag: 99,
            paid: None,
        };
        assert_eq!(
            serde_json::to_value(OrderView::from(&order)).unwrap(),
            json!({"order_id": "o-1", "user_id": "u-9", "items": [{"sku": "A1", "qty": 2}],
                   "status": "reserved", "created_ms": 1, "expires_ms": 900001,
                   "updated_ms": 1, "payment_ref": null, "revision": 7})
        );
    }
}
