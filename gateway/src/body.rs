//! Request bodies: reading them in full within the body timeout (before admission, see
//! `routes::admit`), the size limit (413: 64 KiB, 1 MiB for an order batch), the
//! `Content-Type` rule (415) and JSON decoding into the request shapes with unknown fields
//! refused (400), naming the innermost field of a bad value (`items[3].qty`).
//!
//! This module only turns bytes into a typed body; whether the values obey the API's rules is
//! `requests`' business.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use state_machine::ValidationError;

use crate::error::ApiError;

/// Largest body API.md accepts on every route but the order batch. Bounds the memory one
/// request can pin.
pub const MAX_BODY_BYTES: usize = 65_536;

/// A JSON body that must be present.
pub struct JsonBody<T>(pub T);

/// A JSON body that may be left out: an empty body is accepted whatever the `Content-Type`
/// (pay, cancel, refund).
pub struct OptionalJsonBody<T>(pub Option<T>);

/// A JSON body that must be present, of at most `LIMIT` bytes, left undecoded: for a route
/// whose body decodes in parts that borrow from it (the order batch).
pub struct RawJsonBody<const LIMIT: usize>(pub Vec<u8>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_required(req, MAX_BODY_BYTES).await?;
        Ok(JsonBody(decode(&bytes)?))
    }
}

impl<S: Send + Sync, const LIMIT: usize> FromRequest<S> for RawJsonBody<LIMIT> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        Ok(RawJsonBody(read_required(req, LIMIT).await?))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let (headers, bytes) = read(req, MAX_BODY_BYTES).await?;
        if bytes.is_empty() {
            return Ok(OptionalJsonBody(None));
        }
        check_content_type(&headers)?;
        Ok(OptionalJsonBody(Some(decode(&bytes)?)))
    }
}

/// The bytes of a body that must be present and be JSON.
async fn read_required(req: Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let (headers, bytes) = read(req, limit).await?;
    // An empty body where one is required is not a media-type problem: there is nothing
    // to mistype. It is a malformed request.
    if bytes.is_empty() {
        return Err(ApiError::invalid_request("this request needs a JSON body"));
    }
    check_content_type(&headers)?;
    Ok(bytes)
}

/// Reads the whole body within `timeout`, refusing it as soon as it passes `limit`, and gives
/// back the request with the body in memory. Admission runs after this (`routes::admit`), so
/// a client trickling its body holds no in-flight slot while it does.
pub async fn buffer(req: Request, limit: usize, timeout: Duration) -> Result<Request, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = tokio::time::timeout(timeout, read_limited(&parts.headers, body, limit))
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::invalid_request(format!(
                "the body did not arrive within {} ms",
                timeout.as_millis()
            )))
        })?;
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The body's bytes, refused as soon as they pass `limit`. By the time an extractor calls
/// this, [`buffer`] has already read the body from the network.
async fn read(req: Request, limit: usize) -> Result<(HeaderMap, Vec<u8>), ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = read_limited(&parts.headers, body, limit).await?;
    Ok((parts.headers, bytes))
}

async fn read_limited(
    headers: &HeaderMap,
    mut body: Body,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::invalid_request(format!("reading the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(ApiError::payload_too_large(limit));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

/// `application/json`, any case, parameters such as `; charset=utf-8` allowed.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
        .unwrap_or(false);
    if is_json {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type())
    }
}

/// Why a body did not decode.
#[derive(Debug)]
pub enum DecodeError {
    /// Not one well-formed JSON value.
    Malformed(String),
    /// Well-formed JSON of the wrong shape: a missing, unknown, repeated or mistyped field.
    /// `field` is the innermost path (`items[0].qty`), empty when the whole value is wrong.
    Shape(ValidationError),
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Malformed(message) => {
                ApiError::invalid_request(format!("malformed JSON: {message}"))
            }
            DecodeError::Shape(e) => e.into(),
        }
    }
}

/// Decodes one JSON value filling all of `bytes`, naming the innermost field of the first
/// bad value.
///
/// A valid body, the common case, costs one plain decode. Tracking the path costs an
/// allocation per field, so it is paid only by a body that already failed: decoded a
/// second time, deterministically to the same error, only to name where it is.
pub fn decode<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(bytes).map_err(|first| {
        if first.is_syntax() || first.is_eof() {
            DecodeError::Malformed(without_position(&first))
        } else {
            DecodeError::Shape(locate::<T>(bytes, first))
        }
    })
}

/// The field and message of a decoding error that is not a syntax error.
fn locate<'de, T: Deserialize<'de>>(bytes: &'de [u8], first: serde_json::Error) -> ValidationError {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let tracked = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(_) => return ValidationError::new("", without_position(&first)),
        Err(e) => e,
    };
    // serde_path_to_error renders the root as "."; a root error names no field of its own.
    let path = match tracked.path().to_string() {
        root if root == "." => String::new(),
        path => path,
    };
    let message = without_position(tracked.inner());
    // serde reports a missing or repeated field from the object that lacks or repeats it, so
    // the path names that object; API.md wants the field itself. Its name is only in the
    // message, in the wording serde's `missing_field` and `duplicate_field` fix. (An unknown
    // field needs nothing: the path already ends in its key.)
    for (prefix, what) in [
        ("missing field `", "is required"),
        ("duplicate field `", "is given more than once"),
    ] {
        let name = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix('`'));
        if let Some(name) = name {
            return ValidationError::new(join(&path, name), what);
        }
    }
    ValidationError::new(path, message)
}

/// `field` inside the object at `path` (empty: the root).
fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// serde_json's message without its " at line L column C" tail: the path says where.
fn without_position(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let tail = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&tail).map(str::to_owned).unwrap_or(full)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        sku: String,
        qty: u64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        items: Vec<Line>,
    }

    /// The field and message of a shape error.
    fn shape(json: &str) -> (String, String) {
        match decode::<Body>(json.as_bytes()) {
            Err(DecodeError::Shape(e)) => (e.field, e.message),
            other => panic!("{json}: expected a shape error, got {other:?}"),
        }
    }

    #[test]
    fn type_errors_name_the_json_path() {
        let err: ApiError =
            decode::<Body>(br#"{"items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": -1}]}"#)
                .unwrap_err()
                .into();
        assert_eq!(err.code(), "invalid_request");
        assert!(
            err.message().starts_with("items[1].qty: "),
            "{}",
            err.message()
        );
        assert!(!err.message().contains("line 1"), "{}", err.message());
    }

    #[test]
    fn missing_unknown_and_repeated_fields_name_the_field_itself() {
        assert_eq!(
            shape(r#"{"items": [{"sku": "a"}]}"#),
            ("items[0].qty".into(), "is required".into())
        );
        assert_eq!(
            shape(r#"{"items": [{"sku": "a", "qty": 1}, {"qty": 1}]}"#).0,
            "items[1].sku"
        );
        assert_eq!(shape(r#"{}"#), ("items".into(), "is required".into()));
        let (field, message) = shape(r#"{"items": [{"sku": "a", "qty": 1, "x": 2}]}"#);
        assert_eq!(field, "items[0].x");
        assert!(message.contains("unknown field `x`"), "{message}");
        assert_eq!(shape(r#"{"items": [], "x": 1}"#).0, "x");
        assert_eq!(
            shape(r#"{"items": [{"sku": "a", "qty": 1, "qty": 2}]}"#),
            ("items[0].qty".into(), "is given more than once".into())
        );
        // The whole value of the wrong type names no field.
        assert_eq!(shape("1").0, "");
    }

    #[test]
    fn the_field_leads_the_message_and_is_the_field_member() {
        let err: ApiError = decode::<Body>(br#"{"items": [{"sku": "a"}]}"#)
            .unwrap_err()
            .into();
        assert_eq!(err.message(), "items[0].qty: is required");
        assert_eq!(err.field(), Some("items[0].qty"));
    }

    #[test]
    fn malformed_and_trailing_json_is_invalid() {
        for bad in [&b"{"[..], b"{\"items\": []} x", b"", b"nul"] {
            assert!(
                matches!(decode::<Body>(bad), Err(DecodeError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn content_type_accepts_parameters_and_case() {
        let mut h = HeaderMap::new();
        assert!(check_content_type(&h).is_err());
        for ok in ["application/json", "Application/JSON; charset=utf-8"] {
            h.insert(header::CONTENT_TYPE, ok.parse().unwrap());
            assert!(check_content_type(&h).is_ok(), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/jsonx",
            "application/x-www-form-urlencoded",
        ] {
            h.insert(header::CONTENT_TYPE, bad.parse().unwrap());
            assert!(check_content_type(&h).is_err(), "{bad}");
        }
    }
}
