//! A local cluster of real node processes for the integration tests, on the workspace's one
//! launcher (`cluster_config::launch`): free loopback ports, one data dir each, kill -9 /
//! SIGTERM / restart, and offline inspection of each node's state after it stopped.
#![allow(dead_code)]

pub mod scrape;
pub mod throttle;

use cluster_config::launch::{self, Layout, Nodes, Signal, Spawn};
use cluster_config::mtls::Dialer;
use cluster_config::NodeConfig;
use node::client::Client;
use proto::admin::admin_client::AdminClient;
use proto::admin::StateDigestRequest;
use state_machine::{Command, Item, Items, OrderId, Qty, SkuId, Store, UserId};
use std::ops::{Deref, DerefMut};
use std::process::Command as Process;
use std::time::Duration;

/// How long a cluster may take to agree on a leader or apply an index.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long a SIGTERMed node gets for a clean exit.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The launcher's [`Nodes`] (every read of configs, addresses and logs goes to it) in a temp
/// dir, with the tests' panicking shorthands.
pub struct Cluster {
    nodes: Nodes,
    pub dir: tempfile::TempDir,
}

impl Deref for Cluster {
    type Target = Nodes;
    fn deref(&self) -> &Nodes {
        &self.nodes
    }
}

impl DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut Nodes {
        &mut self.nodes
    }
}

impl Cluster {
    /// Starts `n` nodes with fast test timings; `tweak` adjusts each config.
    pub fn start(n: usize, tweak: impl Fn(&mut NodeConfig)) -> Self {
        let mut cluster = Self::configure(n, tweak);
        cluster.spawn_all();
        cluster
    }

    /// Starts every configured node.
    pub fn spawn_all(&mut self) {
        self.nodes.start_all().expect("start the nodes");
    }

    /// `n` node configs (fast test timings, `tweak`ed), written to `config_path`, no node
    /// started yet.
    pub fn configure(n: usize, tweak: impl Fn(&mut NodeConfig)) -> Self {
        let mut dir = tempfile::tempdir().unwrap();
        // For a post-mortem of a failed run: its node logs and data stay on disk.
        if std::env::var_os("FLASHSTOCK_KEEP_TEST_DIRS").is_some() {
            dir.disable_cleanup(true);
            eprintln!("keeping the cluster's files in {}", dir.path().display());
        }
        let configs = launch::loopback_test_configs(n, dir.path(), tweak).unwrap();
        let spawn = Spawn::default().env("RUST_LOG", cluster_config::logging::NODE_DEFAULT_FILTER);
        let binary = env!("CARGO_BIN_EXE_flashstock-node").into();
        let nodes = Nodes::new(dir.path(), configs, binary, spawn, Layout::Flat);
        nodes.write_configs().unwrap();
        Self { nodes, dir }
    }

    /// Puts every configured (not yet started) node behind a [`throttle::slow_link`] of
    /// `bytes_per_sec`: each advertises its relay, so peers and clients reach it only through it.
    pub async fn behind_slow_links(&mut self, bytes_per_sec: u64) {
        let mut relays = std::collections::BTreeMap::new();
        for c in &self.nodes.configs {
            let relay = throttle::slow_link(c.listen, bytes_per_sec).await;
            relays.insert(c.id, relay.to_string());
        }
        for c in &mut self.nodes.configs {
            c.advertise = relays[&c.id].clone();
            c.initial_members = relays.clone();
            c.validate().unwrap();
        }
        self.nodes.write_configs().unwrap();
    }

    /// Starts one more node (id = next) with no initial members: it waits to be added.
    pub fn spawn_extra(&mut self, tweak: impl Fn(&mut NodeConfig)) -> u64 {
        let id = self.configs.len() as u64 + 1;
        let port = launch::free_ports(1)[0];
        let mut c = self.configs[0].clone();
        c.id = id;
        c.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.advertise = format!("127.0.0.1:{port}");
        c.data_dir = self.dir.path().join(format!("node{id}"));
        c.initial_members.clear();
        tweak(&mut c);
        c.validate().unwrap();
        self.nodes.add(c);
        self.nodes.start(id).expect("start the extra node");
        self.wait_listening(id);
        id
    }

    /// Blocks until node `id` accepts TCP connections: a fresh process needs a moment to
    /// open sled and bind, and `add-node` rightly refuses an address nobody answers at.
    pub fn wait_listening(&self, id: u64) {
        self.nodes.wait_listening(id, PATIENCE).unwrap();
    }

    /// Deletes a stopped node's data dir.
    pub fn wipe(&self, id: u64) {
        let _ = self.nodes.wipe(id);
    }

    /// Runs `invctl` with `args` plus `--nodes` of the given live nodes.
    pub fn invctl(&self, args: &[&str], via: &[u64]) -> std::process::Output {
        let nodes: Vec<String> = via.iter().map(|id| self.addr(*id)).collect();
        Process::new(env!("CARGO_BIN_EXE_invctl"))
            .args(args)
            .arg("--nodes")
            .arg(nodes.join(","))
            .output()
            .expect("run invctl")
    }

    pub fn client(&self) -> Client {
        Client::new(self.addrs(), Duration::from_secs(15))
    }

    /// kill -9: no chance to flush anything.
    pub fn kill(&mut self, id: u64) {
        self.nodes.kill(id);
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self, id: u64) {
        self.nodes.stop(id, STOP_GRACE);
    }

    /// SIGSTOP: the process keeps its sockets (the kernel still accepts connections) but
    /// answers nothing, like a hung node.
    pub fn pause(&self, id: u64) {
        assert!(self.nodes.signal(id, Signal::Stop), "SIGSTOP node {id}");
    }

    pub fn resume(&self, id: u64) {
        assert!(self.nodes.signal(id, Signal::Cont), "SIGCONT node {id}");
    }

    pub fn restart(&mut self, id: u64) {
        self.nodes.start(id).expect("restart the node");
    }

    pub fn stop_all(&mut self) {
        for id in self.ids() {
            self.stop(id);
        }
    }

    /// The id of a leader that the live nodes agree on.
    pub async fn leader(&self, live: &[u64]) -> u64 {
        self.nodes
            .agreed_leader(&Dialer::Plain, live, PATIENCE)
            .await
            .unwrap_or_else(|e| panic!("{e}; logs in {}", self.dir.path().display()))
    }

    /// Waits until every node in `ids` has applied at least `index`.
    pub async fn wait_applied(&self, ids: &[u64], index: u64) {
        let applied = self
            .nodes
            .wait_applied(&Dialer::Plain, ids, index, PATIENCE);
        applied.await.unwrap();
    }

    /// Waits until nodes `ids` stand at one applied index, at least `index`, and checks that
    /// their states' digests agree there. Nodes also propose on their own (expiry sweeps), so
    /// it asks again until the indexes match.
    pub async fn assert_same_state(&self, ids: &[u64], index: u64) {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let mut digests = Vec::new();
            for id in ids {
                let mut admin = AdminClient::connect(format!("http://{}", self.addr(*id)))
                    .await
                    .unwrap();
                let reply = admin.state_digest(StateDigestRequest {}).await.unwrap();
                let reply = reply.into_inner();
                digests.push((*id, reply.applied_index, reply.digest));
            }
            let (_, first_index, first_digest) = digests[0];
            if first_index >= index && digests.iter().all(|d| d.1 == first_index) {
                assert!(
                    digests.iter().all(|d| d.2 == first_digest),
                    "the states differ at index {first_index}: {digests:?}"
                );
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the nodes never stood at one index from {index} on: {digests:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens a stopped node's data dir and reads its state directly.
    pub fn inspect(&self, id: u64) -> (sled::Db, Store) {
        let db = sled::open(self.config(id).data_dir.join("db")).unwrap();
        let store = Store::open(&db).unwrap();
        (db, store)
    }
}

pub fn create(sku: &str, stock: u64) -> Command {
    Command::CreateSku {
        sku: SkuId::new(sku).unwrap(),
        stock,
        per_user_limit: None,
        sale_window: None,
        request_tag: 0,
    }
}

pub fn order(id: &str, user: &str, sku: &str, qty: u64) -> Command {
    Command::PlaceOrder {
        order_id: OrderId::new(id).unwrap(),
        user_id: UserId::new(user).unwrap(),
        items: Items::new(vec![Item {
            sku: SkuId::new(sku).unwrap(),
            qty: Qty::new(qty).unwrap(),
        }])
        .unwrap(),
        ttl_ms: 86_400_000,
        request_tag: 0,
    }
}
