//! The route patterns, and which of them admission control applies to. The router's table,
//! the `route` metric label and the OpenAPI document all come from here, so a label is always
//! a pattern the router knows. A leaf: the router and the document both read it, and it reads
//! neither.

pub const SKUS: &str = "/v1/skus";
pub const SKU: &str = "/v1/skus/{sku}";
pub const RESTOCK: &str = "/v1/skus/{sku}/restock";
pub const SALES: &str = "/v1/skus/{sku}/sales";
pub const EVENTS: &str = "/v1/events";
pub const EVENT_STREAM: &str = "/v1/events/stream";
pub const ORDERS: &str = "/v1/orders";
pub const ORDER_BATCH: &str = "/v1/orders/batch";
pub const ORDER: &str = "/v1/orders/{order_id}";
pub const PAY: &str = "/v1/orders/{order_id}/pay";
pub const CANCEL: &str = "/v1/orders/{order_id}/cancel";
pub const REFUND: &str = "/v1/orders/{order_id}/refund";
pub const CLUSTER: &str = "/v1/cluster";
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";
pub const OPENAPI: &str = "/openapi.json";

pub const ALL: [&str; 17] = [
    SKUS,
    SKU,
    RESTOCK,
    SALES,
    EVENTS,
    EVENT_STREAM,
    ORDERS,
    ORDER_BATCH,
    ORDER,
    PAY,
    CANCEL,
    REFUND,
    CLUSTER,
    HEALTHZ,
    READYZ,
    METRICS,
    OPENAPI,
];

/// Whether admission control applies to a route: operations endpoints (`/healthz`,
/// `/readyz`, `/metrics`, `/openapi.json`) must answer even when the gateway is saturated.
pub fn admission_applies(path: &str) -> bool {
    path.starts_with("/v1/")
}
