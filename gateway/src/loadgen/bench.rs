//! The three workloads of the issue in sequence, summed up in one table:
//! W1 flash sale, W2 hot SKU at two client counts, W3 many SKUs.

use std::time::Duration;

use super::api::{unix_ms, LoadgenError};
use super::client::HttpClient;
use super::flash_sale::{run_flash_sale, FlashSale, FlashSaleReport};
use super::stats::{Counts, LatencySummary};
use super::sustained::{run_sustained, Sustained, SustainedReport};
use super::table::{self, Table};

/// The workloads' sizes. [`Bench::default`] is the issue's: W1 stock 10 to 10,000 buyers,
/// W2 one hot SKU at 64 and 256 clients, W3 10,000 SKUs at 256 clients, 10 s each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bench {
    /// How long each sustained workload runs.
    pub duration: Duration,
    pub flash_stock: u64,
    pub flash_buyers: u64,
    /// Client counts of the W2 runs.
    pub hot_clients: Vec<usize>,
    pub spread_skus: usize,
    pub spread_clients: usize,
    /// Concurrent creates while setting up W3's SKUs.
    pub create_concurrency: usize,
}

impl Default for Bench {
    fn default() -> Bench {
        Bench {
            duration: Duration::from_secs(10),
            flash_stock: 10,
            flash_buyers: 10_000,
            hot_clients: vec![64, 256],
            spread_skus: 10_000,
            spread_clients: 256,
            create_concurrency: 64,
        }
    }
}

/// W1's throughput column is its wall time; the others' are orders per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Throughput {
    Wall(Duration),
    OrdersPerSec(f64),
}

/// One line of the bench table.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRow {
    pub workload: String,
    /// Buyers for W1, closed-loop clients otherwise.
    pub clients: u64,
    pub throughput: Throughput,
    pub latency: LatencySummary,
    /// 2xx answers.
    pub ok: u64,
    /// 409 answers.
    pub refused: u64,
    /// Everything else, failures without an answer included.
    pub other: u64,
}

impl BenchRow {
    fn new(workload: String, clients: u64, throughput: Throughput, counts: &Counts) -> BenchRow {
        BenchRow {
            workload,
            clients,
            throughput,
            latency: LatencySummary::default(),
            ok: counts.ok(),
            refused: counts.refused(),
            other: counts.other(),
        }
    }

    pub fn flash_sale(report: &FlashSaleReport) -> BenchRow {
        BenchRow {
            latency: report.latency,
            ..BenchRow::new(
                format!("W1 flash sale (stock {})", table::int(report.sale.stock)),
                report.sale.buyers,
                Throughput::Wall(report.wall),
                &report.counts,
            )
        }
    }

    pub fn sustained(workload: String, report: &SustainedReport) -> BenchRow {
        BenchRow {
            latency: report.latency,
            ..BenchRow::new(
                workload,
                report.run.clients as u64,
                Throughput::OrdersPerSec(report.orders_per_sec()),
                &report.counts,
            )
        }
    }
}

/// Renders the bench table.
pub fn render_table(rows: &[BenchRow]) -> String {
    let mut t = Table::new([
        "workload",
        "clients",
        "orders/s (W1: wall)",
        "p50 ms",
        "p99 ms",
        "max ms",
        "ok",
        "refused(409)",
        "other",
    ]);
    for r in rows {
        let throughput = match r.throughput {
            Throughput::Wall(d) => format!("{} ms wall", table::ms(d)),
            Throughput::OrdersPerSec(x) => table::rate(x),
        };
        let latency = |d: Duration| {
            if r.latency.count == 0 {
                "-".to_string()
            } else {
                table::ms(d)
            }
        };
        t.row([
            r.workload.clone(),
            table::int(r.clients),
            throughput,
            latency(r.latency.p50),
            latency(r.latency.p99),
            latency(r.latency.max),
            table::int(r.ok),
            table::int(r.refused),
            table::int(r.other),
        ]);
    }
    t.to_string()
}

/// What the bench came to.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    pub rows: Vec<BenchRow>,
    /// W1 in full, for its correctness check.
    pub flash_sale: FlashSaleReport,
}

impl BenchReport {
    /// W1's problems (see [`FlashSaleReport::problems`]).
    pub fn problems(&self) -> Vec<String> {
        self.flash_sale.problems()
    }

    pub fn table(&self) -> String {
        render_table(&self.rows)
    }
}

/// Runs W1, each W2, then W3, one after another on `client`'s pool. `progress` is told
/// what starts next (for a line on stderr).
pub async fn run_bench(
    client: &HttpClient,
    bench: &Bench,
    mut progress: impl FnMut(&str),
) -> Result<BenchReport, LoadgenError> {
    let mut rows = Vec::new();
    let run_id = format!("ld-{}", unix_ms());
    progress(&format!(
        "W1: flash sale, stock {} to {} buyers",
        bench.flash_stock, bench.flash_buyers
    ));
    let flash_sale = run_flash_sale(
        client,
        &FlashSale::new(bench.flash_stock, bench.flash_buyers),
    )
    .await?;
    rows.push(BenchRow::flash_sale(&flash_sale));
    let seconds = bench.duration.as_secs_f64();
    for &clients in &bench.hot_clients {
        progress(&format!("W2: hot SKU, {clients} clients, {seconds:.1} s"));
        let run = sustained(bench, format!("{run_id}-w2-{clients}"), clients, 1);
        let report = run_sustained(client, &run).await?;
        rows.push(BenchRow::sustained("W2 hot SKU".to_string(), &report));
    }
    progress(&format!(
        "W3: {} SKUs (creating them first), {} clients, {seconds:.1} s",
        bench.spread_skus, bench.spread_clients
    ));
    let run = sustained(
        bench,
        format!("{run_id}-w3"),
        bench.spread_clients,
        bench.spread_skus,
    );
    let report = run_sustained(client, &run).await?;
    rows.push(BenchRow::sustained(
        format!("W3 {} SKUs", table::int(bench.spread_skus as u64)),
        &report,
    ));
    Ok(BenchReport { rows, flash_sale })
}

fn sustained(bench: &Bench, run_id: String, clients: usize, skus: usize) -> Sustained {
    Sustained {
        create_concurrency: bench.create_concurrency,
        run_id,
        ..Sustained::new(clients, bench.duration, skus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_aligned_table() {
        let ms = Duration::from_millis;
        let latency = LatencySummary {
            count: 10,
            p50: ms(3),
            p99: ms(42),
            max: ms(1500),
        };
        let rows = vec![
            BenchRow {
                workload: "W1 flash sale (stock 10)".into(),
                clients: 10_000,
                throughput: Throughput::Wall(ms(412)),
                latency,
                ok: 10,
                refused: 9_990,
                other: 0,
            },
            BenchRow {
                workload: "W2 hot SKU".into(),
                clients: 64,
                throughput: Throughput::OrdersPerSec(23_456.4),
                latency: LatencySummary::default(),
                ok: 234_564,
                refused: 0,
                other: 2,
            },
        ];
        let text = render_table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("workload "), "{text}");
        assert!(lines[1].chars().all(|c| c == '-'), "{text}");
        assert!(
            lines[2].contains("10,000") && lines[2].contains("412.0 ms wall"),
            "{text}"
        );
        assert!(
            lines[2].contains("3.00") && lines[2].contains("1,500"),
            "{text}"
        );
        assert!(
            lines[3].contains("23,456") && lines[3].contains(" - "),
            "{text}"
        );
        // Right-aligned: every line ends at the same column.
        let width = lines[0].len();
        assert!(lines.iter().all(|l| l.chars().count() == width), "{text}");
    }
}
