//! A fake cluster node for the gateway's tests: the `inventory` and `admin` gRPC services over
//! the real state machine (`state_machine::Store` on a temporary sled db, a dev-dependency
//! only), with knobs to misbehave (answer `NotLeader`, `Unavailable`, hold calls at a gate)
//! and a record of every command it was sent.
//!
//! Commands apply by the node's own rules at a fixed clock (`NOW_MS`), so no second copy of
//! those rules lives here; what a node adds around them (Raft, leadership, read index) is
//! what the knobs stand in for. The event feed and sales figures are the test's to set
//! (`push_events`, `compact_before`, `set_sales`), so a test of the gateway's paging and
//! streaming does not depend on which events the engine records.

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
    short_outcome, Batch, Command, Event, EventPage, EventRead, OrderId, Outcome, SalesBucket, Sku,
    SkuId, Store, UserId,
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

/// The event feed and sales figures as a test sets them; ids below `oldest_event` are gone.
#[derive(Default)]
struct Feed {
    events: Vec<Event>,
    oldest_event: u64,
    sales: BTreeMap<String, Vec<SalesBucket>>,
}

impl Feed {
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

struct State {
    store: Store,
    /// The last log index: one per Submit.
    index: u64,
    feed: Feed,
    submits: Vec<Vec<Command>>,
    reads: usize,
    script: VecDeque<Script>,
    refusals: VecDeque<Outcome>,
    /// Answer every call with `NotLeader` naming this address.
    follower_of: Option<String>,
    /// Answer every call with `Unavailable`.
    always_unavailable: bool,
    /// Answer whole outcomes whatever a `Submit` asks, as a node of an earlier release does.
    whole_outcomes: bool,
    /// How many `Submit`s were answered with short outcomes.
    short_answers: usize,
}

impl State {
    fn new() -> State {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .expect("a temporary sled db");
        State {
            store: Store::open(&db).expect("a store on an empty db"),
            index: 0,
            feed: Feed::default(),
            submits: Vec::new(),
            reads: 0,
            script: VecDeque::new(),
            refusals: VecDeque::new(),
            follower_of: None,
            always_unavailable: false,
            whole_outcomes: false,
            short_answers: 0,
        }
    }

    /// One command as the log entry at `index` would apply it, at the fake's clock.
    fn sku(&self, sku: &str) -> Option<Sku> {
        let sku = SkuId::new(sku).ok()?;
        self.store.get_sku(&sku).expect("read a SKU")
    }

    fn apply(&self, index: u64, command: &Command) -> Outcome {
        let batch = Batch {
            now_ms: NOW_MS,
            commands: vec![command.clone()],
        };
        let mut outcomes = self.store.apply(&[(index, &batch)], None).expect("apply");
        outcomes.remove(0).remove(0)
    }
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
            state: Arc::new(Mutex::new(State::new())),
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

    /// Answers whole outcomes from now on, as a node of an earlier release.
    pub fn answer_whole_outcomes(&self) {
        self.state().whole_outcomes = true;
    }

    /// How many `Submit`s this node answered with short outcomes.
    pub fn short_answers(&self) -> usize {
        self.state().short_answers
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
        self.state().feed.events.extend(events);
    }

    /// Reads of ids below `oldest` answer compacted from now on.
    pub fn compact_before(&self, oldest: u64) {
        self.state().feed.oldest_event = oldest;
    }

    pub fn set_sales(&self, sku: &str, buckets: Vec<SalesBucket>) {
        self.state().feed.sales.insert(sku.to_owned(), buckets);
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

    /// Applies one Submit's commands as one log entry, answering short outcomes if asked.
    fn commit(&self, commands: &[Command], short_asked: bool) -> submit_reply::Result {
        let mut s = self.state();
        s.index += 1;
        let index = s.index;
        let short = short_asked && !s.whole_outcomes;
        s.short_answers += usize::from(short);
        let mut outcomes = Vec::new();
        for c in commands {
            let outcome = match s.refusals.pop_front() {
                Some(o) => o,
                None => s.apply(index, c),
            };
            outcomes.push(short_outcome::encode(outcome, Some(c), short).into());
        }
        submit_reply::Result::Outcomes(Outcomes {
            outcomes,
            log_index: index,
            short,
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

    fn read_reply<T: Serialize>(&self, value: impl FnOnce(&State) -> T) -> ReadReply {
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
                let bytes = postcard::to_allocvec(&value(&s)).unwrap();
                read_reply::Result::Record(Record {
                    value: bytes,
                    applied_index: s.index,
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
        let request = request.into_inner();
        let short = request.short_outcomes;
        let commands: Vec<Command> = request
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
                self.commit(&commands, short);
                if !others.is_empty() {
                    self.commit(&others, short);
                }
                submit_reply::Result::Unavailable(Unavailable {
                    message: "answer lost".into(),
                })
            }
            None => self.commit(&commands, short),
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
        Ok(GrpcResponse::new(self.read_reply(|s| s.sku(&sku))))
    }

    async fn get_order(
        &self,
        request: GrpcRequest<GetOrderRequest>,
    ) -> Result<GrpcResponse<ReadReply>, Status> {
        self.pass_gate().await;
        let id = request.into_inner().order_id;
        Ok(GrpcResponse::new(self.read_reply(|s| {
            let id = OrderId::new(&id).ok()?;
            s.store.get_order(&id).expect("read an order")
        })))
    }

    async fn list_skus(
        &self,
        request: GrpcRequest<ListSkusRequest>,
    ) -> Result<GrpcResponse<ReadReply>, Status> {
        self.pass_gate().await;
        let ListSkusRequest { after, limit } = request.into_inner();
        Ok(GrpcResponse::new(self.read_reply(|s| {
            let after = SkuId::new(&after).ok();
            let page = s.store.list_skus(after.as_ref(), limit as usize);
            page.expect("list SKUs")
        })))
    }

    async fn list_orders(
        &self,
        request: GrpcRequest<ListOrdersRequest>,
    ) -> Result<GrpcResponse<ReadReply>, Status> {
        self.pass_gate().await;
        let ListOrdersRequest { user_id, limit } = request.into_inner();
        Ok(GrpcResponse::new(self.read_reply(|s| {
            let Ok(user) = UserId::new(&user_id) else {
                return Vec::new();
            };
            let orders = s.store.list_user_orders(&user, limit as usize);
            orders.expect("list a user's orders")
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
            .feed
            .events
            .last()
            .is_none_or(|e| e.id <= after)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(GrpcResponse::new(
            self.read_reply(|s| s.feed.read_events(after, limit)),
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
        Ok(GrpcResponse::new(self.read_reply(|s| {
            s.sku(&sku).map(|_| {
                s.feed
                    .sales
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
            last_log_index: s.index,
            last_applied: s.index,
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
