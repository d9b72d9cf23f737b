//! The gRPC contracts between nodes (`raft`), gateways and nodes (`inventory`), and the admin
//! CLI and nodes (`admin`), with their generated tonic/prost code. Nothing else lives here.

pub mod raft {
    tonic::include_proto!("raft");
}

pub mod inventory {
    tonic::include_proto!("inventory");
}

pub mod admin {
    tonic::include_proto!("admin");
}
