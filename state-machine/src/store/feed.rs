//! Reads of the event feed and the sales figures, each from one point in time of the working
//! set (the node's read-index check comes first, as for every read).

use super::codec::decode;
use super::error::StoreError;
use super::event_chunks;
use super::keys::{self, EVENTS_HEAD_KEY};
use super::memory::{MemTrees, Value};
use super::sku_sales;
use super::tx::read_u64;
use super::Store;
use crate::events::{Event, EventPage, EventRead, SalesBucket, MAX_EVENTS_PAGE, MAX_SALES_BUCKETS};
use crate::validation::SkuId;
use std::ops::Bound;

impl Store {
    /// The newest event id applied (0: none yet).
    pub fn events_head(&self) -> Result<u64, StoreError> {
        read_u64(
            self.mem().applied(),
            EVENTS_HEAD_KEY,
            "applied: events head",
        )
    }

    /// Events with ids above `after`, in id order, at most `limit` (1 to `MAX_EVENTS_PAGE`),
    /// or `Compacted` when the first of them is past the retention.
    pub fn read_events(&self, after: u64, limit: usize) -> Result<EventRead, StoreError> {
        let limit = limit.clamp(1, MAX_EVENTS_PAGE);
        let mem = self.mem();
        let head = read_u64(mem.applied(), EVENTS_HEAD_KEY, "applied: events head")?;
        let oldest = mem.event_seq().first_id().unwrap_or(head.saturating_add(1));
        if after.saturating_add(1) < oldest {
            return Ok(EventRead::Compacted { oldest });
        }
        let from = after.saturating_add(1);
        let to = head
            .saturating_add(1)
            .min(from.saturating_add(limit as u64));
        let events = self
            .event_values(&mem, from, to)?
            .iter()
            .map(|(_, value)| decode::<Event>("events", value))
            .collect::<Result<Vec<_>, _>>()?;
        let next = events.last().map_or(after, |e| e.id);
        Ok(EventRead::Page(EventPage { events, next, head }))
    }

    /// The events `from .. to` of `mem`, which must hold them all: those held in memory, and
    /// the older ones read from sled. `mem` must be the current working set, read-locked: no
    /// checkpoint can then delete from sled an event it holds (only a pruning apply, which
    /// waits for the lock, makes one deletable), and no install can replace the generation.
    pub(super) fn event_values(
        &self,
        mem: &MemTrees,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, Value)>, StoreError> {
        let seq = mem.event_seq();
        let held_from = seq.held_from();
        let mut events = if from < held_from {
            event_chunks::read(&self.disk().events, from, to.min(held_from))?
        } else {
            Vec::new()
        };
        for id in from.max(held_from)..to {
            let value = seq
                .held()
                .get(id)
                .ok_or_else(|| StoreError::Corrupt(format!("events: {id} missing")))?;
            events.push((id, value.clone()));
        }
        Ok(events)
    }

    /// The SKU's sales buckets whose start lies in `[from_ms, to_ms)`, oldest first, at most
    /// `MAX_SALES_BUCKETS`; buckets with no movement are not stored. `None`: no such SKU.
    pub fn sales(
        &self,
        sku: &SkuId,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Option<Vec<SalesBucket>>, StoreError> {
        let mem = self.mem();
        let Some(record) = mem.skus().get(sku.as_str().as_bytes()) else {
            return Ok(None);
        };
        if from_ms >= to_ms {
            return Ok(Some(Vec::new()));
        }
        let sku = sku.as_str().as_bytes();
        let (from, to) = (keys::sales(sku, from_ms), keys::sales(sku, to_ms));
        let mut buckets = mem
            .sales()
            .range((
                Bound::Included(from.as_slice()),
                Bound::Excluded(to.as_slice()),
            ))
            .take(MAX_SALES_BUCKETS)
            .map(|(key, value)| {
                Ok(SalesBucket {
                    start_ms: keys::sales_start(&key)
                        .ok_or_else(|| StoreError::Corrupt("sales: bad key".into()))?,
                    counts: decode("sales", value)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // The SKU's newest bucket rides in its record; its minute may also have units in
        // the tree (`sku_sales`).
        let carried = sku_sales::split(record)?.1;
        if let Some(carried) = carried.filter(|b| (from_ms..to_ms).contains(&b.start_ms)) {
            match buckets.binary_search_by_key(&carried.start_ms, |b| b.start_ms) {
                Ok(at) => buckets[at].counts.merge(&carried.counts),
                Err(at) => buckets.insert(at, carried),
            }
            buckets.truncate(MAX_SALES_BUCKETS);
        }
        Ok(Some(buckets))
    }
}
