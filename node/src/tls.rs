//! What a node's `[tls]` section turns into: its identity (which must be this node's
//! certificate), the server's TLS config, a role gate per service, and the dialer it uses
//! towards its peers. `insecure = true` gives none of these, with a warning at every start.

use cluster_config::mtls::{Dialer, PemIdentity, Role, RoleGate, RoleKind};
use cluster_config::NodeConfig;

/// Only nodes replicate, vote and send snapshots.
pub const RAFT_ROLES: &[RoleKind] = &[RoleKind::Node];
/// Gateways submit and read; nodes too (the node's own client in tests and the bench).
pub const INVENTORY_ROLES: &[RoleKind] = &[RoleKind::Gateway, RoleKind::Node];
/// Health is asked by anyone the cluster's CA vouches for.
pub const HEALTH_ROLES: &[RoleKind] = &[RoleKind::Admin, RoleKind::Node, RoleKind::Gateway];
/// Operators; nodes ask each other's clock through it. Gateways pass the gate for `Status`
/// only (their `/v1/cluster`): the admin service refuses them every other call.
pub const ADMIN_ROLES: &[RoleKind] = &[RoleKind::Admin, RoleKind::Node, RoleKind::Gateway];

pub struct NodeTls {
    identity: Option<PemIdentity>,
}

impl NodeTls {
    pub fn load(config: &NodeConfig) -> anyhow::Result<Self> {
        let Some(files) = config.tls.tls_files() else {
            tracing::warn!(
                id = config.id,
                "tls.insecure = true: gRPC in plaintext, any process that reaches this port \
                 can vote, replicate and administer the cluster"
            );
            return Ok(Self { identity: None });
        };
        cluster_config::mtls::provider::install_tls13_only();
        let identity = PemIdentity::load(&files.ca, &files.cert, &files.key)?;
        let role = identity.role()?;
        if role != Role::Node(config.id) {
            anyhow::bail!(
                "{} is a certificate for {role}, not for node {}",
                files.cert.display(),
                config.id
            );
        }
        Ok(Self {
            identity: Some(identity),
        })
    }

    pub fn enabled(&self) -> bool {
        self.identity.is_some()
    }

    pub fn server_config(&self) -> Option<tonic::transport::ServerTlsConfig> {
        self.identity.as_ref().map(PemIdentity::server_tls)
    }

    pub fn dialer(&self) -> Dialer {
        self.identity.as_ref().map(Dialer::tls).unwrap_or_default()
    }

    pub fn gate(&self, service: &'static str, allowed: &'static [RoleKind]) -> RoleGate {
        RoleGate::new(service, allowed, self.enabled())
    }
}
