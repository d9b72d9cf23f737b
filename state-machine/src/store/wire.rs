//! The SKU and order records in postcard's wire format, written by hand. Every order encodes
//! its order's record and its SKUs' and decodes its SKUs'. Through serde, each field went
//! through the serializer's generic calls; by hand, apply takes 5 to 6 % fewer instructions
//! (callgrind, hot SKU and 10,000 SKUs), nearly all of it in the encoding. The bytes are
//! postcard's exactly, both ways (the tests compare with postcard itself, damaged records
//! too), so records stored before, and snapshots, read as they did. Decoding checks what
//! serde's path checked: identifiers, quantities, windows and item lists must be valid, or
//! the record is corrupt.
//!
//! Postcard's format, as used here: unsigned integers as LEB128 varints, a string as its
//! length and its bytes, a sequence as its length and its elements, an option as a byte 0 or
//! 1 before the value, an enum's variant by its index, struct fields in order, no framing.

use super::error::StoreError;
use crate::events::{SalesBucket, SalesCounts};
use crate::model::{Item, Items, Order, OrderStatus, Payment, SaleWindow, Sku, SkuCreation};
use crate::validation::{OrderId, PaymentRef, Qty, SkuId, UserId};

/// Room for a typical record, so the encoding rarely grows its buffer.
const TYPICAL_RECORD_BYTES: usize = 128;

pub(crate) fn encode_sku(sku: &Sku, out: &mut Vec<u8>) {
    out.reserve(TYPICAL_RECORD_BYTES);
    put_str(out, sku.sku.as_str());
    for value in [
        sku.total,
        sku.available,
        sku.reserved,
        sku.sold,
        sku.refunded,
    ] {
        put_varint(out, value);
    }
    put_option(out, sku.per_user_limit, put_varint);
    put_option(out, sku.sale_window, put_window);
    put_varint(out, sku.revision);
    put_varint(out, sku.created.stock);
    put_option(out, sku.created.per_user_limit, put_varint);
    put_option(out, sku.created.sale_window, put_window);
    put_varint(out, sku.request_tag);
    put_varint(out, sku.created_revision);
}

/// The SKU a record starts with; whatever follows it (a sales bucket) is not read.
pub(crate) fn decode_sku(bytes: &[u8]) -> Result<Sku, StoreError> {
    let mut r = Reader::new("skus", bytes);
    let sku = r.ident(|s| SkuId::new(s))?;
    sku_after_id(r, sku)
}

/// As `decode_sku`, for the record stored under `sku`'s key: its id is compared with `sku`,
/// not checked and copied anew. That check and copy were a quarter of decoding a SKU
/// (callgrind), which every order for a SKU not read yet in its batch pays.
pub(crate) fn decode_sku_of(bytes: &[u8], sku: &SkuId) -> Result<Sku, StoreError> {
    let mut r = Reader::new("skus", bytes);
    r.expect_str(sku.as_str())?;
    sku_after_id(r, sku.clone())
}

fn sku_after_id(mut r: Reader<'_>, sku: SkuId) -> Result<Sku, StoreError> {
    let [total, available, reserved, sold, refunded] = [
        r.varint()?,
        r.varint()?,
        r.varint()?,
        r.varint()?,
        r.varint()?,
    ];
    let per_user_limit = r.option(Reader::varint)?;
    let sale_window = r.option(Reader::window)?;
    let revision = r.varint()?;
    let created = SkuCreation {
        stock: r.varint()?,
        per_user_limit: r.option(Reader::varint)?,
        sale_window: r.option(Reader::window)?,
    };
    Ok(Sku {
        sku,
        total,
        available,
        reserved,
        sold,
        refunded,
        per_user_limit,
        sale_window,
        revision,
        created,
        request_tag: r.varint()?,
        created_revision: r.varint()?,
    })
}

pub(crate) fn encode_order(order: &Order, out: &mut Vec<u8>) {
    out.reserve(TYPICAL_RECORD_BYTES);
    put_str(out, order.order_id.as_str());
    put_str(out, order.user_id.as_str());
    let items = order.items.as_slice();
    put_varint(out, items.len() as u64);
    for item in items {
        put_str(out, item.sku.as_str());
        put_varint(out, item.qty.get());
    }
    put_varint(out, status_index(order.status));
    for value in [order.created_ms, order.expires_ms, order.updated_ms] {
        put_varint(out, value);
    }
    put_option(out, order.payment_ref.as_ref(), |out, p| {
        put_str(out, p.as_str())
    });
    put_varint(out, order.revision);
    put_varint(out, order.request_tag);
    put_option(out, order.paid.as_ref(), |out, paid| {
        for value in [paid.request_tag, paid.at_ms, paid.revision] {
            put_varint(out, value);
        }
    });
}

/// The order a record starts with.
/// The order id an order's record begins with, without decoding the rest; `None` for bytes
/// too short to hold one.
#[inline]
pub(crate) fn order_id_bytes(record: &[u8]) -> Option<&[u8]> {
    // Ids are at most 128 bytes: their length takes one byte of the varint, or two. This
    // runs at every comparison of the orders tree's keys.
    match *record.first()? {
        len @ 0..=0x7f => record.get(1..1 + usize::from(len)),
        low => {
            let high = *record.get(1)?;
            if high & 0x80 != 0 {
                return None;
            }
            let len = usize::from(low & 0x7f) | usize::from(high) << 7;
            record.get(2..2 + len)
        }
    }
}

pub(crate) fn decode_order(bytes: &[u8]) -> Result<Order, StoreError> {
    let mut r = Reader::new("orders", bytes);
    let order_id = r.ident(|s| OrderId::new(s))?;
    let user_id = r.ident(|s| UserId::new(s))?;
    let count = r.length()?;
    let mut items = Vec::with_capacity(count.min(crate::validation::MAX_ITEMS));
    for _ in 0..count {
        let sku = r.ident(|s| SkuId::new(s))?;
        let qty = Qty::new(r.varint()?).map_err(|e| r.corrupt(&e.to_string()))?;
        items.push(Item { sku, qty });
    }
    let items = Items::new(items).map_err(|e| r.corrupt(&e.to_string()))?;
    let status = match r.variant()? {
        0 => OrderStatus::Reserved,
        1 => OrderStatus::Paid,
        2 => OrderStatus::Cancelled,
        3 => OrderStatus::Expired,
        4 => OrderStatus::Refunded,
        other => return Err(r.corrupt(&format!("no order status {other}"))),
    };
    let [created_ms, expires_ms, updated_ms] = [r.varint()?, r.varint()?, r.varint()?];
    let payment_ref = r.option(|r| r.ident(|s| PaymentRef::new(s)))?;
    let revision = r.varint()?;
    let request_tag = r.varint()?;
    let paid = r.option(|r| {
        Ok(Payment {
            request_tag: r.varint()?,
            at_ms: r.varint()?,
            revision: r.varint()?,
        })
    })?;
    Ok(Order {
        order_id,
        user_id,
        items,
        status,
        created_ms,
        expires_ms,
        updated_ms,
        payment_ref,
        revision,
        request_tag,
        paid,
    })
}

/// A SKU's sales bucket, as it rides after the SKU (`sku_sales`).
pub(crate) fn encode_bucket(bucket: &SalesBucket, out: &mut Vec<u8>) {
    let c = &bucket.counts;
    for value in [
        bucket.start_ms,
        c.reserved,
        c.paid,
        c.cancelled,
        c.expired,
        c.refunded,
    ] {
        put_varint(out, value);
    }
}

/// The bucket that `bytes` hold, and nothing after it.
pub(crate) fn decode_bucket(bytes: &[u8]) -> Result<SalesBucket, StoreError> {
    let mut r = Reader::new("skus", bytes);
    let start_ms = r.varint()?;
    let counts = SalesCounts {
        reserved: r.varint()?,
        paid: r.varint()?,
        cancelled: r.varint()?,
        expired: r.varint()?,
        refunded: r.varint()?,
    };
    if r.at != bytes.len() {
        return Err(r.corrupt("bytes after the sales bucket"));
    }
    Ok(SalesBucket { start_ms, counts })
}

/// The variant's index, as serde's derive numbers them: in declaration order.
fn status_index(status: OrderStatus) -> u64 {
    match status {
        OrderStatus::Reserved => 0,
        OrderStatus::Paid => 1,
        OrderStatus::Cancelled => 2,
        OrderStatus::Expired => 3,
        OrderStatus::Refunded => 4,
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_option<T>(out: &mut Vec<u8>, value: Option<T>, put: impl FnOnce(&mut Vec<u8>, T)) {
    match value {
        None => out.push(0),
        Some(value) => {
            out.push(1);
            put(out, value);
        }
    }
}

fn put_window(out: &mut Vec<u8>, window: SaleWindow) {
    put_varint(out, window.start_ms);
    put_varint(out, window.end_ms);
}

/// Packs the 7-bit groups held in the low bits of each byte of `x` (least significant first)
/// into one integer: pairs of groups into 14 bits, then 28, then 56.
fn pack_groups(x: u64) -> u64 {
    let x = (x & 0x007f_007f_007f_007f) | ((x & 0x7f00_7f00_7f00_7f00) >> 1);
    let x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x3fff_0000_3fff_0000) >> 2);
    (x & 0x0000_0000_0fff_ffff) | ((x & 0x0fff_ffff_0000_0000) >> 4)
}

/// Reads one record's fields in turn; every failure names the tree and the offset.
struct Reader<'a> {
    tree: &'static str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(tree: &'static str, bytes: &'a [u8]) -> Self {
        Self { tree, bytes, at: 0 }
    }

    fn corrupt(&self, what: &str) -> StoreError {
        StoreError::Corrupt(format!("{}: {what} at byte {}", self.tree, self.at))
    }

    fn byte(&mut self) -> Result<u8, StoreError> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| self.corrupt("record ends early"))?;
        self.at += 1;
        Ok(byte)
    }

    /// A u64 varint as postcard reads one: at most ten bytes, the tenth at most 1.
    #[inline]
    fn varint(&mut self) -> Result<u64, StoreError> {
        // Most counts and times here fit in one or two bytes.
        match self.bytes.get(self.at..self.at + 2) {
            Some(&[low, _]) if low < 0x80 => {
                self.at += 1;
                Ok(u64::from(low))
            }
            Some(&[low, high]) if high < 0x80 => {
                self.at += 2;
                Ok(u64::from(low & 0x7f) | u64::from(high) << 7)
            }
            _ => self.varint_of(u64::BITS),
        }
    }

    /// An enum's variant index: a u32 varint, at most five bytes, the fifth at most 0x0f.
    fn variant(&mut self) -> Result<u32, StoreError> {
        let value = self.varint_of(u32::BITS)?;
        Ok(u32::try_from(value).expect("at most 32 bits read"))
    }

    /// A varint of an integer of `bits` bits, as postcard reads one: its last possible byte
    /// may hold only the bits left.
    ///
    /// Stocks of millions are varints of four bytes and more, and reading them byte by byte
    /// was a third of decoding a SKU (callgrind). So where eight bytes remain, a varint that
    /// ends within them and fits the width is read from one word: its bytes found by their
    /// clear top bits, their 7-bit groups packed together by three shifts.
    #[inline(never)]
    fn varint_of(&mut self, bits: u32) -> Result<u64, StoreError> {
        if let Some(word) = self
            .bytes
            .get(self.at..)
            .and_then(|rest| rest.first_chunk())
        {
            let word = u64::from_le_bytes(*word);
            let ends = !word & 0x8080_8080_8080_8080;
            let length = ends.trailing_zeros() / 8 + 1;
            if ends != 0 && length * 7 <= bits {
                let kept = match length {
                    8 => word,
                    _ => word & ((1 << (8 * length)) - 1),
                };
                self.at += length as usize;
                return Ok(pack_groups(kept & 0x7f7f_7f7f_7f7f_7f7f));
            }
        }
        self.varint_bytewise(bits)
    }

    fn varint_bytewise(&mut self, bits: u32) -> Result<u64, StoreError> {
        let rest = &self.bytes[self.at.min(self.bytes.len())..];
        let most = bits.div_ceil(7) as usize;
        let mut value = 0u64;
        for (i, &byte) in rest.iter().take(most).enumerate() {
            let shift = 7 * i as u32;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                // Only the last possible byte can carry bits past the integer's width.
                if bits - shift < 7 && u32::from(byte) >> (bits - shift) != 0 {
                    self.at += i + 1;
                    return Err(self.corrupt("varint too large"));
                }
                self.at += i + 1;
                return Ok(value);
            }
        }
        if rest.len() < most {
            self.at += rest.len();
            Err(self.corrupt("record ends early"))
        } else {
            self.at += most;
            Err(self.corrupt("varint too long"))
        }
    }

    fn length(&mut self) -> Result<usize, StoreError> {
        let length = self.varint()?;
        usize::try_from(length).map_err(|_| self.corrupt("length too large"))
    }

    fn ident<T, E: std::fmt::Display>(
        &mut self,
        make: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, StoreError> {
        let length = self.length()?;
        let end = self
            .at
            .checked_add(length)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.corrupt("string runs past the record"))?;
        let text = std::str::from_utf8(&self.bytes[self.at..end])
            .map_err(|_| self.corrupt("string is not UTF-8"))?;
        let value = make(text).map_err(|e| self.corrupt(&e.to_string()))?;
        self.at = end;
        Ok(value)
    }

    /// A string that must be `expected`: a record read under a key holds that key's id.
    fn expect_str(&mut self, expected: &str) -> Result<(), StoreError> {
        let length = self.length()?;
        match self
            .bytes
            .get(self.at..)
            .and_then(|rest| rest.get(..length))
        {
            Some(text) if text == expected.as_bytes() => {
                self.at += length;
                Ok(())
            }
            Some(_) => Err(self.corrupt(&format!("not the record of {expected:?}"))),
            None => Err(self.corrupt("string runs past the record")),
        }
    }

    fn option<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        match self.byte()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            _ => Err(self.corrupt("option tag not 0 or 1")),
        }
    }

    fn window(&mut self) -> Result<SaleWindow, StoreError> {
        let start_ms = self.varint()?;
        let end_ms = self.varint()?;
        SaleWindow::new(start_ms, end_ms).map_err(|e| self.corrupt(&e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ident() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._:-]{1,64}"
    }

    /// Small and large values alike: each varint length from one byte to ten.
    fn number() -> impl Strategy<Value = u64> {
        prop_oneof![
            0..200u64,
            any::<u64>(),
            (0..64u32).prop_map(|bits| 1u64 << bits)
        ]
    }

    fn window() -> impl Strategy<Value = Option<SaleWindow>> {
        proptest::option::of(
            (number(), number())
                .prop_filter("start before end", |(a, b)| a != b)
                .prop_map(|(a, b)| SaleWindow::new(a.min(b), a.max(b)).expect("valid")),
        )
    }

    prop_compose! {
        fn sku()(
            id in ident(),
            counts in proptest::array::uniform5(number()),
            limits in (proptest::option::of(number()), proptest::option::of(number())),
            windows in (window(), window()),
            more in proptest::array::uniform4(number()),
        ) -> Sku {
            Sku {
                sku: SkuId::new(id).expect("valid"),
                total: counts[0],
                available: counts[1],
                reserved: counts[2],
                sold: counts[3],
                refunded: counts[4],
                per_user_limit: limits.0,
                sale_window: windows.0,
                revision: more[0],
                created: SkuCreation {
                    stock: more[1],
                    per_user_limit: limits.1,
                    sale_window: windows.1,
                },
                request_tag: more[2],
                created_revision: more[3],
            }
        }
    }

    prop_compose! {
        fn order()(
            ids in (ident(), ident()),
            skus in proptest::collection::btree_set(ident(), 1..=crate::validation::MAX_ITEMS),
            qty in 1..=crate::validation::MAX_QTY,
            status in 0..5usize,
            times in proptest::array::uniform5(number()),
            payment_ref in proptest::option::of(ident()),
            paid in proptest::option::of(proptest::array::uniform3(number())),
        ) -> Order {
            let items = skus
                .into_iter()
                .map(|sku| Item { sku: SkuId::new(sku).expect("valid"), qty: Qty::new(qty).expect("valid") })
                .collect();
            Order {
                order_id: OrderId::new(ids.0).expect("valid"),
                user_id: UserId::new(ids.1).expect("valid"),
                items: Items::new(items).expect("valid"),
                status: OrderStatus::ALL[status],
                created_ms: times[0],
                expires_ms: times[1],
                updated_ms: times[2],
                payment_ref: payment_ref.map(|p| PaymentRef::new(p).expect("valid")),
                revision: times[3],
                request_tag: times[4],
                paid: paid.map(|[request_tag, at_ms, revision]| Payment { request_tag, at_ms, revision }),
            }
        }
    }

    prop_compose! {
        fn bucket()(values in proptest::array::uniform6(number())) -> SalesBucket {
            let [start_ms, reserved, paid, cancelled, expired, refunded] = values;
            SalesBucket { start_ms, counts: SalesCounts { reserved, paid, cancelled, expired, refunded } }
        }
    }

    proptest! {
        #[test]
        fn a_bucket_encodes_as_postcard_does_and_reads_back_as_it_does(bucket in bucket(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let mut ours = Vec::new();
            encode_bucket(&bucket, &mut ours);
            prop_assert_eq!(&ours, &postcard::to_stdvec(&bucket).expect("encodes"));
            prop_assert_eq!(decode_bucket(&ours).expect("decodes"), bucket);
            let i = at.index(ours.len());
            ours[i] = byte;
            ours.truncate(cut.index(ours.len() + 2));
            let theirs = match postcard::take_from_bytes::<SalesBucket>(&ours) {
                Ok((bucket, [])) => Some(bucket),
                _ => None,
            };
            prop_assert_eq!(decode_bucket(&ours).ok(), theirs);
        }

        #[test]
        fn a_sku_encodes_as_postcard_does_and_reads_back(sku in sku(), tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut ours = Vec::new();
            encode_sku(&sku, &mut ours);
            prop_assert_eq!(&ours, &postcard::to_stdvec(&sku).expect("encodes"));
            ours.extend_from_slice(&tail);
            prop_assert_eq!(&decode_sku(&ours).expect("decodes"), &sku);
            prop_assert_eq!(decode_sku_of(&ours, &sku.sku).expect("decodes"), sku);
        }

        #[test]
        fn an_order_encodes_as_postcard_does_and_reads_back(order in order()) {
            let mut ours = Vec::new();
            encode_order(&order, &mut ours);
            prop_assert_eq!(&ours, &postcard::to_stdvec(&order).expect("encodes"));
            prop_assert_eq!(decode_order(&ours).expect("decodes"), order);
        }

        /// Any bytes at all: where postcard reads a record, this reads the same one; where
        /// postcard refuses, so does this.
        #[test]
        fn damaged_records_read_as_postcard_reads_them(sku in sku(), order in order(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            for (mut bytes, is_sku) in [(postcard::to_stdvec(&sku).expect("encodes"), true), (postcard::to_stdvec(&order).expect("encodes"), false)] {
                let i = at.index(bytes.len());
                bytes[i] = byte;
                bytes.truncate(cut.index(bytes.len() + 1));
                if is_sku {
                    let theirs = postcard::from_bytes::<Sku>(&bytes).ok();
                    prop_assert_eq!(decode_sku(&bytes).ok(), theirs.clone());
                    // Read under its key, a record of another SKU is refused too.
                    let under_key = theirs.filter(|read| read.sku == sku.sku);
                    prop_assert_eq!(decode_sku_of(&bytes, &sku.sku).ok(), under_key);
                } else {
                    prop_assert_eq!(decode_order(&bytes).ok(), postcard::from_bytes::<Order>(&bytes).ok());
                }
            }
        }
    }

    proptest! {
        /// Varints of every length, read where eight bytes or fewer remain after them.
        #[test]
        fn any_varint_reads_as_postcard_reads_it(continued in 0..12usize, mut bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            for byte in bytes.iter_mut().take(continued) {
                *byte |= 0x80;
            }
            prop_assert_eq!(Reader::new("t", &bytes).varint().ok(), postcard::from_bytes::<u64>(&bytes).ok());
            prop_assert_eq!(Reader::new("t", &bytes).variant().ok(), postcard::from_bytes::<u32>(&bytes).ok());
            let mut reader = Reader::new("t", &bytes);
            if let Ok((_, rest)) = postcard::take_from_bytes::<u64>(&bytes) {
                reader.varint().expect("read as postcard reads it");
                prop_assert_eq!(reader.at, bytes.len() - rest.len(), "the bytes read");
            }
        }
    }

    /// Overlong and oversized varints: the edge cases a random flip seldom makes.
    #[test]
    fn varints_read_exactly_as_postcard_reads_them() {
        let cases: [&[u8]; 11] = [
            &[0x80, 0x80, 0x80],
            &[0xff, 0xff, 0xff, 0xff, 0x8f, 0x00],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81],
            &[0x80, 0x00],
            &[0x80, 0x80, 0x80, 0x80, 0x00],
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
            &[0xff, 0xff, 0xff, 0xff, 0x0f],
            &[0xff, 0xff, 0xff, 0xff, 0x1f],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            &[
                0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
            ],
        ];
        for case in cases {
            assert_eq!(
                Reader::new("t", case).varint().ok(),
                postcard::from_bytes::<u64>(case).ok(),
                "u64 {case:?}"
            );
            assert_eq!(
                Reader::new("t", case).variant().ok(),
                postcard::from_bytes::<u32>(case).ok(),
                "u32 {case:?}"
            );
        }
    }

    #[test]
    fn a_sku_read_under_another_key_is_refused() {
        let mut record = Vec::new();
        let sku = decode_sku(&[1, b'a', 5, 5, 0, 0, 0, 0, 0, 1, 5, 0, 0, 0, 1, 0]).unwrap();
        encode_sku(&sku, &mut record);
        let other = SkuId::new("b").unwrap();
        let err = decode_sku_of(&record, &other).unwrap_err().to_string();
        assert!(
            err.contains("skus") && err.contains("not the record of \"b\""),
            "{err}"
        );
        let longer = SkuId::new("ab").unwrap();
        assert!(decode_sku_of(&record, &longer).is_err());
        assert_eq!(decode_sku_of(&record, &sku.sku).unwrap(), sku);
    }

    #[test]
    fn a_bad_record_names_its_tree_and_offset() {
        let err = decode_sku(&[3, b'a', b'b']).unwrap_err().to_string();
        assert!(
            err.contains("skus") && err.contains("string runs past"),
            "{err}"
        );
        let err = decode_order(&[1, b'a', 1, b'u', 1, 1, b's', 1, 9])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("orders") && err.contains("no order status 9"),
            "{err}"
        );
    }
}
