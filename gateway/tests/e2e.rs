//! End-to-end: a real three-node cluster (`node` processes) behind real in-process gateways,
//! exercised over real HTTP. Every route and error code of API.md, reservations expiring on
//! their own, the leader SIGKILLed in the middle of a flash sale, and two gateways agreeing
//! (on an order batch too).
//!
//! Tests run one at a time (`SERIAL`): each starts its own cluster, and clusters side by side
//! on two cores would miss heartbeats. Node logs are printed when a test fails.

mod e2e_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e_support::{now_ms, Cluster, GatewayProcess, Http, Resp, RunningGateway, SERIAL};
use futures::StreamExt;
use hyper::Method;
use serde_json::{json, Value};

/// 2100-01-01: a sale window that is open for the whole test.
const FAR_FUTURE_MS: u64 = 4_102_444_800_000;

fn order_body(order_id: &str, user: &str, items: &[(&str, u64)]) -> Value {
    json!({
        "order_id": order_id,
        "user_id": user,
        "items": items.iter().map(|(sku, qty)| json!({"sku": sku, "qty": qty})).collect::<Vec<_>>(),
    })
}

/// The body without `revision`, which is a Raft log index and so not known in advance.
fn without_revision(mut body: Value) -> Value {
    let revision = body
        .as_object_mut()
        .and_then(|o| o.remove("revision"))
        .unwrap_or_else(|| panic!("no revision in {body}"));
    assert!(
        revision.as_u64().is_some_and(|r| r > 0),
        "revision {revision}"
    );
    body
}

async fn sku(http: &Http, sku: &str) -> Value {
    http.get(&format!("/v1/skus/{sku}")).await.expect(200)
}

async fn order(http: &Http, id: &str) -> Value {
    http.get(&format!("/v1/orders/{id}")).await.expect(200)
}

/// `available + reserved + sold == total`, and the four counters as a tuple.
#[track_caller]
fn counters(sku: &Value) -> (u64, u64, u64, u64) {
    let n = |k: &str| {
        sku[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} missing in {sku}"))
    };
    let (total, available, reserved, sold) = (n("total"), n("available"), n("reserved"), n("sold"));
    assert_eq!(
        available + reserved + sold,
        total,
        "broken invariant: {sku}"
    );
    (total, available, reserved, sold)
}

// ---------------------------------------------------------------------------------------------
// 1. Every route and error code of API.md
// ---------------------------------------------------------------------------------------------

/// SKU routes, the operations endpoints, and the request-level errors (400, 404, 405, 413,
/// 415) through gateway → leader → Raft → state machine and back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sku_routes_operations_and_request_errors() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let gw = RunningGateway::start(cluster.addrs()).await;
    let http = gw.http();

    // --- operations
    let health = http.get("/healthz").await;
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(http.get("/readyz").await.status, 200);
    let leader = cluster.leader(&cluster.ids()).await;
    let view = http.get("/v1/cluster").await.expect(200);
    assert_eq!(view["leader"], leader, "{view}");
    assert!(view["term"].as_u64().is_some_and(|t| t >= 1), "{view}");
    let nodes = view["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3, "{view}");
    let ids: BTreeSet<u64> = nodes.iter().filter_map(|n| n["id"].as_u64()).collect();
    assert_eq!(ids, BTreeSet::from([1, 2, 3]), "{view}");
    for n in nodes {
        assert_eq!(n["reachable"], true, "{view}");
        let expected_role = if n["id"] == leader {
            "leader"
        } else {
            "follower"
        };
        assert_eq!(n["role"], expected_role, "{view}");
        assert_eq!(n["addr"], cluster.addr(n["id"].as_u64().unwrap()), "{view}");
    }

    // --- create: 201, the same body again 200 (idempotent), other settings 409 sku_exists
    let a1 = json!({"sku": "A1", "stock": 10, "per_user_limit": 2,
                    "sale_window": {"start_ms": 1, "end_ms": FAR_FUTURE_MS}});
    let created = http.post_json("/v1/skus", &a1).await;
    assert_eq!(
        created
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap()),
        Some("application/json")
    );
    let created = created.expect(201);
    assert_eq!(
        without_revision(created.clone()),
        json!({"sku": "A1", "total": 10, "available": 10, "reserved": 0, "sold": 0,
               "refunded": 0, "per_user_limit": 2,
               "sale_window": {"start_ms": 1, "end_ms": FAR_FUTURE_MS}})
    );
    let replay = http.post_json("/v1/skus", &a1).await.expect(200);
    assert_eq!(
        replay, created,
        "a replayed create changes nothing, revision included"
    );
    let other = http
        .post_json("/v1/skus", &json!({"sku": "A1", "stock": 11}))
        .await;
    assert_eq!(other.assert_error(409, "sku_exists")["error"]["sku"], "A1");
    assert_eq!(sku(&http, "A1").await, created);

    // Explicit nulls equal absent fields; `; charset=utf-8` is fine.
    let b1 = http
        .send(
            Method::POST,
            "/v1/skus",
            Some("application/json; charset=utf-8"),
            br#"{"sku": "B1", "stock": 0, "per_user_limit": null, "sale_window": null}"#.to_vec(),
        )
        .await
        .expect(201);
    assert_eq!(
        without_revision(b1),
        json!({"sku": "B1", "total": 0, "available": 0, "reserved": 0, "sold": 0,
               "refunded": 0, "per_user_limit": null, "sale_window": null})
    );
    http.post_json("/v1/skus", &json!({"sku": "B1", "stock": 0}))
        .await
        .expect(200);

    // --- restock: applied once per request_id, conflicts, withdrawals
    let r = http
        .post_json(
            "/v1/skus/A1/restock",
            &json!({"request_id": "r-1", "delta": 5}),
        )
        .await
        .expect(200);
    assert_eq!(counters(&r), (15, 15, 0, 0));
    assert!(r["revision"].as_u64() > created["revision"].as_u64());
    let again = http
        .post_json(
            "/v1/skus/A1/restock",
            &json!({"request_id": "r-1", "delta": 5}),
        )
        .await
        .expect(200);
    assert_eq!(again, r, "a replayed restock is not applied twice");
    let conflict = http
        .post_json(
            "/v1/skus/A1/restock",
            &json!({"request_id": "r-1", "delta": 6}),
        )
        .await;
    conflict.assert_error(409, "request_id_conflict");
    let withdrawn = http
        .post_json(
            "/v1/skus/A1/restock",
            &json!({"request_id": "r-2", "delta": -3}),
        )
        .await
        .expect(200);
    assert_eq!(counters(&withdrawn), (12, 12, 0, 0));
    let too_much = http
        .post_json(
            "/v1/skus/A1/restock",
            &json!({"request_id": "r-3", "delta": -13}),
        )
        .await;
    let err = too_much.assert_error(409, "insufficient_available");
    assert_eq!(err["error"]["sku"], "A1");
    assert_eq!(err["error"]["available"], 12);
    // A refused restock's request_id is not remembered: the same id is judged afresh.
    let r3 = http
        .post_json(
            "/v1/skus/A1/restock",
            &json!({"request_id": "r-3", "delta": -2}),
        )
        .await
        .expect(200);
    assert_eq!(counters(&r3), (10, 10, 0, 0));
    // Restock dedup is per SKU: r-1 on B1 is a new request.
    let b1r = http
        .post_json(
            "/v1/skus/B1/restock",
            &json!({"request_id": "r-1", "delta": 7}),
        )
        .await
        .expect(200);
    assert_eq!(counters(&b1r), (7, 7, 0, 0));
    let missing = http
        .post_json(
            "/v1/skus/NOPE/restock",
            &json!({"request_id": "r-1", "delta": 1}),
        )
        .await;
    assert_eq!(
        missing.assert_error(404, "sku_not_found")["error"]["sku"],
        "NOPE"
    );
    let zero = http
        .post_json(
            "/v1/skus/A1/restock",
            &json!({"request_id": "r-9", "delta": 0}),
        )
        .await;
    zero.assert_error(400, "invalid_request");

    // --- PATCH: only present fields change; null clears a setting
    let p = http
        .patch_json("/v1/skus/A1", &json!({"per_user_limit": 5}))
        .await
        .expect(200);
    assert_eq!(p["per_user_limit"], 5);
    assert_eq!(
        p["sale_window"],
        json!({"start_ms": 1, "end_ms": FAR_FUTURE_MS})
    );
    let p = http
        .patch_json("/v1/skus/A1", &json!({"sale_window": null}))
        .await
        .expect(200);
    assert_eq!(p["sale_window"], Value::Null, "null clears the window: {p}");
    assert_eq!(p["per_user_limit"], 5, "an absent field stays: {p}");
    let p = http
        .patch_json(
            "/v1/skus/A1",
            &json!({"per_user_limit": null, "sale_window": {"start_ms": 5, "end_ms": FAR_FUTURE_MS}}),
        )
        .await
        .expect(200);
    assert_eq!(p["per_user_limit"], Value::Null, "{p}");
    assert_eq!(
        p["sale_window"],
        json!({"start_ms": 5, "end_ms": FAR_FUTURE_MS})
    );
    assert_eq!(counters(&p), (10, 10, 0, 0));
    assert_eq!(sku(&http, "A1").await, p);
    // "The same SKU" is judged on the settings it was created with, not later patches.
    http.post_json("/v1/skus", &a1).await.expect(200);
    http.patch_json("/v1/skus/NOPE", &json!({"per_user_limit": 1}))
        .await
        .assert_error(404, "sku_not_found");
    http.patch_json("/v1/skus/A1", &json!({"per_user_limit": 0}))
        .await
        .assert_error(400, "invalid_request");
    let gone = http.get("/v1/skus/NOPE").await;
    assert_eq!(
        gone.assert_error(404, "sku_not_found")["error"]["sku"],
        "NOPE"
    );

    // --- list: byte order of sku, `after` exclusive, `next` until null
    for name in ["L-3", "L-1", "L-2", "a-lower", "Z9"] {
        http.post_json("/v1/skus", &json!({"sku": name, "stock": 1}))
            .await
            .expect(201);
    }
    let mut expected: Vec<String> = ["A1", "B1", "L-1", "L-2", "L-3", "Z9", "a-lower"]
        .map(String::from)
        .to_vec();
    expected.sort();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _page in 0..10 {
        let path = match &after {
            Some(a) => format!("/v1/skus?after={a}&limit=2"),
            None => "/v1/skus?limit=2".to_owned(),
        };
        let page = http.get(&path).await.expect(200);
        let skus = page["skus"].as_array().expect("skus");
        assert!(skus.len() <= 2, "{page}");
        for s in skus {
            counters(s);
            seen.push(s["sku"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => {
                assert_eq!(Some(next), skus.last().and_then(|s| s["sku"].as_str()));
                after = Some(next.to_owned());
            }
            None => {
                after = None;
                break;
            }
        }
    }
    assert!(after.is_none(), "paging did not end");
    assert_eq!(seen, expected);
    let page = http.get("/v1/skus?after=L-1&limit=1").await.expect(200);
    assert_eq!(page["skus"][0]["sku"], "L-2", "{page}");
    assert_eq!(page["next"], "L-2", "{page}");
    let page = http.get("/v1/skus?after=Z9").await.expect(200);
    assert_eq!(page["skus"][0]["sku"], "a-lower", "{page}");
    assert_eq!(page["next"], Value::Null, "{page}");
    let page = http.get("/v1/skus").await.expect(200);
    assert_eq!(page["skus"].as_array().unwrap().len(), expected.len());
    assert_eq!(page["skus"][0], sku(&http, "A1").await);

    // --- 400
    let bad = |body: &'static str| {
        let http = http.clone();
        async move {
            http.send(
                Method::POST,
                "/v1/skus",
                Some("application/json"),
                body.as_bytes().to_vec(),
            )
            .await
        }
    };
    bad(r#"{"sku": "X1", "stock": "#)
        .await
        .assert_error(400, "invalid_request");
    let unknown = bad(r#"{"sku": "X1", "stock": 1, "colour": "red"}"#)
        .await
        .assert_error(400, "invalid_request");
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{unknown}"
    );
    bad(r#"{"sku": "X1"}"#)
        .await
        .assert_error(400, "invalid_request");
    let id = bad(r#"{"sku": "bad sku!", "stock": 1}"#)
        .await
        .assert_error(400, "invalid_request");
    assert!(
        id["error"]["message"].as_str().unwrap().contains("sku"),
        "{id}"
    );
    let big = bad(r#"{"sku": "X1", "stock": 9007199254740992}"#)
        .await
        .assert_error(400, "invalid_request");
    assert!(
        big["error"]["message"].as_str().unwrap().contains("stock"),
        "{big}"
    );
    let window = bad(r#"{"sku": "X1", "stock": 1, "sale_window": {"start_ms": 5, "end_ms": 5}}"#)
        .await
        .assert_error(400, "invalid_request");
    assert!(
        window["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sale_window.start_ms"),
        "{window}"
    );
    let path = http.get("/v1/skus/bad%20sku").await;
    assert!(
        path.assert_error(400, "invalid_request")["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sku"),
        "{}",
        path.text()
    );
    for q in ["limit=0", "limit=1001", "limit=x", "colour=red"] {
        http.get(&format!("/v1/skus?{q}"))
            .await
            .assert_error(400, "invalid_request");
    }
    // None of the refused creates left a SKU behind.
    http.get("/v1/skus/X1")
        .await
        .assert_error(404, "sku_not_found");

    // --- 404, 405
    http.get("/v1/nowhere").await.assert_error(404, "not_found");
    http.send(Method::DELETE, "/v1/skus/A1", None, Vec::new())
        .await
        .assert_error(405, "method_not_allowed");
    http.send(
        Method::PUT,
        "/v1/skus",
        Some("application/json"),
        a1.to_string().into_bytes(),
    )
    .await
    .assert_error(405, "method_not_allowed");
    http.get("/v1/skus/A1/restock")
        .await
        .assert_error(405, "method_not_allowed");

    // --- 413: over 64 KiB, valid JSON otherwise
    let padding = "x".repeat(70_000);
    let huge = format!(r#"{{"sku": "X2", "stock": 1, "pad": "{padding}"}}"#);
    http.send(
        Method::POST,
        "/v1/skus",
        Some("application/json"),
        huge.into_bytes(),
    )
    .await
    .assert_error(413, "payload_too_large");

    // --- 415: a body with the wrong or no Content-Type
    let x3 = json!({"sku": "X3", "stock": 1}).to_string().into_bytes();
    http.send(Method::POST, "/v1/skus", Some("text/plain"), x3.clone())
        .await
        .assert_error(415, "unsupported_media_type");
    http.send(Method::POST, "/v1/skus", None, x3)
        .await
        .assert_error(415, "unsupported_media_type");
    http.get("/v1/skus/X3")
        .await
        .assert_error(404, "sku_not_found");

    // --- metrics saw all of it
    let metrics = http.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    for name in [
        "gateway_requests_total",
        "gateway_request_duration_seconds",
        "gateway_retries_total",
        "gateway_leader_changes_total",
    ] {
        assert!(text.contains(name), "no {name} in /metrics:\n{text}");
    }
    assert!(
        text.lines().any(|l| l.starts_with("gateway_requests_total")
            && l.contains("route=\"/v1/skus\"")
            && l.contains("method=\"POST\"")
            && l.contains("status=\"201\"")),
        "no count of 201 creates in /metrics:\n{text}"
    );
}

/// Order routes and their refusals: idempotent replays, conflicts, stock, per-user limits,
/// sale windows, every transition and no-op, refunds with and without restock, listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_routes_transitions_and_refusals() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let gw = RunningGateway::start(cluster.addrs()).await;
    let http = gw.http();

    for body in [
        json!({"sku": "P1", "stock": 10, "per_user_limit": 3}),
        json!({"sku": "P2", "stock": 5}),
        json!({"sku": "W1", "stock": 5, "sale_window": {"start_ms": 1000, "end_ms": 2000}}),
    ] {
        http.post_json("/v1/skus", &body).await.expect(201);
    }

    // --- place, then replay: 201 then 200 with the order as it stands, never a second hold
    let before = now_ms();
    let o1 = http
        .post_json("/v1/orders", &order_body("o-1", "u-1", &[("P1", 2)]))
        .await
        .expect(201);
    let after = now_ms();
    assert_eq!(o1["order_id"], "o-1");
    assert_eq!(o1["user_id"], "u-1");
    assert_eq!(o1["items"], json!([{"sku": "P1", "qty": 2}]));
    assert_eq!(o1["status"], "reserved");
    assert_eq!(o1["payment_ref"], Value::Null);
    let created_ms = o1["created_ms"].as_u64().unwrap();
    // The leader's clock is this machine's clock.
    assert!(
        before.saturating_sub(1_000) <= created_ms && created_ms <= after + 1_000,
        "created_ms {created_ms} outside [{before}, {after}]"
    );
    assert_eq!(
        o1["expires_ms"].as_u64().unwrap(),
        created_ms + 900_000,
        "default ttl"
    );
    assert_eq!(o1["updated_ms"].as_u64().unwrap(), created_ms);
    let p1 = sku(&http, "P1").await;
    assert_eq!(counters(&p1), (10, 8, 2, 0));

    let replay = http
        .post_json("/v1/orders", &order_body("o-1", "u-1", &[("P1", 2)]))
        .await
        .expect(200);
    assert_eq!(replay, o1, "a replay answers the order unchanged");
    // reservation_ttl_ms is not part of the content.
    let mut with_ttl = order_body("o-1", "u-1", &[("P1", 2)]);
    with_ttl["reservation_ttl_ms"] = json!(5_000);
    assert_eq!(
        http.post_json("/v1/orders", &with_ttl).await.expect(200),
        o1
    );
    assert_eq!(
        sku(&http, "P1").await,
        p1,
        "replays reserve nothing and change no revision"
    );

    // --- order_id_conflict: other items, other qty, other user
    for conflicting in [
        order_body("o-1", "u-1", &[("P1", 1)]),
        order_body("o-1", "u-2", &[("P1", 2)]),
        order_body("o-1", "u-1", &[("P1", 2), ("P2", 1)]),
    ] {
        let c = http.post_json("/v1/orders", &conflicting).await;
        assert_eq!(
            c.assert_error(409, "order_id_conflict")["error"]["order_id"],
            "o-1"
        );
    }
    assert_eq!(order(&http, "o-1").await, o1);

    // --- several items; "the same order" is the same multiset of items
    let o2 = http
        .post_json(
            "/v1/orders",
            &order_body("o-2", "u-1", &[("P2", 1), ("P1", 1)]),
        )
        .await
        .expect(201);
    let o2_again = http
        .post_json(
            "/v1/orders",
            &order_body("o-2", "u-1", &[("P1", 1), ("P2", 1)]),
        )
        .await
        .expect(200);
    assert_eq!(o2_again, o2);
    assert_eq!(counters(&sku(&http, "P1").await), (10, 7, 3, 0));
    assert_eq!(counters(&sku(&http, "P2").await), (5, 4, 1, 0));

    // --- per_user_limit_exceeded: u-1 holds 3 of P1, its limit
    let limit = http
        .post_json("/v1/orders", &order_body("o-3", "u-1", &[("P1", 1)]))
        .await;
    let err = limit.assert_error(409, "per_user_limit_exceeded");
    assert_eq!(err["error"]["sku"], "P1");
    assert_eq!(err["error"]["limit"], 3);
    assert_eq!(err["error"]["held"], 3);
    // Refusals are not stored.
    let nf = http.get("/v1/orders/o-3").await;
    assert_eq!(
        nf.assert_error(404, "order_not_found")["error"]["order_id"],
        "o-3"
    );

    // --- out_of_stock, all or nothing: P1 is fine, P2 is not, so neither is held
    let oos = http
        .post_json(
            "/v1/orders",
            &order_body("o-4", "u-2", &[("P1", 1), ("P2", 100)]),
        )
        .await;
    let err = oos.assert_error(409, "out_of_stock");
    assert_eq!(err["error"]["sku"], "P2");
    assert_eq!(err["error"]["available"], 4);
    assert_eq!(counters(&sku(&http, "P1").await), (10, 7, 3, 0));
    assert_eq!(counters(&sku(&http, "P2").await), (5, 4, 1, 0));
    http.get("/v1/orders/o-4")
        .await
        .assert_error(404, "order_not_found");
    // ...and a later retry with the same id is judged afresh.
    let o4 = http
        .post_json("/v1/orders", &order_body("o-4", "u-2", &[("P2", 1)]))
        .await
        .expect(201);
    assert_eq!(o4["status"], "reserved");

    // --- sale_not_active: a window in the past
    let closed = http
        .post_json("/v1/orders", &order_body("o-5", "u-2", &[("W1", 1)]))
        .await;
    let err = closed.assert_error(409, "sale_not_active");
    assert_eq!(err["error"]["sku"], "W1");
    assert_eq!(err["error"]["start_ms"], 1000);
    assert_eq!(err["error"]["end_ms"], 2000);
    assert_eq!(counters(&sku(&http, "W1").await), (5, 5, 0, 0));

    // --- sku_not_found in an order
    let unknown = http
        .post_json("/v1/orders", &order_body("o-6", "u-2", &[("NOPE", 1)]))
        .await;
    assert_eq!(
        unknown.assert_error(404, "sku_not_found")["error"]["sku"],
        "NOPE"
    );
    http.get("/v1/orders/o-6")
        .await
        .assert_error(404, "order_not_found");

    // --- pay: reserved → paid; paying again is a no-op whatever the payment_ref
    let paid = http
        .post_json("/v1/orders/o-1/pay", &json!({"payment_ref": "pay-1"}))
        .await
        .expect(200);
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["payment_ref"], "pay-1");
    assert!(paid["revision"].as_u64() > o1["revision"].as_u64());
    assert!(paid["updated_ms"].as_u64() >= o1["updated_ms"].as_u64());
    assert_eq!(paid["created_ms"], o1["created_ms"]);
    assert_eq!(counters(&sku(&http, "P1").await), (10, 7, 1, 2));
    let paid_again = http
        .post_json("/v1/orders/o-1/pay", &json!({"payment_ref": "pay-other"}))
        .await
        .expect(200);
    assert_eq!(paid_again, paid, "paying a paid order changes nothing");
    assert_eq!(
        http.post_empty("/v1/orders/o-1/pay").await.expect(200),
        paid
    );
    // cancel a paid order → invalid_transition (refund it)
    let err = http
        .post_empty("/v1/orders/o-1/cancel")
        .await
        .assert_error(409, "invalid_transition");
    assert_eq!(err["error"]["status"], "paid");

    // --- refund with restock (the default): units go back to available
    let refunded = http
        .post_json("/v1/orders/o-1/refund", &json!({"restock": true}))
        .await
        .expect(200);
    assert_eq!(refunded["status"], "refunded");
    let p1 = sku(&http, "P1").await;
    assert_eq!(counters(&p1), (10, 9, 1, 0));
    assert_eq!(p1["refunded"], 2);
    // Refunding again is a no-op whatever `restock` says.
    let again = http
        .post_json("/v1/orders/o-1/refund", &json!({"restock": false}))
        .await
        .expect(200);
    assert_eq!(again, refunded);
    assert_eq!(sku(&http, "P1").await, p1);
    let err = http
        .post_empty("/v1/orders/o-1/pay")
        .await
        .assert_error(409, "invalid_transition");
    assert_eq!(err["error"]["status"], "refunded");

    // --- refund without restock: the units leave the stock (total shrinks)
    http.post_json("/v1/orders", &order_body("o-7", "u-3", &[("P2", 2)]))
        .await
        .expect(201);
    let paid = http.post_empty("/v1/orders/o-7/pay").await.expect(200);
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["payment_ref"], Value::Null);
    let p2 = sku(&http, "P2").await;
    assert_eq!(counters(&p2), (5, 1, 2, 2));
    let refunded = http
        .post_json("/v1/orders/o-7/refund", &json!({"restock": false}))
        .await
        .expect(200);
    assert_eq!(refunded["status"], "refunded");
    let p2 = sku(&http, "P2").await;
    assert_eq!(counters(&p2), (3, 1, 2, 0));
    assert_eq!(p2["refunded"], 2);

    // --- cancel: reserved units return; cancelling again is a no-op
    let cancelled = http.post_empty("/v1/orders/o-2/cancel").await.expect(200);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(counters(&sku(&http, "P1").await), (10, 10, 0, 0));
    assert_eq!(counters(&sku(&http, "P2").await), (3, 2, 1, 0));
    assert_eq!(
        http.post_empty("/v1/orders/o-2/cancel").await.expect(200),
        cancelled
    );
    // An empty body is accepted whatever the Content-Type.
    assert_eq!(
        http.send(
            Method::POST,
            "/v1/orders/o-2/cancel",
            Some("text/plain"),
            Vec::new()
        )
        .await
        .expect(200),
        cancelled
    );
    // pay or refund a cancelled order → invalid_transition
    let err = http
        .post_json("/v1/orders/o-2/pay", &json!({"payment_ref": "pay-2"}))
        .await
        .assert_error(409, "invalid_transition");
    assert_eq!(err["error"]["status"], "cancelled");
    let err = http
        .post_empty("/v1/orders/o-2/refund")
        .await
        .assert_error(409, "invalid_transition");
    assert_eq!(err["error"]["status"], "cancelled");
    // refund a reserved order → invalid_transition
    let err = http
        .post_empty("/v1/orders/o-4/refund")
        .await
        .assert_error(409, "invalid_transition");
    assert_eq!(err["error"]["status"], "reserved");
    assert_eq!(order(&http, "o-2").await, cancelled);

    // --- order_not_found on every order route
    for (method, path) in [
        (Method::GET, "/v1/orders/ghost"),
        (Method::POST, "/v1/orders/ghost/pay"),
        (Method::POST, "/v1/orders/ghost/cancel"),
        (Method::POST, "/v1/orders/ghost/refund"),
    ] {
        let r = http.send(method, path, None, Vec::new()).await;
        assert_eq!(
            r.assert_error(404, "order_not_found")["error"]["order_id"],
            "ghost"
        );
    }

    // --- an order without order_id: the gateway makes one that obeys the identifier rule
    let made = http
        .post_json(
            "/v1/orders",
            &json!({"user_id": "u-4", "items": [{"sku": "P1", "qty": 1}]}),
        )
        .await
        .expect(201);
    let id = made["order_id"].as_str().expect("a generated order_id");
    assert!(
        (1..=128).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b)),
        "generated id {id:?}"
    );
    assert_eq!(order(&http, id).await, made);

    // --- a user's orders, newest first (not by id)
    http.post_json("/v1/skus", &json!({"sku": "L1", "stock": 10}))
        .await
        .expect(201);
    let names = ["ord-a", "ord-b", "ord-c", "ord-d"];
    for name in names {
        http.post_json("/v1/orders", &order_body(name, "u-list", &[("L1", 1)]))
            .await
            .expect(201);
        // Distinct created_ms, so the order is by time alone.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let list = http.get("/v1/orders?user_id=u-list").await.expect(200);
    let listed: Vec<&str> = list["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["ord-d", "ord-c", "ord-b", "ord-a"], "{list}");
    for o in list["orders"].as_array().unwrap() {
        assert_eq!(*o, order(&http, o["order_id"].as_str().unwrap()).await);
    }
    let top = http
        .get("/v1/orders?user_id=u-list&limit=2")
        .await
        .expect(200);
    assert_eq!(top["orders"].as_array().unwrap().len(), 2);
    assert_eq!(top["orders"][0]["order_id"], "ord-d");
    assert_eq!(top["orders"][1]["order_id"], "ord-c");
    let u1 = http.get("/v1/orders?user_id=u-1").await.expect(200);
    let u1_ids: BTreeSet<&str> = u1["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(u1_ids, BTreeSet::from(["o-1", "o-2"]), "{u1}");
    assert_eq!(
        http.get("/v1/orders?user_id=nobody").await.expect(200),
        json!({"orders": []})
    );

    // --- 400 on orders, naming the field; 405
    for (body, field) in [
        (
            json!({"order_id": "x-1", "user_id": "u", "items": [{"sku": "P1", "qty": 0}]}),
            "items[0].qty",
        ),
        (
            json!({"order_id": "x-1", "user_id": "u", "items": [{"sku": "P1", "qty": 1}, {"sku": "P2", "qty": 1_000_001}]}),
            "items[1].qty",
        ),
        (
            json!({"order_id": "x-1", "user_id": "u", "items": []}),
            "items",
        ),
        (
            json!({"order_id": "x-1", "user_id": "u", "items": [{"sku": "P1", "qty": 1}],
                   "reservation_ttl_ms": 999}),
            "reservation_ttl_ms",
        ),
        (
            json!({"order_id": "x 1", "user_id": "u", "items": [{"sku": "P1", "qty": 1}]}),
            "order_id",
        ),
        (
            json!({"order_id": "x-1", "items": [{"sku": "P1", "qty": 1}]}),
            "user_id",
        ),
    ] {
        let r = http.post_json("/v1/orders", &body).await;
        let err = r.assert_error(400, "invalid_request");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(field),
            "message should name {field}: {err}"
        );
    }
    http.get("/v1/orders/x-1")
        .await
        .assert_error(404, "order_not_found");
    http.get("/v1/orders")
        .await
        .assert_error(400, "invalid_request");
    http.get("/v1/orders?user_id=u-1&limit=0")
        .await
        .assert_error(400, "invalid_request");
    http.get("/v1/orders/bad%20id")
        .await
        .assert_error(400, "invalid_request");
    http.post_json("/v1/orders/o-1/pay", &json!({"payment_ref": "p", "x": 1}))
        .await
        .assert_error(400, "invalid_request");
    http.get("/v1/orders/o-1/pay")
        .await
        .assert_error(405, "method_not_allowed");
    http.send(Method::DELETE, "/v1/orders/o-1", None, Vec::new())
        .await
        .assert_error(405, "method_not_allowed");
    http.send(
        Method::POST,
        "/v1/orders/o-4/pay",
        Some("text/plain"),
        br#"{"payment_ref": "p"}"#.to_vec(),
    )
    .await
    .assert_error(415, "unsupported_media_type");
    assert_eq!(order(&http, "o-4").await["status"], "reserved");
}

// ---------------------------------------------------------------------------------------------
// 2. Reservations expire on their own
// ---------------------------------------------------------------------------------------------

/// An order with a 1 s reservation turns `expired` (units back in available, the user's hold
/// released) within API.md's bound: one second after `expires_ms`, plus slack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_expire_on_their_own() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let gw = RunningGateway::start(cluster.addrs()).await;
    let http = gw.http();

    http.post_json(
        "/v1/skus",
        &json!({"sku": "E1", "stock": 5, "per_user_limit": 2}),
    )
    .await
    .expect(201);
    let mut body = order_body("e-1", "u-e", &[("E1", 2)]);
    body["reservation_ttl_ms"] = json!(1_000);
    let placed = http.post_json("/v1/orders", &body).await.expect(201);
    assert_eq!(placed["status"], "reserved");
    let expires_ms = placed["expires_ms"].as_u64().unwrap();
    assert_eq!(
        expires_ms,
        placed["created_ms"].as_u64().unwrap() + 1_000,
        "{placed}"
    );
    assert_eq!(counters(&sku(&http, "E1").await), (5, 3, 2, 0));
    // A ttl-less order of the same user stays reserved throughout.
    http.post_json("/v1/orders", &order_body("e-keep", "u-other", &[("E1", 1)]))
        .await
        .expect(201);

    // Documented bound: expired within 1 s after expires_ms. Allowed here: 3 s more.
    let give_up_ms = expires_ms + 4_000;
    let expired = loop {
        let o = order(&http, "e-1").await;
        let seen_at = now_ms();
        match o["status"].as_str() {
            Some("expired") => {
                assert!(
                    seen_at >= expires_ms,
                    "expired at {seen_at}, before its expires_ms {expires_ms}"
                );
                break o;
            }
            Some("reserved") => {}
            other => panic!("an untouched reservation became {other:?}: {o}"),
        }
        assert!(
            seen_at <= give_up_ms,
            "order still reserved {} ms after its expires_ms {expires_ms} (bound: 1000 ms)",
            seen_at - expires_ms
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let expired_after = expired["updated_ms"].as_u64().unwrap();
    assert!(
        expired_after >= expires_ms,
        "updated_ms {expired_after} before expires_ms {expires_ms}"
    );
    eprintln!(
        "e2e: order expired by the cluster's clock {} ms after expires_ms",
        expired_after - expires_ms
    );
    assert_eq!(
        expired["items"], placed["items"],
        "expiry keeps the order's content"
    );
    assert!(expired["revision"].as_u64() > placed["revision"].as_u64());
    // The units are back, and only this order's.
    let e1 = sku(&http, "E1").await;
    assert_eq!(counters(&e1), (5, 4, 1, 0), "{e1}");
    assert_eq!(order(&http, "e-keep").await["status"], "reserved");

    // Expired is final: cancel is a no-op, pay is refused.
    assert_eq!(
        http.post_empty("/v1/orders/e-1/cancel").await.expect(200),
        expired
    );
    let err = http
        .post_empty("/v1/orders/e-1/pay")
        .await
        .assert_error(409, "invalid_transition");
    assert_eq!(err["error"]["status"], "expired");
    // A replay of the expired order answers it as it stands, reserving nothing.
    assert_eq!(
        http.post_json("/v1/orders", &body).await.expect(200),
        expired
    );
    // The user's hold was released: the per-user limit lets them buy 2 again.
    http.post_json("/v1/orders", &order_body("e-2", "u-e", &[("E1", 2)]))
        .await
        .expect(201);
    assert_eq!(counters(&sku(&http, "E1").await), (5, 2, 3, 0));
}

// ---------------------------------------------------------------------------------------------
// 3. The leader SIGKILLed during a flash sale
// ---------------------------------------------------------------------------------------------

const BUYERS: usize = 1_000;
const UNITS: u64 = 100;
const CONNECTIONS: usize = 200;
/// Answers received before the leader is killed. The first command leaves the gateway alone;
/// the next batch (the rest of the first wave) leaves when it is answered, so killing then
/// lands while that batch is on its way to the leader, being appended or being replicated.
const KILL_AFTER_ANSWERS: usize = 1;

#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// 201, or 200 when the gateway's retry found the command already applied (a replay).
    Reserved {
        status: u16,
        body: Value,
    },
    OutOfStock,
    Unavailable,
    /// Anything else: a failure of the test.
    Other(String),
}

fn classify(i: usize, r: Result<Resp, String>) -> Answer {
    let r = match r {
        Ok(r) => r,
        Err(e) => return Answer::Other(format!("transport: {e}")),
    };
    match (r.status, r.error_code().as_deref()) {
        (200 | 201, _) => {
            let body = r.json();
            let expected = (format!("fs-{i}"), format!("b-{i}"));
            if (body["order_id"].as_str(), body["user_id"].as_str())
                != (Some(&expected.0), Some(&expected.1))
                || body["status"] != "reserved"
                || body["items"] != json!([{"sku": "FLASH", "qty": 1}])
            {
                return Answer::Other(format!("{} with a wrong order: {body}", r.status));
            }
            Answer::Reserved {
                status: r.status,
                body,
            }
        }
        (409, Some("out_of_stock")) => Answer::OutOfStock,
        (503, Some("unavailable")) => {
            if r.headers.get("retry-after").is_none() {
                return Answer::Other(format!("503 without Retry-After: {}", r.text()));
            }
            Answer::Unavailable
        }
        (status, _) => Answer::Other(format!("{status} {}", r.text())),
    }
}

async fn buy(http: &Http, i: usize) -> Answer {
    let body = order_body(&format!("fs-{i}"), &format!("b-{i}"), &[("FLASH", 1)]);
    let r = http
        .try_send(
            Method::POST,
            "/v1/orders",
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await;
    classify(i, r)
}

#[derive(Default)]
struct Progress {
    answered: AtomicUsize,
    killed: AtomicBool,
}

/// 1,000 buyers (200 connections) for 100 units; the leader gets SIGKILL early in the sale.
/// Afterwards the SKU's counters, the orders that exist, and the answers the buyers got all
/// agree: no unit lost or sold twice, no order reserved twice, no 5xx but `503 unavailable`,
/// and a 503'd buyer can safely retry with the same order id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_during_a_flash_sale_loses_and_doubles_nothing() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start(3).await;
    let gw = RunningGateway::start(cluster.addrs()).await;
    let http = gw.http();
    http.post_json("/v1/skus", &json!({"sku": "FLASH", "stock": UNITS}))
        .await
        .expect(201);
    let leader = cluster.leader(&cluster.ids()).await;

    let progress = Arc::new(Progress::default());
    let sale = {
        let http = http.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            futures::stream::iter(0..BUYERS)
                .map(|i| {
                    let http = http.clone();
                    let progress = progress.clone();
                    async move {
                        let answer = buy(&http, i).await;
                        let after_kill = progress.killed.load(Ordering::SeqCst);
                        progress.answered.fetch_add(1, Ordering::SeqCst);
                        (i, (answer, after_kill))
                    }
                })
                .buffer_unordered(CONNECTIONS)
                .collect::<Vec<_>>()
                .await
        })
    };
    let started = Instant::now();
    while progress.answered.load(Ordering::SeqCst) < KILL_AFTER_ANSWERS {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the sale did not get going"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    progress.killed.store(true, Ordering::SeqCst);
    cluster.kill(leader);
    let answered_before_kill = progress.answered.load(Ordering::SeqCst);
    let killed_at = Instant::now();
    let first: BTreeMap<usize, (Answer, bool)> = sale.await.expect("buyers").into_iter().collect();
    let sale_took = killed_at.elapsed();
    assert_eq!(first.len(), BUYERS);
    assert!(
        answered_before_kill < BUYERS,
        "the sale was over before the leader was killed"
    );

    let mut tally = BTreeMap::<String, usize>::new();
    for (answer, after_kill) in first.values() {
        let kind = match answer {
            Answer::Reserved { status, .. } => format!("{status}"),
            Answer::OutOfStock => "409 out_of_stock".into(),
            Answer::Unavailable => "503".into(),
            Answer::Other(_) => "other".into(),
        };
        let when = if *after_kill {
            "after kill"
        } else {
            "before kill"
        };
        *tally.entry(format!("{kind} {when}")).or_default() += 1;
    }
    eprintln!(
        "e2e: leader {leader} killed with {answered_before_kill} of {BUYERS} answered; the rest \
         took {sale_took:?}; answers: {tally:?}"
    );
    let others: Vec<_> = first
        .iter()
        .filter(|(_, (a, _))| matches!(a, Answer::Other(_)))
        .take(10)
        .collect();
    assert!(
        others.is_empty(),
        "answers other than 201/200, 409 out_of_stock or 503 unavailable: {others:?}"
    );
    let mut answers: BTreeMap<usize, Answer> =
        first.into_iter().map(|(i, (a, _))| (i, a)).collect();

    // Bring the killed node back and wait for all three to follow one leader.
    cluster.restart(leader);
    let new_leader = cluster.leader(&cluster.ids()).await;
    let applied = cluster
        .status(new_leader)
        .await
        .expect("leader status")
        .last_applied;
    cluster.wait_applied(&cluster.ids(), applied).await;

    // API.md: after a 503 "retrying with the same id is always safe".
    let unavailable: Vec<usize> = answers
        .iter()
        .filter(|(_, a)| **a == Answer::Unavailable)
        .map(|(i, _)| *i)
        .collect();
    for i in unavailable {
        let mut answer = buy(&http, i).await;
        for _ in 0..10 {
            if answer != Answer::Unavailable {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            answer = buy(&http, i).await;
        }
        assert!(
            matches!(answer, Answer::Reserved { .. } | Answer::OutOfStock),
            "buyer {i}'s retry after a 503 got {answer:?}"
        );
        answers.insert(i, answer);
    }

    // The SKU's counters.
    let flash = sku(&http, "FLASH").await;
    let (total, available, reserved, sold) = counters(&flash);
    assert_eq!(total, UNITS, "{flash}");
    assert_eq!(sold, 0, "nobody paid: {flash}");
    assert_eq!(sold + reserved, UNITS - available, "{flash}");
    // Every buyer got a definite answer, and 1,000 buyers want more than 100 units, so
    // exactly 100 must be held: an out_of_stock is only right once nothing is available.
    assert_eq!(
        (available, reserved),
        (0, UNITS),
        "out_of_stock answers while units were left: {flash}"
    );

    // Every buyer's order, as the cluster has it.
    let mut found_reserved = 0u64;
    let mut problems = Vec::new();
    for (&i, answer) in &answers {
        let id = format!("fs-{i}");
        let r = http.get(&format!("/v1/orders/{id}")).await;
        match (answer, r.status) {
            (Answer::Reserved { body, .. }, 200) => {
                let now = r.json();
                if now["status"] != "reserved" || now["items"] != body["items"] {
                    problems.push(format!("{id}: answered {body}, now {now}"));
                }
                if now != *body {
                    problems.push(format!("{id}: answered {body}, now differs: {now}"));
                }
                found_reserved += 1;
            }
            (Answer::Reserved { body, .. }, status) => problems.push(format!(
                "{id}: answered {body}, GET is {status} {}",
                r.text()
            )),
            (Answer::OutOfStock, 404) => {}
            (Answer::OutOfStock, status) => problems.push(format!(
                "{id}: answered out_of_stock, yet GET is {status} {}",
                r.text()
            )),
            (other, _) => problems.push(format!("{id}: final answer {other:?}")),
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems, first ones: {:#?}",
        problems.len(),
        &problems[..problems.len().min(10)]
    );
    assert_eq!(
        found_reserved, reserved,
        "reserved orders found by id vs the SKU's reserved count"
    );

    // The restarted node is a full member again: it agrees on the leader and has applied
    // everything.
    let view = http.get("/v1/cluster").await.expect(200);
    assert_eq!(view["leader"], new_leader, "{view}");
    for n in view["nodes"].as_array().unwrap() {
        assert_eq!(n["reachable"], true, "{view}");
    }
}

/// The event feed across a leader kill: a stream opened before the kill goes on through it,
/// and what it delivered is exactly ids 1..=head, once each, the same events a page read
/// gives, with one `order.reserved` for every order the buyers were told was reserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_goes_on_through_a_leader_kill_without_gap_or_repeat() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::start(3).await;
    let gw = RunningGateway::start(cluster.addrs()).await;
    let http = gw.http();
    http.post_json("/v1/skus", &json!({"sku": "FEED", "stock": 1_000}))
        .await
        .expect(201);
    let mut stream = http.events("/v1/events/stream?after=0", None).await;
    let leader = cluster.leader(&cluster.ids()).await;

    let mut reserved = BTreeSet::new();
    for round in 0..4 {
        if round == 2 {
            cluster.kill(leader);
        }
        let answers = futures::stream::iter(0..25)
            .map(|i| {
                let http = http.clone();
                async move {
                    let id = format!("feed-{round}-{i}");
                    let body = order_body(&id, &format!("u-{i}"), &[("FEED", 1)]);
                    // A 503 may or may not have applied; the same id again is safe.
                    for _ in 0..20 {
                        let r = http.post_json("/v1/orders", &body).await;
                        if r.status == 201 || r.status == 200 {
                            return id;
                        }
                        assert_eq!(r.status, 503, "{}", r.text());
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    panic!("order {id} never answered");
                }
            })
            .buffer_unordered(10)
            .collect::<Vec<_>>()
            .await;
        reserved.extend(answers);
    }
    cluster.restart(leader);

    let head = http.get("/v1/events?limit=1").await.expect(200)["head"]
        .as_u64()
        .expect("head");
    assert_eq!(
        head,
        1 + reserved.len() as u64,
        "one event per order and the SKU's"
    );
    let streamed = receive(&mut stream, head as usize).await;
    let ids: Vec<u64> = streamed.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(
        ids,
        (1..=head).collect::<Vec<_>>(),
        "ids without gap or repeat"
    );

    // A consumer that reconnects with the id it last saw, from before the kill (its events
    // came from the old leader), goes on at the next one from the new leader.
    let resume_after = head / 3;
    let mut resumed = http
        .events("/v1/events/stream?after=0", Some(resume_after))
        .await;
    let rest = receive(&mut resumed, (head - resume_after) as usize).await;
    assert_eq!(
        rest[..],
        streamed[resume_after as usize..],
        "resumed by Last-Event-ID: the same events, none missed or repeated"
    );

    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = http
            .get(&format!("/v1/events?after={after}"))
            .await
            .expect(200);
        let events = page["events"].as_array().unwrap().clone();
        if events.is_empty() {
            break;
        }
        after = page["next"].as_u64().unwrap();
        paged.extend(events);
    }
    assert_eq!(streamed, paged, "the stream and the pages agree");
    let ordered: BTreeSet<String> = streamed
        .iter()
        .filter(|e| e["type"] == "order.reserved")
        .map(|e| e["order"]["order_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ordered, reserved,
        "one order.reserved per order answered reserved"
    );
}

/// The next `count` events of a stream; fails if it stalls.
async fn receive(
    stream: &mut tokio::sync::mpsc::UnboundedReceiver<Value>,
    count: usize,
) -> Vec<Value> {
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        let event = tokio::time::timeout(Duration::from_secs(20), stream.recv())
            .await
            .unwrap_or_else(|_| panic!("the stream stalled after {} events", events.len()))
            .expect("the stream stays open");
        events.push(event);
    }
    events
}

// ---------------------------------------------------------------------------------------------
// 4. Two gateways, one cluster
// ---------------------------------------------------------------------------------------------

/// Gateways keep no state: whatever one did, the other sees and replays identically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_give_the_same_answers() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let gw_a = RunningGateway::start(cluster.addrs()).await;
    // B lists the nodes in another order, so it does not simply mirror A's first guess.
    let mut reversed = cluster.addrs();
    reversed.reverse();
    let gw_b = RunningGateway::start(reversed).await;
    let (a, b) = (gw_a.http(), gw_b.http());

    // Create through A, read through B.
    let create = json!({"sku": "G1", "stock": 20, "per_user_limit": 4});
    let created = a.post_json("/v1/skus", &create).await.expect(201);
    assert_eq!(sku(&b, "G1").await, created);
    // The same create through B is a replay.
    assert_eq!(b.post_json("/v1/skus", &create).await.expect(200), created);
    b.post_json("/v1/skus", &json!({"sku": "G1", "stock": 21}))
        .await
        .assert_error(409, "sku_exists");

    // Order through B, replay through A: 200 and the same body.
    let body = order_body("g-1", "u-g", &[("G1", 3)]);
    let placed = b.post_json("/v1/orders", &body).await.expect(201);
    let replayed = a.post_json("/v1/orders", &body).await;
    assert_eq!(replayed.expect(200), placed);
    a.post_json("/v1/orders", &order_body("g-1", "u-g", &[("G1", 2)]))
        .await
        .assert_error(409, "order_id_conflict");
    // The per-user limit is one state, whichever gateway asks.
    let err = a
        .post_json("/v1/orders", &order_body("g-2", "u-g", &[("G1", 2)]))
        .await
        .assert_error(409, "per_user_limit_exceeded");
    assert_eq!(
        (err["error"]["limit"].clone(), err["error"]["held"].clone()),
        (json!(4), json!(3))
    );

    // Restock through A, replayed through B without applying twice.
    let restock = json!({"request_id": "rg-1", "delta": 5});
    let r = a
        .post_json("/v1/skus/G1/restock", &restock)
        .await
        .expect(200);
    assert_eq!(
        b.post_json("/v1/skus/G1/restock", &restock)
            .await
            .expect(200),
        r
    );

    // Pay through A, pay again through B: a no-op with the same answer.
    let paid = a
        .post_json("/v1/orders/g-1/pay", &json!({"payment_ref": "pay-g"}))
        .await
        .expect(200);
    assert_eq!(b.post_empty("/v1/orders/g-1/pay").await.expect(200), paid);

    // Every read, through both: identical JSON.
    for path in [
        "/v1/skus/G1",
        "/v1/orders/g-1",
        "/v1/skus?limit=10",
        "/v1/orders?user_id=u-g",
    ] {
        let (ra, rb) = (a.get(path).await.expect(200), b.get(path).await.expect(200));
        assert_eq!(ra, rb, "{path}");
    }
    let g1 = sku(&a, "G1").await;
    assert_eq!(counters(&g1), (25, 22, 0, 3), "{g1}");
    let (va, vb) = (
        a.get("/v1/cluster").await.expect(200),
        b.get("/v1/cluster").await.expect(200),
    );
    assert_eq!(va["leader"], vb["leader"]);
    assert_eq!(va["leader"], cluster.leader(&cluster.ids()).await);

    // An order batch through A, judged by the real state machine in request order: a
    // repeated id is a replay of the first, every refusal as for one order.
    for create in [
        json!({"sku": "G2", "stock": 3, "per_user_limit": 2}),
        json!({"sku": "G3", "stock": 5, "sale_window": {"start_ms": 1000, "end_ms": 2000}}),
    ] {
        a.post_json("/v1/skus", &create).await.expect(201);
    }
    let batch = json!({"orders": [
        order_body("gb-1", "u-b1", &[("G2", 2)]),
        order_body("gb-2", "u-b1", &[("G2", 1)]),
        order_body("gb-1", "u-b1", &[("G2", 2)]),
        order_body("gb-3", "u-b2", &[("G2", 2)]),
        order_body("gb-4", "u-b2", &[("G3", 1)]),
        order_body("gb-5", "u-b2", &[("G2", 0)]),
        order_body("gb-6", "u-b3", &[("G2", 1)]),
    ]});
    let summary = |answer: &Value| -> Vec<(u64, String)> {
        answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let what = r["order"]["order_id"]
                    .as_str()
                    .or(r["error"]["code"].as_str())
                    .unwrap();
                (r["status"].as_u64().unwrap(), what.to_owned())
            })
            .collect()
    };
    let first = a.post_json("/v1/orders/batch", &batch).await.expect(200);
    let expected = [
        (201, "gb-1"),
        (409, "per_user_limit_exceeded"),
        (200, "gb-1"),
        (409, "out_of_stock"),
        (409, "sale_not_active"),
        (400, "invalid_request"),
        (201, "gb-6"),
    ];
    let expected: Vec<(u64, String)> = expected.iter().map(|(s, w)| (*s, w.to_string())).collect();
    assert_eq!(summary(&first), expected, "{first}");
    let results = &first["results"];
    assert_eq!(results[2]["order"], results[0]["order"]);
    assert_eq!(results[1]["error"]["held"], 2);
    assert_eq!(results[3]["error"]["available"], 1);
    assert_eq!(results[5]["error"]["field"], "orders[5].items[0].qty");
    assert_eq!(counters(&sku(&b, "G2").await), (3, 0, 3, 0));
    // The same batch through B: what was applied is a replay, the refusals are judged afresh.
    let again = b.post_json("/v1/orders/batch", &batch).await.expect(200);
    let mut replayed = expected.clone();
    replayed[0].0 = 200;
    replayed[6].0 = 200;
    assert_eq!(summary(&again), replayed, "{again}");
    assert_eq!(again["results"][0], first["results"][2]);
    assert_eq!(again["results"][3]["error"]["available"], 0);
    assert_eq!(counters(&sku(&a, "G2").await), (3, 0, 3, 0));
}

/// The first line of node `id`'s log holding every one of `needles`, waited for a few
/// seconds: a node writes its log on its own time.
async fn log_line(cluster: &Cluster, id: u64, needles: &[&str]) -> String {
    file_line(&cluster.log_path(id), needles).await
}

/// The first line of the log at `path` holding every one of `needles`, waited for.
async fn file_line(path: &std::path::Path, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no line with {needles:?} in {}:\n{log}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_follows_the_order_into_the_leaders_log() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let gateway_log = cluster.file("gateway.log");
    let gateway = GatewayProcess::start(&cluster.addrs(), "info", gateway_log.clone()).await;
    let http = gateway.http();
    http.post_json("/v1/skus", &json!({"sku": "T1", "stock": 5}))
        .await
        .expect(201);
    let body = serde_json::to_vec(&order_body("t-1", "u-t", &[("T1", 1)])).unwrap();
    let placed = http
        .try_send_with(
            Method::POST,
            "/v1/orders",
            Some("application/json"),
            &[("x-request-id", "trace-order-1")],
            body,
        )
        .await
        .unwrap();
    let revision = placed.expect(201)["revision"].as_u64().unwrap();
    let read = http
        .try_send_with(
            Method::GET,
            "/v1/orders/t-1",
            None,
            &[("x-request-id", "trace-read-1")],
            Vec::new(),
        )
        .await
        .unwrap();
    read.expect(200);

    let leader = cluster.leader(&cluster.ids()).await;
    let node = format!("node={leader}");
    let index = format!("log_index={revision}");
    let submit = log_line(&cluster, leader, &["trace-order-1", "submit answered"]).await;
    for part in [node.as_str(), index.as_str(), "term="] {
        assert!(submit.contains(part), "{part} missing: {submit}");
    }
    let read = log_line(&cluster, leader, &["trace-read-1", "read confirmed"]).await;
    assert!(read.contains(&node), "{read}");

    // The gateway's side of the same order: its span names the request and the order.
    let answered = file_line(&gateway_log, &["trace-order-1", "answered"]).await;
    for part in ["status=201", "route=\"/v1/orders\"", "method=\"POST\""] {
        assert!(answered.contains(part), "{part} missing: {answered}");
    }
    let submitted = file_line(&gateway_log, &["trace-order-1", "submitted"]).await;
    for part in [
        "order_id=t-1",
        index.replace("log_index", "revision").as_str(),
    ] {
        assert!(submitted.contains(part), "{part} missing: {submitted}");
    }
}
