//! A histogram made only of atomics. prometheus-client's own `Histogram` takes a lock on
//! every observation; the write-ahead log's IO thread, apply and the group commit observe
//! on their hot paths, where a contended lock would cost more than the measurement.
//!
//! Bounds and the sum are kept in whole units of the observation (nanoseconds for durations,
//! commands for counts), so observing is a few integer comparisons and two atomic adds. The
//! count is what the buckets add up to, so a scrape between the two adds still shows a
//! consistent histogram.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Histogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Upper bounds in units, ascending.
    bounds: Box<[u64]>,
    /// Units in what the exposition shows: 1e9 turns nanoseconds into seconds.
    units_per_shown: f64,
    /// One per bound, and a last one past every bound; not cumulative.
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl Histogram {
    fn with_bounds(bounds: Vec<u64>, units_per_shown: f64) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{bounds:?}");
        let buckets = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self {
            inner: Arc::new(Inner {
                bounds: bounds.into(),
                units_per_shown,
                buckets,
                sum: AtomicU64::new(0),
            }),
        }
    }

    /// Durations, shown in seconds, with these upper bounds in seconds.
    pub fn of_seconds(bounds: &[f64]) -> Self {
        let nanos = bounds.iter().map(|s| (s * 1e9).round() as u64).collect();
        Self::with_bounds(nanos, 1e9)
    }

    /// Whole numbers (such as commands per entry) with these upper bounds.
    pub fn of_counts(bounds: &[u64]) -> Self {
        Self::with_bounds(bounds.to_vec(), 1.0)
    }

    pub fn observe(&self, units: u64) {
        let inner = &*self.inner;
        let bucket = inner
            .bounds
            .iter()
            .position(|bound| units <= *bound)
            .unwrap_or(inner.bounds.len());
        inner.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        inner.sum.fetch_add(units, Ordering::Relaxed);
    }

    pub fn observe_duration(&self, elapsed: Duration) {
        self.observe(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn observe_since(&self, started: Instant) {
        self.observe_duration(started.elapsed());
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.inner
            .buckets
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .sum()
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let inner = &*self.inner;
        let buckets: Vec<(f64, u64)> = inner
            .bounds
            .iter()
            .map(|b| *b as f64 / inner.units_per_shown)
            .chain(std::iter::once(f64::INFINITY))
            .zip(inner.buckets.iter())
            .map(|(bound, n)| (bound, n.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = inner.sum.load(Ordering::Relaxed) as f64 / inner.units_per_shown;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    fn render(name: &str, h: &Histogram) -> String {
        let mut registry = Registry::default();
        registry.register(name, "test", h.clone());
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn durations_land_in_their_bucket_and_show_in_seconds() {
        let h = Histogram::of_seconds(&[0.001, 0.01, 0.1]);
        h.observe_duration(Duration::from_micros(500));
        h.observe_duration(Duration::from_millis(1));
        h.observe_duration(Duration::from_millis(20));
        h.observe_duration(Duration::from_secs(3));
        assert_eq!(h.count(), 4);
        let text = render("fsync_seconds", &h);
        for line in [
            "fsync_seconds_bucket{le=\"0.001\"} 2",
            "fsync_seconds_bucket{le=\"0.01\"} 2",
            "fsync_seconds_bucket{le=\"0.1\"} 3",
            "fsync_seconds_bucket{le=\"+Inf\"} 4",
            "fsync_seconds_count 4",
            "fsync_seconds_sum 3.0215",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
        }
    }

    #[test]
    fn counts_keep_whole_bounds() {
        let h = Histogram::of_counts(&[1, 4, 16]);
        for n in [1, 3, 4, 5, 100] {
            h.observe(n);
        }
        let text = render("commands", &h);
        for line in [
            "commands_bucket{le=\"1.0\"} 1",
            "commands_bucket{le=\"4.0\"} 3",
            "commands_bucket{le=\"16.0\"} 4",
            "commands_bucket{le=\"+Inf\"} 5",
            "commands_sum 113.0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
        }
    }
}
