//! One event-feed consumer beside a load run: follows `GET /v1/events/stream` from the head
//! for a duration and measures how many events per second it is handed and how late each
//! arrives. Lag is the consumer's wall clock on arrival minus the event's `time_ms`, which
//! the leader stamped when it proposed the entry: so it spans commit, apply and delivery
//! (an upper bound of commit-to-delivery), and it is only meaningful on one machine's clock.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header::HOST;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use super::api::LoadgenError;
use super::client::{HttpClient, Target};
use super::stats::LatencySummary;

/// What one consumer saw over a run.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedReport {
    pub events: u64,
    pub elapsed: Duration,
    /// Ids that did not follow the previous one by exactly one.
    pub gaps_or_repeats: u64,
    pub lag: LatencySummary,
}

impl FeedReport {
    pub fn per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for FeedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "feed: {} events in {:.1} s = {:.0} events/s; lag p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; gaps or repeats: {}",
            self.events,
            self.elapsed.as_secs_f64(),
            self.per_second(),
            self.lag.p50.as_secs_f64() * 1e3,
            self.lag.p99.as_secs_f64() * 1e3,
            self.lag.max.as_secs_f64() * 1e3,
            self.gaps_or_repeats
        )
    }
}

/// Follows the feed from its head for `duration`.
pub async fn run_feed(client: &HttpClient, duration: Duration) -> Result<FeedReport, LoadgenError> {
    let answer = client.get("/v1/events?limit=1").await?;
    let head = answer
        .json()
        .and_then(|page| page["head"].as_u64())
        .ok_or_else(|| LoadgenError::Gateway(format!("no feed head in {}", answer.describe())))?;
    let target = client.target();
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| LoadgenError::Gateway(format!("connecting for the stream: {e}")))?;
    tcp.set_nodelay(true).ok();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| LoadgenError::Gateway(format!("stream handshake: {e}")))?;
    tokio::spawn(connection);
    let request = Request::get(format!("/v1/events/stream?after={head}"))
        .header(HOST, authority(target))
        .body(Empty::<Bytes>::new())
        .expect("a well-formed request");
    let mut response = sender
        .send_request(request)
        .await
        .map_err(|e| LoadgenError::Gateway(format!("opening the stream: {e}")))?;
    if response.status() != 200 {
        return Err(LoadgenError::Gateway(format!(
            "the stream answered {}",
            response.status()
        )));
    }
    let started = Instant::now();
    let end = started + duration;
    let mut lags = Vec::new();
    let mut last = head;
    let mut gaps_or_repeats = 0;
    let mut buffer = String::new();
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout_at(end.into(), response.body_mut().frame()).await
    {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let arrived_ms = wall_ms();
        buffer.push_str(&String::from_utf8_lossy(&data));
        while let Some(at) = buffer.find("\n\n") {
            let block: String = buffer.drain(..at + 2).collect();
            let Some(event) = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
            else {
                continue;
            };
            let (Some(id), Some(time_ms)) = (event["id"].as_u64(), event["time_ms"].as_u64())
            else {
                continue;
            };
            if id != last + 1 {
                gaps_or_repeats += 1;
            }
            last = id;
            lags.push(Duration::from_millis(arrived_ms.saturating_sub(time_ms)));
        }
    }
    Ok(FeedReport {
        events: lags.len() as u64,
        elapsed: started.elapsed().min(duration),
        gaps_or_repeats,
        lag: LatencySummary::from_samples(lags),
    })
}

fn authority(target: &Target) -> String {
    format!("{}:{}", target.host, target.port)
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
