//! The gRPC contracts between nodes (`raft`), gateways and nodes (`inventory`), and the admin
//! CLI and nodes (`admin`), with their generated tonic/prost code; and [`MemberRole`], the
//! one reading of the `role` those contracts carry, the metadata key of request ids, and
//! [`eager_end::EagerEnd`], how clients of these contracts send their request bodies.
//! Nothing else lives here.

pub mod eager_end;
pub mod role;

pub use role::MemberRole;

/// gRPC metadata from a gateway to a node: the ids of the HTTP requests a call serves (API.md
/// "Request ids"), one id, or several joined by `,` when the gateway batched their commands
/// into one `Submit`. A node logs them on the call's span, so one order can be followed from
/// the gateway into the log.
pub const REQUEST_ID_METADATA: &str = "x-request-id";

pub mod raft {
    tonic::include_proto!("raft");
}

pub mod inventory {
    tonic::include_proto!("inventory");
}

pub mod admin {
    tonic::include_proto!("admin");
}
