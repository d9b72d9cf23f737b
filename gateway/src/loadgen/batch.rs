//! The batch mode of a sustained run: each request is `POST /v1/orders/batch` carrying many
//! orders, and what is counted is each order's own result, read from the answer's
//! `results`, besides the request's status.

use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{Answer, ClientError};
use super::stats::Outcome;

/// Most orders API.md lets one batch carry: the gateway's own limit.
pub use crate::order_batch::MAX_BATCH_ORDERS;

/// The body of a batch request.
pub fn batch_body(orders: impl IntoIterator<Item = Value>) -> Value {
    json!({ "orders": orders.into_iter().collect::<Vec<_>>() })
}

/// The parts of a batch's answer counted here; the orders themselves are skipped unread.
#[derive(Deserialize)]
struct BatchAnswer {
    results: Vec<OrderResult>,
}

#[derive(Deserialize)]
struct OrderResult {
    status: u16,
    #[serde(default)]
    error: Option<ErrorCode>,
}

#[derive(Deserialize)]
struct ErrorCode {
    code: String,
}

/// What each of the `orders` orders of a batch request came to, in request order.
///
/// A `200` judged every order: each has its own status and code. Any other answer judged
/// none of them (a `503` may have applied some: API.md leaves them unknown), so each order
/// counts as that answer, as it would had it been sent alone; so does a failure without an
/// answer. A `200` without one result per order is `Unreadable` for each.
pub fn order_outcomes(result: &Result<Answer, ClientError>, orders: usize) -> Vec<Outcome> {
    let answer = match result {
        Ok(answer) if answer.status == 200 => answer,
        other => return vec![Outcome::of(other); orders],
    };
    match serde_json::from_slice::<BatchAnswer>(&answer.body) {
        Ok(batch) if batch.results.len() == orders => batch
            .results
            .into_iter()
            .map(|r| Outcome::Status {
                status: r.status,
                code: r.error.map(|e| e.code),
            })
            .collect(),
        _ => vec![Outcome::Unreadable; orders],
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use hyper::body::Bytes;

    use super::*;

    fn answer(status: u16, body: Value) -> Result<Answer, ClientError> {
        let sent = Instant::now();
        Ok(Answer {
            status,
            body: Bytes::from(body.to_string()),
            sent,
            answered: sent,
        })
    }

    #[test]
    fn each_order_of_a_judged_batch_has_its_own_outcome() {
        let body = json!({"results": [
            {"status": 201, "order": {"order_id": "o-1"}},
            {"status": 200, "order": {"order_id": "o-1"}},
            {"status": 409, "error": {"code": "out_of_stock", "message": "m", "sku": "A1"}},
            {"status": 400, "error": {"code": "invalid_request", "message": "m"}},
        ]});
        assert_eq!(
            order_outcomes(&answer(200, body), 4),
            [
                Outcome::status(201, None),
                Outcome::status(200, None),
                Outcome::status(409, Some("out_of_stock")),
                Outcome::status(400, Some("invalid_request")),
            ]
        );
    }

    #[test]
    fn a_batch_answered_otherwise_counts_as_that_answer_for_each_order() {
        let unavailable = json!({"error": {"code": "unavailable", "message": "m"}});
        assert_eq!(
            order_outcomes(&answer(503, unavailable), 3),
            vec![Outcome::status(503, Some("unavailable")); 3]
        );
        let timeout = Err(ClientError::Timeout(Duration::from_secs(1)));
        assert_eq!(
            order_outcomes(&timeout, 2),
            vec![Outcome::NoAnswer("timeout"); 2]
        );
        let short = json!({"results": [{"status": 201, "order": {}}]});
        assert_eq!(
            order_outcomes(&answer(200, short), 2),
            vec![Outcome::Unreadable; 2]
        );
        assert_eq!(
            order_outcomes(&answer(200, json!({"orders": []})), 1),
            vec![Outcome::Unreadable]
        );
    }

    #[test]
    fn the_body_carries_the_orders_in_order() {
        let body = batch_body((0..3).map(|n| json!({ "order_id": format!("o-{n}") })));
        assert_eq!(
            body,
            json!({"orders": [{"order_id": "o-0"}, {"order_id": "o-1"}, {"order_id": "o-2"}]})
        );
    }
}
