//! Request bodies: the 64 KiB limit (413), the `Content-Type` rule (415) and JSON decoding
//! into the request shapes with unknown fields refused (400), naming the JSON path of a bad
//! value (`items[3].qty`).
//!
//! This module only turns bytes into a typed body; whether the values obey the API's rules is
//! `requests`' business.

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest body API.md accepts. Bounds the memory one request can pin.
pub const MAX_BODY_BYTES: usize = 65_536;

/// A JSON body that must be present.
pub struct JsonBody<T>(pub T);

/// A JSON body that may be left out: an empty body is accepted whatever the `Content-Type`
/// (pay, cancel, refund).
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let (headers, bytes) = read(req).await?;
        // An empty body where one is required is not a media-type problem: there is nothing
        // to mistype. It is a malformed request.
        if bytes.is_empty() {
            return Err(ApiError::invalid_request("this request needs a JSON body"));
        }
        check_content_type(&headers)?;
        decode(&bytes).map(JsonBody)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let (headers, bytes) = read(req).await?;
        if bytes.is_empty() {
            return Ok(OptionalJsonBody(None));
        }
        check_content_type(&headers)?;
        decode(&bytes).map(|v| OptionalJsonBody(Some(v)))
    }
}

/// Reads the whole body, refusing it as soon as it passes the limit, so a client cannot make
/// the gateway buffer more than `MAX_BODY_BYTES`.
async fn read(req: Request) -> Result<(HeaderMap, Vec<u8>), ApiError> {
    let (parts, mut body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::invalid_request(format!("reading the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > MAX_BODY_BYTES {
                return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok((parts.headers, bytes))
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

/// Decodes one JSON value filling all of `bytes`, naming the path of the first bad value.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let message = without_position(e.inner());
        // serde_path_to_error renders the root as "."; a root error names no field.
        let field = if path == "." { "" } else { path.as_str() };
        if e.inner().is_syntax() || e.inner().is_eof() {
            ApiError::invalid_request(format!("malformed JSON: {message}"))
        } else {
            ApiError::invalid_field(field, message)
        }
    })?;
    de.end().map_err(|e| {
        ApiError::invalid_request(format!("malformed JSON: {}", without_position(&e)))
    })?;
    Ok(value)
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

    #[test]
    fn type_errors_name_the_json_path() {
        let err =
            decode::<Body>(br#"{"items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": -1}]}"#)
                .unwrap_err();
        assert_eq!(err.code(), "invalid_request");
        assert!(
            err.message().starts_with("items[1].qty: "),
            "{}",
            err.message()
        );
        assert!(!err.message().contains("line 1"), "{}", err.message());
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        let err = decode::<Body>(br#"{"items": [], "x": 1}"#).unwrap_err();
        assert!(
            err.message().contains("unknown field `x`"),
            "{}",
            err.message()
        );
        let err = decode::<Body>(br#"{"items": [{"sku": "a"}]}"#).unwrap_err();
        assert!(err.message().contains("items[0]"), "{}", err.message());
        assert!(
            err.message().contains("missing field `qty`"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn malformed_and_trailing_json_is_invalid() {
        for bad in [&b"{"[..], b"{\"items\": []} x", b"", b"nul"] {
            let err = decode::<Body>(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_request");
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
