//! How records are encoded in the state trees (postcard). Every decode is checked and names
//! the tree it came from.

use super::error::StoreError;
use serde::{de::DeserializeOwned, Serialize};

pub(crate) fn encode<V: Serialize>(value: &V) -> Vec<u8> {
    // Encoding our own in-memory types into a Vec cannot fail.
    postcard::to_allocvec(value).expect("postcard encoding into memory")
}

pub(crate) fn decode<V: DeserializeOwned>(tree: &str, bytes: &[u8]) -> Result<V, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("{tree}: {e}")))
}
