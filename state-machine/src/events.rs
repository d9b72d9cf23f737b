//! The event feed and the sales figures: what apply records about every accepted change, so
//! that a consumer can follow a sale without polling each order. Both are state like any
//! other (numbered by apply, in snapshots, equal on every replica), so every node can answer
//! a read of them.

use crate::model::{Order, OrderStatus, Sku};
use serde::{Deserialize, Serialize};

/// Width of a sales bucket: one minute of the cluster clock.
pub const SALES_BUCKET_MS: u64 = 60_000;
/// Most buckets one sales read answers (seven days of minutes).
pub const MAX_SALES_BUCKETS: usize = 10_080;
/// Most events one page answers.
pub const MAX_EVENTS_PAGE: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    SkuCreated,
    SkuRestocked,
    SkuUpdated,
    OrderReserved,
    OrderPaid,
    OrderCancelled,
    OrderExpired,
    OrderRefunded,
}

impl EventKind {
    /// Every kind, in the order the API reference lists them (the OpenAPI document's enum).
    pub const ALL: [EventKind; 8] = [
        EventKind::SkuCreated,
        EventKind::SkuRestocked,
        EventKind::SkuUpdated,
        EventKind::OrderReserved,
        EventKind::OrderPaid,
        EventKind::OrderCancelled,
        EventKind::OrderExpired,
        EventKind::OrderRefunded,
    ];

    /// The `type` of the API's event body.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SkuCreated => "sku.created",
            EventKind::SkuRestocked => "sku.restocked",
            EventKind::SkuUpdated => "sku.updated",
            EventKind::OrderReserved => "order.reserved",
            EventKind::OrderPaid => "order.paid",
            EventKind::OrderCancelled => "order.cancelled",
            EventKind::OrderExpired => "order.expired",
            EventKind::OrderRefunded => "order.refunded",
        }
    }

    /// The event of an order entering `status`.
    pub fn of_order_status(status: OrderStatus) -> Self {
        match status {
            OrderStatus::Reserved => EventKind::OrderReserved,
            OrderStatus::Paid => EventKind::OrderPaid,
            OrderStatus::Cancelled => EventKind::OrderCancelled,
            OrderStatus::Expired => EventKind::OrderExpired,
            OrderStatus::Refunded => EventKind::OrderRefunded,
        }
    }
}

/// The record an event is about, as the event left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventSubject {
    Sku(Sku),
    Order(Order),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// 1, 2, 3, … without gaps, in apply order.
    pub id: u64,
    pub kind: EventKind,
    /// The state machine's clock when the change was applied.
    pub time_ms: u64,
    /// The log index of the entry that made the change.
    pub revision: u64,
    pub subject: EventSubject,
}

/// One page of the feed: events with ids above the request's `after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// The last id returned, or the request's `after` when none was.
    pub next: u64,
    /// The newest event id at the time of the read (0: none yet).
    pub head: u64,
}

/// A feed read: a page, or the news that the requested ids are past the retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventRead {
    Page(EventPage),
    /// `oldest` is the first id still readable.
    Compacted {
        oldest: u64,
    },
}

/// How long events are kept: an event is dropped only once it is neither among the newest
/// `min_events` nor younger than `min_age_ms` by the cluster clock. Every replica must use
/// the same retention, since pruning is part of apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub min_events: u64,
    pub min_age_ms: u64,
}

impl Default for Retention {
    /// The API's promise: the last 1,000,000 events or the last 24 hours, whichever is more.
    fn default() -> Self {
        Retention {
            min_events: 1_000_000,
            min_age_ms: 24 * 60 * 60 * 1000,
        }
    }
}

/// Units that moved in one SKU during one bucket, by what moved them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesCounts {
    pub reserved: u64,
    pub paid: u64,
    pub cancelled: u64,
    pub expired: u64,
    pub refunded: u64,
}

impl SalesCounts {
    /// Adds `qty` units under the counter of `kind`; SKU events move no units.
    pub fn add(&mut self, kind: EventKind, qty: u64) {
        let counter = match kind {
            EventKind::OrderReserved => &mut self.reserved,
            EventKind::OrderPaid => &mut self.paid,
            EventKind::OrderCancelled => &mut self.cancelled,
            EventKind::OrderExpired => &mut self.expired,
            EventKind::OrderRefunded => &mut self.refunded,
            EventKind::SkuCreated | EventKind::SkuRestocked | EventKind::SkuUpdated => return,
        };
        *counter = counter.saturating_add(qty);
    }

    /// Adds every counter of `other` to this one's.
    pub fn merge(&mut self, other: &SalesCounts) {
        for (counter, more) in [
            (&mut self.reserved, other.reserved),
            (&mut self.paid, other.paid),
            (&mut self.cancelled, other.cancelled),
            (&mut self.expired, other.expired),
            (&mut self.refunded, other.refunded),
        ] {
            *counter = counter.saturating_add(more);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesBucket {
    pub start_ms: u64,
    pub counts: SalesCounts,
}

/// The start of the bucket holding `t_ms`.
pub fn bucket_start(t_ms: u64) -> u64 {
    t_ms - t_ms % SALES_BUCKET_MS
}

#[cfg(test)]
mod kind_tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn all_lists_each_kind_once_with_every_order_event() {
        let names: BTreeSet<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), EventKind::ALL.len());
        for status in OrderStatus::ALL {
            assert!(EventKind::ALL.contains(&EventKind::of_order_status(status)));
        }
        let statuses: BTreeSet<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(statuses.len(), OrderStatus::ALL.len());
    }
}
