//! A slow link: a TCP relay that passes each direction of each connection at a fixed byte
//! rate. A node that advertises the relay's port is reached only through it, so every peer's
//! AppendEntries to it takes its size divided by the rate (the kernel cannot do this here:
//! there is no `tc netem`).

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Starts a relay to `upstream` on a free loopback port, passing `bytes_per_sec` each way per
/// connection; it runs until the test's runtime ends.
pub async fn slow_link(upstream: SocketAddr, bytes_per_sec: u64) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(outbound) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let (in_read, in_write) = inbound.into_split();
                let (out_read, out_write) = outbound.into_split();
                tokio::spawn(paced_copy(in_read, out_write, bytes_per_sec));
                tokio::spawn(paced_copy(out_read, in_write, bytes_per_sec));
            });
        }
    });
    addr
}

/// Copies until either side closes, never ahead of `bytes_per_sec` since the first byte
/// after an idle spell (idle time earns no credit, so a burst cannot pass at once).
async fn paced_copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    bytes_per_sec: u64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut since = Instant::now();
    let mut sent: u64 = 0;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let due = since + Duration::from_secs_f64(sent as f64 / bytes_per_sec as f64);
        if due < Instant::now() {
            since = Instant::now();
            sent = 0;
        }
        sent += n as u64;
        tokio::time::sleep_until(
            since + Duration::from_secs_f64(sent as f64 / bytes_per_sec as f64),
        )
        .await;
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
