//! The inventory state machine: the domain (SKUs, orders, commands, refusals), the validation
//! rules every entry point shares, and — behind the default `store` feature — the deterministic
//! `apply` over a sled store with atomic batches, snapshots and linearisable-read helpers.
//!
//! It never opens a socket, reads a clock or spawns a task: time arrives inside each batch
//! (`Batch::now_ms`, stamped by the Raft leader), so every replica that applies the same log
//! reaches the same bytes. It knows nothing of Raft or networking.

pub mod command;
pub mod events;
pub mod model;
pub mod short_outcome;
pub mod validation;

#[cfg(feature = "store")]
mod engine;
#[cfg(feature = "store")]
pub mod store;

pub use command::{Batch, Command, Effect, Outcome, Refusal, RequestTag, MAX_BATCH_COMMANDS};
pub use events::{
    Event, EventKind, EventPage, EventRead, EventSubject, Retention, SalesBucket, SalesCounts,
    MAX_EVENTS_PAGE, MAX_SALES_BUCKETS, SALES_BUCKET_MS,
};
pub use model::{
    Item, Items, Order, OrderStatus, PatchRecord, Payment, RestockRecord, SaleWindow, Sku,
    SkuCreation,
};
pub use short_outcome::{MismatchedOutcome, ShortOutcome};
pub use validation::{
    OrderId, PaymentRef, Qty, RequestId, SkuId, UserId, ValidationError, DEFAULT_TTL_MS, MAX_COUNT,
    MAX_ITEMS, MAX_QTY, MAX_TTL_MS, MIN_TTL_MS,
};

#[cfg(feature = "store")]
pub use store::{
    verify_snapshot, CheckpointInfo, SnapshotInfo, Store, StoreError, SNAPSHOT_VERSION,
};
