//! The `invctl` subcommands. Each talks gRPC to the nodes' admin service; calls that need
//! the leader follow its "not leader" hint.

pub mod admin;
pub mod demo;
pub mod exit_code;
pub mod membership;
pub mod output;
pub mod snapshot_file;
pub mod status;
