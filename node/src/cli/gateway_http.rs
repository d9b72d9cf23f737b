//! One HTTP/1.1 request to a gateway on a fresh connection, in plain HTTP or, when a CA is
//! given, over TLS checked against that CA (a gateway with `[https]`).

use anyhow::Context;
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// Where a gateway is and how to speak to it.
#[derive(Debug, Clone)]
pub struct GatewayAddr {
    /// `host:port`.
    pub addr: String,
    /// The CA that signed the gateway's HTTPS certificate; `None`: plain HTTP.
    pub https_ca: Option<PathBuf>,
}

impl GatewayAddr {
    pub fn url(&self) -> String {
        let scheme = if self.https_ca.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Sends `request` (its `host` header set here) and returns the answer's head; the body
    /// streams from the connection, which lives as long as the body is read.
    pub async fn send(
        &self,
        request: hyper::http::request::Builder,
    ) -> anyhow::Result<Response<Incoming>> {
        let request = request
            .header("host", self.addr.as_str())
            .body(Empty::<Bytes>::new())?;
        let tcp = tokio::net::TcpStream::connect(&self.addr)
            .await
            .with_context(|| format!("cannot reach the gateway at {}", self.addr))?;
        match &self.https_ca {
            None => send_on(tcp, request).await,
            Some(ca) => {
                let tls = self
                    .connector(ca)?
                    .connect(self.server_name()?, tcp)
                    .await
                    .with_context(|| format!("TLS with the gateway at {}", self.addr))?;
                send_on(tls, request).await
            }
        }
    }

    fn connector(&self, ca: &std::path::Path) -> anyhow::Result<tokio_rustls::TlsConnector> {
        cluster_config::mtls::provider::install_tls13_only();
        let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| anyhow::anyhow!("{} is not PEM: {e}", ca.display()))?;
            roots.add(cert)?;
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }

    fn server_name(&self) -> anyhow::Result<ServerName<'static>> {
        let host = cluster_config::mtls::certs::host_of(&self.addr)?;
        ServerName::try_from(host).with_context(|| format!("{} names no host", self.addr))
    }
}

async fn send_on<Io>(io: Io, request: Request<Empty<Bytes>>) -> anyhow::Result<Response<Incoming>>
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender.send_request(request).await?)
}
