use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::addr::check_host_port;
use crate::error::{parse_toml, read_file};
use crate::{ConfigError, TlsSettings};

/// Configuration of one Raft node.
///
/// Deserializing fills defaults but does not validate; use
/// [`NodeConfig::from_toml_str`] or [`NodeConfig::load`], which do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RawNodeConfig")]
pub struct NodeConfig {
    /// Raft node id, at least 1.
    pub id: u64,
    /// Address the gRPC server binds.
    pub listen: SocketAddr,
    /// `host:port` peers and gateways dial to reach this node.
    pub advertise: String,
    pub data_dir: PathBuf,
    /// Address of the HTTP listener for Prometheus (`/metrics`) and health checks
    /// (`/healthz`, `/readyz`); none without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<SocketAddr>,
    /// Threads of the node's async runtime (gRPC, Raft, replication); absent: one per core.
    /// Apply, the log's IO and snapshot builds have threads of their own besides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// Node id -> advertise address of the members the cluster starts with.
    /// Empty for a node that waits to be added to a running cluster.
    #[serde(
        serialize_with = "members::serialize",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub initial_members: BTreeMap<u64, String>,
    pub raft: RaftTiming,
    pub group_commit: GroupCommit,
    pub storage: Storage,
    pub clock: ClockSettings,
    /// mTLS on the node's port and towards its peers; required (`insecure = true` to opt out).
    pub tls: TlsSettings,
}

// `advertise` defaults to `listen`, which a field-level serde default cannot
// express, so the file is read into this shape first.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNodeConfig {
    id: u64,
    listen: SocketAddr,
    #[serde(default)]
    advertise: Option<String>,
    data_dir: PathBuf,
    #[serde(default, deserialize_with = "metrics_addr::deserialize")]
    metrics_addr: Option<SocketAddr>,
    #[serde(default)]
    workers: Option<usize>,
    #[serde(default, deserialize_with = "members::deserialize")]
    initial_members: BTreeMap<u64, String>,
    #[serde(default)]
    raft: RaftTiming,
    #[serde(default)]
    group_commit: GroupCommit,
    #[serde(default)]
    storage: Storage,
    #[serde(default)]
    clock: ClockSettings,
    #[serde(default)]
    tls: TlsSettings,
}

impl From<RawNodeConfig> for NodeConfig {
    fn from(raw: RawNodeConfig) -> Self {
        NodeConfig {
            id: raw.id,
            listen: raw.listen,
            advertise: raw.advertise.unwrap_or_else(|| raw.listen.to_string()),
            data_dir: raw.data_dir,
            metrics_addr: raw.metrics_addr,
            workers: raw.workers,
            initial_members: raw.initial_members,
            raft: raw.raft,
            group_commit: raw.group_commit,
            storage: raw.storage,
            clock: raw.clock,
            tls: raw.tls,
        }
    }
}

/// Raft timing and log-compaction settings, in milliseconds and log entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftTiming {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Take a snapshot once this many entries were applied since the last, while that
    /// snapshot's file is smaller than `snapshot_log_mib_since_last` MiB (a larger state is
    /// only rebuilt by the size rule).
    pub snapshot_logs_since_last: u64,
    /// Also take one once the log since the last snapshot holds more than this many MiB of
    /// records and more bytes than that snapshot's file: an entry can carry thousands of
    /// orders, so a count alone would let the log on disk grow to gigabytes, and a
    /// snapshot is never rebuilt for less log than it is large.
    pub snapshot_log_mib_since_last: u64,
    /// Entries kept in the log behind a snapshot, so slightly lagging
    /// followers can catch up without a full snapshot transfer.
    pub max_in_snapshot_log_to_keep: u64,
    pub install_snapshot_timeout_ms: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        RaftTiming {
            heartbeat_ms: 100,
            election_timeout_min_ms: 600,
            election_timeout_max_ms: 1200,
            snapshot_logs_since_last: 20_000,
            snapshot_log_mib_since_last: 256,
            max_in_snapshot_log_to_keep: 1_000,
            install_snapshot_timeout_ms: 10_000,
        }
    }
}

/// Batching of client commands into Raft log entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupCommit {
    /// Most client commands carried by one log entry.
    pub max_batch: usize,
}

impl GroupCommit {
    pub const MAX_BATCH_LIMIT: usize = 65_536;
}

impl Default for GroupCommit {
    fn default() -> Self {
        GroupCommit { max_batch: 4096 }
    }
}

/// How the node keeps its state machine on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    /// The in-memory state is checkpointed to sled this often. A longer interval writes a
    /// hot record less often; a restart then replays more of the log.
    pub checkpoint_interval_ms: u64,
    /// A checkpoint also runs once this many log entries were applied since the last one
    /// (each node draws its own point up to a quarter more, so that replicas do not all
    /// checkpoint at the same log position), whichever comes first: a long interval then
    /// still bounds what a restart replays and how much one checkpoint writes.
    pub checkpoint_entries: u64,
    /// MiB of the newest Raft log records kept decoded in memory, for replication and apply.
    /// Older entries are read back from the log's segments: a follower that fell further
    /// behind is fed from disk. 0 reads every entry back (for tests of that path).
    pub log_cache_mib: u64,
}

impl Storage {
    pub const MAX_CHECKPOINT_INTERVAL_MS: u64 = 600_000;
    pub const MAX_CHECKPOINT_ENTRIES: u64 = 100_000_000;
    /// 64 GiB: more than any machine this runs on should give the log.
    pub const MAX_LOG_CACHE_MIB: u64 = 65_536;

    /// `log_cache_mib` in bytes.
    pub fn log_cache_bytes(&self) -> u64 {
        self.log_cache_mib.saturating_mul(1 << 20)
    }
}

impl Storage {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ms = self.checkpoint_interval_ms;
        if !(10..=Self::MAX_CHECKPOINT_INTERVAL_MS).contains(&ms) {
            return Err(ConfigError::invalid(
                "storage.checkpoint_interval_ms",
                format!(
                    "is {ms}; use 10 to {} ms (checkpoints of the state to disk)",
                    Self::MAX_CHECKPOINT_INTERVAL_MS
                ),
            ));
        }
        let entries = self.checkpoint_entries;
        if !(1..=Self::MAX_CHECKPOINT_ENTRIES).contains(&entries) {
            return Err(ConfigError::invalid(
                "storage.checkpoint_entries",
                format!(
                    "is {entries}; use 1 to {} log entries (applied between checkpoints)",
                    Self::MAX_CHECKPOINT_ENTRIES
                ),
            ));
        }
        if self.log_cache_mib > Self::MAX_LOG_CACHE_MIB {
            return Err(ConfigError::invalid(
                "storage.log_cache_mib",
                format!(
                    "is {}; use 0 to {} MiB (the newest Raft log entries kept in memory)",
                    self.log_cache_mib,
                    Self::MAX_LOG_CACHE_MIB
                ),
            ));
        }
        Ok(())
    }
}

/// How far this node's wall clock may be from its peers', and a test-only skew.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockSettings {
    /// A node whose wall clock is further than this from at least half of its peers' does
    /// not lead: it never campaigns, and a leader steps down.
    pub max_offset_ms: u64,
    /// Test only: added to this node's wall clock, so that tests and the chaos suite can skew
    /// one node without touching the machine's clock. Leave it 0 in production.
    pub test_offset_ms: i64,
}

impl ClockSettings {
    pub const MAX_OFFSET_LIMIT_MS: u64 = 60_000;
    /// A day either way: enough for any skew a test wants.
    pub const TEST_OFFSET_LIMIT_MS: i64 = 86_400_000;

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(10..=Self::MAX_OFFSET_LIMIT_MS).contains(&self.max_offset_ms) {
            return Err(ConfigError::invalid(
                "clock.max_offset_ms",
                format!(
                    "is {}; use 10 to {} ms (the furthest a node's clock may be from its peers')",
                    self.max_offset_ms,
                    Self::MAX_OFFSET_LIMIT_MS
                ),
            ));
        }
        if self.test_offset_ms.unsigned_abs() > Self::TEST_OFFSET_LIMIT_MS.unsigned_abs() {
            return Err(ConfigError::invalid(
                "clock.test_offset_ms",
                format!(
                    "is {}; a test skew must be within ±{} ms",
                    self.test_offset_ms,
                    Self::TEST_OFFSET_LIMIT_MS
                ),
            ));
        }
        Ok(())
    }
}

impl Default for ClockSettings {
    fn default() -> Self {
        ClockSettings {
            max_offset_ms: 500,
            test_offset_ms: 0,
        }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            checkpoint_interval_ms: 1_000,
            checkpoint_entries: 10_000,
            log_cache_mib: 16,
        }
    }
}

impl NodeConfig {
    /// How many threads the node's runtime has: `workers`, or one per core.
    pub fn worker_threads(&self) -> usize {
        crate::workers::threads(self.workers)
    }

    /// Parses and validates a node config.
    pub fn from_toml_str(text: &str) -> Result<NodeConfig, ConfigError> {
        let config: NodeConfig = parse_toml(text, None)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a node config file.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let config: NodeConfig = parse_toml(&read_file(path)?, Some(path))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule that the TOML schema alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id == 0 {
            return Err(ConfigError::invalid(
                "id",
                "is 0, but node ids start at 1; give every node a distinct id >= 1",
            ));
        }
        fits_toml_integer("id", self.id)?;
        if self.listen.port() == 0 {
            // Peers find the node through a fixed address in the membership,
            // so an OS-chosen port would make it unreachable.
            return Err(ConfigError::invalid(
                "listen",
                format!(
                    "{} has port 0; choose a fixed port in 1..=65535 that peers can dial",
                    self.listen
                ),
            ));
        }
        check_host_port("advertise", &self.advertise)?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                "data_dir",
                "is empty; set it to the directory where this node keeps its log and snapshots",
            ));
        }
        if self.data_dir.to_str().is_none() {
            // TOML text is UTF-8, so such a path could not be written back.
            return Err(ConfigError::invalid(
                "data_dir",
                format!(
                    "{} is not valid UTF-8; choose a UTF-8 path",
                    self.data_dir.display()
                ),
            ));
        }
        self.validate_metrics_addr()?;
        crate::workers::validate(self.workers)?;
        self.validate_members()?;
        self.raft.validate()?;
        self.group_commit.validate()?;
        self.storage.validate()?;
        self.clock.validate()?;
        self.tls.validate()
    }

    fn validate_metrics_addr(&self) -> Result<(), ConfigError> {
        let Some(addr) = self.metrics_addr else {
            return Ok(());
        };
        if addr.port() == 0 {
            // Prometheus finds a target by a fixed address in its own config.
            return Err(ConfigError::invalid(
                "metrics_addr",
                format!("{addr} has port 0; choose a fixed port that Prometheus can scrape"),
            ));
        }
        let same_ip = addr.ip() == self.listen.ip()
            || addr.ip().is_unspecified()
            || self.listen.ip().is_unspecified();
        if addr.port() == self.listen.port() && same_ip {
            return Err(ConfigError::invalid(
                "metrics_addr",
                format!(
                    "{addr} overlaps listen = {}; the metrics listener needs a port of its own",
                    self.listen
                ),
            ));
        }
        Ok(())
    }

    fn validate_members(&self) -> Result<(), ConfigError> {
        if self.initial_members.is_empty() {
            return Ok(());
        }
        let mut owner_of_addr: BTreeMap<&str, u64> = BTreeMap::new();
        for (&id, addr) in &self.initial_members {
            if id == 0 {
                return Err(ConfigError::invalid(
                    "initial_members",
                    "lists node id 0, but node ids start at 1",
                ));
            }
            fits_toml_integer("initial_members", id)?;
            check_host_port(&format!("initial_members.{id}"), addr)?;
            if let Some(other) = owner_of_addr.insert(addr, id) {
                return Err(ConfigError::invalid(
                    "initial_members",
                    format!(
                        "nodes {other} and {id} both have address {addr:?}; \
                         every node needs its own address"
                    ),
                ));
            }
        }
        match self.initial_members.get(&self.id) {
            None => Err(ConfigError::invalid(
                "initial_members",
                format!(
                    "does not list this node (id = {}); list every initial member \
                     including this one, or leave initial_members out for a node \
                     that will be added to a running cluster",
                    self.id
                ),
            )),
            Some(addr) if *addr != self.advertise => Err(ConfigError::invalid(
                format!("initial_members.{}", self.id),
                format!(
                    "is {addr:?} but advertise is {:?}; they must be equal because \
                     peers reach this node at the address listed here",
                    self.advertise
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Whether this node initialises the cluster on first start.
    ///
    /// Exactly one node must do so, otherwise several nodes could each form
    /// their own cluster; the lowest listed id is a choice every node can
    /// make from the shared member list alone.
    pub fn is_initialiser(&self) -> bool {
        self.initial_members.keys().next() == Some(&self.id)
    }

    /// Renders the config as TOML that [`NodeConfig::from_toml_str`] reads
    /// back to an equal config.
    ///
    /// # Panics
    ///
    /// If the config holds what TOML cannot represent (an integer above
    /// `i64::MAX`, a non-UTF-8 `data_dir`); [`NodeConfig::validate`] rejects
    /// such configs, so validated ones always render.
    pub fn to_toml_string(&self) -> String {
        toml::to_string(self)
            .unwrap_or_else(|e| panic!("node config cannot be written as TOML: {e}"))
    }
}

impl RaftTiming {
    /// 1 TiB: more log than any disk a node should hold between snapshots.
    pub const MAX_SNAPSHOT_LOG_MIB: u64 = 1 << 20;

    /// `snapshot_log_mib_since_last` in bytes.
    pub fn snapshot_log_bytes_since_last(&self) -> u64 {
        self.snapshot_log_mib_since_last.saturating_mul(1 << 20)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let fields = [
            ("raft.heartbeat_ms", self.heartbeat_ms),
            ("raft.election_timeout_min_ms", self.election_timeout_min_ms),
            ("raft.election_timeout_max_ms", self.election_timeout_max_ms),
            (
                "raft.snapshot_logs_since_last",
                self.snapshot_logs_since_last,
            ),
            (
                "raft.snapshot_log_mib_since_last",
                self.snapshot_log_mib_since_last,
            ),
            (
                "raft.max_in_snapshot_log_to_keep",
                self.max_in_snapshot_log_to_keep,
            ),
            (
                "raft.install_snapshot_timeout_ms",
                self.install_snapshot_timeout_ms,
            ),
        ];
        for (field, value) in fields {
            fits_toml_integer(field, value)?;
        }
        if self.heartbeat_ms < 10 {
            return Err(ConfigError::invalid(
                "raft.heartbeat_ms",
                format!(
                    "is {} ms; use at least 10 ms, shorter intervals spend the \
                     cluster's capacity on heartbeats",
                    self.heartbeat_ms
                ),
            ));
        }
        let floor = self.heartbeat_ms.saturating_mul(3);
        if self.election_timeout_min_ms <= floor {
            return Err(ConfigError::invalid(
                "raft.election_timeout_min_ms",
                format!(
                    "is {} ms but must be greater than 3 x raft.heartbeat_ms = {floor} ms, \
                     so a few late heartbeats do not start an election; raise it or \
                     lower raft.heartbeat_ms",
                    self.election_timeout_min_ms
                ),
            ));
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return Err(ConfigError::invalid(
                "raft.election_timeout_max_ms",
                format!(
                    "is {} ms but must be greater than raft.election_timeout_min_ms = {} ms; \
                     the gap randomises timeouts so nodes do not keep splitting the vote",
                    self.election_timeout_max_ms, self.election_timeout_min_ms
                ),
            ));
        }
        if self.snapshot_logs_since_last == 0 {
            return Err(ConfigError::invalid(
                "raft.snapshot_logs_since_last",
                "is 0, which would snapshot after every entry; use at least 1 (default 20000)",
            ));
        }
        if !(1..=Self::MAX_SNAPSHOT_LOG_MIB).contains(&self.snapshot_log_mib_since_last) {
            return Err(ConfigError::invalid(
                "raft.snapshot_log_mib_since_last",
                format!(
                    "is {}; use 1 to {} MiB (default 256)",
                    self.snapshot_log_mib_since_last,
                    Self::MAX_SNAPSHOT_LOG_MIB
                ),
            ));
        }
        if self.install_snapshot_timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "raft.install_snapshot_timeout_ms",
                "is 0, so no snapshot could ever be sent; use at least 1 (default 10000)",
            ));
        }
        Ok(())
    }
}

impl GroupCommit {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=Self::MAX_BATCH_LIMIT).contains(&self.max_batch) {
            return Err(ConfigError::invalid(
                "group_commit.max_batch",
                format!(
                    "is {}; it must be in 1..={} (default 4096)",
                    self.max_batch,
                    Self::MAX_BATCH_LIMIT
                ),
            ));
        }
        Ok(())
    }
}

// TOML integers are i64; rejecting larger values here keeps every validated
// config writable by `to_toml_string`.
pub(crate) fn fits_toml_integer(field: &str, value: u64) -> Result<(), ConfigError> {
    if value > i64::MAX as u64 {
        return Err(ConfigError::invalid(
            field,
            format!("is {value}, larger than TOML integers allow ({})", i64::MAX),
        ));
    }
    Ok(())
}

/// Builds validated configs for an `n`-node cluster on 127.0.0.1: ids
/// `1..=n`, ports `base_port..base_port + n`, data in `data_root/node{i}`,
/// and every node in `initial_members`; plaintext (`[tls] insecure = true`); one runtime
/// thread each, since they share the machine.
///
/// # Panics
///
/// If `base_port` is 0, the ports would run past 65535, or `data_root` is
/// not valid UTF-8.
pub fn local_cluster(n: usize, base_port: u16, data_root: &Path) -> Vec<NodeConfig> {
    assert!(
        base_port != 0,
        "local_cluster: base_port must be at least 1"
    );
    let ports: Vec<u16> = (0..n)
        .map(|i| {
            u16::try_from(i)
                .ok()
                .and_then(|i| base_port.checked_add(i))
                .unwrap_or_else(|| {
                    panic!("local_cluster: {n} nodes from port {base_port} run past port 65535")
                })
        })
        .collect();
    let addr = |port: u16| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let members: BTreeMap<u64, String> = (1u64..)
        .zip(&ports)
        .map(|(id, &port)| (id, addr(port).to_string()))
        .collect();
    (1u64..)
        .zip(&ports)
        .map(|(id, &port)| {
            let config = NodeConfig {
                id,
                listen: addr(port),
                advertise: addr(port).to_string(),
                data_dir: data_root.join(format!("node{id}")),
                metrics_addr: None,
                // The nodes share this machine's cores: a runtime thread per core in each
                // would wake and switch between threads for nothing (README, "Node threads").
                workers: Some(1),
                initial_members: members.clone(),
                raft: RaftTiming::default(),
                group_commit: GroupCommit::default(),
                storage: Storage::default(),
                clock: ClockSettings::default(),
                // Callers that want mTLS (`invctl demo`) set the files after making them.
                tls: TlsSettings::insecure(),
            };
            if let Err(e) = config.validate() {
                panic!("local_cluster built an invalid config: {e}");
            }
            config
        })
        .collect()
}

// serde's own message for a bad socket address names neither the field nor the expected
// form, and hostnames are refused without saying so.
mod metrics_addr {
    use std::net::SocketAddr;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map(Some).map_err(|_| {
            D::Error::custom(format!(
                "metrics_addr: {text:?} is not an IP address and port; \
                 write it like \"127.0.0.1:9101\" (no host names)"
            ))
        })
    }
}

// TOML table keys are always strings, and toml's serde support does not
// convert them to or from integers, so node ids are mapped by hand.
mod members {
    use std::collections::BTreeMap;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        members: &BTreeMap<u64, String>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(members.iter().map(|(id, addr)| (id.to_string(), addr)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<u64, String>, D::Error> {
        let raw = BTreeMap::<String, String>::deserialize(deserializer)?;
        let mut members = BTreeMap::new();
        let mut key_of_id: BTreeMap<u64, String> = BTreeMap::new();
        for (key, addr) in raw {
            let id: u64 = key.parse().map_err(|_| {
                D::Error::custom(format!(
                    "initial_members: key {key:?} is not a node id; write entries \
                     like 1 = \"127.0.0.1:7001\" with a positive integer id"
                ))
            })?;
            // "1" and "01" are distinct TOML keys but the same node.
            if let Some(first) = key_of_id.insert(id, key.clone()) {
                return Err(D::Error::custom(format!(
                    "initial_members: node {id} is listed twice (as {first:?} and {key:?}); \
                     keep one entry per node"
                )));
            }
            members.insert(id, addr);
        }
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        id = 2
        listen = "127.0.0.1:7002"
        data_dir = "data/node2"
        tls = { insecure = true }
    "#;

    const FULL: &str = r#"
        id = 2
        listen = "0.0.0.0:7002"
        advertise = "10.0.0.2:7002"
        data_dir = "/var/lib/inv/node2"
        metrics_addr = "0.0.0.0:9102"
        tls = { ca = "/etc/inv/ca.pem", cert = "/etc/inv/node-2.pem", key = "/etc/inv/node-2.key" }

        [initial_members]
        1 = "10.0.0.1:7002"
        2 = "10.0.0.2:7002"
        3 = "10.0.0.3:7002"

        [raft]
        heartbeat_ms = 50
        election_timeout_min_ms = 300
        election_timeout_max_ms = 900
        snapshot_logs_since_last = 5
        snapshot_log_mib_since_last = 64
        max_in_snapshot_log_to_keep = 0
        install_snapshot_timeout_ms = 2000

        [group_commit]
        max_batch = 1
    "#;

    #[test]
    fn workers_default_to_one_per_core_and_are_bounded() {
        let mut config = valid();
        assert_eq!(config.workers, None);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(config.worker_threads(), cores);
        config.workers = Some(0);
        assert_invalid(&config, "workers");
        config.workers = Some(1025);
        assert_invalid(&config, "workers");
        config.workers = Some(3);
        let parsed = NodeConfig::from_toml_str(&config.to_toml_string()).unwrap();
        assert_eq!(parsed.workers, Some(3));
        assert_eq!(parsed.worker_threads(), 3);
        for c in local_cluster(3, 9000, Path::new("/tmp/x")) {
            assert_eq!(
                c.worker_threads(),
                1,
                "nodes sharing a machine take one thread"
            );
        }
    }

    #[test]
    fn checkpoint_interval_is_bounded() {
        let mut config = valid();
        config.storage.checkpoint_interval_ms = 0;
        assert_invalid(&config, "storage.checkpoint_interval_ms");
        config.storage.checkpoint_interval_ms = Storage::MAX_CHECKPOINT_INTERVAL_MS + 1;
        assert_invalid(&config, "storage.checkpoint_interval_ms");
        let parsed = NodeConfig::from_toml_str(&valid().to_toml_string().replace(
            "checkpoint_interval_ms = 1000",
            "checkpoint_interval_ms = 250",
        ))
        .unwrap();
        assert_eq!(parsed.storage.checkpoint_interval_ms, 250);
    }

    #[test]
    fn checkpoint_entries_are_bounded() {
        let mut config = valid();
        assert_eq!(config.storage.checkpoint_entries, 10_000);
        config.storage.checkpoint_entries = 0;
        assert_invalid(&config, "storage.checkpoint_entries");
        config.storage.checkpoint_entries = Storage::MAX_CHECKPOINT_ENTRIES + 1;
        assert_invalid(&config, "storage.checkpoint_entries");
        let parsed = NodeConfig::from_toml_str(
            &valid()
                .to_toml_string()
                .replace("checkpoint_entries = 10000", "checkpoint_entries = 7"),
        )
        .unwrap();
        assert_eq!(parsed.storage.checkpoint_entries, 7);
    }

    #[test]
    fn log_cache_is_bounded_and_zero_is_allowed() {
        let mut config = valid();
        assert_eq!(config.storage.log_cache_mib, 16);
        assert_eq!(config.storage.log_cache_bytes(), 16 << 20);
        config.storage.log_cache_mib = 0;
        config.validate().unwrap();
        config.storage.log_cache_mib = Storage::MAX_LOG_CACHE_MIB;
        config.validate().unwrap();
        config.storage.log_cache_mib = Storage::MAX_LOG_CACHE_MIB + 1;
        let text = assert_invalid(&config, "storage.log_cache_mib");
        assert!(text.contains("use 0 to 65536 MiB"), "{text}");
        let parsed = NodeConfig::from_toml_str(
            &valid()
                .to_toml_string()
                .replace("log_cache_mib = 16", "log_cache_mib = 0"),
        )
        .unwrap();
        assert_eq!(parsed.storage.log_cache_mib, 0);
    }

    fn valid() -> NodeConfig {
        NodeConfig::from_toml_str(FULL).expect("FULL is valid")
    }

    fn assert_invalid(config: &NodeConfig, field: &str) -> String {
        match config.validate() {
            Err(e @ ConfigError::Invalid { .. }) => {
                assert_eq!(e.field(), Some(field), "{e}");
                let text = e.to_string();
                assert!(
                    text.starts_with(&format!("invalid config: {field}: ")),
                    "{text}"
                );
                text
            }
            other => panic!("expected an Invalid error on {field}, got {other:?}"),
        }
    }

    fn parse_error(text: &str) -> String {
        match NodeConfig::from_toml_str(text) {
            Err(e @ ConfigError::Parse { .. }) => e.to_string(),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = NodeConfig::from_toml_str(MINIMAL).unwrap();
        assert_eq!(c.id, 2);
        assert_eq!(c.advertise, "127.0.0.1:7002");
        assert_eq!(c.data_dir, PathBuf::from("data/node2"));
        assert!(c.initial_members.is_empty());
        assert_eq!(c.raft, RaftTiming::default());
        assert_eq!(c.raft.heartbeat_ms, 100);
        assert_eq!(c.raft.election_timeout_min_ms, 600);
        assert_eq!(c.raft.election_timeout_max_ms, 1200);
        assert_eq!(c.raft.snapshot_logs_since_last, 20_000);
        assert_eq!(c.raft.snapshot_log_mib_since_last, 256);
        assert_eq!(c.raft.max_in_snapshot_log_to_keep, 1_000);
        assert_eq!(c.raft.install_snapshot_timeout_ms, 10_000);
        assert_eq!(c.group_commit.max_batch, 4096);
        assert_eq!(c.metrics_addr, None);
        assert!(!c.is_initialiser());
    }

    #[test]
    fn partial_tables_keep_other_defaults() {
        let c = NodeConfig::from_toml_str(&format!(
            "{MINIMAL}\n[raft]\nheartbeat_ms = 150\n[group_commit]\n"
        ))
        .unwrap();
        assert_eq!(c.raft.heartbeat_ms, 150);
        assert_eq!(c.raft.election_timeout_min_ms, 600);
        assert_eq!(c.group_commit.max_batch, 4096);
    }

    #[test]
    fn full_config_parses() {
        let c = valid();
        assert_eq!(c.listen, "0.0.0.0:7002".parse().unwrap());
        assert_eq!(c.advertise, "10.0.0.2:7002");
        assert_eq!(c.initial_members.len(), 3);
        assert_eq!(c.initial_members[&3], "10.0.0.3:7002");
        assert_eq!(c.raft.max_in_snapshot_log_to_keep, 0);
        assert_eq!(c.raft.snapshot_log_bytes_since_last(), 64 << 20);
        assert_eq!(c.group_commit.max_batch, 1);
        assert_eq!(c.metrics_addr, Some("0.0.0.0:9102".parse().unwrap()));
    }

    #[test]
    fn round_trips_through_toml() {
        for c in [valid(), NodeConfig::from_toml_str(MINIMAL).unwrap()] {
            let text = c.to_toml_string();
            assert_eq!(NodeConfig::from_toml_str(&text).unwrap(), c, "{text}");
        }
        for c in local_cluster(12, 9000, Path::new("/tmp/x")) {
            assert_eq!(NodeConfig::from_toml_str(&c.to_toml_string()).unwrap(), c);
        }
    }

    #[test]
    fn unknown_fields_rejected_at_every_level() {
        let e = parse_error(&format!("{MINIMAL}\nhearbeat_ms = 100\n"));
        assert!(e.contains("unknown field `hearbeat_ms`"), "{e}");
        let e = parse_error(&format!("{MINIMAL}\n[raft]\nheartbeat = 100\n"));
        assert!(e.contains("unknown field `heartbeat`"), "{e}");
        let e = parse_error(&format!("{MINIMAL}\n[group_commit]\nbatch = 1\n"));
        assert!(e.contains("unknown field `batch`"), "{e}");
        let e = parse_error(&format!("{MINIMAL}\n[raf]\n"));
        assert!(e.contains("unknown field `raf`"), "{e}");
    }

    #[test]
    fn missing_required_fields_rejected_with_toml_message() {
        for field in ["id", "listen", "data_dir"] {
            let text: String = MINIMAL
                .lines()
                .filter(|l| !l.trim_start().starts_with(&format!("{field} ")))
                .collect::<Vec<_>>()
                .join("\n");
            let e = parse_error(&text);
            assert!(e.contains(&format!("missing field `{field}`")), "{e}");
        }
    }

    #[test]
    fn parse_errors_carry_position() {
        let e = parse_error("id = 1\nlisten = \"not an address\"\ndata_dir = \"d\"\n");
        assert!(e.contains("line 2"), "{e}");
        let e = parse_error("id = -1\nlisten = \"127.0.0.1:1\"\ndata_dir = \"d\"\n");
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn member_keys_must_be_ids() {
        let e = parse_error(&format!(
            "{MINIMAL}\n[initial_members]\nnode2 = \"127.0.0.1:7002\"\n"
        ));
        assert!(
            e.contains("initial_members: key \"node2\" is not a node id"),
            "{e}"
        );
        let e = parse_error(&format!(
            "{MINIMAL}\n[initial_members]\n2 = \"127.0.0.1:7002\"\n02 = \"127.0.0.1:7003\"\n"
        ));
        assert!(e.contains("initial_members: node 2 is listed twice"), "{e}");
    }

    #[test]
    fn id_rules() {
        let mut c = valid();
        c.id = 0;
        assert_invalid(&c, "id");
        let mut c = valid();
        c.id = u64::MAX;
        c.initial_members.clear();
        assert_invalid(&c, "id");
    }

    #[test]
    fn listen_port_zero_rejected() {
        let mut c = valid();
        c.listen = "127.0.0.1:0".parse().unwrap();
        assert_invalid(&c, "listen");
    }

    #[test]
    fn advertise_rules() {
        for bad in [
            "10.0.0.2",
            "10.0.0.2:0",
            "10.0.0.2:70000",
            "http://10.0.0.2:7002",
            "",
        ] {
            let mut c = valid();
            c.advertise = bad.to_string();
            assert_invalid(&c, "advertise");
        }
        // A wildcard listen address cannot double as the advertised one.
        let e = parse_error_or_invalid("id = 1\nlisten = \"0.0.0.0:7001\"\ndata_dir = \"d\"\n");
        assert_eq!(e.field(), Some("advertise"));
    }

    #[test]
    fn metrics_addr_rules() {
        for bad in [
            "localhost:9102",
            "10.0.0.2",
            "10.0.0.2:70000",
            "http://10.0.0.2:9102",
        ] {
            let e = parse_error(&format!("metrics_addr = \"{bad}\"\n{MINIMAL}"));
            assert!(
                e.contains(&format!(
                    "metrics_addr: {bad:?} is not an IP address and port"
                )),
                "{e}"
            );
        }
        let mut c = valid();
        c.metrics_addr = Some("10.0.0.2:0".parse().unwrap());
        assert_invalid(&c, "metrics_addr");
        // listen is 0.0.0.0:7002, which already holds port 7002 on every address.
        c.metrics_addr = Some("127.0.0.1:7002".parse().unwrap());
        assert_invalid(&c, "metrics_addr");
        c.metrics_addr = Some("127.0.0.1:9102".parse().unwrap());
        c.validate().unwrap();
        let mut c = NodeConfig::from_toml_str(MINIMAL).unwrap();
        c.metrics_addr = Some("127.0.0.1:7002".parse().unwrap());
        assert_invalid(&c, "metrics_addr");
        // Same port on another address of the machine: no clash.
        c.metrics_addr = Some("127.0.0.2:7002".parse().unwrap());
        c.validate().unwrap();
    }

    #[test]
    fn metrics_addr_round_trips_and_is_left_out_when_unset() {
        let mut c = NodeConfig::from_toml_str(MINIMAL).unwrap();
        assert!(!c.to_toml_string().contains("metrics_addr"));
        c.metrics_addr = Some("127.0.0.1:9102".parse().unwrap());
        let text = c.to_toml_string();
        assert!(text.contains("metrics_addr = \"127.0.0.1:9102\""), "{text}");
        assert_eq!(NodeConfig::from_toml_str(&text).unwrap(), c);
    }

    fn parse_error_or_invalid(text: &str) -> ConfigError {
        NodeConfig::from_toml_str(text).expect_err("config should be rejected")
    }

    #[test]
    fn data_dir_must_not_be_empty() {
        let mut c = valid();
        c.data_dir = PathBuf::new();
        assert_invalid(&c, "data_dir");
    }

    #[test]
    fn member_rules() {
        let mut c = valid();
        c.initial_members.insert(0, "10.0.0.9:7002".into());
        assert_invalid(&c, "initial_members");

        let mut c = valid();
        c.initial_members.insert(4, "10.0.0.1:7002".into());
        let text = assert_invalid(&c, "initial_members");
        assert!(text.contains("nodes 1 and 4"), "{text}");

        let mut c = valid();
        c.initial_members.remove(&2);
        let text = assert_invalid(&c, "initial_members");
        assert!(text.contains("id = 2"), "{text}");

        let mut c = valid();
        c.initial_members.insert(2, "10.0.0.22:7002".into());
        assert_invalid(&c, "initial_members.2");

        let mut c = valid();
        c.initial_members.insert(3, "10.0.0.3".into());
        assert_invalid(&c, "initial_members.3");
    }

    #[test]
    fn raft_rules() {
        type Edit = fn(&mut RaftTiming);
        let cases: [(&str, Edit); 9] = [
            ("raft.heartbeat_ms", |r| r.heartbeat_ms = 9),
            ("raft.election_timeout_min_ms", |r| {
                r.election_timeout_min_ms = 3 * r.heartbeat_ms
            }),
            ("raft.election_timeout_max_ms", |r| {
                r.election_timeout_max_ms = r.election_timeout_min_ms
            }),
            ("raft.snapshot_logs_since_last", |r| {
                r.snapshot_logs_since_last = 0
            }),
            ("raft.install_snapshot_timeout_ms", |r| {
                r.install_snapshot_timeout_ms = 0
            }),
            ("raft.snapshot_log_mib_since_last", |r| {
                r.snapshot_log_mib_since_last = 0
            }),
            ("raft.snapshot_log_mib_since_last", |r| {
                r.snapshot_log_mib_since_last = RaftTiming::MAX_SNAPSHOT_LOG_MIB + 1
            }),
            ("raft.max_in_snapshot_log_to_keep", |r| {
                r.max_in_snapshot_log_to_keep = u64::MAX
            }),
            ("raft.heartbeat_ms", |r| r.heartbeat_ms = u64::MAX),
        ];
        for (field, edit) in cases {
            let mut c = valid();
            edit(&mut c.raft);
            assert_invalid(&c, field);
        }
        // Boundary values just inside the rules are accepted.
        let mut c = valid();
        c.raft.heartbeat_ms = 10;
        c.raft.election_timeout_min_ms = 31;
        c.raft.election_timeout_max_ms = 32;
        c.raft.snapshot_log_mib_since_last = RaftTiming::MAX_SNAPSHOT_LOG_MIB;
        c.validate().unwrap();
        c.raft.snapshot_log_mib_since_last = 1;
        c.validate().unwrap();
    }

    #[test]
    fn group_commit_rules() {
        for bad in [0, GroupCommit::MAX_BATCH_LIMIT + 1] {
            let mut c = valid();
            c.group_commit.max_batch = bad;
            assert_invalid(&c, "group_commit.max_batch");
        }
        let mut c = valid();
        c.group_commit.max_batch = GroupCommit::MAX_BATCH_LIMIT;
        c.validate().unwrap();
    }

    #[test]
    fn validation_runs_on_parse() {
        let e = parse_error_or_invalid(&format!("{MINIMAL}\n[group_commit]\nmax_batch = 0\n"));
        assert_eq!(e.field(), Some("group_commit.max_batch"));
    }

    #[test]
    fn initialiser_is_lowest_listed_id() {
        let cluster = local_cluster(3, 7001, Path::new("data"));
        let flags: Vec<bool> = cluster.iter().map(NodeConfig::is_initialiser).collect();
        assert_eq!(flags, [true, false, false]);

        let mut c = valid();
        c.initial_members.remove(&1);
        assert!(c.is_initialiser());
        c.initial_members.clear();
        assert!(!c.is_initialiser());
    }

    #[test]
    fn local_cluster_layout() {
        let cluster = local_cluster(5, 7101, Path::new("/tmp/demo"));
        assert_eq!(cluster.len(), 5);
        for (i, c) in cluster.iter().enumerate() {
            let id = i as u64 + 1;
            assert_eq!(c.id, id);
            assert_eq!(
                c.listen,
                format!("127.0.0.1:{}", 7100 + id).parse().unwrap()
            );
            assert_eq!(c.advertise, c.listen.to_string());
            assert_eq!(c.data_dir, Path::new("/tmp/demo").join(format!("node{id}")));
            assert_eq!(c.initial_members, cluster[0].initial_members);
            assert_eq!(c.initial_members[&id], c.advertise);
        }
        assert!(local_cluster(0, 7000, Path::new("d")).is_empty());
        assert_eq!(local_cluster(2, 65534, Path::new("d")).len(), 2);
    }

    #[test]
    #[should_panic(expected = "run past port 65535")]
    fn local_cluster_port_overflow_panics() {
        local_cluster(3, 65534, Path::new("d"));
    }
}
