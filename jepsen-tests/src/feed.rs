//! The event-feed client of a run: one consumer that follows `GET /v1/events/stream` through
//! the faults as an order service would, reconnecting with `Last-Event-ID` (to the next
//! gateway when one does not answer), and records every event it is handed. `feed_check`
//! then holds the record against the history.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

/// Longer than the gateway's 15 s keep-alive: a stream silent for this long is dead.
const SILENCE: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// One event as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedEvent {
    pub id: u64,
    pub kind: String,
    pub revision: u64,
    /// For order events.
    pub order_id: Option<String>,
    pub status: Option<String>,
    /// For SKU events.
    pub sku: Option<String>,
}

impl FeedEvent {
    fn parse(body: &Value) -> Option<FeedEvent> {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Some(FeedEvent {
            id: body["id"].as_u64()?,
            kind: text(&body["type"])?,
            revision: body["revision"].as_u64()?,
            order_id: text(&body["order"]["order_id"]),
            status: text(&body["order"]["status"]),
            sku: text(&body["sku"]["sku"]),
        })
    }
}

/// What the consumer saw.
#[derive(Clone, Debug, Default)]
pub struct FeedLog {
    /// In the order received, repeats included (the check looks for them).
    pub events: Vec<FeedEvent>,
    pub connections: u64,
    /// Why streams ended or could not open (the last few), for the report.
    pub interruptions: Vec<String>,
    /// The consumer was told the head to reach and did not reach it in time.
    pub unfinished: Option<String>,
}

/// A running consumer: `finish` tells it the head to read up to and returns its log.
pub struct Feed {
    target: watch::Sender<Option<u64>>,
    task: tokio::task::JoinHandle<FeedLog>,
}

impl Feed {
    pub fn start(gateways: Vec<SocketAddr>) -> Feed {
        let (target, target_rx) = watch::channel(None);
        let task = tokio::spawn(follow(gateways, target_rx));
        Feed { target, task }
    }

    /// Lets the consumer run until it has received event `head`, at most `patience`.
    pub async fn finish(self, head: u64, patience: Duration) -> FeedLog {
        let deadline = Instant::now() + patience;
        let _ = self.target.send(Some(head));
        let mut task = self.task;
        match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(Ok(log)) => log,
            Ok(Err(e)) => FeedLog {
                unfinished: Some(format!("the feed task failed: {e}")),
                ..FeedLog::default()
            },
            Err(_) => {
                task.abort();
                FeedLog {
                    unfinished: Some(format!("did not reach event {head} within {patience:?}")),
                    ..FeedLog::default()
                }
            }
        }
    }
}

async fn follow(gateways: Vec<SocketAddr>, mut target: watch::Receiver<Option<u64>>) -> FeedLog {
    let mut log = FeedLog::default();
    let mut last = 0u64;
    let mut next_gateway = 0usize;
    loop {
        if target.borrow().is_some_and(|head| last >= head) {
            return log;
        }
        let gateway = gateways[next_gateway % gateways.len()];
        next_gateway += 1;
        log.connections += 1;
        let ended = tokio::select! {
            ended = stream_once(gateway, &mut last, &mut log.events) => ended,
            // A new target may already be reached: look again.
            _ = target.changed() => Ok(()),
        };
        if let Err(why) = ended {
            if log.interruptions.len() >= 20 {
                log.interruptions.remove(0);
            }
            log.interruptions.push(format!("{gateway}: {why}"));
        }
        if target.borrow().is_some_and(|head| last >= head) {
            return log;
        }
        tokio::time::sleep(RECONNECT_PAUSE).await;
    }
}

/// Reads one stream from `last` until it ends, fails, or falls silent.
async fn stream_once(
    gateway: SocketAddr,
    last: &mut u64,
    events: &mut Vec<FeedEvent>,
) -> Result<(), String> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(gateway))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = Request::get("/v1/events/stream")
        .header(hyper::header::HOST, gateway.to_string())
        .header("last-event-id", last.to_string())
        .body(Empty::<Bytes>::new())
        .expect("a well-formed request");
    let mut response = tokio::time::timeout(SILENCE, sender.send_request(request))
        .await
        .map_err(|_| "no answer".to_owned())?
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    if status != 200 {
        let body = response.into_body().collect().await.map(|b| b.to_bytes());
        return Err(format!(
            "answered {status}: {}",
            response_status_text(&body)
        ));
    }
    let mut buffer = String::new();
    loop {
        let frame = match tokio::time::timeout(SILENCE, response.body_mut().frame()).await {
            Err(_) => return Err(format!("silent for {SILENCE:?}")),
            Ok(None) => return Err("the gateway ended the stream".into()),
            Ok(Some(Err(e))) => return Err(format!("body: {e}")),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buffer.push_str(&String::from_utf8_lossy(&data));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let event = serde_json::from_str::<Value>(data)
                .ok()
                .and_then(|body| FeedEvent::parse(&body))
                .ok_or_else(|| format!("an event that does not parse: {data}"))?;
            *last = (*last).max(event.id);
            events.push(event);
        }
    }
}

fn response_status_text(body: &Result<Bytes, hyper::Error>) -> String {
    match body {
        Ok(bytes) => String::from_utf8_lossy(bytes).chars().take(200).collect(),
        Err(e) => format!("(body unreadable: {e})"),
    }
}
