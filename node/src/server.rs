//! Starts a node from its config: opens sled, builds Raft, serves the gRPC services,
//! initialises a brand-new cluster (lowest-id initial member only, never on restart, never
//! when a peer already belongs to a cluster), and shuts down cleanly when asked.

use crate::clock::Clocks;
use crate::cluster_id::{self, ClusterIdentity};
use crate::group_commit::GroupCommit;
use crate::log_store::{LogOptions, LogStore};
use crate::metrics::{HotPath, NodeMetrics};
use crate::network::{Network, MAX_MESSAGE_BYTES};
use crate::read_index::ReadIndex;
use crate::services::{admin::AdminService, inventory::InventoryService, raft::RaftService};
use crate::state_machine_store::StateMachine;
use crate::tls::{NodeTls, ADMIN_ROLES, HEALTH_ROLES, INVENTORY_ROLES, RAFT_ROLES};
use crate::types::Raft;
use anyhow::Context;
use cluster_config::mtls::Dialer;
use cluster_config::NodeConfig;
use openraft::{BasicNode, SnapshotPolicy};
use proto::admin::admin_server::AdminServer;
use proto::inventory::inventory_server::InventoryServer;
use proto::raft::raft_server::RaftServer;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use tonic::service::interceptor::InterceptedService;

/// sled's page cache. Apply and reads use the in-memory state; sled is written by
/// checkpoints and read at start, so its cache need not hold the working set.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// HTTP/2 streams one connection may have open at once: a gateway multiplexes its whole
/// load over one connection, so this is generous, but one client cannot open unbounded
/// server tasks.
const MAX_STREAMS_PER_CONNECTION: u32 = 1024;
/// Entries per AppendEntries: each may carry thousands of commands.
const MAX_PAYLOAD_ENTRIES: u64 = 64;
/// How long the initialiser of an empty data dir waits for each peer's status before it
/// decides no cluster exists yet (they are asked at once).
const PEER_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub fn raft_config(config: &NodeConfig) -> anyhow::Result<openraft::Config> {
    let t = &config.raft;
    let raft = openraft::Config {
        cluster_name: "flashstock".into(),
        heartbeat_interval: t.heartbeat_ms,
        election_timeout_min: t.election_timeout_min_ms,
        election_timeout_max: t.election_timeout_max_ms,
        // `snapshot_trigger` decides, by count and by size.
        snapshot_policy: SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: t.max_in_snapshot_log_to_keep,
        install_snapshot_timeout: t.install_snapshot_timeout_ms,
        max_payload_entries: MAX_PAYLOAD_ENTRIES,
        purge_batch_size: 64,
        ..Default::default()
    };
    Ok(raft.validate()?)
}

/// The chaos suite's `kill-lose-unsynced` fault sets this variable on the nodes it starts:
/// each restart then loses every log byte written after the last completed `fdatasync`.
pub const LOSE_UNSYNCED_ENV: &str = "FLASHSTOCK_TEST_LOSE_UNSYNCED";

fn log_options(storage: &cluster_config::Storage, metrics: &HotPath) -> LogOptions {
    let lose_unsynced_on_open = std::env::var_os(LOSE_UNSYNCED_ENV).is_some_and(|v| v == "1");
    if lose_unsynced_on_open {
        tracing::warn!("test mode: the Raft log loses its unsynced tail at every start");
    }
    LogOptions {
        cache_bytes: storage.log_cache_bytes(),
        lose_unsynced_on_open,
        fsync_seconds: metrics.wal_fsync.clone(),
        cached_bytes: metrics.log_cached_bytes.clone(),
        read_back: metrics.log_entries_read_back.clone(),
        ..LogOptions::default()
    }
}

/// Runs the node until `shutdown` completes.
pub async fn run(
    config: NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    crate::cli::restore::refuse_unfinished(&config.data_dir)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let sled_dir = config.data_dir.join("db");
    let db = sled::Config::new()
        .path(&sled_dir)
        .cache_capacity(CACHE_BYTES)
        .open()
        .with_context(|| format!("cannot open sled in {}", config.data_dir.display()))?;
    let identity = ClusterIdentity::open(&config.data_dir)?;
    // Made even without `metrics_addr`: observing costs a few atomics, and one code path is
    // simpler than two.
    let metrics = NodeMetrics::default();
    let log_store = LogStore::open(
        &config.data_dir.join("raft-log"),
        log_options(&config.storage, &metrics.hot),
    )?;
    let store = Arc::new(state_machine::Store::open(&db)?.sync_on_flush(&sled_dir)?);
    let clocks = Clocks::new(&config.clock);
    let tls = NodeTls::load(&config)?;
    let checkpoint_due = crate::checkpointer::EntriesDue::new(config.storage.checkpoint_entries);
    let state_machine = StateMachine::open(store.clone(), &config.data_dir.join("snapshots"))?
        .with_clocks(clocks.clone())
        .with_metrics(metrics.hot.clone())
        .with_checkpoint_due(checkpoint_due.clone());
    let log_sizes = log_store.sizes();
    let raft = Raft::new(
        config.id,
        Arc::new(raft_config(&config)?),
        Network::new(config.id, tls.dialer(), identity.clone()),
        log_store,
        state_machine,
    )
    .await?;

    refuse_reinitialisation(&raft, &config, &tls.dialer()).await?;
    metrics.watch(raft.clone());
    let proposer = GroupCommit::start(
        raft.clone(),
        config.group_commit.max_batch,
        clocks.clone(),
        &metrics.hot,
    );
    let reads = ReadIndex::start(raft.clone(), clocks.clone());
    crate::expiry::start(raft.clone(), store.clone(), proposer.clone());
    let checkpoints = crate::checkpointer::start(
        store.clone(),
        std::time::Duration::from_millis(config.storage.checkpoint_interval_ms),
        checkpoint_due,
        metrics.hot.clone(),
    );
    crate::snapshot_trigger::start(
        raft.clone(),
        log_sizes,
        config.data_dir.join("snapshots"),
        crate::snapshot_trigger::Rules {
            entries: config.raft.snapshot_logs_since_last,
            floor_bytes: config.raft.snapshot_log_bytes_since_last(),
        },
    );

    // Before the gRPC port: a metrics address that cannot be bound stops the node before it
    // serves anything, rather than leave it running unwatched.
    let metrics_server = match config.metrics_addr {
        Some(addr) => Some(crate::metrics::http::start(addr, metrics.clone(), raft.clone()).await?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(
        id = config.id,
        listen = %config.listen,
        advertise = %config.advertise,
        runtime_workers = tokio::runtime::Handle::current().metrics().num_workers(),
        "node listening"
    );
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let mut builder = tonic::transport::Server::builder()
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION));
    if let Some(tls_config) = tls.server_config() {
        builder = builder
            .tls_config(tls_config)
            .context("bad TLS certificate or key")?;
    }
    let raft_service = RaftServer::new(RaftService::new(
        raft.clone(),
        config.id,
        identity.clone(),
        config.initial_members.keys().next().copied(),
        stopping,
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let inventory_service = InventoryServer::new(InventoryService::new(
        raft.clone(),
        store.clone(),
        proposer,
        reads,
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let admin_service = AdminServer::new(AdminService::new(
        raft.clone(),
        config.advertise.clone(),
        clocks.clone(),
        store.clone(),
        identity.clone(),
    ));
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    crate::health::start(raft.clone(), metrics.progress.clone(), health_reporter);
    let server = builder
        .add_service(InterceptedService::new(
            health_service,
            tls.gate("health", HEALTH_ROLES),
        ))
        .add_service(InterceptedService::new(
            InterceptedService::new(raft_service, check(&identity, "raft")),
            tls.gate("raft", RAFT_ROLES),
        ))
        .add_service(InterceptedService::new(
            inventory_service,
            tls.gate("inventory", INVENTORY_ROLES),
        ))
        .add_service(InterceptedService::new(
            InterceptedService::new(admin_service, check(&identity, "admin")),
            tls.gate("admin", ADMIN_ROLES),
        ))
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stop_rx.await;
        });
    let server = tokio::spawn(server);

    crate::clock_monitor::start(
        raft.clone(),
        clocks,
        config.id,
        tls.dialer(),
        identity.clone(),
        metrics.clock_offset.clone(),
    );
    initialise_if_new(&raft, &config, &identity).await?;

    let failure = tokio::select! {
        () = shutdown => None,
        failed = checkpoints => Some(match failed {
            Ok(e) => format!("a checkpoint of the state failed: {e}"),
            Err(e) => format!("the checkpointer stopped: {e}"),
        }),
        fatal = raft_stopped(raft.clone()) => Some(format!("raft stopped: {fatal}")),
    };
    match &failure {
        None => tracing::info!(id = config.id, "shutting down"),
        Some(reason) => tracing::error!(id = config.id, %reason, "stopping the node"),
    }
    let _ = stopping_tx.send(true);
    let _ = stop_tx.send(());
    if let Err(e) = raft.shutdown().await {
        tracing::warn!(error = %e, "raft shutdown");
    }
    let _ = server.await;
    if let Some(reason) = failure {
        // Fail-stop: storage that failed once is not trusted again in this process. What
        // was acknowledged is in the log; the next start replays it from the last good
        // checkpoint (and says so, or why it cannot start).
        anyhow::bail!(
            "{reason}; the node stopped: free the disk or fix the fault, then start it \
             again and it replays its log from the last good checkpoint"
        );
    }
    let last = store.clone();
    tokio::task::spawn_blocking(move || last.checkpoint()).await??;
    // Last: `/healthz` answers for as long as the process does its work.
    drop(metrics_server);
    Ok(())
}

/// Resolves, with openraft's reason, once the Raft core has stopped on a fatal error (a
/// failed log write, say): the node cannot take part any more, so it stops.
async fn raft_stopped(raft: Raft) -> String {
    let mut metrics = raft.metrics();
    loop {
        if let Err(fatal) = &metrics.borrow().running_state {
            return fatal.to_string();
        }
        if crate::metrics::pace::next_change(&mut metrics)
            .await
            .is_err()
        {
            return "its metrics channel closed".into();
        }
    }
}

fn check(identity: &ClusterIdentity, service: &'static str) -> cluster_id::Check {
    cluster_id::Check {
        identity: identity.clone(),
        service,
    }
}

/// The initialiser with an empty data dir asks its peers first: one that already belongs to
/// a cluster means this node is a wiped member, and initialising would make a second cluster
/// under the same node ids. Peers that do not answer count as new (a fresh cluster, or all
/// down: then the cluster ids keep the two clusters apart).
async fn refuse_reinitialisation(
    raft: &Raft,
    config: &NodeConfig,
    dialer: &Dialer,
) -> anyhow::Result<()> {
    if !config.is_initialiser() || raft.is_initialized().await? {
        return Ok(());
    }
    let peers = config
        .initial_members
        .iter()
        .filter(|(id, _)| **id != config.id);
    let answers = futures::future::join_all(peers.map(|(id, addr)| async move {
        let status = crate::client::status_via(dialer, addr, PEER_PROBE_TIMEOUT).await;
        (*id, addr, status)
    }))
    .await;
    for (id, addr, status) in answers {
        match status {
            Ok(s) if !s.cluster_id.is_empty() => anyhow::bail!(
                "node {} has an empty data dir ({}) but its peer node {id} at {addr} already \
                 belongs to cluster {}: this node is a wiped member of that cluster, and \
                 initialising would start a second cluster under the same node ids. Not \
                 initialising; see \"Recovering a wiped node\" in the README",
                config.id,
                config.data_dir.display(),
                s.cluster_id
            ),
            Ok(_) => tracing::debug!(peer = id, "peer has no cluster yet"),
            Err(e) => {
                tracing::info!(peer = id, %addr, error = %e, "peer did not answer before initialising")
            }
        }
    }
    Ok(())
}

async fn initialise_if_new(
    raft: &Raft,
    config: &NodeConfig,
    identity: &ClusterIdentity,
) -> anyhow::Result<()> {
    if !config.is_initialiser() || raft.is_initialized().await? {
        return Ok(());
    }
    // Stored before `initialize`: every entry this node will replicate carries it.
    let cluster_id = identity.get_or_create().await.with_context(|| {
        format!(
            "cannot store the cluster id in {}",
            config.data_dir.display()
        )
    })?;
    let members: BTreeMap<u64, BasicNode> = config
        .initial_members
        .iter()
        .map(|(id, addr)| (*id, BasicNode::new(addr)))
        .collect();
    tracing::info!(?members, %cluster_id, "initialising a new cluster");
    match raft.initialize(members).await {
        Ok(()) => Ok(()),
        // Someone else's vote or log got here first: the cluster exists.
        Err(e)
            if matches!(
                e.api_error(),
                Some(openraft::error::InitializeError::NotAllowed(_))
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
