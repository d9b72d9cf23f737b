//! Per-interval lines of a long sustained run (the soak): orders/s, answers other than 2xx
//! (`503`s above all) and the slowest answer in each interval, so a slowdown, a stall or a
//! burst of errors shows when it happened, not only in the run's total.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::{Answer, ClientError};
use super::stats::Outcome;

/// Counters the clients bump; the reporter reads and resets them each interval.
#[derive(Debug, Default)]
pub struct Progress {
    ok: AtomicU64,
    unavailable: AtomicU64,
    other: AtomicU64,
    max_us: AtomicU64,
}

/// One interval's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub ok_per_sec: f64,
    pub unavailable: u64,
    pub other: u64,
    pub max: Duration,
}

impl Progress {
    /// Records a request and the outcome of each order it carried: the counts are of
    /// orders, the slowest answer is of requests.
    pub fn record_orders(&self, result: &Result<Answer, ClientError>, orders: &[Outcome]) {
        for order in orders {
            let counter = match order {
                o if o.is_ok() => &self.ok,
                Outcome::Status { status: 503, .. } => &self.unavailable,
                _ => &self.other,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(answer) = result {
            let us = answer.latency().as_micros().min(u64::MAX as u128) as u64;
            self.max_us.fetch_max(us, Ordering::Relaxed);
        }
    }

    /// Takes the counts since the last call, over `elapsed`.
    pub fn take(&self, elapsed: Duration) -> Interval {
        let ok = self.ok.swap(0, Ordering::Relaxed);
        Interval {
            ok_per_sec: ok as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
            unavailable: self.unavailable.swap(0, Ordering::Relaxed),
            other: self.other.swap(0, Ordering::Relaxed),
            max: Duration::from_micros(self.max_us.swap(0, Ordering::Relaxed)),
        }
    }
}

/// Prints one line per `every` to stderr until `end`.
pub fn spawn_reporter(progress: Arc<Progress>, every: Duration, end: Instant) {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut last = started;
        eprintln!("  elapsed   orders/s    503   other   max ms");
        while Instant::now() < end {
            tokio::time::sleep(every.min(end.saturating_duration_since(Instant::now()))).await;
            let now = Instant::now();
            let i = progress.take(now - last);
            last = now;
            eprintln!(
                "{:>8.0}s {:>10.0} {:>6} {:>7} {:>8.1}",
                (now - started).as_secs_f64(),
                i.ok_per_sec,
                i.unavailable,
                i.other,
                i.max.as_secs_f64() * 1e3
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Bytes;

    fn answer(status: u16, ms: u64) -> Result<Answer, ClientError> {
        let sent = Instant::now();
        Ok(Answer {
            status,
            body: Bytes::new(),
            sent,
            answered: sent + Duration::from_millis(ms),
        })
    }

    #[test]
    fn an_interval_counts_its_answers_and_then_starts_afresh() {
        let p = Progress::default();
        for (status, ms) in [(201, 3), (200, 9), (503, 5000), (409, 1)] {
            let one_order = answer(status, ms);
            p.record_orders(&one_order, &[Outcome::of(&one_order)]);
        }
        let i = p.take(Duration::from_secs(2));
        assert_eq!(i.ok_per_sec, 1.0);
        assert_eq!((i.unavailable, i.other), (1, 1));
        assert_eq!(i.max, Duration::from_secs(5));
        // A batch: its orders are counted, its one answer is timed.
        p.record_orders(
            &answer(200, 7),
            &[
                Outcome::status(201, None),
                Outcome::status(201, None),
                Outcome::status(503, Some("unavailable")),
                Outcome::status(409, Some("out_of_stock")),
            ],
        );
        let i = p.take(Duration::from_secs(1));
        assert_eq!(i.ok_per_sec, 2.0);
        assert_eq!((i.unavailable, i.other), (1, 1));
        assert_eq!(i.max, Duration::from_millis(7));
        let empty = p.take(Duration::from_secs(1));
        assert_eq!(
            (empty.ok_per_sec, empty.unavailable, empty.other),
            (0.0, 0, 0)
        );
        assert_eq!(empty.max, Duration::ZERO);
    }
}
