//! The identifier and range rules of the HTTP API, as constructors that return typed errors.
//!
//! The gateway validates requests with these before anything reaches the cluster, and the
//! types re-check the rules when a command is decoded from the log, so a value that broke
//! a rule can never be applied.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

/// Largest count the API promises (2^53 - 1): every count stays exact in a JSON double.
pub const MAX_COUNT: u64 = (1 << 53) - 1;
/// Largest `qty` of one item.
pub const MAX_QTY: u64 = 1_000_000;
/// Most items one order may carry.
pub const MAX_ITEMS: usize = 64;
/// Bounds and default of `reservation_ttl_ms`.
pub const MIN_TTL_MS: u64 = 1_000;
pub const MAX_TTL_MS: u64 = 86_400_000;
pub const DEFAULT_TTL_MS: u64 = 900_000;

const MAX_SKU_LEN: usize = 64;
const MAX_ID_LEN: usize = 128;

/// A value that breaks an API rule; `field` names it the way API.md does (`items[3].qty`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

/// `is_ident_char` by byte. Every allowed character is ASCII, so a byte of a multi-byte
/// character is never allowed and a string passes byte by byte exactly when it passes
/// character by character. Each identifier of each command is checked again by every node
/// that decodes it, and decoding characters cost about 200 instructions an identifier
/// (callgrind).
const IDENT_BYTES: [bool; 256] = {
    let mut allowed = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let c = byte as u8;
        allowed[byte] = c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-');
        byte += 1;
    }
    allowed
};

fn check_ident(field: &str, value: &str, max_len: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.len() > max_len {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max_len} characters, got {}", value.len()),
        ));
    }
    if value.bytes().all(|b| IDENT_BYTES[usize::from(b)]) {
        return Ok(());
    }
    // Only a refusal pays for decoding characters, to name the first bad one.
    let bad = value.chars().find(|c| !is_ident_char(*c)).unwrap_or('?');
    Err(ValidationError::new(
        field,
        format!("contains {bad:?}; allowed are A-Z a-z 0-9 . _ : -"),
    ))
}

/// Reads an identifier from a borrowed string where the format offers one, so decoding a
/// command makes one allocation per id (the shared one), not a `String` and then its copy.
struct IdentVisitor<F>(F);

impl<T, F> serde::de::Visitor<'_> for IdentVisitor<F>
where
    F: FnOnce(&str) -> Result<T, ValidationError>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an identifier string")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<T, E> {
        (self.0)(value).map_err(E::custom)
    }
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr) => {
        $(#[$doc])*
        ///
        /// Shared, not owned: apply copies a command's ids into the order it builds and
        /// returns, and a copy is then a count, not an allocation.
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `value` under this type's default field name.
            pub fn new(value: impl AsRef<str>) -> Result<Self, ValidationError> {
                Self::parse($field, value)
            }

            /// Validates `value`, naming `field` in the error (e.g. `items[2].sku`).
            pub fn parse(field: &str, value: impl AsRef<str>) -> Result<Self, ValidationError> {
                let value = value.as_ref();
                check_ident(field, value, $max)?;
                Ok(Self(Arc::from(value)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0.to_string()
            }
        }

        // Hashes and compares as its text (the derives go through `Arc<str>` to `str`), so a
        // map keyed by it can be asked with a `&str`.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(IdentVisitor(|value: &str| Self::new(value)))
            }
        }
    };
}

identifier!(
    /// A SKU: 1–64 characters from `A-Z a-z 0-9 . _ : -`.
    SkuId, "sku", MAX_SKU_LEN
);
identifier!(
    /// An order id: 1–128 characters from the identifier set.
    OrderId, "order_id", MAX_ID_LEN
);
identifier!(
    /// A user id: 1–128 characters from the identifier set.
    UserId, "user_id", MAX_ID_LEN
);
identifier!(
    /// A restock request id: 1–128 characters from the identifier set.
    RequestId, "request_id", MAX_ID_LEN
);
identifier!(
    /// A payment reference: 1–128 characters from the identifier set.
    PaymentRef, "payment_ref", MAX_ID_LEN
);

/// Units of one item: 1 – 1,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Qty(u64);

impl Qty {
    pub fn new(value: u64) -> Result<Self, ValidationError> {
        Self::parse("qty", value)
    }

    pub fn parse(field: &str, value: u64) -> Result<Self, ValidationError> {
        if (1..=MAX_QTY).contains(&value) {
            Ok(Self(value))
        } else {
            Err(ValidationError::new(
                field,
                format!("must be between 1 and {MAX_QTY}, got {value}"),
            ))
        }
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Qty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Qty::new(u64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// `stock` of a new SKU: 0 – 2^53-1.
pub fn check_stock(field: &str, value: u64) -> Result<u64, ValidationError> {
    if value <= MAX_COUNT {
        Ok(value)
    } else {
        Err(ValidationError::new(
            field,
            format!("must be at most {MAX_COUNT}, got {value}"),
        ))
    }
}

/// `per_user_limit`: 1 – 2^53-1.
pub fn check_limit(field: &str, value: u64) -> Result<u64, ValidationError> {
    if (1..=MAX_COUNT).contains(&value) {
        Ok(value)
    } else {
        Err(ValidationError::new(
            field,
            format!("must be between 1 and {MAX_COUNT}, got {value}"),
        ))
    }
}

/// A restock `delta`: non-zero, magnitude at most 2^53-1.
pub fn check_delta(field: &str, value: i64) -> Result<i64, ValidationError> {
    if value == 0 {
        return Err(ValidationError::new(field, "must not be zero"));
    }
    if value.unsigned_abs() > MAX_COUNT {
        return Err(ValidationError::new(
            field,
            format!("must be between -{MAX_COUNT} and {MAX_COUNT}, got {value}"),
        ));
    }
    Ok(value)
}

/// `reservation_ttl_ms`: 1,000 – 86,400,000.
pub fn check_ttl(field: &str, value: u64) -> Result<u64, ValidationError> {
    if (MIN_TTL_MS..=MAX_TTL_MS).contains(&value) {
        Ok(value)
    } else {
        Err(ValidationError::new(
            field,
            format!("must be between {MIN_TTL_MS} and {MAX_TTL_MS}, got {value}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_accept_the_allowed_set_and_lengths() {
        assert!(SkuId::new("A-z_0.9:x").is_ok());
        assert!(SkuId::new("a".repeat(64)).is_ok());
        assert!(OrderId::new("o".repeat(128)).is_ok());
    }

    #[test]
    fn identifiers_reject_empty_long_and_foreign_characters() {
        assert_eq!(SkuId::new("").unwrap_err().field, "sku");
        assert!(SkuId::new("a".repeat(65)).is_err());
        assert!(OrderId::new("o".repeat(129)).is_err());
        for bad in ["a b", "a/b", "é", "a\0", "a%20"] {
            let err = UserId::new(bad).unwrap_err();
            assert_eq!(err.field, "user_id", "{bad}");
        }
        assert_eq!(
            SkuId::parse("items[3].sku", "").unwrap_err().to_string(),
            "items[3].sku: must not be empty"
        );
    }

    /// The byte table allows exactly the characters `is_ident_char` allows, and a refusal
    /// still names the first bad character, a multi-byte one too.
    #[test]
    fn the_byte_check_agrees_with_the_character_rule() {
        for byte in 0..=255u8 {
            assert_eq!(
                IDENT_BYTES[usize::from(byte)],
                byte.is_ascii() && is_ident_char(char::from(byte)),
                "byte {byte}"
            );
        }
        let err = UserId::new("ok-é-x y").unwrap_err();
        assert_eq!(err.message, "contains 'é'; allowed are A-Z a-z 0-9 . _ : -");
    }

    #[test]
    fn ranges_hold_at_their_boundaries() {
        assert!(Qty::new(0).is_err());
        assert!(Qty::new(1).is_ok());
        assert!(Qty::new(MAX_QTY).is_ok());
        assert!(Qty::new(MAX_QTY + 1).is_err());
        assert!(check_stock("stock", MAX_COUNT).is_ok());
        assert!(check_stock("stock", MAX_COUNT + 1).is_err());
        assert!(check_limit("per_user_limit", 0).is_err());
        assert!(check_delta("delta", 0).is_err());
        assert!(check_delta("delta", -(MAX_COUNT as i64)).is_ok());
        assert!(check_delta("delta", MAX_COUNT as i64 + 1).is_err());
        assert!(check_ttl("reservation_ttl_ms", MIN_TTL_MS - 1).is_err());
        assert!(check_ttl("reservation_ttl_ms", MAX_TTL_MS).is_ok());
        assert!(check_ttl("reservation_ttl_ms", MAX_TTL_MS + 1).is_err());
    }

    #[test]
    fn decoding_rechecks_the_rules() {
        assert!(serde_json_like_decode::<SkuId>("\"ok\"").is_ok());
        assert!(serde_json_like_decode::<SkuId>("\"not ok\"").is_err());
        assert!(serde_json_like_decode::<Qty>("0").is_err());
    }

    /// A tiny JSON-ish decoder through serde's value-string path, to avoid a serde_json
    /// dependency in the crate for one test.
    fn serde_json_like_decode<T: for<'de> Deserialize<'de>>(raw: &str) -> Result<T, String> {
        use serde::de::value::{Error, StrDeserializer, U64Deserializer};
        use serde::de::IntoDeserializer;
        if let Some(s) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            let d: StrDeserializer<Error> = s.into_deserializer();
            T::deserialize(d).map_err(|e| e.to_string())
        } else {
            let n: u64 = raw.parse().map_err(|_| "nan".to_string())?;
            let d: U64Deserializer<Error> = n.into_deserializer();
            T::deserialize(d).map_err(|e| e.to_string())
        }
    }
}
