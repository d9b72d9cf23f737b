//! A Raft replica of the inventory: openraft glue (write-ahead log store, state-machine adapter,
//! gRPC network), the gRPC services for peers, gateways and the admin CLI, the leader's group
//! commit, read index and expiry ticker, and the node binary. Its one HTTP server is the
//! optional metrics and health listener (`metrics`).

// openraft's storage traits fix `StorageError` (a large enum) as the error type of every
// storage call; boxing it in our helpers would only add conversions at each trait boundary.
#![allow(clippy::result_large_err)]

pub mod append_budget;
pub mod bench;
pub mod checkpointer;
pub mod cli;
pub mod client;
pub mod clock;
pub mod clock_monitor;
pub mod cluster_id;
pub mod codec;
pub mod config_summary;
pub mod expiry;
pub mod group_commit;
pub mod health;
pub mod in_flight;
pub mod launcher;
pub mod leader;
pub mod log_store;
pub mod low_priority;
pub mod metrics;
pub mod network;
pub mod paced_writer;
pub mod read_index;
pub mod refusal_reads;
pub mod server;
pub mod services;
pub mod snapshot_trigger;
pub mod state_machine_store;
pub mod tls;
pub mod types;
pub mod wal;
