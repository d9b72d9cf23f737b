//! The status page in a real browser: headless Chromium (WebDriver, `browser_support`) on
//! `/ui/` of a real gateway in front of a real three-node cluster (`e2e_support`). Orders
//! placed over the HTTP API must show up on the page within 2 s, and a burst of orders must
//! leave the page bounded and right.
//!
//! Skips without `chromedriver` on PATH, unless `FLASHSTOCK_REQUIRE_BROWSER=1` (CI). Writes
//! a screenshot to `<target>/tmp/ui-screenshots/` and prints its path.

mod browser_support;
mod e2e_support;

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use browser_support::{chromedriver_or_skip, poll_script, Chromedriver};
use e2e_support::{Cluster, Http, RunningGateway, SERIAL};
use fantoccini::{Client, Locator};
use futures::FutureExt;
use serde_json::{json, Value};

/// The page's promise: what the API answered is on screen within this.
const LIVE_WITHIN: Duration = Duration::from_secs(2);
/// First load (cluster, SKUs, event backlog, stream open), and the sales chart, which is
/// re-read at most every 2 s.
const LOAD_WITHIN: Duration = Duration::from_secs(10);
/// The page keeps at most this many events in its feed.
const FEED_SIZE: u64 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_follows_the_cluster_live() {
    let Some(driver_binary) = chromedriver_or_skip("the_status_page_follows_the_cluster_live")
    else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start(3).await;
    let gateway = RunningGateway::start(cluster.addrs()).await;
    let http = gateway.http();
    // Listed by the first load rather than learnt from the stream.
    http.post_json("/v1/skus", &json!({"sku": "EARLY", "stock": 5}))
        .await
        .expect(201);

    let driver = Chromedriver::start(&driver_binary);
    let client = driver.session(1280, 1000).await;
    let url = format!("http://{}/ui/", gateway.addr);
    let checks = AssertUnwindSafe(check_the_page(&client, &http, &url))
        .catch_unwind()
        .await;
    // Also after a failure: the picture usually says what went wrong.
    match screenshot(&client, "status-page").await {
        Ok(path) => println!("screenshot: {}", path.display()),
        Err(e) => println!("no screenshot: {e}"),
    }
    let closed = client.close().await;
    if let Err(panic) = checks {
        std::panic::resume_unwind(panic);
    }
    closed.expect("close the browser session");
}

async fn check_the_page(client: &Client, http: &Http, url: &str) {
    client.goto(url).await.expect("open the page");
    client
        .wait()
        .at_most(LOAD_WITHIN)
        .for_element(Locator::Css("#ready"))
        .await
        .expect("the page did not finish its first load");
    assert_eq!(
        stock_row(client, "EARLY").await,
        json!({"available": 5, "reserved": 0, "sold": 0, "total": 5})
    );

    let (members, ok) = poll_script(client, CLUSTER_SCRIPT, LOAD_WITHIN, |v| {
        v["members"] == 3 && v["leaders"] == 1
    })
    .await;
    assert!(
        ok,
        "the cluster panel should list 3 members, one leader: {members}"
    );

    // Live: a SKU created and orders placed after the page loaded.
    http.post_json("/v1/skus", &json!({"sku": "A1", "stock": 10}))
        .await
        .expect(201);
    http.post_json("/v1/orders", &order("o-1", "u-1", "A1", 2))
        .await
        .expect(201);
    http.post_json("/v1/orders", &order("o-2", "u-2", "A1", 1))
        .await
        .expect(201);
    http.post_json("/v1/orders/o-1/pay", &json!({"payment_ref": "pay-1"}))
        .await
        .expect(200);
    let answered = Instant::now();
    let want = json!({"available": 7, "reserved": 1, "sold": 2, "total": 10});
    let (shown, ok) =
        poll_script(client, &stock_row_script("A1"), LIVE_WITHIN, |v| *v == want).await;
    assert!(
        ok,
        "A1 should show {want} within {LIVE_WITHIN:?} of the last answer; after {:?} it shows {shown}",
        answered.elapsed()
    );
    println!(
        "A1's row was right {:?} after the last answer",
        answered.elapsed()
    );

    let want_feed = json!([
        ["order.paid", "o-1"],
        ["order.reserved", "o-2"],
        ["order.reserved", "o-1"],
        ["sku.created", null],
    ]);
    let (feed, ok) = poll_script(client, FEED_SCRIPT, LIVE_WITHIN, |v| {
        v.as_array().is_some_and(|lines| {
            lines.len() >= 4 && lines[..4] == want_feed.as_array().unwrap()[..]
        })
    })
    .await;
    assert!(
        ok,
        "the feed should start (newest first) with {want_feed}: {feed}"
    );

    // The chart follows the SKU clicked.
    client
        .find(Locator::Css(r#"#sku-rows [data-sku="A1"]"#))
        .await
        .expect("A1's row")
        .click()
        .await
        .expect("click A1");
    let (chart, ok) = poll_script(client, SALES_SCRIPT, LOAD_WITHIN, |v| {
        *v == json!({"sku": "A1", "reserved": "3", "paid": "2", "canvas": true})
    })
    .await;
    assert!(
        ok,
        "the chart should show A1's 3 reserved and 2 paid units: {chart}"
    );

    a_burst_stays_bounded(client, http).await;
}

/// A thousand buyers in one batch: a thousand events within a few milliseconds. The page
/// must end up right, with its feed still at its bound.
async fn a_burst_stays_bounded(client: &Client, http: &Http) {
    const BUYERS: u64 = 1_000;
    http.post_json("/v1/skus", &json!({"sku": "HOT", "stock": 1_500}))
        .await
        .expect(201);
    let orders: Vec<Value> = (0..BUYERS)
        .map(|i| order(&format!("hot-{i}"), &format!("buyer-{i}"), "HOT", 1))
        .collect();
    let results = http
        .post_json("/v1/orders/batch", &json!({ "orders": orders }))
        .await
        .expect(200);
    let placed = results["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["status"] == 201)
        .count();
    assert_eq!(placed as u64, BUYERS, "{results}");
    let answered = Instant::now();
    let want = json!({"available": 500, "reserved": BUYERS, "sold": 0, "total": 1_500});
    let (shown, ok) = poll_script(client, &stock_row_script("HOT"), LIVE_WITHIN, |v| {
        *v == want
    })
    .await;
    assert!(
        ok,
        "HOT should show {want} within {LIVE_WITHIN:?} of the batch's answer; after {:?} it shows {shown}",
        answered.elapsed()
    );
    let (feed, ok) = poll_script(client, FEED_SCRIPT, LIVE_WITHIN, |v| {
        v.as_array().is_some_and(|lines| {
            lines.len() as u64 == FEED_SIZE && lines[0] == json!(["order.reserved", "hot-999"])
        })
    })
    .await;
    assert!(
        ok,
        "the feed should hold the newest {FEED_SIZE} events, hot-999 first: {feed}"
    );

    // The cluster panel keeps refreshing: the leader's applied index reaches the batch's
    // log entry (the SKU's revision).
    let revision = http.get("/v1/skus/HOT").await.expect(200)["revision"]
        .as_u64()
        .expect("a revision");
    let (applied, ok) = poll_script(client, LEADER_APPLIED_SCRIPT, LOAD_WITHIN, |v| {
        v.as_u64().is_some_and(|applied| applied >= revision)
    })
    .await;
    assert!(
        ok,
        "the cluster panel should show the leader applied up to {revision}: {applied}"
    );
}

fn order(order_id: &str, user: &str, sku: &str, qty: u64) -> Value {
    json!({"order_id": order_id, "user_id": user, "items": [{"sku": sku, "qty": qty}]})
}

fn stock_row_script(sku: &str) -> String {
    format!(
        r#"const row = document.querySelector('#sku-rows [data-sku="{sku}"]');
        if (!row) return null;
        const n = (k) => Number(row.dataset[k]);
        return {{available: n('available'), reserved: n('reserved'), sold: n('sold'), total: n('total')}};"#
    )
}

async fn stock_row(client: &Client, sku: &str) -> Value {
    client
        .execute(&stock_row_script(sku), vec![])
        .await
        .expect("read a stock row")
}

const CLUSTER_SCRIPT: &str = r#"
    const rows = [...document.querySelectorAll('#nodes tr[data-node-id]')];
    return {members: rows.length, leaders: rows.filter((r) => r.dataset.role === 'leader').length};
"#;

const LEADER_APPLIED_SCRIPT: &str = r#"
    const leader = document.querySelector('#nodes tr[data-role="leader"]');
    return leader ? Number(leader.dataset.lastApplied) : null;
"#;

/// The feed, newest first, as `[type, order_id or null]`.
const FEED_SCRIPT: &str = r#"
    return [...document.querySelectorAll('#feed li')]
        .map((li) => [li.dataset.eventType, li.dataset.orderId ?? null]);
"#;

const SALES_SCRIPT: &str = r#"
    const chart = document.getElementById('sales');
    return {sku: chart.dataset.selectedSku ?? null, reserved: chart.dataset.reserved ?? null,
            paid: chart.dataset.paid ?? null, canvas: !!document.getElementById('sales-chart')};
"#;

async fn screenshot(client: &Client, name: &str) -> anyhow::Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, client.screenshot().await?)?;
    Ok(path)
}
