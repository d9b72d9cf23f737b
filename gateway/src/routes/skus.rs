//! `/v1/skus`: create, restock, patch, get and list SKUs.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use state_machine::{SalesBucket, Sku, SkuId};

use super::extract::SkuPath;
use super::{json, sku_answer, submit, OnApplied, Shared};
use crate::body::JsonBody;
use crate::cluster::Read;
use crate::error::ApiError;
use crate::ids::new_request_tag;
use crate::requests::{CreateSkuBody, ListSkusQuery, PatchSkuBody, RestockBody, SalesQuery};
use crate::views::{SalesView, SkuPage, SkuView};

pub async fn create(
    State(state): State<Shared>,
    JsonBody(body): JsonBody<CreateSkuBody>,
) -> Result<Response, ApiError> {
    let command = body.into_command(new_request_tag())?;
    sku_answer(submit(&state, &command).await?, OnApplied::Created)
}

pub async fn restock(
    State(state): State<Shared>,
    SkuPath(sku): SkuPath,
    JsonBody(body): JsonBody<RestockBody>,
) -> Result<Response, ApiError> {
    let command = body.into_command(sku, new_request_tag())?;
    sku_answer(submit(&state, &command).await?, OnApplied::Ok)
}

pub async fn patch(
    State(state): State<Shared>,
    SkuPath(sku): SkuPath,
    JsonBody(body): JsonBody<PatchSkuBody>,
) -> Result<Response, ApiError> {
    let command = body.into_command(sku, new_request_tag())?;
    sku_answer(submit(&state, &command).await?, OnApplied::Ok)
}

pub async fn get(State(state): State<Shared>, SkuPath(sku): SkuPath) -> Result<Response, ApiError> {
    let found: Option<Sku> = state
        .cluster
        .read(Read::Sku(sku.as_str().to_owned()), state.cluster.deadline())
        .await?;
    match found {
        Some(record) => Ok(json(StatusCode::OK, SkuView::from(&record))),
        None => Err(ApiError::sku_not_found(sku.as_str())),
    }
}

pub async fn list(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = ListSkusQuery::parse(query.as_deref())?;
    let read = Read::Skus {
        after: query.after.map(SkuId::into_string).unwrap_or_default(),
        limit: query.limit,
    };
    let (skus, next): (Vec<Sku>, Option<SkuId>) =
        state.cluster.read(read, state.cluster.deadline()).await?;
    Ok(json(
        StatusCode::OK,
        SkuPage {
            skus: skus.iter().map(SkuView::from).collect(),
            next: next.as_ref().map(SkuId::as_str),
        },
    ))
}

pub async fn sales(
    State(state): State<Shared>,
    SkuPath(sku): SkuPath,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = SalesQuery::parse(query.as_deref())?;
    let read = Read::Sales {
        sku: sku.as_str().to_owned(),
        from_ms: query.from_ms,
        to_ms: query.to_ms,
    };
    let found: Option<Vec<SalesBucket>> =
        state.cluster.read(read, state.cluster.deadline()).await?;
    match found {
        Some(buckets) => Ok(json(StatusCode::OK, SalesView::new(sku.as_str(), &buckets))),
        None => Err(ApiError::sku_not_found(sku.as_str())),
    }
}
