//! A local cluster of real node processes for the integration tests: free loopback ports,
//! one data dir each, kill -9 / SIGTERM / restart, and offline inspection of each node's
//! state after it stopped.
#![allow(dead_code)]

use cluster_config::NodeConfig;
use node::client::{status, Client};
use state_machine::{Command, Item, Items, OrderId, Qty, SkuId, Store, UserId};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub configs: Vec<NodeConfig>,
    procs: Vec<Option<Child>>,
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
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
        for id in 1..=self.configs.len() as u64 {
            self.spawn(id);
        }
    }

    /// Where node `id`'s config is written as TOML (before it starts, by `configure`).
    pub fn config_path(&self, id: u64) -> std::path::PathBuf {
        self.dir.path().join(format!("node{id}.toml"))
    }

    /// `n` node configs (fast test timings, `tweak`ed), written to `config_path`, no node
    /// started yet.
    pub fn configure(n: usize, tweak: impl Fn(&mut NodeConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ports = free_ports(n);
        let mut configs = cluster_config::local_cluster(n, 20_000, dir.path());
        let members: std::collections::BTreeMap<u64, String> = configs
            .iter()
            .zip(&ports)
            .map(|(c, p)| (c.id, format!("127.0.0.1:{p}")))
            .collect();
        for (c, p) in configs.iter_mut().zip(&ports) {
            c.listen = format!("127.0.0.1:{p}").parse().unwrap();
            c.advertise = format!("127.0.0.1:{p}");
            c.initial_members = members.clone();
            c.raft.heartbeat_ms = 50;
            c.raft.election_timeout_min_ms = 300;
            c.raft.election_timeout_max_ms = 600;
            tweak(c);
            c.validate().unwrap();
        }
        let cluster = Self {
            dir,
            procs: configs.iter().map(|_| None).collect(),
            configs,
        };
        for id in 1..=n as u64 {
            cluster.write_config(id);
        }
        cluster
    }

    fn write_config(&self, id: u64) {
        let toml = self.configs[id as usize - 1].to_toml_string();
        std::fs::write(self.config_path(id), toml).unwrap();
    }

    fn spawn(&mut self, id: u64) {
        let i = id as usize - 1;
        self.write_config(id);
        let path = self.config_path(id);
        let log = std::fs::File::create(self.dir.path().join(format!("node{id}.log"))).unwrap();
        let child = Process::new(env!("CARGO_BIN_EXE_flashstock-node"))
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start node");
        self.procs[i] = Some(child);
    }

    /// Starts one more node (id = next) with no initial members: it waits to be added.
    pub fn spawn_extra(&mut self, tweak: impl Fn(&mut NodeConfig)) -> u64 {
        let id = self.configs.len() as u64 + 1;
        let port = free_ports(1)[0];
        let mut c = self.configs[0].clone();
        c.id = id;
        c.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.advertise = format!("127.0.0.1:{port}");
        c.data_dir = self.dir.path().join(format!("node{id}"));
        c.initial_members.clear();
        tweak(&mut c);
        c.validate().unwrap();
        self.configs.push(c);
        self.procs.push(None);
        self.spawn(id);
        self.wait_listening(id);
        id
    }

    /// Blocks until node `id` accepts TCP connections: a fresh process needs a moment to
    /// open sled and bind, and `add-node` rightly refuses an address nobody answers at.
    pub fn wait_listening(&self, id: u64) {
        let addr = self.configs[id as usize - 1].listen;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "node {id} never listened on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Deletes a stopped node's data dir.
    pub fn wipe(&self, id: u64) {
        let _ = std::fs::remove_dir_all(&self.configs[id as usize - 1].data_dir);
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

    pub fn addrs(&self) -> Vec<String> {
        self.configs.iter().map(|c| c.advertise.clone()).collect()
    }

    pub fn client(&self) -> Client {
        Client::new(self.addrs(), Duration::from_secs(15))
    }

    pub fn addr(&self, id: u64) -> String {
        self.configs[id as usize - 1].advertise.clone()
    }

    /// kill -9: no chance to flush anything.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.procs[id as usize - 1].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self, id: u64) {
        if let Some(mut child) = self.procs[id as usize - 1].take() {
            let _ = Process::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the process keeps its sockets (the kernel still accepts connections) but
    /// answers nothing, like a hung node.
    pub fn pause(&self, id: u64) {
        self.signal(id, "-STOP");
    }

    pub fn resume(&self, id: u64) {
        self.signal(id, "-CONT");
    }

    fn signal(&self, id: u64, signal: &str) {
        let child = self.procs[id as usize - 1]
            .as_ref()
            .expect("node is running");
        let status = Process::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} node {id}");
    }

    /// Waits up to `timeout` for node `id` to exit on its own; its exit status if it did.
    pub fn wait_exit(&mut self, id: u64, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.procs[id as usize - 1].as_mut()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.procs[id as usize - 1] = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// What node `id` logged since it was last started.
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node{id}.log"))).unwrap_or_default()
    }

    pub fn restart(&mut self, id: u64) {
        self.spawn(id);
    }

    pub fn stop_all(&mut self) {
        for id in 1..=self.configs.len() as u64 {
            self.stop(id);
        }
    }

    /// The id of a leader that the live nodes agree on.
    pub async fn leader(&self, live: &[u64]) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let mut leaders = Vec::new();
            for id in live {
                if let Ok(s) = status(&self.addr(*id), Duration::from_millis(300)).await {
                    leaders.push((s.role == "leader").then_some(s.node_id).or(s.leader_id));
                }
            }
            if leaders.len() == live.len() {
                if let Some(Some(l)) = leaders.first() {
                    if leaders.iter().all(|x| *x == Some(*l)) && live.contains(l) {
                        return *l;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no agreed leader among {live:?}; logs in {}",
            self.dir.path().display()
        );
    }

    /// Waits until every node in `ids` has applied at least `index`.
    pub async fn wait_applied(&self, ids: &[u64], index: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for id in ids {
            loop {
                if let Ok(s) = status(&self.addr(*id), Duration::from_millis(300)).await {
                    if s.last_applied >= index {
                        break;
                    }
                }
                assert!(Instant::now() < deadline, "node {id} never applied {index}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Opens a stopped node's data dir and reads its state directly.
    pub fn inspect(&self, id: u64) -> (sled::Db, Store) {
        let db = sled::open(self.configs[id as usize - 1].data_dir.join("db")).unwrap();
        let store = Store::open(&db).unwrap();
        (db, store)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in self.procs.iter_mut().flatten() {
            let _ = p.kill();
            let _ = p.wait();
        }
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
