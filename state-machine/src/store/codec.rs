//! How records are encoded in the state trees (postcard). Every decode is checked and names
//! the tree it came from.

use super::error::StoreError;
use serde::{de::DeserializeOwned, Serialize};
use std::cell::RefCell;
use std::sync::Arc;

/// A record's encoding as the trees hold it, shared between the working set, the dirty set
/// and snapshots' copies.
pub(crate) type Value = Arc<[u8]>;

/// Room for a typical order or SKU record in one allocation: grown from empty, the buffer
/// was reallocated five or six times per record (perf: a few per cent of a follower's apply).
const TYPICAL_RECORD_BYTES: usize = 256;

pub(crate) fn encode<V: Serialize>(value: &V) -> Vec<u8> {
    // Encoding our own in-memory types into a Vec cannot fail.
    postcard::to_extend(value, Vec::with_capacity(TYPICAL_RECORD_BYTES))
        .expect("postcard encoding into memory")
}

/// As `encode`, into a shared value of exactly its length (`encode_shared_with`).
pub(crate) fn encode_shared<V: Serialize>(value: &V) -> Value {
    encode_shared_with(|buffer| {
        *buffer = postcard::to_extend(value, std::mem::take(buffer))
            .expect("postcard encoding into memory");
    })
}

/// A shared value of whatever `write` appends to an empty buffer. The buffer is kept per
/// thread, so a record costs one allocation, not a buffer and then its copy.
pub(crate) fn encode_shared_with(write: impl FnOnce(&mut Vec<u8>)) -> Value {
    thread_local! {
        static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(TYPICAL_RECORD_BYTES));
    }
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        write(scratch);
        Arc::from(&scratch[..])
    })
}

/// A record type of a tree the transaction writes: how it is encoded and decoded. Always
/// postcard's format; through serde, or by hand (`wire`) for the records every order writes.
pub(crate) trait Record: Sized + Clone {
    fn encode_shared(&self) -> Value;
    fn decode(tree: &str, bytes: &[u8]) -> Result<Self, StoreError>;
}

/// `Record` through serde, for the types no order writes on its common path.
macro_rules! serde_record {
    ($($type:ty),*) => {$(
        impl Record for $type {
            fn encode_shared(&self) -> Value {
                encode_shared(self)
            }

            fn decode(tree: &str, bytes: &[u8]) -> Result<Self, StoreError> {
                decode(tree, bytes)
            }
        }
    )*};
}

serde_record!(
    u64,
    crate::model::RestockRecord,
    crate::model::PatchRecord,
    crate::events::SalesCounts
);

impl Record for crate::model::Order {
    fn encode_shared(&self) -> Value {
        encode_shared_with(|buffer| super::wire::encode_order(self, buffer))
    }

    fn decode(_tree: &str, bytes: &[u8]) -> Result<Self, StoreError> {
        super::wire::decode_order(bytes)
    }
}

impl Record for crate::model::Sku {
    fn encode_shared(&self) -> Value {
        encode_shared_with(|buffer| super::wire::encode_sku(self, buffer))
    }

    fn decode(_tree: &str, bytes: &[u8]) -> Result<Self, StoreError> {
        super::wire::decode_sku(bytes)
    }
}

pub(crate) fn decode<V: DeserializeOwned>(tree: &str, bytes: &[u8]) -> Result<V, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("{tree}: {e}")))
}

/// As `decode`, of the fields a record's encoding starts with; the rest is not read.
pub(crate) fn decode_prefix<V: DeserializeOwned>(
    tree: &str,
    bytes: &[u8],
) -> Result<V, StoreError> {
    postcard::take_from_bytes(bytes)
        .map(|(value, _rest)| value)
        .map_err(|e| StoreError::Corrupt(format!("{tree}: {e}")))
}
