//! The stateless HTTP gateway: validation, the API error model, leader following, retries and
//! admission control, in front of the cluster's `inventory` gRPC service.
//!
//! It implements `shared/design/API.md`. It keeps no inventory state: every command is
//! validated with the `state-machine` crate's rules, proposed to the leader (batched with
//! concurrent commands) and answered with the leader's outcome; every read is served by the
//! leader. Any number of gateways can run side by side.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = cluster_config::GatewayConfig::with_nodes(vec!["127.0.0.1:7001".into()]);
//! let gateway = gateway::Gateway::bind(config).await?;
//! println!("listening on {}", gateway.local_addr());
//! gateway.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

mod admission;
mod auth;
mod body;
mod cluster;
mod error;
mod https;
mod ids;
pub mod loadgen;
mod metrics;
mod openapi;
mod order_batch;
mod request_id;
mod requests;
mod routes;
mod server;
mod ui;
mod views;

/// How many batched `Submit`s one gateway keeps in flight (tests fill exactly that many).
pub use cluster::MAX_SUBMITS_IN_FLIGHT;
pub use error::ApiError;
/// Every route pattern the router serves outside `/ui/`, for checking the OpenAPI document of
/// `GET /openapi.json` against the router.
pub use routes::paths::ALL as ROUTE_PATTERNS;
pub use server::{app, serve, Gateway, StartError, SHUTDOWN_GRACE};

/// Re-exported so callers need not depend on `cluster-config` for the one type.
pub use cluster_config::GatewayConfig;
