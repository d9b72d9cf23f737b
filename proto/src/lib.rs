//! The gRPC contracts (raft, inventory, admin) and their generated code.
