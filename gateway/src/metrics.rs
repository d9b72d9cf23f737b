//! The gateway's Prometheus metrics and their text rendering for `GET /metrics`.
//!
//! Kept per gateway instance rather than in a process-wide recorder, so several gateways in
//! one test process do not mix their counts. Labels are bounded: `route` is the matched route
//! pattern (never a raw path with ids in it), `status` an HTTP status.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds, in seconds, of the request-duration histogram: from a fast local read to
/// the default 5 s deadline and past it.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    /// Count per bucket (not cumulative; summed when rendered).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    durations: Mutex<BTreeMap<String, Histogram>>,
    retries: AtomicU64,
    leader_changes: AtomicU64,
}

impl Metrics {
    pub fn observe_request(&self, route: &str, status: u16, elapsed: Duration) {
        {
            let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            *requests.entry((route.to_owned(), status)).or_default() += 1;
        }
        let secs = elapsed.as_secs_f64();
        let mut durations = self.durations.lock().unwrap_or_else(|p| p.into_inner());
        let h = durations.entry(route.to_owned()).or_default();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            h.buckets[i] += 1;
        }
        h.count += 1;
        h.sum += secs;
    }

    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn leader_changed(&self) {
        self.leader_changes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    pub fn leader_changes(&self) -> u64 {
        self.leader_changes.load(Ordering::Relaxed)
    }

    /// Prometheus text exposition format, version 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP gateway_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE gateway_requests_total counter\n");
        {
            let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            for ((route, status), n) in requests.iter() {
                let _ = writeln!(
                    out,
                    "gateway_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str(
            "# HELP gateway_request_duration_seconds Time to answer an HTTP request, by route.\n",
        );
        out.push_str("# TYPE gateway_request_duration_seconds histogram\n");
        {
            let durations = self.durations.lock().unwrap_or_else(|p| p.into_inner());
            for (route, h) in durations.iter() {
                let route = escape(route);
                let mut cumulative = 0;
                for (bound, n) in BUCKETS.iter().zip(h.buckets.iter()) {
                    cumulative += n;
                    let _ = writeln!(
                        out,
                        "gateway_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(
                    out,
                    "gateway_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "gateway_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "gateway_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        }
        out.push_str("# HELP gateway_retries_total Cluster calls retried on another attempt.\n");
        out.push_str("# TYPE gateway_retries_total counter\n");
        let _ = writeln!(out, "gateway_retries_total {}", self.retries());
        out.push_str(
            "# HELP gateway_leader_changes_total Times the leader that answered was a different node.\n",
        );
        out.push_str("# TYPE gateway_leader_changes_total counter\n");
        let _ = writeln!(
            out,
            "gateway_leader_changes_total {}",
            self.leader_changes()
        );
        out
    }
}

/// Label values escape backslash, quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe_request("GET /v1/skus/{sku}", 200, Duration::from_millis(3));
        m.observe_request("GET /v1/skus/{sku}", 404, Duration::from_millis(30));
        m.retry();
        m.leader_changed();
        let text = m.render();
        assert!(
            text.contains("gateway_requests_total{route=\"GET /v1/skus/{sku}\",status=\"200\"} 1")
        );
        assert!(
            text.contains("gateway_requests_total{route=\"GET /v1/skus/{sku}\",status=\"404\"} 1")
        );
        assert!(text.contains(
            "gateway_request_duration_seconds_bucket{route=\"GET /v1/skus/{sku}\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "gateway_request_duration_seconds_bucket{route=\"GET /v1/skus/{sku}\",le=\"0.05\"} 2"
        ));
        assert!(
            text.contains("gateway_request_duration_seconds_count{route=\"GET /v1/skus/{sku}\"} 2")
        );
        assert!(text.contains("gateway_retries_total 1"));
        assert!(text.contains("gateway_leader_changes_total 1"));
    }
}
