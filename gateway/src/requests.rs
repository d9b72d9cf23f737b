//! The request shapes of API.md and their translation into `state_machine::Command`s.
//!
//! Bodies decode into plain strings and numbers (unknown fields refused), then every rule is
//! checked with the state machine's own constructors (`SkuId::parse`, `Qty::parse`,
//! `Items::new`, `SaleWindow::new`, `Command::validate`), so the gateway and the log can never
//! disagree about what is valid. Nothing here talks to the cluster.

use serde::{Deserialize, Deserializer};
use state_machine::{
    Command, Item, Items, OrderId, PaymentRef, Qty, RequestId, RequestTag, SaleWindow, SkuId,
    UserId, ValidationError, DEFAULT_TTL_MS, MAX_COUNT,
};
use utoipa::ToSchema;

/// Largest `limit` of a list read (API.md: 1–1000).
pub const MAX_PAGE_LIMIT: u32 = 1_000;
/// `limit` when the query leaves it out.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;

/// Deserializes a field that is present (possibly `null`) as `Some(..)`; with
/// `#[serde(default)]` an absent field stays `None`. PATCH needs the difference.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a JSON object with start_ms and end_ms"
)]
#[schema(as = SaleWindowInput)]
pub struct SaleWindowBody {
    pub start_ms: u64,
    pub end_ms: u64,
}

impl SaleWindowBody {
    fn validate(&self) -> Result<SaleWindow, ValidationError> {
        SaleWindow::new(self.start_ms, self.end_ms)
    }
}

/// `POST /v1/skus`. Explicit `null` equals leaving an optional field out.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
#[schema(as = CreateSku)]
pub struct CreateSkuBody {
    pub sku: String,
    pub stock: u64,
    #[serde(default)]
    pub per_user_limit: Option<u64>,
    #[serde(default)]
    pub sale_window: Option<SaleWindowBody>,
}

impl CreateSkuBody {
    /// `request_tag` names this HTTP request across the gateway's own resends.
    pub fn into_command(self, request_tag: RequestTag) -> Result<Command, ValidationError> {
        let sku = SkuId::parse("sku", self.sku)?;
        let sale_window = self
            .sale_window
            .as_ref()
            .map(SaleWindowBody::validate)
            .transpose()?;
        checked(Command::CreateSku {
            sku,
            stock: self.stock,
            per_user_limit: self.per_user_limit,
            sale_window,
            request_tag,
        })
    }
}

/// `POST /v1/skus/{sku}/restock`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
#[schema(as = Restock)]
pub struct RestockBody {
    pub request_id: String,
    pub delta: i64,
}

impl RestockBody {
    /// `request_tag` names this HTTP request across the gateway's own resends.
    pub fn into_command(
        self,
        sku: SkuId,
        request_tag: RequestTag,
    ) -> Result<Command, ValidationError> {
        let request_id = RequestId::parse("request_id", self.request_id)?;
        checked(Command::Restock {
            sku,
            request_id,
            delta: self.delta,
            request_tag,
        })
    }
}

/// `PATCH /v1/skus/{sku}`: an absent field stays as it is, `null` clears the setting.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
#[schema(as = PatchSku)]
pub struct PatchSkuBody {
    #[serde(default, deserialize_with = "present")]
    pub per_user_limit: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    pub sale_window: Option<Option<SaleWindowBody>>,
}

impl PatchSkuBody {
    /// `request_tag` names this HTTP request across the gateway's own resends: a late
    /// attempt then cannot overwrite a newer patch.
    pub fn into_command(
        self,
        sku: SkuId,
        request_tag: RequestTag,
    ) -> Result<Command, ValidationError> {
        let sale_window = match self.sale_window {
            None => None,
            Some(None) => Some(None),
            Some(Some(w)) => Some(Some(w.validate()?)),
        };
        checked(Command::UpdateSku {
            sku,
            per_user_limit: self.per_user_limit,
            sale_window,
            request_tag,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "a JSON object with sku and qty")]
#[schema(as = ItemInput)]
pub struct ItemBody {
    pub sku: String,
    pub qty: u64,
}

/// `POST /v1/orders`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
#[schema(as = PlaceOrder)]
pub struct PlaceOrderBody {
    #[serde(default)]
    pub order_id: Option<String>,
    pub user_id: String,
    pub items: Vec<ItemBody>,
    #[serde(default)]
    pub reservation_ttl_ms: Option<u64>,
}

impl PlaceOrderBody {
    /// `generated` stands in when the body has no `order_id`; the caller makes it, and
    /// `request_tag`, once per HTTP request so that its retries carry the same values.
    pub fn into_command(
        self,
        generated: Option<OrderId>,
        request_tag: RequestTag,
    ) -> Result<Command, ValidationError> {
        let order_id = match (self.order_id, generated) {
            (Some(id), _) => OrderId::parse("order_id", id)?,
            (None, Some(id)) => id,
            (None, None) => return Err(ValidationError::new("order_id", "is required")),
        };
        let user_id = UserId::parse("user_id", self.user_id)?;
        // The body limit (64 KiB, 1 MiB for a batch) bounds the lines; `Items::new` then
        // checks count and duplicates.
        let mut items = Vec::with_capacity(self.items.len());
        for (i, item) in self.items.into_iter().enumerate() {
            items.push(Item {
                sku: SkuId::parse(&format!("items[{i}].sku"), item.sku)?,
                qty: Qty::parse(&format!("items[{i}].qty"), item.qty)?,
            });
        }
        let items = Items::new(items)?;
        checked(Command::PlaceOrder {
            order_id,
            user_id,
            items,
            ttl_ms: self.reservation_ttl_ms.unwrap_or(DEFAULT_TTL_MS),
            request_tag,
        })
    }
}

/// `POST /v1/orders/{order_id}/pay`; the body is optional, `null` equals absent.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
#[schema(as = Pay)]
pub struct PayBody {
    #[serde(default)]
    pub payment_ref: Option<String>,
}

impl PayBody {
    /// `request_tag` names this HTTP request across the gateway's own resends.
    pub fn into_command(
        self,
        order_id: OrderId,
        request_tag: RequestTag,
    ) -> Result<Command, ValidationError> {
        let payment_ref = self
            .payment_ref
            .map(|p| PaymentRef::parse("payment_ref", p))
            .transpose()?;
        checked(Command::Pay {
            order_id,
            payment_ref,
            request_tag,
        })
    }
}

/// `POST /v1/orders/{order_id}/cancel`; the body is optional and has no fields.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
#[schema(as = Cancel)]
pub struct CancelBody {}

/// `POST /v1/orders/{order_id}/refund`; the body is optional, `restock` defaults to true.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
#[schema(as = Refund)]
pub struct RefundBody {
    #[serde(default)]
    pub restock: Option<bool>,
}

impl RefundBody {
    pub fn into_command(self, order_id: OrderId) -> Result<Command, ValidationError> {
        checked(Command::Refund {
            order_id,
            restock: self.restock.unwrap_or(true),
        })
    }
}

/// Runs the command's own range checks, the same `apply` runs again on every replica.
fn checked(command: Command) -> Result<Command, ValidationError> {
    command.validate()?;
    Ok(command)
}

/// `GET /v1/skus?after=&limit=`.
#[derive(Debug, PartialEq, Eq)]
pub struct ListSkusQuery {
    pub after: Option<SkuId>,
    pub limit: u32,
}

/// `GET /v1/orders?user_id=&limit=`.
#[derive(Debug, PartialEq, Eq)]
pub struct ListOrdersQuery {
    pub user_id: UserId,
    pub limit: u32,
}

/// `GET /v1/events?after=&limit=`.
#[derive(Debug, PartialEq, Eq)]
pub struct EventsQuery {
    pub after: u64,
    pub limit: u32,
}

/// `GET /v1/events/stream?after=`; a `Last-Event-ID` header, when sent, decides instead.
#[derive(Debug, PartialEq, Eq)]
pub struct EventStreamQuery {
    pub after: u64,
}

/// `GET /v1/skus/{sku}/sales?from_ms=&to_ms=`: bucket starts in `[from_ms, to_ms)`.
#[derive(Debug, PartialEq, Eq)]
pub struct SalesQuery {
    pub from_ms: u64,
    pub to_ms: u64,
}

/// Query parameters are fields too: unknown or repeated ones are refused like unknown body
/// fields.
fn query_pairs(
    raw: Option<&str>,
    known: &[&str],
) -> Result<Vec<(String, String)>, ValidationError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if !known.contains(&k.as_ref()) {
            return Err(ValidationError::new(
                k.as_ref(),
                format!(
                    "unknown query parameter; expected one of {}",
                    known.join(", ")
                ),
            ));
        }
        if pairs.iter().any(|(seen, _)| *seen == k) {
            return Err(ValidationError::new(k.as_ref(), "given more than once"));
        }
        pairs.push((k.into_owned(), v.into_owned()));
    }
    Ok(pairs)
}

fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn parse_limit(value: Option<&str>) -> Result<u32, ValidationError> {
    let Some(raw) = value else {
        return Ok(DEFAULT_PAGE_LIMIT);
    };
    match raw.parse::<u64>() {
        Ok(n) if (1..=MAX_PAGE_LIMIT as u64).contains(&n) => Ok(n as u32),
        _ => Err(ValidationError::new(
            "limit",
            format!("must be an integer between 1 and {MAX_PAGE_LIMIT}, got {raw:?}"),
        )),
    }
}

/// A count or time: an integer from 0 to 2^53 - 1, like every count of the API.
pub fn parse_count(field: &str, raw: &str) -> Result<u64, ValidationError> {
    match raw.parse::<u64>() {
        Ok(n) if n <= MAX_COUNT => Ok(n),
        _ => Err(ValidationError::new(
            field,
            format!("must be an integer between 0 and {MAX_COUNT}, got {raw:?}"),
        )),
    }
}

impl EventsQuery {
    /// The query parameters it takes; the OpenAPI document lists the same.
    pub const PARAMS: [&str; 2] = ["after", "limit"];

    pub fn parse(raw: Option<&str>) -> Result<Self, ValidationError> {
        let pairs = query_pairs(raw, &Self::PARAMS)?;
        let after = get(&pairs, "after").map_or(Ok(0), |a| parse_count("after", a))?;
        let limit = parse_limit(get(&pairs, "limit"))?;
        Ok(Self { after, limit })
    }
}

impl EventStreamQuery {
    /// The query parameters it takes; the OpenAPI document lists the same.
    pub const PARAMS: [&str; 1] = ["after"];

    pub fn parse(raw: Option<&str>, last_event_id: Option<&str>) -> Result<Self, ValidationError> {
        let pairs = query_pairs(raw, &Self::PARAMS)?;
        let after = get(&pairs, "after").map_or(Ok(0), |a| parse_count("after", a))?;
        // A reconnecting EventSource sends its last id with the URL it first opened: the id
        // is where it stands now.
        let after = match last_event_id {
            Some(id) => parse_count("Last-Event-ID", id.trim())?,
            None => after,
        };
        Ok(Self { after })
    }
}

impl SalesQuery {
    /// The query parameters it takes; the OpenAPI document lists the same.
    pub const PARAMS: [&str; 2] = ["from_ms", "to_ms"];

    pub fn parse(raw: Option<&str>) -> Result<Self, ValidationError> {
        let pairs = query_pairs(raw, &Self::PARAMS)?;
        let from_ms = get(&pairs, "from_ms").map_or(Ok(0), |v| parse_count("from_ms", v))?;
        let to_ms = get(&pairs, "to_ms").map_or(Ok(u64::MAX), |v| parse_count("to_ms", v))?;
        if to_ms < from_ms {
            return Err(ValidationError::new(
                "to_ms",
                format!("must not be below from_ms ({to_ms} < {from_ms})"),
            ));
        }
        Ok(Self { from_ms, to_ms })
    }
}

impl ListSkusQuery {
    /// The query parameters it takes; the OpenAPI document lists the same.
    pub const PARAMS: [&str; 2] = ["after", "limit"];

    pub fn parse(raw: Option<&str>) -> Result<Self, ValidationError> {
        let pairs = query_pairs(raw, &Self::PARAMS)?;
        // An empty `after` is the first page, as in the node's contract.
        let after = match get(&pairs, "after") {
            None | Some("") => None,
            Some(a) => Some(SkuId::parse("after", a)?),
        };
        let limit = parse_limit(get(&pairs, "limit"))?;
        Ok(Self { after, limit })
    }
}

impl ListOrdersQuery {
    /// The query parameters it takes; the OpenAPI document lists the same.
    pub const PARAMS: [&str; 2] = ["user_id", "limit"];

    pub fn parse(raw: Option<&str>) -> Result<Self, ValidationError> {
        let pairs = query_pairs(raw, &Self::PARAMS)?;
        let user_id = match get(&pairs, "user_id") {
            Some(u) => UserId::parse("user_id", u)?,
            None => return Err(ValidationError::new("user_id", "is required")),
        };
        let limit = parse_limit(get(&pairs, "limit"))?;
        Ok(Self { user_id, limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::{decode, DecodeError};

    /// The field a decoding error names; malformed JSON is not what these tests send.
    fn shape_field(json: &str, e: DecodeError) -> String {
        match e {
            DecodeError::Shape(e) => e.field,
            DecodeError::Malformed(m) => panic!("{json}: {m}"),
        }
    }

    /// The command, or the field its decoding or validation names.
    fn place(json: &str) -> Result<Command, String> {
        let body: PlaceOrderBody = decode(json.as_bytes()).map_err(|e| shape_field(json, e))?;
        body.into_command(Some(OrderId::new("gw-x").unwrap()), 1)
            .map_err(|e| e.field)
    }

    fn create_sku(json: &str) -> Result<Command, String> {
        let body: CreateSkuBody = decode(json.as_bytes()).map_err(|e| shape_field(json, e))?;
        body.into_command(1).map_err(|e| e.field)
    }

    #[test]
    fn decoding_errors_name_the_innermost_field() {
        let cases = [
            (
                r#"{"user_id": "u", "items": [{"sku": "a"}]}"#,
                "items[0].qty",
            ),
            (
                r#"{"user_id": "u", "items": [{"sku": "a", "qty": 1}, {"qty": 1}]}"#,
                "items[1].sku",
            ),
            (
                r#"{"user_id": "u", "items": [{"sku": "a", "qty": 1, "colour": "red"}]}"#,
                "items[0].colour",
            ),
            (r#"{"items": [{"sku": "a", "qty": 1}]}"#, "user_id"),
            (r#"{"user_id": "u"}"#, "items"),
            (r#"{"user_id": "u", "items": {}}"#, "items"),
            (
                r#"{"user_id": "u", "items": [{"sku": "a", "qty": "1"}]}"#,
                "items[0].qty",
            ),
        ];
        for (json, field) in cases {
            assert_eq!(place(json).map(|_| ()), Err(field.to_owned()), "{json}");
        }
        let cases = [
            (
                r#"{"sku": "A1", "stock": 1, "sale_window": {"end_ms": 9}}"#,
                "sale_window.start_ms",
            ),
            (
                r#"{"sku": "A1", "stock": 1, "sale_window": {"start_ms": 1, "end_ms": "9"}}"#,
                "sale_window.end_ms",
            ),
            (
                r#"{"sku": "A1", "stock": 1, "sale_window": {"start_ms": 1, "end_ms": 2, "tz": 0}}"#,
                "sale_window.tz",
            ),
            (r#"{"stock": 1}"#, "sku"),
        ];
        for (json, field) in cases {
            assert_eq!(
                create_sku(json).map(|_| ()),
                Err(field.to_owned()),
                "{json}"
            );
        }
    }

    #[test]
    fn order_fields_are_named_like_the_api() {
        let items = |n: usize| {
            (0..n)
                .map(|i| format!(r#"{{"sku": "s{i}", "qty": 1}}"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(
            place(r#"{"user_id": "u", "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 0}]}"#),
            Err("items[1].qty".into())
        );
        assert_eq!(
            place(r#"{"user_id": "u", "items": [{"sku": "a b", "qty": 1}]}"#),
            Err("items[0].sku".into())
        );
        assert_eq!(
            place(r#"{"user_id": "u", "items": [{"sku": "a", "qty": 1}, {"sku": "a", "qty": 2}]}"#),
            Err("items[1].sku".into())
        );
        assert_eq!(
            place(r#"{"user_id": "u", "items": []}"#),
            Err("items".into())
        );
        assert_eq!(
            place(&format!(r#"{{"user_id": "u", "items": [{}]}}"#, items(65))),
            Err("items".into())
        );
        assert!(place(&format!(r#"{{"user_id": "u", "items": [{}]}}"#, items(64))).is_ok());
        assert_eq!(
            place(r#"{"user_id": "", "items": [{"sku": "a", "qty": 1}]}"#),
            Err("user_id".into())
        );
        assert_eq!(
            place(r#"{"order_id": "o/1", "user_id": "u", "items": [{"sku": "a", "qty": 1}]}"#),
            Err("order_id".into())
        );
        assert_eq!(
            place(
                r#"{"user_id": "u", "items": [{"sku": "a", "qty": 1}], "reservation_ttl_ms": 999}"#
            ),
            Err("reservation_ttl_ms".into())
        );
    }

    #[test]
    fn order_defaults_ttl_and_makes_an_id_only_when_absent() {
        let Ok(Command::PlaceOrder {
            order_id, ttl_ms, ..
        }) = place(r#"{"user_id": "u", "items": [{"sku": "a", "qty": 1}], "order_id": null}"#)
        else {
            panic!("expected an order")
        };
        assert_eq!(order_id.as_str(), "gw-x");
        assert_eq!(ttl_ms, DEFAULT_TTL_MS);
        let Ok(Command::PlaceOrder { order_id, .. }) =
            place(r#"{"order_id": "o-1", "user_id": "u", "items": [{"sku": "a", "qty": 1}]}"#)
        else {
            panic!("expected an order")
        };
        assert_eq!(order_id.as_str(), "o-1");
    }

    #[test]
    fn patch_tells_absent_from_null() {
        let body: PatchSkuBody = decode(br#"{"sale_window": null}"#).unwrap();
        let cmd = body.into_command(SkuId::new("A1").unwrap(), 7).unwrap();
        assert_eq!(
            cmd,
            Command::UpdateSku {
                sku: SkuId::new("A1").unwrap(),
                per_user_limit: None,
                sale_window: Some(None),
                request_tag: 7,
            }
        );
        let body: PatchSkuBody = decode(br#"{"per_user_limit": 0}"#).unwrap();
        let err = body.into_command(SkuId::new("A1").unwrap(), 7).unwrap_err();
        assert_eq!(err.field, "per_user_limit");
    }

    #[test]
    fn create_checks_ranges_and_window() {
        assert_eq!(
            create_sku(r#"{"sku": "A1", "stock": 9007199254740992}"#),
            Err("stock".into())
        );
        assert!(create_sku(r#"{"sku": "A1", "stock": 9007199254740991}"#).is_ok());
        assert_eq!(
            create_sku(r#"{"sku": "A1", "stock": 1, "per_user_limit": 0}"#),
            Err("per_user_limit".into())
        );
        assert_eq!(
            create_sku(r#"{"sku": "A1", "stock": 1, "sale_window": {"start_ms": 5, "end_ms": 5}}"#),
            Err("sale_window.start_ms".into())
        );
        assert!(create_sku(
            r#"{"sku": "A1", "stock": 0, "per_user_limit": null, "sale_window": null}"#
        )
        .is_ok());
    }

    #[test]
    fn restock_delta_must_be_non_zero() {
        let body: RestockBody = decode(br#"{"request_id": "r", "delta": 0}"#).unwrap();
        let err = body.into_command(SkuId::new("A1").unwrap(), 1).unwrap_err();
        assert_eq!(err.field, "delta");
    }

    #[test]
    fn list_queries() {
        assert_eq!(
            ListSkusQuery::parse(None).unwrap(),
            ListSkusQuery {
                after: None,
                limit: 100
            }
        );
        assert_eq!(
            ListSkusQuery::parse(Some("after=A1&limit=1000")).unwrap(),
            ListSkusQuery {
                after: Some(SkuId::new("A1").unwrap()),
                limit: 1000
            }
        );
        for bad in ["limit=0", "limit=1001", "limit=x", "limit=-1", "limit="] {
            assert_eq!(
                ListSkusQuery::parse(Some(bad)).unwrap_err().field,
                "limit",
                "{bad}"
            );
        }
        assert_eq!(
            ListSkusQuery::parse(Some("after=a%20b")).unwrap_err().field,
            "after"
        );
        assert_eq!(
            ListSkusQuery::parse(Some("page=2")).unwrap_err().field,
            "page"
        );
        assert_eq!(ListOrdersQuery::parse(None).unwrap_err().field, "user_id");
        assert_eq!(
            ListOrdersQuery::parse(Some("user_id=u-9&limit=5")).unwrap(),
            ListOrdersQuery {
                user_id: UserId::new("u-9").unwrap(),
                limit: 5
            }
        );
    }
}
