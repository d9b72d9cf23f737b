//! `invctl certs`: the cluster CA and the certificates it signs, written into one directory
//! (cluster_config::mtls::certs does the work), and `--ca --cert --key`, the identity every other command
//! dials the nodes with.

use anyhow::bail;
use cluster_config::mtls::certs::{self, Ca};
use cluster_config::mtls::{Dialer, PemIdentity, Role};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The identity invctl presents to the nodes. Without it, plaintext (an insecure cluster).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TlsArgs {
    /// The cluster CA certificate (PEM).
    #[arg(long, global = true, env = "FLASHSTOCK_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// An admin certificate signed by that CA (`invctl certs admin`).
    #[arg(long, global = true, env = "FLASHSTOCK_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Its private key.
    #[arg(long, global = true, env = "FLASHSTOCK_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
}

impl TlsArgs {
    pub fn dialer(&self) -> anyhow::Result<Dialer> {
        match (&self.ca, &self.cert, &self.key) {
            (None, None, None) => Ok(Dialer::Plain),
            (Some(ca), Some(cert), Some(key)) => {
                cluster_config::mtls::provider::install_tls13_only();
                Ok(Dialer::tls(&PemIdentity::load(ca, cert, key)?))
            }
            _ => bail!("--ca, --cert and --key go together (or FLASHSTOCK_CA/_CERT/_KEY)"),
        }
    }
}

/// What a `certs` command wrote.
#[derive(Debug, Serialize)]
pub struct Written {
    pub role: Option<String>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn print(w: &Written) {
    match &w.role {
        Some(role) => println!("{role}: {} (key {})", w.cert.display(), w.key.display()),
        None => println!("CA: {} (key {})", w.cert.display(), w.key.display()),
    }
}

pub fn init(dir: &Path, days: i64) -> anyhow::Result<Written> {
    let cert = Ca::init(dir, days)?;
    Ok(Written {
        role: None,
        cert,
        key: dir.join(certs::CA_KEY),
    })
}

/// A certificate for `role`; a node's also names the host of its advertised address.
pub fn issue(dir: &Path, role: Role, hosts: Vec<String>, days: i64) -> anyhow::Result<Written> {
    let files = certs::issue_into(dir, &role, &hosts, days)?;
    Ok(Written {
        role: Some(role.uri()),
        cert: files.cert,
        key: files.key,
    })
}
