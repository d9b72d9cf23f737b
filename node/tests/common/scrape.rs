//! Reading a node's metrics address in tests: one plain HTTP/1.1 GET, and the samples of a
//! `/metrics` scrape by name and labels.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A loopback address on a free port, for a node's `metrics_addr`.
/// A free loopback address, never one this process handed out before: a port released after
/// its probe can be the kernel's next pick too, and two nodes given the same metrics port
/// make one of them fail at start.
pub fn free_metrics_addr() -> SocketAddr {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let port = cluster_config::launch::free_ports(1)[0];
        if !given.contains(&port) {
            given.push(port);
            return SocketAddr::from(([127, 0, 0, 1], port));
        }
    }
}

pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    Ok(Answer {
        status,
        content_type,
        body: body.to_string(),
    })
}

/// `name{labels}` -> value of every sample line.
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

pub fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let answer = get(addr, "/metrics").expect("scrape");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer
            .content_type
            .starts_with("application/openmetrics-text"),
        "{}",
        answer.content_type
    );
    assert!(answer.body.ends_with("# EOF\n"), "{}", answer.body);
    samples(&answer.body)
}

pub fn value(s: &BTreeMap<String, f64>, key: &str) -> f64 {
    *s.get(key)
        .unwrap_or_else(|| panic!("no {key} in {:#?}", s.keys().collect::<Vec<_>>()))
}

/// Scrapes `addr` until `ok` holds (the watcher and the clock monitor update in the
/// background), and returns that scrape.
pub async fn scrape_until(
    addr: SocketAddr,
    what: &str,
    ok: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = scrape(addr);
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "never {what}: {s:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
