//! One tonic `Channel` per node address, made on first use and reused by every request, its
//! requests ending with their last data frame (`proto::eager_end`).
//!
//! A channel is one HTTP/2 connection that multiplexes all calls and reconnects on its own;
//! making one per request would cost a TCP and HTTP/2 handshake each time and exhaust ports
//! under a flash sale. Channels connect lazily, so an unreachable node costs nothing until a
//! call is made to it, and that call fails fast.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use cluster_config::mtls::Dialer;
use proto::eager_end::EagerEnd;
use tonic::transport::Channel;

/// A channel to one node.
pub type NodeChannel = EagerEnd<Channel>;

/// Most channels kept. The configured nodes plus leader hints for nodes added later; bounded
/// so a stream of bogus hints cannot grow the map without limit.
const MAX_CHANNELS: usize = 64;
/// How long a connection attempt may take before the node counts as unreachable: well under
/// the request deadline, so the deadline leaves time to try the other nodes.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// HTTP/2 pings find a dead leader connection (a paused or partitioned node) while idle.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(2);
/// Calls queued on one channel before callers wait for room. Admission control bounds the
/// callers anyway; this keeps a burst of reads from waiting on the channel's worker.
const CHANNEL_BUFFER: usize = 4_096;

pub struct ChannelPool {
    configured: Vec<String>,
    channels: Mutex<HashMap<String, NodeChannel>>,
    dialer: Dialer,
}

impl ChannelPool {
    pub fn new(configured: Vec<String>, dialer: Dialer) -> Self {
        Self {
            configured,
            channels: Mutex::new(HashMap::new()),
            dialer,
        }
    }

    /// The channel to `addr` (`host:port`), or `None` if the address cannot form a URI.
    pub fn channel(&self, addr: &str) -> Option<NodeChannel> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ch) = channels.get(addr) {
            return Some(ch.clone());
        }
        let endpoint = self
            .dialer
            .endpoint(addr)
            .ok()?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .buffer_size(CHANNEL_BUFFER);
        let channel = EagerEnd::new(endpoint.connect_lazy());
        if channels.len() >= MAX_CHANNELS {
            let configured = &self.configured;
            channels.retain(|a, _| configured.contains(a));
        }
        channels.insert(addr.to_owned(), channel.clone());
        Some(channel)
    }
}
