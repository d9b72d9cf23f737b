//! A fake cluster node for the gateway's tests: the `inventory` and `admin` gRPC services over
//! a tiny in-memory model of SKUs and orders, with knobs to misbehave (answer `NotLeader`,
//! `Unavailable`, hold calls at a gate) and a record of every command it was sent.
//!
//! The model is deliberately small (no per-user limits, sale windows or expiry): the real
//! rules are the state machine's and are tested there. What the gateway's tests need is a
//! node that answers like one, and canned refusals (`refuse_next`) for everything else.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use proto::admin::admin_server::{Admin, AdminServer};
use proto::admin::{
    AddLearnerRequest, AdminReply, ChangeMembershipRequest, ClockReply, ClockRequest, Member,
    MetricsReply, MetricsRequest, SnapshotRequest, StateDigestReply, StateDigestRequest,
    StatusReply, StatusRequest,
};
use proto::inventory::inventory_server::{Inventory, InventoryServer};
use proto::inventory::{
    read_reply, submit_reply, GetOrderRequest, GetSalesRequest, GetSkuRequest, ListOrdersRequest,
    ListSkusRequest, NotLeader, Outcomes, ReadEventsRequest, ReadReply, Record, SubmitReply,
    SubmitRequest, Unavailable,
};
use serde::Serialize;
use serde_json::Value;
use state_machine::{
    Command, Effect, Event, EventPage, EventRead, Order, OrderStatus, Outcome, Payment, Refusal,
    SalesBucket, Sku, SkuCreation, SkuId,
};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};
use tower::ServiceExt;

/// How the next call is answered instead of normally.
#[derive(Debug, Clone)]
pub enum Script {
    NotLeader(String),
    Unavailable,
    /// Commit the commands, then the given other clients' commands as the next entry, then
    /// answer `Unavailable`: the answer of a write that landed is lost, as when a leader's
    /// reply times out, and others write before the gateway resends.
    AppliedButLost(Vec<Command>),
}

#[derive(Default)]
struct Model {
    skus: BTreeMap<String, Sku>,
    orders: BTreeMap<String, Order>,
    /// Applied restocks: delta, the applying request's tag and the SKU it left.
    restocks: BTreeMap<(String, String), (i64, u64, Sku)>,
    index: u64,
    /// The feed, as a test sets it (`push_events`); ids below `oldest_event` are gone.
    events: Vec<Event>,
    oldest_event: u64,
    sales: BTreeMap<String, Vec<SalesBucket>>,
}

impl Model {
    fn read_events(&self, after: u64, limit: u32) -> EventRead {
        if after + 1 < self.oldest_event {
            return EventRead::Compacted {
                oldest: self.oldest_event,
            };
        }
        let events: Vec<Event> = self
            .events
            .iter()
            .filter(|e| e.id > after)
            .take(limit.max(1) as usize)
            .cloned()
            .collect();
        EventRead::Page(EventPage {
            next: events.last().map_or(after, |e| e.id),
            head: self.events.last().map_or(0, |e| e.id),
            events,
        })
    }
}

#[derive(Default)]
struct State {
    model: Model,
    submits: Vec<Vec<Command>>,
    reads: usize,
    script: VecDeque<Script>,
    refusals: VecDeque<Outcome>,
    /// Answer every call with `NotLeader` naming this address.
    follower_of: Option<String>,
    /// Answer every call with `Unavailable`.
    always_unavailable: bool,
}

#[derive(Clone)]
pub struct FakeNode {
    pub id: u64,
    pub addr: String,
    state: Arc<Mutex<State>>,
    /// Calls wait here for a permit while the gate is closed.
    gate: Arc<Semaphore>,
}

/// Permits that mean "open": far more than any test sends.
const OPEN: usize = 1 << 20;

impl FakeNode {
    /// Starts a node on a free loopback port.
    pub async fn start(id: u64) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let node = FakeNode {
            id,
            addr,
            state: Arc::new(Mutex::new(State::default())),
            gate: Arc::new(Semaphore::new(OPEN)),
        };
        let server = tonic::transport::Server::builder()
            .add_service(InventoryServer::new(node.clone()))
            .add_service(AdminServer::new(node.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
        tokio::spawn(server);
        node
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    pub fn script(&self, s: Script) {
        self.state().script.push_back(s);
    }

    /// The next command gets this outcome instead of the model's.
    pub fn refuse_next(&self, outcome: Outcome) {
        self.state().refusals.push_back(outcome);
    }

    pub fn follow(&self, leader: &str) {
        self.state().follower_of = Some(leader.to_owned());
    }

    pub fn set_always_unavailable(&self, on: bool) {
        self.state().always_unavailable = on;
    }

    /// Every `Submit` received, in order, decoded.
    pub fn submits(&self) -> Vec<Vec<Command>> {
        self.state().submits.clone()
    }

    pub fn commands(&self) -> Vec<Command> {
        self.submits().into_iter().flatten().collect()
    }

    pub fn reads(&self) -> usize {
        self.state().reads
    }

    /// Appends to the feed; ids are the test's to choose.
    pub fn push_events(&self, events: Vec<Event>) {
        self.state().model.events.extend(events);
    }

    /// Reads of ids below `oldest` answer compacted from now on.
    pub fn compact_before(&self, oldest: u64) {
        self.state().model.oldest_event = oldest;
    }

    pub fn set_sales(&self, sku: &str, buckets: Vec<SalesBucket>) {
        self.state().model.sales.insert(sku.to_owned(), buckets);
    }

    /// Calls arriving from now on wait until `open_gate`.
    pub async fn close_gate(&self) {
        let permits = self.gate.acquire_many(OPEN as u32).await.unwrap();
        permits.forget();
    }

    pub fn open_gate(&self) {
        self.gate.add_permits(OPEN);
    }

    async fn pass_gate(&self) {
        let _permit = self.gate.acquire().await.unwrap();
    }

    /// Applies one Submit's commands as one log entry.
    fn commit(&self, commands: &[Command]) -> submit_reply::Result {
        let mut s = self.state();
        s.model.index += 1;
        let mut outcomes = Vec::new();
        for c in commands {
            let outcome = match s.refusals.pop_front() {
                Some(o) => o,
                None => {
                    let index = s.model.index;
                    s.model.apply(c, index)
                }
            };
            outcomes.push(postcard::to_allocvec(&outcome).unwrap().into());
        }
        submit_reply::Result::Outcomes(Outcomes {
            outcomes,
            log_index: s.model.index,
        })
    }

    /// The scripted or standing misbehaviour for this call, if any.
    fn misbehave(&self) -> Option<Script> {
        let mut s = self.state();
        if let Some(leader) = &s.follower_of {
            return Some(Script::NotLeader(leader.clone()));
        }
        if s.always_unavailable {
            return Some(Script::Unavailable);
        }
        s.script.pop_front()
    }

    fn read_reply<T: Serialize>(&self, value: impl FnOnce(&Model) -> T) -> ReadReply {
        let result = match self.misbehave() {
            Some(Script::NotLeader(addr)) => read_reply::Result::NotLeader(NotLeader {
                leader_id: None,
                leader_addr: addr,
            }),
            Some(Script::Unavailable | Script::AppliedButLost(_)) => {
                read_reply::Result::Unavailable(Unavailable {
                    message: "no quorum".into(),
                })
            }
            None => {
                let mut s = self.state();
                s.reads += 1;
                let bytes = postcard::to_allocvec(&value(&s.model)).unwrap();
                read_reply::Result::Record(Record {
                    value: bytes,
                    applied_index: s.model.index,
                })
            }
        };
        ReadReply {
            result: Some(result),
        }
    }
}

#[tonic::async_trait]
impl Inventory for FakeNode {
    async fn submit(
        &self,
        request: GrpcRequest<SubmitRequest>,
    ) -> Result<GrpcResponse<SubmitReply>, Status> {
        let commands: Vec<Command> = request
            .into_inner()
            .commands
            .iter()
            .map(|b| postcard::from_bytes(b).unwrap())
            .collect();
        self.state().submits.push(commands.clone());
        self.pass_gate().await;
        let result = match self.misbehave() {
            Some(Script::NotLeader(addr)) => submit_reply::Result::NotLeader(NotLeader {
                leader_id: Some(99),
                leader_addr: addr,
            }),
            Some(Script::Unavailable) => submit_reply::Result::Unavailable(Unavailable {
                message: "no quorum".into(),
            }),
            Some(Script::AppliedButLost(others)) => {
                self.commit(&commands);
                if !others.is_empty() {
                    self.commit(&others);
                }
                submit_reply::Result::Unavailable(Unavailable {
                    message: "answer lost".into(),
                })
            }
            None => self.commit(&commands),
        };
        Ok(GrpcResponse::new(SubmitReply {
            result: Some(result),
        }))
    }

    async fn get_sku(
        &self,
        request: GrpcRequest<GetSkuRequest>,
    ) -> Result<GrpcResponse<ReadReply>, Status> {
        self.pass_gate().await;
        let sku = request.into_inner().sku;
        Ok(GrpcResponse::new(
            self.read_reply(|m| m.skus.get(&sku).cloned()),
        ))
    }

    async fn get_order(
        &self,
        request: GrpcRequest<GetOrderRequest>,
    ) -> Result<GrpcResponse<ReadReply>, Status> {
        self.pass_gate().await;
        let id = request.into_inner().order_id;
        Ok(GrpcResponse::new(
            self.read_reply(|m| m.orders.get(&id).cloned()),
        ))
    }

    async fn list_skus(
        &self,
        request: GrpcRequest<ListSkusRequest>,
    ) -> Result<GrpcResponse<ReadReply>, Status> {
        self.pass_gate().await;
        let ListSkusRequest { after, limit } = request.into_inner();
        Ok(GrpcResponse::new(self.read_reply(|m| {
            let mut page: Vec<Sku> = m
                .skus
                .values()
                .filter(|s| s.sku.as_str() > after.as_str())
                .take(limit as usize + 1)
                .cloned()
                .collect();
            let next = if page.len() > limit as usize {
                page.pop();
                page.last().map(|s| s.sku.clone())
            } else {
                None
            };
            (page, next)
        })))
    }

    async fn list_orders(
        &self,
        request: GrpcRequest<ListOrdersRequest>,
    ) -> Result<GrpcResponse<ReadReply>, Status> {
        self.pass_gate().await;
        let ListOrdersRequest { user_id, limit } = request.into_inner();
        Ok(GrpcResponse::new(self.read_reply(|m| {
            let mut orders: Vec<Order> = m
                .orders
                .values()
                .filter(|o| o.user_id.as_str() == user_id)
                .cloned()
                .collect();
            orders.sort_by(|a, b| {
                b.created_ms
                    .cmp(&a.created_ms)
                    .then(a.order_id.cmp(&b.order_id))
            });
            orders.truncate(limit as usize);
            orders
        })))
    }

    async fn read_events(
        &self,
        request: GrpcRequest<ReadEventsRequest>,
    ) -> Result<GrpcResponse<ReadReply>, Status> {
        self.pass_gate().await;
        let ReadEventsRequest {
            after,
            limit,
            wait_ms,
        } = request.into_inner();
        // A waiting read holds until an event past `after` is there, as a node's does.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms.into());
        while self
            .state()
            .model
            .events
            .last()
            .is_none_or(|e| e.id <= after)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(GrpcResponse::new(
            self.read_reply(|m| m.read_events(after, limit)),
        ))
    }

    async fn get_sales(
        &self,
        request: GrpcRequest<GetSalesRequest>,
    ) -> Result<GrpcResponse<ReadReply>, Status> {
        self.pass_gate().await;
        let GetSalesRequest {
            sku,
            from_ms,
            to_ms,
        } = request.into_inner();
        Ok(GrpcResponse::new(self.read_reply(|m| {
            m.skus.get(&sku).map(|_| {
                m.sales
                    .get(&sku)
                    .into_iter()
                    .flatten()
                    .filter(|b| (from_ms..to_ms).contains(&b.start_ms))
                    .copied()
                    .collect::<Vec<_>>()
            })
        })))
    }
}

#[tonic::async_trait]
impl Admin for FakeNode {
    async fn status(
        &self,
        _request: GrpcRequest<StatusRequest>,
    ) -> Result<GrpcResponse<StatusReply>, Status> {
        let s = self.state();
        let leading = s.follower_of.is_none();
        Ok(GrpcResponse::new(StatusReply {
            node_id: self.id,
            addr: self.addr.clone(),
            role: if leading { "leader" } else { "follower" }.into(),
            term: 3,
            leader_id: if leading { Some(self.id) } else { None },
            last_log_index: s.model.index,
            last_applied: s.model.index,
            members: vec![Member {
                id: self.id,
                addr: self.addr.clone(),
                voter: true,
            }],
            ..Default::default()
        }))
    }

    async fn clock(
        &self,
        _request: GrpcRequest<ClockRequest>,
    ) -> Result<GrpcResponse<ClockReply>, Status> {
        Err(Status::unimplemented("the gateway never asks"))
    }

    async fn state_digest(
        &self,
        _request: GrpcRequest<StateDigestRequest>,
    ) -> Result<GrpcResponse<StateDigestReply>, Status> {
        Err(Status::unimplemented("the gateway never asks"))
    }

    async fn add_learner(
        &self,
        _request: GrpcRequest<AddLearnerRequest>,
    ) -> Result<GrpcResponse<AdminReply>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn change_membership(
        &self,
        _request: GrpcRequest<ChangeMembershipRequest>,
    ) -> Result<GrpcResponse<AdminReply>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn trigger_snapshot(
        &self,
        _request: GrpcRequest<SnapshotRequest>,
    ) -> Result<GrpcResponse<AdminReply>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn metrics(
        &self,
        _request: GrpcRequest<MetricsRequest>,
    ) -> Result<GrpcResponse<MetricsReply>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

/// Fixed clock of the fake: orders are created at this time.
pub const NOW_MS: u64 = 1_700_000_000_000;

/// The state machine's rule: a create resent by the request that made it reports Applied.
fn replay_effect(stored: u64, replayed: u64) -> Effect {
    if replayed != 0 && stored == replayed {
        Effect::Applied
    } else {
        Effect::Unchanged
    }
}

impl Model {
    fn apply(&mut self, command: &Command, index: u64) -> Outcome {
        match command.clone() {
            Command::CreateSku {
                sku,
                stock,
                per_user_limit,
                sale_window,
                request_tag,
            } => {
                let created = SkuCreation {
                    stock,
                    per_user_limit,
                    sale_window,
                };
                match self.skus.get(sku.as_str()) {
                    Some(existing) if existing.created == created => {
                        match replay_effect(existing.request_tag, request_tag) {
                            Effect::Applied => Outcome::Sku {
                                sku: existing.as_created(),
                                effect: Effect::Applied,
                            },
                            Effect::Unchanged => Outcome::Sku {
                                sku: existing.clone(),
                                effect: Effect::Unchanged,
                            },
                        }
                    }
                    Some(_) => Outcome::Refused(Refusal::SkuExists { sku }),
                    None => {
                        let record = Sku {
                            sku: sku.clone(),
                            total: stock,
                            available: stock,
                            reserved: 0,
                            sold: 0,
                            refunded: 0,
                            per_user_limit,
                            sale_window,
                            revision: index,
                            created,
                            request_tag,
                            created_revision: index,
                        };
                        self.skus.insert(sku.into_string(), record.clone());
                        Outcome::Sku {
                            sku: record,
                            effect: Effect::Applied,
                        }
                    }
                }
            }
            Command::Restock {
                sku,
                request_id,
                delta,
                request_tag,
            } => {
                let Some(record) = self.skus.get_mut(sku.as_str()) else {
                    return Outcome::Refused(Refusal::SkuNotFound { sku });
                };
                let key = (sku.as_str().to_owned(), request_id.as_str().to_owned());
                if let Some((applied, tag, after)) = self.restocks.get(&key) {
                    return if *applied != delta {
                        Outcome::Refused(Refusal::RequestIdConflict {
                            sku,
                            request_id,
                            applied_delta: *applied,
                        })
                    } else if replay_effect(*tag, request_tag) == Effect::Applied {
                        Outcome::Sku {
                            sku: after.clone(),
                            effect: Effect::Applied,
                        }
                    } else {
                        Outcome::Sku {
                            sku: record.clone(),
                            effect: Effect::Unchanged,
                        }
                    };
                }
                if delta < 0 && record.available < delta.unsigned_abs() {
                    return Outcome::Refused(Refusal::InsufficientAvailable {
                        sku,
                        available: record.available,
                        requested: delta.unsigned_abs(),
                    });
                }
                record.total = record.total.checked_add_signed(delta).unwrap();
                record.available = record.available.checked_add_signed(delta).unwrap();
                record.revision = index;
                self.restocks
                    .insert(key, (delta, request_tag, record.clone()));
                Outcome::Sku {
                    sku: record.clone(),
                    effect: Effect::Applied,
                }
            }
            Command::UpdateSku {
                sku,
                per_user_limit,
                sale_window,
                ..
            } => {
                let Some(record) = self.skus.get_mut(sku.as_str()) else {
                    return Outcome::Refused(Refusal::SkuNotFound { sku });
                };
                if let Some(limit) = per_user_limit {
                    record.per_user_limit = limit;
                }
                if let Some(window) = sale_window {
                    record.sale_window = window;
                }
                record.revision = index;
                Outcome::Sku {
                    sku: record.clone(),
                    effect: Effect::Applied,
                }
            }
            Command::PlaceOrder {
                order_id,
                user_id,
                items,
                ttl_ms,
                request_tag,
            } => {
                if let Some(existing) = self.orders.get(order_id.as_str()) {
                    return if existing.user_id == user_id && existing.items.same_content(&items) {
                        Outcome::Order {
                            order: existing.clone(),
                            effect: replay_effect(existing.request_tag, request_tag),
                        }
                    } else {
                        Outcome::Refused(Refusal::OrderIdConflict { order_id })
                    };
                }
                for item in items.as_slice() {
                    let Some(sku) = self.skus.get(item.sku.as_str()) else {
                        return Outcome::Refused(Refusal::SkuNotFound {
                            sku: item.sku.clone(),
                        });
                    };
                    if sku.available < item.qty.get() {
                        return Outcome::Refused(Refusal::OutOfStock {
                            sku: item.sku.clone(),
                            available: sku.available,
                            requested: item.qty.get(),
                        });
                    }
                }
                for item in items.as_slice() {
                    let sku = self.skus.get_mut(item.sku.as_str()).unwrap();
                    sku.available -= item.qty.get();
                    sku.reserved += item.qty.get();
                    sku.revision = index;
                }
                let order = Order {
                    order_id: order_id.clone(),
                    user_id,
                    items,
                    status: OrderStatus::Reserved,
                    created_ms: NOW_MS,
                    expires_ms: NOW_MS + ttl_ms,
                    updated_ms: NOW_MS,
                    payment_ref: None,
                    revision: index,
                    request_tag,
                    paid: None,
                };
                self.orders.insert(order_id.into_string(), order.clone());
                Outcome::Order {
                    order,
                    effect: Effect::Applied,
                }
            }
            Command::Pay {
                order_id,
                payment_ref,
                request_tag,
            } => {
                let resend = self.orders.get(order_id.as_str()).and_then(|o| {
                    let p = o.paid.as_ref()?;
                    (replay_effect(p.request_tag, request_tag) == Effect::Applied)
                        .then(|| o.as_paid())
                        .flatten()
                });
                if let Some(order) = resend {
                    return Outcome::Order {
                        order,
                        effect: Effect::Applied,
                    };
                }
                self.transition(order_id, index, |o| match o.status {
                    OrderStatus::Paid => Ok(false),
                    OrderStatus::Reserved => {
                        o.status = OrderStatus::Paid;
                        o.payment_ref = payment_ref;
                        o.paid = Some(Payment {
                            request_tag,
                            at_ms: NOW_MS,
                            revision: index,
                        });
                        Ok(true)
                    }
                    other => Err(other),
                })
            }
            Command::Cancel { order_id } => self.transition(order_id, index, |o| match o.status {
                OrderStatus::Cancelled | OrderStatus::Expired => Ok(false),
                OrderStatus::Reserved => {
                    o.status = OrderStatus::Cancelled;
                    Ok(true)
                }
                other => Err(other),
            }),
            Command::Refund { order_id, .. } => {
                self.transition(order_id, index, |o| match o.status {
                    OrderStatus::Refunded => Ok(false),
                    OrderStatus::Paid => {
                        o.status = OrderStatus::Refunded;
                        Ok(true)
                    }
                    other => Err(other),
                })
            }
            Command::Expire => Outcome::Expired { orders: 0 },
        }
    }

    /// A status change; `change` answers whether it applied, or the status that forbids it.
    fn transition(
        &mut self,
        order_id: state_machine::OrderId,
        index: u64,
        change: impl FnOnce(&mut Order) -> Result<bool, OrderStatus>,
    ) -> Outcome {
        let Some(order) = self.orders.get_mut(order_id.as_str()) else {
            return Outcome::Refused(Refusal::OrderNotFound { order_id });
        };
        match change(order) {
            Ok(true) => {
                order.revision = index;
                Outcome::Order {
                    order: order.clone(),
                    effect: Effect::Applied,
                }
            }
            Ok(false) => Outcome::Order {
                order: order.clone(),
                effect: Effect::Unchanged,
            },
            Err(status) => Outcome::Refused(Refusal::InvalidTransition { order_id, status }),
        }
    }
}

/// An address nothing listens on: bound, then released.
pub async fn closed_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    addr
}

/// A gateway config for tests: the given nodes, a short deadline and backoff.
pub fn config(nodes: Vec<String>) -> gateway::GatewayConfig {
    let mut c = gateway::GatewayConfig::with_nodes(nodes);
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.request_deadline_ms = 3_000;
    c.backoff_initial_ms = 1;
    c.backoff_max_ms = 20;
    c
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts an error answer: status, code, and that the message names `field`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "body: {body}");
        assert!(body["error"]["message"].is_string(), "body: {body}");
        body
    }
}

/// Sends one request through the gateway in-process.
pub async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Answer {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    let response = app
        .clone()
        .oneshot(builder.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

pub async fn get(app: &Router, uri: &str) -> Answer {
    send(app, "GET", uri, None, Body::empty()).await
}

pub async fn post_json(app: &Router, uri: &str, body: Value) -> Answer {
    send(app, "POST", uri, Some("application/json"), body.to_string()).await
}

pub async fn patch_json(app: &Router, uri: &str, body: Value) -> Answer {
    send(
        app,
        "PATCH",
        uri,
        Some("application/json"),
        body.to_string(),
    )
    .await
}

/// Waits (bounded) until `cond` holds; panics after 10 s. For sequencing, not timing.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

pub fn sku_id(s: &str) -> SkuId {
    SkuId::new(s).unwrap()
}
