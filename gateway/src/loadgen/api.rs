//! The few gateway calls the workloads need besides placing orders: create a SKU, read its
//! stock levels.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::json;

use super::client::{ClientError, HttpClient};

/// Why a workload could not run (as opposed to what it measured).
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The gateway answered a set-up call or a read with something unusable.
    #[error("{0}")]
    Gateway(String),
}

/// A SKU's stock levels as `GET /v1/skus/{sku}` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct SkuLevels {
    pub total: u64,
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
}

/// Effectively unlimited stock for throughput runs: 2^50 units.
pub const UNLIMITED_STOCK: u64 = 1 << 50;

/// `POST /v1/skus {"sku", "stock"}`; `201`, or `200` if the same SKU already exists.
pub async fn create_sku(client: &HttpClient, sku: &str, stock: u64) -> Result<(), LoadgenError> {
    let answer = client
        .post_json("/v1/skus", &json!({"sku": sku, "stock": stock}))
        .await?;
    match answer.status {
        200 | 201 => Ok(()),
        _ => Err(LoadgenError::Gateway(format!(
            "creating SKU {sku}: {}",
            answer.describe()
        ))),
    }
}

/// `GET /v1/skus/{sku}`.
pub async fn sku_levels(client: &HttpClient, sku: &str) -> Result<SkuLevels, LoadgenError> {
    let answer = client.get(&format!("/v1/skus/{sku}")).await?;
    if answer.status != 200 {
        return Err(LoadgenError::Gateway(format!(
            "reading SKU {sku}: {}",
            answer.describe()
        )));
    }
    serde_json::from_slice(&answer.body).map_err(|e| {
        LoadgenError::Gateway(format!("reading SKU {sku}: {e} in {}", answer.describe()))
    })
}

/// Milliseconds since the Unix epoch, for run-unique names.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
