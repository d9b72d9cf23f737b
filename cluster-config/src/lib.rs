//! The TOML schema for nodes and gateways, its validation, and sample configs; and, in
//! [`mtls`], the identities those configs name (CA, role certificates, API tokens).
//!
//! A node reads a [`NodeConfig`] and a gateway a [`GatewayConfig`]; both are
//! parsed with unknown fields rejected and then validated, so a typo or an
//! unworkable value stops the process at start-up with a [`ConfigError`] that
//! names the offending field. The sample configs are embedded so binaries
//! can write them out without any file on disk, and [`local_cluster`] builds
//! a ready-to-run cluster on localhost for demos and tests, which [`launch`] starts.

mod addr;
mod error;
mod gateway;
pub mod launch;
pub mod logging;
pub mod mtls;
mod node;
mod samples;
mod tls;
mod workers;

pub use error::ConfigError;
pub use gateway::{ApiToken, GatewayConfig, HttpsSettings};
pub use node::{local_cluster, ClockSettings, GroupCommit, NodeConfig, RaftTiming, Storage};
pub use samples::{sample_five_node, sample_gateway, sample_three_node};
pub use tls::{TlsFiles, TlsSettings};
