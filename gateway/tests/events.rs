//! The event feed and sales routes against a fake node: page and stream shapes, query rules,
//! `410 events_compacted`, resuming by `Last-Event-ID`, and a stream that keeps going from
//! the same id when the cluster cannot answer for a while.

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use state_machine::{
    Event, EventKind, EventSubject, SalesBucket, SalesCounts, Sku, SkuCreation, SkuId,
};
use support::{config, get, post_json, FakeNode, Script};
use tower::ServiceExt;

async fn one_node() -> (FakeNode, axum::Router) {
    let node = FakeNode::start(1).await;
    let app = gateway::app(&config(vec![node.addr.clone()])).unwrap();
    (node, app)
}

fn sku(name: &str, total: u64) -> Sku {
    let created = SkuCreation {
        stock: total,
        per_user_limit: None,
        sale_window: None,
    };
    Sku {
        sku: SkuId::new(name).unwrap(),
        total,
        available: total,
        reserved: 0,
        sold: 0,
        refunded: 0,
        per_user_limit: None,
        sale_window: None,
        revision: 3,
        created,
        request_tag: 0,
        created_revision: 3,
    }
}

/// Event `id`: SKU `S<id>` created.
fn created(id: u64) -> Event {
    Event {
        id,
        kind: EventKind::SkuCreated,
        time_ms: 1_000 + id,
        revision: 10 + id,
        subject: EventSubject::Sku(sku(&format!("S{id}"), id)),
    }
}

#[tokio::test]
async fn pages_have_the_api_shape() {
    let (node, app) = one_node().await;
    node.push_events((1..=3).map(created).collect());
    let page = get(&app, "/v1/events?after=1&limit=1").await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(
        page.json(),
        json!({"events": [{"id": 2, "type": "sku.created", "time_ms": 1002, "revision": 12,
                           "sku": {"sku": "S2", "total": 2, "available": 2, "reserved": 0,
                                   "sold": 0, "refunded": 0, "per_user_limit": null,
                                   "sale_window": null, "revision": 3}}],
               "next": 2, "head": 3})
    );
    let all = get(&app, "/v1/events").await.json();
    assert_eq!(
        (all["events"].as_array().unwrap().len(), &all["next"]),
        (3, &json!(3))
    );
    let none = get(&app, "/v1/events?after=7").await.json();
    assert_eq!(none, json!({"events": [], "next": 7, "head": 3}));
}

#[tokio::test]
async fn bad_feed_and_sales_queries_are_400_naming_the_field() {
    let (_node, app) = one_node().await;
    for (uri, field) in [
        ("/v1/events?after=-1", "after"),
        ("/v1/events?after=x", "after"),
        ("/v1/events?after=9007199254740992", "after"),
        ("/v1/events?limit=0", "limit"),
        ("/v1/events?limit=1001", "limit"),
        ("/v1/events?from=1", "from"),
        ("/v1/events/stream?after=1.5", "after"),
        ("/v1/skus/A1/sales?from_ms=10&to_ms=5", "to_ms"),
        ("/v1/skus/A1/sales?from_ms=x", "from_ms"),
        ("/v1/skus/A1/sales?day=1", "day"),
    ] {
        let answer = get(&app, uri).await;
        let body = answer.assert_error(400, "invalid_request");
        assert_eq!(body["error"]["field"], field, "{uri}: {body}");
    }
    let answer = get_with(&app, "/v1/events/stream", "last-event-id", "soon").await;
    let body = answer_error(answer).await;
    assert_eq!(body["error"]["field"], "Last-Event-ID", "{body}");
}

#[tokio::test]
async fn reads_from_before_the_retention_are_410_naming_the_oldest_id() {
    let (node, app) = one_node().await;
    node.push_events((5..=6).map(created).collect());
    node.compact_before(5);
    let body = get(&app, "/v1/events?after=3")
        .await
        .assert_error(410, "events_compacted");
    assert_eq!(body["error"]["oldest"], 5);
    let stream = get_with(&app, "/v1/events/stream?after=0", "x-none", "").await;
    assert_eq!(answer_error(stream).await["error"]["oldest"], 5);
    // The id just before the oldest is still a valid place to stand.
    assert_eq!(get(&app, "/v1/events?after=4").await.json()["next"], 6);
}

#[tokio::test]
async fn a_stream_sends_the_backlog_then_new_events_and_survives_a_leaderless_spell() {
    let (node, app) = one_node().await;
    node.push_events((1..=3).map(created).collect());
    let response = app
        .clone()
        .oneshot(
            Request::get("/v1/events/stream?after=1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream",
        "{:?}",
        response.headers()
    );
    let mut body = response.into_body();
    let mut frames = SseReader::default();
    let first = frames.next_events(&mut body, 2).await;
    assert_eq!(ids(&first), vec![2, 3]);
    assert_eq!(first[0].kind, "sku.created");
    assert_eq!(first[0].data["sku"]["sku"], "S2");

    // The node cannot answer twice (no leader, then another node named): the stream waits
    // that out and goes on from event 3.
    node.script(Script::Unavailable);
    node.script(Script::Unavailable);
    node.push_events(vec![created(4), created(5)]);
    let next = frames.next_events(&mut body, 2).await;
    assert_eq!(ids(&next), vec![4, 5]);
}

#[tokio::test]
async fn last_event_id_resumes_after_that_id_whatever_the_url_says() {
    let (node, app) = one_node().await;
    node.push_events((1..=4).map(created).collect());
    let response = get_stream(&app, "/v1/events/stream?after=0", Some("3")).await;
    let mut body = response.into_body();
    let events = SseReader::default().next_events(&mut body, 1).await;
    assert_eq!(ids(&events), vec![4]);
}

#[tokio::test]
async fn sales_answers_the_buckets_in_range_and_404_for_an_unknown_sku() {
    let (node, app) = one_node().await;
    assert_eq!(
        post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 5}))
            .await
            .status,
        201
    );
    let bucket = |start_ms, reserved, paid| SalesBucket {
        start_ms,
        counts: SalesCounts {
            reserved,
            paid,
            ..Default::default()
        },
    };
    node.set_sales("A1", vec![bucket(60_000, 3, 0), bucket(120_000, 1, 2)]);
    let all = get(&app, "/v1/skus/A1/sales").await;
    assert_eq!(all.status, 200, "{}", all.text());
    assert_eq!(
        all.json(),
        json!({"sku": "A1", "bucket_ms": 60000, "buckets": [
            {"start_ms": 60000, "reserved": 3, "paid": 0, "cancelled": 0, "expired": 0, "refunded": 0},
            {"start_ms": 120000, "reserved": 1, "paid": 2, "cancelled": 0, "expired": 0, "refunded": 0}]})
    );
    let later = get(&app, "/v1/skus/A1/sales?from_ms=61000").await.json();
    assert_eq!(later["buckets"].as_array().unwrap().len(), 1);
    let body = get(&app, "/v1/skus/B2/sales")
        .await
        .assert_error(404, "sku_not_found");
    assert_eq!(body["error"]["sku"], "B2");
}

async fn get_stream(
    app: &axum::Router,
    uri: &str,
    last_event_id: Option<&str>,
) -> axum::response::Response {
    let mut request = Request::get(uri);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn get_with(
    app: &axum::Router,
    uri: &str,
    header: &str,
    value: &str,
) -> axum::response::Response {
    app.clone()
        .oneshot(
            Request::get(uri)
                .header(header, value)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
}

/// The JSON error body of an answer that is not a stream.
async fn answer_error(response: axum::response::Response) -> Value {
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(status.is_client_error(), "{status}");
    serde_json::from_slice(&bytes).unwrap()
}

#[derive(Debug)]
struct SseEvent {
    id: u64,
    kind: String,
    data: Value,
}

fn ids(events: &[SseEvent]) -> Vec<u64> {
    events.iter().map(|e| e.id).collect()
}

/// Splits an event stream's bytes into events; comment lines (keep-alives) are skipped.
#[derive(Default)]
struct SseReader {
    buffer: String,
}

impl SseReader {
    async fn next_events(&mut self, body: &mut Body, count: usize) -> Vec<SseEvent> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while events.len() < count {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_block(&block) {
                    events.push(event);
                }
            }
            if events.len() >= count {
                break;
            }
            let frame = tokio::time::timeout_at(deadline, body.frame())
                .await
                .expect("the stream sent the events in time")
                .expect("the stream is still open")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
        assert_eq!(events.len(), count, "more events than expected: {events:?}");
        events
    }
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let (mut id, mut kind, mut data) = (None, None, None);
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("id: ") {
            id = Some(v.parse().unwrap());
        } else if let Some(v) = line.strip_prefix("event: ") {
            kind = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = Some(serde_json::from_str(v).unwrap());
        }
    }
    Some(SseEvent {
        id: id?,
        kind: kind?,
        data: data?,
    })
}
