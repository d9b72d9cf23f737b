//! The gateway's Prometheus metrics (API.md "Operations"), kept with `prometheus-client` and
//! rendered in its OpenMetrics text format for `GET /metrics`.
//!
//! Kept per gateway instance rather than in a process-wide registry, so several gateways in
//! one test process do not mix their counts. Labels are bounded and static: `route` is one of
//! the router's patterns (never a raw path with ids in it), `method` an HTTP method, `status`
//! an HTTP status; recording a request allocates nothing.

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds, in seconds, of the request-duration histogram: from a fast local read to
/// the default 5 s deadline and past it.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The `Content-Type` of `render`'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
    method: &'static str,
}

/// Request durations: a count per bucket (the last one past every bound), the count and the
/// sum, each an atomic.
#[derive(Debug, Default)]
struct DurationHistogram {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl DurationHistogram {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl TypedMetric for DurationHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for DurationHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(&self.buckets)
            .map(|(bound, n)| (bound, n.load(Ordering::Relaxed)))
            .collect();
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let count = self.count.load(Ordering::Relaxed);
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, DurationHistogram>,
    retries: Counter,
    leader_changes: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<RouteLabels, DurationHistogram>::default();
        let retries = Counter::default();
        let leader_changes = Counter::default();
        let mut registry = Registry::default();
        registry.register(
            "gateway_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        registry.register(
            "gateway_request_duration_seconds",
            "Time to answer an HTTP request, by route and method",
            durations.clone(),
        );
        registry.register(
            "gateway_retries",
            "Cluster calls retried on another attempt",
            retries.clone(),
        );
        registry.register(
            "gateway_leader_changes",
            "Times the leader that answered was a different node",
            leader_changes.clone(),
        );
        Self {
            registry,
            requests,
            durations,
            retries,
            leader_changes,
        }
    }
}

impl Metrics {
    pub fn observe_request(
        &self,
        route: &'static str,
        method: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels { route, method })
            .observe(elapsed);
    }

    pub fn retry(&self) {
        self.retries.inc();
    }

    pub fn leader_changed(&self) {
        self.leader_changes.inc();
    }

    #[cfg(test)]
    pub fn leader_changes(&self) -> u64 {
        self.leader_changes.get()
    }

    /// OpenMetrics text (`CONTENT_TYPE`), which Prometheus scrapes.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        let route = "/v1/skus/{sku}";
        m.observe_request(route, "GET", 200, Duration::from_millis(3));
        m.observe_request(route, "GET", 404, Duration::from_millis(30));
        m.retry();
        m.leader_changed();
        let text = m.render();
        let labels = r#"route="/v1/skus/{sku}",method="GET""#;
        for line in [
            format!("gateway_requests_total{{{labels},status=\"200\"}} 1"),
            format!("gateway_requests_total{{{labels},status=\"404\"}} 1"),
            format!("gateway_request_duration_seconds_bucket{{le=\"0.005\",{labels}}} 1"),
            format!("gateway_request_duration_seconds_bucket{{le=\"0.05\",{labels}}} 2"),
            format!("gateway_request_duration_seconds_bucket{{le=\"+Inf\",{labels}}} 2"),
            format!("gateway_request_duration_seconds_count{{{labels}}} 2"),
            format!("gateway_request_duration_seconds_sum{{{labels}}} 0.033"),
            "gateway_retries_total 1".to_owned(),
            "gateway_leader_changes_total 1".to_owned(),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line} in:\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
