//! Compression of the sled values that hold many records (the runs of `runs`, the event
//! chunks of `event_chunks`). sled copies a value again each time it splits or rewrites the
//! page holding it, and writes pages over 128 KiB to files of their own: under batch load
//! its inserts and splits were a fifth of a follower's cycles (perf), nearly all of it
//! copying bytes. Orders and events repeat their SKU and user names and field layout, so LZ4
//! shrinks them several times for a few percent of that cost.
//!
//! A packed value is `0xFF · unpacked length (u32 BE) · LZ4 block`. The unpacked formats
//! begin with a big-endian length or id, whose first byte is 0 for any value these trees can
//! hold; a value that does begin with `0xFF` is packed whatever it saves, so the two never
//! mix. Values stored before packing existed read as they are.

use std::borrow::Cow;
use std::cell::RefCell;

const LZ4: u8 = 0xFF;

/// Smaller values are stored as they are: too little to gain.
const MIN_PACKED: usize = 128;

/// Largest unpacked length believed; a longer one is a corrupt header, not an allocation to
/// make. A run or chunk of 256 records of the largest orders is under 2 MiB.
const MAX_UNPACKED: usize = 64 << 20;

/// `raw` compressed when that saves space (or when it must be marked), else `raw` itself.
pub(crate) fn pack(raw: Vec<u8>) -> Vec<u8> {
    let must_mark = raw.first() == Some(&LZ4);
    if raw.len() < MIN_PACKED && !must_mark {
        return raw;
    }
    // Compressed into a buffer kept per thread: `lz4_flex::block::compress` zeroes a fresh
    // output of 1.1 times the input each call, then shrinks it with a copy, and this copied
    // it once more (callgrind: its zeroed allocations were a sixth of `pack`).
    thread_local! {
        static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    SCRATCH.with_borrow_mut(|scratch| {
        let needed = 5 + lz4_flex::block::get_maximum_output_size(raw.len());
        if scratch.len() < needed {
            scratch.resize(needed, 0);
        }
        let written = lz4_flex::block::compress_into(&raw, &mut scratch[5..needed])
            .expect("the output holds the largest compression of the input");
        if written + 5 >= raw.len() && !must_mark {
            return raw;
        }
        scratch[0] = LZ4;
        scratch[1..5].copy_from_slice(&(raw.len() as u32).to_be_bytes());
        scratch[..5 + written].to_vec()
    })
}

/// The unpacked bytes of a stored value; `Err` names what is wrong with a packed one.
pub(crate) fn unpack(stored: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    let Some((&LZ4, rest)) = stored.split_first() else {
        return Ok(Cow::Borrowed(stored));
    };
    let (len, block) = rest
        .split_at_checked(4)
        .ok_or_else(|| "packed value: torn header".to_string())?;
    let len = u32::from_be_bytes(len.try_into().expect("four bytes")) as usize;
    if len > MAX_UNPACKED {
        return Err(format!("packed value: unpacked length {len} too large"));
    }
    let raw = lz4_flex::block::decompress(block, len).map_err(|e| format!("packed value: {e}"))?;
    if raw.len() != len {
        return Err(format!(
            "packed value: {} bytes unpacked, header says {len}",
            raw.len()
        ));
    }
    Ok(Cow::Owned(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repetitive(len: usize) -> Vec<u8> {
        let mut raw = vec![0u8];
        while raw.len() < len {
            raw.extend_from_slice(b"order-0001 user-42 sku-phone ");
        }
        raw.truncate(len);
        raw
    }

    #[test]
    fn packed_values_unpack_to_what_was_packed() {
        for len in [0, 1, 127, 128, 4_096, 300_000] {
            let raw = repetitive(len);
            let stored = pack(raw.clone());
            if len >= 4_096 {
                assert!(stored.len() * 4 < raw.len(), "{len} bytes barely shrank");
            }
            assert_eq!(unpack(&stored).unwrap(), &raw[..], "length {len}");
        }
    }

    /// Values that would not shrink stay as they are and read back unchanged.
    #[test]
    fn incompressible_values_are_stored_as_they_are() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut raw = vec![0u8];
        raw.extend((0..10_000).map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        }));
        assert_eq!(pack(raw.clone()), raw);
        assert!(matches!(unpack(&raw).unwrap(), Cow::Borrowed(_)));
    }

    /// A value whose first byte is the mark is always packed, so it cannot be misread.
    #[test]
    fn a_value_starting_with_the_mark_is_always_packed() {
        for raw in [vec![LZ4], vec![LZ4, 1, 2, 3]] {
            let stored = pack(raw.clone());
            assert_ne!(stored, raw);
            assert_eq!(unpack(&stored).unwrap(), &raw[..]);
        }
    }

    #[test]
    fn damaged_packed_values_are_refused() {
        let stored = pack(repetitive(10_000));
        for cut in [1, 3, 5, stored.len() - 1] {
            assert!(unpack(&stored[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = stored.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(unpack(&huge).unwrap_err().contains("too large"));
        let mut short = stored.clone();
        short[1..5].copy_from_slice(&100u32.to_be_bytes());
        assert!(unpack(&short).is_err());
    }
}
