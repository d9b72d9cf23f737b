//! `invctl demo` and `invctl bench`: a local cluster of node processes (and optionally a
//! gateway process) from the binaries next to the running one, on `cluster_config::launch`
//! like every other launcher. Children are killed when the launcher is dropped, so an
//! interrupted run leaves nothing behind.

use anyhow::bail;
use cluster_config::launch::{self, ClusterCerts, Layout, Lifetime, Nodes, Process, Spawn};
use cluster_config::mtls::certs;
use cluster_config::mtls::Dialer;
use cluster_config::{NodeConfig, TlsSettings};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a stopping process gets for a clean exit.
const STOP_GRACE: Duration = Duration::from_secs(10);

pub struct LocalCluster {
    pub dir: PathBuf,
    nodes: Nodes,
    gateway: Option<Process>,
    /// Under mTLS: the certificates made for this cluster in `dir/certs` (the operator is
    /// `admin/demo`).
    pub certs: Option<ClusterCerts>,
}

/// A CA, one certificate per node and the gateway's (for 127.0.0.1 and localhost), and
/// `admin/demo`; each node's config names its own.
fn make_certs(dir: &Path, configs: &mut [NodeConfig]) -> anyhow::Result<ClusterCerts> {
    let local = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let nodes: Vec<(u64, Vec<String>)> = configs.iter().map(|c| (c.id, local.clone())).collect();
    let lifetime = Lifetime {
        ca_days: certs::CA_DAYS,
        leaf_days: certs::LEAF_DAYS,
    };
    let issued = ClusterCerts::issue(dir, lifetime, &nodes, &local, "demo")?;
    for c in configs.iter_mut() {
        c.tls = TlsSettings::files(issued.node(c.id).clone());
    }
    Ok(issued)
}

impl LocalCluster {
    /// Writes configs for `n` nodes on 127.0.0.1 from `base_port` under `dir` and starts them,
    /// in plaintext (`insecure`).
    pub fn start(n: usize, base_port: u16, dir: &Path, log_level: &str) -> anyhow::Result<Self> {
        Self::start_with(n, base_port, dir, log_level, false)
    }

    /// As [`LocalCluster::start`], with a fresh CA and mTLS between every process.
    pub fn start_secure(
        n: usize,
        base_port: u16,
        dir: &Path,
        log_level: &str,
    ) -> anyhow::Result<Self> {
        Self::start_with(n, base_port, dir, log_level, true)
    }

    fn start_with(
        n: usize,
        base_port: u16,
        dir: &Path,
        log_level: &str,
        secure: bool,
    ) -> anyhow::Result<Self> {
        let node_bin = launch::sibling("node", "flashstock-node")?;
        std::fs::create_dir_all(dir)?;
        let mut configs = cluster_config::local_cluster(n, base_port, dir);
        let certs = if secure {
            cluster_config::mtls::provider::install_tls13_only();
            Some(make_certs(dir, &mut configs)?)
        } else {
            None
        };
        let spawn = Spawn::default().env("RUST_LOG", log_level);
        let mut nodes = Nodes::new(dir, configs, node_bin, spawn, Layout::Flat);
        nodes.start_all()?;
        Ok(Self {
            dir: dir.to_path_buf(),
            nodes,
            gateway: None,
            certs,
        })
    }

    pub fn addrs(&self) -> Vec<String> {
        self.nodes.addrs()
    }

    /// How an operator dials this cluster: its admin certificate, or plaintext.
    pub fn admin_dialer(&self) -> anyhow::Result<Dialer> {
        match &self.certs {
            None => Ok(Dialer::Plain),
            Some(c) => c.admin_dialer(),
        }
    }

    /// Starts a gateway process in front of the cluster on `listen`; `extra` are more of its
    /// flags.
    pub fn start_gateway(&mut self, listen: &str, extra: &[String]) -> anyhow::Result<()> {
        let bin = launch::sibling("gateway", "flashstock-gateway")?;
        let mut args: Vec<String> = Vec::new();
        if let Some(certs) = &self.certs {
            for (flag, path) in [
                ("--ca", &certs.gateway.ca),
                ("--cert", &certs.gateway.cert),
                ("--key", &certs.gateway.key),
            ] {
                args.push(flag.into());
                args.push(path.display().to_string());
            }
        }
        // The gateway shares this machine's cores with the nodes (one runtime thread each)
        // and the load generator: on two cores, one gateway thread served more orders at a
        // lower p99 than one per core (README, "One gateway thread in the demo").
        args.extend(["--workers".into(), "1".into()]);
        args.extend(extra.iter().cloned());
        args.extend(["--listen".into(), listen.into()]);
        args.extend(["--nodes".into(), self.addrs().join(",")]);
        let log = self.dir.join("gateway.log");
        self.gateway = Some(Spawn::default().start(&bin, args, &log)?);
        Ok(())
    }

    /// Waits until some node reports a leader that has applied its first entry.
    pub async fn wait_for_leader(&self, timeout: Duration) -> anyhow::Result<u64> {
        let started = Instant::now();
        let dialer = self.admin_dialer()?;
        while started.elapsed() < timeout {
            for addr in self.addrs() {
                if let Ok(s) =
                    launch::probe::status(&dialer, &addr, Duration::from_millis(300)).await
                {
                    if proto::MemberRole::reports_leader(&s.role) && s.last_applied > 0 {
                        return Ok(s.node_id);
                    }
                }
            }
            self.check_alive()?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "no leader within {timeout:?}; see the logs in {}",
            self.dir.display()
        )
    }

    /// Fails if a child has exited, naming its log.
    pub fn check_alive(&self) -> anyhow::Result<()> {
        if let Some(id) = self.nodes.first_dead() {
            bail!("node{id} exited; see {}", self.nodes.log_path(id).display());
        }
        if self.gateway.as_ref().is_some_and(|g| !g.is_alive()) {
            bail!(
                "gateway exited; see {}",
                self.dir.join("gateway.log").display()
            );
        }
        Ok(())
    }

    /// SIGTERM to every child, then wait (bounded) for them to exit.
    pub fn stop(&mut self) {
        if let Some(gateway) = &self.gateway {
            gateway.signal(launch::Signal::Term);
        }
        self.nodes.stop_all(STOP_GRACE);
        if let Some(gateway) = self.gateway.take() {
            gateway.terminate(STOP_GRACE);
        }
    }
}
