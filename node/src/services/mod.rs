//! The three gRPC services a node serves on its one port.

pub mod admin;
pub mod inventory;
pub mod raft;
mod snapshot_wait;
