//! The library behind the `loadgen` binary: HTTP load against a gateway over a fixed pool of
//! keep-alive connections, for the issue's workloads.
//!
//! - [`run_flash_sale`] (W1): one SKU with a little stock, every buyer at once; checks that
//!   exactly the stock sold.
//! - [`run_sustained`] (W2/W3): closed-loop clients placing single-unit orders against one
//!   hot SKU or many, for a duration; in batch mode ([`Sustained::batch`]) each request is a
//!   `POST /v1/orders/batch` of many orders, and each order's own result is counted.
//! - [`run_bench`]: W1, W2 at two client counts and W3 in sequence, as one table.
//! - [`run_paced`]: open loop: single-unit orders sent at a fixed rate whatever the answers,
//!   each order's latency counted from the moment it was due.
//! - [`run_feed`]: one event-feed consumer beside a run: events/s and lag.
//! - a soak is a long sustained run with a line of figures per interval (`progress`).
//!
//! Latencies are measured per request from its send on a connection to the end of its
//! answer (time spent waiting for a free connection in the pool is not included; the flash
//! sale's wall time is), except in a paced run, where they count from each order's due time. Percentiles are nearest-rank over every sample.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gateway::loadgen::LoadgenError> {
//! use gateway::loadgen::{run_flash_sale, FlashSale, HttpClient, Target};
//! let target = Target::parse("http://127.0.0.1:8080")?;
//! let client = HttpClient::new(target, 256, std::time::Duration::from_secs(30));
//! let report = run_flash_sale(&client, &FlashSale::new(10, 10_000)).await?;
//! print!("{report}");
//! assert!(report.passed());
//! # Ok(()) }
//! ```

mod api;
mod batch;
mod bench;
mod client;
mod feed;
mod flash_sale;
mod paced;
mod progress;
mod stats;
mod sustained;
mod table;

#[cfg(test)]
mod tests;

pub use api::{create_sku, sku_levels, LoadgenError, SkuLevels, UNLIMITED_STOCK};
pub use batch::{batch_body, order_outcomes, MAX_BATCH_ORDERS};
pub use bench::{render_table, run_bench, Bench, BenchReport, BenchRow, Throughput};
pub use client::{Answer, ClientError, HttpClient, Target};
pub use feed::{run_feed, FeedReport};
pub use flash_sale::{default_sku_name, run_flash_sale, FlashSale, FlashSaleReport};
pub use paced::{run_paced, slices, Paced, PacedReport, Slice};
pub use stats::{percentile, Counts, LatencySummary, Outcome, Recorder, Summary};
pub use sustained::{create_skus, run_sustained, Sustained, SustainedReport};
