//! The API's error model: every non-2xx answer is `{"error": {"code", "message", ...}}` with
//! the extra fields API.md names for its code (`sku`, `available`, `status`, ...).
//!
//! This module owns the mapping from what went wrong (a validation rule, a state-machine
//! refusal, the cluster being unreachable) to status, code and body. It never decides *whether*
//! something is an error: callers do.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use state_machine::{Refusal, ValidationError};

/// An error answer, ready to be rendered.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// The code's own fields, in the order added; names are API.md's, so `'static`.
    extra: Vec<(&'static str, Value)>,
    retry_after_secs: Option<u64>,
    /// `WWW-Authenticate: Bearer` on a 401.
    bearer_challenge: bool,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: Vec::new(),
            retry_after_secs: None,
            bearer_challenge: false,
        }
    }

    /// Adds a field next to `code` and `message` (replacing one of the same name).
    fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        let value = value.into();
        match self.extra.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => self.extra.push((key, value)),
        }
        self
    }

    fn extra(&self, key: &str) -> Option<&Value> {
        self.extra.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The field a `400` names, if it names one.
    pub fn field(&self) -> Option<&str> {
        self.extra("field").and_then(Value::as_str)
    }

    /// The `error` member of the answer: `code`, `message` and the fields of the code. An
    /// order batch's result carries it as it is; a single answer writes the same `Rendered`
    /// straight out, so the two cannot differ.
    pub fn body(&self) -> Map<String, Value> {
        let rendered = Rendered {
            error: self,
            request_id: None,
        };
        match serde_json::to_value(rendered) {
            Ok(Value::Object(body)) => body,
            // `Rendered` writes a map of strings and JSON values, which always converts.
            _ => unreachable!("an error body renders as a JSON object"),
        }
    }

    /// `400 invalid_request` naming `field`.
    pub fn invalid_field(field: &str, message: impl std::fmt::Display) -> Self {
        let msg = if field.is_empty() {
            message.to_string()
        } else {
            format!("{field}: {message}")
        };
        let err = Self::new(StatusCode::BAD_REQUEST, "invalid_request", msg);
        if field.is_empty() {
            err
        } else {
            err.with("field", field)
        }
    }

    /// `400 invalid_request` for a request that cannot be blamed on one field (e.g. the
    /// body is not JSON at all).
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take that method",
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "a request body must have Content-Type: application/json",
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is over {limit} bytes"),
        )
    }

    /// `401 unauthenticated` with `WWW-Authenticate: Bearer`: no token, or an unknown one.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        let mut err = Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message);
        err.bearer_challenge = true;
        err
    }

    /// `403 forbidden`: a known token without the scope the route needs; names `scope`.
    pub fn forbidden(scope: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("the token lacks the {scope} scope"),
        )
        .with("scope", scope)
    }

    /// `429 rate_limited` with `Retry-After` in whole seconds (at least 1).
    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut err = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
        err.retry_after_secs = Some(retry_after_secs.max(1));
        err
    }

    /// `503 unavailable` with `Retry-After: 1`. The command may or may not have been applied.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut err = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        err.retry_after_secs = Some(1);
        err
    }

    /// A gateway or node bug (an undecodable reply, an outcome of the wrong kind). API.md has
    /// no code for it; it is not a client error, so it must not look like one.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// `410 events_compacted`: the feed no longer holds the ids asked for.
    pub fn events_compacted(oldest: u64) -> Self {
        Self::new(
            StatusCode::GONE,
            "events_compacted",
            format!("events before {oldest} are past the retention"),
        )
        .with("oldest", oldest)
    }

    pub fn sku_not_found(sku: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "sku_not_found",
            format!("sku {sku} does not exist"),
        )
        .with("sku", sku)
    }

    pub fn order_not_found(order_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "order_not_found",
            format!("order {order_id} does not exist"),
        )
        .with("order_id", order_id)
    }

    /// A refusal from the state machine, with the fields API.md names for its code.
    pub fn from_refusal(refusal: &Refusal) -> Self {
        let code = refusal.code();
        let status = match refusal {
            Refusal::SkuNotFound { .. } | Refusal::OrderNotFound { .. } => StatusCode::NOT_FOUND,
            Refusal::TotalOverflow { .. } | Refusal::Invalid(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::CONFLICT,
        };
        let base = Self::new(status, code, refusal.to_string());
        match refusal {
            Refusal::SkuNotFound { sku } => base.with("sku", sku.as_str()),
            Refusal::OrderNotFound { order_id } => base.with("order_id", order_id.as_str()),
            Refusal::OutOfStock { sku, available, .. } => {
                base.with("sku", sku.as_str()).with("available", *available)
            }
            Refusal::PerUserLimitExceeded {
                sku, limit, held, ..
            } => base
                .with("sku", sku.as_str())
                .with("limit", *limit)
                .with("held", *held),
            Refusal::SaleNotActive {
                sku,
                start_ms,
                end_ms,
            } => base
                .with("sku", sku.as_str())
                .with("start_ms", *start_ms)
                .with("end_ms", *end_ms),
            Refusal::OrderIdConflict { order_id } => base.with("order_id", order_id.as_str()),
            Refusal::SkuExists { sku } => base.with("sku", sku.as_str()),
            Refusal::InvalidTransition { order_id, status } => base
                .with("order_id", order_id.as_str())
                .with("status", status.as_str()),
            Refusal::InsufficientAvailable { sku, available, .. } => {
                base.with("sku", sku.as_str()).with("available", *available)
            }
            Refusal::RequestIdConflict {
                sku, request_id, ..
            } => base
                .with("sku", sku.as_str())
                .with("request_id", request_id.as_str()),
            Refusal::TotalOverflow { sku, .. } => {
                // The delta is what the client can change, so that is the field to name.
                let message = format!("delta: {refusal}");
                Self::new(status, code, message)
                    .with("field", "delta")
                    .with("sku", sku.as_str())
            }
            Refusal::Invalid(e) => Self::from(e.clone()),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        Self::invalid_field(&e.field, &e.message)
    }
}

/// `{"error": {...}}` as `ApiError::body` has it, plus the request id, written straight from
/// the error: a refused order is most of a flash sale's answers, and building the body as a
/// JSON map first cost a dozen allocations each (perf: `into_response` was 7 % of the
/// gateway's samples while it refused 10,000 buyers).
#[derive(serde::Serialize)]
struct Answer<'a> {
    error: Rendered<'a>,
}

struct Rendered<'a> {
    error: &'a ApiError,
    /// Unless the code's own fields name one already (`request_id_conflict`).
    request_id: Option<&'a str>,
}

impl Serialize for Rendered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("code", self.error.code)?;
        map.serialize_entry("message", &self.error.message)?;
        for (key, value) in &self.error.extra {
            map.serialize_entry(key, value)?;
        }
        if let Some(id) = self.request_id {
            map.serialize_entry("request_id", id)?;
        }
        map.end()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A `request_id_conflict` already names the restock's `request_id`, which says more
        // to the client there than the HTTP one (still in the `x-request-id` header).
        let current = crate::request_id::current();
        let request_id = match self.extra("request_id") {
            Some(_) => None,
            None => current.as_deref(),
        };
        let answer = Answer {
            error: Rendered {
                error: &self,
                request_id,
            },
        };
        let mut response = (self.status, axum::Json(answer)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the refused body is never read, so the connection cannot carry
            // another request; saying so keeps a pooling client from reusing it and failing.
            // (hyper drops the header on HTTP/2, where it has no meaning.)
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.bearer_challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state_machine::{OrderId, OrderStatus, RequestId, SkuId};

    fn sku() -> SkuId {
        SkuId::new("A1").unwrap()
    }

    fn order() -> OrderId {
        OrderId::new("o-1").unwrap()
    }

    /// Every refusal: its status, code and the fields API.md says its body names.
    #[test]
    fn every_refusal_maps_to_its_status_code_and_fields() {
        let cases: Vec<(Refusal, u16, &str, &[&str])> = vec![
            (
                Refusal::SkuNotFound { sku: sku() },
                404,
                "sku_not_found",
                &["sku"],
            ),
            (
                Refusal::OrderNotFound { order_id: order() },
                404,
                "order_not_found",
                &["order_id"],
            ),
            (
                Refusal::OutOfStock {
                    sku: sku(),
                    available: 0,
                    requested: 1,
                },
                409,
                "out_of_stock",
                &["sku", "available"],
            ),
            (
                Refusal::PerUserLimitExceeded {
                    sku: sku(),
                    limit: 1,
                    held: 1,
                    requested: 1,
                },
                409,
                "per_user_limit_exceeded",
                &["sku", "limit", "held"],
            ),
            (
                Refusal::SaleNotActive {
                    sku: sku(),
                    start_ms: 1,
                    end_ms: 2,
                },
                409,
                "sale_not_active",
                &["sku", "start_ms", "end_ms"],
            ),
            (
                Refusal::OrderIdConflict { order_id: order() },
                409,
                "order_id_conflict",
                &["order_id"],
            ),
            (
                Refusal::SkuExists { sku: sku() },
                409,
                "sku_exists",
                &["sku"],
            ),
            (
                Refusal::InvalidTransition {
                    order_id: order(),
                    status: OrderStatus::Paid,
                },
                409,
                "invalid_transition",
                &["status"],
            ),
            (
                Refusal::InsufficientAvailable {
                    sku: sku(),
                    available: 3,
                    requested: 5,
                },
                409,
                "insufficient_available",
                &["sku", "available"],
            ),
            (
                Refusal::RequestIdConflict {
                    sku: sku(),
                    request_id: RequestId::new("r-1").unwrap(),
                    applied_delta: 5,
                },
                409,
                "request_id_conflict",
                &[],
            ),
            (
                Refusal::TotalOverflow {
                    sku: sku(),
                    total: 9,
                },
                400,
                "invalid_request",
                &["field"],
            ),
            (
                Refusal::Invalid(ValidationError::new("items[3].qty", "too big")),
                400,
                "invalid_request",
                &["field"],
            ),
        ];
        for (refusal, status, code, fields) in cases {
            let err = ApiError::from_refusal(&refusal);
            assert_eq!(err.status().as_u16(), status, "{refusal:?}");
            assert_eq!(err.code(), code, "{refusal:?}");
            for f in fields {
                assert!(err.extra(f).is_some(), "{refusal:?} lacks {f}");
            }
        }
    }

    #[test]
    fn out_of_stock_body_matches_the_api_example() {
        let err = ApiError::from_refusal(&Refusal::OutOfStock {
            sku: sku(),
            available: 0,
            requested: 1,
        });
        assert_eq!(err.message(), "sku A1 has 0 available, 1 requested");
        assert_eq!(err.extra("available"), Some(&Value::from(0)));
        assert_eq!(err.extra.len(), 2);
    }

    #[test]
    fn invalid_transition_names_status_as_api_string() {
        let err = ApiError::from_refusal(&Refusal::InvalidTransition {
            order_id: order(),
            status: OrderStatus::Cancelled,
        });
        assert_eq!(err.extra("status"), Some(&Value::from("cancelled")));
    }
}
