//! How records are encoded in the state trees (postcard). Every decode is checked and names
//! the tree it came from.

use super::error::StoreError;
use serde::{de::DeserializeOwned, Serialize};

/// Room for a typical order or SKU record in one allocation: grown from empty, the buffer
/// was reallocated five or six times per record (perf: a few per cent of a follower's apply).
const TYPICAL_RECORD_BYTES: usize = 256;

pub(crate) fn encode<V: Serialize>(value: &V) -> Vec<u8> {
    // Encoding our own in-memory types into a Vec cannot fail.
    postcard::to_extend(value, Vec::with_capacity(TYPICAL_RECORD_BYTES))
        .expect("postcard encoding into memory")
}

pub(crate) fn decode<V: DeserializeOwned>(tree: &str, bytes: &[u8]) -> Result<V, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("{tree}: {e}")))
}
