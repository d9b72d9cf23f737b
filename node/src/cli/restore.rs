//! `invctl restore --snapshot FILE --config node.toml`: prepares an empty data dir so that a
//! node started on it serves exactly the snapshot's state as a member of a new cluster.
//!
//! Every node of the new cluster is restored from the same file with the same membership
//! (the config's `initial_members`), so they start identical: the state machine holds the
//! snapshot's records with the snapshot's last log id as applied and the new membership; the
//! log is empty and purged up to that id; the vote is in the snapshot's term. Such a dir is
//! initialised (openraft sees a last log id), so no node calls `initialize` on it.
//!
//! The new cluster's id (`cluster-id`) is written too: `--cluster-id`, or derived from the
//! snapshot's bytes and the new membership, so that every node restored alike gets the same
//! one (a restored dir is never bootstrapped, and a leader never invents an id).
//!
//! Crash safety: the first thing written is the `RESTORE-UNFINISHED` file (synced with its
//! directory), the last thing done is removing it. A node refuses to start on a dir that
//! holds it, and `invctl restore` run again on such a dir wipes what the crashed run wrote
//! and starts over.

use super::snapshot_file;
use crate::cluster_id::{self, ClusterId};
use crate::log_store::{LogOptions, LogStore};
use crate::state_machine_store::StateMachine;
use crate::types::Vote;
use anyhow::{bail, ensure, Context};
use cluster_config::NodeConfig;
use openraft::storage::RaftLogStorage;
use openraft::BasicNode;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Present in a data dir while a restore writes it.
pub const UNFINISHED: &str = "RESTORE-UNFINISHED";
/// What a restore writes into the data dir besides `UNFINISHED`; a rerun removes exactly
/// these (directories, then the cluster id file and its temporary).
const WRITTEN: [&str; 3] = ["db", "raft-log", "snapshots"];
const WRITTEN_FILES: [&str; 2] = [cluster_id::FILE_NAME, "cluster-id.tmp"];

#[derive(Debug, Serialize)]
pub struct Restored {
    pub node_id: u64,
    pub data_dir: PathBuf,
    pub snapshot: PathBuf,
    pub last_log_index: u64,
    pub last_log_term: u64,
    pub records: u64,
    /// The new cluster's id, the same on every node restored alike.
    pub cluster_id: String,
    /// The new cluster's membership, as the restored node starts with it.
    pub members: BTreeMap<u64, String>,
}

/// Refuses a data dir a restore did not finish writing: its state may be half there.
pub fn refuse_unfinished(data_dir: &Path) -> anyhow::Result<()> {
    if data_dir.join(UNFINISHED).exists() {
        bail!(
            "{} holds {UNFINISHED}: an `invctl restore` into it did not finish; run it again \
             (it starts over) or wipe the directory",
            data_dir.display()
        );
    }
    Ok(())
}

pub async fn run(
    snapshot: &Path,
    config_path: &Path,
    cluster_id: Option<ClusterId>,
) -> anyhow::Result<Restored> {
    let config = NodeConfig::load(config_path)
        .with_context(|| format!("{} is not a valid node config", config_path.display()))?;
    ensure!(
        config.initial_members.contains_key(&config.id),
        "{}: initial_members must list the new cluster's members, node {} among them; a \
         restored node starts as a member and is never added later",
        config_path.display(),
        config.id
    );
    // Read-only checks first: a refused restore leaves no trace.
    refuse_occupied(&config.data_dir)?;
    let verified = snapshot_file::verify(snapshot)?;
    ensure!(
        verified.last_applied_index.is_some(),
        "{} covers no log entry: there is nothing to restore",
        snapshot.display()
    );
    let cluster_id = match cluster_id {
        Some(id) => id,
        None => derived_id(snapshot, &config.initial_members)?,
    };
    prepare_data_dir(&config.data_dir)?;
    mark_unfinished(&config.data_dir)?;
    let mut restored = write_state(&config, snapshot).await?;
    cluster_id::store(&config.data_dir, cluster_id).with_context(|| {
        format!(
            "cannot store the cluster id in {}",
            config.data_dir.display()
        )
    })?;
    restored.cluster_id = cluster_id.to_string();
    let marker = config.data_dir.join(UNFINISHED);
    std::fs::remove_file(&marker).with_context(|| format!("cannot remove {}", marker.display()))?;
    sync_dir(&config.data_dir)?;
    Ok(restored)
}

/// The id of a cluster restored from `snapshot` with `members`; see [`ClusterId::derive`].
fn derived_id(snapshot: &Path, members: &BTreeMap<u64, String>) -> anyhow::Result<ClusterId> {
    let mut seed =
        std::fs::read(snapshot).with_context(|| format!("cannot read {}", snapshot.display()))?;
    for (id, addr) in members {
        seed.extend_from_slice(format!("\n{id}={addr}").as_bytes());
    }
    Ok(ClusterId::derive(&seed))
}

/// The data dir's entries, or none when it does not exist yet.
fn entries(dir: &Path) -> anyhow::Result<Vec<String>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    std::fs::read_dir(dir)
        .with_context(|| format!("cannot read data dir {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read data dir {}", dir.display()))
}

/// Accepts a missing or empty data dir, or one holding only what an unfinished restore
/// wrote; refuses anything else, so restore can never overwrite a node's state.
fn refuse_occupied(dir: &Path) -> anyhow::Result<()> {
    let names = entries(dir)?;
    let unfinished = names.iter().any(|n| n == UNFINISHED);
    let only_ours = names.iter().all(|n| {
        n == UNFINISHED || WRITTEN.contains(&n.as_str()) || WRITTEN_FILES.contains(&n.as_str())
    });
    if names.is_empty() || (unfinished && only_ours) {
        return Ok(());
    }
    bail!(
        "data dir {} is not empty ({}): restore only writes into an empty directory, so it \
         can never overwrite a node's state; give the node a new data_dir or wipe this one",
        dir.display(),
        names.join(", ")
    )
}

/// Creates the data dir, or cleans what an unfinished restore left in it.
fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data dir {}", dir.display()))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        return Ok(());
    }
    for name in WRITTEN {
        let path = dir.join(name);
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    for name in WRITTEN_FILES {
        let path = dir.join(name);
        if path.exists() {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    sync_dir(dir)
}

fn mark_unfinished(dir: &Path) -> anyhow::Result<()> {
    let path = dir.join(UNFINISHED);
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.sync_all()?;
    sync_dir(dir)
}

async fn write_state(config: &NodeConfig, snapshot: &Path) -> anyhow::Result<Restored> {
    let members: BTreeMap<u64, BasicNode> = config
        .initial_members
        .iter()
        .map(|(id, addr)| (*id, BasicNode::new(addr)))
        .collect();
    let sled_dir = config.data_dir.join("db");
    let db =
        sled::open(&sled_dir).with_context(|| format!("cannot open {}", sled_dir.display()))?;
    // `sync_on_flush`: the checkpoint restore makes is fsynced like the node's own.
    let store = Arc::new(state_machine::Store::open(&db)?.sync_on_flush(&sled_dir)?);
    let mut state_machine = StateMachine::open(store, &config.data_dir.join("snapshots"))?;
    let file = std::fs::File::open(snapshot)
        .with_context(|| format!("cannot open {}", snapshot.display()))?;
    let restored = state_machine
        .restore_from(file, members)
        .await
        .with_context(|| format!("cannot restore {}", snapshot.display()))?;
    let last = restored.last_log_id;

    let mut log = LogStore::open(&config.data_dir.join("raft-log"), LogOptions::default())?;
    log.purge(last).await?;
    log.save_committed(Some(last)).await?;
    // The vote's term is the snapshot's last term, for ourselves, not committed. openraft
    // 0.9 campaigns in the vote's term + 1 and a leader writes its entries under its own
    // term; log ids order by term before index. A vote in a lower term (say a fresh node's
    // 0) would let a new leader append (1, X+1) after the restored (T, X): its log ids
    // would go backwards, elections' "at least as up to date" test would rank a node with
    // only the snapshot above one holding newer committed entries, and our log store
    // refuses to open a log whose last entry's term is ahead of its vote. Term T itself
    // is safe: no one campaigns in it (elections start at T + 1) and an uncommitted vote
    // claims no leadership. `save_vote` returns after the log's records queued before it
    // (the purge and the committed id) were synced and the vote file was replaced durably.
    log.save_vote(&Vote::new(last.leader_id.term, config.id))
        .await?;
    drop(log);
    drop(state_machine);
    db.flush()?;
    Ok(Restored {
        node_id: config.id,
        data_dir: config.data_dir.clone(),
        snapshot: snapshot.to_path_buf(),
        last_log_index: last.index,
        last_log_term: last.leader_id.term,
        records: restored.records,
        cluster_id: String::new(),
        members: config.initial_members.clone(),
    })
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    crate::wal::segments::sync_dir(dir).with_context(|| format!("cannot sync {}", dir.display()))
}

pub fn print(r: &Restored) {
    let members: Vec<String> = r
        .members
        .iter()
        .map(|(id, addr)| format!("{id}={addr}"))
        .collect();
    println!(
        "restored node {} into {}: last included log index {} (term {}), {} records from {}",
        r.node_id,
        r.data_dir.display(),
        r.last_log_index,
        r.last_log_term,
        r.records,
        r.snapshot.display()
    );
    println!("cluster id: {}", r.cluster_id);
    println!("membership: {}", members.join(", "));
}
