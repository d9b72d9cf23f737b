//! The gRPC contracts between nodes (`raft`), gateways and nodes (`inventory`), and the admin
//! CLI and nodes (`admin`), with their generated tonic/prost code; and [`MemberRole`], the
//! one reading of the `role` those contracts carry. Nothing else lives here.

pub mod role;

pub use role::MemberRole;

pub mod raft {
    tonic::include_proto!("raft");
}

pub mod inventory {
    tonic::include_proto!("inventory");
}

pub mod admin {
    tonic::include_proto!("admin");
}
