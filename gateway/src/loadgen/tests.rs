//! The workloads against a fake gateway: an in-process axum server with just the four
//! routes they use, stock kept in an atomic counter per SKU, and knobs to misbehave (sell
//! more than the stock, answer some orders or batches `503`, create less stock than asked).
//! It also counts connections and requests without `Content-Type: application/json`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::*;

struct FakeSku {
    total: u64,
    /// Units that may still be reserved (the stock, plus `oversell`).
    left: AtomicU64,
    reserved: AtomicU64,
}

#[derive(Default)]
struct Fake {
    /// Units sold beyond the stock of every SKU: a broken store.
    oversell: u64,
    /// Answer every `fail_every`-th order, or batch request, `503 unavailable` (0: never).
    fail_every: u64,
    /// Create SKUs with at most this stock, whatever the create asks (0: as asked): to run
    /// out within a short run.
    stock_cap: u64,
    /// The first this many orders are answered only after `SLOW_START` (a cluster warming).
    slow_first: u64,
    skus: Mutex<HashMap<String, Arc<FakeSku>>>,
    orders: AtomicU64,
    batches: AtomicU64,
    /// Orders in each batch request, in arrival order.
    batch_sizes: Mutex<Vec<usize>>,
    order_ids: Mutex<HashSet<String>>,
    duplicate_order_ids: AtomicU64,
    connections: AtomicU64,
    without_json_type: AtomicU64,
}

impl Fake {
    fn check_content_type(&self, headers: &HeaderMap) {
        if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
            self.without_json_type.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn sku(&self, name: &str) -> Option<Arc<FakeSku>> {
        self.skus.lock().unwrap().get(name).cloned()
    }

    /// Notes an order's id, counting ids seen before.
    fn receive(&self, order: &Value) {
        let order_id = order["order_id"].as_str().unwrap().to_string();
        if !self.order_ids.lock().unwrap().insert(order_id) {
            self.duplicate_order_ids.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reserves one unit for the order: the order, or the status and error object.
    fn place(&self, order: &Value) -> Result<Value, (StatusCode, Value)> {
        let name = order["items"][0]["sku"].as_str().unwrap().to_string();
        let Some(sku) = self.sku(&name) else {
            return Err((
                StatusCode::NOT_FOUND,
                error_object("sku_not_found", json!({"sku": name})),
            ));
        };
        match sku
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(1))
        {
            Ok(_) => {
                sku.reserved.fetch_add(1, Ordering::SeqCst);
                Ok(
                    json!({"order_id": order["order_id"], "user_id": order["user_id"],
                          "items": order["items"], "status": "reserved"}),
                )
            }
            Err(_) => Err((
                StatusCode::CONFLICT,
                error_object("out_of_stock", json!({"sku": name, "available": 0})),
            )),
        }
    }
}

fn error_object(code: &str, extra: Value) -> Value {
    let mut error = json!({"code": code, "message": code});
    if let (Some(e), Value::Object(extra)) = (error.as_object_mut(), extra) {
        e.extend(extra);
    }
    error
}

fn error(status: StatusCode, code: &str, extra: Value) -> Response {
    (status, Json(json!({ "error": error_object(code, extra) }))).into_response()
}

fn sku_body(name: &str, sku: &FakeSku) -> Value {
    let reserved = sku.reserved.load(Ordering::SeqCst);
    json!({"sku": name, "total": sku.total, "available": sku.total.saturating_sub(reserved),
           "reserved": reserved, "sold": 0, "refunded": 0, "per_user_limit": null,
           "sale_window": null, "revision": 1})
}

async fn create_sku_route(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    fake.check_content_type(&headers);
    let body: Value = serde_json::from_slice(&body).unwrap();
    let name = body["sku"].as_str().unwrap().to_string();
    let mut stock = body["stock"].as_u64().unwrap();
    if fake.stock_cap > 0 {
        stock = stock.min(fake.stock_cap);
    }
    let mut skus = fake.skus.lock().unwrap();
    if let Some(sku) = skus.get(&name) {
        return if sku.total == stock {
            (StatusCode::OK, Json(sku_body(&name, sku))).into_response()
        } else {
            error(StatusCode::CONFLICT, "sku_exists", json!({"sku": name}))
        };
    }
    let sku = Arc::new(FakeSku {
        total: stock,
        left: AtomicU64::new(stock + fake.oversell),
        reserved: AtomicU64::new(0),
    });
    let answer = (StatusCode::CREATED, Json(sku_body(&name, &sku))).into_response();
    skus.insert(name, sku);
    answer
}

async fn read_sku_route(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    fake.check_content_type(&headers);
    match fake.sku(&name) {
        Some(sku) => (StatusCode::OK, Json(sku_body(&name, &sku))).into_response(),
        None => error(StatusCode::NOT_FOUND, "sku_not_found", json!({"sku": name})),
    }
}

async fn order_route(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: Bytes) -> Response {
    fake.check_content_type(&headers);
    let body: Value = serde_json::from_slice(&body).unwrap();
    fake.receive(&body);
    let n = fake.orders.fetch_add(1, Ordering::SeqCst) + 1;
    if fake.fail_every > 0 && n % fake.fail_every == 0 {
        return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", json!({}));
    }
    if n <= fake.slow_first {
        tokio::time::sleep(SLOW_START).await;
    }
    match fake.place(&body) {
        Ok(order) => (StatusCode::CREATED, Json(order)).into_response(),
        Err((status, error)) => (status, Json(json!({ "error": error }))).into_response(),
    }
}

async fn batch_route(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: Bytes) -> Response {
    fake.check_content_type(&headers);
    let body: Value = serde_json::from_slice(&body).unwrap();
    let orders = body["orders"].as_array().unwrap();
    fake.batch_sizes.lock().unwrap().push(orders.len());
    orders.iter().for_each(|o| fake.receive(o));
    let n = fake.batches.fetch_add(1, Ordering::SeqCst) + 1;
    if fake.fail_every > 0 && n % fake.fail_every == 0 {
        return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", json!({}));
    }
    let results: Vec<Value> = orders
        .iter()
        .map(|order| {
            fake.orders.fetch_add(1, Ordering::SeqCst);
            match fake.place(order) {
                Ok(order) => json!({"status": 201, "order": order}),
                Err((status, error)) => json!({"status": status.as_u16(), "error": error}),
            }
        })
        .collect();
    (StatusCode::OK, Json(json!({ "results": results }))).into_response()
}

/// Serves `fake` on a free loopback port; returns the base URL.
async fn serve(fake: Arc<Fake>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = fake.clone();
    let listener = listener.tap_io(move |_| {
        counter.connections.fetch_add(1, Ordering::SeqCst);
    });
    let app = Router::new()
        .route("/v1/skus", post(create_sku_route))
        .route("/v1/skus/{sku}", get(read_sku_route))
        .route("/v1/orders", post(order_route))
        .route("/v1/orders/batch", post(batch_route))
        .with_state(fake);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn client_for(fake: &Arc<Fake>, connections: usize) -> HttpClient {
    let url = serve(fake.clone()).await;
    HttpClient::new(
        Target::parse(&url).unwrap(),
        connections,
        Duration::from_secs(30),
    )
}

fn sale(sku: &str, stock: u64, buyers: u64) -> FlashSale {
    FlashSale {
        sku: sku.to_string(),
        stock,
        buyers,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flash_sale_sells_exactly_the_stock_over_a_bounded_pool() {
    let fake = Arc::new(Fake::default());
    let client = client_for(&fake, 16).await;
    let report = run_flash_sale(&client, &sale("phone", 10, 300))
        .await
        .unwrap();
    assert_eq!(report.succeeded(), 10, "{report}");
    assert_eq!(report.out_of_stock(), 290, "{report}");
    assert!(report.others().is_empty(), "{report}");
    assert_eq!(report.counts.total(), 300);
    assert_eq!(report.latency.count, 300);
    assert!(report.latency.p50 <= report.latency.p99);
    assert!(report.latency.p99 <= report.latency.max);
    assert!(report.wall >= report.latency.max);
    assert_eq!(
        report.levels,
        SkuLevels {
            total: 10,
            available: 0,
            reserved: 10,
            sold: 0
        }
    );
    assert!(report.passed(), "{report}");
    let text = report.to_string();
    assert!(text.contains("PASS: sold exactly 10 units"), "{text}");
    assert!(text.contains("out_of_stock (409)"), "{text}");
    // Every buyer had its own order id; every request said it was JSON.
    assert_eq!(fake.order_ids.lock().unwrap().len(), 300);
    assert!(fake.order_ids.lock().unwrap().contains("phone-fs-300"));
    assert_eq!(fake.duplicate_order_ids.load(Ordering::SeqCst), 0);
    assert_eq!(fake.without_json_type.load(Ordering::SeqCst), 0);
    // Keep-alive over at most 16 connections, however many buyers.
    assert!(client.connections_opened() <= 16);
    let accepted = fake.connections.load(Ordering::SeqCst);
    assert!((1..=16).contains(&accepted), "{accepted} connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flash_sale_fails_when_the_store_oversells() {
    let fake = Arc::new(Fake {
        oversell: 1,
        ..Fake::default()
    });
    let client = client_for(&fake, 8).await;
    let report = run_flash_sale(&client, &sale("phone", 10, 200))
        .await
        .unwrap();
    assert_eq!(report.succeeded(), 11, "{report}");
    assert_eq!(report.levels.reserved, 11);
    assert!(!report.passed());
    let problems = report.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("11 buyers succeeded, expected exactly 10"),
        "{problems:?}"
    );
    assert!(report.to_string().contains("FAIL: 11 buyers succeeded"));
}

#[tokio::test]
async fn flash_sale_with_fewer_buyers_than_stock_sells_one_each() {
    let fake = Arc::new(Fake::default());
    let client = client_for(&fake, 4).await;
    let report = run_flash_sale(&client, &sale("tv", 10, 4)).await.unwrap();
    assert_eq!((report.succeeded(), report.out_of_stock()), (4, 0));
    assert_eq!(report.levels.available, 6);
    assert!(report.passed(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_answers_are_counted_by_status_and_code() {
    let fake = Arc::new(Fake {
        fail_every: 10,
        ..Fake::default()
    });
    let client = client_for(&fake, 8).await;
    let report = run_flash_sale(&client, &sale("console", 5, 100))
        .await
        .unwrap();
    assert_eq!(
        report.others(),
        vec![(Outcome::status(503, Some("unavailable")), 10)]
    );
    assert_eq!(report.succeeded(), 5);
    assert_eq!(report.out_of_stock(), 85);
    assert_eq!(report.counts.other(), 10);
    assert!(report.passed(), "{report}");
    assert!(report.to_string().contains("other: 503 unavailable"));
}

#[tokio::test]
async fn flash_sale_stops_when_the_sku_cannot_be_created() {
    let fake = Arc::new(Fake::default());
    let client = client_for(&fake, 2).await;
    create_sku(&client, "taken", 3).await.unwrap();
    let err = run_flash_sale(&client, &sale("taken", 10, 5))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LoadgenError::Gateway(m) if m.contains("409") && m.contains("sku_exists")),
        "{err}"
    );
    assert_eq!(fake.orders.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn no_gateway_is_an_error_not_a_result() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let client = HttpClient::new(
        Target::parse(&format!("http://{addr}")).unwrap(),
        2,
        Duration::from_secs(5),
    );
    let err = run_flash_sale(&client, &sale("x", 1, 1)).await.unwrap_err();
    assert!(
        matches!(err, LoadgenError::Client(ClientError::Connect { .. })),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_clients_spread_unique_orders_over_the_skus() {
    let fake = Arc::new(Fake::default());
    let client = client_for(&fake, 8).await;
    let run = Sustained {
        create_concurrency: 2,
        run_id: "t1".to_string(),
        ..Sustained::new(4, Duration::from_millis(50), 5)
    };
    let report = run_sustained(&client, &run).await.unwrap();
    let skus = fake.skus.lock().unwrap();
    let mut names: Vec<&String> = skus.keys().collect();
    names.sort();
    assert_eq!(names, ["t1-0", "t1-1", "t1-2", "t1-3", "t1-4"]);
    assert!(skus.values().all(|s| s.total == UNLIMITED_STOCK));
    let reserved: u64 = skus
        .values()
        .map(|s| s.reserved.load(Ordering::SeqCst))
        .sum();
    // Every client sends at least once; every order was answered 201 and reserved one unit.
    assert!(report.counts.ok() >= 4, "{report}");
    assert_eq!(report.counts.ok(), report.counts.total(), "{report}");
    assert_eq!(reserved, report.counts.ok());
    assert_eq!(report.latency.count as u64, report.counts.total());
    assert_eq!(fake.duplicate_order_ids.load(Ordering::SeqCst), 0);
    assert_eq!(fake.without_json_type.load(Ordering::SeqCst), 0);
    assert!(report.orders_per_sec() > 0.0);
    assert!(fake.connections.load(Ordering::SeqCst) <= 8);
    assert!(report.to_string().contains("orders/s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_creates_its_skus_over_connections_of_their_own() {
    let fake = Arc::new(Fake::default());
    let client = client_for(&fake, 1).await;
    let run = Sustained {
        create_concurrency: 4,
        run_id: "t-create".to_string(),
        ..Sustained::new(1, Duration::from_millis(20), 40)
    };
    let report = run_sustained(&client, &run).await.unwrap();
    assert_eq!(fake.skus.lock().unwrap().len(), 40);
    // The run's one client used one connection; the creates ran four at a time beside it.
    let opened = fake.connections.load(Ordering::SeqCst);
    assert!((3..=5).contains(&opened), "{opened} connections");
    assert_eq!(client.connections_opened(), 1);
    assert!(report.counts.ok() >= 1, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs_every_workload_into_one_table() {
    let fake = Arc::new(Fake::default());
    let client = client_for(&fake, 8).await;
    let bench = Bench {
        duration: Duration::from_millis(20),
        flash_stock: 3,
        flash_buyers: 40,
        hot_clients: vec![2, 4],
        spread_skus: 7,
        spread_clients: 3,
        create_concurrency: 2,
    };
    let mut steps = Vec::new();
    let report = run_bench(&client, &bench, |s| steps.push(s.to_string()))
        .await
        .unwrap();
    assert_eq!(steps.len(), 4, "{steps:?}");
    assert!(report.problems().is_empty());
    let rows = &report.rows;
    assert_eq!(rows.len(), 4);
    assert_eq!(
        (rows[0].clients, rows[0].ok, rows[0].refused, rows[0].other),
        (40, 3, 37, 0)
    );
    assert!(matches!(rows[0].throughput, Throughput::Wall(_)));
    let clients: Vec<u64> = rows.iter().map(|r| r.clients).collect();
    assert_eq!(clients, [40, 2, 4, 3]);
    assert!(rows[1..]
        .iter()
        .all(|r| matches!(r.throughput, Throughput::OrdersPerSec(_)) && r.ok > 0));
    // 1 flash sale SKU + 2 hot + 7 spread.
    assert_eq!(fake.skus.lock().unwrap().len(), 1 + 2 + 7);
    let table = report.table();
    assert_eq!(table.lines().count(), 6, "{table}");
    assert!(table.contains("W3 7 SKUs"), "{table}");
}

#[test]
fn a_batch_request_carries_consecutive_single_unit_orders_over_the_skus() {
    let run = Sustained {
        run_id: "tb".to_string(),
        batch: Some(3),
        ..Sustained::new(1, Duration::from_secs(1), 2)
    };
    let names = run.sku_names();
    let (path, body) = run.request(&names, "tb-u-0", 7);
    assert_eq!(path, "/v1/orders/batch");
    assert_eq!(
        body,
        json!({"orders": [
            {"order_id": "tb-o-7", "user_id": "tb-u-0", "items": [{"sku": "tb-1", "qty": 1}]},
            {"order_id": "tb-o-8", "user_id": "tb-u-0", "items": [{"sku": "tb-0", "qty": 1}]},
            {"order_id": "tb-o-9", "user_id": "tb-u-0", "items": [{"sku": "tb-1", "qty": 1}]},
        ]})
    );
    let single = Sustained {
        batch: None,
        ..run.clone()
    };
    let (path, body) = single.request(&names, "tb-u-0", 7);
    assert_eq!(path, "/v1/orders");
    assert_eq!(
        body,
        json!({"order_id": "tb-o-7", "user_id": "tb-u-0",
                            "items": [{"sku": "tb-1", "qty": 1}]})
    );
    let expiring = Sustained {
        reservation_ttl_ms: Some(60_000),
        ..single
    };
    let (_, body) = expiring.request(&names, "tb-u-0", 7);
    assert_eq!(
        body,
        json!({"order_id": "tb-o-7", "user_id": "tb-u-0",
                "items": [{"sku": "tb-1", "qty": 1}], "reservation_ttl_ms": 60_000})
    );
    let anonymous = Sustained {
        gateway_ids: true,
        ..expiring
    };
    let (_, body) = anonymous.request(&names, "tb-u-0", 7);
    assert_eq!(
        body,
        json!({"user_id": "tb-u-0", "items": [{"sku": "tb-1", "qty": 1}],
                "reservation_ttl_ms": 60_000})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_batches_count_every_order_and_every_request() {
    // Two SKUs of two units each: the first two batches of five hold ten orders, so some
    // are refused whatever the timing. Every third batch request is answered 503 whole.
    let fake = Arc::new(Fake {
        stock_cap: 2,
        fail_every: 3,
        ..Fake::default()
    });
    let client = client_for(&fake, 4).await;
    let run = Sustained {
        create_concurrency: 1,
        run_id: "tb".to_string(),
        batch: Some(5),
        ..Sustained::new(2, Duration::from_millis(50), 2)
    };
    let report = run_sustained(&client, &run).await.unwrap();
    let batches = fake.batches.load(Ordering::SeqCst);
    assert!(batches >= 2, "every client sends at least once");
    assert!(fake.batch_sizes.lock().unwrap().iter().all(|n| *n == 5));
    assert_eq!(fake.duplicate_order_ids.load(Ordering::SeqCst), 0);
    assert_eq!(fake.order_ids.lock().unwrap().len() as u64, 5 * batches);

    let unavailable = batches / 3;
    assert_eq!(report.requests.total(), batches, "{report}");
    assert_eq!(report.requests.with_status(200), batches - unavailable);
    assert_eq!(
        report
            .requests
            .get(&Outcome::status(503, Some("unavailable"))),
        unavailable
    );
    assert_eq!(report.counts.total(), 5 * batches, "{report}");
    assert_eq!(
        report.counts.get(&Outcome::status(201, None)),
        4,
        "all the stock"
    );
    assert_eq!(
        report
            .counts
            .get(&Outcome::status(409, Some("out_of_stock"))),
        5 * (batches - unavailable) - 4
    );
    assert_eq!(
        report
            .counts
            .get(&Outcome::status(503, Some("unavailable"))),
        5 * unavailable
    );
    assert_eq!(
        report.latency.count as u64, batches,
        "latency is per request"
    );
    assert!(report.requests_per_sec() > 0.0);
    assert!(report.orders_per_sec() > 0.0);
    let text = report.to_string();
    for part in [
        "of 5 orders each",
        "order outcome",
        "request outcome",
        "409 out_of_stock",
    ] {
        assert!(text.contains(part), "{part} missing in\n{text}");
    }
}

/// A gateway with only the feed: head 5, then a stream of events 6, 7 and 9, stamped 40 ms
/// before they are sent, and then silence.
async fn fake_feed() -> String {
    async fn head() -> Json<Value> {
        Json(json!({"events": [], "next": 0, "head": 5}))
    }
    async fn stream(axum::extract::RawQuery(query): axum::extract::RawQuery) -> Response {
        assert_eq!(
            query.as_deref(),
            Some("after=5"),
            "the stream starts at the head"
        );
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let body: String = [6, 7, 9]
            .iter()
            .map(|id| {
                let data = json!({"id": id, "type": "order.reserved", "time_ms": now_ms - 40});
                format!(": keep-alive\n\nid: {id}\nevent: order.reserved\ndata: {data}\n\n")
            })
            .collect();
        let chunks = futures::StreamExt::chain(
            futures::stream::iter([Ok::<_, std::convert::Infallible>(body)]),
            futures::stream::pending(),
        );
        (
            [("content-type", "text/event-stream")],
            axum::body::Body::from_stream(chunks),
        )
            .into_response()
    }
    let app = Router::new()
        .route("/v1/events", get(head))
        .route("/v1/events/stream", get(stream));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_feed_consumer_counts_events_lag_and_gaps() {
    let url = fake_feed().await;
    let client = HttpClient::new(Target::parse(&url).unwrap(), 1, Duration::from_secs(5));
    let report = run_feed(&client, Duration::from_millis(500)).await.unwrap();
    assert_eq!(report.events, 3);
    assert_eq!(report.gaps_or_repeats, 1, "9 does not follow 7");
    assert!(
        report.lag.p50 >= Duration::from_millis(40),
        "lag counts from the event's stamp: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_sends_every_scheduled_order_on_time() {
    let fake = Arc::new(Fake::default());
    let client = client_for(&fake, 4).await;
    let run = Paced {
        create_concurrency: 2,
        run_id: "t-paced".to_string(),
        ..Paced::new(400, Duration::from_millis(500), 3)
    };
    assert_eq!(run.scheduled(), 200);
    let report = run_paced(&client, &run).await.unwrap();
    assert_eq!(report.counts.total(), 200, "{report}");
    assert_eq!(report.counts.ok(), 200, "{report}");
    assert_eq!(report.latency.count, 200);
    let reserved: u64 = fake
        .skus
        .lock()
        .unwrap()
        .values()
        .map(|s| s.reserved.load(Ordering::SeqCst))
        .sum();
    assert_eq!(reserved, 200);
    assert_eq!(fake.duplicate_order_ids.load(Ordering::SeqCst), 0);
    // On a schedule: the last order is due 497.5 ms after the first, so the run cannot end
    // sooner, and a fake that answers at once does not let it run much longer.
    assert!(
        report.elapsed >= Duration::from_millis(497),
        "{:?}",
        report.elapsed
    );
    assert!(
        report.elapsed < Duration::from_secs(3),
        "{:?}",
        report.elapsed
    );
    assert!(fake.connections.load(Ordering::SeqCst) <= 4 + 2);
    let text = report.to_string();
    assert!(text.contains("400 orders/s offered"), "{text}");
    assert!(text.contains("from each order's due time"), "{text}");
    assert!(report.timeline.is_empty() && !text.contains("timeline"));
}

/// How long the fake keeps its `slow_first` orders.
const SLOW_START: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_warm_up_is_offered_first_and_left_out_of_the_figures() {
    // The warm-up's 100 orders (250 ms at 400/s) are answered slowly; the measured 200 not.
    let fake = Arc::new(Fake {
        slow_first: 100,
        ..Fake::default()
    });
    // Room for every slow answer at once, so none holds up a measured order's connection.
    let client = client_for(&fake, 128).await;
    let run = Paced {
        create_concurrency: 2,
        run_id: "t-warmup".to_string(),
        timeline: Some(Duration::from_millis(100)),
        warmup: Duration::from_millis(250),
        ..Paced::new(400, Duration::from_millis(500), 1)
    };
    assert_eq!((run.warmup_orders(), run.scheduled()), (100, 200));
    let report = run_paced(&client, &run).await.unwrap();
    assert_eq!(
        fake.orders.load(Ordering::SeqCst),
        300,
        "every order offered"
    );
    assert_eq!(report.warmup_counts.ok(), 100, "{report}");
    assert_eq!(report.counts.total(), 200, "{report}");
    assert_eq!(report.latency.count, 200);
    assert!(
        report.latency.max < SLOW_START,
        "a slow warm-up answer was counted: {report}"
    );
    let counts: Vec<usize> = report.timeline.iter().map(|s| s.latency.count).collect();
    assert_eq!(
        counts,
        [40, 40, 40, 40, 40],
        "slices from the end of the warm-up: {report}"
    );
    assert!(report.elapsed >= Duration::from_millis(497) && report.elapsed < SLOW_START * 4);
    let text = report.to_string();
    assert!(text.contains("warm-up: 100 orders over 0.2 s"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_timeline_gives_each_slice_of_the_schedule_its_orders() {
    let fake = Arc::new(Fake::default());
    let client = client_for(&fake, 4).await;
    let run = Paced {
        create_concurrency: 2,
        run_id: "t-timeline".to_string(),
        timeline: Some(Duration::from_millis(100)),
        ..Paced::new(400, Duration::from_millis(500), 1)
    };
    let report = run_paced(&client, &run).await.unwrap();
    // 200 orders due 2.5 ms apart: 40 in each of five 100 ms slices.
    let counts: Vec<usize> = report.timeline.iter().map(|s| s.latency.count).collect();
    assert_eq!(counts, [40, 40, 40, 40, 40], "{report}");
    let starts: Vec<u128> = report.timeline.iter().map(|s| s.from.as_millis()).collect();
    assert_eq!(starts, [0, 100, 200, 300, 400]);
    let text = report.to_string();
    assert!(text.contains("100 ms slice"), "{text}");
    assert!(text.contains("due from ms"), "{text}");
}

#[test]
fn slices_put_each_latency_under_its_due_time_and_keep_empty_ones() {
    let ms = Duration::from_millis;
    let samples = [
        (ms(5), ms(3)),
        (ms(95), ms(40)),
        (ms(250), ms(7)),
        (ms(260), ms(9)),
    ];
    let got = slices(&samples, ms(100));
    assert_eq!(got.len(), 3);
    assert_eq!((got[0].latency.count, got[0].latency.max), (2, ms(40)));
    assert_eq!(
        got[1].latency.count, 0,
        "nothing was due from 100 to 200 ms"
    );
    assert_eq!(
        (got[2].from, got[2].latency.count, got[2].latency.max),
        (ms(200), 2, ms(9))
    );
    assert!(slices(&[], ms(100)).is_empty());
}
