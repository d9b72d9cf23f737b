//! A fixed pool of HTTP/1.1 keep-alive connections to one gateway.
//!
//! At most `connections` requests are in flight at once (a semaphore), and a request in
//! flight owns one connection: it takes an idle one from the free list or, when there is
//! none, opens a new one. So the pool never holds more than `connections` connections, and
//! each is reused for request after request. Every request carries
//! `Content-Type: application/json`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// How often a request that was never written (its connection turned out closed) moves to
/// another connection before giving up.
const UNSENT_RETRIES: usize = 3;

/// Why a request got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad --url {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP handshake with {authority}: {source}")]
    Handshake {
        authority: String,
        #[source]
        source: hyper::Error,
    },
    #[error("HTTP exchange failed: {0}")]
    Http(#[source] hyper::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Where requests go: an `http://host:port` base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl Target {
    /// Parses `http://host[:port][/]`. Only plain HTTP; no path prefix.
    pub fn parse(url: &str) -> Result<Target, ClientError> {
        let bad = |reason: &str| ClientError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let uri: Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => return Err(bad(&format!("scheme {other} is not supported, use http"))),
            None => return Err(bad("missing scheme, e.g. http://127.0.0.1:8080")),
        }
        let authority = uri.authority().ok_or_else(|| bad("missing host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("user info is not supported"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad("a base URL takes no path or query"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Ok(Target {
            host,
            port: authority.port_u16().unwrap_or(80),
        })
    }

    /// The `Host` header value.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// An HTTP answer with the instants it was sent and fully received.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
    /// When the request was handed to its connection (after waiting for a free one).
    pub sent: Instant,
    /// When the whole response body had arrived.
    pub answered: Instant,
}

impl Answer {
    /// Time on the wire: from send to the end of the response (pool waiting excluded).
    pub fn latency(&self) -> Duration {
        self.answered.duration_since(self.sent)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `error.code` of an API error body.
    pub fn error_code(&self) -> Option<String> {
        let body = self.json()?;
        body.get("error")?.get("code")?.as_str().map(str::to_string)
    }

    /// A short description for error messages: status and (truncated) body.
    pub fn describe(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let mut text: String = text.chars().take(300).collect();
        if self.body.len() > 300 {
            text.push('…');
        }
        format!("{} {}", self.status, text)
    }
}

type Sender = SendRequest<Full<Bytes>>;

struct Inner {
    target: Target,
    authority: String,
    permits: Semaphore,
    idle: Mutex<Vec<Sender>>,
    timeout: Duration,
    opened: AtomicU64,
}

/// The pooled client. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

impl HttpClient {
    /// A client holding at most `connections` (at least 1) connections to `target`; a request
    /// without a complete answer after `timeout` fails with [`ClientError::Timeout`] and its
    /// connection is closed.
    pub fn new(target: Target, connections: usize, timeout: Duration) -> HttpClient {
        let connections = connections.max(1);
        HttpClient {
            inner: Arc::new(Inner {
                authority: target.authority(),
                target,
                permits: Semaphore::new(connections),
                idle: Mutex::new(Vec::with_capacity(connections)),
                timeout,
                opened: AtomicU64::new(0),
            }),
        }
    }

    pub fn target(&self) -> &Target {
        &self.inner.target
    }

    /// A client of its own pool of `connections` to the same target, with the same timeout.
    pub fn with_connections(&self, connections: usize) -> HttpClient {
        HttpClient::new(self.inner.target.clone(), connections, self.inner.timeout)
    }

    /// Connections opened so far (reconnects included).
    pub fn connections_opened(&self) -> u64 {
        self.inner.opened.load(Ordering::Relaxed)
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Answer, ClientError> {
        let bytes = Bytes::from(serde_json::to_vec(body).expect("a Value always serialises"));
        self.send(Method::POST, path, bytes).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Answer, ClientError> {
        self.send(Method::GET, path, Bytes::new()).await
    }

    /// Sends one request on a pooled connection and reads the whole answer. Waits for a free
    /// connection first. A request that was never written (the connection closed under it)
    /// is moved to another connection; nothing written is ever sent twice.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<Answer, ClientError> {
        let inner = &*self.inner;
        let _permit = inner
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let mut unsent_retries = 0;
        loop {
            let (mut sender, fresh) = match self.take_idle() {
                Some(sender) => (sender, false),
                None => (self.connect().await?, true),
            };
            if let Err(e) = sender.ready().await {
                if fresh {
                    return Err(ClientError::Http(e));
                }
                // An idle connection the server closed: drop it, take another.
                continue;
            }
            let request = Request::builder()
                .method(method.clone())
                .uri(path)
                .header(HOST, inner.authority.as_str())
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(body.clone()))
                .expect("method, path and headers are valid");
            let sent = Instant::now();
            let deadline = tokio::time::Instant::from_std(sent + inner.timeout);
            let response =
                match tokio::time::timeout_at(deadline, sender.try_send_request(request)).await {
                    Err(_) => return Err(ClientError::Timeout(inner.timeout)),
                    Ok(Ok(response)) => response,
                    Ok(Err(mut e)) => {
                        if e.take_message().is_some() && unsent_retries < UNSENT_RETRIES {
                            unsent_retries += 1;
                            continue;
                        }
                        return Err(ClientError::Http(e.into_error()));
                    }
                };
            let status = response.status().as_u16();
            let body = match tokio::time::timeout_at(deadline, response.into_body().collect()).await
            {
                Err(_) => return Err(ClientError::Timeout(inner.timeout)),
                Ok(Err(e)) => return Err(ClientError::Http(e)),
                Ok(Ok(collected)) => collected.to_bytes(),
            };
            let answered = Instant::now();
            // Keep-alive: back to the free list. If the server closes it meanwhile, the next
            // user's `ready()` notices and opens another.
            if !sender.is_closed() {
                self.put_idle(sender);
            }
            return Ok(Answer {
                status,
                body,
                sent,
                answered,
            });
        }
    }

    fn take_idle(&self) -> Option<Sender> {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
    }

    fn put_idle(&self, sender: Sender) {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sender);
    }

    async fn connect(&self) -> Result<Sender, ClientError> {
        let inner = &*self.inner;
        let stream = TcpStream::connect((inner.target.host.as_str(), inner.target.port))
            .await
            .map_err(|source| ClientError::Connect {
                authority: inner.authority.clone(),
                source,
            })?;
        // Requests are small and latency-bound: no Nagle.
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| ClientError::Handshake {
                authority: inner.authority.clone(),
                source,
            })?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes the connection.
            let _ = connection.await;
        });
        inner.opened.fetch_add(1, Ordering::Relaxed);
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_urls() {
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            t,
            Target {
                host: "127.0.0.1".into(),
                port: 8080
            }
        );
        assert_eq!(t.authority(), "127.0.0.1:8080");
        let t = Target::parse("http://localhost/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("localhost", 80));
        let t = Target::parse("http://[::1]:9000").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9000));
        assert_eq!(t.authority(), "[::1]:9000");
    }

    #[test]
    fn rejects_what_it_cannot_serve() {
        for url in [
            "https://127.0.0.1:8080",
            "127.0.0.1:8080",
            "http://127.0.0.1:8080/v1",
            "http://127.0.0.1:8080/?a=b",
            "not a url",
        ] {
            assert!(
                matches!(Target::parse(url), Err(ClientError::BadUrl { .. })),
                "{url}"
            );
        }
    }
}
