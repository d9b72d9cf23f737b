//! The clients: two per node, each bound to the gateway in that node's namespace, speaking
//! HTTP over the bridge. Every operation is recorded in the [`History`] with its invocation and
//! completion times and the completion type the shared classifier gives (`ok` for answers and
//! committed refusals, `fail` for what was never proposed, `info` for the unknown). A client
//! is sequential; after an `info` op it continues as a new process (Jepsen's rule: the old one
//! may still be in flight).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::Method;
use serde_json::json;
use tokio::time::Instant;

use crate::history::{
    classify_transport, Completion, History, Input, Op, OpKind, OrderView, Output, SkuView,
};
use crate::http::HttpConn;
use crate::rng::Rng;
use crate::workload::{Shared, Workload, RESERVATION_TTL_MS};

/// How many times a `retry` client resends an `info` write.
const MAX_RESENDS: u32 = 4;

/// The history being recorded, on the run's clock.
pub struct Recorder {
    origin: std::time::Instant,
    history: Mutex<History>,
    next_process: AtomicU64,
}

impl Recorder {
    pub fn new(origin: std::time::Instant) -> Recorder {
        Recorder {
            origin,
            history: Mutex::new(History::new()),
            next_process: AtomicU64::new(0),
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    pub fn new_process(&self) -> u64 {
        self.next_process.fetch_add(1, Ordering::Relaxed)
    }

    /// Appends an op. A record the history refuses is a harness bug: stop loudly.
    pub fn push(&self, op: Op) {
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = history.push(op) {
            panic!("the harness recorded a malformed op: {e}");
        }
    }

    pub fn take(&self) -> History {
        std::mem::take(&mut *self.history.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Looks at the history recorded so far.
    pub fn visit<R>(&self, f: impl FnOnce(&History) -> R) -> R {
        f(&self.history.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn len(&self) -> usize {
        self.history.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One logical client: a gateway connection and a process id, renewed after `info`.
pub struct Client {
    pub gateway: u32,
    conn: HttpConn,
    process: u64,
    timeout: Duration,
    recorder: Arc<Recorder>,
}

impl Client {
    pub fn new(
        gateway: u32,
        addr: SocketAddr,
        timeout: Duration,
        recorder: Arc<Recorder>,
    ) -> Client {
        let process = recorder.new_process();
        Client {
            gateway,
            conn: HttpConn::new(addr),
            process,
            timeout,
            recorder,
        }
    }

    fn request_of(input: &Input, stock: u64) -> (Method, String, Option<serde_json::Value>) {
        match input {
            Input::CreateSku {
                sku,
                per_user_limit,
                sale_window,
                ..
            } => (
                Method::POST,
                "/v1/skus".into(),
                // API.md: an explicit null limit or window is the same as none.
                Some(json!({
                    "sku": sku,
                    "stock": stock,
                    "per_user_limit": per_user_limit,
                    "sale_window": sale_window,
                })),
            ),
            Input::Restock {
                sku,
                request_id,
                delta,
            } => (
                Method::POST,
                format!("/v1/skus/{sku}/restock"),
                Some(json!({ "request_id": request_id, "delta": delta })),
            ),
            Input::Order {
                order_id,
                user_id,
                items,
                reservation_ttl_ms,
            } => (
                Method::POST,
                "/v1/orders".into(),
                Some(json!({
                    "order_id": order_id,
                    "user_id": user_id,
                    "items": items,
                    "reservation_ttl_ms": reservation_ttl_ms.unwrap_or(RESERVATION_TTL_MS),
                })),
            ),
            Input::Pay { order_id, .. } => (
                Method::POST,
                format!("/v1/orders/{order_id}/pay"),
                Some(json!({ "payment_ref": format!("pay-{order_id}") })),
            ),
            Input::Cancel { order_id, .. } => {
                (Method::POST, format!("/v1/orders/{order_id}/cancel"), None)
            }
            Input::Refund {
                order_id, restock, ..
            } => (
                Method::POST,
                format!("/v1/orders/{order_id}/refund"),
                Some(json!({ "restock": restock })),
            ),
            Input::ReadSku { sku } => (Method::GET, format!("/v1/skus/{sku}"), None),
            Input::ReadOrder { order_id, .. } => {
                (Method::GET, format!("/v1/orders/{order_id}"), None)
            }
        }
    }

    /// Runs one op and records it; returns the recorded op.
    pub async fn invoke(&mut self, input: Input) -> Op {
        let stock = match &input {
            Input::CreateSku { stock, .. } => *stock,
            _ => 0,
        };
        let (method, path, body) = Self::request_of(&input, stock);
        let body = body.map(|b| serde_json::to_vec(&b).expect("JSON serialises"));
        let invoke_ns = self.recorder.now_ns();
        let result = self.conn.request(method, &path, body, self.timeout).await;
        let complete_ns = self.recorder.now_ns().max(invoke_ns);
        let mut op = match result {
            Ok((status, bytes)) => {
                answered(self.process, input, invoke_ns, complete_ns, status, &bytes)
            }
            Err(e) => Op::no_answer(
                self.process,
                input,
                invoke_ns,
                complete_ns,
                classify_transport(e.kind),
                &e.message,
            ),
        };
        op.node = Some(self.gateway);
        self.recorder.push(op.clone());
        if op.completion == Completion::Info {
            self.process = self.recorder.new_process();
            self.conn.reset();
        }
        op
    }
}

/// Builds the op for an HTTP answer: the body parsed as the API's SKU or order, or the error
/// code of a refusal; anything unparseable is recorded as such, never guessed.
fn answered(
    process: u64,
    input: Input,
    invoke_ns: u64,
    complete_ns: u64,
    status: u16,
    bytes: &[u8],
) -> Op {
    if (200..300).contains(&status) {
        let sku_body = matches!(
            input.kind(),
            OpKind::CreateSku | OpKind::Restock | OpKind::ReadSku
        );
        let parsed = if sku_body {
            serde_json::from_slice::<SkuView>(bytes).map(Output::Sku)
        } else {
            serde_json::from_slice::<OrderView>(bytes).map(Output::Order)
        };
        return match parsed {
            Ok(output) => {
                Op::answered(process, input, invoke_ns, complete_ns, status, Some(output))
            }
            // A 2xx we cannot read: the command happened (or not) but we cannot say what it
            // answered; maybe-applied is the honest record.
            Err(e) => Op::no_answer(
                process,
                input,
                invoke_ns,
                complete_ns,
                Completion::Info,
                &format!("HTTP {status} with an unreadable body: {e}"),
            ),
        };
    }
    let code = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "unparseable".to_owned());
    Op::answered(
        process,
        input,
        invoke_ns,
        complete_ns,
        status,
        Some(Output::error(&code)),
    )
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs one workload client until `end`.
pub async fn run_client(
    mut client: Client,
    index: u32,
    workload: Workload,
    shared: Arc<Mutex<Shared>>,
    mut rng: Rng,
    end: Instant,
) {
    while Instant::now() < end {
        let input = lock(&shared).next_op(&mut rng, index);
        // Create the SKUs no client has seen exist yet (idempotent; recorded like any op).
        let mut missing = false;
        for sku in input.skus() {
            let (confirmed, create) = {
                let shared = lock(&shared);
                (shared.is_confirmed(sku), shared.create_input(sku))
            };
            if confirmed {
                continue;
            }
            let op = client.invoke(create).await;
            lock(&shared).observe(&op);
            if !op.is_success() {
                missing = true;
                break;
            }
        }
        if missing {
            think(&mut rng).await;
            continue;
        }
        let mut op = client.invoke(input.clone()).await;
        lock(&shared).observe(&op);
        if workload.retries() && !input.kind().is_read() {
            let mut resends = 0;
            while op.completion == Completion::Info && resends < MAX_RESENDS && Instant::now() < end
            {
                resends += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                op = client.invoke(input.clone()).await;
                lock(&shared).observe(&op);
            }
        }
        think(&mut rng).await;
    }
}

/// A short random pause between ops: keeps the op rate (and the checker's work) bounded on
/// a two-core machine, and staggers the clients.
async fn think(rng: &mut Rng) {
    tokio::time::sleep(Duration::from_millis(rng.range(5, 25))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed_or_recorded_as_unknown() {
        let sku = br#"{"sku":"A","total":3,"available":2,"reserved":1,"sold":0,"refunded":0,
            "per_user_limit":null,"sale_window":null,"revision":7}"#;
        let op = answered(1, Input::read_sku("A"), 0, 1, 200, sku);
        assert_eq!(op.completion, Completion::Ok);
        assert!(matches!(
            op.output,
            Some(Output::Sku(SkuView {
                total: 3,
                revision: 7,
                ..
            }))
        ));

        let refusal = br#"{"error":{"code":"out_of_stock","message":"m","sku":"A","available":0}}"#;
        let op = answered(1, Input::order("o", "u", "A", 1), 0, 1, 409, refusal);
        assert_eq!(op.completion, Completion::Ok);
        assert_eq!(op.error_code(), Some("out_of_stock"));

        let op = answered(1, Input::order("o", "u", "A", 1), 0, 1, 503, b"{}");
        assert_eq!(op.completion, Completion::Info);

        let op = answered(1, Input::read_sku("A"), 0, 1, 200, b"garbage");
        assert_eq!(op.completion, Completion::Info);
        assert!(op.output.is_none());

        let order = br#"{"order_id":"o","user_id":"u","items":[{"sku":"A","qty":1}],
            "status":"paid","created_ms":1,"expires_ms":2,"updated_ms":3,"payment_ref":null,"revision":9}"#;
        let op = answered(1, Input::pay("A", "o"), 0, 1, 200, order);
        assert!(op.is_success());
    }

    #[test]
    fn requests_follow_the_api() {
        let (m, p, b) = Client::request_of(&Input::order("o1", "u1", "A", 2), 0);
        assert_eq!((m, p.as_str()), (Method::POST, "/v1/orders"));
        let b = b.unwrap();
        assert_eq!(b["items"][0]["qty"], 2);
        assert_eq!(b["reservation_ttl_ms"], RESERVATION_TTL_MS);
        let (_, _, b) = Client::request_of(&Input::order_with_ttl("o2", "u1", "A", 1, 3_000), 0);
        assert_eq!(b.unwrap()["reservation_ttl_ms"], 3_000);
        let (_, p, b) = Client::request_of(&Input::create_sku("A", 10), 10);
        assert_eq!(p, "/v1/skus");
        let b = b.unwrap();
        assert_eq!(b["stock"], 10);
        assert!(b["per_user_limit"].is_null());
        let (_, _, b) = Client::request_of(&Input::create_limited_sku("A", 10, 2), 10);
        assert_eq!(b.unwrap()["per_user_limit"], 2);
        let window = crate::sale_window::SaleWindow {
            start_ms: 1_000,
            end_ms: 2_000,
        };
        let (_, _, b) = Client::request_of(&Input::create_sku_on_sale("A", 10, None, window), 10);
        let b = b.unwrap();
        assert_eq!(b["sale_window"]["start_ms"], 1_000);
        assert_eq!(b["sale_window"]["end_ms"], 2_000);
        let (m, p, b) = Client::request_of(&Input::read_order("A", "o1"), 0);
        assert_eq!((m, p.as_str(), b), (Method::GET, "/v1/orders/o1", None));
    }
}
