//! A SKU's newest sales bucket rides at the end of the SKU's own record. Every order that
//! moves units rewrites its SKUs anyway; a bucket of its own cost each order a second record
//! per SKU: a lookup and an insert in a tree with a key per SKU and minute, an encoding, and
//! a record more at each checkpoint (callgrind, 10,000 SKUs: about a fifth of apply's
//! instructions). Older buckets stay in the sales tree, where a bucket moves when a newer
//! minute takes its place. A read adds the two together: a minute's units are those of its
//! record in the tree plus those of the SKU's bucket, if it is that minute's.
//!
//! Layout: the SKU's encoding, then, when a bucket rides along, the bucket's encoding and one
//! byte, `0x80 | its length`. A SKU's encoding ends with a varint (`Sku::created_revision`),
//! whose last byte is below `0x80`; so the last byte alone says whether a bucket follows,
//! and records written before buckets rode along read as carrying none.

use super::codec::{encode_shared_with, Value};
use super::error::StoreError;
use super::wire;
use crate::events::{SalesBucket, SalesCounts};
use crate::model::Sku;

const HAS_BUCKET: u8 = 0x80;

/// A record's SKU encoding and the bucket after it, if any.
pub(crate) fn split(record: &[u8]) -> Result<(&[u8], Option<SalesBucket>), StoreError> {
    match record.split_last() {
        Some((&last, rest)) if last & HAS_BUCKET != 0 => {
            let at = rest
                .len()
                .checked_sub(usize::from(last & !HAS_BUCKET))
                .ok_or_else(|| StoreError::Corrupt("skus: bad sales bucket length".into()))?;
            let (sku, bucket) = rest.split_at(at);
            Ok((sku, Some(wire::decode_bucket(bucket)?)))
        }
        _ => Ok((record, None)),
    }
}

/// The SKU of a record, without its bucket.
pub(crate) fn decode_sku(record: &[u8]) -> Result<Sku, StoreError> {
    wire::decode_sku(split(record)?.0)
}

/// A SKU's record, with `bucket` after it.
pub(crate) fn encode(sku: &Sku, bucket: Option<&SalesBucket>) -> Value {
    encode_shared_with(|buffer| {
        wire::encode_sku(sku, buffer);
        if let Some(bucket) = bucket {
            let at = buffer.len();
            wire::encode_bucket(bucket, buffer);
            // At most 6 varints of 10 bytes: the length always fits below the flag.
            let length = u8::try_from(buffer.len() - at).expect("a bucket is at most 60 bytes");
            buffer.push(HAS_BUCKET | length);
        }
    })
}

/// Units one transaction added to a SKU, by bucket: nearly always one.
#[derive(Default)]
pub(crate) struct Added {
    first: Option<SalesBucket>,
    more: Vec<SalesBucket>,
}

impl Added {
    pub fn add(&mut self, start_ms: u64, counts: impl FnOnce(&mut SalesCounts)) {
        let bucket = match &mut self.first {
            Some(first) if first.start_ms == start_ms => first,
            None => self.first.insert(empty(start_ms)),
            Some(_) => match self.more.iter().position(|b| b.start_ms == start_ms) {
                Some(at) => &mut self.more[at],
                None => {
                    self.more.push(empty(start_ms));
                    self.more.last_mut().expect("just pushed")
                }
            },
        };
        counts(&mut bucket.counts);
    }

    fn into_iter(self) -> impl Iterator<Item = SalesBucket> {
        self.first.into_iter().chain(self.more)
    }
}

fn empty(start_ms: u64) -> SalesBucket {
    SalesBucket {
        start_ms,
        counts: SalesCounts::default(),
    }
}

/// The bucket that rides with the SKU after a transaction: the newest of the one it carried
/// and those added, each minute's units summed. The older ones go back for the sales tree,
/// whose records they add to.
pub(crate) fn settle(
    carried: Option<SalesBucket>,
    added: Added,
) -> (Option<SalesBucket>, Vec<SalesBucket>) {
    // Nearly always: one minute, carried or not.
    if added.more.is_empty() {
        match (carried, added.first) {
            (Some(mut carried), Some(first)) if carried.start_ms == first.start_ms => {
                carried.counts.merge(&first.counts);
                return (Some(carried), Vec::new());
            }
            (carried, None) => return (carried, Vec::new()),
            (None, first) => return (first, Vec::new()),
            _ => {}
        }
    }
    let mut newest: Option<SalesBucket> = None;
    let mut older = Vec::new();
    for bucket in carried.into_iter().chain(added.into_iter()) {
        match &mut newest {
            Some(n) if n.start_ms == bucket.start_ms => n.counts.merge(&bucket.counts),
            Some(n) if n.start_ms > bucket.start_ms => older.push(bucket),
            slot => older.extend(slot.replace(bucket)),
        }
    }
    (newest, older)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SkuCreation;
    use crate::validation::SkuId;

    fn sku(revision: u64) -> Sku {
        Sku {
            sku: SkuId::new("phone-1").unwrap(),
            total: u64::MAX,
            available: u64::MAX,
            reserved: 0,
            sold: 0,
            refunded: 0,
            per_user_limit: Some(3),
            sale_window: None,
            revision,
            created: SkuCreation {
                stock: u64::MAX,
                per_user_limit: Some(3),
                sale_window: None,
            },
            request_tag: u64::MAX,
            created_revision: revision,
        }
    }

    fn bucket(start_ms: u64, reserved: u64) -> SalesBucket {
        SalesBucket {
            start_ms,
            counts: SalesCounts {
                reserved,
                ..Default::default()
            },
        }
    }

    /// The layout's premise: a SKU's encoding never ends in a byte with the flag set.
    #[test]
    fn a_skus_encoding_ends_below_the_flag() {
        for revision in [0, 1, 127, 128, 300, u64::MAX / 3, u64::MAX] {
            let plain = postcard::to_stdvec(&sku(revision)).unwrap();
            assert!(plain.last().unwrap() & HAS_BUCKET == 0, "{revision}");
            assert_eq!(&encode(&sku(revision), None)[..], &plain[..]);
        }
    }

    #[test]
    fn a_record_round_trips_with_and_without_its_bucket() {
        let largest = SalesBucket {
            start_ms: u64::MAX,
            counts: SalesCounts {
                reserved: u64::MAX,
                paid: u64::MAX,
                cancelled: u64::MAX,
                expired: u64::MAX,
                refunded: u64::MAX,
            },
        };
        for carried in [None, Some(bucket(60_000, 1)), Some(largest)] {
            let record = encode(&sku(5), carried.as_ref());
            let (plain, read) = split(&record).unwrap();
            assert_eq!(read, carried);
            assert_eq!(plain, &postcard::to_stdvec(&sku(5)).unwrap()[..]);
            assert_eq!(decode_sku(&record).unwrap(), sku(5));
        }
    }

    #[test]
    fn a_damaged_bucket_is_corrupt() {
        let record = encode(&sku(5), Some(&bucket(60_000, 1)));
        let mut long = record.to_vec();
        *long.last_mut().unwrap() = HAS_BUCKET | 0x7f;
        assert!(split(&long).is_err());
        let mut short = record.to_vec();
        *short.last_mut().unwrap() = HAS_BUCKET | 1;
        assert!(split(&short).is_err());
    }

    #[test]
    fn the_newest_minute_rides_and_older_ones_go_back() {
        let mut added = Added::default();
        added.add(120_000, |c| c.reserved += 2);
        added.add(60_000, |c| c.reserved += 3);
        added.add(120_000, |c| c.reserved += 1);
        let (newest, older) = settle(Some(bucket(60_000, 10)), added);
        assert_eq!(newest, Some(bucket(120_000, 3)));
        let mut older = older;
        older.sort_by_key(|b| (b.start_ms, b.counts.reserved));
        assert_eq!(older, [bucket(60_000, 3), bucket(60_000, 10)]);

        let mut same = Added::default();
        same.add(60_000, |c| c.reserved += 4);
        assert_eq!(
            settle(Some(bucket(60_000, 10)), same),
            (Some(bucket(60_000, 14)), Vec::new())
        );
        assert_eq!(
            settle(Some(bucket(180_000, 1)), Added::default()),
            (Some(bucket(180_000, 1)), Vec::new())
        );
    }
}
