//! The gateway against fake nodes: every route's statuses and bodies, validation before the
//! cluster, outcome mapping, leader following, retries, deadlines, admission control, the
//! operations endpoints, graceful shutdown and order batches.

mod support;

use std::time::Duration;

use axum::body::Body;
use serde_json::{json, Value};
use state_machine::{
    Command, Item, Items, OrderId, OrderStatus, Outcome, Qty, Refusal, RequestId, SaleWindow,
    UserId, ValidationError,
};
use support::{
    closed_addr, config, get, patch_json, post_json, send, sku_id, wait_until, FakeNode, Script,
    NOW_MS,
};

async fn one_node() -> (FakeNode, axum::Router) {
    let node = FakeNode::start(1).await;
    let app = gateway::app(&config(vec![node.addr.clone()])).unwrap();
    (node, app)
}

fn order_body(order_id: &str, user: &str, sku: &str, qty: u64) -> Value {
    json!({"order_id": order_id, "user_id": user, "items": [{"sku": sku, "qty": qty}]})
}

#[tokio::test]
async fn create_sku_is_201_then_idempotent_200_then_409_for_other_settings() {
    let (node, app) = one_node().await;
    let body = json!({"sku": "A1", "stock": 10, "per_user_limit": 1,
                      "sale_window": {"start_ms": 1, "end_ms": 2}});
    let a = post_json(&app, "/v1/skus", body.clone()).await;
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(a.headers["content-type"], "application/json");
    assert_eq!(
        a.json(),
        json!({"sku": "A1", "total": 10, "available": 10, "reserved": 0, "sold": 0,
               "refunded": 0, "per_user_limit": 1,
               "sale_window": {"start_ms": 1, "end_ms": 2}, "revision": 1})
    );
    let b = post_json(&app, "/v1/skus", body).await;
    assert_eq!(b.status, 200, "{}", b.text());
    assert_eq!(b.json()["revision"], 1);
    let c = post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 11})).await;
    let err = c.assert_error(409, "sku_exists");
    assert_eq!(err["error"]["sku"], "A1");
    // Explicit nulls equal absent fields in a create.
    let d = post_json(
        &app,
        "/v1/skus",
        json!({"sku": "B2", "stock": 0, "per_user_limit": null, "sale_window": null}),
    )
    .await;
    assert_eq!(d.status, 201, "{}", d.text());
    assert_eq!(d.json()["per_user_limit"], Value::Null);
    assert_eq!(node.commands().len(), 4);
}

#[tokio::test]
async fn sku_restock_patch_get_and_list() {
    let (node, app) = one_node().await;
    for sku in ["A1", "B2", "C3"] {
        let a = post_json(
            &app,
            "/v1/skus",
            json!({"sku": sku, "stock": 5, "per_user_limit": 2}),
        )
        .await;
        assert_eq!(a.status, 201);
    }
    let r = post_json(
        &app,
        "/v1/skus/A1/restock",
        json!({"request_id": "r-17", "delta": 5}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["total"], 10);
    let r = post_json(
        &app,
        "/v1/skus/A1/restock",
        json!({"request_id": "r-17", "delta": 5}),
    )
    .await;
    assert_eq!(r.status, 200, "replay");
    assert_eq!(r.json()["total"], 10);
    post_json(
        &app,
        "/v1/skus/A1/restock",
        json!({"request_id": "r-17", "delta": 6}),
    )
    .await
    .assert_error(409, "request_id_conflict");
    let e = post_json(
        &app,
        "/v1/skus/A1/restock",
        json!({"request_id": "r-18", "delta": -11}),
    )
    .await
    .assert_error(409, "insufficient_available");
    assert_eq!(e["error"]["available"], 10);
    post_json(
        &app,
        "/v1/skus/ZZ/restock",
        json!({"request_id": "r-1", "delta": 1}),
    )
    .await
    .assert_error(404, "sku_not_found");

    // PATCH: present-null clears, absent stays.
    let p = patch_json(&app, "/v1/skus/A1", json!({"sale_window": null})).await;
    assert_eq!(p.status, 200, "{}", p.text());
    assert_eq!(p.json()["per_user_limit"], 2);
    let p = patch_json(
        &app,
        "/v1/skus/A1",
        json!({"per_user_limit": null,
        "sale_window": {"start_ms": 5, "end_ms": 9}}),
    )
    .await;
    assert_eq!(p.json()["per_user_limit"], Value::Null);
    assert_eq!(p.json()["sale_window"], json!({"start_ms": 5, "end_ms": 9}));
    let commands = node.commands();
    let patches: Vec<&Command> = commands
        .iter()
        .filter(|c| matches!(c, Command::UpdateSku { .. }))
        .collect();
    // Each PATCH request carries a tag of its own, so a late attempt of one can never be
    // taken for the other.
    let tags: Vec<u64> = patches
        .iter()
        .map(|c| match c {
            Command::UpdateSku { request_tag, .. } => *request_tag,
            _ => unreachable!(),
        })
        .collect();
    assert!(
        tags[0] != 0 && tags[1] != 0 && tags[0] != tags[1],
        "{tags:?}"
    );
    assert_eq!(
        patches[0],
        &Command::UpdateSku {
            sku: sku_id("A1"),
            per_user_limit: None,
            sale_window: Some(None),
            request_tag: tags[0],
        }
    );
    assert_eq!(
        patches[1],
        &Command::UpdateSku {
            sku: sku_id("A1"),
            per_user_limit: Some(None),
            sale_window: Some(Some(SaleWindow::new(5, 9).unwrap())),
            request_tag: tags[1],
        }
    );

    let g = get(&app, "/v1/skus/A1").await;
    assert_eq!(g.status, 200);
    assert_eq!(g.json()["sku"], "A1");
    let missing = get(&app, "/v1/skus/NOPE")
        .await
        .assert_error(404, "sku_not_found");
    assert_eq!(missing["error"]["sku"], "NOPE");

    let page = get(&app, "/v1/skus?limit=2").await;
    assert_eq!(page.status, 200, "{}", page.text());
    let page = page.json();
    assert_eq!(page["skus"].as_array().unwrap().len(), 2);
    assert_eq!(page["next"], "B2");
    let last = get(&app, "/v1/skus?after=B2&limit=2").await.json();
    assert_eq!(last["skus"][0]["sku"], "C3");
    assert_eq!(last["next"], Value::Null);
}

#[tokio::test]
async fn order_lifecycle_and_idempotent_replay() {
    let (_node, app) = one_node().await;
    post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 3})).await;
    let placed = post_json(&app, "/v1/orders", order_body("o-1", "u-9", "A1", 1)).await;
    assert_eq!(placed.status, 201, "{}", placed.text());
    assert_eq!(
        placed.json(),
        json!({"order_id": "o-1", "user_id": "u-9", "items": [{"sku": "A1", "qty": 1}],
               "status": "reserved", "created_ms": NOW_MS, "expires_ms": NOW_MS + 900_000,
               "updated_ms": NOW_MS, "payment_ref": null, "revision": 2})
    );
    let replay = post_json(&app, "/v1/orders", order_body("o-1", "u-9", "A1", 1)).await;
    assert_eq!(replay.status, 200, "{}", replay.text());
    post_json(&app, "/v1/orders", order_body("o-1", "u-9", "A1", 2))
        .await
        .assert_error(409, "order_id_conflict");
    let oos = post_json(&app, "/v1/orders", order_body("o-2", "u-9", "A1", 3))
        .await
        .assert_error(409, "out_of_stock");
    assert_eq!(oos["error"]["sku"], "A1");
    assert_eq!(oos["error"]["available"], 2);

    let paid = post_json(&app, "/v1/orders/o-1/pay", json!({"payment_ref": "pay-1"})).await;
    assert_eq!(paid.status, 200, "{}", paid.text());
    assert_eq!(paid.json()["status"], "paid");
    assert_eq!(paid.json()["payment_ref"], "pay-1");
    // Paying again is a no-op 200, whatever the payment_ref; an empty body is fine.
    let again = send(&app, "POST", "/v1/orders/o-1/pay", None, Body::empty()).await;
    assert_eq!(again.status, 200, "{}", again.text());
    let bad = post_json(&app, "/v1/orders/o-1/cancel", json!({}))
        .await
        .assert_error(409, "invalid_transition");
    assert_eq!(bad["error"]["status"], "paid");
    // Empty body with a foreign content type is accepted where the body is optional.
    let refunded = send(
        &app,
        "POST",
        "/v1/orders/o-1/refund",
        Some("text/plain"),
        Body::empty(),
    )
    .await;
    assert_eq!(refunded.status, 200, "{}", refunded.text());
    assert_eq!(refunded.json()["status"], "refunded");

    let got = get(&app, "/v1/orders/o-1").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["status"], "refunded");
    let missing = get(&app, "/v1/orders/o-404")
        .await
        .assert_error(404, "order_not_found");
    assert_eq!(missing["error"]["order_id"], "o-404");
    post_json(&app, "/v1/orders/o-404/pay", json!({}))
        .await
        .assert_error(404, "order_not_found");

    let list = get(&app, "/v1/orders?user_id=u-9&limit=10").await;
    assert_eq!(list.status, 200, "{}", list.text());
    assert_eq!(list.json()["orders"][0]["order_id"], "o-1");
    assert_eq!(
        get(&app, "/v1/orders?user_id=nobody").await.json(),
        json!({"orders": []})
    );
}

#[tokio::test]
async fn every_refusal_maps_to_its_status_code_and_fields() {
    let (node, app) = one_node().await;
    let sku = sku_id("A1");
    let order_id = OrderId::new("o-1").unwrap();
    let cases: Vec<(Refusal, u16, Value)> = vec![
        (
            Refusal::SkuNotFound { sku: sku.clone() },
            404,
            json!({"sku": "A1"}),
        ),
        (
            Refusal::OrderNotFound {
                order_id: order_id.clone(),
            },
            404,
            json!({"order_id": "o-1"}),
        ),
        (
            Refusal::OutOfStock {
                sku: sku.clone(),
                available: 0,
                requested: 1,
            },
            409,
            json!({"sku": "A1", "available": 0}),
        ),
        (
            Refusal::PerUserLimitExceeded {
                sku: sku.clone(),
                limit: 2,
                held: 2,
                requested: 1,
            },
            409,
            json!({"sku": "A1", "limit": 2, "held": 2}),
        ),
        (
            Refusal::SaleNotActive {
                sku: sku.clone(),
                start_ms: 10,
                end_ms: 20,
            },
            409,
            json!({"sku": "A1", "start_ms": 10, "end_ms": 20}),
        ),
        (
            Refusal::OrderIdConflict {
                order_id: order_id.clone(),
            },
            409,
            json!({"order_id": "o-1"}),
        ),
        (
            Refusal::SkuExists { sku: sku.clone() },
            409,
            json!({"sku": "A1"}),
        ),
        (
            Refusal::InvalidTransition {
                order_id: order_id.clone(),
                status: OrderStatus::Expired,
            },
            409,
            json!({"status": "expired"}),
        ),
        (
            Refusal::InsufficientAvailable {
                sku: sku.clone(),
                available: 4,
                requested: 5,
            },
            409,
            json!({"sku": "A1", "available": 4}),
        ),
        (
            Refusal::RequestIdConflict {
                sku: sku.clone(),
                request_id: RequestId::new("r-1").unwrap(),
                applied_delta: 1,
            },
            409,
            json!({}),
        ),
        (
            Refusal::TotalOverflow {
                sku: sku.clone(),
                total: 1,
            },
            400,
            json!({}),
        ),
        (
            Refusal::Invalid(ValidationError::new("items[0].qty", "bad")),
            400,
            json!({"field": "items[0].qty"}),
        ),
    ];
    for (refusal, status, fields) in cases {
        node.refuse_next(Outcome::Refused(refusal.clone()));
        let a = post_json(&app, "/v1/orders", order_body("o-1", "u-1", "A1", 1)).await;
        let body = a.assert_error(status, refusal.code());
        for (k, v) in fields.as_object().unwrap() {
            assert_eq!(&body["error"][k], v, "{refusal:?}: {body}");
        }
    }
    // An outcome of the wrong kind is the cluster's bug, not the client's.
    node.refuse_next(Outcome::Expired { orders: 1 });
    post_json(&app, "/v1/orders", order_body("o-1", "u-1", "A1", 1))
        .await
        .assert_error(500, "internal");
}

/// (method, uri, content type, body, status, code, the field the error names).
type Case<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    String,
    u16,
    &'a str,
    Option<&'a str>,
);

#[tokio::test]
async fn invalid_requests_are_refused_before_the_cluster() {
    let (node, app) = one_node().await;
    let json_ct = Some("application/json");
    let long_sku = "a".repeat(65);
    let long_sku_path = format!("/v1/skus/{long_sku}");
    let cases: Vec<Case> = vec![
        ("POST", "/v1/skus", json_ct, r#"{"sku": "a b", "stock": 1}"#.into(), 400, "invalid_request", Some("sku")),
        ("POST", "/v1/skus", json_ct, format!(r#"{{"sku": "{long_sku}", "stock": 1}}"#), 400, "invalid_request", Some("sku")),
        ("POST", "/v1/skus", json_ct, r#"{"sku": "A1"}"#.into(), 400, "invalid_request", Some("stock")),
        ("POST", "/v1/skus", json_ct, r#"{"sku": "A1", "stock": 1, "colour": "red"}"#.into(), 400, "invalid_request", Some("colour")),
        ("POST", "/v1/skus", json_ct, r#"{"sku": "A1", "stock": -1}"#.into(), 400, "invalid_request", Some("stock")),
        ("POST", "/v1/skus", json_ct, r#"{"sku": "A1", "stock": 9007199254740992}"#.into(), 400, "invalid_request", Some("stock")),
        ("POST", "/v1/skus", json_ct, r#"{"sku": "A1", "stock": 1, "per_user_limit": 0}"#.into(), 400, "invalid_request", Some("per_user_limit")),
        ("POST", "/v1/skus", json_ct, r#"{"sku": "A1", "stock": 1, "sale_window": {"start_ms": 9, "end_ms": 9}}"#.into(), 400, "invalid_request", Some("sale_window.start_ms")),
        ("POST", "/v1/skus", json_ct, r#"{"sku": "A1", "stock": 1, "sale_window": {"start_ms": 9}}"#.into(), 400, "invalid_request", Some("sale_window.end_ms")),
        ("POST", "/v1/skus", json_ct, r#"{"sku": "A1", "stock": 1, "sale_window": {"end_ms": 9}}"#.into(), 400, "invalid_request", Some("sale_window.start_ms")),
        ("POST", "/v1/skus", json_ct, r#"{"sku": "A1", "stock": 1, "sale_window": {"start_ms": 1, "end_ms": true}}"#.into(), 400, "invalid_request", Some("sale_window.end_ms")),
        ("POST", "/v1/skus", json_ct, r#"{"sku": "A1", "stock": 1, "sale_window": {"start_ms": 1, "end_ms": 2, "tz": 0}}"#.into(), 400, "invalid_request", Some("sale_window.tz")),
        ("POST", "/v1/skus", json_ct, r#"{"sku": "A1", "stock": 1"#.into(), 400, "invalid_request", None),
        ("POST", "/v1/skus", json_ct, "[1, 2]".into(), 400, "invalid_request", None),
        ("POST", "/v1/skus", json_ct, String::new(), 400, "invalid_request", None),
        ("POST", "/v1/skus", None, r#"{"sku": "A1", "stock": 1}"#.into(), 415, "unsupported_media_type", None),
        ("POST", "/v1/skus", Some("text/plain"), r#"{"sku": "A1", "stock": 1}"#.into(), 415, "unsupported_media_type", None),
        ("POST", "/v1/skus", Some("application/jsonp"), r#"{"sku": "A1", "stock": 1}"#.into(), 415, "unsupported_media_type", None),
        ("POST", "/v1/skus/A1/restock", json_ct, r#"{"request_id": "r-1", "delta": 0}"#.into(), 400, "invalid_request", Some("delta")),
        ("POST", "/v1/skus/A1/restock", json_ct, r#"{"request_id": "", "delta": 1}"#.into(), 400, "invalid_request", Some("request_id")),
        ("POST", "/v1/skus/A1/restock", json_ct, r#"{"request_id": "r", "delta": 9007199254740992}"#.into(), 400, "invalid_request", Some("delta")),
        ("POST", "/v1/skus/a%20b/restock", json_ct, r#"{"request_id": "r-1", "delta": 1}"#.into(), 400, "invalid_request", Some("sku")),
        ("PATCH", "/v1/skus/A1", json_ct, r#"{"per_user_limit": 0}"#.into(), 400, "invalid_request", Some("per_user_limit")),
        ("PATCH", "/v1/skus/A1", json_ct, r#"{"sale_window": {"start_ms": 3, "end_ms": 1}}"#.into(), 400, "invalid_request", Some("sale_window.start_ms")),
        ("PATCH", "/v1/skus/A1", json_ct, r#"{"stock": 3}"#.into(), 400, "invalid_request", Some("stock")),
        ("GET", "/v1/skus/a%20b", None, String::new(), 400, "invalid_request", Some("sku")),
        ("GET", &long_sku_path, None, String::new(), 400, "invalid_request", Some("sku")),
        ("GET", "/v1/skus/%FF", None, String::new(), 400, "invalid_request", Some("sku")),
        ("GET", "/v1/orders/o%2F1", None, String::new(), 400, "invalid_request", Some("order_id")),
        ("GET", "/v1/skus?limit=0", None, String::new(), 400, "invalid_request", Some("limit")),
        ("GET", "/v1/skus?limit=1001", None, String::new(), 400, "invalid_request", Some("limit")),
        ("GET", "/v1/skus?limit=ten", None, String::new(), 400, "invalid_request", Some("limit")),
        ("GET", "/v1/skus?after=a%20b", None, String::new(), 400, "invalid_request", Some("after")),
        ("GET", "/v1/orders", None, String::new(), 400, "invalid_request", Some("user_id")),
        ("GET", "/v1/orders?user_id=u&limit=0", None, String::new(), 400, "invalid_request", Some("limit")),
        ("GET", "/v1/orders?user_id=a%20b", None, String::new(), 400, "invalid_request", Some("user_id")),
        ("POST", "/v1/orders", json_ct, r#"{"user_id": "u", "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 1}, {"sku": "c", "qty": 1}, {"sku": "d", "qty": 0}]}"#.into(), 400, "invalid_request", Some("items[3].qty")),
        ("POST", "/v1/orders", json_ct, r#"{"user_id": "u", "items": [{"sku": "a", "qty": 1000001}]}"#.into(), 400, "invalid_request", Some("items[0].qty")),
        ("POST", "/v1/orders", json_ct, r#"{"user_id": "u", "items": [{"sku": "a", "qty": "1"}]}"#.into(), 400, "invalid_request", Some("items[0].qty")),
        ("POST", "/v1/orders", json_ct, r#"{"user_id": "u", "items": [{"sku": "a", "qty": 1}, {"sku": "a", "qty": 1}]}"#.into(), 400, "invalid_request", Some("items[1].sku")),
        ("POST", "/v1/orders", json_ct, r#"{"user_id": "u", "items": [{"sku": "a", "qty": 1, "price": 3}]}"#.into(), 400, "invalid_request", Some("items[0].price")),
        ("POST", "/v1/orders", json_ct, r#"{"user_id": "u", "items": [{"sku": "a"}]}"#.into(), 400, "invalid_request", Some("items[0].qty")),
        ("POST", "/v1/orders", json_ct, r#"{"user_id": "u", "items": [{"sku": "a", "qty": 1}, {"qty": 1}]}"#.into(), 400, "invalid_request", Some("items[1].sku")),
        ("POST", "/v1/orders", json_ct, r#"{"user_id": "u"}"#.into(), 400, "invalid_request", Some("items")),
        ("POST", "/v1/orders", json_ct, r#"{"user_id": "u", "items": []}"#.into(), 400, "invalid_request", Some("items")),
        ("POST", "/v1/orders", json_ct, r#"{"items": [{"sku": "a", "qty": 1}]}"#.into(), 400, "invalid_request", Some("user_id")),
        ("POST", "/v1/orders", json_ct, r#"{"order_id": "", "user_id": "u", "items": [{"sku": "a", "qty": 1}]}"#.into(), 400, "invalid_request", Some("order_id")),
        ("POST", "/v1/orders", json_ct, r#"{"user_id": "u", "items": [{"sku": "a", "qty": 1}], "reservation_ttl_ms": 86400001}"#.into(), 400, "invalid_request", Some("reservation_ttl_ms")),
        ("POST", "/v1/orders/o-1/pay", json_ct, r#"{"payment_ref": "p 1"}"#.into(), 400, "invalid_request", Some("payment_ref")),
        ("POST", "/v1/orders/o-1/pay", None, r#"{"payment_ref": "p1"}"#.into(), 415, "unsupported_media_type", None),
        ("POST", "/v1/orders/o-1/cancel", json_ct, r#"{"reason": "x"}"#.into(), 400, "invalid_request", Some("reason")),
        ("POST", "/v1/orders/o-1/refund", json_ct, r#"{"restock": "yes"}"#.into(), 400, "invalid_request", Some("restock")),
        ("POST", "/v1/orders/o%201/refund", None, String::new(), 400, "invalid_request", Some("order_id")),
        ("GET", "/v1/nothing", None, String::new(), 404, "not_found", None),
        ("GET", "/", None, String::new(), 404, "not_found", None),
        ("DELETE", "/v1/skus/A1", None, String::new(), 405, "method_not_allowed", None),
        ("PUT", "/v1/orders", None, String::new(), 405, "method_not_allowed", None),
        ("GET", "/v1/orders/o-1/pay", None, String::new(), 405, "method_not_allowed", None),
        ("POST", "/healthz", None, String::new(), 405, "method_not_allowed", None),
    ];
    for (method, uri, ct, body, status, code, field) in cases {
        let a = send(&app, method, uri, ct, body.clone()).await;
        let got = a.assert_error(status, code);
        // The innermost field, as the `field` member and at the head of the message.
        if let Some(field) = field {
            assert_eq!(got["error"]["field"], field, "{method} {uri} {body}: {got}");
            let message = got["error"]["message"].as_str().unwrap();
            assert!(
                message.starts_with(&format!("{field}: ")),
                "{method} {uri} {body}: {message} does not start with {field}"
            );
        }
    }
    assert!(
        node.submits().is_empty(),
        "nothing invalid may reach the cluster"
    );
    assert_eq!(node.reads(), 0, "nothing invalid may reach the cluster");
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_and_exactly_64_kib_is_fine() {
    let (node, app) = one_node().await;
    let json = r#"{"sku": "A1", "stock": 1}"#;
    let pad = |len: usize| format!("{json}{}", " ".repeat(len - json.len()));
    let ok = send(
        &app,
        "POST",
        "/v1/skus",
        Some("application/json"),
        pad(65_536),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.text());
    send(
        &app,
        "POST",
        "/v1/skus",
        Some("application/json"),
        pad(65_537),
    )
    .await
    .assert_error(413, "payload_too_large");
    // Without a Content-Length (a stream), the limit holds while reading.
    let chunks: Vec<Result<String, std::io::Error>> =
        (0..70).map(|_| Ok(" ".repeat(1_000))).collect();
    let streamed = Body::from_stream(futures::stream::iter(chunks));
    send(&app, "POST", "/v1/skus", Some("application/json"), streamed)
        .await
        .assert_error(413, "payload_too_large");
    assert_eq!(node.commands().len(), 1);
}

#[tokio::test]
async fn content_type_parameters_are_accepted() {
    let (_node, app) = one_node().await;
    let a = send(
        &app,
        "POST",
        "/v1/skus",
        Some("application/json; charset=utf-8"),
        r#"{"sku": "A1", "stock": 1}"#,
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text());
}

#[tokio::test]
async fn gateway_made_order_id_is_kept_across_a_retry() {
    let (node, app) = one_node().await;
    post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 3})).await;
    node.script(Script::Unavailable);
    let placed = post_json(
        &app,
        "/v1/orders",
        json!({"user_id": "u-1", "items": [{"sku": "A1", "qty": 1}]}),
    )
    .await;
    assert_eq!(placed.status, 201, "{}", placed.text());
    let order_id = placed.json()["order_id"].as_str().unwrap().to_owned();
    assert!(
        order_id.starts_with("gw-") && order_id.len() == 27,
        "{order_id}"
    );
    OrderId::new(order_id.clone()).expect("follows the identifier rule");
    let ids: Vec<String> = node
        .submits()
        .iter()
        .skip(1)
        .flatten()
        .map(|c| c.order_id().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        vec![order_id.clone(), order_id],
        "both attempts carry the same id"
    );
    let metrics = get(&app, "/metrics").await.text();
    assert!(metrics.contains("gateway_retries_total 1"), "{metrics}");
}

#[tokio::test]
async fn a_create_whose_first_answer_was_lost_is_still_answered_201() {
    let (node, app) = one_node().await;
    node.script(Script::AppliedButLost(vec![]));
    let created = post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 3})).await;
    assert_eq!(created.status, 201, "{}", created.text());
    node.script(Script::AppliedButLost(vec![]));
    let body = json!({"order_id": "o-1", "user_id": "u-1", "items": [{"sku": "A1", "qty": 1}]});
    let placed = post_json(&app, "/v1/orders", body.clone()).await;
    assert_eq!(placed.status, 201, "{}", placed.text());
    assert_eq!(node.submits().len(), 4, "each create was sent twice");
    // The order was reserved once, and a client's own resend is a replay.
    let sku = get(&app, "/v1/skus/A1").await.json();
    assert_eq!(
        (sku["available"].clone(), sku["reserved"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(post_json(&app, "/v1/orders", body).await.status, 200);
    let again = post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 3})).await;
    assert_eq!(again.status, 200, "{}", again.text());
}

#[tokio::test]
async fn a_restock_whose_first_answer_was_lost_answers_with_the_sku_it_left() {
    let (node, app) = one_node().await;
    post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 0})).await;
    // The first attempt commits, its answer is lost, and an order takes the new units
    // before the resend: the restock must still answer with the SKU as it left it.
    let other = Command::PlaceOrder {
        order_id: OrderId::new("o-1").unwrap(),
        user_id: UserId::new("u-1").unwrap(),
        items: Items::new(vec![Item {
            sku: sku_id("A1"),
            qty: Qty::new(2).unwrap(),
        }])
        .unwrap(),
        ttl_ms: 60_000,
        request_tag: 7,
    };
    node.script(Script::AppliedButLost(vec![other]));
    let body = json!({"request_id": "r-1", "delta": 2});
    let answer = post_json(&app, "/v1/skus/A1/restock", body.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let sku = answer.json();
    assert_eq!(
        (
            &sku["total"],
            &sku["available"],
            &sku["reserved"],
            &sku["revision"]
        ),
        (&json!(2), &json!(2), &json!(0), &json!(2)),
        "the answer of the first attempt, not the state after the order"
    );
    // A client's own replay is another request: it sees the SKU as it stands.
    let replay = post_json(&app, "/v1/skus/A1/restock", body).await.json();
    assert_eq!(
        (&replay["available"], &replay["reserved"]),
        (&json!(0), &json!(2))
    );
}

#[tokio::test]
async fn a_payment_whose_answer_was_lost_is_not_refused_after_a_refund() {
    let (node, app) = one_node().await;
    post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 1})).await;
    let body = json!({"order_id": "o-1", "user_id": "u-1", "items": [{"sku": "A1", "qty": 1}]});
    post_json(&app, "/v1/orders", body).await;
    let refund = Command::Refund {
        order_id: OrderId::new("o-1").unwrap(),
        restock: true,
    };
    node.script(Script::AppliedButLost(vec![refund]));
    let paid = post_json(&app, "/v1/orders/o-1/pay", json!({"payment_ref": "p-1"})).await;
    assert_eq!(paid.status, 200, "{}", paid.text());
    assert_eq!(paid.json()["status"], "paid");
    let now = get(&app, "/v1/orders/o-1").await.json();
    assert_eq!(now["status"], "refunded");
    // A client's own second payment is another request: the refunded order refuses it.
    post_json(&app, "/v1/orders/o-1/pay", json!({"payment_ref": "p-1"}))
        .await
        .assert_error(409, "invalid_transition");
}

#[tokio::test]
async fn not_leader_hint_is_followed_and_remembered() {
    let leader = FakeNode::start(2).await;
    let follower = FakeNode::start(1).await;
    follower.follow(&leader.addr);
    // The gateway knows only the follower; the leader it learns from the hint.
    let app = gateway::app(&config(vec![follower.addr.clone()])).unwrap();
    let a = post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 1})).await;
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(follower.submits().len(), 1);
    assert_eq!(leader.submits().len(), 1);
    // Reads go to the leader too, and the next call goes straight there.
    assert_eq!(get(&app, "/v1/skus/A1").await.status, 200);
    assert_eq!(follower.submits().len(), 1);
    assert_eq!(leader.reads(), 1);
}

#[tokio::test]
async fn unreachable_nodes_try_the_others_and_count_leader_changes() {
    let first = FakeNode::start(1).await;
    let second = FakeNode::start(2).await;
    let app = gateway::app(&config(vec![
        closed_addr().await,
        first.addr.clone(),
        second.addr.clone(),
    ]))
    .unwrap();
    for i in 0..3 {
        let a = post_json(
            &app,
            "/v1/skus",
            json!({"sku": format!("S{i}"), "stock": 1}),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.text());
    }
    // The leader moves: the first node now names the second.
    first.follow(&second.addr);
    let a = post_json(&app, "/v1/skus", json!({"sku": "S9", "stock": 1})).await;
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(second.commands().len(), 1);
    let metrics = get(&app, "/metrics").await.text();
    assert!(
        metrics.contains("gateway_leader_changes_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn no_answer_within_the_deadline_is_503_with_retry_after() {
    let mut c = config(vec![closed_addr().await, closed_addr().await]);
    c.request_deadline_ms = 200;
    let app = gateway::app(&c).unwrap();
    let a = post_json(&app, "/v1/orders", order_body("o-1", "u", "A1", 1)).await;
    a.assert_error(503, "unavailable");
    assert_eq!(a.headers["retry-after"], "1");
    let r = get(&app, "/v1/skus/A1").await;
    r.assert_error(503, "unavailable");
    assert_eq!(r.headers["retry-after"], "1");

    // A reachable node without quorum: the same answer.
    let node = FakeNode::start(1).await;
    node.set_always_unavailable(true);
    let mut c = config(vec![node.addr.clone()]);
    c.request_deadline_ms = 200;
    let app = gateway::app(&c).unwrap();
    post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 1}))
        .await
        .assert_error(503, "unavailable");
    assert!(node.submits().len() > 1, "retried until the deadline");
    let metrics = get(&app, "/metrics").await.text();
    assert!(!metrics.contains("gateway_retries_total 0"), "{metrics}");
}

#[tokio::test]
async fn in_flight_bound_answers_429_at_once() {
    let node = FakeNode::start(1).await;
    let mut c = config(vec![node.addr.clone()]);
    c.max_in_flight = 1;
    let app = gateway::app(&c).unwrap();
    node.close_gate().await;
    let held = tokio::spawn({
        let app = app.clone();
        async move { post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 1})).await }
    });
    wait_until("the first request reaches the node", || {
        node.submits().len() == 1
    })
    .await;
    let refused = post_json(&app, "/v1/skus", json!({"sku": "B1", "stock": 1})).await;
    refused.assert_error(429, "rate_limited");
    assert_eq!(refused.headers["retry-after"], "1");
    // Operations endpoints are not subject to admission control.
    assert_eq!(get(&app, "/healthz").await.status, 200);
    node.open_gate();
    assert_eq!(held.await.unwrap().status, 201);
    let again = post_json(&app, "/v1/skus", json!({"sku": "B1", "stock": 1})).await;
    assert_eq!(again.status, 201, "the slot is free again");
}

/// A body that sends `head` and then nothing more, for ever: a client trickling its body.
fn stalled_body(head: &'static str) -> Body {
    use futures::StreamExt;
    let first = futures::stream::once(async move {
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(head.as_bytes()))
    });
    Body::from_stream(first.chain(futures::stream::pending()))
}

#[tokio::test]
async fn a_slow_body_holds_no_in_flight_slot_and_is_refused_at_the_body_timeout() {
    let node = FakeNode::start(1).await;
    let mut c = config(vec![node.addr.clone()]);
    c.max_in_flight = 1;
    c.body_timeout_ms = 300;
    let app = gateway::app(&c).unwrap();
    let started = std::time::Instant::now();
    let slow = tokio::spawn({
        let app = app.clone();
        async move {
            send(
                &app,
                "POST",
                "/v1/skus",
                Some("application/json"),
                stalled_body(r#"{"sku": "SLOW", "#),
            )
            .await
        }
    });
    // Admission comes after the body: the one slot is free for a request that has its body.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let quick = post_json(&app, "/v1/skus", json!({"sku": "B1", "stock": 1})).await;
    assert_eq!(quick.status, 201, "{}", quick.text());
    assert!(!slow.is_finished(), "the slow body is still arriving");

    let slow = slow.await.unwrap();
    let body = slow.assert_error(400, "invalid_request");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not arrive within 300 ms"),
        "{body}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(
        node.commands()
            .iter()
            .all(|c| !format!("{c:?}").contains("SLOW")),
        "nothing of the slow request reached the cluster"
    );
    // The slot was never taken by the slow request, nor leaked by it.
    let again = post_json(&app, "/v1/skus", json!({"sku": "C1", "stock": 1})).await;
    assert_eq!(again.status, 201, "{}", again.text());
}

#[tokio::test]
async fn an_oversized_body_is_refused_before_admission_with_413() {
    let node = FakeNode::start(1).await;
    let app = gateway::app(&config(vec![node.addr.clone()])).unwrap();
    let big = format!(
        r#"{{"sku": "A1", "stock": 1, "pad": "{}"}}"#,
        "x".repeat(70_000)
    );
    let answer = send(&app, "POST", "/v1/skus", Some("application/json"), big).await;
    answer.assert_error(413, "payload_too_large");
    // The unread rest of the body spoils the connection: the client is told not to reuse it.
    assert_eq!(answer.headers["connection"], "close");
    // The batch route has its own, larger limit.
    let batch = format!(r#"{{"orders": [], "pad": "{}"}}"#, "x".repeat(70_000));
    let answer = send(
        &app,
        "POST",
        "/v1/orders/batch",
        Some("application/json"),
        batch,
    )
    .await;
    answer.assert_error(400, "invalid_request");
}

#[tokio::test]
async fn empty_token_bucket_answers_429_with_whole_seconds() {
    let node = FakeNode::start(1).await;
    let mut c = config(vec![node.addr.clone()]);
    c.rate_limit_per_sec = Some(1);
    c.rate_limit_burst = Some(1);
    let app = gateway::app(&c).unwrap();
    assert_eq!(
        post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 1}))
            .await
            .status,
        201
    );
    let refused = post_json(&app, "/v1/skus", json!({"sku": "B1", "stock": 1})).await;
    refused.assert_error(429, "rate_limited");
    let secs: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(secs >= 1);
}

/// One node holding 1,000 units of `A1`, its gate closed: `Submit`s wait until it opens.
async fn gated_node_with_a1() -> (FakeNode, axum::Router) {
    let (node, app) = one_node().await;
    post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 1000})).await;
    node.close_gate().await;
    (node, app)
}

/// Order `o-{i}` of user `u-{i}`: one unit of `A1`, placed from a task of its own.
fn spawn_single_unit_order(
    app: &axum::Router,
    i: usize,
) -> tokio::task::JoinHandle<support::Answer> {
    let app = app.clone();
    tokio::spawn(async move {
        post_json(
            &app,
            "/v1/orders",
            order_body(&format!("o-{i}"), &format!("u-{i}"), "A1", 1),
        )
        .await
    })
}

#[tokio::test]
async fn concurrent_orders_are_batched_and_each_gets_its_own_outcome() {
    let (node, app) = gated_node_with_a1().await;
    let spawn_order = |i: usize| spawn_single_unit_order(&app, i);
    // Fill the batcher's submit slots one by one, then queue more behind them.
    let mut tasks = Vec::new();
    let slots = gateway::MAX_SUBMITS_IN_FLIGHT;
    for i in 0..slots {
        tasks.push(spawn_order(i));
        wait_until("the order's submit is in flight", || {
            node.submits().len() == 2 + i
        })
        .await;
    }
    tasks.extend((slots..60).map(spawn_order));
    tokio::time::sleep(Duration::from_millis(200)).await;
    node.open_gate();
    for (i, task) in tasks.into_iter().enumerate() {
        let a = task.await.unwrap();
        assert_eq!(a.status, 201, "{}", a.text());
        assert_eq!(
            a.json()["order_id"],
            format!("o-{i}"),
            "each caller gets its own outcome"
        );
    }
    let submits = node.submits();
    let orders: usize = submits.iter().skip(1).map(Vec::len).sum();
    assert_eq!(orders, 60);
    assert!(
        submits.len() - 1 < 60,
        "commands were coalesced: {} submits",
        submits.len() - 1
    );
}

/// A batch's answers are handed out only once the next batch's `Submit` is on its way: the
/// answers' tasks (each an HTTP write) would otherwise run first and hold that `Submit` back
/// while the leader sits idle.
#[tokio::test]
async fn the_next_batch_leaves_before_the_last_batchs_callers_are_answered() {
    let (node, app) = gated_node_with_a1().await;
    let order = |i: usize| spawn_single_unit_order(&app, i);
    let first = order(0);
    wait_until("the first order's submit is in flight", || {
        node.submits().len() == 2
    })
    .await;
    let queued: Vec<_> = (1..20).map(order).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(node.submits().len(), 2, "the others wait for the slot");
    node.open_gate();
    let answered = first.await.unwrap();
    assert_eq!(answered.status, 201, "{}", answered.text());
    assert_eq!(
        node.submits().len(),
        3,
        "the next batch reached the node before the first caller had its answer"
    );
    for task in queued {
        assert_eq!(task.await.unwrap().status, 201);
    }
}

#[tokio::test]
async fn healthz_readyz_and_metrics() {
    let (_node, app) = one_node().await;
    assert_eq!(get(&app, "/healthz").await.status, 200);
    // An idle gateway asks the leader itself.
    let ready = get(&app, "/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 1})).await;
    get(&app, "/v1/nothing").await;
    let metrics = get(&app, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = metrics.text();
    for name in [
        "gateway_requests_total{route=\"/v1/skus\",method=\"POST\",status=\"201\"} 1",
        "gateway_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
        "gateway_request_duration_seconds_bucket{le=\"+Inf\",route=\"/v1/skus\",method=\"POST\"} 1",
        "gateway_request_duration_seconds_count{route=\"/v1/skus\",method=\"POST\"} 1",
        "gateway_retries_total 0",
        "gateway_leader_changes_total 0",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }

    let mut c = config(vec![closed_addr().await]);
    c.request_deadline_ms = 200;
    let down = gateway::app(&c).unwrap();
    let not_ready = get(&down, "/readyz").await;
    not_ready.assert_error(503, "unavailable");
    assert_eq!(get(&down, "/healthz").await.status, 200);
}

#[tokio::test]
async fn cluster_view_lists_reachable_and_unreachable_nodes() {
    let node = FakeNode::start(7).await;
    let dead = closed_addr().await;
    let app = gateway::app(&config(vec![node.addr.clone(), dead.clone()])).unwrap();
    let a = get(&app, "/v1/cluster").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let view = a.json();
    assert_eq!(view["leader"], 7);
    assert_eq!(view["term"], 3);
    let nodes = view["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    let live = nodes
        .iter()
        .find(|n| n["addr"] == node.addr.as_str())
        .unwrap();
    assert_eq!(live["id"], 7);
    assert_eq!(live["role"], "leader");
    assert_eq!(live["reachable"], true);
    let gone = nodes.iter().find(|n| n["addr"] == dead.as_str()).unwrap();
    assert_eq!(gone["role"], "unreachable");
    assert_eq!(gone["reachable"], false);
    assert!(gone["id"].is_u64());
    for key in ["last_log_index", "last_applied"] {
        assert!(live[key].is_u64(), "{key}");
    }
}

/// A raw HTTP/1.1 exchange over TCP; `Connection: close` makes the server end the stream.
async fn http(addr: std::net::SocketAddr, request: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn binds_port_zero_and_finishes_in_flight_requests_on_shutdown() {
    let node = FakeNode::start(1).await;
    let gw = gateway::Gateway::bind(config(vec![node.addr.clone()]))
        .await
        .unwrap();
    let addr = gw.local_addr();
    assert_ne!(addr.port(), 0);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(gw.run(async move {
        let _ = stopped.await;
    }));
    let health = http(
        addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    node.close_gate().await;
    let body = r#"{"sku": "A1", "stock": 1}"#;
    let slow = tokio::spawn(http(
        addr,
        format!(
            "POST /v1/skus HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    ));
    wait_until("the request reaches the node", || node.submits().len() == 1).await;
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!running.is_finished(), "waits for the in-flight request");
    node.open_gate();
    let answer = slow.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    running.await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

// ---------------------------------------------------------------------------------------------
// Order batches
// ---------------------------------------------------------------------------------------------

/// A batch with every kind of result, and what `POST /v1/orders` answers each order alone
/// (against SKU A1 with stock 3): 201, 400, 200 replay, 409 out_of_stock, 404, 201 with a
/// gateway-made id, 409 order_id_conflict, 400, 409 out_of_stock, 400, 400.
fn mixed_orders() -> Vec<Value> {
    vec![
        order_body("o-1", "u-1", "A1", 1),
        order_body("o-2", "u-2", "A1", 0),
        order_body("o-1", "u-1", "A1", 1),
        order_body("o-3", "u-3", "A1", 5),
        order_body("o-4", "u-4", "NOPE", 1),
        json!({"user_id": "u-5", "items": [{"sku": "A1", "qty": 1}]}),
        order_body("o-1", "u-1", "A1", 2),
        json!({"order_id": "o-7", "user_id": "u-7", "items": [{"sku": "A1"}]}),
        order_body("o-8", "u-8", "A1", 2),
        json!(5),
        json!({"order_id": "o-10", "user_id": "u", "items": [{"sku": "A1", "qty": 1}],
               "coupon": "x"}),
    ]
}

async fn post_batch(app: &axum::Router, orders: Vec<Value>) -> support::Answer {
    post_json(app, "/v1/orders/batch", json!({ "orders": orders })).await
}

/// An order body without what legitimately differs between a batch and single requests:
/// `revision` (one log entry against one each) and a gateway-made `order_id`.
fn comparable(order: &Value) -> Value {
    let mut order = order.clone();
    let fields = order.as_object_mut().unwrap();
    assert!(fields.remove("revision").unwrap().is_u64());
    if fields["order_id"].as_str().unwrap().starts_with("gw-") {
        fields.remove("order_id");
    }
    order
}

/// The error a single request's 400 becomes as entry `i` of a batch: its field named from
/// the batch's root.
fn nested_in_batch(i: usize, single: &Value) -> Value {
    let mut error = single.clone();
    let message = single["message"].as_str().unwrap();
    let root = format!("orders[{i}]");
    let (field, message) = match single["field"].as_str() {
        Some(field) => (format!("{root}.{field}"), format!("{root}.{message}")),
        None => (root.clone(), format!("{root}: {message}")),
    };
    error["field"] = json!(field);
    error["message"] = json!(message);
    error
}

#[tokio::test]
async fn a_batch_answers_each_order_as_it_would_be_answered_alone_in_request_order() {
    let (node, app) = one_node().await;
    let (_alone_node, alone) = one_node().await;
    for app in [&app, &alone] {
        post_json(app, "/v1/skus", json!({"sku": "A1", "stock": 3})).await;
    }
    let batch = post_batch(&app, mixed_orders()).await;
    assert_eq!(batch.status, 200, "{}", batch.text());
    assert_eq!(batch.headers["content-type"], "application/json");
    let body = batch.json();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let results = body["results"].as_array().unwrap();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [201, 400, 200, 409, 404, 201, 409, 400, 409, 400, 400]
    );

    for (i, (result, order)) in results.iter().zip(mixed_orders()).enumerate() {
        let single = post_json(&alone, "/v1/orders", order).await;
        let mut expected = single.json();
        // A single answer's error names its HTTP request's id; a batch's entries share the
        // batch's one, in its header.
        if let Some(error) = expected.get_mut("error").and_then(Value::as_object_mut) {
            assert!(error.remove("request_id").is_some(), "{error:?}");
        }
        assert_eq!(result["status"], single.status.as_u16(), "order {i}");
        if single.status.is_success() {
            assert_eq!(result.as_object().unwrap().len(), 2, "{result}");
            assert_eq!(
                comparable(&result["order"]),
                comparable(&expected),
                "order {i}"
            );
        } else if single.status == 400 {
            assert_eq!(
                result["error"],
                nested_in_batch(i, &expected["error"]),
                "order {i}"
            );
        } else {
            assert_eq!(result["error"], expected["error"], "order {i}");
        }
    }
    let field = |i: usize| results[i]["error"]["field"].as_str().unwrap();
    assert_eq!(field(1), "orders[1].items[0].qty");
    assert_eq!(field(7), "orders[7].items[0].qty");
    assert_eq!(field(9), "orders[9]");
    assert_eq!(field(10), "orders[10].coupon");
    assert_eq!(results[0]["order"]["order_id"], "o-1");
    assert_eq!(results[2]["order"], results[0]["order"], "a replay of o-1");
    assert_eq!(results[3]["error"]["code"], "out_of_stock");
    assert_eq!(
        (
            &results[3]["error"]["sku"],
            &results[3]["error"]["available"]
        ),
        (&json!("A1"), &json!(2))
    );
    assert_eq!(results[4]["error"]["sku"], "NOPE");
    assert_eq!(results[6]["error"]["code"], "order_id_conflict");
    assert_eq!(results[8]["error"]["available"], 1);
    let made = results[5]["order"]["order_id"].as_str().unwrap();
    OrderId::new(made).expect("a gateway-made id follows the identifier rule");

    // The valid orders went to the node as one Submit, in request order, each with its own tag.
    let submits = node.submits();
    assert_eq!(submits.len(), 2, "the SKU's create, then the whole batch");
    let ids: Vec<String> = submits[1]
        .iter()
        .map(|c| c.order_id().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["o-1", "o-1", "o-3", "o-4", made, "o-1", "o-8"]);
    let tags: std::collections::BTreeSet<u64> = submits[1]
        .iter()
        .map(|c| match c {
            Command::PlaceOrder { request_tag, .. } => *request_tag,
            other => panic!("not an order: {other:?}"),
        })
        .collect();
    assert_eq!(tags.len(), 7, "a tag per order");
    assert!(!tags.contains(&0));

    // The same stock moved as by the orders sent one by one.
    let levels = |sku: Value| (sku["available"].clone(), sku["reserved"].clone());
    assert_eq!(
        levels(get(&app, "/v1/skus/A1").await.json()),
        levels(get(&alone, "/v1/skus/A1").await.json())
    );
    let metrics = get(&app, "/metrics").await.text();
    let line =
        "gateway_requests_total{route=\"/v1/orders/batch\",method=\"POST\",status=\"200\"} 1";
    assert!(metrics.contains(line), "missing {line} in\n{metrics}");
}

#[tokio::test]
async fn refusals_and_wrong_outcomes_in_a_batch_are_answered_as_for_one_order() {
    let (node, app) = one_node().await;
    post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 5})).await;
    node.refuse_next(Outcome::Refused(Refusal::PerUserLimitExceeded {
        sku: sku_id("A1"),
        limit: 2,
        held: 2,
        requested: 1,
    }));
    node.refuse_next(Outcome::Refused(Refusal::SaleNotActive {
        sku: sku_id("A1"),
        start_ms: 10,
        end_ms: 20,
    }));
    node.refuse_next(Outcome::Expired { orders: 1 });
    let orders = (0..4)
        .map(|i| order_body(&format!("o-{i}"), "u-1", "A1", 1))
        .collect();
    let results = post_batch(&app, orders).await.json()["results"].clone();
    let error = |i: usize| results[i]["error"].clone();
    assert_eq!(results[0]["status"], 409);
    assert_eq!(
        (
            error(0)["code"].clone(),
            error(0)["limit"].clone(),
            error(0)["held"].clone()
        ),
        (json!("per_user_limit_exceeded"), json!(2), json!(2))
    );
    assert_eq!(results[1]["status"], 409);
    assert_eq!(
        (
            error(1)["code"].clone(),
            error(1)["start_ms"].clone(),
            error(1)["end_ms"].clone()
        ),
        (json!("sale_not_active"), json!(10), json!(20))
    );
    // An outcome of the wrong kind is the cluster's bug, for one order as for the batch.
    assert_eq!(results[2]["status"], 500);
    assert_eq!(error(2)["code"], "internal");
    assert_eq!(results[3]["status"], 201);
}

#[tokio::test]
async fn a_body_that_is_not_1_to_1000_orders_is_refused_whole() {
    let (node, app) = one_node().await;
    let orders = |n: usize| {
        let orders: Vec<Value> = (0..n)
            .map(|i| order_body(&format!("o-{i}"), "u", "A1", 1))
            .collect();
        json!({ "orders": orders }).to_string()
    };
    // (body, the field the 400 names)
    let cases: Vec<(String, Option<&str>)> = vec![
        (orders(0), Some("orders")),
        (orders(1_001), Some("orders")),
        ("{}".into(), Some("orders")),
        (r#"{"orders": {}}"#.into(), Some("orders")),
        (
            r#"{"orders": [{"user_id": "u", "items": [{"sku": "A1", "qty": 1}]}], "dry_run": 1}"#
                .into(),
            Some("dry_run"),
        ),
        ("[]".into(), None),
        (r#"{"orders": [1,"#.into(), None),
        (String::new(), None),
    ];
    for (body, field) in cases {
        let a = send(
            &app,
            "POST",
            "/v1/orders/batch",
            Some("application/json"),
            body.clone(),
        )
        .await;
        let got = a.assert_error(400, "invalid_request");
        let short: String = body.chars().take(80).collect();
        assert_eq!(
            got["error"].get("field").and_then(Value::as_str),
            field,
            "{short}"
        );
    }
    send(&app, "POST", "/v1/orders/batch", None, orders(1))
        .await
        .assert_error(415, "unsupported_media_type");
    // A batch whose every entry is refused here is judged without the cluster.
    let all_bad = post_batch(&app, vec![order_body("o-1", "u", "A1", 0), json!(null)]).await;
    assert_eq!(all_bad.status, 200, "{}", all_bad.text());
    let results = all_bad.json()["results"].clone();
    assert_eq!(results[0]["error"]["field"], "orders[0].items[0].qty");
    assert_eq!(results[1]["error"]["field"], "orders[1]");
    assert!(node.submits().is_empty(), "nothing reached the cluster");
}

#[tokio::test]
async fn a_batch_body_may_be_1_mib_while_other_bodies_stay_at_64_kib() {
    let (node, app) = one_node().await;
    post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 1_000})).await;
    // 1,000 orders of about 100 bytes: over the 64 KiB of a single order's body.
    let orders: Vec<Value> = (0..1_000)
        .map(|i| order_body(&format!("order-{i:05}-{}", "x".repeat(40)), "u-1", "A1", 1))
        .collect();
    let body = json!({ "orders": orders }).to_string();
    assert!(body.len() > 100 * 1024, "{} bytes", body.len());
    let a = send(
        &app,
        "POST",
        "/v1/orders/batch",
        Some("application/json"),
        body,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let results = a.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 1_000);
    assert!(results.iter().all(|r| r["status"] == 201));
    assert_eq!(results[999]["order"]["order_id"], orders[999]["order_id"]);
    assert_eq!(node.submits()[1].len(), 1_000, "one Submit");

    let one = json!({"orders": [order_body("o-1", "u-1", "A1", 1)]}).to_string();
    let pad = |len: usize| format!("{one}{}", " ".repeat(len - one.len()));
    let exact = send(
        &app,
        "POST",
        "/v1/orders/batch",
        Some("application/json"),
        pad(1_048_576),
    )
    .await;
    assert_eq!(exact.status, 200, "{}", exact.text());
    send(
        &app,
        "POST",
        "/v1/orders/batch",
        Some("application/json"),
        pad(1_048_577),
    )
    .await
    .assert_error(413, "payload_too_large");
    // Without a Content-Length (a stream), the limit holds while reading.
    let chunks: Vec<Result<String, std::io::Error>> =
        (0..1_100).map(|_| Ok(" ".repeat(1_000))).collect();
    let streamed = Body::from_stream(futures::stream::iter(chunks));
    send(
        &app,
        "POST",
        "/v1/orders/batch",
        Some("application/json"),
        streamed,
    )
    .await
    .assert_error(413, "payload_too_large");
    // The single route keeps its 64 KiB.
    let single = order_body("o-2", "u-1", "A1", 1).to_string();
    let padded = format!("{single}{}", " ".repeat(65_537 - single.len()));
    send(&app, "POST", "/v1/orders", Some("application/json"), padded)
        .await
        .assert_error(413, "payload_too_large");
    assert_eq!(node.submits().len(), 3);
}

#[tokio::test]
async fn a_batch_whose_answer_was_lost_is_resent_whole_and_still_answered_201() {
    let (node, app) = one_node().await;
    post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 5})).await;
    node.script(Script::AppliedButLost(vec![]));
    let orders = vec![
        order_body("o-1", "u-1", "A1", 1),
        json!({"user_id": "u-2", "items": [{"sku": "A1", "qty": 2}]}),
    ];
    let a = post_batch(&app, orders).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let results = a.json()["results"].clone();
    assert_eq!(
        (&results[0]["status"], &results[1]["status"]),
        (&json!(201), &json!(201))
    );
    let submits = node.submits();
    assert_eq!(
        submits.len(),
        3,
        "the create, the batch, and the batch again"
    );
    assert_eq!(submits[1], submits[2], "resent with the same ids and tags");
    assert_eq!(
        submits[2][1].order_id().unwrap().as_str(),
        results[1]["order"]["order_id"]
    );
    let sku = get(&app, "/v1/skus/A1").await.json();
    assert_eq!(
        (&sku["available"], &sku["reserved"]),
        (&json!(2), &json!(3)),
        "reserved once"
    );
}

#[tokio::test]
async fn a_batch_that_no_leader_answers_is_503_whole() {
    let node = FakeNode::start(1).await;
    node.set_always_unavailable(true);
    let mut c = config(vec![node.addr.clone()]);
    c.request_deadline_ms = 200;
    let app = gateway::app(&c).unwrap();
    let orders = vec![
        order_body("o-1", "u-1", "A1", 1),
        order_body("o-2", "u-1", "A1", 0),
    ];
    let a = post_batch(&app, orders).await;
    a.assert_error(503, "unavailable");
    assert_eq!(a.headers["retry-after"], "1");
    assert!(node.submits().len() > 1, "retried until the deadline");
}

#[tokio::test]
async fn an_order_named_batch_can_still_be_read_and_paid() {
    let (_node, app) = one_node().await;
    post_json(&app, "/v1/skus", json!({"sku": "A1", "stock": 1})).await;
    let placed = post_json(&app, "/v1/orders", order_body("batch", "u-1", "A1", 1)).await;
    assert_eq!(placed.status, 201, "{}", placed.text());
    let read = get(&app, "/v1/orders/batch").await;
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.json(), placed.json());
    let paid = post_json(&app, "/v1/orders/batch/pay", json!({})).await;
    assert_eq!(paid.status, 200, "{}", paid.text());
    assert_eq!(paid.json()["status"], "paid");
    send(&app, "PUT", "/v1/orders/batch", None, Body::empty())
        .await
        .assert_error(405, "method_not_allowed");
}

#[tokio::test]
async fn short_outcomes_answer_as_whole_ones_do() {
    // A node of this release answers short outcomes; one of an earlier release, whole ones.
    let (short_node, short) = one_node().await;
    let (whole_node, whole) = one_node().await;
    whole_node.answer_whole_outcomes();
    let two_items = |order_id: &str, first: &str, second: &str| {
        json!({"order_id": order_id, "user_id": "u-9",
               "items": [{"sku": first, "qty": 1}, {"sku": second, "qty": 2}]})
    };
    let calls: Vec<(&str, Value)> = vec![
        ("/v1/skus", json!({"sku": "A1", "stock": 3})),
        ("/v1/skus", json!({"sku": "B2", "stock": 5})),
        ("/v1/orders", two_items("o-1", "A1", "B2")),
        // A replay listing the items the other way round is shown the order's own.
        ("/v1/orders", two_items("o-1", "B2", "A1")),
        ("/v1/orders", order_body("o-2", "u-7", "A1", 1)),
        ("/v1/orders", order_body("o-3", "u-7", "A1", 9)),
        ("/v1/orders/o-1/pay", json!({"payment_ref": "pay-1"})),
        ("/v1/orders/o-1/pay", json!({})),
        ("/v1/orders/o-1/refund", json!({"restock": true})),
        ("/v1/orders/o-2/cancel", json!({})),
        ("/v1/orders/o-404/cancel", json!({})),
    ];
    for (path, body) in calls {
        let a = post_json(&short, path, body.clone()).await;
        let b = post_json(&whole, path, body).await;
        assert_eq!(
            a.status,
            b.status,
            "{path}: {} against {}",
            a.text(),
            b.text()
        );
        assert_eq!(
            without_request_ids(&a.json()),
            without_request_ids(&b.json()),
            "{path}"
        );
    }
    let orders = vec![
        order_body("o-4", "u-1", "A1", 1),
        two_items("o-1", "A1", "B2"),
        order_body("o-5", "u-1", "B2", 99),
    ];
    let a = post_batch(&short, orders.clone()).await;
    let b = post_batch(&whole, orders).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        without_request_ids(&a.json()),
        without_request_ids(&b.json())
    );
    assert!(
        short_node.short_answers() >= 11,
        "{}",
        short_node.short_answers()
    );
    assert_eq!(whole_node.short_answers(), 0);
}

/// A body without the request ids its errors name: they differ from request to request.
fn without_request_ids(body: &Value) -> Value {
    match body {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(key, _)| key.as_str() != "request_id")
                .map(|(key, value)| (key.clone(), without_request_ids(value)))
                .collect(),
        ),
        Value::Array(values) => Value::Array(values.iter().map(without_request_ids).collect()),
        other => other.clone(),
    }
}
