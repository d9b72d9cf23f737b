//! The Raft log's payload (a batch of commands with the leader's clock) and the outcome of
//! each command. A refusal is an outcome like any other: it is committed and applied, with no
//! effect on state, so every replica answers alike.

use crate::model::{Items, Order, OrderStatus, SaleWindow, Sku};
use crate::validation::{
    check_delta, check_limit, check_stock, check_ttl, OrderId, PaymentRef, RequestId, SkuId,
    UserId, ValidationError,
};
use serde::{Deserialize, Serialize};

/// Most commands one log entry may carry: bounds the memory of one apply and one proposal.
pub const MAX_BATCH_COMMANDS: usize = 65_536;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    CreateSku {
        sku: SkuId,
        stock: u64,
        per_user_limit: Option<u64>,
        sale_window: Option<SaleWindow>,
        request_tag: RequestTag,
    },
    Restock {
        sku: SkuId,
        request_id: RequestId,
        delta: i64,
        request_tag: RequestTag,
    },
    /// Only the fields that are `Some` change; `Some(None)` clears a setting. A tagged
    /// patch applies at most once: a late attempt of a request whose retry already applied
    /// must not overwrite a newer patch.
    UpdateSku {
        sku: SkuId,
        per_user_limit: Option<Option<u64>>,
        sale_window: Option<Option<SaleWindow>>,
        request_tag: RequestTag,
    },
    PlaceOrder {
        order_id: OrderId,
        user_id: UserId,
        items: Items,
        ttl_ms: u64,
        request_tag: RequestTag,
    },
    Pay {
        order_id: OrderId,
        payment_ref: Option<PaymentRef>,
        request_tag: RequestTag,
    },
    Cancel {
        order_id: OrderId,
    },
    Refund {
        order_id: OrderId,
        restock: bool,
    },
    /// Expires reserved orders whose deadline has passed by the state machine's clock.
    Expire,
}

impl Command {
    /// The numeric ranges the types alone cannot carry. Checked by the gateway before
    /// proposing and again by `apply`, so a bad command is refused alike on every replica.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Command::CreateSku {
                stock,
                per_user_limit,
                ..
            } => {
                check_stock("stock", *stock)?;
                if let Some(limit) = per_user_limit {
                    check_limit("per_user_limit", *limit)?;
                }
            }
            Command::Restock { delta, .. } => {
                check_delta("delta", *delta)?;
            }
            Command::UpdateSku {
                per_user_limit: Some(Some(limit)),
                ..
            } => {
                check_limit("per_user_limit", *limit)?;
            }
            Command::PlaceOrder { ttl_ms, .. } => {
                check_ttl("reservation_ttl_ms", *ttl_ms)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The order a command is about, for tracing and routing.
    pub fn order_id(&self) -> Option<&OrderId> {
        match self {
            Command::PlaceOrder { order_id, .. }
            | Command::Pay { order_id, .. }
            | Command::Cancel { order_id }
            | Command::Refund { order_id, .. } => Some(order_id),
            _ => None,
        }
    }
}

/// Names one request of a caller across that caller's own resends (0: untagged).
///
/// A gateway that resends a create whose first answer was lost must still answer "created"
/// when the first send is what created the record. The record keeps the tag of the request
/// that created it, so a replay carrying that same tag reports [`Effect::Applied`], while a
/// replay from any other request (another tag, or untagged) reports [`Effect::Unchanged`].
pub type RequestTag = u64;

/// One log entry's payload: commands applied in order with the clock the leader stamped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub now_ms: u64,
    pub commands: Vec<Command>,
}

/// Whether an accepted command changed state, or replayed/no-op'd it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    Applied,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Sku { sku: Sku, effect: Effect },
    Order { order: Order, effect: Effect },
    Expired { orders: u64 },
    Refused(Refusal),
}

/// A command the state machine declined, with what the API's error body names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    #[error("sku {sku} does not exist")]
    SkuNotFound { sku: SkuId },
    #[error("order {order_id} does not exist")]
    OrderNotFound { order_id: OrderId },
    #[error("sku {sku} has {available} available, {requested} requested")]
    OutOfStock {
        sku: SkuId,
        available: u64,
        requested: u64,
    },
    #[error("user would hold more than {limit} of sku {sku}: holds {held}, requested {requested}")]
    PerUserLimitExceeded {
        sku: SkuId,
        limit: u64,
        held: u64,
        requested: u64,
    },
    #[error("sku {sku} is on sale in [{start_ms}, {end_ms}) only")]
    SaleNotActive {
        sku: SkuId,
        start_ms: u64,
        end_ms: u64,
    },
    #[error("order {order_id} exists with different content")]
    OrderIdConflict { order_id: OrderId },
    #[error("sku {sku} exists with different settings")]
    SkuExists { sku: SkuId },
    #[error("order {order_id} is {}", status.as_str())]
    InvalidTransition {
        order_id: OrderId,
        status: OrderStatus,
    },
    #[error("sku {sku} has {available} available, cannot withdraw {requested}")]
    InsufficientAvailable {
        sku: SkuId,
        available: u64,
        requested: u64,
    },
    #[error("restock {request_id} of sku {sku} was applied with delta {applied_delta}")]
    RequestIdConflict {
        sku: SkuId,
        request_id: RequestId,
        applied_delta: i64,
    },
    #[error("restock would take total of sku {sku} from {total} past the largest count")]
    TotalOverflow { sku: SkuId, total: u64 },
    #[error("{0}")]
    Invalid(ValidationError),
}

// ValidationError holds only Strings; serde support through its two fields.
impl Serialize for ValidationError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.field, &self.message).serialize(s)
    }
}

impl<'de> Deserialize<'de> for ValidationError {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (field, message) = <(String, String)>::deserialize(d)?;
        Ok(ValidationError { field, message })
    }
}

impl Refusal {
    /// The API's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::SkuNotFound { .. } => "sku_not_found",
            Refusal::OrderNotFound { .. } => "order_not_found",
            Refusal::OutOfStock { .. } => "out_of_stock",
            Refusal::PerUserLimitExceeded { .. } => "per_user_limit_exceeded",
            Refusal::SaleNotActive { .. } => "sale_not_active",
            Refusal::OrderIdConflict { .. } => "order_id_conflict",
            Refusal::SkuExists { .. } => "sku_exists",
            Refusal::InvalidTransition { .. } => "invalid_transition",
            Refusal::InsufficientAvailable { .. } => "insufficient_available",
            Refusal::RequestIdConflict { .. } => "request_id_conflict",
            Refusal::TotalOverflow { .. } | Refusal::Invalid(_) => "invalid_request",
        }
    }
}
