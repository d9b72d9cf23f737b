//! The processes of one run: per node, the `node` binary, its gateway, and (for runs with the
//! `delay` fault) its delay proxy, all inside the node's namespace, started by the workspace's
//! one launcher (`cluster_config::launch`) under `ip netns exec`. Configs are written with
//! the `cluster-config` schema the binaries read. The harness asks each node's admin `Status`
//! directly (role, term, leader, last_applied) over the bridge.
//!
//! Ports inside namespace I (address 10.77.0.I): node gRPC 7000 (bound on 0.0.0.0), proxy
//! 7001 (advertised instead of 7000 when present), gateway HTTP 8080.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::ChildStdin;
use std::time::Duration;

use anyhow::{bail, Context};
use cluster_config::launch::{
    probe, ClusterCerts, Layout, Lifetime, LogMode, Nodes, Process, Signal, Spawn,
};
use cluster_config::mtls::Dialer;
use cluster_config::{ClockSettings, GatewayConfig, NodeConfig, RaftTiming, TlsSettings};
use proto::admin::admin_client::AdminClient;
use proto::admin::{StateDigestReply, StateDigestRequest, StatusReply};
use std::sync::RwLock;
use tokio::time::Instant;

use crate::http::HttpConn;
use crate::proxy::Control;
use crate::topology::{self, node_ip, ns_name, Topology};

pub const NODE_PORT: u16 = 7000;
pub const PROXY_PORT: u16 = 7001;
pub const GATEWAY_PORT: u16 = 8080;
/// How long one admin `Status` call may take (a paused node never answers).
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);

/// The harness's admin identity for the cluster running now (one at a time; each run makes
/// its own CA). The status and digest calls are free functions used across the harness.
static ADMIN_DIALER: RwLock<Option<Dialer>> = RwLock::new(None);

fn admin_dialer() -> Dialer {
    ADMIN_DIALER
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_default()
}

/// A CA for this run in `dir/certs`, a certificate per node, one for all gateways and one
/// for the harness's own admin calls, which from now on dial with it.
fn make_certs(dir: &Path, nodes: u32) -> anyhow::Result<ClusterCerts> {
    let nodes: Vec<(u64, Vec<String>)> = (1..=nodes)
        .map(|id| (u64::from(id), vec![node_ip(id).to_string()]))
        .collect();
    let lifetime = Lifetime {
        ca_days: 2,
        leaf_days: 2,
    };
    let certs = ClusterCerts::issue(dir, lifetime, &nodes, &[], "jepsen")?;
    cluster_config::mtls::provider::install_tls13_only();
    *ADMIN_DIALER.write().unwrap_or_else(|p| p.into_inner()) = Some(certs.admin_dialer()?);
    Ok(certs)
}

/// What the cluster is built from.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub nodes: u32,
    pub node_bin: PathBuf,
    pub gateway_bin: PathBuf,
    /// The `jepsen` binary, run as `jepsen proxy`; `None`: no delay proxies.
    pub proxy_bin: Option<PathBuf>,
    pub dir: PathBuf,
    pub request_deadline_ms: u64,
    pub raft: RaftTiming,
    /// Nodes run in the test mode where a restart loses the Raft log's unsynced tail.
    pub lose_unsynced_on_restart: bool,
}

/// A gateway or proxy process (the nodes are in [`Nodes`]).
struct Proc {
    process: Process,
    /// Its exit was already reported as a crash: not again.
    expected_exit: bool,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// Per node, what runs beside it in its namespace.
struct NodeProcs {
    id: u32,
    gateway: Option<Proc>,
    proxy: Option<(Proc, ChildStdin)>,
    paused: bool,
}

/// A process that exited without being told to.
#[derive(Clone, Debug)]
pub struct Crash {
    pub what: String,
    pub status: String,
    pub log: PathBuf,
}

/// The running cluster. Dropping it kills everything (through the topology).
pub struct Cluster {
    pub spec: ClusterSpec,
    pub topology: Topology,
    certs: ClusterCerts,
    /// The node processes; a node killed by the nemesis is taken out, so one that exits while
    /// in here crashed.
    nodes: Nodes,
    procs: Vec<NodeProcs>,
    pub crashes: Vec<Crash>,
    /// The nodes running with a skewed wall clock (`[clock] test_offset_ms`), and by how much.
    clock_offsets_ms: BTreeMap<u32, i64>,
    /// Nodes whose data dir was wiped: from then on their config has no `initial_members`,
    /// as a node joining a running cluster must (README, "Recovering a wiped node").
    joiners: BTreeSet<u32>,
}

impl Cluster {
    /// Creates the namespaces, writes configs and starts every process.
    pub fn start(spec: ClusterSpec) -> anyhow::Result<Cluster> {
        let topology = Topology::create(spec.nodes)?;
        let certs = make_certs(&spec.dir, spec.nodes).context("certificates")?;
        let configs = (1..=spec.nodes)
            .map(|id| node_config(&spec, &certs, id, false, 0))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut node_spawn = Spawn {
            log: LogMode::Appended,
            die_with_parent: true,
            ..Spawn::default()
        }
        .env("RUST_LOG", cluster_config::logging::NODE_DEFAULT_FILTER);
        if spec.lose_unsynced_on_restart {
            // node::server::LOSE_UNSYNCED_ENV (the harness drives binaries, not the crate).
            node_spawn = node_spawn.env("FLASHSTOCK_TEST_LOSE_UNSYNCED", "1");
        }
        let nodes = Nodes::new(
            &spec.dir,
            configs,
            spec.node_bin.clone(),
            node_spawn,
            Layout::PerNode,
        )
        .with_node_prefix(|id| topology::ns_prefix(&ns_name(id as u32)));
        let mut cluster = Cluster {
            certs,
            nodes,
            procs: (1..=spec.nodes)
                .map(|id| NodeProcs {
                    id,
                    gateway: None,
                    proxy: None,
                    paused: false,
                })
                .collect(),
            spec,
            topology,
            crashes: Vec::new(),
            clock_offsets_ms: BTreeMap::new(),
            joiners: BTreeSet::new(),
        };
        for id in 1..=cluster.spec.nodes {
            std::fs::create_dir_all(cluster.node_dir(id).join("data"))?;
            cluster.write_configs(id)?;
        }
        for id in 1..=cluster.spec.nodes {
            if cluster.spec.proxy_bin.is_some() {
                cluster.start_proxy(id)?;
            }
            cluster.start_node(id)?;
            cluster.start_gateway(id)?;
        }
        Ok(cluster)
    }

    pub fn ids(&self) -> Vec<u32> {
        (1..=self.spec.nodes).collect()
    }

    pub fn node_dir(&self, id: u32) -> PathBuf {
        self.spec.dir.join(format!("n{id}"))
    }

    /// The node's gRPC address, bypassing any proxy (admin status).
    pub fn node_addr(id: u32) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(node_ip(id), NODE_PORT))
    }

    /// What peers and gateways dial.
    pub fn advertise(&self, id: u32) -> String {
        advertise(&self.spec, id)
    }

    pub fn gateway_addr(id: u32) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(node_ip(id), GATEWAY_PORT))
    }

    fn write_configs(&self, id: u32) -> anyhow::Result<()> {
        self.nodes.write_config(u64::from(id))?;
        // The local node first: with no leader known the gateway starts there.
        let mut nodes = vec![self.advertise(id)];
        nodes.extend(
            self.ids()
                .into_iter()
                .filter(|&m| m != id)
                .map(|m| self.advertise(m)),
        );
        let mut gateway = GatewayConfig::with_nodes(nodes);
        gateway.listen = Self::gateway_addr(id);
        gateway.request_deadline_ms = self.spec.request_deadline_ms;
        gateway.tls = TlsSettings::files(self.certs.gateway.clone());
        gateway.validate().context("gateway config")?;
        std::fs::write(
            self.node_dir(id).join("gateway.toml"),
            gateway.to_toml_string(),
        )?;
        Ok(())
    }

    /// Rewrites node `id`'s config from the harness's state (clock skew, joiner).
    fn write_node_config(&mut self, id: u32) -> anyhow::Result<()> {
        let joiner = self.joiners.contains(&id);
        let offset_ms = self.clock_offsets_ms.get(&id).copied().unwrap_or(0);
        let config = node_config(&self.spec, &self.certs, id, joiner, offset_ms)?;
        *self.nodes.config_mut(u64::from(id)) = config;
        self.nodes.write_config(u64::from(id))
    }

    fn procs(&mut self, id: u32) -> &mut NodeProcs {
        &mut self.procs[(id - 1) as usize]
    }

    /// How a gateway or proxy starts inside node `id`'s namespace.
    fn spawn_in_ns(id: u32) -> Spawn {
        Spawn {
            prefix: topology::ns_prefix(&ns_name(id)),
            log: LogMode::Appended,
            die_with_parent: true,
            ..Spawn::default()
        }
    }

    fn start_node(&mut self, id: u32) -> anyhow::Result<()> {
        self.nodes.start(u64::from(id))?;
        if let Some(pid) = self.nodes.pid(u64::from(id)) {
            topology::register_pid(pid);
        }
        self.procs(id).paused = false;
        Ok(())
    }

    fn start_gateway(&mut self, id: u32) -> anyhow::Result<()> {
        let dir = self.node_dir(id);
        let process = Self::spawn_in_ns(id)
            .env("RUST_LOG", cluster_config::logging::GATEWAY_DEFAULT_FILTER)
            .start(
                &self.spec.gateway_bin,
                ["--config".into(), dir.join("gateway.toml").into_os_string()],
                &dir.join("gateway.log"),
            )?;
        topology::register_pid(process.pid());
        self.procs(id).gateway = Some(Proc {
            process,
            expected_exit: false,
        });
        Ok(())
    }

    fn start_proxy(&mut self, id: u32) -> anyhow::Result<()> {
        let bin = self.spec.proxy_bin.clone().expect("proxies enabled");
        let dir = self.node_dir(id);
        let spawn = Spawn {
            piped_stdin: true,
            ..Self::spawn_in_ns(id)
        };
        let mut process = spawn.start(
            &bin,
            [
                "proxy".into(),
                "--listen".into(),
                format!("{}:{PROXY_PORT}", node_ip(id)),
                "--upstream".into(),
                format!("127.0.0.1:{NODE_PORT}"),
            ],
            &dir.join("proxy.log"),
        )?;
        topology::register_pid(process.pid());
        let stdin = process.take_stdin().context("proxy stdin")?;
        self.procs(id).proxy = Some((
            Proc {
                process,
                expected_exit: false,
            },
            stdin,
        ));
        Ok(())
    }

    pub fn has_proxies(&self) -> bool {
        self.spec.proxy_bin.is_some()
    }

    /// Sets every proxy's delay (`None`: clear).
    pub fn set_delay(&mut self, delay: Option<(u64, u64)>) -> anyhow::Result<()> {
        use std::io::Write;
        let control = match delay {
            Some((ms, jitter_ms)) => Control::Delay { ms, jitter_ms },
            None => Control::Clear,
        };
        for procs in &mut self.procs {
            if let Some((_, stdin)) = &mut procs.proxy {
                stdin.write_all(control.line().as_bytes())?;
                stdin.flush()?;
            }
        }
        Ok(())
    }

    /// SIGKILL the node process and reap it.
    pub fn kill(&mut self, id: u32) {
        if let Some(pid) = self.nodes.kill(u64::from(id)) {
            topology::unregister_pid(pid);
        }
        self.procs(id).paused = false;
    }

    pub fn is_running(&mut self, id: u32) -> bool {
        self.nodes.is_running(u64::from(id))
    }

    /// Restarts a killed node on its data dir.
    pub fn restart(&mut self, id: u32) -> anyhow::Result<()> {
        if self.is_running(id) {
            return Ok(());
        }
        self.start_node(id)
    }

    /// SIGKILLs the node and starts it again at once on its data dir, its wall clock skewed
    /// by `offset_ms` (0: the machine's clock). At once, so that a leader is back before its
    /// followers' election timeout and resumes leading (openraft restores a leader whose
    /// vote was committed): only the clock monitor should then take leadership from it.
    pub fn restart_with_clock_offset(&mut self, id: u32, offset_ms: i64) -> anyhow::Result<()> {
        if offset_ms == 0 {
            self.clock_offsets_ms.remove(&id);
        } else {
            self.clock_offsets_ms.insert(id, offset_ms);
        }
        self.write_node_config(id)?;
        self.kill(id);
        self.start_node(id)
    }

    /// SIGKILLs the node, empties its data dir and starts it again as a joiner (no
    /// `initial_members`): it knows no cluster and votes for no one until a leader adds it
    /// and replicates to it. Take it out of the membership first.
    pub fn restart_wiped(&mut self, id: u32) -> anyhow::Result<()> {
        self.kill(id);
        let data = self.node_dir(id).join("data");
        std::fs::remove_dir_all(&data)
            .with_context(|| format!("cannot wipe {}", data.display()))?;
        std::fs::create_dir_all(&data)?;
        self.joiners.insert(id);
        self.write_node_config(id)?;
        self.start_node(id)
    }

    /// The nodes running with a skewed clock.
    pub fn skewed(&self) -> Vec<u32> {
        self.clock_offsets_ms.keys().copied().collect()
    }

    pub fn pause(&mut self, id: u32) {
        if self.nodes.signal(u64::from(id), Signal::Stop) {
            self.procs(id).paused = true;
        }
    }

    pub fn resume(&mut self, id: u32) {
        self.nodes.signal(u64::from(id), Signal::Cont);
        self.procs(id).paused = false;
    }

    /// Records processes that exited on their own since the last call.
    pub fn check_crashes(&mut self) -> Vec<Crash> {
        let dir = self.spec.dir.clone();
        let mut found = Vec::new();
        for procs in &mut self.procs {
            let id = procs.id;
            if let Some((pid, status)) = self.nodes.exited(u64::from(id)) {
                // A crashed node is gone: the nemesis restarts it like a killed one.
                topology::unregister_pid(pid);
                found.push(Crash {
                    what: format!("node n{id}"),
                    status: status.to_string(),
                    log: self.nodes.log_path(u64::from(id)),
                });
            }
            let slots: [(&str, Option<&mut Proc>); 2] = [
                ("gateway", procs.gateway.as_mut()),
                ("proxy", procs.proxy.as_mut().map(|(p, _)| p)),
            ];
            for (what, proc) in slots {
                let Some(proc) = proc else { continue };
                if proc.expected_exit {
                    continue;
                }
                if let Ok(Some(status)) = proc.process.try_wait() {
                    proc.expected_exit = true;
                    topology::unregister_pid(proc.pid());
                    found.push(Crash {
                        what: format!("{what} n{id}"),
                        status: status.to_string(),
                        log: dir.join(format!("n{id}")).join(format!("{what}.log")),
                    });
                }
            }
        }
        self.crashes.extend(found.iter().cloned());
        found
    }

    /// Kills every process (SIGCONT first for paused ones) and reaps them.
    pub fn stop_all(&mut self) {
        for procs in &mut self.procs {
            let id = u64::from(procs.id);
            if let Some(gateway) = procs.gateway.take() {
                Self::kill_proc(gateway);
            }
            // SIGKILL ends a stopped process too; SIGCONT first costs nothing.
            self.nodes.signal(id, Signal::Cont);
            if let Some(pid) = self.nodes.kill(id) {
                topology::unregister_pid(pid);
            }
            if let Some((proxy, stdin)) = procs.proxy.take() {
                drop(stdin);
                Self::kill_proc(proxy);
            }
            procs.paused = false;
        }
    }

    fn kill_proc(proc: Proc) {
        let pid = proc.pid();
        proc.process.signal(Signal::Cont);
        proc.process.kill();
        topology::unregister_pid(pid);
    }

    /// An admin client of one node, or `None` if it cannot be reached in time.
    async fn admin(id: u32) -> Option<AdminClient<tonic::transport::Channel>> {
        let channel = admin_dialer()
            .endpoint(&Self::node_addr(id).to_string())
            .ok()?
            .connect_timeout(STATUS_TIMEOUT)
            .connect()
            .await
            .ok()?;
        Some(AdminClient::new(channel))
    }

    /// The admin status of one node, or `None` if it does not answer in time.
    pub async fn status(id: u32) -> Option<StatusReply> {
        let addr = Self::node_addr(id).to_string();
        probe::status(&admin_dialer(), &addr, STATUS_TIMEOUT)
            .await
            .ok()
    }

    /// A digest of the node's whole applied state, or `None` if it does not answer.
    pub async fn state_digest(id: u32) -> Option<StateDigestReply> {
        let fetch = async {
            let mut admin = Self::admin(id).await?;
            admin.state_digest(StateDigestRequest {}).await.ok()
        };
        // Walking a large state takes a while: more time than a status.
        tokio::time::timeout(STATUS_TIMEOUT * 20, fetch)
            .await
            .ok()
            .flatten()
            .map(|r| r.into_inner())
    }

    /// Every node's status, polled concurrently.
    pub async fn statuses(&self) -> Vec<(u32, Option<StatusReply>)> {
        let mut set = tokio::task::JoinSet::new();
        for id in self.ids() {
            set.spawn(async move { (id, Cluster::status(id).await) });
        }
        let mut all = Vec::new();
        while let Some(result) = set.join_next().await {
            if let Ok(pair) = result {
                all.push(pair);
            }
        }
        all.sort_by_key(|(id, _)| *id);
        all
    }

    /// Runs a membership change on the leader, asking again (a new leader, a change still
    /// in progress, a learner still catching up) until it succeeds or `timeout` passes.
    pub async fn change_membership(
        &self,
        change: MembershipChange,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no leader answered");
        while Instant::now() < deadline {
            if let Some(leader) = self.leader().await {
                match self.try_change(leader, change).await {
                    Ok(Some(ok)) => return Ok(ok),
                    Ok(None) => last = format!("n{leader} is no longer the leader"),
                    Err(e) => last = format!("n{leader}: {e}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("{change:?} did not succeed within {timeout:?}: {last}")
    }

    /// One attempt: `Ok(None)` when the node is not the leader.
    async fn try_change(
        &self,
        leader: u32,
        change: MembershipChange,
    ) -> anyhow::Result<Option<String>> {
        use proto::admin::admin_reply::Result as Reply;
        use proto::admin::change_membership_request::Change;
        use proto::admin::{AddLearnerRequest, ChangeMembershipRequest, NodeIds};
        let mut admin = Self::admin(leader)
            .await
            .context("cannot reach the leader's admin service")?;
        let ids = |id: u32| NodeIds {
            ids: vec![u64::from(id)],
        };
        let reply = match change {
            MembershipChange::Remove(id) => {
                admin
                    .change_membership(ChangeMembershipRequest {
                        change: Some(Change::RemoveNodes(ids(id))),
                    })
                    .await
            }
            MembershipChange::AddLearner(id) => {
                admin
                    .add_learner(AddLearnerRequest {
                        id: u64::from(id),
                        addr: self.advertise(id),
                        blocking: true,
                    })
                    .await
            }
            MembershipChange::Promote(id) => {
                admin
                    .change_membership(ChangeMembershipRequest {
                        change: Some(Change::AddVoters(ids(id))),
                    })
                    .await
            }
        }?
        .into_inner();
        match reply.result {
            Some(Reply::Ok(ok)) => Ok(Some(ok)),
            Some(Reply::NotLeader(_)) => Ok(None),
            Some(Reply::Error(e)) => bail!("{e}"),
            None => bail!("an empty admin reply"),
        }
    }

    /// The node that reports itself leader with the highest term, if any answers.
    pub async fn leader(&self) -> Option<u32> {
        leader_of(&self.statuses().await)
    }

    /// Waits until every gateway answers `/readyz` 200 and a leader has applied something.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<u32> {
        let deadline = Instant::now() + timeout;
        let mut conns: Vec<HttpConn> = self
            .ids()
            .into_iter()
            .map(|id| HttpConn::new(Self::gateway_addr(id)))
            .collect();
        loop {
            let crashed = self.check_crashes();
            if let Some(crash) = crashed.first() {
                bail!(
                    "{} exited ({}) during start-up; see {}",
                    crash.what,
                    crash.status,
                    crash.log.display()
                );
            }
            let statuses = self.statuses().await;
            let leader = leader_of(&statuses).filter(|&l| {
                statuses
                    .iter()
                    .any(|(id, s)| *id == l && s.as_ref().is_some_and(|s| s.last_applied > 0))
            });
            if let Some(leader) = leader {
                let mut ready = true;
                for conn in &mut conns {
                    let ok = conn
                        .request(hyper::Method::GET, "/readyz", None, STATUS_TIMEOUT)
                        .await
                        .is_ok_and(|(status, _)| status == 200);
                    ready &= ok;
                }
                if ready {
                    return Ok(leader);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "the cluster was not ready within {timeout:?} (leader: {leader:?}); see the logs in {}",
                    self.spec.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn log_paths(&self) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        for id in self.ids() {
            for name in ["node.log", "gateway.log", "proxy.log"] {
                let path = self.node_dir(id).join(name);
                if path.exists() {
                    paths.push(path);
                }
            }
        }
        paths
    }

    /// Removes the nodes' data dirs (kept when a run fails).
    pub fn remove_data(dir: &Path, nodes: u32) {
        for id in 1..=nodes {
            let _ = std::fs::remove_dir_all(dir.join(format!("n{id}")).join("data"));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// What peers and gateways dial: the proxy in front of node `id` when there are proxies.
fn advertise(spec: &ClusterSpec, id: u32) -> String {
    let port = if spec.proxy_bin.is_some() {
        PROXY_PORT
    } else {
        NODE_PORT
    };
    format!("{}:{port}", node_ip(id))
}

/// Node `id`'s config: a joiner (wiped, to be added again) lists no initial members, as a
/// node joining a running cluster must (README, "Recovering a wiped node").
fn node_config(
    spec: &ClusterSpec,
    certs: &ClusterCerts,
    id: u32,
    joiner: bool,
    clock_offset_ms: i64,
) -> anyhow::Result<NodeConfig> {
    let members = (1..=spec.nodes)
        .filter(|_| !joiner)
        .map(|m| (u64::from(m), advertise(spec, m)));
    let node = NodeConfig {
        id: u64::from(id),
        listen: SocketAddr::from(([0, 0, 0, 0], NODE_PORT)),
        advertise: advertise(spec, id),
        data_dir: spec.dir.join(format!("n{id}")).join("data"),
        metrics_addr: None,
        workers: None,
        initial_members: members.collect(),
        raft: spec.raft.clone(),
        group_commit: Default::default(),
        storage: Default::default(),
        clock: ClockSettings {
            test_offset_ms: clock_offset_ms,
            ..ClockSettings::default()
        },
        tls: TlsSettings::files(certs.node(u64::from(id)).clone()),
    };
    node.validate().context("node config")?;
    Ok(node)
}

/// A membership change the nemesis makes through the leader's admin service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// Out of the membership (a voter through joint consensus).
    Remove(u32),
    /// Back in as a learner, waiting until it has caught up.
    AddLearner(u32),
    /// From learner to voter.
    Promote(u32),
}

/// The node claiming leadership with the highest term.
pub fn leader_of(statuses: &[(u32, Option<StatusReply>)]) -> Option<u32> {
    statuses
        .iter()
        .filter_map(|(id, s)| s.as_ref().map(|s| (*id, s)))
        .filter(|(_, s)| proto::MemberRole::reports_leader(&s.role))
        .max_by_key(|(_, s)| s.term)
        .map(|(id, _)| id)
}

/// Whether `status` (the leader's) shows a settled membership of exactly `ids`, all voters:
/// what every run must end with, whatever its membership faults did.
pub fn all_voters(status: &StatusReply, ids: &[u32]) -> bool {
    let voters: BTreeSet<u64> = status
        .members
        .iter()
        .filter(|m| m.voter)
        .map(|m| m.id)
        .collect();
    !status.joint
        && status.members.len() == ids.len()
        && ids.iter().all(|&id| voters.contains(&u64::from(id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::admin::Member;

    fn status(members: &[(u64, bool)], joint: bool) -> StatusReply {
        StatusReply {
            members: members
                .iter()
                .map(|&(id, voter)| Member {
                    id,
                    addr: String::new(),
                    voter,
                })
                .collect(),
            joint,
            ..StatusReply::default()
        }
    }

    #[test]
    fn only_a_settled_membership_of_every_node_as_voter_is_healed() {
        let ids = [1, 2, 3];
        assert!(all_voters(
            &status(&[(1, true), (2, true), (3, true)], false),
            &ids
        ));
        // A replaced node left a learner, or not added back at all.
        assert!(!all_voters(
            &status(&[(1, true), (2, false), (3, true)], false),
            &ids
        ));
        assert!(!all_voters(&status(&[(1, true), (3, true)], false), &ids));
        // Still in the joint configuration of a change.
        assert!(!all_voters(
            &status(&[(1, true), (2, true), (3, true)], true),
            &ids
        ));
    }
}
