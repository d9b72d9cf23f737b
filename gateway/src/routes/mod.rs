//! The HTTP surface: the route table, the shared state handlers see, the middleware that
//! counts requests and applies admission control, and the answers for unknown routes (404)
//! and known routes with a method they do not take (405).
//!
//! Handlers live in one module per resource; none of them keeps state between requests.

mod extract;
mod ops;
mod orders;
mod skus;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use state_machine::{Command, Effect, Outcome};
use tracing::Instrument;

use crate::admission::Admission;
use crate::cluster::{Batcher, Cluster};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::views::{OrderView, SkuView};

/// What every handler shares.
pub struct AppState {
    pub cluster: Arc<Cluster>,
    pub batcher: Batcher,
    pub admission: Admission,
    pub metrics: Arc<Metrics>,
}

pub type Shared = Arc<AppState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/v1/skus", post(skus::create).get(skus::list))
        .route("/v1/skus/{sku}", get(skus::get).patch(skus::patch))
        .route("/v1/skus/{sku}/restock", post(skus::restock))
        .route("/v1/orders", post(orders::place).get(orders::list))
        .route("/v1/orders/{order_id}", get(orders::get))
        .route("/v1/orders/{order_id}/pay", post(orders::pay))
        .route("/v1/orders/{order_id}/cancel", post(orders::cancel))
        .route("/v1/orders/{order_id}/refund", post(orders::refund))
        .route("/v1/cluster", get(ops::cluster))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        // Must come after every route: it replaces each route's default 405 answer.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        // Layers run after routing, so `MatchedPath` names the route. Admission is inside
        // the metrics layer so that 429s are counted too.
        .layer(middleware::from_fn_with_state(state.clone(), admit))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found_route()
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// `route` label: the method and the route pattern, never raw path ids (unbounded labels).
fn route_label(method: &Method, matched: Option<&MatchedPath>) -> String {
    let method = match *method {
        Method::GET
        | Method::POST
        | Method::PATCH
        | Method::PUT
        | Method::DELETE
        | Method::HEAD
        | Method::OPTIONS => method.as_str(),
        _ => "OTHER",
    };
    match matched {
        Some(path) => format!("{method} {}", path.as_str()),
        None => "unmatched".to_owned(),
    }
}

async fn observe(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_label(req.method(), req.extensions().get::<MatchedPath>());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    tracing::debug!(%route, status, ?elapsed, "answered");
    state.metrics.observe_request(&route, status, elapsed);
    response
}

/// Admission control for the API routes: operations endpoints (`/healthz`, `/readyz`,
/// `/metrics`) must answer even when the gateway is saturated.
async fn admit(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let is_api =
        req.uri().path().starts_with("/v1/") && req.extensions().get::<MatchedPath>().is_some();
    if !is_api {
        return next.run(req).await;
    }
    match state.admission.admit() {
        Ok(_permit) => next.run(req).await,
        Err(refused) => refused.into_response(),
    }
}

/// Proposes one command through the batcher, in a span that names the order it concerns.
async fn submit(state: &AppState, command: &Command) -> Result<Outcome, ApiError> {
    let span = match command.order_id() {
        Some(id) => tracing::info_span!("submit", order_id = %id),
        None => tracing::info_span!("submit"),
    };
    let outcome = state
        .batcher
        .submit(command, state.cluster.deadline())
        .instrument(span)
        .await?;
    Ok(outcome)
}

/// The OS refused the gateway random bits for an id or a tag.
fn no_randomness(e: getrandom::Error) -> ApiError {
    ApiError::internal(format!("no randomness for an id: {e}"))
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
    match outcome {
        Outcome::Order { order, effect } => Ok(json(
            status_for(effect, on_applied),
            OrderView::from(&order),
        )),
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
