//! The one way node processes are started, shared by `invctl demo`/`bench`, the node's and
//! the gateway's integration tests and the chaos harness, so that the four cannot drift in
//! how a config is written, a binary found, a node killed or asked whether it answers.
//!
//! - [`binary`] — the sibling binaries (`flashstock-node`, `flashstock-gateway`) next to the
//!   running executable, built with the cargo that ran it when missing.
//! - [`process`] — one child process: its command (with an optional prefix such as
//!   `ip netns exec NS`), its log file, signals, and a SIGKILL when dropped.
//! - [`nodes`] — a cluster's node configs and processes: write a config, start, SIGKILL,
//!   SIGTERM, restart one node, wait until it listens.
//! - [`probe`] — the admin `Status` of a node, and waiting for a leader every live node names
//!   or for an applied index.
//! - [`certs`] — a fresh CA and the node, gateway and operator certificates of a cluster
//!   started under mTLS.
//!
//! The launcher reads configs and drives binaries; it knows nothing of the node's internals.

pub mod binary;
pub mod certs;
pub mod nodes;
pub mod probe;
pub mod process;

pub use binary::sibling;
pub use certs::{ClusterCerts, Lifetime};
pub use nodes::{free_ports, loopback_test_configs, Layout, Nodes};
pub use process::{LogMode, Process, Signal, Spawn};
