//! `/v1/orders`: place, pay, cancel, refund, get and list orders.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use state_machine::{Command, Order, OrderId, RequestTag};

use super::extract::OrderPath;
use super::{json, order_answer, submit, OnApplied, Shared};
use crate::body::{JsonBody, OptionalJsonBody};
use crate::cluster::Read;
use crate::error::ApiError;
use crate::ids::{new_order_id, new_request_tag};
use crate::requests::{CancelBody, ListOrdersQuery, PayBody, PlaceOrderBody, RefundBody};
use crate::views::{OrderList, OrderView};

pub async fn place(
    State(state): State<Shared>,
    JsonBody(body): JsonBody<PlaceOrderBody>,
) -> Result<Response, ApiError> {
    let (generated, tag) = fresh_ids(&body);
    let command = body.into_command(generated, tag)?;
    order_answer(submit(&state, &command).await?, OnApplied::Created)
}

/// The order id the gateway makes when the body has none, and the order's request tag.
/// Made once, before the first attempt: every retry re-sends the same command, so a
/// reservation that "may have been applied" is replayed, never doubled, and is still
/// answered 201 when it was this request's first attempt that made it.
pub(super) fn fresh_ids(body: &PlaceOrderBody) -> (Option<OrderId>, RequestTag) {
    let generated = body.order_id.is_none().then(new_order_id);
    (generated, new_request_tag())
}

pub async fn pay(
    State(state): State<Shared>,
    OrderPath(order_id): OrderPath,
    OptionalJsonBody(body): OptionalJsonBody<PayBody>,
) -> Result<Response, ApiError> {
    let tag = new_request_tag();
    let command = body.unwrap_or_default().into_command(order_id, tag)?;
    order_answer(submit(&state, &command).await?, OnApplied::Ok)
}

pub async fn cancel(
    State(state): State<Shared>,
    OrderPath(order_id): OrderPath,
    // Only an empty object or no body: any field is unknown.
    OptionalJsonBody(_body): OptionalJsonBody<CancelBody>,
) -> Result<Response, ApiError> {
    let command = Command::Cancel { order_id };
    order_answer(submit(&state, &command).await?, OnApplied::Ok)
}

pub async fn refund(
    State(state): State<Shared>,
    OrderPath(order_id): OrderPath,
    OptionalJsonBody(body): OptionalJsonBody<RefundBody>,
) -> Result<Response, ApiError> {
    let command = body.unwrap_or_default().into_command(order_id)?;
    order_answer(submit(&state, &command).await?, OnApplied::Ok)
}

pub async fn get(
    State(state): State<Shared>,
    OrderPath(order_id): OrderPath,
) -> Result<Response, ApiError> {
    read(&state, order_id).await
}

/// `GET /v1/orders/batch`: the batch route's path hides `{order_id}` for this one id, yet
/// `batch` is a valid order id, so reading it must still work.
pub async fn get_the_order_named_batch(State(state): State<Shared>) -> Result<Response, ApiError> {
    let order_id = OrderId::new("batch").expect("\"batch\" follows the identifier rule");
    read(&state, order_id).await
}

async fn read(state: &Shared, order_id: OrderId) -> Result<Response, ApiError> {
    let found: Option<Order> = state
        .cluster
        .read(
            Read::Order(order_id.as_str().to_owned()),
            state.cluster.deadline(),
        )
        .await?;
    match found {
        Some(order) => Ok(json(StatusCode::OK, OrderView::from(&order))),
        None => Err(ApiError::order_not_found(order_id.as_str())),
    }
}

pub async fn list(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = ListOrdersQuery::parse(query.as_deref())?;
    let read = Read::Orders {
        user_id: query.user_id.into_string(),
        limit: query.limit,
    };
    let orders: Vec<Order> = state.cluster.read(read, state.cluster.deadline()).await?;
    Ok(json(
        StatusCode::OK,
        OrderList {
            orders: orders.iter().map(OrderView::from).collect(),
        },
    ))
}
