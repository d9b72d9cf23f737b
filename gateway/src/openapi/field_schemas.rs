//! Schemas of single fields that the view types name with `#[schema(schema_with = ...)]`.
//! A leaf of the document: the views and the cluster status read it, and it reads no view,
//! so the document's module and the types it describes do not import each other in a circle.

use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::Ref;

/// `Order.status`.
pub fn order_status() -> ObjectBuilder {
    names(state_machine::OrderStatus::ALL.map(state_machine::OrderStatus::as_str))
}

/// `Event.type`.
pub fn event_type() -> ObjectBuilder {
    names(state_machine::EventKind::ALL.map(state_machine::EventKind::as_str))
}

/// `ClusterNode.role`.
pub fn node_role() -> ObjectBuilder {
    names(proto::MemberRole::API.map(proto::MemberRole::as_str))
}

/// An order batch's result carries the error member as a lone answer would.
pub fn error_detail_ref() -> Ref {
    Ref::from_schema_name(super::errors::ERROR_DETAIL)
}

fn names<const N: usize>(values: [&'static str; N]) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
}
