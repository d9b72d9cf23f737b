//! `invctl events`: the event feed, read through a gateway's HTTP API (`/v1/events` and its
//! Server-Sent Events stream) as any consumer reads it: what an operator sees is what an
//! order service gets, tokens and all.
//!
//! With `--follow` a dropped connection is reopened with `Last-Event-ID`, so the printed
//! feed has no gap and no repeat across gateway restarts and leader changes.

use super::gateway_http::GatewayAddr;
use super::output::Format;
use anyhow::{anyhow, bail, Context};
use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// Pause before reopening a stream that ended or could not be opened.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

pub struct EventsOptions {
    pub gateway: GatewayAddr,
    pub after: u64,
    pub follow: bool,
    pub token: Option<String>,
}

pub async fn run(opts: EventsOptions, out: Format) -> anyhow::Result<()> {
    if opts.follow {
        follow(&opts, out).await
    } else {
        print_backlog(&opts, out).await
    }
}

/// Every event after `after` up to the head at the time of the last page, then exit.
async fn print_backlog(opts: &EventsOptions, out: Format) -> anyhow::Result<()> {
    let mut after = opts.after;
    let mut all = Vec::new();
    loop {
        let path = format!("/v1/events?after={after}&limit=1000");
        let (status, body) = get(opts, &path, None).await?;
        let page: Value = serde_json::from_slice(&body).context("the gateway answered no JSON")?;
        if status != StatusCode::OK {
            bail!("{}", describe_error(status, &page));
        }
        let events = page["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() {
            break;
        }
        after = page["next"].as_u64().context("a page without `next`")?;
        if out == Format::Table {
            events.iter().for_each(print_line);
        }
        all.extend(events);
    }
    if out == Format::Json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(())
}

/// Follows the stream until interrupted; in JSON mode one event per line (NDJSON).
async fn follow(opts: &EventsOptions, out: Format) -> anyhow::Result<()> {
    let mut last = opts.after;
    loop {
        match stream_once(opts, last, out).await {
            Ok(seen) => last = seen,
            Err(StreamEnd::Fatal(e)) => return Err(e),
            Err(StreamEnd::Retry(seen, e)) => {
                last = seen;
                tracing::warn!(error = %e, last, "event stream interrupted; reconnecting");
            }
        }
        tokio::time::sleep(RECONNECT_PAUSE).await;
    }
}

enum StreamEnd {
    /// Worth reopening from the last id printed.
    Retry(u64, anyhow::Error),
    /// A 4xx: reopening would get the same answer.
    Fatal(anyhow::Error),
}

/// Reads one stream from `last` until it ends; returns the last id printed.
async fn stream_once(opts: &EventsOptions, mut last: u64, out: Format) -> Result<u64, StreamEnd> {
    let retry = |last, e| StreamEnd::Retry(last, e);
    let mut response = open(opts, "/v1/events/stream", Some(last))
        .await
        .map_err(|e| retry(last, e))?;
    let status = response.status();
    if status != StatusCode::OK {
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let error: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let e = anyhow!("{}", describe_error(status, &error));
        return Err(if status.is_client_error() {
            StreamEnd::Fatal(e)
        } else {
            retry(last, e)
        });
    }
    let mut parser = SseParser::default();
    while let Some(frame) = response.body_mut().frame().await {
        let frame = frame.map_err(|e| retry(last, e.into()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        for event in parser.push(&data) {
            let Some(id) = event["id"].as_u64() else {
                continue;
            };
            // A stream resumed by id never repeats one; guard anyway, the output is a log.
            if id <= last {
                continue;
            }
            last = id;
            match out {
                Format::Table => print_line(&event),
                Format::Json => println!("{event}"),
            }
        }
    }
    Ok(last)
}

fn print_line(event: &Value) {
    let subject = if let Some(order) = event.get("order") {
        format!(
            "order {} {} user {}",
            order["order_id"].as_str().unwrap_or("?"),
            order["status"].as_str().unwrap_or("?"),
            order["user_id"].as_str().unwrap_or("?")
        )
    } else if let Some(sku) = event.get("sku") {
        format!(
            "sku {} available {} of {}",
            sku["sku"].as_str().unwrap_or("?"),
            sku["available"],
            sku["total"]
        )
    } else {
        String::new()
    };
    println!(
        "{:>10}  {:<16} {:>13}  {subject}",
        event["id"],
        event["type"].as_str().unwrap_or("?"),
        event["time_ms"]
    );
}

fn describe_error(status: StatusCode, body: &Value) -> String {
    let error = &body["error"];
    match error["code"].as_str() {
        Some("events_compacted") => format!(
            "events before {} are past the retention; start at --after {} or later",
            error["oldest"],
            error["oldest"].as_u64().unwrap_or(1).saturating_sub(1)
        ),
        Some(code) => format!(
            "gateway answered {status} {code}: {}",
            error["message"].as_str().unwrap_or("")
        ),
        None => format!("gateway answered {status}"),
    }
}

async fn get(
    opts: &EventsOptions,
    path: &str,
    last_event_id: Option<u64>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let response = open(opts, path, last_event_id).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// One HTTP/1.1 GET on a fresh connection.
async fn open(
    opts: &EventsOptions,
    path: &str,
    last_event_id: Option<u64>,
) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
    let mut request = Request::get(path);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    if let Some(token) = &opts.token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    opts.gateway.send(request).await
}

/// Turns stream bytes into the events' JSON bodies; comments (keep-alives) and fields other
/// than `data` are dropped (`id` and `event` repeat what the body says).
#[derive(Default)]
struct SseParser {
    buffer: Vec<u8>,
}

impl SseParser {
    fn push(&mut self, bytes: &[u8]) -> Vec<Value> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = find_blank_line(&self.buffer) {
            let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&block);
            let data: String = text
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect::<Vec<_>>()
                .join("\n");
            if let Ok(event) = serde_json::from_str(&data) {
                events.push(event);
            }
        }
        events
    }
}

fn find_blank_line(buffer: &[u8]) -> Option<usize> {
    buffer.windows(2).position(|w| w == b"\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_reads_come_out_whole_and_comments_are_dropped() {
        let mut parser = SseParser::default();
        let stream = b": keep-alive\n\nid: 1\nevent: sku.created\ndata: {\"id\":1}\n\nid: 2\nda";
        let first = parser.push(stream);
        assert_eq!(first, vec![serde_json::json!({"id": 1})]);
        let second = parser.push(b"ta: {\"id\":2}\n\n");
        assert_eq!(second, vec![serde_json::json!({"id": 2})]);
    }
}
