//! Bearer tokens on the HTTP API (API.md, "Access control"): every scope against every
//! route, 401 with `WWW-Authenticate: Bearer` for no or an unknown token, 403 naming the
//! scope, and no token in anything the gateway logs.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::http::Request;
use cluster_config::ApiToken;
use serde_json::{json, Value};
use support::{config, FakeNode};
use tower::ServiceExt;

/// Everything any test in this binary logs, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .init();
        logs
    })
}

struct Tokens {
    orders: String,
    catalog: String,
    read: String,
    all: String,
}

async fn gateway() -> (FakeNode, axum::Router, Tokens) {
    captured();
    let node = FakeNode::start(1).await;
    let new = || cluster_config::mtls::token::generate().unwrap();
    let tokens = Tokens {
        orders: new(),
        catalog: new(),
        read: new(),
        all: new(),
    };
    let entry = |t: &str, scopes: &[&str]| ApiToken {
        name: Some("test".into()),
        sha256: cluster_config::mtls::token::hash_hex(t),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    };
    let mut c = config(vec![node.addr.clone()]);
    c.tokens = vec![
        entry(&tokens.orders, &["orders"]),
        entry(&tokens.catalog, &["catalog"]),
        entry(&tokens.read, &["read"]),
        entry(&tokens.all, &["orders", "catalog", "read"]),
    ];
    c.validate().unwrap();
    (node, gateway::app(&c).unwrap(), tokens)
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, axum::http::HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let response = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Every route of the API, in an order that makes each succeed with the right token, and
/// the scope it needs.
fn routes() -> Vec<(&'static str, &'static str, Option<Value>, &'static str)> {
    let order =
        |id: &str| json!({"order_id": id, "user_id": "u-1", "items": [{"sku": "A1", "qty": 1}]});
    vec![
        (
            "POST",
            "/v1/skus",
            Some(json!({"sku": "A1", "stock": 100})),
            "catalog",
        ),
        (
            "POST",
            "/v1/skus/A1/restock",
            Some(json!({"request_id": "r-1", "delta": 5})),
            "catalog",
        ),
        (
            "PATCH",
            "/v1/skus/A1",
            Some(json!({"sale_window": null})),
            "catalog",
        ),
        ("GET", "/v1/skus/A1", None, "read"),
        ("GET", "/v1/skus", None, "read"),
        ("POST", "/v1/orders", Some(order("o-1")), "orders"),
        (
            "POST",
            "/v1/orders/batch",
            Some(json!({"orders": [order("o-2")]})),
            "orders",
        ),
        ("GET", "/v1/orders/o-1", None, "read"),
        ("GET", "/v1/orders?user_id=u-1", None, "read"),
        (
            "POST",
            "/v1/orders/o-1/pay",
            Some(json!({"payment_ref": "p-1"})),
            "orders",
        ),
        ("POST", "/v1/orders/o-1/refund", Some(json!({})), "orders"),
        ("POST", "/v1/orders/o-2/cancel", Some(json!({})), "orders"),
        ("GET", "/v1/cluster", None, "read"),
    ]
}

#[tokio::test]
async fn every_scope_against_every_route() {
    let (_node, app, t) = gateway().await;
    for (method, uri, body, needs) in routes() {
        // No token, an unknown one: 401 with the challenge, before the route runs.
        for token in [None, Some("not-a-configured-token")] {
            let (status, headers, body) = call(&app, method, uri, body.clone(), token).await;
            assert_eq!(status, 401, "{method} {uri} with {token:?}: {body}");
            assert_eq!(headers["www-authenticate"], "Bearer", "{method} {uri}");
            assert_eq!(body["error"]["code"], "unauthenticated");
        }
        // Each token lacking the scope: 403 naming it.
        for (scope, token) in [
            ("orders", &t.orders),
            ("catalog", &t.catalog),
            ("read", &t.read),
        ] {
            if scope == needs {
                continue;
            }
            let (status, _, body) = call(&app, method, uri, body.clone(), Some(token)).await;
            assert_eq!(status, 403, "{method} {uri} with {scope}: {body}");
            assert_eq!(body["error"]["code"], "forbidden");
            assert_eq!(body["error"]["scope"], needs, "{method} {uri}");
        }
        // The token with that scope alone gets through (2xx).
        let own = match needs {
            "orders" => &t.orders,
            "catalog" => &t.catalog,
            _ => &t.read,
        };
        let (status, _, body) = call(&app, method, uri, body.clone(), Some(own)).await;
        assert!(
            (200..300).contains(&status),
            "{method} {uri} with {needs}: {status} {body}"
        );
    }
    // A token with every scope reads too; operations need no token.
    let (status, _, _) = call(&app, "GET", "/v1/skus/A1", None, Some(&t.all)).await;
    assert_eq!(status, 200);
    for uri in ["/healthz", "/metrics"] {
        let (status, _, _) = call(&app, "GET", uri, None, None).await;
        assert_eq!(status, 200, "{uri}");
    }
    let (status, _, _) = call(&app, "GET", "/readyz", None, None).await;
    assert_ne!(status, 401);
    // A future GET route under /v1/ needs read like the rest: 401 without a token.
    let (status, _, _) = call(&app, "GET", "/v1/events", None, None).await;
    assert_eq!(status, 401);

    // Nothing logged (at any level, all tests of this binary so far) names a token.
    let logs = String::from_utf8_lossy(&captured().0.lock().unwrap()).to_string();
    assert!(!logs.is_empty(), "the capture must see the gateway's logs");
    for token in [&t.orders, &t.catalog, &t.read, &t.all] {
        assert!(!logs.contains(token.as_str()), "a token is in the logs");
        assert!(
            !logs.contains(&cluster_config::mtls::token::hash_hex(token)),
            "a token hash is in the logs"
        );
    }
    assert!(!logs.contains("not-a-configured-token"));
}

#[tokio::test]
async fn without_tokens_configured_the_api_is_open() {
    captured();
    let node = FakeNode::start(1).await;
    let app = gateway::app(&config(vec![node.addr.clone()])).unwrap();
    let (status, _, body) = call(
        &app,
        "POST",
        "/v1/skus",
        Some(json!({"sku": "B1", "stock": 1})),
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn the_openapi_document_needs_no_token() {
    let (_node, app, t) = gateway().await;
    for token in [
        None,
        Some("not-a-configured-token"),
        Some(t.orders.as_str()),
    ] {
        let (status, headers, body) = call(&app, "GET", "/openapi.json", None, token).await;
        assert_eq!(status, 200, "with {token:?}: {body}");
        assert!(headers.get("www-authenticate").is_none());
        assert!(body["openapi"].is_string(), "{body}");
    }
}
