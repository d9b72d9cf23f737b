//! `GET /openapi.json`: the OpenAPI 3.1 document of the whole API.
//!
//! Request and answer bodies are described by schemas `utoipa` derives from the very types
//! the handlers decode into and serialise (`requests`, `views`, the batch body, the cluster
//! view), so a field cannot be added to the API without reaching the document. Routes,
//! statuses and error codes come from `operations`, which the tests compare with the router
//! and with every answer they can provoke.

mod errors;
pub mod field_schemas;
mod operations;

use std::sync::OnceLock;

use axum::http::Method;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{ComponentsBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, RefOr, Required,
};

use operations::{Content, Operation, Schemas};

/// The name of the bearer security scheme.
const BEARER: &str = "bearer";

/// The document as served, built once: it depends on nothing but the code.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document()
            .to_json()
            .expect("an OpenAPI document always serialises")
    })
}

fn document() -> OpenApi {
    let mut schemas = Schemas::default();
    let operations = operations::all(&mut schemas);
    let mut paths = Paths::new();
    let mut codes: Vec<&'static str> = Vec::new();
    for op in &operations {
        let failures = op.failures();
        codes.extend(failures.iter().map(|f| f.code));
        paths.add_path_operation(
            op.path,
            vec![http_method(&op.method)],
            operation(op, &failures),
        );
    }
    let unrouted = unrouted_failures();
    codes.extend(unrouted.iter().map(|f| f.code));
    codes.sort_unstable();
    codes.dedup();

    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas.0)
        .schema(errors::ERROR, errors::error_schema())
        .schema(errors::ERROR_DETAIL, errors::detail_schema(&codes))
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "Only when the gateway's configuration lists tokens. A token carries \
                         scopes: `orders` (place, pay, cancel, refund, batch), `catalog` \
                         (create, restock, patch SKUs), `read` (every GET under /v1/).",
                    ))
                    .build(),
            ),
        )
        .build();
    let unrouted =
        serde_json::to_value(errors::responses(&unrouted)).expect("responses always serialise");
    let mut document = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Inventory gateway")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The HTTP API of the Raft-replicated inventory store. JSON in and out; \
                     every answer that is not 2xx carries an `Error` body. Requests that \
                     match no operation answer one of `x-unrouted-responses`.",
                )),
        )
        .paths(paths)
        .components(Some(components))
        .build();
    document.extensions = Some(
        Extensions::builder()
            .add("x-unrouted-responses", unrouted)
            .build(),
    );
    document
}

/// What a request answers when no operation matches it: an unknown route, or a method its
/// route does not take. With tokens configured, auth runs before routing decides.
fn unrouted_failures() -> Vec<errors::Failure> {
    vec![
        errors::UNAUTHENTICATED,
        errors::FORBIDDEN,
        errors::NOT_FOUND,
        errors::METHOD_NOT_ALLOWED,
    ]
}

fn http_method(method: &Method) -> HttpMethod {
    match *method {
        Method::GET => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        Method::PATCH => HttpMethod::Patch,
        Method::PUT => HttpMethod::Put,
        Method::DELETE => HttpMethod::Delete,
        _ => unreachable!("the router takes no {method}"),
    }
}

fn operation(op: &Operation, failures: &[errors::Failure]) -> utoipa::openapi::path::Operation {
    let mut responses = ResponsesBuilder::new();
    for answer in &op.answers {
        let (mime, schema): (&str, RefOr<Schema>) = match &answer.content {
            Content::Json(schema) => ("application/json", (**schema).clone()),
            Content::Other(mime) => (mime, ObjectBuilder::new().schema_type(Type::String).into()),
        };
        responses = responses.response(
            answer.status.to_string(),
            ResponseBuilder::new()
                .description(answer.description)
                .content(mime, ContentBuilder::new().schema(Some(schema)).build())
                .header(
                    crate::request_id::HEADER.as_str(),
                    errors::request_id_header(),
                ),
        );
    }
    let mut responses = responses.build();
    responses.responses.extend(errors::responses(failures));

    let mut builder = OperationBuilder::new()
        .summary(Some(op.summary))
        .operation_id(Some(operation_id(op)))
        .responses(responses);
    for name in op.path_params() {
        builder = builder.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(identifier(if name == "sku" { 64 } else { 128 })))
                .description(Some("an identifier: characters from A-Z a-z 0-9 . _ : -")),
        );
    }
    for (params, place) in [
        (&op.query, ParameterIn::Query),
        (&op.headers, ParameterIn::Header),
    ] {
        for p in params {
            builder = builder.parameter(
                ParameterBuilder::new()
                    .name(p.name)
                    .parameter_in(place.clone())
                    .required(if p.required {
                        Required::True
                    } else {
                        Required::False
                    })
                    .schema(Some(ObjectBuilder::new().schema_type(p.kind.clone())))
                    .description(Some(p.description)),
            );
        }
    }
    builder = builder.parameter(
        ParameterBuilder::new()
            .name(crate::request_id::HEADER.as_str())
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .schema(Some(identifier(128)))
            .description(Some(
                "the client's id for this request, echoed on the answer; one outside the \
                 identifier rule is replaced",
            )),
    );
    if let Some(body) = &op.body {
        builder = builder.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(if body.required {
                    Required::True
                } else {
                    Required::False
                }))
                .description(
                    (!body.required)
                        .then_some("optional: an empty body is accepted whatever the Content-Type"),
                )
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(body.schema.clone()))
                        .build(),
                )
                .build(),
        ));
    }
    if let Some(scope) = operations::scope_name(op.needs()) {
        builder = builder.security(SecurityRequirement::new(BEARER, [scope]));
    }
    builder.build()
}

/// `get_v1_skus_sku`: unique, since a (method, path) pair is.
fn operation_id(op: &Operation) -> String {
    let path: String = op
        .path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let path: Vec<&str> = path.split('_').filter(|s| !s.is_empty()).collect();
    format!(
        "{}_{}",
        op.method.as_str().to_ascii_lowercase(),
        path.join("_")
    )
}

/// An identifier of the API (`sku`, `order_id`, ...) of at most `max` characters.
fn identifier(max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^[A-Za-z0-9._:-]{{1,{max}}}$")))
}
