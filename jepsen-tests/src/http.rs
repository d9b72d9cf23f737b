//! A minimal HTTP/1.1 client for the harness: one keep-alive connection, re-opened after any
//! error, with a deadline over the whole exchange. It tells apart what the history must tell
//! apart: "nothing was sent" (connect failed, or the idle connection was found dead before the
//! request went out) from "sent, answer unknown" (timeout, connection lost).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::history::TransportError;

/// A failed exchange, with a short description for the history.
#[derive(Debug, Clone)]
pub struct HttpError {
    pub kind: TransportError,
    pub message: String,
}

impl HttpError {
    fn new(kind: TransportError, message: impl Into<String>) -> HttpError {
        HttpError {
            kind,
            message: message.into(),
        }
    }
}

/// One connection to one gateway.
pub struct HttpConn {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl HttpConn {
    pub fn new(addr: SocketAddr) -> HttpConn {
        HttpConn { addr, sender: None }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops the connection (after a timeout its answer may still arrive; it must not be
    /// taken for the next request's).
    pub fn reset(&mut self) {
        self.sender = None;
    }

    async fn connect(&mut self, deadline: Instant) -> Result<(), HttpError> {
        let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(self.addr)).await {
            Err(_) => {
                return Err(HttpError::new(
                    TransportError::ConnectFailed,
                    format!("connect to {} timed out", self.addr),
                ))
            }
            Ok(Err(e)) => {
                return Err(HttpError::new(
                    TransportError::ConnectFailed,
                    format!("connect to {}: {e}", self.addr),
                ))
            }
            Ok(Ok(stream)) => stream,
        };
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| {
                HttpError::new(TransportError::ConnectFailed, format!("handshake: {e}"))
            })?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends one request; `body` is JSON when present. Returns the status and body.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<(u16, Bytes), HttpError> {
        let deadline = Instant::now() + timeout;
        // A kept connection the server closed is found out here, before anything is sent.
        if let Some(sender) = &mut self.sender {
            let ready = tokio::time::timeout_at(deadline, sender.ready()).await;
            if !matches!(ready, Ok(Ok(()))) {
                self.sender = None;
            }
        }
        if self.sender.is_none() {
            self.connect(deadline).await?;
        }
        let sender = self.sender.as_mut().expect("connected above");
        if !matches!(
            tokio::time::timeout_at(deadline, sender.ready()).await,
            Ok(Ok(()))
        ) {
            self.sender = None;
            return Err(HttpError::new(
                TransportError::ConnectFailed,
                "fresh connection not ready",
            ));
        }
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.addr.to_string());
        let body = match body {
            Some(bytes) => {
                builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(bytes))
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder.body(body).expect("a well-formed request");
        let exchange = async {
            let response = sender.send_request(request).await.map_err(|e| {
                HttpError::new(TransportError::ConnectionLost, format!("request: {e}"))
            })?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| HttpError::new(TransportError::ConnectionLost, format!("body: {e}")))?
                .to_bytes();
            Ok((status, body))
        };
        match tokio::time::timeout_at(deadline, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                Err(HttpError::new(
                    TransportError::Timeout,
                    format!("no answer within {timeout:?}"),
                ))
            }
        }
    }
}
