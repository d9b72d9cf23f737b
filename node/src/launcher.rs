//! `invctl demo` and `invctl bench`: a local cluster of node processes (and optionally a
//! gateway process) from the binaries next to the running one, on `cluster_config::launch`
//! like every other launcher. Children are killed when the launcher is dropped, so an
//! interrupted run leaves nothing behind.

use anyhow::bail;
use cluster_config::launch::{self, Layout, Nodes, Process, Spawn};
use cluster_config::mtls::certs::{self, Ca};
use cluster_config::mtls::{Dialer, PemIdentity, Role};
use cluster_config::{NodeConfig, TlsFiles, TlsSettings};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a stopping process gets for a clean exit.
const STOP_GRACE: Duration = Duration::from_secs(10);

pub struct LocalCluster {
    pub dir: PathBuf,
    nodes: Nodes,
    gateway: Option<Process>,
    /// Under mTLS: the certificates made for this cluster in `dir/certs`.
    pub certs: Option<LocalCerts>,
}

/// The certificates of a secure local cluster: the gateway's and an operator's.
#[derive(Debug, Clone)]
pub struct LocalCerts {
    pub dir: PathBuf,
    pub gateway: TlsFiles,
    pub admin: TlsFiles,
}

impl LocalCerts {
    /// A CA, one certificate per node (for 127.0.0.1), the gateway's and `admin/demo`.
    fn make(dir: &Path, configs: &mut [NodeConfig]) -> anyhow::Result<Self> {
        let dir = dir.join("certs");
        Ca::init(&dir, certs::CA_DAYS)?;
        let files = |issued: certs::IssuedFiles| TlsFiles {
            ca: dir.join(certs::CA_CERT),
            cert: issued.cert,
            key: issued.key,
        };
        let local = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        for c in configs.iter_mut() {
            let issued = certs::issue_into(&dir, &Role::Node(c.id), &local, certs::LEAF_DAYS)?;
            c.tls = TlsSettings::files(files(issued));
        }
        let gateway = files(certs::issue_into(
            &dir,
            &Role::Gateway,
            &local,
            certs::LEAF_DAYS,
        )?);
        let admin = files(certs::issue_into(
            &dir,
            &Role::Admin("demo".into()),
            &[],
            certs::LEAF_DAYS,
        )?);
        Ok(Self {
            dir,
            gateway,
            admin,
        })
    }
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
            Some(LocalCerts::make(dir, &mut configs)?)
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
            Some(c) => Ok(Dialer::tls(&PemIdentity::load(
                &c.admin.ca,
                &c.admin.cert,
                &c.admin.key,
            )?)),
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
