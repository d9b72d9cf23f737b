//! The error answers of the document: the one `Error` schema every non-2xx body follows, and
//! the statuses and codes (from `error.rs`) an operation can answer, each response narrowing
//! `code` to the codes it can carry.

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{AdditionalProperties, AllOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};

/// One error answer: its status, its `code`, and when it is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub code: &'static str,
    pub when: &'static str,
}

const fn failure(status: u16, code: &'static str, when: &'static str) -> Failure {
    Failure { status, code, when }
}

pub const INVALID_REQUEST: Failure = failure(
    400,
    "invalid_request",
    "malformed JSON, a missing, unknown or mistyped field, a value out of range, or an id in \
     the path that breaks the identifier rule; `field` names it",
);
pub const UNAUTHENTICATED: Failure = failure(
    401,
    "unauthenticated",
    "tokens are configured and none or an unknown one was sent",
);
pub const FORBIDDEN: Failure = failure(
    403,
    "forbidden",
    "the token lacks the scope the route needs; `scope` names it",
);
pub const SKU_NOT_FOUND: Failure = failure(404, "sku_not_found", "no such SKU; `sku` names it");
pub const ORDER_NOT_FOUND: Failure =
    failure(404, "order_not_found", "no such order; `order_id` names it");
pub const NOT_FOUND: Failure = failure(404, "not_found", "no such route");
pub const METHOD_NOT_ALLOWED: Failure = failure(
    405,
    "method_not_allowed",
    "a known route with a method it does not take",
);
pub const OUT_OF_STOCK: Failure = failure(
    409,
    "out_of_stock",
    "an item asks for more than its SKU has available; names `sku` and `available`",
);
pub const PER_USER_LIMIT_EXCEEDED: Failure = failure(
    409,
    "per_user_limit_exceeded",
    "the user would hold more of the SKU than its limit; names `sku`, `limit`, `held`",
);
pub const SALE_NOT_ACTIVE: Failure = failure(
    409,
    "sale_not_active",
    "the order falls outside the SKU's sale window; names `sku`, `start_ms`, `end_ms`",
);
pub const ORDER_ID_CONFLICT: Failure = failure(
    409,
    "order_id_conflict",
    "an order with this id exists with different content",
);
pub const SKU_EXISTS: Failure =
    failure(409, "sku_exists", "the SKU exists with different settings");
pub const INVALID_TRANSITION: Failure = failure(
    409,
    "invalid_transition",
    "not allowed from the order's status; `status` names it",
);
pub const INSUFFICIENT_AVAILABLE: Failure = failure(
    409,
    "insufficient_available",
    "a negative delta larger than what is available; names `sku` and `available`",
);
pub const REQUEST_ID_CONFLICT: Failure = failure(
    409,
    "request_id_conflict",
    "the `request_id` was applied with a different delta",
);
pub const EVENTS_COMPACTED: Failure = failure(
    410,
    "events_compacted",
    "the feed no longer holds the ids asked for; `oldest` is the first still readable",
);
pub const PAYLOAD_TOO_LARGE: Failure = failure(
    413,
    "payload_too_large",
    "a body over 64 KiB (1 MiB for an order batch)",
);
pub const UNSUPPORTED_MEDIA_TYPE: Failure = failure(
    415,
    "unsupported_media_type",
    "a non-empty body whose Content-Type is not application/json",
);
pub const RATE_LIMITED: Failure =
    failure(429, "rate_limited", "admission control refused the request");
pub const INTERNAL: Failure = failure(
    500,
    "internal",
    "a gateway or node bug: an undecodable reply or an outcome of the wrong kind",
);
pub const UNAVAILABLE: Failure = failure(
    503,
    "unavailable",
    "no leader or no quorum within the retry deadline; the command may or may not have been \
     applied, and retrying with the same id is safe",
);

/// The fields an error body may name besides `code` and `message` (`ApiError::with`), and
/// their JSON types.
const NAMED_FIELDS: [(&str, Type); 12] = [
    ("field", Type::String),
    ("sku", Type::String),
    ("order_id", Type::String),
    ("request_id", Type::String),
    ("status", Type::String),
    ("scope", Type::String),
    ("available", Type::Integer),
    ("limit", Type::Integer),
    ("held", Type::Integer),
    ("start_ms", Type::Integer),
    ("end_ms", Type::Integer),
    ("oldest", Type::Integer),
];

pub const ERROR: &str = "Error";
pub const ERROR_DETAIL: &str = "ErrorDetail";

/// `ErrorDetail`: the `error` member, which an order batch's result carries as it is.
pub fn detail_schema(codes: &[&'static str]) -> Schema {
    let mut detail = ObjectBuilder::new()
        .property(
            "code",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(codes.iter().copied())),
        )
        .required("code")
        .property(
            "message",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("for people; its wording may change")),
        )
        .required("message")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    for (name, kind) in NAMED_FIELDS {
        let mut field = ObjectBuilder::new().schema_type(kind);
        if name == "request_id" {
            field = field.description(Some(
                "the request's `x-request-id`; in `request_id_conflict`, the restock's own",
            ));
        }
        detail = detail.property(name, field);
    }
    detail.into()
}

/// `Error`: the body of every non-2xx answer.
pub fn error_schema() -> Schema {
    ObjectBuilder::new()
        .property("error", Ref::from_schema_name(ERROR_DETAIL))
        .required("error")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
}

/// `x-request-id`, on every answer (API.md, "Request ids").
pub fn request_id_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(
            "the client's own `x-request-id` when it follows the identifier rule, else one \
             the gateway made; error bodies repeat it as `request_id`",
        ))
        .build()
}

/// The responses of `failures`, one per status, keyed by status.
pub fn responses(failures: &[Failure]) -> BTreeMap<String, RefOr<Response>> {
    let mut by_status: BTreeMap<u16, Vec<Failure>> = BTreeMap::new();
    for f in failures {
        let same = by_status.entry(f.status).or_default();
        if !same.contains(f) {
            same.push(*f);
        }
    }
    by_status
        .into_iter()
        .map(|(status, failures)| (status.to_string(), response(status, &failures).into()))
        .collect()
}

fn response(status: u16, failures: &[Failure]) -> Response {
    let description = failures
        .iter()
        .map(|f| format!("`{}`: {}.", f.code, f.when))
        .collect::<Vec<_>>()
        .join(" ");
    // `Error`, with `code` narrowed to what this status of this operation can carry.
    let narrowed = ObjectBuilder::new().property(
        "error",
        ObjectBuilder::new().property(
            "code",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(failures.iter().map(|f| f.code))),
        ),
    );
    let schema = AllOfBuilder::new()
        .item(Ref::from_schema_name(ERROR))
        .item(narrowed);
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(schema)).build(),
        )
        .header(crate::request_id::HEADER.as_str(), request_id_header());
    let seconds = || {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
    };
    match status {
        401 => {
            response = response.header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some("`Bearer`"))
                    .build(),
            );
        }
        429 | 503 => {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(seconds())
                    .description(Some("whole seconds"))
                    .build(),
            );
        }
        _ => {}
    }
    response.build()
}
