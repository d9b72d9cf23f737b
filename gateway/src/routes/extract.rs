//! Path ids checked against the identifier rule: an id in a URL that breaks it is a `400`
//! naming `sku` or `order_id`, never a lookup that cannot succeed.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use state_machine::{OrderId, SkuId};

use crate::error::ApiError;

/// The `{sku}` of a route.
pub struct SkuPath(pub SkuId);

/// The `{order_id}` of a route.
pub struct OrderPath(pub OrderId);

async fn path_id<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    field: &str,
) -> Result<String, ApiError> {
    Path::<String>::from_request_parts(parts, state)
        .await
        .map(|Path(id)| id)
        // Percent-encoding that does not decode to UTF-8 cannot be an identifier either.
        .map_err(|e| ApiError::invalid_field(field, e.body_text()))
}

impl<S: Send + Sync> FromRequestParts<S> for SkuPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = path_id(parts, state, "sku").await?;
        Ok(SkuPath(SkuId::parse("sku", raw)?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OrderPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = path_id(parts, state, "order_id").await?;
        Ok(OrderPath(OrderId::parse("order_id", raw)?))
    }
}
