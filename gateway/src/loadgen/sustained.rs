//! W2/W3: sustained closed-loop load. A fixed number of clients, each sending its next
//! request as soon as the last one is answered, against one hot SKU (W2) or many (W3) with
//! effectively unlimited stock. A request is one single-unit order (`POST /v1/orders`) or,
//! in batch mode, a batch of them (`POST /v1/orders/batch`).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use hyper::body::Bytes;
use hyper::Method;
use serde_json::{json, Value};

use super::api::{create_sku, unix_ms, LoadgenError, UNLIMITED_STOCK};
use super::batch::{batch_body, order_outcomes};
use super::client::HttpClient;
use super::progress::{spawn_reporter, Progress};
use super::stats::{Counts, LatencySummary, Outcome, Recorder};
use super::table::{self, Table};

/// A sustained run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sustained {
    /// Closed-loop clients (each at most one order in flight).
    pub clients: usize,
    pub duration: Duration,
    /// SKUs to spread the orders over, round robin.
    pub skus: usize,
    /// Concurrent `POST /v1/skus` while creating them.
    pub create_concurrency: usize,
    /// Prefix of this run's SKU names and order ids; unique per run.
    pub run_id: String,
    /// Print a line of figures every so often while running (a soak); `None`: only the
    /// report at the end.
    pub progress_every: Option<Duration>,
    /// Batch mode: each request is `POST /v1/orders/batch` with this many orders (1 to
    /// [`MAX_BATCH_ORDERS`](super::batch::MAX_BATCH_ORDERS)). `None`: each request is one
    /// `POST /v1/orders`.
    pub batch: Option<usize>,
    /// Each order's `reservation_ttl_ms`; `None`: left out, so the API's default (15
    /// minutes). A short one lets a soak's orders expire, and so close, while it runs.
    pub reservation_ttl_ms: Option<u64>,
    /// Orders leave `order_id` out, so the gateway makes each one (random: `gw-` and 24 hex
    /// digits), as for a client that sends none, instead of the run's own (`<run>-o-<n>`).
    pub gateway_ids: bool,
}

impl Sustained {
    pub fn new(clients: usize, duration: Duration, skus: usize) -> Sustained {
        Sustained {
            clients,
            duration,
            skus,
            create_concurrency: 64,
            run_id: format!("ld-{}", unix_ms()),
            progress_every: None,
            batch: None,
            reservation_ttl_ms: None,
            gateway_ids: false,
        }
    }

    /// Orders each request carries.
    pub fn orders_per_request(&self) -> usize {
        self.batch.unwrap_or(1)
    }

    /// The path and body of a request whose first order is order `first` of the run: order
    /// `n` is `<run>-o-<n>` (no id with `gateway_ids`), one unit of SKU `n mod skus` (of
    /// `names`), for `user`.
    pub fn request(&self, names: &[String], user: &str, first: u64) -> (&'static str, Value) {
        let order = |n: u64| {
            let mut order = json!({
                "order_id": format!("{}-o-{n}", self.run_id),
                "user_id": user,
                "items": [{"sku": names[(n % names.len() as u64) as usize], "qty": 1}],
            });
            if let Some(ttl) = self.reservation_ttl_ms {
                order["reservation_ttl_ms"] = ttl.into();
            }
            if self.gateway_ids {
                if let Some(fields) = order.as_object_mut() {
                    fields.remove("order_id");
                }
            }
            order
        };
        match self.batch {
            None => ("/v1/orders", order(first)),
            Some(size) => (
                "/v1/orders/batch",
                batch_body((first..first + size as u64).map(order)),
            ),
        }
    }

    /// The SKU names: `<run>-hot` for one, `<run>-<i>` for many.
    pub fn sku_names(&self) -> Vec<String> {
        if self.skus == 1 {
            vec![format!("{}-hot", self.run_id)]
        } else {
            (0..self.skus)
                .map(|i| format!("{}-{i}", self.run_id))
                .collect()
        }
    }
}

/// What a sustained run came to.
#[derive(Debug, Clone, PartialEq)]
pub struct SustainedReport {
    pub run: Sustained,
    /// From the first send to the last answer (the in-flight tail after the duration
    /// included).
    pub elapsed: Duration,
    /// Per order (in batch mode, each order's own result).
    pub counts: Counts,
    /// Per request: the same as `counts` unless in batch mode.
    pub requests: Counts,
    /// Of the requests.
    pub latency: LatencySummary,
}

impl SustainedReport {
    /// Orders answered 2xx per second.
    pub fn orders_per_sec(&self) -> f64 {
        per_sec(self.counts.ok(), self.elapsed)
    }

    /// Requests answered in any way (and failures) per second.
    pub fn requests_per_sec(&self) -> f64 {
        per_sec(self.requests.total(), self.elapsed)
    }
}

fn per_sec(n: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        0.0
    } else {
        n as f64 / elapsed.as_secs_f64()
    }
}

impl fmt::Display for SustainedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.run;
        writeln!(
            f,
            "sustained: {} clients, {} SKU{}, {:.1} s (measured {:.2} s)",
            r.clients,
            table::int(r.skus as u64),
            if r.skus == 1 { "" } else { "s" },
            r.duration.as_secs_f64(),
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f)?;
        match r.batch {
            None => writeln!(
                f,
                "orders/s      {}  (2xx; all requests {}/s)",
                table::rate(self.orders_per_sec()),
                table::rate(self.requests_per_sec())
            )?,
            Some(size) => writeln!(
                f,
                "orders/s      {}  (orders answered 2xx; requests {}/s of {size} orders each)",
                table::rate(self.orders_per_sec()),
                table::rate(self.requests_per_sec())
            )?,
        }
        let l = &self.latency;
        writeln!(f, "{}", table::latency_line(l))?;
        writeln!(f)?;
        if r.batch.is_none() {
            return write!(
                f,
                "{}",
                outcome_table("outcome", "requests", &self.requests)
            );
        }
        writeln!(
            f,
            "{}",
            outcome_table("order outcome", "orders", &self.counts)
        )?;
        write!(
            f,
            "{}",
            outcome_table("request outcome", "requests", &self.requests)
        )
    }
}

/// Counts by outcome, with a total row.
pub(super) fn outcome_table(what: &str, unit: &str, counts: &Counts) -> Table {
    let mut t = Table::new([what, unit]);
    for (outcome, n) in counts.iter() {
        t.row([outcome.to_string(), table::int(n)]);
    }
    t.row(["total".to_string(), table::int(counts.total())]);
    t
}

/// Creates `names` with `stock` each, at most `concurrency` creates at a time.
pub async fn create_skus(
    client: &HttpClient,
    names: &[String],
    stock: u64,
    concurrency: usize,
) -> Result<(), LoadgenError> {
    futures::stream::iter(names)
        .map(|name| create_sku(client, name, stock))
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await
}

/// Creates the run's SKUs (stock 2^50 each), then runs `clients` closed-loop clients for
/// the duration. Order `n` (counted across clients) is `<run>-o-<n>` for one unit of SKU
/// `n mod skus`, user `<run>-u-<client>` (see [`Sustained::request`]). Every client sends at
/// least one request; one in flight when the duration ends is waited for. Errors only when
/// set-up fails; non-2xx answers and failures are counted.
pub async fn run_sustained(
    client: &HttpClient,
    run: &Sustained,
) -> Result<SustainedReport, LoadgenError> {
    let names = Arc::new(run.sku_names());
    // Over connections of their own: a run of a few clients (batches: 4) has as few
    // connections, and 10,000 creates over 4 of them took 10 to 25 s before every batch run.
    let creator = client.with_connections(run.create_concurrency);
    create_skus(&creator, &names, UNLIMITED_STOCK, run.create_concurrency).await?;
    drop(creator);
    let next = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + run.duration;
    let progress = Arc::new(Progress::default());
    if let Some(every) = run.progress_every {
        spawn_reporter(progress.clone(), every, end);
    }
    let tasks: Vec<_> = (0..run.clients.max(1))
        .map(|c| {
            let client = client.clone();
            let names = names.clone();
            let next = next.clone();
            let run = run.clone();
            let progress = progress.clone();
            tokio::spawn(async move {
                let user = format!("{}-u-{c}", run.run_id);
                let per_request = run.orders_per_request();
                let mut recorder = Recorder::default();
                loop {
                    let first = next.fetch_add(per_request as u64, Ordering::Relaxed);
                    let (path, body) = run.request(&names, &user, first);
                    let body = Bytes::from(serde_json::to_vec(&body).expect("serialisable"));
                    let result = client.send(Method::POST, path, body).await;
                    let orders = match run.batch {
                        None => vec![Outcome::of(&result)],
                        Some(size) => order_outcomes(&result, size),
                    };
                    recorder.record_orders(&result, &orders);
                    progress.record_orders(&result, &orders);
                    if Instant::now() >= end {
                        return recorder;
                    }
                }
            })
        })
        .collect();
    let mut recorder = Recorder::default();
    for task in tasks {
        recorder.merge(task.await.expect("a client task panicked"));
    }
    let summary = recorder.into_summary();
    Ok(SustainedReport {
        run: run.clone(),
        elapsed: summary.wall,
        counts: summary.orders,
        requests: summary.requests,
        latency: summary.latency,
    })
}
