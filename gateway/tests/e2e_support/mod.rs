//! The real system for the end-to-end tests: a cluster of `node` processes on free loopback
//! ports (one data dir each, SIGKILL and restart), in-process gateways from this crate bound
//! to port 0, and a plain HTTP/1.1 client that talks to them over TCP.
//!
//! The node binary is not this package's, so Cargo does not build it for these tests or hand
//! over its path; [`node_binary`] finds it next to the running test in the same target dir
//! and builds it there when it is missing.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cluster_config::{GatewayConfig, NodeConfig};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderMap, CONTENT_TYPE};
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use proto::admin::admin_client::AdminClient;
use proto::admin::{StatusReply, StatusRequest};
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
// The node binary
// ---------------------------------------------------------------------------------------------

/// `<target>/<profile>/flashstock-node`, built there (once per test process) when missing.
pub fn node_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(find_or_build_node)
}

fn find_or_build_node() -> PathBuf {
    // `<target>/<profile>/deps/e2e-<hash>`
    let exe = std::env::current_exe().expect("path of the running test binary");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("{} is not in <target>/<profile>/deps", exe.display()))
        .to_path_buf();
    let target_dir = profile_dir
        .parent()
        .unwrap_or_else(|| panic!("{} has no parent target dir", profile_dir.display()))
        .to_path_buf();
    let binary = profile_dir.join(format!("flashstock-node{}", std::env::consts::EXE_SUFFIX));
    if binary.is_file() {
        return binary;
    }
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug")
        .to_owned();
    let mut cargo = Process::new(env!("CARGO"));
    cargo.args(["build", "-p", "node", "--bin", "flashstock-node"]);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cargo.arg("--release");
        }
        other => {
            cargo.args(["--profile", other]);
        }
    }
    cargo
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    eprintln!(
        "e2e: {} is missing; building it: {cargo:?}",
        binary.display()
    );
    let status = cargo
        .status()
        .unwrap_or_else(|e| panic!("cannot run `{cargo:?}` to build the node binary: {e}"));
    assert!(
        status.success(),
        "building the node binary failed ({status}): `{cargo:?}`; \
         build it yourself with `cargo build -p node --bin flashstock-node` into {}",
        target_dir.display()
    );
    assert!(
        binary.is_file(),
        "`{cargo:?}` succeeded but {} is still missing",
        binary.display()
    );
    binary
}

// ---------------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------------

/// Real node processes. Dropping it (a failed test included) kills every one of them; after
/// a failure their logs are printed and their dir is kept.
pub struct Cluster {
    dir: tempfile::TempDir,
    pub configs: Vec<NodeConfig>,
    procs: Vec<Option<Child>>,
}

fn free_ports(n: usize) -> Vec<u16> {
    // Held together so that the OS hands out distinct ports; released before the nodes bind.
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

impl Cluster {
    /// Starts `n` nodes with test timings (heartbeat 50 ms, election 300–600 ms) and waits
    /// until they agree on a leader.
    pub async fn start(n: usize) -> Cluster {
        let binary = node_binary().to_path_buf();
        let dir = tempfile::Builder::new()
            .prefix("gateway-e2e-")
            .tempdir()
            .expect("temp dir");
        let ports = free_ports(n);
        // `local_cluster` lays out ids and data dirs; the ports are replaced by free ones.
        let mut configs = cluster_config::local_cluster(n, 20_000, dir.path());
        let members: BTreeMap<u64, String> = configs
            .iter()
            .zip(&ports)
            .map(|(c, p)| (c.id, format!("127.0.0.1:{p}")))
            .collect();
        for (c, p) in configs.iter_mut().zip(&ports) {
            c.listen = format!("127.0.0.1:{p}").parse().expect("socket addr");
            c.advertise = format!("127.0.0.1:{p}");
            c.initial_members = members.clone();
            c.raft.heartbeat_ms = 50;
            c.raft.election_timeout_min_ms = 300;
            c.raft.election_timeout_max_ms = 600;
            c.validate().expect("valid node config");
        }
        let mut cluster = Cluster {
            dir,
            procs: configs.iter().map(|_| None).collect(),
            configs,
        };
        for id in cluster.ids() {
            cluster.spawn(&binary, id);
        }
        let all = cluster.ids();
        cluster.leader(&all).await;
        cluster
    }

    pub fn ids(&self) -> Vec<u64> {
        self.configs.iter().map(|c| c.id).collect()
    }

    fn index(&self, id: u64) -> usize {
        self.configs
            .iter()
            .position(|c| c.id == id)
            .unwrap_or_else(|| panic!("no node {id} in this cluster"))
    }

    pub fn log_path(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node{id}.log"))
    }

    fn spawn(&mut self, binary: &Path, id: u64) {
        let i = self.index(id);
        assert!(self.procs[i].is_none(), "node {id} is already running");
        let config = self.dir.path().join(format!("node{id}.toml"));
        std::fs::write(&config, self.configs[i].to_toml_string()).expect("write node config");
        // Appended to, so a restarted node's log follows its first life's.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .expect("open node log");
        // The node logs to stdout; stderr gets panics.
        let stdout = log.try_clone().expect("clone the log file handle");
        let child = Process::new(binary)
            .arg("--config")
            .arg(&config)
            // The inventory calls' spans and answers too: the request-id test reads them.
            .env(
                "RUST_LOG",
                "info,openraft=warn,node::services::inventory=debug",
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        self.procs[i] = Some(child);
    }

    /// The nodes' gRPC addresses, for a gateway's `nodes`.
    pub fn addrs(&self) -> Vec<String> {
        self.configs.iter().map(|c| c.advertise.clone()).collect()
    }

    pub fn addr(&self, id: u64) -> String {
        self.configs[self.index(id)].advertise.clone()
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no chance to flush or say goodbye.
    pub fn kill(&mut self, id: u64) {
        let i = self.index(id);
        if let Some(mut child) = self.procs[i].take() {
            child.kill().expect("SIGKILL a node");
            let _ = child.wait();
        }
    }

    /// Starts a killed node again on its data dir.
    pub fn restart(&mut self, id: u64) {
        let binary = node_binary().to_path_buf();
        self.spawn(&binary, id);
    }

    /// `admin.Status` of one node, or `None` if it does not answer quickly.
    pub async fn status(&self, id: u64) -> Option<StatusReply> {
        node_status(&self.addr(id)).await
    }

    /// The id of a leader that every node in `live` names; panics after 30 s.
    pub async fn leader(&self, live: &[u64]) -> u64 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut named = Vec::new();
            for &id in live {
                if let Some(s) = self.status(id).await {
                    named.push(if s.role == "leader" {
                        Some(s.node_id)
                    } else {
                        s.leader_id
                    });
                }
            }
            if named.len() == live.len() {
                if let Some(Some(leader)) = named.first().copied() {
                    if named.iter().all(|n| *n == Some(leader)) && live.contains(&leader) {
                        return leader;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "nodes {live:?} did not agree on a leader within {PATIENCE:?} (last: {named:?})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every node in `ids` has applied at least `index`.
    pub async fn wait_applied(&self, ids: &[u64], index: u64) {
        let deadline = Instant::now() + PATIENCE;
        for &id in ids {
            loop {
                let applied = self.status(id).await.map(|s| s.last_applied);
                if applied.is_some_and(|a| a >= index) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {id} did not apply index {index} within {PATIENCE:?} (at {applied:?})"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    fn dump_logs(&self) {
        for c in &self.configs {
            let path = self.log_path(c.id);
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!(
                "---- last {} lines of node {} ({}) ----\n{}",
                tail.len(),
                c.id,
                path.display(),
                tail.join("\n")
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.procs.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
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

async fn node_status(addr: &str) -> Option<StatusReply> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .ok()?
        .connect_timeout(Duration::from_millis(300))
        .timeout(Duration::from_millis(500));
    let channel = tokio::time::timeout(Duration::from_millis(500), endpoint.connect())
        .await
        .ok()?
        .ok()?;
    let reply = tokio::time::timeout(
        Duration::from_millis(500),
        AdminClient::new(channel).status(StatusRequest {}),
    )
    .await
    .ok()?
    .ok()?;
    Some(reply.into_inner())
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
