//! The body of `POST /v1/orders/batch`: `{"orders": [...]}` with 1–1,000 entries, each an
//! order as `POST /v1/orders` takes it.
//!
//! The outer shape is all or nothing: a body that is not such an object is one `400` for the
//! whole request. Each entry is decoded on its own, so a bad entry becomes that entry's own
//! `400`, its field named from the batch's root (`orders[7].items[0].qty`), and the other
//! entries are still judged. Entries stay slices of the body until then, so a valid batch is
//! decoded straight from its bytes, once. Nothing here talks to the cluster.

use serde::Deserialize;
use serde_json::value::RawValue;
use state_machine::ValidationError;
use utoipa::ToSchema;

use crate::body::{decode, DecodeError};
use crate::error::ApiError;
use crate::requests::PlaceOrderBody;

/// Most orders in one batch (API.md). A batch becomes one `Submit`, so this bounds that
/// `Submit` too, at about the size of the batcher's own (1,024 commands).
pub const MAX_BATCH_ORDERS: usize = 1_000;
/// Largest batch body (API.md): 1,000 orders of about a kilobyte each.
pub const MAX_BATCH_BODY_BYTES: usize = 1_048_576;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "a JSON object with orders")]
#[schema(as = PlaceOrderBatch)]
pub struct BatchBody<'a> {
    #[serde(borrow)]
    #[schema(value_type = Vec<PlaceOrderBody>, min_items = 1, max_items = 1000)]
    orders: Vec<&'a RawValue>,
}

/// One entry of a batch: its order, or the error that is its result.
pub type Entry = Result<PlaceOrderBody, ValidationError>;

/// The batch's entries in request order, or the `400` of a body that is not a batch.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Entry>, ApiError> {
    let body: BatchBody = decode(bytes)?;
    let n = body.orders.len();
    if !(1..=MAX_BATCH_ORDERS).contains(&n) {
        return Err(ApiError::invalid_field(
            "orders",
            format!("must hold 1 to {MAX_BATCH_ORDERS} orders, got {n}"),
        ));
    }
    Ok(body
        .orders
        .iter()
        .enumerate()
        .map(|(i, raw)| decode(raw.get().as_bytes()).map_err(|e| in_entry(i, shape_of(e))))
        .collect())
}

/// An entry came out of a well-formed body, so it cannot be malformed itself; were it so,
/// it is still only that entry's error.
fn shape_of(e: DecodeError) -> ValidationError {
    match e {
        DecodeError::Shape(e) => e,
        DecodeError::Malformed(message) => ValidationError::new("", message),
    }
}

/// `e` of entry `i`, its field named from the batch's root: `items[0].qty` becomes
/// `orders[7].items[0].qty`, and an error of the whole entry names `orders[7]`.
pub fn in_entry(i: usize, e: ValidationError) -> ValidationError {
    let field = if e.field.is_empty() {
        format!("orders[{i}]")
    } else {
        format!("orders[{i}].{}", e.field)
    };
    ValidationError::new(field, e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(sku: &str, qty: u64) -> String {
        format!(r#"{{"user_id": "u", "items": [{{"sku": "{sku}", "qty": {qty}}}]}}"#)
    }

    fn batch(entries: &[String]) -> String {
        format!(r#"{{"orders": [{}]}}"#, entries.join(","))
    }

    #[test]
    fn each_entry_is_decoded_and_named_on_its_own() {
        let body = batch(&[
            order("a", 1),
            r#"{"user_id": "u", "items": [{"sku": "a"}]}"#.into(),
            "5".into(),
            r#"{"user_id": "u", "items": [], "coupon": 1}"#.into(),
            order("b", 2),
        ]);
        let entries = decode_batch(body.as_bytes()).unwrap();
        assert_eq!(entries.len(), 5);
        assert_eq!(entries[0].as_ref().unwrap().items[0].sku, "a");
        let field = |i: usize| entries[i].as_ref().unwrap_err().field.clone();
        assert_eq!(field(1), "orders[1].items[0].qty");
        assert_eq!(field(2), "orders[2]");
        assert_eq!(field(3), "orders[3].coupon");
        assert_eq!(entries[4].as_ref().unwrap().items[0].qty, 2);
    }

    #[test]
    fn a_body_that_is_not_a_batch_is_refused_whole() {
        let orders = |n: usize| batch(&vec![order("a", 1); n]);
        for (body, field) in [
            (orders(0), Some("orders")),
            (orders(MAX_BATCH_ORDERS + 1), Some("orders")),
            ("{}".into(), Some("orders")),
            (r#"{"orders": 5}"#.into(), Some("orders")),
            (
                format!(r#"{{"orders": [{}], "x": 1}}"#, order("a", 1)),
                Some("x"),
            ),
            ("[]".into(), None),
            (r#"{"orders": ["#.into(), None),
        ] {
            let err = decode_batch(body.as_bytes()).unwrap_err();
            assert_eq!(err.code(), "invalid_request", "{body}");
            assert_eq!(err.field(), field, "{body}");
        }
        assert_eq!(
            decode_batch(orders(MAX_BATCH_ORDERS).as_bytes())
                .unwrap()
                .len(),
            MAX_BATCH_ORDERS
        );
    }
}
