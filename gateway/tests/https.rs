//! The HTTP API over TLS (`[https]`): HTTP/1.1 and HTTP/2 (by ALPN) with a certificate the
//! client trusts; no answer to plaintext, a client that trusts another CA, or a client that
//! opens a connection and never says hello; bad certificate files stop the start.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cluster_config::mtls::certs::{self, Ca};
use cluster_config::mtls::Role;
use cluster_config::HttpsSettings;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use support::{config, FakeNode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A CA directory with a gateway certificate for 127.0.0.1 and localhost, as `invctl demo
/// --https` makes; the `[https]` settings that name it.
fn https_certs(dir: &Path) -> HttpsSettings {
    Ca::init(dir, 1).unwrap();
    let hosts = ["127.0.0.1".to_string(), "localhost".to_string()];
    let files = certs::issue_into(dir, &Role::Gateway, &hosts, 1).unwrap();
    HttpsSettings {
        cert: files.cert,
        key: files.key,
    }
}

async fn start_https(node: &FakeNode, https: HttpsSettings) -> SocketAddr {
    let mut c = config(vec![node.addr.clone()]);
    c.https = Some(https);
    let gateway = gateway::Gateway::bind(c).await.unwrap();
    let addr = gateway.local_addr();
    tokio::spawn(gateway.run(std::future::pending()));
    addr
}

fn connector(ca_pem: &[u8], alpn: &[&[u8]]) -> TlsConnector {
    cluster_config::mtls::provider::install_tls13_only();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    addr: SocketAddr,
    connector: &TlsConnector,
) -> std::io::Result<TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await
}

fn post_sku(addr: SocketAddr, sku: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::POST)
        .uri(format!("https://{addr}/v1/skus"))
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(format!(
            r#"{{"sku": "{sku}", "stock": 3}}"#
        ))))
        .unwrap()
}

#[tokio::test]
async fn the_api_answers_over_tls_with_http1_and_http2() {
    let dir = tempfile::tempdir().unwrap();
    let node = FakeNode::start(1).await;
    let addr = start_https(&node, https_certs(dir.path())).await;
    let ca = std::fs::read(dir.path().join(certs::CA_CERT)).unwrap();

    let tls = tls_connect(addr, &connector(&ca, &[b"http/1.1"]))
        .await
        .expect("a client trusting the CA completes the handshake");
    let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let answer = h1.send_request(post_sku(addr, "T1")).await.unwrap();
    assert_eq!(answer.status(), 201);
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    let sku: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(sku["available"], 3);

    let tls = tls_connect(addr, &connector(&ca, &[b"h2", b"http/1.1"]))
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let answer = h2.send_request(post_sku(addr, "T2")).await.unwrap();
    assert_eq!(answer.version(), hyper::Version::HTTP_2);
    assert_eq!(answer.status(), 201);
}

#[tokio::test]
async fn plaintext_and_untrusted_clients_get_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let node = FakeNode::start(1).await;
    let addr = start_https(&node, https_certs(dir.path())).await;

    // Plain HTTP on the TLS port: the connection closes without an HTTP answer.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plaintext got an HTTP answer: {}",
        String::from_utf8_lossy(&answer)
    );

    // A client that trusts another CA refuses the gateway's certificate.
    let other = tempfile::tempdir().unwrap();
    Ca::init(other.path(), 1).unwrap();
    let other_ca = std::fs::read(other.path().join(certs::CA_CERT)).unwrap();
    assert!(tls_connect(addr, &connector(&other_ca, &[])).await.is_err());

    // A client that connects and never says hello holds up nobody else.
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let ca = std::fs::read(dir.path().join(certs::CA_CERT)).unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        tls_connect(addr, &connector(&ca, &[])),
    )
    .await
    .expect("a handshake beside a silent connection finishes at once")
    .unwrap();
    assert!(node.commands().is_empty(), "nothing reached the cluster");
}

#[tokio::test]
async fn bad_certificate_files_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let node = FakeNode::start(1).await;
    let good = https_certs(dir.path());
    let missing = HttpsSettings {
        cert: dir.path().join("absent.pem"),
        key: good.key.clone(),
    };
    let mismatched = {
        let files = certs::issue_into(dir.path(), &Role::Admin("x".into()), &[], 1).unwrap();
        HttpsSettings {
            cert: good.cert.clone(),
            key: files.key,
        }
    };
    let not_pem = HttpsSettings {
        cert: good.cert.clone(),
        key: dir.path().join(certs::CA_CERT),
    };
    for (settings, says) in [
        (missing, "absent.pem"),
        (mismatched, "are not a certificate and its key"),
        (not_pem, "holds no PEM private key"),
    ] {
        let mut c = config(vec![node.addr.clone()]);
        c.https = Some(settings);
        let err = match gateway::Gateway::bind(c).await {
            Ok(_) => panic!("started with bad HTTPS files ({says})"),
            Err(e) => e.to_string(),
        };
        assert!(err.starts_with("HTTPS: "), "{err}");
        assert!(err.contains(says), "{err}");
    }
}
