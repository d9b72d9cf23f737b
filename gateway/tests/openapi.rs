//! `GET /openapi.json` against the gateway itself: the document lists exactly the routes and
//! methods the router takes, and every answer the gateway gives (successes and every error
//! the fake node lets us provoke) is documented for its operation, with its error code, and
//! its body fits the documented schema.

mod openapi_support;
mod support;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use cluster_config::ApiToken;
use openapi_support::Document;
use serde_json::{json, Value};
use state_machine::{
    Event, EventKind, EventSubject, Item, Items, Order, OrderId, OrderStatus, Outcome, Qty,
    Refusal, RequestId, SalesBucket, SalesCounts, Sku, SkuCreation, UserId,
};
use support::{config, get, sku_id, FakeNode, NOW_MS};
use tower::ServiceExt;

async fn one_node() -> (FakeNode, Router) {
    let node = FakeNode::start(1).await;
    let app = gateway::app(&config(vec![node.addr.clone()])).unwrap();
    (node, app)
}

async fn document(app: &Router) -> Document {
    let answer = get(app, "/openapi.json").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.headers["content-type"], "application/json");
    Document(answer.json())
}

/// `{sku}` and `{order_id}` filled with ids that follow the identifier rule.
fn concrete(pattern: &str) -> String {
    pattern.replace("{sku}", "A1").replace("{order_id}", "o-1")
}

/// The status a request answers, without reading the body (an event stream never ends).
async fn status_of(app: &Router, method: &str, uri: &str) -> (u16, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    if status != 405 {
        return (status, Value::Null);
    }
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn document_is_openapi_3_1_with_exactly_the_routers_routes_and_methods() {
    let (_node, app) = one_node().await;
    let doc = document(&app).await;
    let version = doc.0["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "openapi: {version}");

    let documented: BTreeSet<&str> = doc.0["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let routed: BTreeSet<&str> = gateway::ROUTE_PATTERNS.into_iter().collect();
    assert_eq!(documented, routed, "paths of the document vs the router");

    // The methods a route takes: everything it does not answer `405 method_not_allowed`.
    // HEAD is left out: axum answers it for every GET route, and OpenAPI leaves it implied.
    let mut taken = Vec::new();
    for pattern in gateway::ROUTE_PATTERNS {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"] {
            let (status, body) = status_of(&app, method, &concrete(pattern)).await;
            if status == 405 {
                assert_eq!(body["error"]["code"], "method_not_allowed");
            } else {
                taken.push((pattern.to_owned(), method.to_owned()));
            }
        }
    }
    taken.sort();
    assert_eq!(
        doc.operations(),
        taken,
        "operations of the document vs the router"
    );
}

#[tokio::test]
async fn every_error_body_refers_to_the_one_error_schema() {
    let (_node, app) = one_node().await;
    let doc = document(&app).await;
    let mut errors = 0;
    for (path, method) in doc.operations() {
        let op = &doc.0["paths"][&path][method.to_ascii_lowercase()];
        for (status, response) in op["responses"].as_object().unwrap() {
            if status.starts_with('2') {
                continue;
            }
            let schema = &response["content"]["application/json"]["schema"];
            assert_eq!(
                schema["allOf"][0]["$ref"], "#/components/schemas/Error",
                "{method} {path} {status}"
            );
            assert!(
                !doc.error_codes(response).is_empty(),
                "{method} {path} {status}"
            );
            errors += 1;
        }
    }
    assert!(errors > 50, "only {errors} error responses");
}

/// Every request sent, with what it answered.
struct Recorder {
    answers: Vec<(String, String, u16, Option<Value>)>,
}

impl Recorder {
    async fn send(
        &mut self,
        app: &Router,
        method: &str,
        uri: &str,
        content_type: Option<&str>,
        body: impl Into<Body>,
        token: Option<&str>,
    ) -> (u16, Option<Value>) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        let response = app
            .clone()
            .oneshot(request.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let is_json = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v == "application/json");
        // An event stream's body never ends: its status and headers are the answer.
        let body = if is_json {
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            Some(serde_json::from_slice(&bytes).unwrap())
        } else {
            None
        };
        let path = uri.split('?').next().unwrap().to_owned();
        self.answers
            .push((method.to_owned(), path, status, body.clone()));
        (status, body)
    }

    async fn json(&mut self, app: &Router, method: &str, uri: &str, body: Value) -> u16 {
        let ct = Some("application/json");
        self.send(app, method, uri, ct, body.to_string(), None)
            .await
            .0
    }

    async fn get(&mut self, app: &Router, uri: &str) -> u16 {
        self.send(app, "GET", uri, None, Body::empty(), None)
            .await
            .0
    }

    /// Sends `uri` with `refusal` as the node's next outcome and expects `status`.
    async fn refused(
        &mut self,
        node: &FakeNode,
        app: &Router,
        uri: &str,
        body: Value,
        refusal: Refusal,
        status: u16,
    ) {
        node.refuse_next(Outcome::Refused(refusal));
        let method = if uri.starts_with("/v1/skus/A1") && !uri.ends_with("restock") {
            "PATCH"
        } else {
            "POST"
        };
        assert_eq!(self.json(app, method, uri, body).await, status, "{uri}");
    }
}

fn order_body(id: &str) -> Value {
    json!({"order_id": id, "user_id": "u-1", "items": [{"sku": "A1", "qty": 1}]})
}

fn sku_record() -> Sku {
    Sku {
        sku: sku_id("A1"),
        total: 10,
        available: 9,
        reserved: 1,
        sold: 0,
        refunded: 0,
        per_user_limit: Some(2),
        sale_window: None,
        revision: 1,
        created: SkuCreation {
            stock: 10,
            per_user_limit: Some(2),
            sale_window: None,
        },
        request_tag: 1,
        created_revision: 1,
    }
}

fn order_record() -> Order {
    Order {
        order_id: OrderId::new("o-1").unwrap(),
        user_id: UserId::new("u-1").unwrap(),
        items: Items::new(vec![Item {
            sku: sku_id("A1"),
            qty: Qty::new(1).unwrap(),
        }])
        .unwrap(),
        status: OrderStatus::Reserved,
        created_ms: NOW_MS,
        expires_ms: NOW_MS + 900_000,
        updated_ms: NOW_MS,
        payment_ref: None,
        revision: 2,
        request_tag: 2,
        paid: None,
    }
}

/// Every route succeeding, with and without optional bodies, replays included.
async fn successes(r: &mut Recorder) {
    let (node, app) = one_node().await;
    let a = &app;
    let window = json!({"start_ms": 1, "end_ms": NOW_MS * 2});
    let sku = json!({"sku": "A1", "stock": 10, "per_user_limit": 5, "sale_window": window});
    assert_eq!(r.json(a, "POST", "/v1/skus", sku.clone()).await, 201);
    assert_eq!(r.json(a, "POST", "/v1/skus", sku).await, 200);
    let restock = json!({"request_id": "r-1", "delta": 5});
    assert_eq!(r.json(a, "POST", "/v1/skus/A1/restock", restock).await, 200);
    let patch = json!({"per_user_limit": null, "sale_window": null});
    assert_eq!(r.json(a, "PATCH", "/v1/skus/A1", patch).await, 200);
    assert_eq!(r.get(a, "/v1/skus/A1").await, 200);
    assert_eq!(r.get(a, "/v1/skus?after=&limit=1").await, 200);
    node.set_sales(
        "A1",
        vec![SalesBucket {
            start_ms: 60_000,
            counts: SalesCounts {
                reserved: 2,
                paid: 1,
                cancelled: 0,
                expired: 0,
                refunded: 0,
            },
        }],
    );
    assert_eq!(r.get(a, "/v1/skus/A1/sales?from_ms=0").await, 200);

    assert_eq!(
        r.json(a, "POST", "/v1/orders", order_body("o-1")).await,
        201
    );
    assert_eq!(
        r.json(a, "POST", "/v1/orders", order_body("o-1")).await,
        200
    );
    let generated = json!({"user_id": "u-1", "items": [{"sku": "A1", "qty": 1}],
                           "reservation_ttl_ms": 60_000});
    assert_eq!(r.json(a, "POST", "/v1/orders", generated).await, 201);
    let batch = json!({"orders": [order_body("o-2"), order_body("batch"),
                                  {"user_id": "u-1", "items": [{"sku": "A1", "qty": 0}]}]});
    assert_eq!(r.json(a, "POST", "/v1/orders/batch", batch).await, 200);
    assert_eq!(r.get(a, "/v1/orders/batch").await, 200);
    assert_eq!(r.get(a, "/v1/orders/o-1").await, 200);
    assert_eq!(r.get(a, "/v1/orders?user_id=u-1&limit=10").await, 200);
    let pay = json!({"payment_ref": "p-1"});
    assert_eq!(r.json(a, "POST", "/v1/orders/o-1/pay", pay).await, 200);
    let (status, _) = r
        .send(a, "POST", "/v1/orders/o-1/refund", None, "", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        r.json(a, "POST", "/v1/orders/o-2/cancel", json!({})).await,
        200
    );
    let (status, _) = r
        .send(a, "POST", "/v1/orders/o-2/cancel", None, "", None)
        .await;
    assert_eq!(status, 200, "a cancelled order cancelled again");

    node.push_events(vec![
        Event {
            id: 1,
            kind: EventKind::SkuCreated,
            time_ms: NOW_MS,
            revision: 1,
            subject: EventSubject::Sku(sku_record()),
        },
        Event {
            id: 2,
            kind: EventKind::OrderReserved,
            time_ms: NOW_MS,
            revision: 2,
            subject: EventSubject::Order(order_record()),
        },
    ]);
    assert_eq!(r.get(a, "/v1/events?after=0&limit=10").await, 200);
    assert_eq!(r.get(a, "/v1/events/stream?after=0").await, 200);

    assert_eq!(r.get(a, "/v1/cluster").await, 200);
    assert_eq!(r.get(a, "/healthz").await, 200);
    assert_eq!(r.get(a, "/readyz").await, 200);
    assert_eq!(r.get(a, "/metrics").await, 200);
    assert_eq!(r.get(a, "/openapi.json").await, 200);
}

/// The routes that take a body, with one that fits.
fn bodies() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("POST", "/v1/skus", json!({"sku": "A1", "stock": 1})),
        (
            "POST",
            "/v1/skus/A1/restock",
            json!({"request_id": "r", "delta": 1}),
        ),
        ("PATCH", "/v1/skus/A1", json!({})),
        ("POST", "/v1/orders", order_body("o-9")),
        (
            "POST",
            "/v1/orders/batch",
            json!({"orders": [order_body("o-9")]}),
        ),
        ("POST", "/v1/orders/o-1/pay", json!({})),
        ("POST", "/v1/orders/o-1/cancel", json!({})),
        ("POST", "/v1/orders/o-1/refund", json!({})),
    ]
}

/// 400, 404, 405, 409, 410, 413, 415 and 500 on every route that can give them.
async fn client_errors(r: &mut Recorder) {
    let (node, app) = one_node().await;
    let a = &app;
    let ct = Some("application/json");
    for (method, uri, _) in bodies() {
        let (status, _) = r.send(a, method, uri, ct, "{not json", None).await;
        assert_eq!(status, 400, "{method} {uri}");
        let (status, _) = r.send(a, method, uri, Some("text/plain"), "{}", None).await;
        assert_eq!(status, 415, "{method} {uri}");
        let limit = if uri.ends_with("batch") {
            1 << 20
        } else {
            1 << 16
        };
        let huge = format!("{{\"x\": \"{}\"}}", "a".repeat(limit));
        let (status, _) = r.send(a, method, uri, ct, huge, None).await;
        assert_eq!(status, 413, "{method} {uri}");
    }
    for uri in [
        "/v1/skus?limit=0",
        "/v1/skus?colour=red",
        "/v1/skus/bad%20id",
        "/v1/skus/A1/sales?to_ms=x",
        "/v1/events?after=-1",
        "/v1/events/stream?limit=1",
        "/v1/orders",
        "/v1/orders/bad%20id",
    ] {
        assert_eq!(r.get(a, uri).await, 400, "{uri}");
    }
    let bad_qty = json!({"user_id": "u", "items": [{"sku": "A1", "qty": 0}]});
    assert_eq!(r.json(a, "POST", "/v1/orders", bad_qty).await, 400);
    let (status, _) = r
        .send(a, "POST", "/v1/orders/bad%20id/pay", None, "", None)
        .await;
    assert_eq!(status, 400);

    for uri in [
        "/v1/skus/ZZ",
        "/v1/skus/ZZ/sales",
        "/v1/orders/nope",
        "/v1/orders/batch",
    ] {
        assert_eq!(r.get(a, uri).await, 404, "{uri}");
    }
    for suffix in ["pay", "cancel", "refund"] {
        let uri = format!("/v1/orders/nope/{suffix}");
        assert_eq!(r.json(a, "POST", &uri, json!({})).await, 404, "{uri}");
    }
    let restock = json!({"request_id": "r", "delta": 1});
    assert_eq!(r.json(a, "POST", "/v1/skus/ZZ/restock", restock).await, 404);
    for uri in ["/v1/nothing", "/v2/skus", "/v1/orders/o-1/pay/now", "/"] {
        assert_eq!(r.get(a, uri).await, 404, "{uri}");
    }
    for (method, uri) in [
        ("DELETE", "/v1/skus"),
        ("PUT", "/v1/orders/o-1"),
        ("GET", "/v1/orders/o-1/pay"),
        ("POST", "/healthz"),
        ("POST", "/openapi.json"),
        ("DELETE", "/v1/events/stream"),
    ] {
        let (status, _) = r.send(a, method, uri, None, "", None).await;
        assert_eq!(status, 405, "{method} {uri}");
    }

    let sku = sku_id("A1");
    let order_id = || OrderId::new("o-1").unwrap();
    let create = json!({"sku": "A1", "stock": 1});
    let place = order_body("o-1");
    let restock = json!({"request_id": "r-1", "delta": -5});
    for (uri, body, refusal, status) in [
        (
            "/v1/skus",
            &create,
            Refusal::SkuExists { sku: sku.clone() },
            409,
        ),
        (
            "/v1/skus/A1",
            &json!({}),
            Refusal::SkuNotFound { sku: sku.clone() },
            404,
        ),
        (
            "/v1/skus/A1/restock",
            &restock,
            Refusal::InsufficientAvailable {
                sku: sku.clone(),
                available: 1,
                requested: 5,
            },
            409,
        ),
        (
            "/v1/skus/A1/restock",
            &restock,
            Refusal::RequestIdConflict {
                sku: sku.clone(),
                request_id: RequestId::new("r-1").unwrap(),
                applied_delta: 2,
            },
            409,
        ),
        (
            "/v1/skus/A1/restock",
            &json!({"request_id": "r-2", "delta": 5}),
            Refusal::TotalOverflow {
                sku: sku.clone(),
                total: 1,
            },
            400,
        ),
        (
            "/v1/orders",
            &place,
            Refusal::SkuNotFound { sku: sku.clone() },
            404,
        ),
        (
            "/v1/orders",
            &place,
            Refusal::SaleNotActive {
                sku: sku.clone(),
                start_ms: 1,
                end_ms: 2,
            },
            409,
        ),
        (
            "/v1/orders",
            &place,
            Refusal::PerUserLimitExceeded {
                sku: sku.clone(),
                limit: 1,
                held: 1,
                requested: 1,
            },
            409,
        ),
        (
            "/v1/orders",
            &place,
            Refusal::OutOfStock {
                sku: sku.clone(),
                available: 0,
                requested: 1,
            },
            409,
        ),
        (
            "/v1/orders",
            &place,
            Refusal::OrderIdConflict {
                order_id: order_id(),
            },
            409,
        ),
    ] {
        r.refused(&node, a, uri, body.clone(), refusal, status)
            .await;
    }
    for suffix in ["pay", "cancel", "refund"] {
        let refusal = Refusal::InvalidTransition {
            order_id: order_id(),
            status: OrderStatus::Expired,
        };
        let uri = format!("/v1/orders/o-1/{suffix}");
        r.refused(&node, a, &uri, json!({}), refusal, 409).await;
    }
    // A refusal inside a batch is that order's result, not the request's status.
    node.refuse_next(Outcome::Refused(Refusal::OutOfStock {
        sku: sku.clone(),
        available: 0,
        requested: 1,
    }));
    let batch = json!({"orders": [order_body("o-7")]});
    assert_eq!(r.json(a, "POST", "/v1/orders/batch", batch).await, 200);
    // An outcome of the wrong kind is a bug, answered 500.
    node.refuse_next(Outcome::Expired { orders: 0 });
    let create = json!({"sku": "B2", "stock": 1});
    assert_eq!(r.json(a, "POST", "/v1/skus", create).await, 500);

    node.compact_before(10);
    assert_eq!(r.get(a, "/v1/events?after=0").await, 410);
    assert_eq!(r.get(a, "/v1/events/stream?after=0").await, 410);
}

/// 401 and 403 on every route that needs a token, and unrouted requests without one.
async fn auth_errors(r: &mut Recorder) {
    let node = FakeNode::start(1).await;
    let read = cluster_config::mtls::token::generate().unwrap();
    let mut c = config(vec![node.addr.clone()]);
    c.tokens = vec![ApiToken {
        name: None,
        sha256: cluster_config::mtls::token::hash_hex(&read),
        scopes: vec!["read".into()],
    }];
    let app = gateway::app(&c).unwrap();
    let a = &app;
    let ct = Some("application/json");
    let doc = document(a).await;
    for (path, method) in doc.operations() {
        let uri = concrete(&path);
        let (status, _) = r.send(a, &method, &uri, ct, "{}", None).await;
        let (with_read, _) = r.send(a, &method, &uri, ct, "{}", Some(&read)).await;
        if path.starts_with("/v1/") {
            assert_eq!(status, 401, "{method} {uri}");
            if method != "GET" {
                assert_eq!(with_read, 403, "{method} {uri} with a read token");
            }
        } else {
            assert_ne!(status, 401, "{method} {uri}");
        }
    }
    for (method, uri) in [("GET", "/v1/nothing"), ("DELETE", "/v1/skus")] {
        let (status, _) = r.send(a, method, uri, None, "", None).await;
        assert_eq!(status, 401, "{method} {uri}");
    }
    let (status, _) = r.send(a, "DELETE", "/v1/skus", None, "", Some(&read)).await;
    assert_eq!(status, 403);
}

/// 429 on every `/v1/` route once the token bucket is empty.
async fn rate_limited(r: &mut Recorder) {
    let node = FakeNode::start(1).await;
    let mut c = config(vec![node.addr.clone()]);
    c.rate_limit_per_sec = Some(1);
    c.rate_limit_burst = Some(1);
    let app = gateway::app(&c).unwrap();
    let doc = document(&app).await;
    let _spend_the_token = r.get(&app, "/v1/cluster").await;
    for (path, method) in doc.operations() {
        let uri = concrete(&path);
        let ct = Some("application/json");
        let (status, _) = r.send(&app, &method, &uri, ct, "{}", None).await;
        if path.starts_with("/v1/") {
            assert_eq!(status, 429, "{method} {uri}");
        } else {
            assert_ne!(status, 429, "{method} {uri}");
        }
    }
}

/// 503 on every route that needs the cluster, when it never answers.
async fn unavailable(r: &mut Recorder) {
    let node = FakeNode::start(1).await;
    node.set_always_unavailable(true);
    let mut c = config(vec![node.addr.clone()]);
    c.request_deadline_ms = 200;
    let app = gateway::app(&c).unwrap();
    let a = &app;
    for (method, uri, body) in bodies() {
        assert_eq!(r.json(a, method, uri, body).await, 503, "{method} {uri}");
    }
    for uri in [
        "/v1/skus",
        "/v1/skus/A1",
        "/v1/skus/A1/sales",
        "/v1/events",
        "/v1/events/stream",
        "/v1/orders?user_id=u",
        "/v1/orders/o-1",
        "/v1/orders/batch",
        "/readyz",
    ] {
        assert_eq!(r.get(a, uri).await, 503, "{uri}");
    }
}

#[tokio::test]
async fn every_answer_the_gateway_gives_is_documented_for_its_operation() {
    let mut r = Recorder {
        answers: Vec::new(),
    };
    successes(&mut r).await;
    client_errors(&mut r).await;
    auth_errors(&mut r).await;
    rate_limited(&mut r).await;
    unavailable(&mut r).await;

    let (_node, app) = one_node().await;
    let doc = document(&app).await;
    let mut undocumented = Vec::new();
    for (method, path, status, body) in &r.answers {
        if let Err(e) = doc.check(method, path, *status, body.as_ref()) {
            undocumented.push(format!("{method} {path} -> {status}: {e}"));
        }
    }
    assert!(
        undocumented.is_empty(),
        "answers the document does not describe:\n{}",
        undocumented.join("\n")
    );

    // Guard the test itself: it must keep provoking every status it is meant to.
    let seen: BTreeSet<u16> = r.answers.iter().map(|a| a.2).collect();
    let wanted = [
        200, 201, 400, 401, 403, 404, 405, 409, 410, 413, 415, 429, 500, 503,
    ];
    assert_eq!(seen, wanted.into_iter().collect(), "statuses provoked");
    let codes: BTreeSet<&str> = r
        .answers
        .iter()
        .filter_map(|a| a.3.as_ref()?["error"]["code"].as_str())
        .collect();
    for code in [
        "sku_not_found",
        "order_not_found",
        "not_found",
        "out_of_stock",
        "per_user_limit_exceeded",
        "sale_not_active",
        "order_id_conflict",
        "sku_exists",
        "invalid_transition",
        "insufficient_available",
        "request_id_conflict",
        "events_compacted",
    ] {
        assert!(codes.contains(code), "{code} never provoked");
    }
}

#[tokio::test]
async fn document_answers_when_admission_control_refuses_api_requests() {
    let node = FakeNode::start(1).await;
    let mut c = config(vec![node.addr.clone()]);
    c.rate_limit_per_sec = Some(1);
    c.rate_limit_burst = Some(1);
    let app = gateway::app(&c).unwrap();
    get(&app, "/v1/cluster").await;
    get(&app, "/v1/cluster")
        .await
        .assert_error(429, "rate_limited");
    for _ in 0..3 {
        assert_eq!(get(&app, "/openapi.json").await.status, 200);
    }
}

/// `(METHOD, path)` of every "`METHOD /path`" in `text`, the query left off.
fn operations_named_in(text: &str) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let opener = format!("`{method} /");
        for (at, _) in text.match_indices(&opener) {
            let rest = &text[at + opener.len() - 1..];
            let end = rest.find(['`', '?', ' ']).unwrap_or(rest.len());
            found.insert((method.to_owned(), rest[..end].to_owned()));
        }
    }
    found
}

/// The codes of the "Errors" table: every backticked word in its code column.
fn error_codes_named_in(text: &str) -> BTreeSet<String> {
    let table = text
        .split("## Errors")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("an Errors section");
    table
        .lines()
        .filter_map(|line| line.split('|').nth(2))
        .flat_map(|column| column.split('`').skip(1).step_by(2))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_api_reference_in_docs_names_exactly_the_documents_operations_and_codes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/API.md");
    let reference = std::fs::read_to_string(path).unwrap();
    let (_node, app) = one_node().await;
    let doc = document(&app).await;

    let mut documented: BTreeSet<(String, String)> = doc
        .operations()
        .into_iter()
        .map(|(path, method)| (method, path))
        .collect();
    // The order whose id is `batch`: the reference's `GET /v1/orders/{order_id}` covers it.
    assert!(documented.remove(&("GET".to_owned(), "/v1/orders/batch".to_owned())));
    let mut named = operations_named_in(&reference);
    // The status page is HTML for people, not part of the machine-readable document.
    assert!(named.remove(&("GET".to_owned(), "/ui/".to_owned())));
    assert_eq!(
        named, documented,
        "operations in docs/API.md vs /openapi.json"
    );

    let mut codes = BTreeSet::new();
    for (path, method) in doc.operations() {
        let op = &doc.0["paths"][&path][method.to_ascii_lowercase()];
        for response in op["responses"].as_object().unwrap().values() {
            codes.extend(doc.error_codes(response));
        }
    }
    // Router-level answers (no route, no such method) belong to no operation of the document.
    let mut named = error_codes_named_in(&reference);
    for router_level in ["not_found", "method_not_allowed"] {
        assert!(named.remove(router_level), "{router_level}");
    }
    // Beyond the contract's table, and said so in the reference's last section.
    assert!(codes.remove("internal"));
    assert!(reference.contains("`500 internal`"));
    assert_eq!(named, codes, "error codes in docs/API.md vs /openapi.json");
}
