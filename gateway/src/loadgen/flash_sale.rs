//! W1: a flash sale. One SKU with a little stock, every buyer at once; exactly the stock
//! must sell.

use std::fmt;
use std::time::Duration;

use hyper::body::Bytes;
use hyper::Method;
use serde_json::json;

use super::api::{create_sku, sku_levels, unix_ms, LoadgenError, SkuLevels};
use super::client::HttpClient;
use super::stats::{Counts, LatencySummary, Outcome, Recorder};
use super::table::{self, Table};

/// What to sell to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashSale {
    pub sku: String,
    pub stock: u64,
    pub buyers: u64,
}

impl FlashSale {
    /// A sale under a fresh SKU name, `flash-<unix ms>`.
    pub fn new(stock: u64, buyers: u64) -> FlashSale {
        FlashSale {
            sku: default_sku_name(),
            stock,
            buyers,
        }
    }
}

/// `flash-<unix ms>`.
pub fn default_sku_name() -> String {
    format!("flash-{}", unix_ms())
}

/// The order id of buyer `n` of `sku`'s sale.
fn order_id(sku: &str, n: u64) -> String {
    format!("{sku}-fs-{n}")
}

/// What a flash sale came to.
#[derive(Debug, Clone, PartialEq)]
pub struct FlashSaleReport {
    pub sale: FlashSale,
    /// Every buyer's outcome.
    pub counts: Counts,
    /// Latency of every answered buyer, from its send on a connection to its answer.
    pub latency: LatencySummary,
    /// From the first buyer's send until every buyer had an answer (or failed).
    pub wall: Duration,
    /// The SKU read after the sale.
    pub levels: SkuLevels,
}

impl FlashSaleReport {
    /// Buyers answered `201`.
    pub fn succeeded(&self) -> u64 {
        self.counts.get(&Outcome::status(201, None))
    }

    /// Buyers answered `409 out_of_stock`.
    pub fn out_of_stock(&self) -> u64 {
        self.counts.get(&Outcome::status(409, Some("out_of_stock")))
    }

    /// Every other outcome, by status and code.
    pub fn others(&self) -> Vec<(Outcome, u64)> {
        let succeeded = Outcome::status(201, None);
        let out_of_stock = Outcome::status(409, Some("out_of_stock"));
        self.counts
            .iter()
            .filter(|(o, _)| **o != succeeded && **o != out_of_stock)
            .map(|(o, n)| (o.clone(), n))
            .collect()
    }

    /// What the sale should have sold: all the stock, or one unit per buyer if fewer.
    pub fn expected(&self) -> u64 {
        self.sale.stock.min(self.sale.buyers)
    }

    /// Why the sale is wrong; empty when it sold exactly what it should: `min(stock,
    /// buyers)` buyers succeeded and the SKU holds exactly that many units reserved.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let (succeeded, expected) = (self.succeeded(), self.expected());
        if succeeded != expected {
            problems.push(format!(
                "{succeeded} buyers succeeded, expected exactly {expected} (min of stock {} and buyers {})",
                self.sale.stock, self.sale.buyers
            ));
        }
        if self.levels.reserved != succeeded {
            problems.push(format!(
                "the SKU has {} units reserved but {succeeded} buyers succeeded",
                self.levels.reserved
            ));
        }
        problems
    }

    pub fn passed(&self) -> bool {
        self.problems().is_empty()
    }
}

impl fmt::Display for FlashSaleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "flash sale of SKU {}: stock {}, {} buyers",
            self.sale.sku,
            table::int(self.sale.stock),
            table::int(self.sale.buyers)
        )?;
        writeln!(f)?;
        let mut t = Table::new(["outcome", "buyers"]);
        t.row(["succeeded (201)".to_string(), table::int(self.succeeded())]);
        t.row([
            "out_of_stock (409)".to_string(),
            table::int(self.out_of_stock()),
        ]);
        for (outcome, n) in self.others() {
            t.row([format!("other: {outcome}"), table::int(n)]);
        }
        t.row(["total".to_string(), table::int(self.counts.total())]);
        write!(f, "{t}")?;
        writeln!(f)?;
        let l = &self.latency;
        writeln!(
            f,
            "wall time     {} ms  (first send to last answer)",
            table::ms(self.wall)
        )?;
        writeln!(f, "{}", table::latency_line(l))?;
        let s = &self.levels;
        writeln!(
            f,
            "final SKU     available {}   reserved {}   sold {}   (total {})",
            table::int(s.available),
            table::int(s.reserved),
            table::int(s.sold),
            table::int(s.total)
        )?;
        writeln!(f)?;
        let problems = self.problems();
        if problems.is_empty() {
            writeln!(
                f,
                "PASS: sold exactly {} units",
                table::int(self.expected())
            )
        } else {
            for p in problems {
                writeln!(f, "FAIL: {p}")?;
            }
            Ok(())
        }
    }
}

/// Creates the SKU with the stock, sends every buyer's order at once (each a task; the
/// connection pool is the only limit on concurrency), waits for every answer, then reads the
/// SKU. Buyer `n` (from 1) is user `buyer-<n>` with order id `<sku>-fs-<n>`, one unit.
///
/// Errors only when the SKU cannot be created or read; buyers' failures are counted.
pub async fn run_flash_sale(
    client: &HttpClient,
    sale: &FlashSale,
) -> Result<FlashSaleReport, LoadgenError> {
    create_sku(client, &sale.sku, sale.stock).await?;
    // Build every body before the first send so the burst is as tight as it can be.
    let bodies: Vec<Bytes> = (1..=sale.buyers)
        .map(|n| {
            let body = json!({
                "order_id": order_id(&sale.sku, n),
                "user_id": format!("buyer-{n}"),
                "items": [{"sku": sale.sku, "qty": 1}],
            });
            Bytes::from(serde_json::to_vec(&body).expect("a Value always serialises"))
        })
        .collect();
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let client = client.clone();
            tokio::spawn(async move { client.send(Method::POST, "/v1/orders", body).await })
        })
        .collect();
    let mut recorder = Recorder::default();
    for task in tasks {
        let result = task.await.expect("a buyer task panicked");
        recorder.record(&result);
    }
    let summary = recorder.into_summary();
    let levels = sku_levels(client, &sale.sku).await?;
    Ok(FlashSaleReport {
        sale: sale.clone(),
        counts: summary.requests,
        latency: summary.latency,
        wall: summary.wall,
        levels,
    })
}
