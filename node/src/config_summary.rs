//! What `flashstock-node --check-config` prints for a valid config: the settings an operator wants to
//! confirm before a rollout, with the defaults filled in, so a missing line in the file shows
//! as the value the node will really use.

use cluster_config::NodeConfig;
use std::fmt::Write;

pub fn summary(config: &NodeConfig) -> String {
    let mut s = String::new();
    let c = config;
    let _ = writeln!(s, "node {}", c.id);
    let _ = writeln!(s, "  listen     {}", c.listen);
    let _ = writeln!(s, "  advertise  {}", c.advertise);
    let dir_state = if c.data_dir.join("raft-log").is_dir() {
        "exists, holds a log: initial_members are ignored on restart"
    } else if c.data_dir.exists() {
        "exists, no log yet"
    } else {
        "does not exist yet; created on start"
    };
    match c.metrics_addr {
        Some(addr) => {
            let _ = writeln!(
                s,
                "  metrics    http://{addr}/metrics, health at /healthz and /readyz"
            );
        }
        None => {
            let _ = writeln!(s, "  metrics    off (no metrics_addr)");
        }
    }
    let _ = writeln!(s, "  data_dir   {} ({dir_state})", c.data_dir.display());
    let threads = match c.workers {
        Some(_) => "set by workers",
        None => "one per core: workers is not set",
    };
    let _ = writeln!(s, "  runtime    {} threads ({threads})", c.worker_threads());
    if c.initial_members.is_empty() {
        let _ = writeln!(
            s,
            "  members    none: waits to be added to a running cluster (invctl add-node)"
        );
    } else {
        let members: Vec<String> = c
            .initial_members
            .iter()
            .map(|(id, addr)| format!("{id}={addr}"))
            .collect();
        let role = if c.is_initialiser() {
            "this node initialises the cluster on first start"
        } else {
            "waits for the lowest id to initialise the cluster"
        };
        let _ = writeln!(s, "  members    {} ({role})", members.join(" "));
    }
    let r = &c.raft;
    let _ = writeln!(
        s,
        "  raft       heartbeat {} ms, election timeout {}..{} ms, snapshot every {} entries \
         (state under {mib} MiB) or past {mib} MiB of log (keeping {} entries), snapshot \
         install timeout {} ms",
        r.heartbeat_ms,
        r.election_timeout_min_ms,
        r.election_timeout_max_ms,
        r.snapshot_logs_since_last,
        r.max_in_snapshot_log_to_keep,
        r.install_snapshot_timeout_ms,
        mib = r.snapshot_log_mib_since_last,
    );
    let _ = writeln!(
        s,
        "  commit     up to {} commands per log entry; checkpoint every {} ms or {} entries; \
         newest {} MiB of the log kept in memory",
        c.group_commit.max_batch,
        c.storage.checkpoint_interval_ms,
        c.storage.checkpoint_entries,
        c.storage.log_cache_mib
    );
    s
}
