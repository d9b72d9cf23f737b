//! A TCP proxy that adds delay and jitter, standing in for `tc netem` (this kernel has none).
//!
//! When a run includes the `delay` fault, every node advertises its proxy's port instead of its
//! gRPC port, so every connection to it (peers' Raft traffic and gateways' calls) passes
//! through the proxy, which runs inside the node's namespace: packets still arrive on the
//! node's `eth0` from the peer's address, so partitions and loss apply as before.
//!
//! The proxy is the hidden `jepsen proxy --listen ADDR --upstream ADDR` subcommand. It reads
//! commands on stdin, one per line: `delay MS JITTER_MS` (each chunk is held MS plus a uniform
//! 0..JITTER_MS, never reordered within a connection) and `clear`. It exits when stdin closes,
//! so it never outlives the harness.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::rng::Rng;

/// The proxy's current setting, in microseconds.
#[derive(Default)]
struct Setting {
    delay_us: AtomicU64,
    jitter_us: AtomicU64,
}

/// A parsed control line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Delay { ms: u64, jitter_ms: u64 },
    Clear,
}

impl Control {
    pub fn parse(line: &str) -> Option<Control> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["clear"] => Some(Control::Clear),
            ["delay", ms, jitter] => Some(Control::Delay {
                ms: ms.parse().ok()?,
                jitter_ms: jitter.parse().ok()?,
            }),
            _ => None,
        }
    }

    pub fn line(self) -> String {
        match self {
            Control::Delay { ms, jitter_ms } => format!("delay {ms} {jitter_ms}\n"),
            Control::Clear => "clear\n".to_owned(),
        }
    }
}

/// Runs the proxy until stdin closes.
pub async fn serve(listen: SocketAddr, upstream: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("proxy cannot bind {listen}"))?;
    eprintln!("proxy {listen} -> {upstream}");
    let setting = Arc::new(Setting::default());
    let control = {
        let setting = setting.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match Control::parse(&line) {
                    Some(Control::Delay { ms, jitter_ms }) => {
                        setting.delay_us.store(ms * 1000, Ordering::Relaxed);
                        setting.jitter_us.store(jitter_ms * 1000, Ordering::Relaxed);
                        eprintln!("proxy: delay {ms} ms, jitter {jitter_ms} ms");
                    }
                    Some(Control::Clear) => {
                        setting.delay_us.store(0, Ordering::Relaxed);
                        setting.jitter_us.store(0, Ordering::Relaxed);
                        eprintln!("proxy: cleared");
                    }
                    None => eprintln!("proxy: ignoring {line:?}"),
                }
            }
        })
    };
    let mut connection = 0u64;
    let accept = async {
        loop {
            let (inbound, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    eprintln!("proxy: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            connection += 1;
            let setting = setting.clone();
            let seed = connection;
            tokio::spawn(async move {
                let Ok(outbound) = TcpStream::connect(upstream).await else {
                    return; // the node is down: the peer sees the connection close.
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let (in_read, in_write) = inbound.into_split();
                let (out_read, out_write) = outbound.into_split();
                let up = pump(in_read, out_write, setting.clone(), Rng::fork(seed, 1));
                let down = pump(out_read, in_write, setting, Rng::fork(seed, 2));
                tokio::join!(up, down);
            });
        }
    };
    tokio::select! {
        _ = accept => {}
        _ = control => eprintln!("proxy: stdin closed, exiting"),
    }
    Ok(())
}

/// Copies one direction, holding each chunk for the current delay (release times never go
/// backwards, so bytes stay in order).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    setting: Arc<Setting>,
    mut rng: Rng,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut last_release = Instant::now();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let delay = setting.delay_us.load(Ordering::Relaxed);
            let jitter = setting.jitter_us.load(Ordering::Relaxed);
            let extra = if jitter > 0 { rng.below(jitter + 1) } else { 0 };
            let now = Instant::now();
            let release = if delay + extra == 0 {
                now
            } else {
                now + Duration::from_micros(delay + extra)
            }
            .max(last_release);
            last_release = release;
            if tx.send((release, buf[..n].to_vec())).is_err() {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((release, chunk)) = rx.recv().await {
            // Without a delay, do not wait for the timer's next tick (up to a millisecond).
            if release > Instant::now() {
                tokio::time::sleep_until(release).await;
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_lines_round_trip() {
        for c in [
            Control::Clear,
            Control::Delay {
                ms: 120,
                jitter_ms: 40,
            },
        ] {
            assert_eq!(Control::parse(c.line().trim()), Some(c));
        }
        assert_eq!(Control::parse("delay x 1"), None);
        assert_eq!(Control::parse("loss 5"), None);
    }

    #[tokio::test]
    async fn proxy_delays_and_forwards_both_ways() {
        // An echo server and the pump logic wired through a listener, without stdin control.
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front_addr = front.local_addr().unwrap();
        let setting = Arc::new(Setting::default());
        setting.delay_us.store(50_000, Ordering::Relaxed);
        tokio::spawn(async move {
            let (inbound, _) = front.accept().await.unwrap();
            let outbound = TcpStream::connect(echo_addr).await.unwrap();
            let (ir, iw) = inbound.into_split();
            let (or, ow) = outbound.into_split();
            tokio::join!(
                pump(ir, ow, setting.clone(), Rng::new(1)),
                pump(or, iw, setting, Rng::new(2))
            );
        });
        let started = std::time::Instant::now();
        let mut client = TcpStream::connect(front_addr).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        // 50 ms each way.
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
}
