//! Key layouts of the state trees. Identifiers never contain a NUL byte (the identifier rule
//! forbids it), so NUL separates the parts of a composite key and a prefix scan over
//! `sku\0` cannot run into the keys of a SKU whose id merely starts the same way.

use crate::validation::{RequestId, SkuId, UserId};

const SEP: u8 = 0;

/// Keys of the `applied` tree: the state machine's clock and the caller's applied marker.
pub(crate) const CLOCK_KEY: &[u8] = b"clock";
pub(crate) const MARKER_KEY: &[u8] = b"marker";
/// Key of the `applied` tree holding the newest event id.
pub(crate) const EVENTS_HEAD_KEY: &[u8] = b"events_head";

/// `sku \0 user`: the units a user holds of a SKU.
pub fn hold(sku: &SkuId, user: &UserId) -> Vec<u8> {
    join(sku.as_str().as_bytes(), user.as_str().as_bytes())
}

/// `sku \0`: what every hold key of a SKU starts with.
pub fn hold_prefix(sku: &SkuId) -> Vec<u8> {
    join(sku.as_str().as_bytes(), &[])
}

/// `sku \0 request_id`: a restock already applied to a SKU.
pub fn restock(sku: &SkuId, request_id: &RequestId) -> Vec<u8> {
    join(sku.as_str().as_bytes(), request_id.as_str().as_bytes())
}

/// `sku \0 request_tag (BE)`: a tagged patch already applied to a SKU.
pub fn patch(sku: &SkuId, request_tag: u64) -> Vec<u8> {
    join(sku.as_str().as_bytes(), &request_tag.to_be_bytes())
}

/// `id (BE)`: events in id order.
pub fn event(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

pub fn event_id(key: &[u8]) -> Option<u64> {
    key.try_into().ok().map(u64::from_be_bytes)
}

/// `sku \0 start_ms (BE)`: a SKU's sales buckets in time order.
pub fn sales(sku: &[u8], start_ms: u64) -> Vec<u8> {
    join(sku, &start_ms.to_be_bytes())
}

/// The bucket start at the end of a sales key.
pub fn sales_start(key: &[u8]) -> Option<u64> {
    key.len()
        .checked_sub(8)
        .and_then(|at| key[at..].try_into().ok())
        .map(u64::from_be_bytes)
}

/// `tag · n (BE)`: a sled record that holds many records (an event chunk, a run). The tag
/// keeps such keys apart from the one-record keys of earlier releases.
pub fn tagged(tag: u8, n: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = tag;
    key[1..].copy_from_slice(&n.to_be_bytes());
    key
}

/// The number of a `tagged` key with `tag`, or `None` for any other key.
pub fn untagged(tag: u8, key: &[u8]) -> Option<u64> {
    match key {
        [first, rest @ ..] if *first == tag => rest.try_into().ok().map(u64::from_be_bytes),
        _ => None,
    }
}

fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(a.len() + 1 + b.len());
    key.extend_from_slice(a);
    key.push(SEP);
    key.extend_from_slice(b);
    key
}
