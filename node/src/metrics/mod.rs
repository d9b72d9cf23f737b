//! The node's Prometheus metrics and health checks, served on its `metrics_addr`: the signals
//! operators of a consensus store alert on (fsync latency, proposals pending, leader changes,
//! apply lag, snapshot time, clock offset, follower lag).
//!
//! Kept per node instance rather than in a process-wide registry, so a test process that opens
//! several stores does not mix their counts. The hot paths (the log's IO thread, apply, the
//! group commit) only touch atomics; everything read from openraft's metrics is copied into
//! gauges by one task that watches them (`raft_watch`), off any request's path.

mod histogram;
pub mod http;
pub mod pace;
mod raft_watch;
pub mod readiness;

pub use histogram::Histogram;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Every family's name starts with this (and an underscore).
pub const PREFIX: &str = "flashstock_node";

/// The `Content-Type` of `render`'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// From a sync of a few pages on a fast SSD to a disk that stalls for seconds.
const DISK_SECONDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Snapshots take from milliseconds (a small store) to minutes (a large one over a slow disk).
const SNAPSHOT_SECONDS: [f64; 13] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Powers of two up to `GroupCommit::MAX_BATCH_LIMIT`.
const COMMANDS_PER_ENTRY: [u64; 17] = [
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    pub peer: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FollowerLabels {
    pub follower: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabels {
    pub role: &'static str,
}

/// What the log's IO thread, the state machine and the group commit observe.
#[derive(Clone, Debug)]
pub struct HotPath {
    pub wal_fsync: Histogram,
    pub apply: Histogram,
    pub snapshot_build: Histogram,
    pub snapshot_install: Histogram,
    pub commands_per_entry: Histogram,
    /// Submits to the group commit whose `client_write` has not returned yet.
    pub proposals_pending: Gauge,
    /// Framed bytes of the Raft log's entries held in memory.
    pub log_cached_bytes: Gauge,
    /// Log entries read back from segment files, being older than the in-memory ones.
    pub log_entries_read_back: Counter,
    /// Feed events held whole in memory, and those held as their time only (as of the last
    /// checkpoint).
    pub events_in_memory: Gauge,
    pub events_on_disk_only: Gauge,
}

impl Default for HotPath {
    /// Histograms nobody registered: for stores opened outside a node (tests, tools).
    fn default() -> Self {
        Self {
            wal_fsync: Histogram::of_seconds(&DISK_SECONDS),
            apply: Histogram::of_seconds(&DISK_SECONDS),
            snapshot_build: Histogram::of_seconds(&SNAPSHOT_SECONDS),
            snapshot_install: Histogram::of_seconds(&SNAPSHOT_SECONDS),
            commands_per_entry: Histogram::of_counts(&COMMANDS_PER_ENTRY),
            proposals_pending: Gauge::default(),
            log_cached_bytes: Gauge::default(),
            log_entries_read_back: Counter::default(),
            events_in_memory: Gauge::default(),
            events_on_disk_only: Gauge::default(),
        }
    }
}

/// What `raft_watch` copies from openraft's metrics.
#[derive(Clone, Debug, Default)]
pub struct RaftGauges {
    pub term: Gauge,
    pub role: Family<RoleLabels, Gauge>,
    /// 0 while no leader is known (node ids start at 1).
    pub leader_id: Gauge,
    pub last_log_index: Gauge,
    pub applied_index: Gauge,
    pub snapshot_index: Gauge,
    pub leader_changes: Counter,
    pub follower_lag: Family<FollowerLabels, Gauge>,
}

#[derive(Clone)]
pub struct NodeMetrics {
    registry: Arc<Registry>,
    pub hot: HotPath,
    pub raft: RaftGauges,
    /// This node's wall clock minus each voter peer's, in seconds, as last measured.
    pub clock_offset: Family<PeerLabels, Gauge<f64, AtomicU64>>,
    /// When this node last applied an entry, for `/readyz`.
    pub progress: Arc<readiness::ApplyProgress>,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        let hot = HotPath::default();
        let raft = RaftGauges::default();
        let clock_offset = Family::<PeerLabels, Gauge<f64, AtomicU64>>::default();
        let mut r = Registry::with_prefix(PREFIX);
        r.register("term", "The Raft term this node is in", raft.term.clone());
        r.register(
            "role",
            "1 for the role this node has now (leader, follower, candidate, learner, shutdown), 0 for the others",
            raft.role.clone(),
        );
        r.register(
            "leader_id",
            "The node this node knows as leader; 0 while it knows none",
            raft.leader_id.clone(),
        );
        r.register(
            "last_log_index",
            "The last index in this node's Raft log (openraft exports no commit index; on a healthy node the two differ by the entries in flight)",
            raft.last_log_index.clone(),
        );
        r.register(
            "applied_index",
            "The last log index applied to this node's state machine",
            raft.applied_index.clone(),
        );
        r.register(
            "snapshot_index",
            "The last log index in this node's current snapshot",
            raft.snapshot_index.clone(),
        );
        r.register(
            "leader_changes_seen",
            "Times this node saw a leader other than the one it knew before",
            raft.leader_changes.clone(),
        );
        r.register(
            "follower_lag_entries",
            "On the leader: its last log index minus each follower's matched index",
            raft.follower_lag.clone(),
        );
        r.register(
            "proposals_pending",
            "Submits to the leader's group commit not yet committed or refused",
            hot.proposals_pending.clone(),
        );
        r.register(
            "commands_per_entry",
            "Client commands carried by each log entry this node proposed as leader",
            hot.commands_per_entry.clone(),
        );
        r.register(
            "wal_fsync_duration_seconds",
            "Time of each fdatasync of a write-ahead log segment",
            hot.wal_fsync.clone(),
        );
        r.register(
            "log_cached_bytes",
            "Bytes of Raft log records whose entries are held in memory (the newest; older entries are read back from the log's segments)",
            hot.log_cached_bytes.clone(),
        );
        r.register(
            "log_entries_read_back",
            "Raft log entries read back from segment files because they were older than those held in memory (a follower far behind, a restart's replay)",
            hot.log_entries_read_back.clone(),
        );
        r.register(
            "events_in_memory",
            "Feed events held whole in memory (the newest), as of the last checkpoint",
            hot.events_in_memory.clone(),
        );
        r.register(
            "events_on_disk_only",
            "Older feed events a checkpoint wrote to sled, kept in memory as their time only and read from sled, as of the last checkpoint",
            hot.events_on_disk_only.clone(),
        );
        r.register(
            "apply_duration_seconds",
            "Time to apply one run of committed entries to the state machine",
            hot.apply.clone(),
        );
        r.register(
            "snapshot_build_duration_seconds",
            "Time to build a snapshot (export, fsync, checkpoint)",
            hot.snapshot_build.clone(),
        );
        r.register(
            "snapshot_install_duration_seconds",
            "Time to install a snapshot received from the leader",
            hot.snapshot_install.clone(),
        );
        r.register(
            "clock_offset_seconds",
            "This node's wall clock minus each voter peer's, as last measured (positive: this node is ahead)",
            clock_offset.clone(),
        );
        Self {
            registry: Arc::new(r),
            hot,
            raft,
            clock_offset,
            progress: Arc::default(),
        }
    }
}

impl NodeMetrics {
    /// OpenMetrics text (`CONTENT_TYPE`), which Prometheus scrapes.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Starts copying the metrics openraft keeps for `raft` into the gauges.
    pub fn watch(&self, raft: crate::types::Raft) {
        raft_watch::start(raft, self.raft.clone(), self.progress.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_rendered_under_the_prefix() {
        let m = NodeMetrics::default();
        m.hot
            .wal_fsync
            .observe_duration(std::time::Duration::from_millis(2));
        m.hot.proposals_pending.inc();
        m.raft.leader_changes.inc();
        m.clock_offset
            .get_or_create(&PeerLabels { peer: 2 })
            .set(-0.004);
        let text = m.render();
        for line in [
            "flashstock_node_wal_fsync_duration_seconds_count 1",
            "flashstock_node_wal_fsync_duration_seconds_bucket{le=\"0.0025\"} 1",
            "flashstock_node_proposals_pending 1",
            "flashstock_node_leader_changes_seen_total 1",
            "flashstock_node_clock_offset_seconds{peer=\"2\"} -0.004",
            "flashstock_node_apply_duration_seconds_count 0",
            "flashstock_node_term 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn every_node_metric_the_example_alerts_use_is_exported() {
        let alerts = include_str!("../../../cluster-config/deploy/prometheus/alerts.yml");
        let m = NodeMetrics::default();
        // Families show only once they hold a label set.
        m.raft
            .follower_lag
            .get_or_create(&FollowerLabels { follower: 2 })
            .set(1);
        m.raft
            .role
            .get_or_create(&RoleLabels { role: "leader" })
            .set(1);
        m.clock_offset
            .get_or_create(&PeerLabels { peer: 2 })
            .set(0.001);
        let text = m.render();
        let mut used = 0;
        for (at, _) in alerts.match_indices("flashstock_node_") {
            let name: String = alerts[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // Samples of counters and histograms carry a suffix their family's name lacks.
            let family = ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "the alerts use {name}, which the node does not export"
            );
            used += 1;
        }
        assert!(used >= 6, "found only {used} metrics in the alerts");
    }
}
