//! Outcome counts and latency percentiles. Percentiles come from every sample (sorted), not
//! from a histogram.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use super::client::{Answer, ClientError};

/// What one request came to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// An HTTP answer; `code` is the API error code of a non-2xx answer, if it had one.
    Status { status: u16, code: Option<String> },
    /// No HTTP answer: connect, handshake, protocol error or timeout.
    NoAnswer(&'static str),
    /// An HTTP answer whose body is not what API.md says it is (a batch's `200` without one
    /// result per order): its orders' outcomes are unknown.
    Unreadable,
}

impl From<&ClientError> for Outcome {
    /// A failed request counts as "no answer", by the kind of failure.
    fn from(e: &ClientError) -> Outcome {
        Outcome::NoAnswer(match e {
            ClientError::BadUrl { .. } => "bad_url",
            ClientError::Connect { .. } => "connect",
            ClientError::Handshake { .. } => "handshake",
            ClientError::Http(_) => "http",
            ClientError::Timeout(_) => "timeout",
        })
    }
}

impl From<&Answer> for Outcome {
    /// The status, and for a non-2xx answer the API error code.
    fn from(answer: &Answer) -> Outcome {
        Outcome::Status {
            status: answer.status,
            code: if answer.is_success() {
                None
            } else {
                answer.error_code()
            },
        }
    }
}

impl Outcome {
    /// What a request came to, answered or not.
    pub fn of(result: &Result<Answer, ClientError>) -> Outcome {
        match result {
            Ok(answer) => Outcome::from(answer),
            Err(e) => Outcome::from(e),
        }
    }

    pub fn status(status: u16, code: Option<&str>) -> Outcome {
        Outcome::Status {
            status,
            code: code.map(str::to_string),
        }
    }

    /// A 2xx answer.
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Status { status, .. } if (200..300).contains(status))
    }

    /// A 409 answer, whatever its code.
    pub fn is_refused(&self) -> bool {
        matches!(self, Outcome::Status { status: 409, .. })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Status { status, code: None } => write!(f, "{status}"),
            Outcome::Status {
                status,
                code: Some(code),
            } => write!(f, "{status} {code}"),
            Outcome::NoAnswer(why) => write!(f, "no answer ({why})"),
            Outcome::Unreadable => write!(f, "unreadable answer"),
        }
    }
}

/// How many requests (or orders) came to each outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(BTreeMap<Outcome, u64>);

impl Counts {
    pub fn add(&mut self, outcome: Outcome) {
        *self.0.entry(outcome).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Counts) {
        for (outcome, n) in &other.0 {
            *self.0.entry(outcome.clone()).or_default() += n;
        }
    }

    pub fn get(&self, outcome: &Outcome) -> u64 {
        self.0.get(outcome).copied().unwrap_or(0)
    }

    /// Requests answered with exactly this status (any code).
    pub fn with_status(&self, status: u16) -> u64 {
        self.0
            .iter()
            .filter(|(o, _)| matches!(o, Outcome::Status { status: s, .. } if *s == status))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// 2xx answers.
    pub fn ok(&self) -> u64 {
        self.sum_where(Outcome::is_ok)
    }

    /// 409 answers.
    pub fn refused(&self) -> u64 {
        self.sum_where(Outcome::is_refused)
    }

    /// Neither 2xx nor 409, failures without an answer included.
    pub fn other(&self) -> u64 {
        self.total() - self.ok() - self.refused()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Outcome, u64)> {
        self.0.iter().map(|(o, n)| (o, *n))
    }

    fn sum_where(&self, keep: impl Fn(&Outcome) -> bool) -> u64 {
        self.0.iter().filter(|(o, _)| keep(o)).map(|(_, n)| n).sum()
    }
}

/// The `p`-th percentile (0 < p ≤ 100) of sorted samples by the nearest-rank method: the
/// smallest sample with at least `p`% of all samples at or below it. `None` when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// p50, p99 and max of a set of latencies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// How many samples; the other fields are zero when there were none.
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl LatencySummary {
    pub fn from_samples(mut samples: Vec<Duration>) -> LatencySummary {
        samples.sort_unstable();
        LatencySummary {
            count: samples.len(),
            p50: percentile(&samples, 50.0).unwrap_or_default(),
            p99: percentile(&samples, 99.0).unwrap_or_default(),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

/// Collects the results of a run: outcome counts of requests and of orders, the latency of
/// every HTTP answer, the first send and the last completion.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Per request.
    pub counts: Counts,
    /// Per order: the same as `counts` when each request carries one order.
    pub orders: Counts,
    pub latencies: Vec<Duration>,
    pub first_sent: Option<Instant>,
    pub last_done: Option<Instant>,
}

impl Recorder {
    /// Records the result of a request carrying one order. A failure without an answer is
    /// counted but has no latency; it completes now.
    pub fn record(&mut self, result: &Result<Answer, ClientError>) {
        self.record_orders(result, &[Outcome::of(result)]);
    }

    /// Records the result of a request and the outcome of each order it carried.
    pub fn record_orders(&mut self, result: &Result<Answer, ClientError>, orders: &[Outcome]) {
        for order in orders {
            self.orders.add(order.clone());
        }
        self.counts.add(Outcome::of(result));
        match result {
            Ok(answer) => {
                self.latencies.push(answer.latency());
                self.first_sent = min_instant(self.first_sent, answer.sent);
                self.last_done = max_instant(self.last_done, answer.answered);
            }
            Err(_) => {
                self.last_done = max_instant(self.last_done, Instant::now());
            }
        }
    }

    pub fn merge(&mut self, other: Recorder) {
        self.counts.merge(&other.counts);
        self.orders.merge(&other.orders);
        self.latencies.extend(other.latencies);
        if let Some(t) = other.first_sent {
            self.first_sent = min_instant(self.first_sent, t);
        }
        if let Some(t) = other.last_done {
            self.last_done = max_instant(self.last_done, t);
        }
    }

    /// From the first send to the last completion; zero if nothing was sent.
    pub fn wall(&self) -> Duration {
        match (self.first_sent, self.last_done) {
            (Some(a), Some(b)) => b.saturating_duration_since(a),
            _ => Duration::ZERO,
        }
    }

    pub fn into_summary(self) -> Summary {
        Summary {
            wall: self.wall(),
            requests: self.counts,
            orders: self.orders,
            latency: LatencySummary::from_samples(self.latencies),
        }
    }
}

/// What a [`Recorder`] came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub requests: Counts,
    pub orders: Counts,
    /// Of the requests.
    pub latency: LatencySummary,
    pub wall: Duration,
}

fn min_instant(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

fn max_instant(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.max(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(ms(50)));
        assert_eq!(percentile(&sorted, 99.0), Some(ms(99)));
        assert_eq!(percentile(&sorted, 100.0), Some(ms(100)));
        assert_eq!(percentile(&sorted, 0.1), Some(ms(1)));
        let sorted: Vec<Duration> = (1..=1000).map(ms).collect();
        assert_eq!(percentile(&sorted, 99.0), Some(ms(990)));
        assert_eq!(percentile(&sorted, 50.0), Some(ms(500)));
        // Few samples: p99 is the largest, p50 rounds up.
        let sorted = [ms(1), ms(2), ms(3)];
        assert_eq!(percentile(&sorted, 50.0), Some(ms(2)));
        assert_eq!(percentile(&sorted, 99.0), Some(ms(3)));
        assert_eq!(percentile(&[ms(7)], 50.0), Some(ms(7)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn summary_sorts_its_samples() {
        let mut samples: Vec<Duration> = (1..=200).map(ms).collect();
        samples.reverse();
        samples.swap(3, 150);
        let s = LatencySummary::from_samples(samples);
        assert_eq!(
            s,
            LatencySummary {
                count: 200,
                p50: ms(100),
                p99: ms(198),
                max: ms(200)
            }
        );
        assert_eq!(
            LatencySummary::from_samples(Vec::new()),
            LatencySummary::default()
        );
    }

    #[test]
    fn counts_split_into_ok_refused_and_other() {
        let mut c = Counts::default();
        for _ in 0..3 {
            c.add(Outcome::status(201, None));
        }
        c.add(Outcome::status(200, None));
        for _ in 0..5 {
            c.add(Outcome::status(409, Some("out_of_stock")));
        }
        c.add(Outcome::status(409, Some("order_id_conflict")));
        c.add(Outcome::status(503, Some("unavailable")));
        c.add(Outcome::status(502, None));
        c.add(Outcome::NoAnswer("timeout"));
        assert_eq!(c.total(), 13);
        assert_eq!(c.ok(), 4);
        assert_eq!(c.refused(), 6);
        assert_eq!(c.other(), 3);
        assert_eq!(c.with_status(409), 6);
        assert_eq!(c.get(&Outcome::status(409, Some("out_of_stock"))), 5);
        let mut d = Counts::default();
        d.add(Outcome::status(201, None));
        d.merge(&c);
        assert_eq!(d.get(&Outcome::status(201, None)), 4);
        assert_eq!(d.total(), 14);
    }

    #[test]
    fn outcomes_print_status_and_code() {
        assert_eq!(Outcome::status(201, None).to_string(), "201");
        assert_eq!(
            Outcome::status(409, Some("out_of_stock")).to_string(),
            "409 out_of_stock"
        );
        assert_eq!(
            Outcome::NoAnswer("timeout").to_string(),
            "no answer (timeout)"
        );
    }

    #[test]
    fn a_request_of_many_orders_counts_once_as_a_request_and_per_order() {
        let t0 = Instant::now();
        let answered = Ok(Answer {
            status: 200,
            body: hyper::body::Bytes::new(),
            sent: t0,
            answered: t0 + ms(7),
        });
        let created = Outcome::status(201, None);
        let sold_out = Outcome::status(409, Some("out_of_stock"));
        let mut r = Recorder::default();
        r.record_orders(
            &answered,
            &[created.clone(), sold_out.clone(), created.clone()],
        );
        r.record_orders(
            &Err(ClientError::Timeout(ms(1))),
            &vec![Outcome::NoAnswer("timeout"); 3],
        );
        let summary = r.into_summary();
        assert_eq!(summary.requests.total(), 2);
        assert_eq!(summary.requests.get(&Outcome::status(200, None)), 1);
        assert_eq!(summary.orders.total(), 6);
        assert_eq!(summary.orders.get(&created), 2);
        assert_eq!(summary.orders.get(&sold_out), 1);
        assert_eq!(summary.orders.get(&Outcome::NoAnswer("timeout")), 3);
        assert_eq!(summary.latency.count, 1, "latency is per answered request");
    }

    #[test]
    fn recorder_tracks_wall_time_and_latencies() {
        let t0 = Instant::now();
        let answer = |sent_ms: u64, done_ms: u64, status: u16| Answer {
            status,
            body: hyper::body::Bytes::from_static(br#"{"error":{"code":"out_of_stock"}}"#),
            sent: t0 + ms(sent_ms),
            answered: t0 + ms(done_ms),
        };
        let mut a = Recorder::default();
        a.record(&Ok(answer(5, 15, 201)));
        a.record(&Ok(answer(0, 30, 409)));
        let mut b = Recorder::default();
        b.record(&Ok(answer(10, 50, 409)));
        a.merge(b);
        assert_eq!(a.wall(), ms(50));
        let summary = a.into_summary();
        assert_eq!(summary.wall, ms(50));
        let counts = &summary.requests;
        assert_eq!(counts.get(&Outcome::status(201, None)), 1);
        assert_eq!(counts.get(&Outcome::status(409, Some("out_of_stock"))), 2);
        assert_eq!(summary.orders, summary.requests, "one order per request");
        let latency = summary.latency;
        assert_eq!(latency.count, 3);
        assert_eq!((latency.p50, latency.max), (ms(30), ms(40)));
    }
}
