//! tonic glue: the node's server TLS config, a [`Dialer`] every client uses to reach a node
//! (plaintext or mTLS alike), and [`RoleGate`], the interceptor that admits a service's
//! roles only.

use crate::mtls::key_file::read_secret;
use crate::mtls::role::{Role, RoleKind};
use crate::mtls::role_cache::RoleCache;
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};
use tonic::{Request, Status};

/// The DNS SAN every node certificate carries; clients check it whatever address they
/// dialled, so addresses may change (or be IPs behind NAT) without reissuing certificates.
pub const NODE_DNS_NAME: &str = "flashstock-node";
/// A handshake that has not finished by then is dropped: a slow or silent client must not
/// hold a server task.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The CA certificate, this process's certificate and its key, PEM. `Debug` shows no key.
#[derive(Clone)]
pub struct PemIdentity {
    pub ca: Vec<u8>,
    pub cert: Vec<u8>,
    key: Arc<Vec<u8>>,
}

impl std::fmt::Debug for PemIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemIdentity").finish_non_exhaustive()
    }
}

impl PemIdentity {
    pub fn from_pem(
        ca: impl Into<Vec<u8>>,
        cert: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            ca: ca.into(),
            cert: cert.into(),
            key: Arc::new(key.into()),
        }
    }

    pub fn load(ca: &Path, cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let read =
            |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
        Ok(Self::from_pem(read(ca)?, read(cert)?, read_secret(key)?))
    }

    /// The role written in this process's own certificate.
    pub fn role(&self) -> anyhow::Result<Role> {
        use rustls::pki_types::pem::PemObject;
        let der = rustls::pki_types::CertificateDer::from_pem_slice(&self.cert)
            .map_err(|e| anyhow::anyhow!("the certificate is not PEM: {e}"))?;
        Role::from_cert_der(&der).map_err(anyhow::Error::msg)
    }

    fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert, self.key.as_slice())
    }

    /// A server that requires a client certificate signed by the CA.
    pub fn server_tls(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity())
            .client_ca_root(Certificate::from_pem(&self.ca))
            .timeout(HANDSHAKE_TIMEOUT)
    }

    fn client_tls(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .identity(self.identity())
            .domain_name(NODE_DNS_NAME)
    }
}

/// How a client reaches a node: plaintext (a cluster configured `insecure`) or mTLS.
#[derive(Clone, Debug, Default)]
pub enum Dialer {
    #[default]
    Plain,
    Tls(Box<ClientTlsConfig>),
}

impl Dialer {
    pub fn tls(identity: &PemIdentity) -> Self {
        Dialer::Tls(Box::new(identity.client_tls()))
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Dialer::Tls(_))
    }

    /// An endpoint for `addr` (`host:port`); the caller adds timeouts and connects.
    pub fn endpoint(&self, addr: &str) -> Result<Endpoint, tonic::transport::Error> {
        match self {
            Dialer::Plain => Endpoint::from_shared(format!("http://{addr}")),
            Dialer::Tls(tls) => {
                Endpoint::from_shared(format!("https://{addr}"))?.tls_config((**tls).clone())
            }
        }
    }
}

/// A tonic interceptor admitting only the listed roles to one service. The caller's role goes
/// into the request's extensions for the handler (the Raft service checks the node id).
/// Without TLS (`enforce` false) it admits everyone: an insecure cluster has no roles.
#[derive(Clone, Debug)]
pub struct RoleGate {
    service: &'static str,
    allowed: &'static [RoleKind],
    enforce: bool,
    /// Shared by the clones tonic makes of the gate (one per request).
    roles: Arc<RoleCache>,
}

impl RoleGate {
    pub fn new(service: &'static str, allowed: &'static [RoleKind], enforce: bool) -> Self {
        Self {
            service,
            allowed,
            enforce,
            roles: Arc::default(),
        }
    }

    fn admit(&self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if !self.enforce {
            return Ok(req);
        }
        let certs = req
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let role = self.roles.role_of(leaf).map_err(Status::unauthenticated)?;
        if !self.allowed.contains(&role.kind()) {
            let needed: Vec<String> = self.allowed.iter().map(|k| k.to_string()).collect();
            return Err(Status::permission_denied(format!(
                "the {} service needs a {} certificate; this one is {}",
                self.service,
                needed.join(" or "),
                role.kind()
            )));
        }
        req.extensions_mut().insert(role);
        Ok(req)
    }
}

impl tonic::service::Interceptor for RoleGate {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        self.admit(req)
    }
}
