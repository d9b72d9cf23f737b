//! The certificates of a cluster a launcher starts under mTLS: a fresh CA in `<dir>/certs`,
//! one certificate per node for the hosts it is dialled at, one for the gateways and one for
//! an operator. `invctl demo` and the chaos harness make theirs here.

use crate::mtls::certs::{self, Ca, IssuedFiles};
use crate::mtls::{Dialer, PemIdentity, Role};
use crate::TlsFiles;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How long the CA and the certificates it issues stay valid, in days.
#[derive(Clone, Copy, Debug)]
pub struct Lifetime {
    pub ca_days: i64,
    pub leaf_days: i64,
}

#[derive(Clone, Debug)]
pub struct ClusterCerts {
    /// Where the CA and every certificate are.
    pub dir: PathBuf,
    pub nodes: BTreeMap<u64, TlsFiles>,
    pub gateway: TlsFiles,
    /// `admin/<operator>`.
    pub admin: TlsFiles,
}

impl ClusterCerts {
    /// Makes a CA in `<dir>/certs` and issues from it: each of `nodes` (id, hosts), the
    /// gateways' (for `gateway_hosts`, which an HTTPS client checks) and `admin/<operator>`.
    pub fn issue(
        dir: &Path,
        lifetime: Lifetime,
        nodes: &[(u64, Vec<String>)],
        gateway_hosts: &[String],
        operator: &str,
    ) -> anyhow::Result<ClusterCerts> {
        let dir = dir.join("certs");
        Ca::init(&dir, lifetime.ca_days)?;
        let issue = |role: &Role, hosts: &[String]| -> anyhow::Result<TlsFiles> {
            let IssuedFiles { cert, key } =
                certs::issue_into(&dir, role, hosts, lifetime.leaf_days)?;
            Ok(TlsFiles {
                ca: dir.join(certs::CA_CERT),
                cert,
                key,
            })
        };
        let mut node_files = BTreeMap::new();
        for (id, hosts) in nodes {
            node_files.insert(*id, issue(&Role::Node(*id), hosts)?);
        }
        let gateway = issue(&Role::Gateway, gateway_hosts)?;
        let admin = issue(&Role::Admin(operator.into()), &[])?;
        Ok(ClusterCerts {
            dir,
            nodes: node_files,
            gateway,
            admin,
        })
    }

    pub fn node(&self, id: u64) -> &TlsFiles {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("no certificate was issued for node {id}"))
    }

    /// How the operator dials the cluster's nodes.
    pub fn admin_dialer(&self) -> anyhow::Result<Dialer> {
        let TlsFiles { ca, cert, key } = &self.admin;
        Ok(Dialer::tls(&PemIdentity::load(ca, cert, key)?))
    }
}
