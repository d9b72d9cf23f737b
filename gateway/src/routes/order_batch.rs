//! `POST /v1/orders/batch`: many orders in one request, each judged as if it had been sent
//! alone to `POST /v1/orders`, in request order.
//!
//! The valid orders travel to the leader as one `Submit`, not through the batcher: the
//! batcher may split a caller's commands over several `Submit`s and put other requests'
//! commands between them, but a batch must be applied in request order with nothing in
//! between, so that a later order of it sees the earlier ones (a repeated `order_id` is a
//! replay of the first). The `Submit` is retried whole, with the same bytes, until the
//! deadline: either every order is judged, or the request answers `503`.
//!
//! Admission control counts the batch as one request (one permit), however many orders it
//! carries: the bound is on requests in flight, and a batch is one `Submit` in flight.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use state_machine::Order;

use super::orders::fresh_ids;
use super::{json, order_result, submit_together, OnApplied, Shared};
use crate::body::RawJsonBody;
use crate::error::ApiError;
use crate::order_batch::{decode_batch, in_entry, MAX_BATCH_BODY_BYTES};
use crate::views::BatchView;

pub async fn place(
    State(state): State<Shared>,
    RawJsonBody(bytes): RawJsonBody<MAX_BATCH_BODY_BYTES>,
) -> Result<Response, ApiError> {
    let entries = decode_batch(&bytes)?;
    let mut commands = Vec::with_capacity(entries.len());
    // Per entry: `None` for an order that goes to the cluster (its outcome comes back in
    // the same order as `commands`), or the error that is already its result.
    let mut refused = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let command = match entry {
            Ok(body) => {
                let (generated, tag) = fresh_ids(&body);
                body.into_command(generated, tag)
                    .map_err(|e| in_entry(i, e))
            }
            Err(e) => Err(e),
        };
        match command {
            Ok(command) => {
                commands.push(command);
                refused.push(None);
            }
            Err(e) => refused.push(Some(ApiError::from(e))),
        }
    }
    let outcomes = if commands.is_empty() {
        Vec::new()
    } else {
        submit_together(&state, &commands).await?
    };
    let mut outcomes = outcomes.into_iter();
    let mut results: Vec<Result<(StatusCode, Order), ApiError>> = Vec::with_capacity(refused.len());
    for entry in refused {
        results.push(match entry {
            Some(err) => Err(err),
            None => {
                // `submit_together` checked there is one outcome per command.
                let outcome = outcomes
                    .next()
                    .ok_or_else(|| ApiError::internal("an order of the batch got no outcome"))?;
                order_result(outcome, OnApplied::Created)
            }
        });
    }
    Ok(json(StatusCode::OK, BatchView::new(&results)))
}
