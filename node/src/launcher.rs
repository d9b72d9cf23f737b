//! Starts a local cluster of node processes (and optionally a gateway process) from the
//! binaries next to the running one: used by `invctl demo` and `invctl bench`. Children are
//! killed when the launcher is dropped, so an interrupted run leaves nothing behind.

use anyhow::{bail, Context};
use cluster_config::mtls::certs::{self, Ca};
use cluster_config::mtls::{Dialer, PemIdentity, Role};
use cluster_config::{NodeConfig, TlsFiles, TlsSettings};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct LocalCluster {
    pub dir: PathBuf,
    pub configs: Vec<NodeConfig>,
    children: Vec<(String, Child)>,
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

/// The directory holding this executable's sibling binaries (`flashstock-node`,
/// `flashstock-gateway`, ...).
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the running binary")?;
    Ok(exe
        .parent()
        .context("the running binary has no parent directory")?
        .to_path_buf())
}

/// A binary next to this one, built on demand with the cargo that ran us (if any).
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir()?.join(name);
    if path.exists() {
        return Ok(path);
    }
    if let Ok(cargo) = std::env::var("CARGO") {
        let release = bin_dir()?.ends_with("release");
        let mut build = Command::new(cargo);
        build.args(["build", "--bins", "-p", "node", "-p", "gateway"]);
        if release {
            build.arg("--release");
        }
        let status = build.status().context("cannot run cargo build")?;
        if status.success() && path.exists() {
            return Ok(path);
        }
    }
    bail!(
        "{} is missing: build it with `cargo build --release --bins`",
        path.display()
    )
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
        let node_bin = sibling("flashstock-node")?;
        std::fs::create_dir_all(dir)?;
        let mut configs = cluster_config::local_cluster(n, base_port, dir);
        let certs = if secure {
            cluster_config::mtls::provider::install_tls13_only();
            Some(LocalCerts::make(dir, &mut configs)?)
        } else {
            None
        };
        let mut cluster = Self {
            dir: dir.to_path_buf(),
            configs,
            children: Vec::new(),
            certs,
        };
        for c in cluster.configs.clone() {
            let path = dir.join(format!("node{}.toml", c.id));
            std::fs::write(&path, c.to_toml_string())?;
            let log = std::fs::File::create(dir.join(format!("node{}.log", c.id)))?;
            let child = Command::new(&node_bin)
                .arg("--config")
                .arg(&path)
                .env("RUST_LOG", log_level)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .with_context(|| format!("cannot start {}", node_bin.display()))?;
            cluster.children.push((format!("node{}", c.id), child));
        }
        Ok(cluster)
    }

    pub fn addrs(&self) -> Vec<String> {
        self.configs.iter().map(|c| c.advertise.clone()).collect()
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
        let bin = sibling("flashstock-gateway")?;
        let log = std::fs::File::create(self.dir.join("gateway.log"))?;
        let mut gateway = Command::new(&bin);
        if let Some(certs) = &self.certs {
            gateway
                .arg("--ca")
                .arg(&certs.gateway.ca)
                .arg("--cert")
                .arg(&certs.gateway.cert)
                .arg("--key")
                .arg(&certs.gateway.key);
        }
        let child = gateway
            .args(extra)
            .arg("--listen")
            .arg(listen)
            .arg("--nodes")
            .arg(self.addrs().join(","))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        self.children.push(("gateway".into(), child));
        Ok(())
    }

    /// Waits until some node reports a leader that has applied its first entry.
    pub async fn wait_for_leader(&self, timeout: Duration) -> anyhow::Result<u64> {
        let started = Instant::now();
        let dialer = self.admin_dialer()?;
        while started.elapsed() < timeout {
            for addr in self.addrs() {
                if let Ok(s) =
                    crate::client::status_via(&dialer, &addr, Duration::from_millis(300)).await
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
        for (name, child) in &self.children {
            // try_wait needs &mut; a zero-signal kill tells liveness without reaping.
            let alive = Command::new("kill")
                .args(["-0", &child.id().to_string()])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !alive {
                bail!(
                    "{name} exited; see {}",
                    self.dir.join(format!("{name}.log")).display()
                );
            }
        }
        Ok(())
    }

    /// SIGTERM to every child, then wait (bounded) for them to exit.
    pub fn stop(&mut self) {
        for (_, child) in &self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (_, child) in &mut self.children {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
