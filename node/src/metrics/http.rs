//! The metrics address's HTTP server: `GET /metrics` (OpenMetrics text), `GET /healthz` (the
//! process answers) and `GET /readyz` (see `readiness`). Plain HTTP: the figures are not
//! secret, and Prometheus and probes then need no client certificate.

use super::{readiness, NodeMetrics, CONTENT_TYPE};
use crate::types::Raft;
use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;

#[derive(Clone)]
struct Served {
    metrics: NodeMetrics,
    raft: Raft,
}

/// Runs until dropped: the server task is aborted with it.
pub struct MetricsServer {
    task: tokio::task::JoinHandle<()>,
    pub local_addr: SocketAddr,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn router(metrics: NodeMetrics, raft: Raft) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(Served { metrics, raft })
}

/// Binds `addr` (failing the node's start if it cannot) and serves in the background.
pub async fn start(
    addr: SocketAddr,
    metrics: NodeMetrics,
    raft: Raft,
) -> anyhow::Result<MetricsServer> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {addr} (metrics_addr)"))?;
    let local_addr = listener.local_addr()?;
    let app = router(metrics, raft);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics server stopped");
        }
    });
    tracing::info!(metrics = %local_addr, "metrics and health checks listening");
    Ok(MetricsServer { task, local_addr })
}

async fn scrape(State(s): State<Served>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], s.metrics.render())
}

async fn ready(State(s): State<Served>) -> (StatusCode, String) {
    let since = s.metrics.progress.since_last_apply();
    // Judged under the watch's read lock, without cloning openraft's metrics.
    let verdict = readiness::judge(&s.raft.metrics().borrow(), since);
    match verdict {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}
