//! A cluster's node processes on this machine: their configs (written where [`Layout`] says
//! before every start), one [`Process`] slot per node, and the operations the demo, the tests
//! and the chaos harness do to one node: start, SIGKILL, SIGTERM, signal, restart, wait.

use super::probe;
use super::process::{Process, Signal, Spawn};
use crate::mtls::Dialer;
use crate::NodeConfig;
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// Where a node's config and log are under the launcher's dir.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `node{id}.toml` and `node{id}.log` side by side (the demo and the tests).
    Flat,
    /// `n{id}/node.toml` and `n{id}/node.log`: the chaos harness keeps a gateway's and a
    /// proxy's files beside them.
    PerNode,
}

/// The node processes of one cluster. Dropping it SIGKILLs every one still running.
pub struct Nodes {
    pub dir: PathBuf,
    pub configs: Vec<NodeConfig>,
    binary: PathBuf,
    spawn: Spawn,
    layout: Layout,
    /// Programs one node runs under besides `spawn.prefix`: the chaos harness's namespace.
    node_prefix: fn(u64) -> Vec<OsString>,
    procs: Vec<Option<Process>>,
}

impl Nodes {
    /// Nothing started yet.
    pub fn new(
        dir: &Path,
        configs: Vec<NodeConfig>,
        binary: PathBuf,
        spawn: Spawn,
        layout: Layout,
    ) -> Nodes {
        Nodes {
            dir: dir.to_path_buf(),
            procs: configs.iter().map(|_| None).collect(),
            configs,
            binary,
            spawn,
            layout,
            node_prefix: |_| Vec::new(),
        }
    }

    /// Runs node `id` under `prefix(id)`, e.g. `ip netns exec` its namespace.
    pub fn with_node_prefix(mut self, prefix: fn(u64) -> Vec<OsString>) -> Nodes {
        self.node_prefix = prefix;
        self
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

    pub fn config(&self, id: u64) -> &NodeConfig {
        &self.configs[self.index(id)]
    }

    /// Takes effect at the node's next start.
    pub fn config_mut(&mut self, id: u64) -> &mut NodeConfig {
        let i = self.index(id);
        &mut self.configs[i]
    }

    pub fn config_path(&self, id: u64) -> PathBuf {
        match self.layout {
            Layout::Flat => self.dir.join(format!("node{id}.toml")),
            Layout::PerNode => self.dir.join(format!("n{id}")).join("node.toml"),
        }
    }

    pub fn log_path(&self, id: u64) -> PathBuf {
        match self.layout {
            Layout::Flat => self.dir.join(format!("node{id}.log")),
            Layout::PerNode => self.dir.join(format!("n{id}")).join("node.log"),
        }
    }

    /// What node `id` logged (since its last start, under `LogMode::Fresh`).
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.log_path(id)).unwrap_or_default()
    }

    pub fn write_config(&self, id: u64) -> anyhow::Result<()> {
        let path = self.config_path(id);
        std::fs::write(&path, self.config(id).to_toml_string())
            .with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn write_configs(&self) -> anyhow::Result<()> {
        self.ids()
            .into_iter()
            .try_for_each(|id| self.write_config(id))
    }

    /// Writes node `id`'s config and starts it.
    pub fn start(&mut self, id: u64) -> anyhow::Result<()> {
        let i = self.index(id);
        if self.procs[i].is_some() {
            bail!("node {id} is already running");
        }
        self.write_config(id)?;
        let mut spawn = self.spawn.clone();
        spawn.prefix.extend((self.node_prefix)(id));
        let config = self.config_path(id);
        let process = spawn.start(
            &self.binary,
            [OsString::from("--config"), config.into_os_string()],
            &self.log_path(id),
        )?;
        self.procs[i] = Some(process);
        Ok(())
    }

    pub fn start_all(&mut self) -> anyhow::Result<()> {
        self.ids().into_iter().try_for_each(|id| self.start(id))
    }

    /// Starts node `id` unless it is running.
    pub fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        if self.is_running(id) {
            return Ok(());
        }
        self.start(id)
    }

    /// One more node's config (not started); its id.
    pub fn add(&mut self, config: NodeConfig) -> u64 {
        let id = config.id;
        assert!(
            !self.configs.iter().any(|c| c.id == id),
            "node {id} is already in this cluster"
        );
        self.configs.push(config);
        self.procs.push(None);
        id
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.procs[self.index(id)].is_some()
    }

    pub fn pid(&self, id: u64) -> Option<u32> {
        self.procs[self.index(id)].as_ref().map(Process::pid)
    }

    /// False when node `id` is not running or is gone.
    pub fn signal(&self, id: u64, signal: Signal) -> bool {
        self.procs[self.index(id)]
            .as_ref()
            .is_some_and(|p| p.signal(signal))
    }

    /// SIGKILL and reap; its pid if it was running.
    pub fn kill(&mut self, id: u64) -> Option<u32> {
        let i = self.index(id);
        let process = self.procs[i].take()?;
        let pid = process.pid();
        process.kill();
        Some(pid)
    }

    /// SIGTERM, and SIGKILL after `grace` if it has not exited by then.
    pub fn stop(&mut self, id: u64, grace: Duration) {
        let i = self.index(id);
        if let Some(process) = self.procs[i].take() {
            process.terminate(grace);
        }
    }

    /// SIGTERM to every node at once, then as [`Nodes::stop`] for each.
    pub fn stop_all(&mut self, grace: Duration) {
        for process in self.procs.iter().flatten() {
            process.signal(Signal::Term);
        }
        for id in self.ids() {
            self.stop(id, grace);
        }
    }

    pub fn kill_all(&mut self) {
        for id in self.ids() {
            self.kill(id);
        }
    }

    /// Node `id`'s exit status if it has exited by itself; it is then no longer running.
    pub fn exited(&mut self, id: u64) -> Option<(u32, ExitStatus)> {
        let i = self.index(id);
        let process = self.procs[i].as_mut()?;
        let status = process.try_wait().ok()??;
        let pid = process.pid();
        self.procs[i] = None;
        Some((pid, status))
    }

    /// Waits up to `timeout` for node `id` to exit by itself.
    pub fn wait_exit(&mut self, id: u64, timeout: Duration) -> Option<ExitStatus> {
        let i = self.index(id);
        let status = self.procs[i].as_mut()?.wait_timeout(timeout)?;
        self.procs[i] = None;
        Some(status)
    }

    /// Which node that should be running has exited, if any, without reaping it.
    pub fn first_dead(&self) -> Option<u64> {
        self.configs
            .iter()
            .zip(&self.procs)
            .find(|(_, p)| p.as_ref().is_some_and(|p| !p.is_alive()))
            .map(|(c, _)| c.id)
    }

    /// Blocks until node `id` accepts TCP connections: a fresh process needs a moment to open
    /// its store and bind.
    pub fn wait_listening(&self, id: u64, timeout: Duration) -> anyhow::Result<()> {
        let addr = self.config(id).listen;
        let deadline = Instant::now() + timeout;
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() >= deadline {
                bail!("node {id} did not listen on {addr} within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Deletes node `id`'s data dir (stop it first).
    pub fn wipe(&self, id: u64) -> std::io::Result<()> {
        std::fs::remove_dir_all(&self.config(id).data_dir)
    }

    /// The nodes' gRPC addresses as peers and gateways dial them.
    pub fn addrs(&self) -> Vec<String> {
        self.configs.iter().map(|c| c.advertise.clone()).collect()
    }

    pub fn addr(&self, id: u64) -> String {
        self.config(id).advertise.clone()
    }

    fn members(&self, ids: &[u64]) -> Vec<(u64, String)> {
        ids.iter().map(|&id| (id, self.addr(id))).collect()
    }

    /// The leader every node in `live` names, within `patience`.
    pub async fn agreed_leader(
        &self,
        dialer: &Dialer,
        live: &[u64],
        patience: Duration,
    ) -> anyhow::Result<u64> {
        probe::agreed_leader(dialer, &self.members(live), patience).await
    }

    /// Waits until every node in `ids` has applied at least `index`.
    pub async fn wait_applied(
        &self,
        dialer: &Dialer,
        ids: &[u64],
        index: u64,
        patience: Duration,
    ) -> anyhow::Result<()> {
        probe::wait_applied(dialer, &self.members(ids), index, patience).await
    }
}

/// `n` distinct loopback ports free right now (held together while they are chosen, released
/// before the nodes bind them).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("a bound listener's address").port())
        .collect()
}

/// Configs of `n` nodes on free loopback ports under `dir` with the tests' fast timings
/// (heartbeat 50 ms, election 300–600 ms), each `tweak`ed and then validated.
pub fn loopback_test_configs(
    n: usize,
    dir: &Path,
    tweak: impl Fn(&mut NodeConfig),
) -> Result<Vec<NodeConfig>, crate::ConfigError> {
    let ports = free_ports(n);
    // `local_cluster` lays out ids and data dirs; its ports are replaced by the free ones.
    let mut configs = crate::local_cluster(n, 20_000, dir);
    let members: BTreeMap<u64, String> = configs
        .iter()
        .zip(&ports)
        .map(|(c, p)| (c.id, format!("127.0.0.1:{p}")))
        .collect();
    for (c, p) in configs.iter_mut().zip(&ports) {
        c.listen = ([127, 0, 0, 1], *p).into();
        c.advertise = format!("127.0.0.1:{p}");
        c.initial_members = members.clone();
        c.raft.heartbeat_ms = 50;
        c.raft.election_timeout_min_ms = 300;
        c.raft.election_timeout_max_ms = 600;
        tweak(c);
        c.validate()?;
    }
    Ok(configs)
}
