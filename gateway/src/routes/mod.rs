//! The HTTP surface: the route table, the shared state handlers see, the middleware that
//! counts requests and applies admission control, and the answers for unknown routes (404)
//! and known routes with a method they do not take (405).
//!
//! Handlers live in one module per resource; none of them keeps state between requests.

mod events;
mod extract;
mod ops;
mod order_batch;
mod orders;
pub mod paths;
mod skus;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cluster_config::logging::REQUESTS;
use serde::Serialize;
use state_machine::{Command, Effect, Order, Outcome};
use tracing::Instrument;

use crate::admission::Admission;
use crate::cluster::{Batcher, Cluster};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::views::{OrderView, SkuView};
use paths::admission_applies;

/// What every handler shares.
pub struct AppState {
    pub cluster: Arc<Cluster>,
    pub batcher: Batcher,
    pub admission: Admission,
    pub metrics: Arc<Metrics>,
    pub tokens: Arc<crate::auth::Tokens>,
    /// How long a request body may take to arrive (`body_timeout_ms`).
    pub body_timeout: std::time::Duration,
}

pub type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    use paths::*;
    Router::new()
        .route(SKUS, post(skus::create).get(skus::list))
        .route(SKU, get(skus::get).patch(skus::patch))
        .route(RESTOCK, post(skus::restock))
        .route(SALES, get(skus::sales))
        .route(EVENTS, get(events::list))
        .route(EVENT_STREAM, get(events::stream))
        .route(ORDERS, post(orders::place).get(orders::list))
        .route(
            ORDER_BATCH,
            post(order_batch::place).get(orders::get_the_order_named_batch),
        )
        .route(ORDER, get(orders::get))
        .route(PAY, post(orders::pay))
        .route(CANCEL, post(orders::cancel))
        .route(REFUND, post(orders::refund))
        .route(CLUSTER, get(ops::cluster))
        .route(HEALTHZ, get(ops::healthz))
        .route(READYZ, get(ops::readyz))
        .route(METRICS, get(ops::metrics))
        .route(OPENAPI, get(ops::openapi))
        .merge(crate::ui::routes())
        // Must come after every route: it replaces each route's default 405 answer.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        // Runs after routing, so `MatchedPath` names the route; and for the fallbacks too.
        .layer(middleware::from_fn_with_state(state.clone(), edge))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found_route()
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// `route` label: the matched pattern, never a raw path with ids in it (unbounded labels).
fn route_label(matched: Option<&MatchedPath>) -> &'static str {
    matched
        .and_then(|m| (paths::ALL.iter().chain(&crate::ui::PATHS)).find(|p| **p == m.as_str()))
        .copied()
        .unwrap_or("unmatched")
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// What every request passes before its handler, as one layer: each axum layer costs a
/// cloned and boxed service and a boxed future per request, and at flash-sale rates four
/// of them were a tenth of the gateway's CPU (perf). In order, outermost first:
/// 1. the request id (`request_id`), so every answer carries it, the 401s, 404s and 429s
///    below too;
/// 2. timing and counting (`observe`), so those answers are counted;
/// 3. bearer tokens (`auth`): 401 or 403 before the body is read or a slot taken;
/// 4. admission control (`admit`).
async fn edge(State(state): State<Shared>, req: Request, next: Next) -> Response {
    crate::request_id::with_id(req, |req| observe(state, req, next)).await
}

/// Times and counts each request, in a span that carries its request id, so
/// `RUST_LOG=info` shows one request's path and answer.
async fn observe(state: Shared, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_label(req.extensions().get::<MatchedPath>());
    let method = method_label(req.method());
    let span = tracing::info_span!(
        target: REQUESTS,
        "request",
        request_id = req
            .headers()
            .get(&crate::request_id::HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
        method,
        route
    );
    let response = authorised(&state, req, next).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    span.in_scope(|| tracing::info!(target: REQUESTS, status, ?elapsed, "answered"));
    state
        .metrics
        .observe_request(route, method, status, elapsed);
    response
}

async fn authorised(state: &AppState, req: Request, next: Next) -> Response {
    match state.tokens.check(&req) {
        Ok(()) => admit(state, req, next).await,
        Err(e) => e.into_response(),
    }
}

/// Admission control for the API routes (see `admission_applies`).
///
/// The body is read first, within the body timeout: a slot is for work on the cluster, and a
/// client sending its body slowly (or never) must not hold one while it does.
async fn admit(state: &AppState, req: Request, next: Next) -> Response {
    let route = match req.extensions().get::<MatchedPath>() {
        Some(m) if admission_applies(m.as_str()) => m.as_str(),
        _ => return next.run(req).await,
    };
    let limit = if route == paths::ORDER_BATCH {
        crate::order_batch::MAX_BATCH_BODY_BYTES
    } else {
        crate::body::MAX_BODY_BYTES
    };
    let req = match crate::body::buffer(req, limit, state.body_timeout).await {
        Ok(req) => req,
        Err(e) => return e.into_response(),
    };
    match state.admission.admit() {
        Ok(_permit) => next.run(req).await,
        Err(refused) => refused.into_response(),
    }
}

/// Proposes one command through the batcher, in a span that names the order it concerns.
async fn submit(state: &AppState, command: &Command) -> Result<Outcome, ApiError> {
    let span = match command.order_id() {
        Some(id) => tracing::info_span!(target: REQUESTS, "submit", order_id = %id),
        None => tracing::info_span!(target: REQUESTS, "submit"),
    };
    let outcome = state
        .batcher
        .submit(command, state.cluster.deadline())
        .instrument(span.clone())
        .await?;
    span.in_scope(|| match &outcome {
        Outcome::Order { order, effect } => {
            tracing::info!(target: REQUESTS, revision = order.revision, ?effect, "submitted")
        }
        Outcome::Refused(refusal) => tracing::info!(target: REQUESTS, %refusal, "submitted"),
        _ => tracing::info!(target: REQUESTS, "submitted"),
    });
    Ok(outcome)
}

/// Proposes commands as one `Submit`, applied together in this order (see
/// `Cluster::submit_together`), in a span that says how many.
async fn submit_together(state: &AppState, commands: &[Command]) -> Result<Vec<Outcome>, ApiError> {
    let span = tracing::info_span!(target: REQUESTS, "submit_together", commands = commands.len());
    let outcomes = state
        .cluster
        .submit_together(commands, state.cluster.deadline())
        .instrument(span)
        .await?;
    Ok(outcomes)
}

fn json<T: Serialize>(status: StatusCode, body: T) -> Response {
    (status, Json(body)).into_response()
}

/// What a successful outcome's status is.
#[derive(Clone, Copy)]
enum OnApplied {
    /// Creation routes: `201` when applied, `200` for an idempotent replay.
    Created,
    Ok,
}

fn status_for(effect: Effect, on_applied: OnApplied) -> StatusCode {
    match (effect, on_applied) {
        (Effect::Applied, OnApplied::Created) => StatusCode::CREATED,
        _ => StatusCode::OK,
    }
}

/// The answer to a SKU command.
fn sku_answer(outcome: Outcome, on_applied: OnApplied) -> Result<Response, ApiError> {
    match outcome {
        Outcome::Sku { sku, effect } => {
            Ok(json(status_for(effect, on_applied), SkuView::from(&sku)))
        }
        Outcome::Refused(refusal) => Err(ApiError::from_refusal(&refusal)),
        other => Err(unexpected(&other)),
    }
}

/// The answer to an order command.
fn order_answer(outcome: Outcome, on_applied: OnApplied) -> Result<Response, ApiError> {
    let (status, order) = order_result(outcome, on_applied)?;
    Ok(json(status, OrderView::from(&order)))
}

/// The status and order, or the error, that an order command's outcome answers: for a single
/// order and for each order of a batch alike, so the two cannot drift apart.
fn order_result(outcome: Outcome, on_applied: OnApplied) -> Result<(StatusCode, Order), ApiError> {
    match outcome {
        Outcome::Order { order, effect } => Ok((status_for(effect, on_applied), order)),
        Outcome::Refused(refusal) => Err(ApiError::from_refusal(&refusal)),
        other => Err(unexpected(&other)),
    }
}

fn unexpected(outcome: &Outcome) -> ApiError {
    tracing::error!(
        ?outcome,
        "the cluster answered an outcome of the wrong kind"
    );
    ApiError::internal("the cluster answered an outcome of the wrong kind")
}
