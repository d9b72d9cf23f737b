//! Request ids (API.md, "Request ids"): every answer carries `x-request-id`, the client's own
//! when it follows the identifier rule, else one the gateway made; error bodies carry it as
//! `request_id`, whichever layer refused the request.

mod support;

use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};
use state_machine::{Outcome, Refusal, RequestId};
use support::{config, sku_id, FakeNode};
use tower::ServiceExt;

/// Sends a request, with `id` as its `x-request-id` if given: the answer's status, its
/// `x-request-id` and its body (JSON, or `Null`).
async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
    id: Option<&str>,
) -> (u16, String, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(id) = id {
        req = req.header("x-request-id", id);
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
    let header = response
        .headers()
        .get("x-request-id")
        .unwrap_or_else(|| panic!("{method} {uri} answered {status} without x-request-id"))
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        header,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn every_answer_carries_the_clients_id_or_a_made_one() {
    let node = FakeNode::start(1).await;
    let app = gateway::app(&config(vec![node.addr.clone()])).unwrap();
    let create = json!({"sku": "A1", "stock": 1});

    let (status, id, _) = call(
        &app,
        "POST",
        "/v1/skus",
        Some(create.clone()),
        Some("trace-7:a_b.c"),
    )
    .await;
    assert_eq!((status, id.as_str()), (201, "trace-7:a_b.c"));

    let (status, made, _) = call(&app, "GET", "/v1/skus/A1", None, None).await;
    assert_eq!(status, 200);
    assert!(made.starts_with("req-") && made.len() == 28, "{made}");
    let (_, other, _) = call(&app, "GET", "/v1/skus/A1", None, None).await;
    assert_ne!(made, other, "each request gets its own");

    for bad in ["has space", "semi;colon", &"x".repeat(129)] {
        let (_, id, _) = call(&app, "GET", "/healthz", None, Some(bad)).await;
        assert!(id.starts_with("req-"), "{bad:?} replaced by {id}");
    }
    // Operations endpoints and the status page answer with one too.
    for uri in ["/healthz", "/metrics", "/ui/"] {
        call(&app, "GET", uri, None, Some("ops-1")).await;
    }
}

#[tokio::test]
async fn error_bodies_repeat_the_id_whichever_layer_refused() {
    let node = FakeNode::start(1).await;
    let mut c = config(vec![node.addr.clone()]);
    c.max_in_flight = 1;
    let app = gateway::app(&c).unwrap();
    let cases: [(&str, &str, Option<Value>, u16); 4] = [
        ("GET", "/no/such/route", None, 404),
        ("DELETE", "/v1/skus", None, 405),
        ("POST", "/v1/skus", Some(json!({"sku": "A1"})), 400),
        ("GET", "/v1/skus/NOPE", None, 404),
    ];
    for (method, uri, body, want) in cases {
        let (status, id, body) = call(&app, method, uri, body, Some("e-1")).await;
        assert_eq!(status, want, "{method} {uri}: {body}");
        assert_eq!(id, "e-1");
        assert_eq!(body["error"]["request_id"], "e-1", "{method} {uri}: {body}");
    }
    // Without the client's id, the body names the one the header carries.
    let (_, made, body) = call(&app, "GET", "/v1/skus/NOPE", None, None).await;
    assert_eq!(body["error"]["request_id"], made.as_str());

    // Admission control's 429.
    node.close_gate().await;
    let held = tokio::spawn({
        let app = app.clone();
        async move {
            call(
                &app,
                "POST",
                "/v1/skus",
                Some(json!({"sku": "H1", "stock": 1})),
                None,
            )
            .await
        }
    });
    support::wait_until("the first request reaches the node", || {
        node.submits().len() == 1
    })
    .await;
    let (status, _, body) = call(
        &app,
        "POST",
        "/v1/skus",
        Some(json!({"sku": "H2", "stock": 1})),
        Some("busy-1"),
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["request_id"], "busy-1");
    node.open_gate();
    held.await.unwrap();
}

#[tokio::test]
async fn tokens_401_carries_the_id_too() {
    let node = FakeNode::start(1).await;
    let mut c = config(vec![node.addr.clone()]);
    let token = cluster_config::mtls::token::generate().unwrap();
    c.tokens = vec![cluster_config::ApiToken {
        name: None,
        sha256: cluster_config::mtls::token::hash_hex(&token),
        scopes: vec!["read".into()],
    }];
    let app = gateway::app(&c).unwrap();
    let (status, id, body) = call(&app, "GET", "/v1/skus", None, Some("auth-1")).await;
    assert_eq!((status, id.as_str()), (401, "auth-1"));
    assert_eq!(body["error"]["request_id"], "auth-1");
}

#[tokio::test]
async fn a_restock_request_id_conflict_keeps_the_restocks_own_id() {
    let node = FakeNode::start(1).await;
    let app = gateway::app(&config(vec![node.addr.clone()])).unwrap();
    node.refuse_next(Outcome::Refused(Refusal::RequestIdConflict {
        sku: sku_id("A1"),
        request_id: RequestId::new("restock-9").unwrap(),
        applied_delta: 5,
    }));
    let (status, id, body) = call(
        &app,
        "POST",
        "/v1/skus/A1/restock",
        Some(json!({"delta": 3, "request_id": "restock-9"})),
        Some("http-1"),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "request_id_conflict");
    assert_eq!(body["error"]["request_id"], "restock-9", "{body}");
    assert_eq!(id, "http-1", "the HTTP id is still in the header");
}
