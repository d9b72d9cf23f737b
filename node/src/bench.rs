//! The Raft benchmark: concurrent callers drive `Submit` (one single-unit `PlaceOrder`
//! each) over gRPC against a cluster, and the figures are printed: orders/s, latency
//! percentiles, and the mean number of commands per log entry (what group commit achieved).

use crate::client::Client;
use serde::Serialize;
use state_machine::{Command, Item, Items, OrderId, Outcome, Qty, SkuId, UserId};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Workload {
    pub name: String,
    pub skus: usize,
    pub callers: usize,
    pub duration: Duration,
}

pub struct Figures {
    pub orders: u64,
    pub failures: u64,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub mean_batch: f64,
}

fn sku(i: usize) -> SkuId {
    SkuId::new(format!("bench-{i:05}")).expect("valid sku")
}

/// Creates the workload's SKUs with stock that cannot run out.
pub async fn prepare(client: &Client, skus: usize) -> anyhow::Result<()> {
    let creates: Vec<Command> = (0..skus)
        .map(|i| Command::CreateSku {
            sku: sku(i),
            stock: 1 << 50,
            per_user_limit: None,
            sale_window: None,
            request_tag: i as u64 + 1,
        })
        .collect();
    for chunk in creates.chunks(1_000) {
        client.submit(chunk).await?;
    }
    Ok(())
}

pub async fn run(client: &Client, workload: &Workload, run_id: &str) -> Figures {
    let stop_at = Instant::now() + workload.duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..workload.callers)
        .map(|caller| {
            let client = client.clone();
            let skus = workload.skus;
            let run_id = run_id.to_string();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut indexes = Vec::new();
                let mut failures = 0u64;
                let mut n = 0usize;
                while Instant::now() < stop_at {
                    n += 1;
                    let command = Command::PlaceOrder {
                        order_id: OrderId::new(format!("{run_id}-{caller}-{n}")).expect("id"),
                        user_id: UserId::new(format!("u{caller}")).expect("id"),
                        items: Items::new(vec![Item {
                            sku: sku((caller * 7919 + n) % skus),
                            qty: Qty::new(1).expect("qty"),
                        }])
                        .expect("items"),
                        ttl_ms: 86_400_000,
                        // Unique per order, as a gateway's would be.
                        request_tag: ((caller as u64) << 32) | n as u64,
                    };
                    let t = Instant::now();
                    match client.submit(std::slice::from_ref(&command)).await {
                        Ok((outcomes, index)) if matches!(outcomes[0], Outcome::Order { .. }) => {
                            latencies.push(t.elapsed());
                            indexes.push(index);
                        }
                        _ => failures += 1,
                    }
                }
                (latencies, indexes, failures)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut entries = HashSet::new();
    let mut failures = 0;
    for t in tasks {
        if let Ok((l, i, f)) = t.await {
            latencies.extend(l);
            entries.extend(i);
            failures += f;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let orders = latencies.len() as u64;
    Figures {
        orders,
        failures,
        per_second: orders as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        mean_batch: orders as f64 / entries.len().max(1) as f64,
    }
}

/// One workload's figures, as `invctl bench --output json` prints them.
#[derive(Debug, Serialize)]
pub struct Row {
    pub workload: String,
    pub skus: usize,
    pub callers: usize,
    pub orders: u64,
    pub failures: u64,
    pub orders_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Mean client commands per log entry.
    pub mean_batch: f64,
}

impl Row {
    pub fn new(w: &Workload, f: &Figures) -> Self {
        Row {
            workload: w.name.clone(),
            skus: w.skus,
            callers: w.callers,
            orders: f.orders,
            failures: f.failures,
            orders_per_second: f.per_second,
            p50_ms: f.p50.as_secs_f64() * 1e3,
            p99_ms: f.p99.as_secs_f64() * 1e3,
            mean_batch: f.mean_batch,
        }
    }
}

pub fn header() -> String {
    format!(
        "{:<26} {:>8} {:>12} {:>10} {:>10} {:>10} {:>9}",
        "workload", "callers", "orders/s", "p50 ms", "p99 ms", "batch", "failed"
    )
}

pub fn line(r: &Row) -> String {
    format!(
        "{:<26} {:>8} {:>12.0} {:>10.2} {:>10.2} {:>10.1} {:>9}",
        r.workload, r.callers, r.orders_per_second, r.p50_ms, r.p99_ms, r.mean_batch, r.failures
    )
}

pub fn arc_client(addrs: Vec<String>) -> Arc<Client> {
    Arc::new(Client::new(addrs, Duration::from_secs(10)))
}
