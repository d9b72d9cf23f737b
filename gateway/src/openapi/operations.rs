//! What no type can say about a route: its summary, its query parameters, whether its body is
//! optional, which statuses it answers with which body, and which refusals it can meet. The
//! rest is derived: path parameters from the pattern, the scope from `auth::needed`, the
//! errors every route of a kind shares (auth, admission, body rules, the cluster) from what
//! the route takes. The gateway's tests fail on any answer a route gives that is not here.

use std::borrow::Cow;

use axum::http::Method;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::ToSchema;

use super::errors::*;
use crate::auth::{needed, Needed};
use crate::cluster::status::ClusterView;
use crate::order_batch::BatchBody;
use crate::requests::{
    CancelBody, CreateSkuBody, EventStreamQuery, EventsQuery, ListOrdersQuery, ListSkusQuery,
    PatchSkuBody, PayBody, PlaceOrderBody, RefundBody, RestockBody, SalesQuery,
};
use crate::routes::paths::{self, admission_applies};
use crate::views::{BatchView, EventPageView, OrderList, OrderView, SalesView, SkuPage, SkuView};

/// The named schemas the operations refer to, gathered as they are referred to.
#[derive(Default)]
pub struct Schemas(pub Vec<(String, RefOr<Schema>)>);

impl Schemas {
    /// A reference to `T`'s schema, which is added with every schema it refers to.
    fn of<T: ToSchema>(&mut self) -> RefOr<Schema> {
        T::schemas(&mut self.0);
        let name: Cow<'static, str> = T::name();
        self.0.push((name.to_string(), T::schema()));
        Ref::from_schema_name(name).into()
    }
}

pub enum Content {
    Json(Box<RefOr<Schema>>),
    /// Not JSON: the media type; the body is text.
    Other(&'static str),
}

fn json(schema: RefOr<Schema>) -> Content {
    Content::Json(Box::new(schema))
}

pub struct Answer {
    pub status: u16,
    pub description: &'static str,
    pub content: Content,
}

pub struct Param {
    pub name: &'static str,
    pub required: bool,
    pub kind: Type,
    pub description: &'static str,
}

pub struct Body {
    pub schema: RefOr<Schema>,
    pub required: bool,
}

pub struct Operation {
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    pub query: Vec<Param>,
    /// Headers the route reads, other than auth and content type.
    pub headers: Vec<Param>,
    pub body: Option<Body>,
    pub answers: Vec<Answer>,
    /// Errors of this route's own meaning (a missing SKU, a refusal).
    pub refusals: Vec<Failure>,
    /// Goes to the cluster, so it can answer `503` (and `500` on a bug).
    pub uses_cluster: bool,
}

impl Operation {
    fn new(method: Method, path: &'static str, summary: &'static str) -> Self {
        Self {
            method,
            path,
            summary,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            answers: Vec::new(),
            refusals: Vec::new(),
            uses_cluster: true,
        }
    }

    fn answers(mut self, status: u16, description: &'static str, content: Content) -> Self {
        self.answers.push(Answer {
            status,
            description,
            content,
        });
        self
    }

    fn body(mut self, schema: RefOr<Schema>, required: bool) -> Self {
        self.body = Some(Body { schema, required });
        self
    }

    fn query(
        mut self,
        names: &[&'static str],
        params: &[(&'static str, Type, &'static str)],
    ) -> Self {
        // Checked whenever the document is built, as every test run does: a parameter the
        // parser takes without a line here, or a line for one it refuses, fails there.
        let mut documented: Vec<&str> = params.iter().map(|p| p.0).collect();
        documented.sort_unstable();
        let mut parsed = names.to_vec();
        parsed.sort_unstable();
        assert_eq!(documented, parsed, "query parameters of {}", self.path);
        self.query = params
            .iter()
            .map(|(name, kind, description)| Param {
                name,
                required: *description == REQUIRED,
                kind: kind.clone(),
                description,
            })
            .collect();
        self
    }

    fn header(mut self, name: &'static str, kind: Type, description: &'static str) -> Self {
        self.headers.push(Param {
            name,
            required: false,
            kind,
            description,
        });
        self
    }

    fn refuses(mut self, refusals: &[Failure]) -> Self {
        self.refusals.extend_from_slice(refusals);
        self
    }

    fn local(mut self) -> Self {
        self.uses_cluster = false;
        self
    }

    /// The names of the pattern's `{...}` segments.
    pub fn path_params(&self) -> impl Iterator<Item = &'static str> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
    }

    /// The scope a token needs here, when tokens are configured.
    pub fn needs(&self) -> Needed {
        needed(&self.method, self.path)
    }

    /// Every error this operation can answer.
    pub fn failures(&self) -> Vec<Failure> {
        let mut all = Vec::new();
        match self.needs() {
            Needed::Nothing => {}
            Needed::AnyToken => all.push(UNAUTHENTICATED),
            Needed::Scope(_) => all.extend([UNAUTHENTICATED, FORBIDDEN]),
        }
        if admission_applies(self.path) {
            all.push(RATE_LIMITED);
        }
        let takes_input =
            self.path_params().next().is_some() || !self.query.is_empty() || self.body.is_some();
        if takes_input {
            all.push(INVALID_REQUEST);
        }
        if self.body.is_some() {
            all.extend([PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE]);
        }
        all.extend_from_slice(&self.refusals);
        if self.uses_cluster {
            all.extend([INTERNAL, UNAVAILABLE]);
        }
        all
    }
}

/// The scopes' names, for the security requirement.
pub fn scope_name(needs: Needed) -> Option<&'static str> {
    match needs {
        Needed::Scope(s) => Some(s.name()),
        Needed::AnyToken | Needed::Nothing => None,
    }
}

/// The description of a query parameter that must be given.
const REQUIRED: &str = "required";
const AFTER_SKU: (&str, Type, &str) = (
    "after",
    Type::String,
    "exclusive: the page starts after this sku (empty or absent: the first page)",
);
const LIMIT: (&str, Type, &str) = ("limit", Type::Integer, "1 to 1000, default 100");
const AFTER_EVENT: (&str, Type, &str) =
    ("after", Type::Integer, "events with a larger id; default 0");

fn ok_status(value: &'static str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([value])),
        )
        .required("status")
        .into()
}

/// Every route of `routes::paths::ALL` with every method it takes.
pub fn all(s: &mut Schemas) -> Vec<Operation> {
    use paths::*;
    use Content::Other;
    let sku = s.of::<SkuView>();
    let order = s.of::<OrderView>();
    let place_refusals = [
        SKU_NOT_FOUND,
        SALE_NOT_ACTIVE,
        PER_USER_LIMIT_EXCEEDED,
        OUT_OF_STOCK,
        ORDER_ID_CONFLICT,
    ];
    let transition_refusals = [ORDER_NOT_FOUND, INVALID_TRANSITION];
    vec![
        Operation::new(Method::POST, SKUS, "Create a SKU")
            .body(s.of::<CreateSkuBody>(), true)
            .answers(201, "created", json(sku.clone()))
            .answers(
                200,
                "the same SKU again: it as it stands",
                json(sku.clone()),
            )
            .refuses(&[SKU_EXISTS]),
        Operation::new(Method::GET, SKUS, "List SKUs in sku byte order")
            .query(&ListSkusQuery::PARAMS, &[AFTER_SKU, LIMIT])
            .answers(
                200,
                "one page; `next` is null at the end",
                json(s.of::<SkuPage>()),
            ),
        Operation::new(Method::GET, SKU, "Read a SKU (linearisable)")
            .answers(200, "the SKU", json(sku.clone()))
            .refuses(&[SKU_NOT_FOUND]),
        Operation::new(Method::PATCH, SKU, "Change a SKU's settings")
            .body(s.of::<PatchSkuBody>(), true)
            .answers(200, "the SKU as changed", json(sku.clone()))
            .refuses(&[SKU_NOT_FOUND]),
        Operation::new(
            Method::POST,
            RESTOCK,
            "Add or withdraw units (idempotent by request_id)",
        )
        .body(s.of::<RestockBody>(), true)
        .answers(
            200,
            "the SKU after the restock, or as it is on a replay",
            json(sku),
        )
        .refuses(&[SKU_NOT_FOUND, INSUFFICIENT_AVAILABLE, REQUEST_ID_CONFLICT]),
        Operation::new(Method::GET, SALES, "Units per one-minute bucket")
            .query(
                &SalesQuery::PARAMS,
                &[
                    ("from_ms", Type::Integer, "inclusive; default 0"),
                    ("to_ms", Type::Integer, "exclusive; default no end"),
                ],
            )
            .answers(
                200,
                "buckets with movement, oldest first",
                json(s.of::<SalesView>()),
            )
            .refuses(&[SKU_NOT_FOUND]),
        Operation::new(Method::GET, EVENTS, "Read the event feed")
            .query(&EventsQuery::PARAMS, &[AFTER_EVENT, LIMIT])
            .answers(200, "events in id order", json(s.of::<EventPageView>()))
            .refuses(&[EVENTS_COMPACTED]),
        Operation::new(Method::GET, EVENT_STREAM, "Follow the event feed")
            .query(&EventStreamQuery::PARAMS, &[AFTER_EVENT])
            .header(
                "Last-Event-ID",
                Type::Integer,
                "a reconnecting consumer's last id; decides over `after`",
            )
            .answers(
                200,
                "Server-Sent Events: `id`, `event` (the type) and `data` (an `Event`), the \
                 backlog first, then new events; a comment at least every 15 s while idle",
                Other("text/event-stream"),
            )
            .refuses(&[EVENTS_COMPACTED]),
        Operation::new(Method::POST, ORDERS, "Place an order, reserving its units")
            .body(s.of::<PlaceOrderBody>(), true)
            .answers(201, "reserved", json(order.clone()))
            .answers(
                200,
                "the same order again: it as it stands",
                json(order.clone()),
            )
            .refuses(&place_refusals),
        Operation::new(Method::GET, ORDERS, "A user's orders, newest first")
            .query(
                &ListOrdersQuery::PARAMS,
                &[("user_id", Type::String, REQUIRED), LIMIT],
            )
            .answers(200, "the orders", json(s.of::<OrderList>())),
        Operation::new(
            Method::POST,
            ORDER_BATCH,
            "Place many orders, each judged alone",
        )
        .body(s.of::<BatchBody>(), true)
        .answers(
            200,
            "one result per order, in request order",
            json(s.of::<BatchView>()),
        ),
        Operation::new(
            Method::GET,
            ORDER_BATCH,
            "Read the order whose id is `batch`",
        )
        .answers(200, "the order", json(order.clone()))
        .refuses(&[ORDER_NOT_FOUND]),
        Operation::new(Method::GET, ORDER, "Read an order (linearisable)")
            .answers(200, "the order", json(order.clone()))
            .refuses(&[ORDER_NOT_FOUND]),
        Operation::new(Method::POST, PAY, "Pay: reserved units become sold")
            .body(s.of::<PayBody>(), false)
            .answers(200, "paid (a no-op when already paid)", json(order.clone()))
            .refuses(&transition_refusals),
        Operation::new(Method::POST, CANCEL, "Cancel: reserved units return")
            .body(s.of::<CancelBody>(), false)
            .answers(
                200,
                "cancelled (a no-op when cancelled or expired)",
                json(order.clone()),
            )
            .refuses(&transition_refusals),
        Operation::new(Method::POST, REFUND, "Refund a paid order")
            .body(s.of::<RefundBody>(), false)
            .answers(200, "refunded (a no-op when already refunded)", json(order))
            .refuses(&transition_refusals),
        Operation::new(Method::GET, CLUSTER, "Cluster members and their roles")
            .answers(200, "every known node", json(s.of::<ClusterView>()))
            .local(),
        Operation::new(Method::GET, HEALTHZ, "Liveness")
            .answers(200, "the gateway process runs", json(ok_status("ok")))
            .local(),
        Operation::new(Method::GET, READYZ, "Readiness")
            .answers(
                200,
                "a leader answered within the last second",
                json(ok_status("ready")),
            )
            .refuses(&[UNAVAILABLE])
            .local(),
        Operation::new(Method::GET, METRICS, "Prometheus metrics")
            .answers(200, "OpenMetrics text", Other(crate::metrics::CONTENT_TYPE))
            .local(),
        Operation::new(Method::GET, OPENAPI, "This document")
            .answers(
                200,
                "the OpenAPI 3.1 document of this API",
                json(ObjectBuilder::new().schema_type(Type::Object).into()),
            )
            .local(),
    ]
}
