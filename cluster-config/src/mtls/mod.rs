//! Mutual TLS between flashstock processes.
//!
//! Every process holds a certificate signed by the cluster's own CA; its role (node with its
//! id, gateway, admin with a name) is a `flashstock://` URI SAN in that certificate, so the
//! server decides what a caller may do from the certificate alone, never from anything the
//! caller says about itself.
//!
//! - [`role`]: the roles and how they are written in and read from a certificate.
//! - `role_cache`: the roles of certificates already read, for the role gate.
//! - [`certs`]: making the CA and the certificates it signs (`invctl certs`).
//! - [`key_file`]: writing and reading private keys without ever exposing them to others.
//! - [`grpc`]: tonic glue: server config, a dialer for clients, the per-service role gate.
//! - [`provider`]: the process-wide TLS 1.3-only crypto provider.
//! - [`token`]: the HTTP API's bearer tokens and the hashes configs keep of them.

pub mod certs;
pub mod grpc;
pub mod key_file;
pub mod provider;
pub mod role;
mod role_cache;
pub mod token;

pub use grpc::{Dialer, PemIdentity, RoleGate, NODE_DNS_NAME};
pub use role::{Role, RoleKind};
