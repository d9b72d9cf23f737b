//! The `invctl` subcommands. Each talks gRPC to the nodes' admin service (calls that need
//! the leader follow its "not leader" hint), except `events`, which reads the feed through a
//! gateway's HTTP API like any consumer.

pub mod admin;
pub mod certs;
pub mod demo;
pub mod events;
pub mod exit_code;
pub mod gateway_http;
pub mod membership;
pub mod output;
pub mod restore;
pub mod snapshot_file;
pub mod status;
