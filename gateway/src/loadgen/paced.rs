//! Open-loop load: single-unit orders sent on a fixed schedule, `rate` per second, whether or
//! not earlier ones were answered. A closed-loop run measures what the store can take; this
//! measures how fast it answers at a given offered load. Each order's latency counts from the
//! moment the schedule said to send it, so time it spent waiting for a free connection, or
//! behind a load generator that fell behind, is in the figure rather than hidden from it.
//!
//! A warm-up, when asked for, offers the same load first and leaves it out of the figures: a
//! cluster that has just started answers its first few hundred milliseconds of orders several
//! times slower than the rest (its connections, memory and log warming), and in a 10-s run
//! those are the slowest 1 % by themselves, so the whole run's p99 would be theirs.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use hyper::Method;
use tokio::task::JoinSet;

use super::api::{unix_ms, LoadgenError, UNLIMITED_STOCK};
use super::client::HttpClient;
use super::stats::{Counts, LatencySummary, Outcome};
use super::sustained::{create_skus, outcome_table, Sustained};
use super::table;

/// How often the schedule is caught up with: every order due by then is sent at once.
const TICK: Duration = Duration::from_millis(1);
/// Distinct users the orders come from, in turn.
const USERS: u64 = 1_024;

/// An open-loop run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paced {
    /// Orders offered per second.
    pub rate: u64,
    pub duration: Duration,
    /// SKUs to spread the orders over, round robin (1: one hot SKU).
    pub skus: usize,
    /// Concurrent `POST /v1/skus` while creating them.
    pub create_concurrency: usize,
    /// Prefix of this run's SKU names and order ids; unique per run.
    pub run_id: String,
    /// Width of the slices of the schedule the report gives latencies for, one by one; none
    /// when unset. A stall shorter than the run shows there, not in its overall p99.
    pub timeline: Option<Duration>,
    /// Offered at the same rate before `duration` and left out of every figure but its own
    /// count of answers (zero: none).
    pub warmup: Duration,
}

impl Paced {
    pub fn new(rate: u64, duration: Duration, skus: usize) -> Paced {
        Paced {
            rate,
            duration,
            skus,
            create_concurrency: 64,
            run_id: format!("pc-{}", unix_ms()),
            timeline: None,
            warmup: Duration::ZERO,
        }
    }

    /// Orders the measured part of the schedule holds: `rate` for each second of the
    /// duration.
    pub fn scheduled(&self) -> u64 {
        self.orders_in(self.duration)
    }

    /// Orders the warm-up holds, sent before the measured ones.
    pub fn warmup_orders(&self) -> u64 {
        self.orders_in(self.warmup)
    }

    fn orders_in(&self, span: Duration) -> u64 {
        (self.rate as f64 * span.as_secs_f64()).round() as u64
    }

    /// When order `n` (from 0) is due, after `start`.
    fn due(&self, start: Instant, n: u64) -> Instant {
        start + Duration::from_secs_f64(n as f64 / self.rate as f64)
    }

    /// The requests' layout: the same orders and SKU names as a closed-loop run's.
    fn as_sustained(&self) -> Sustained {
        Sustained {
            create_concurrency: self.create_concurrency,
            run_id: self.run_id.clone(),
            ..Sustained::new(1, self.duration, self.skus)
        }
    }
}

/// What an open-loop run came to.
#[derive(Debug, Clone, PartialEq)]
pub struct PacedReport {
    pub run: Paced,
    /// From the first order's due time to the last answer.
    pub elapsed: Duration,
    pub counts: Counts,
    /// Of the answered orders, each from its due time.
    pub latency: LatencySummary,
    /// How late the latest order left against its due time: the load generator's own lag.
    pub max_send_lag: Duration,
    /// The answered orders by the slice of the schedule they were due in, when asked for.
    pub timeline: Vec<Slice>,
    /// The warm-up's answers, which no other figure includes.
    pub warmup_counts: Counts,
}

/// The answered orders due in one slice of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    /// Where the slice starts, from the first order's due time.
    pub from: Duration,
    pub latency: LatencySummary,
}

/// Groups `(due, latency)` pairs, `due` counted from the first order's due time, into
/// consecutive slices `width` wide, from 0 to the last due time; a slice where no answered
/// order was due is there with no samples.
pub fn slices(samples: &[(Duration, Duration)], width: Duration) -> Vec<Slice> {
    let width = width.max(Duration::from_millis(1));
    let slot = |due: Duration| (due.as_nanos() / width.as_nanos()) as usize;
    let count = samples
        .iter()
        .map(|(due, _)| slot(*due) + 1)
        .max()
        .unwrap_or(0);
    let mut grouped = vec![Vec::new(); count];
    for (due, latency) in samples {
        grouped[slot(*due)].push(*latency);
    }
    grouped
        .into_iter()
        .enumerate()
        .map(|(n, latencies)| Slice {
            from: width * n as u32,
            latency: LatencySummary::from_samples(latencies),
        })
        .collect()
}

impl PacedReport {
    pub fn orders_per_sec(&self) -> f64 {
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.counts.ok() as f64 / self.elapsed.as_secs_f64()
    }
}

impl fmt::Display for PacedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.run;
        writeln!(
            f,
            "paced: {} orders/s offered for {:.1} s over {} SKU{} ({} orders)",
            table::int(r.rate),
            r.duration.as_secs_f64(),
            table::int(r.skus as u64),
            if r.skus == 1 { "" } else { "s" },
            table::int(r.scheduled())
        )?;
        if !r.warmup.is_zero() {
            writeln!(
                f,
                "warm-up: {} orders over {:.1} s first, at the same rate, left out of every \
                 figure below ({} answered 2xx)",
                table::int(r.warmup_orders()),
                r.warmup.as_secs_f64(),
                table::int(self.warmup_counts.ok())
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "orders/s      {}  (answered 2xx, first due time to last answer)",
            table::rate(self.orders_per_sec())
        )?;
        writeln!(
            f,
            "{}  from each order's due time",
            table::latency_line(&self.latency)
        )?;
        writeln!(
            f,
            "send lag      max {} ms  (how far the load generator fell behind its schedule)",
            table::ms(self.max_send_lag)
        )?;
        writeln!(f)?;
        write!(f, "{}", outcome_table("outcome", "orders", &self.counts))?;
        if let Some(width) = self.run.timeline {
            writeln!(f)?;
            writeln!(
                f,
                "timeline: orders by the {} ms slice of the schedule they were due in",
                width.as_millis()
            )?;
            let mut rows =
                table::Table::new(["due from ms", "answered", "p50 ms", "p99 ms", "max ms"]);
            for s in &self.timeline {
                rows.row([
                    s.from.as_millis().to_string(),
                    table::int(s.latency.count as u64),
                    table::ms(s.latency.p50),
                    table::ms(s.latency.p99),
                    table::ms(s.latency.max),
                ]);
            }
            write!(f, "{rows}")?;
        }
        Ok(())
    }
}

/// Creates the run's SKUs (unlimited stock), then sends `rate` single-unit orders per second
/// for the duration, each in a task of its own at its due time, and waits for every answer.
/// Order `n` is `<run>-o-<n>` for SKU `n mod skus`, from one of `USERS` users in turn.
pub async fn run_paced(client: &HttpClient, run: &Paced) -> Result<PacedReport, LoadgenError> {
    let layout = Arc::new(run.as_sustained());
    let names = Arc::new(layout.sku_names());
    let creator = client.with_connections(run.create_concurrency);
    create_skus(&creator, &names, UNLIMITED_STOCK, run.create_concurrency).await?;
    drop(creator);

    let warmup = run.warmup_orders();
    let total = warmup + run.scheduled();
    let mut tasks = JoinSet::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut max_send_lag = Duration::ZERO;
    while sent < total {
        tick.tick().await;
        let due_by_now = ((start.elapsed().as_secs_f64() * run.rate as f64) as u64 + 1).min(total);
        while sent < due_by_now {
            let due = run.due(start, sent);
            max_send_lag = max_send_lag.max(Instant::now().saturating_duration_since(due));
            let (path, body) = layout.request(&names, &user(&run.run_id, sent), sent);
            let body = Bytes::from(serde_json::to_vec(&body).expect("serialisable"));
            let client = client.clone();
            let measured = sent >= warmup;
            tasks.spawn(async move {
                let result = client.send(Method::POST, path, body).await;
                (due, measured, result)
            });
            sent += 1;
        }
    }

    // The measured part starts where the warm-up's schedule ends.
    let measured_from = run.due(start, warmup);
    let mut counts = Counts::default();
    let mut warmup_counts = Counts::default();
    let mut latencies = Vec::with_capacity(total as usize);
    let mut by_due = Vec::with_capacity(if run.timeline.is_some() {
        total as usize
    } else {
        0
    });
    let mut last = measured_from;
    while let Some(joined) = tasks.join_next().await {
        let (due, measured, result) = joined.expect("an order task panicked");
        if !measured {
            warmup_counts.add(Outcome::of(&result));
            continue;
        }
        counts.add(Outcome::of(&result));
        let done = match &result {
            Ok(answer) => {
                let latency = answer.answered.saturating_duration_since(due);
                latencies.push(latency);
                if run.timeline.is_some() {
                    by_due.push((due.saturating_duration_since(measured_from), latency));
                }
                answer.answered
            }
            Err(_) => Instant::now(),
        };
        last = last.max(done);
    }
    Ok(PacedReport {
        run: run.clone(),
        elapsed: last.saturating_duration_since(measured_from),
        counts,
        latency: LatencySummary::from_samples(latencies),
        max_send_lag,
        timeline: run
            .timeline
            .map(|width| slices(&by_due, width))
            .unwrap_or_default(),
        warmup_counts,
    })
}

fn user(run_id: &str, n: u64) -> String {
    format!("{run_id}-u-{}", n % USERS)
}
