//! The Raft replica: openraft glue (sled log store, state-machine adapter, gRPC network and services), the node binary and the admin CLI.
