//! A Raft replica of the inventory: openraft glue (sled log store, state-machine adapter,
//! gRPC network), the gRPC services for peers, gateways and the admin CLI, the leader's group
//! commit and expiry ticker, and the node binary. It knows nothing of HTTP.

pub mod codec;
pub mod log_store;
pub mod state_machine_store;
pub mod types;
