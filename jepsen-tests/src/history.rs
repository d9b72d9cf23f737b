//! The recorded history: one record per client operation (what was asked, when it was
//! invoked and completed on the harness's monotonic clock, and how it completed), stored as
//! `history.jsonl` and printed as readable text; plus the classifier that turns an HTTP answer
//! or a transport error into a completion type.
//!
//! A record says only what the client observed; it never interprets it. The completion type
//! follows jepsen.md §3 "Outcome mapping": a refusal the cluster committed (409, 404 on an
//! unknown SKU/order) is an `ok` result because it constrains the order of operations; `fail`
//! is kept for answers the server guarantees were never proposed; everything uncertain is
//! `info` (Redis-Raft #23: a "failure" that had in fact committed).
//!
//! The history checks what it is given, on `push` and again on load: a malformed record is a
//! harness bug and would make any verdict meaningless.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::OrderStatus;
use crate::sale_window::SaleWindow;

/// How an operation completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Completion {
    /// The cluster answered with a result: 2xx, or a committed refusal (409, 404 on a command).
    Ok,
    /// Definitely not applied: the request was rejected before it could be proposed.
    Fail,
    /// Maybe applied: timeout, connection lost after sending, 503, any other 5xx.
    Info,
}

impl Completion {
    pub fn as_str(self) -> &'static str {
        match self {
            Completion::Ok => "ok",
            Completion::Fail => "fail",
            Completion::Info => "info",
        }
    }
}

/// Classifies an HTTP answer (status and the error body's `code`, if any).
///
/// Unknown statuses are `info`: calling an answer `fail` claims the command was never
/// proposed, which only the documented pre-proposal rejections guarantee.
pub fn classify(status: u16, code: Option<&str>) -> Completion {
    match status {
        200..=299 | 409 => Completion::Ok,
        // Unknown SKU/order is a committed result (or a linearisable read's answer); any
        // other 404 is an unknown route, answered before anything was proposed.
        404 => match code {
            Some("sku_not_found" | "order_not_found") => Completion::Ok,
            _ => Completion::Fail,
        },
        // Rejected at the gateway: validation, body limits, routing, admission control.
        400 | 405 | 413 | 415 | 429 => Completion::Fail,
        // 503 "may or may not have been applied" (API.md); other 5xx likewise.
        _ => Completion::Info,
    }
}

/// A transport-level failure, seen instead of an HTTP answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// The connection could not be opened (refused, connect timeout): nothing was sent.
    ConnectFailed,
    /// The request was sent (or may have been) and no complete answer arrived in time.
    Timeout,
    /// The connection broke after the request was (or may have been) sent.
    ConnectionLost,
}

/// Classifies a transport error: only "never sent" is a definite `fail`.
pub fn classify_transport(error: TransportError) -> Completion {
    match error {
        TransportError::ConnectFailed => Completion::Fail,
        TransportError::Timeout | TransportError::ConnectionLost => Completion::Info,
    }
}

/// Operation kinds, as named in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    CreateSku,
    Restock,
    Order,
    Pay,
    Cancel,
    Refund,
    ReadSku,
    ReadOrder,
}

impl OpKind {
    pub const ALL: [OpKind; 8] = [
        OpKind::CreateSku,
        OpKind::Restock,
        OpKind::Order,
        OpKind::Pay,
        OpKind::Cancel,
        OpKind::Refund,
        OpKind::ReadSku,
        OpKind::ReadOrder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::CreateSku => "create_sku",
            OpKind::Restock => "restock",
            OpKind::Order => "order",
            OpKind::Pay => "pay",
            OpKind::Cancel => "cancel",
            OpKind::Refund => "refund",
            OpKind::ReadSku => "read_sku",
            OpKind::ReadOrder => "read_order",
        }
    }

    pub fn is_read(self) -> bool {
        matches!(self, OpKind::ReadSku | OpKind::ReadOrder)
    }

    /// Whether a 2xx answer to this kind carries a SKU body (else an order body).
    fn answers_with_sku(self) -> bool {
        matches!(self, OpKind::CreateSku | OpKind::Restock | OpKind::ReadSku)
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line item of an order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Item {
    pub sku: String,
    pub qty: u64,
}

/// What the client asked. Order transitions and order reads carry the SKU of their order
/// (the harness knows it: it made the order), so the checker can split the history by SKU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Input {
    CreateSku {
        sku: String,
        stock: u64,
        /// Absent from the log (and the request) when the SKU has no limit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        per_user_limit: Option<u64>,
        /// Absent when the SKU is always on sale.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sale_window: Option<SaleWindow>,
    },
    Restock {
        sku: String,
        request_id: String,
        delta: i64,
    },
    Order {
        order_id: String,
        user_id: String,
        items: Vec<Item>,
        /// The reservation TTL asked for; `None`: the workloads' default of a day.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reservation_ttl_ms: Option<u64>,
    },
    Pay {
        sku: String,
        order_id: String,
    },
    Cancel {
        sku: String,
        order_id: String,
    },
    Refund {
        sku: String,
        order_id: String,
        restock: bool,
    },
    ReadSku {
        sku: String,
    },
    ReadOrder {
        sku: String,
        order_id: String,
    },
}

impl Input {
    pub fn create_sku(sku: &str, stock: u64) -> Input {
        Input::CreateSku {
            sku: sku.into(),
            stock,
            per_user_limit: None,
            sale_window: None,
        }
    }

    /// A SKU whose buyers may each hold at most `limit` units.
    pub fn create_limited_sku(sku: &str, stock: u64, limit: u64) -> Input {
        Input::CreateSku {
            sku: sku.into(),
            stock,
            per_user_limit: Some(limit),
            sale_window: None,
        }
    }

    /// A SKU on sale only within `window`.
    pub fn create_sku_on_sale(
        sku: &str,
        stock: u64,
        per_user_limit: Option<u64>,
        window: SaleWindow,
    ) -> Input {
        Input::CreateSku {
            sku: sku.into(),
            stock,
            per_user_limit,
            sale_window: Some(window),
        }
    }

    pub fn restock(sku: &str, request_id: &str, delta: i64) -> Input {
        Input::Restock {
            sku: sku.into(),
            request_id: request_id.into(),
            delta,
        }
    }

    /// A single-item order, the shape of the linearizability workload.
    pub fn order(order_id: &str, user_id: &str, sku: &str, qty: u64) -> Input {
        Input::Order {
            order_id: order_id.into(),
            user_id: user_id.into(),
            items: vec![Item {
                sku: sku.into(),
                qty,
            }],
            reservation_ttl_ms: None,
        }
    }

    /// A single-item order with a reservation TTL of its own.
    pub fn order_with_ttl(
        order_id: &str,
        user_id: &str,
        sku: &str,
        qty: u64,
        ttl_ms: u64,
    ) -> Input {
        match Input::order(order_id, user_id, sku, qty) {
            Input::Order {
                order_id,
                user_id,
                items,
                ..
            } => Input::Order {
                order_id,
                user_id,
                items,
                reservation_ttl_ms: Some(ttl_ms),
            },
            _ => unreachable!("Input::order makes an order"),
        }
    }

    pub fn pay(sku: &str, order_id: &str) -> Input {
        Input::Pay {
            sku: sku.into(),
            order_id: order_id.into(),
        }
    }

    pub fn cancel(sku: &str, order_id: &str) -> Input {
        Input::Cancel {
            sku: sku.into(),
            order_id: order_id.into(),
        }
    }

    pub fn refund(sku: &str, order_id: &str, restock: bool) -> Input {
        Input::Refund {
            sku: sku.into(),
            order_id: order_id.into(),
            restock,
        }
    }

    pub fn read_sku(sku: &str) -> Input {
        Input::ReadSku { sku: sku.into() }
    }

    pub fn read_order(sku: &str, order_id: &str) -> Input {
        Input::ReadOrder {
            sku: sku.into(),
            order_id: order_id.into(),
        }
    }

    pub fn kind(&self) -> OpKind {
        match self {
            Input::CreateSku { .. } => OpKind::CreateSku,
            Input::Restock { .. } => OpKind::Restock,
            Input::Order { .. } => OpKind::Order,
            Input::Pay { .. } => OpKind::Pay,
            Input::Cancel { .. } => OpKind::Cancel,
            Input::Refund { .. } => OpKind::Refund,
            Input::ReadSku { .. } => OpKind::ReadSku,
            Input::ReadOrder { .. } => OpKind::ReadOrder,
        }
    }

    /// The order this operation is about, if any.
    pub fn order_id(&self) -> Option<&str> {
        match self {
            Input::Order { order_id, .. }
            | Input::Pay { order_id, .. }
            | Input::Cancel { order_id, .. }
            | Input::Refund { order_id, .. }
            | Input::ReadOrder { order_id, .. } => Some(order_id),
            _ => None,
        }
    }

    /// The SKUs this operation touches (an order: one per item).
    pub fn skus(&self) -> Vec<&str> {
        match self {
            Input::Order { items, .. } => items.iter().map(|i| i.sku.as_str()).collect(),
            Input::CreateSku { sku, .. }
            | Input::Restock { sku, .. }
            | Input::Pay { sku, .. }
            | Input::Cancel { sku, .. }
            | Input::Refund { sku, .. }
            | Input::ReadSku { sku }
            | Input::ReadOrder { sku, .. } => vec![sku.as_str()],
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::CreateSku {
                sku,
                stock,
                per_user_limit,
                sale_window,
            } => {
                write!(f, "create_sku {sku} stock={stock}")?;
                if let Some(limit) = per_user_limit {
                    write!(f, " per_user_limit={limit}")?;
                }
                if let Some(window) = sale_window {
                    write!(f, " sale={}..{}", window.start_ms, window.end_ms)?;
                }
                Ok(())
            }
            Input::Restock {
                sku,
                request_id,
                delta,
            } => write!(f, "restock {sku} {request_id} delta={delta:+}"),
            Input::Order {
                order_id,
                user_id,
                items,
                reservation_ttl_ms,
            } => {
                write!(f, "order {order_id} user={user_id}")?;
                for item in items {
                    write!(f, " {}x{}", item.sku, item.qty)?;
                }
                if let Some(ttl_ms) = reservation_ttl_ms {
                    write!(f, " ttl={ttl_ms}ms")?;
                }
                Ok(())
            }
            Input::Pay { sku, order_id } => write!(f, "pay {order_id} ({sku})"),
            Input::Cancel { sku, order_id } => write!(f, "cancel {order_id} ({sku})"),
            Input::Refund {
                sku,
                order_id,
                restock,
            } => write!(f, "refund {order_id} ({sku}) restock={restock}"),
            Input::ReadSku { sku } => write!(f, "read_sku {sku}"),
            Input::ReadOrder { sku, order_id } => write!(f, "read_order {order_id} ({sku})"),
        }
    }
}

/// A SKU body as answered by the API (the fields the checkers use).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SkuView {
    pub total: u64,
    pub available: u64,
    pub reserved: u64,
    pub sold: u64,
    pub refunded: u64,
    /// Raft log index of the SKU's last change.
    pub revision: u64,
}

/// An order body as answered by the API (the fields the checkers use).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrderView {
    pub user_id: String,
    pub items: Vec<Item>,
    pub status: OrderStatus,
    pub revision: u64,
    /// The cluster clock stamped on the order's creation (`None` in histories recorded
    /// before the deadline checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_ms: Option<u64>,
    /// The reservation deadline on the cluster clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
}

/// The answer's body, when one was recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "body", rename_all = "snake_case")]
pub enum Output {
    Sku(SkuView),
    Order(OrderView),
    /// A non-2xx answer's error `code`.
    Error {
        code: String,
    },
}

impl Output {
    pub fn error(code: &str) -> Output {
        Output::Error { code: code.into() }
    }

    fn code(&self) -> Option<&str> {
        match self {
            Output::Error { code } => Some(code),
            _ => None,
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Sku(s) => write!(
                f,
                "sku total={} available={} reserved={} sold={} refunded={} rev={}",
                s.total, s.available, s.reserved, s.sold, s.refunded, s.revision
            ),
            Output::Order(o) => {
                write!(f, "order {} user={}", o.status, o.user_id)?;
                for item in &o.items {
                    write!(f, " {}x{}", item.sku, item.qty)?;
                }
                write!(f, " rev={}", o.revision)?;
                if let Some(expires_ms) = o.expires_ms {
                    write!(f, " expires_ms={expires_ms}")?;
                }
                Ok(())
            }
            Output::Error { code } => f.write_str(code),
        }
    }
}

/// One client operation, from invocation to completion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history (assigned by [`History::push`]).
    pub index: u64,
    /// The logical client. A client is sequential, and is retired after an `info` op.
    pub process: u64,
    #[serde(flatten)]
    pub input: Input,
    /// Monotonic ns when the request was sent.
    pub invoke_ns: u64,
    /// Monotonic ns when the answer arrived or the client gave up.
    pub complete_ns: u64,
    #[serde(rename = "type")]
    pub completion: Completion,
    /// HTTP status, when an answer arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<u16>,
    /// The answer's body: required for `ok` reads and refusals, optional for `ok` writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Output>,
    /// Which gateway the client talked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u32>,
    /// Transport error text for `fail`/`info` ops without an answer (e.g. "timeout after 6s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Op {
    /// An `ok` op: an answer that the classifier calls a result.
    pub fn ok(
        process: u64,
        input: Input,
        invoke_ns: u64,
        complete_ns: u64,
        http: u16,
        output: Option<Output>,
    ) -> Op {
        Op {
            index: 0,
            process,
            input,
            invoke_ns,
            complete_ns,
            completion: Completion::Ok,
            http: Some(http),
            output,
            node: None,
            error: None,
        }
    }

    /// A `fail` or `info` op without an answer (transport error).
    pub fn no_answer(
        process: u64,
        input: Input,
        invoke_ns: u64,
        complete_ns: u64,
        completion: Completion,
        error: &str,
    ) -> Op {
        Op {
            index: 0,
            process,
            input,
            invoke_ns,
            complete_ns,
            completion,
            http: None,
            output: None,
            node: None,
            error: Some(error.into()),
        }
    }

    /// An `info` op: timed out (the usual indeterminate case).
    pub fn info(process: u64, input: Input, invoke_ns: u64, complete_ns: u64) -> Op {
        Op::no_answer(
            process,
            input,
            invoke_ns,
            complete_ns,
            Completion::Info,
            "timeout",
        )
    }

    /// Any op with an HTTP answer, its completion type given by [`classify`].
    pub fn answered(
        process: u64,
        input: Input,
        invoke_ns: u64,
        complete_ns: u64,
        http: u16,
        output: Option<Output>,
    ) -> Op {
        let completion = classify(http, output.as_ref().and_then(Output::code));
        Op {
            completion,
            ..Op::ok(process, input, invoke_ns, complete_ns, http, output)
        }
    }

    pub fn kind(&self) -> OpKind {
        self.input.kind()
    }

    pub fn latency_ns(&self) -> u64 {
        self.complete_ns.saturating_sub(self.invoke_ns)
    }

    /// The error code of a refusal, if this op's answer was one.
    pub fn error_code(&self) -> Option<&str> {
        self.output.as_ref().and_then(Output::code)
    }

    /// Whether this op was answered 2xx.
    pub fn is_success(&self) -> bool {
        self.completion == Completion::Ok && matches!(self.http, Some(200..=299))
    }

    /// Checks the record is well-formed on its own (the per-process rules need the history).
    fn validate(&self) -> Result<(), String> {
        if self.complete_ns < self.invoke_ns {
            return Err(format!(
                "completes at {} before its invocation at {}",
                self.complete_ns, self.invoke_ns
            ));
        }
        if let Input::Order { items, .. } = &self.input {
            if items.is_empty() {
                return Err("order without items".into());
            }
        }
        if let Some(http) = self.http {
            let classified = classify(http, self.error_code());
            if classified != self.completion {
                return Err(format!(
                    "recorded as {} but HTTP {http} {} classifies as {}",
                    self.completion.as_str(),
                    self.error_code().unwrap_or(""),
                    classified.as_str()
                ));
            }
        }
        match (self.completion, self.http, &self.output) {
            (Completion::Ok, None, _) => Err("ok without an HTTP status".into()),
            (Completion::Ok, Some(200..=299), None) if self.kind().is_read() => {
                Err("ok read without its body".into())
            }
            (Completion::Ok, Some(200..=299), Some(Output::Error { .. })) => {
                Err("2xx with an error body".into())
            }
            (Completion::Ok, Some(200..=299), Some(Output::Sku(_)))
                if !self.kind().answers_with_sku() =>
            {
                Err(format!("{} answered with a SKU body", self.kind()))
            }
            (Completion::Ok, Some(200..=299), Some(Output::Order(_)))
                if self.kind().answers_with_sku() =>
            {
                Err(format!("{} answered with an order body", self.kind()))
            }
            (Completion::Ok, Some(200..=299), _) => Ok(()),
            (Completion::Ok, Some(_), Some(Output::Error { .. })) => Ok(()),
            (Completion::Ok, Some(http), _) => Err(format!("refusal {http} without its code")),
            (_, _, Some(Output::Sku(_) | Output::Order(_))) => Err(format!(
                "{} op with a result body",
                self.completion.as_str()
            )),
            _ => Ok(()),
        }
    }
}

fn fmt_ns(ns: u64) -> String {
    format!(
        "{}.{:06}s",
        ns / 1_000_000_000,
        (ns % 1_000_000_000) / 1_000
    )
}

/// A duration in the unit that reads best.
pub(crate) fn fmt_duration_ns(ns: u64) -> String {
    if ns >= 1_000_000_000 {
        format!("{:.2}s", ns as f64 / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.1}ms", ns as f64 / 1e6)
    } else {
        format!("{:.1}us", ns as f64 / 1e3)
    }
}

impl fmt::Display for Op {
    /// One line: index, process, input, completion, answer, timing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>6} p{:<4} {:<44} {:<4}",
            self.index,
            self.process,
            self.input.to_string(),
            self.completion.as_str()
        )?;
        if let Some(http) = self.http {
            write!(f, " {http}")?;
        }
        if let Some(output) = &self.output {
            write!(f, " {output}")?;
        }
        if let Some(error) = &self.error {
            write!(f, " ({error})")?;
        }
        write!(
            f,
            "  @{} +{}",
            fmt_ns(self.invoke_ns),
            fmt_duration_ns(self.latency_ns())
        )?;
        if let Some(node) = self.node {
            write!(f, " n{node}")?;
        }
        Ok(())
    }
}

/// Why a history could not be recorded or loaded.
#[derive(Debug, Error)]
pub enum HistoryError {
    #[error("op {index} is malformed: {reason}")]
    Invalid { index: u64, reason: String },
    #[error("line {line}: {source}")]
    Json {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("line {line}: index {found}, expected {expected}")]
    OutOfOrder {
        line: usize,
        expected: u64,
        found: u64,
    },
    #[error("history i/o: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone, Copy, Debug)]
struct ProcessState {
    last_complete_ns: u64,
    retired: bool,
}

/// The whole history, in completion order (the order ops were pushed).
#[derive(Clone, Debug, Default)]
pub struct History {
    ops: Vec<Op>,
    processes: BTreeMap<u64, ProcessState>,
}

impl History {
    pub fn new() -> History {
        History::default()
    }

    /// Appends a completed op, giving it the next index (returned).
    ///
    /// Refuses a malformed record, and the per-process contract the workload must keep: a
    /// client's ops do not overlap, and a client issues nothing after an `info` op (jepsen.md
    /// §3: retire it; its op may still be in flight).
    pub fn push(&mut self, mut op: Op) -> Result<u64, HistoryError> {
        op.index = self.ops.len() as u64;
        let invalid = |reason: String| HistoryError::Invalid {
            index: op.index,
            reason,
        };
        op.validate().map_err(invalid)?;
        if let Some(process) = self.processes.get(&op.process) {
            if process.retired {
                return Err(invalid(format!(
                    "process {} was retired after an info op",
                    op.process
                )));
            }
            if op.invoke_ns < process.last_complete_ns {
                return Err(invalid(format!(
                    "process {} invoked at {} before its previous op completed at {}",
                    op.process, op.invoke_ns, process.last_complete_ns
                )));
            }
        }
        self.processes.insert(
            op.process,
            ProcessState {
                last_complete_ns: op.complete_ns,
                retired: op.completion == Completion::Info,
            },
        );
        let index = op.index;
        self.ops.push(op);
        Ok(index)
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Writes one JSON object per line.
    pub fn write_jsonl<W: Write>(&self, mut out: W) -> Result<(), HistoryError> {
        for op in &self.ops {
            serde_json::to_writer(&mut out, op).map_err(|source| HistoryError::Json {
                line: op.index as usize + 1,
                source,
            })?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    }

    pub fn to_jsonl(&self) -> String {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail, and every field serialises.
        self.write_jsonl(&mut out)
            .expect("serialising a history to memory");
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }

    /// Reads `history.jsonl`, re-checking every record as `push` did. Blank lines are skipped.
    pub fn read_jsonl<R: BufRead>(input: R) -> Result<History, HistoryError> {
        let mut history = History::new();
        for (n, line) in input.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let op: Op = serde_json::from_str(&line).map_err(|source| HistoryError::Json {
                line: n + 1,
                source,
            })?;
            let expected = history.ops.len() as u64;
            if op.index != expected {
                return Err(HistoryError::OutOfOrder {
                    line: n + 1,
                    expected,
                    found: op.index,
                });
            }
            history.push(op)?;
        }
        Ok(history)
    }

    pub fn from_jsonl(text: &str) -> Result<History, HistoryError> {
        History::read_jsonl(text.as_bytes())
    }

    /// The readable form (`history.txt`): one line per op, in completion order.
    pub fn to_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for op in &self.ops {
            writeln!(f, "{op}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> History {
        let mut h = History::new();
        h.push(Op::ok(
            0,
            Input::create_sku("A1", 2),
            0,
            10,
            201,
            Some(Output::Sku(SkuView {
                total: 2,
                available: 2,
                reserved: 0,
                sold: 0,
                refunded: 0,
                revision: 3,
            })),
        ))
        .unwrap();
        h.push(Op::ok(
            1,
            Input::order("o-1", "u-1", "A1", 1),
            11,
            20,
            201,
            Some(Output::Order(OrderView {
                user_id: "u-1".into(),
                items: vec![Item {
                    sku: "A1".into(),
                    qty: 1,
                }],
                status: OrderStatus::Reserved,
                revision: 4,
                created_ms: None,
                expires_ms: None,
            })),
        ))
        .unwrap();
        h.push(Op::ok(
            2,
            Input::order("o-2", "u-2", "A1", 5),
            12,
            22,
            409,
            Some(Output::error("out_of_stock")),
        ))
        .unwrap();
        h.push(Op::answered(
            3,
            Input::restock("A1", "r-1", -1),
            13,
            30,
            503,
            Some(Output::error("unavailable")),
        ))
        .unwrap();
        h.push(Op::info(
            4,
            Input::refund("A1", "o-1", false),
            14,
            5_000_000_040,
        ))
        .unwrap();
        h.push(Op::no_answer(
            5,
            Input::read_order("A1", "o-1"),
            15,
            16,
            Completion::Fail,
            "connection refused",
        ))
        .unwrap();
        h
    }

    #[test]
    fn jsonl_round_trips() {
        let h = sample();
        let text = h.to_jsonl();
        assert_eq!(text.lines().count(), h.len());
        let back = History::from_jsonl(&text).unwrap();
        assert_eq!(back.ops(), h.ops());
        assert_eq!(back.to_jsonl(), text);
        // The flattened input keeps the record readable on its own.
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["kind"], "create_sku");
        assert_eq!(first["type"], "ok");
        assert_eq!(first["output"]["body"], "sku");
    }

    #[test]
    fn text_form_has_one_readable_line_per_op() {
        let text = sample().to_text();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 6);
        assert!(lines[1].contains("order o-1 user=u-1 A1x1"), "{}", lines[1]);
        assert!(lines[1].contains("ok   201 order reserved"), "{}", lines[1]);
        assert!(lines[2].contains("409 out_of_stock"), "{}", lines[2]);
        assert!(lines[3].contains("info 503 unavailable"), "{}", lines[3]);
        assert!(
            lines[4].contains("(timeout)") && lines[4].contains("+5.00s"),
            "{}",
            lines[4]
        );
    }

    #[test]
    fn classifier_follows_the_outcome_mapping() {
        assert_eq!(classify(200, None), Completion::Ok);
        assert_eq!(classify(201, None), Completion::Ok);
        for code in [
            "out_of_stock",
            "invalid_transition",
            "order_id_conflict",
            "anything",
        ] {
            assert_eq!(classify(409, Some(code)), Completion::Ok);
        }
        assert_eq!(classify(404, Some("sku_not_found")), Completion::Ok);
        assert_eq!(classify(404, Some("order_not_found")), Completion::Ok);
        assert_eq!(classify(404, Some("not_found")), Completion::Fail);
        for status in [400, 405, 413, 415, 429] {
            assert_eq!(classify(status, Some("x")), Completion::Fail, "{status}");
        }
        for status in [500, 502, 503, 504, 418, 302] {
            assert_eq!(classify(status, None), Completion::Info, "{status}");
        }
        assert_eq!(
            classify_transport(TransportError::ConnectFailed),
            Completion::Fail
        );
        assert_eq!(
            classify_transport(TransportError::Timeout),
            Completion::Info
        );
        assert_eq!(
            classify_transport(TransportError::ConnectionLost),
            Completion::Info
        );
    }

    #[test]
    fn malformed_records_are_refused() {
        let mut h = History::new();
        // Completion before invocation.
        assert!(h.push(Op::info(0, Input::read_sku("A"), 10, 5)).is_err());
        // An ok read without its body says nothing.
        assert!(h
            .push(Op::ok(0, Input::read_sku("A"), 0, 1, 200, None))
            .is_err());
        // A refusal without its code.
        assert!(h
            .push(Op::ok(0, Input::pay("A", "o"), 0, 1, 409, None))
            .is_err());
        // A 503 recorded as ok.
        assert!(h
            .push(Op::ok(
                0,
                Input::pay("A", "o"),
                0,
                1,
                503,
                Some(Output::error("unavailable"))
            ))
            .is_err());
        // Wrong body for the kind.
        assert!(h
            .push(Op::ok(
                0,
                Input::pay("A", "o"),
                0,
                1,
                200,
                Some(Output::Sku(SkuView {
                    total: 0,
                    available: 0,
                    reserved: 0,
                    sold: 0,
                    refunded: 0,
                    revision: 0
                }))
            ))
            .is_err());
        assert!(h.is_empty());
    }

    #[test]
    fn processes_are_sequential_and_retired_after_info() {
        let mut h = History::new();
        h.push(Op::info(1, Input::pay("A", "o"), 0, 10)).unwrap();
        assert!(h.push(Op::info(1, Input::pay("A", "o"), 20, 30)).is_err());
        h.push(Op::ok(2, Input::pay("A", "o"), 0, 10, 200, None))
            .unwrap();
        assert!(h
            .push(Op::ok(2, Input::pay("A", "o"), 5, 12, 200, None))
            .is_err());
        h.push(Op::ok(2, Input::pay("A", "o"), 10, 12, 200, None))
            .unwrap();
    }

    #[test]
    fn loading_rechecks_indices_and_records() {
        let text = sample().to_jsonl();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.swap(0, 1);
        assert!(matches!(
            History::from_jsonl(&lines.join("\n")),
            Err(HistoryError::OutOfOrder { line: 1, .. })
        ));
        assert!(matches!(
            History::from_jsonl("{\"index\":0}\n"),
            Err(HistoryError::Json { line: 1, .. })
        ));
    }
}
