//! HTTP/2 cleartext with prior knowledge (no upgrade dance), beside HTTP/1.1 on the same
//! port: clients that multiplex many orders over one connection.

mod support;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{config, FakeNode};

#[tokio::test]
async fn the_gateway_speaks_http2_with_prior_knowledge_and_http1_on_one_port() {
    let node = FakeNode::start(1).await;
    let gateway = gateway::Gateway::bind(config(vec![node.addr.clone()]))
        .await
        .unwrap();
    let addr = gateway.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway.run(async {
        let _ = stopped.await;
    }));

    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("an HTTP/2 handshake without upgrade");
    tokio::spawn(conn);
    // Several requests in flight at once on the one connection.
    let mut answers = Vec::new();
    for i in 0..4 {
        let body = format!(r#"{{"sku": "H{i}", "stock": 5}}"#);
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("http://{addr}/v1/skus"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        answers.push(h2.send_request(request));
    }
    for answer in answers {
        let answer = answer.await.unwrap();
        assert_eq!(answer.version(), hyper::Version::HTTP_2);
        assert_eq!(answer.status(), 201);
        let body = answer.into_body().collect().await.unwrap().to_bytes();
        let sku: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(sku["available"], 5);
    }

    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = Request::builder()
        .uri("/healthz")
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let answer = h1.send_request(request).await.unwrap();
    assert_eq!(answer.version(), hyper::Version::HTTP_11);
    assert_eq!(answer.status(), 200);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
