//! Operations endpoints: liveness, readiness, metrics, the API's OpenAPI document and the
//! cluster view.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use state_machine::Sku;

use super::{json, Shared};
use crate::cluster::Read;
use crate::error::ApiError;

/// API.md: ready while a leader answered within the last second.
const READY_WINDOW: Duration = Duration::from_secs(1);
/// Any valid SKU id: the probe only needs the leader to answer a linearisable read.
const PROBE_SKU: &str = "readyz-probe";

pub async fn healthz() -> Response {
    json(StatusCode::OK, json!({"status": "ok"}))
}

/// Ready when a leader answered a request within the last second. An idle gateway has no
/// recent answer, so it asks the leader once itself (bounded by the same second).
pub async fn readyz(State(state): State<Shared>) -> Response {
    let cluster = &state.cluster;
    if !cluster.leader_answered_within(READY_WINDOW) {
        let deadline = tokio::time::Instant::now() + READY_WINDOW.min(cluster.request_deadline());
        // Any answer from the leader (even "no such SKU") proves it is there; the tracker
        // records it. Concurrent calls share one probe, so /readyz cannot start unbounded
        // read-index rounds.
        let probe = cluster.read::<Option<Sku>>(Read::Sku(PROBE_SKU.to_owned()), deadline);
        cluster.probe_leader(deadline, READY_WINDOW, probe).await;
    }
    if cluster.leader_answered_within(READY_WINDOW) {
        json(StatusCode::OK, json!({"status": "ready"}))
    } else {
        ApiError::unavailable("no leader answered within the last second").into_response()
    }
}

pub async fn metrics(State(state): State<Shared>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}

pub async fn openapi() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document_json(),
    )
        .into_response()
}

pub async fn cluster(State(state): State<Shared>) -> Response {
    json(StatusCode::OK, state.cluster.view().await)
}
