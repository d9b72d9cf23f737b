//! The real system for the end-to-end tests: a cluster of `node` processes on free loopback
//! ports (one data dir each, SIGKILL and restart) started by the workspace's one launcher
//! (`cluster_config::launch`), in-process gateways from this crate bound to port 0, and a
//! plain HTTP/1.1 client that talks to them over TCP.
//!
//! The node binary is not this package's, so Cargo does not build it for these tests or hand
//! over its path; `launch::sibling` finds it next to the running test in the same target dir
//! and builds it there when it is missing.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cluster_config::launch::{self, probe, Layout, LogMode, Nodes, Spawn};
use cluster_config::mtls::Dialer;
use cluster_config::GatewayConfig;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderMap, CONTENT_TYPE};
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use proto::admin::StatusReply;
use serde_json::Value;

/// The tests share two cores; clusters started side by side would make each other miss
/// heartbeats and elect. Every test holds this for its whole run (a tokio mutex: it is held
/// across awaits, and a failed test does not poison it).
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a cluster may take to agree on a leader, and an HTTP request to be answered.
const PATIENCE: Duration = Duration::from_secs(30);

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

// ---------------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------------

/// Real node processes. Dropping it (a failed test included) kills every one of them; after
/// a failure their logs are printed and their dir is kept.
pub struct Cluster {
    nodes: Nodes,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` nodes with test timings (heartbeat 50 ms, election 300–600 ms) and waits
    /// until they agree on a leader.
    pub async fn start(n: usize) -> Cluster {
        let binary = launch::sibling("node", "flashstock-node").expect("the node binary");
        let dir = tempfile::Builder::new()
            .prefix("gateway-e2e-")
            .tempdir()
            .expect("temp dir");
        let configs =
            launch::loopback_test_configs(n, dir.path(), |_| {}).expect("valid node configs");
        let spawn = Spawn {
            // Appended to, so a restarted node's log follows its first life's.
            log: LogMode::Appended,
            ..Spawn::default()
        }
        // `info` turns the per-request lines on (the defaults leave them off): the
        // request-id test reads them.
        .env("RUST_LOG", "info,openraft=warn")
        .env("NO_COLOR", "1");
        let mut nodes = Nodes::new(dir.path(), configs, binary, spawn, Layout::Flat);
        nodes.start_all().expect("start the nodes");
        let cluster = Cluster { nodes, dir };
        let all = cluster.ids();
        cluster.leader(&all).await;
        cluster
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.ids()
    }

    pub fn log_path(&self, id: u64) -> PathBuf {
        self.nodes.log_path(id)
    }

    /// A file of this name in the cluster's temporary dir (removed with it).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The nodes' gRPC addresses, for a gateway's `nodes`.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.addrs()
    }

    pub fn addr(&self, id: u64) -> String {
        self.nodes.addr(id)
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill(&mut self, id: u64) {
        self.nodes.kill(id);
    }

    /// Starts a killed node again on its data dir.
    pub fn restart(&mut self, id: u64) {
        self.nodes.start(id).expect("restart the node");
    }

    /// `admin.Status` of one node, or `None` if it does not answer quickly.
    pub async fn status(&self, id: u64) -> Option<StatusReply> {
        let addr = self.addr(id);
        probe::status(&Dialer::Plain, &addr, Duration::from_millis(500))
            .await
            .ok()
    }

    /// The id of a leader that every node in `live` names; panics after 30 s.
    pub async fn leader(&self, live: &[u64]) -> u64 {
        let leader = self.nodes.agreed_leader(&Dialer::Plain, live, PATIENCE);
        leader.await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits until every node in `ids` has applied at least `index`.
    pub async fn wait_applied(&self, ids: &[u64], index: u64) {
        let applied = self
            .nodes
            .wait_applied(&Dialer::Plain, ids, index, PATIENCE);
        applied.await.unwrap_or_else(|e| panic!("{e}"));
    }

    fn dump_logs(&self) {
        for id in self.ids() {
            let path = self.log_path(id);
            let text = self.nodes.log(id);
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!(
                "---- last {} lines of node {id} ({}) ----\n{}",
                tail.len(),
                path.display(),
                tail.join("\n")
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nodes.kill_all();
        if std::thread::panicking() {
            // Kept for a look at the whole logs and data dirs.
            self.dir.disable_cleanup(true);
            self.dump_logs();
            eprintln!(
                "e2e: node logs and data kept in {}",
                self.dir.path().display()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Gateways
// ---------------------------------------------------------------------------------------------

/// A gateway serving on a free loopback port inside the test's runtime; stopped on drop.
pub struct RunningGateway {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningGateway {
    /// Binds a gateway in front of `nodes` (request deadline 5 s), serves it, and waits until
    /// `/readyz` says a leader answered.
    pub async fn start(nodes: Vec<String>) -> RunningGateway {
        let mut config = GatewayConfig::with_nodes(nodes);
        config.listen = "127.0.0.1:0".parse().expect("socket addr");
        config.request_deadline_ms = 5_000;
        let gateway = gateway::Gateway::bind(config)
            .await
            .expect("bind the gateway");
        let addr = gateway.local_addr();
        let task = tokio::spawn(gateway.run(std::future::pending()));
        let running = RunningGateway { addr, task };
        let http = running.http();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let r = http.get("/readyz").await;
            if r.status == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "gateway {addr} not ready within {PATIENCE:?}: {} {}",
                r.status,
                r.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        running
    }

    pub fn http(&self) -> Http {
        Http::new(self.addr)
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The gateway binary as its own process, logging to a file with `rust_log` as its filter:
/// for tests that read what the gateway logs.
pub struct GatewayProcess {
    pub addr: SocketAddr,
    pub log: PathBuf,
    _process: launch::Process,
}

impl GatewayProcess {
    pub async fn start(nodes: &[String], rust_log: &str, log: PathBuf) -> GatewayProcess {
        let port = launch::free_ports(1)[0];
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let process = Spawn::default()
            .env("RUST_LOG", rust_log)
            .env("NO_COLOR", "1")
            .start(
                env!("CARGO_BIN_EXE_flashstock-gateway").as_ref(),
                [
                    "--nodes".to_owned(),
                    nodes.join(","),
                    "--listen".to_owned(),
                    addr.to_string(),
                ],
                &log,
            )
            .expect("start the gateway binary");
        let http = Http::new(addr);
        let deadline = Instant::now() + PATIENCE;
        while http
            .try_send(Method::GET, "/readyz", None, Vec::new())
            .await
            .map(|r| r.status)
            != Ok(200)
        {
            assert!(
                Instant::now() < deadline,
                "gateway process {addr} not ready within {PATIENCE:?}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        GatewayProcess {
            addr,
            log,
            _process: process,
        }
    }

    pub fn http(&self) -> Http {
        Http::new(self.addr)
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// A real HTTP/1.1 client of one gateway (keep-alive pool; cheap to clone).
#[derive(Clone)]
pub struct Http {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("answer {} is not JSON ({e}): {}", self.status, self.text()))
    }

    /// Asserts an API error answer with this status and code; returns the whole body.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            (self.status, self.error_code().as_deref()),
            (status, Some(code)),
            "expected {status} {code}, got: {}",
            self.text()
        );
        let content_type = self
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            content_type.starts_with("application/json"),
            "error answer with Content-Type {content_type:?}"
        );
        let body = self.json();
        assert!(
            body["error"]["message"].is_string(),
            "error without a message: {body}"
        );
        body
    }

    /// `error.code` when the body is an API error.
    pub fn error_code(&self) -> Option<String> {
        let body: Value = serde_json::from_slice(&self.body).ok()?;
        body["error"]["code"].as_str().map(str::to_owned)
    }

    /// Asserts this status and returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text());
        self.json()
    }
}

impl Http {
    pub fn new(addr: SocketAddr) -> Http {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Http {
            base: format!("http://{addr}"),
            client,
        }
    }

    /// One request; panics if no answer comes within 30 s (the gateway's deadline is 5 s).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        self.try_send(method.clone(), path, content_type, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Like [`Http::send`], but a transport failure is an `Err` rather than a panic.
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Resp, String> {
        self.try_send_with(method, path, content_type, &[], body)
            .await
    }

    /// Like [`Http::try_send`], with extra request headers.
    pub async fn try_send_with(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Resp, String> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(ct) = content_type {
            request = request.header(CONTENT_TYPE, ct);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("building the request: {e}"))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("request failed: {e:?}"))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes()
                .to_vec();
            Ok(Resp {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(PATIENCE, exchange)
            .await
            .map_err(|_| format!("no answer within {PATIENCE:?}"))?
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None, Vec::new()).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.send(
            Method::POST,
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
    }

    /// Opens a Server-Sent Events stream and hands every event's JSON body, in order, to the
    /// returned channel until the stream or the receiver ends.
    pub async fn events(
        &self,
        path: &str,
        last_event_id: Option<u64>,
    ) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
        let mut request = Request::get(format!("{}{path}", self.base));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .expect("a GET request");
        let response = self
            .client
            .request(request)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e:?}"));
        assert_eq!(response.status(), 200, "GET {path}");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut body = response.into_body();
        tokio::spawn(async move {
            let mut buffer = String::new();
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                buffer.push_str(&String::from_utf8_lossy(&data));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let data = block.lines().find_map(|l| l.strip_prefix("data: "));
                    if let Some(event) = data.and_then(|d| serde_json::from_str(d).ok()) {
                        if tx.send(event).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        rx
    }

    /// A POST with no body and no `Content-Type` (pay, cancel, refund).
    pub async fn post_empty(&self, path: &str) -> Resp {
        self.send(Method::POST, path, None, Vec::new()).await
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> Resp {
        self.send(
            Method::PATCH,
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
    }
}
