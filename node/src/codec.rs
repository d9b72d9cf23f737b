//! Encodings of what the node writes to disk and sends to peers. postcard is compact and
//! deterministic; every decode is checked, never trusted.

use serde::{de::DeserializeOwned, Serialize};

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding our own in-memory values into a Vec cannot fail.
    postcard::to_allocvec(value).expect("postcard encoding into memory")
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}
