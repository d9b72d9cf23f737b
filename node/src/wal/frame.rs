//! How one record sits in a segment file: a 12-byte header, then the payload.
//!
//! `len: u32 LE | payload_crc: u32 LE | header_crc: u32 LE | payload`
//!
//! Both checksums are CRC-32C. The header has its own checksum so that a damaged length is
//! caught before it is trusted, and so that a scan for "any valid record after this point"
//! can reject almost every offset after reading twelve bytes.

/// Bytes before each payload.
pub const HEADER_BYTES: usize = 12;
/// The largest payload a record may carry. Log entries are capped far below this; a length
/// above it can only be damage.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024 * 1024;

/// Appends one framed record to `out`.
pub fn encode_into(out: &mut Vec<u8>, payload: &[u8]) {
    encode_with(out, |out| out.extend_from_slice(payload));
}

/// Appends one framed record whose payload `write` appends to `out`: the payload is encoded
/// in place, never copied.
pub fn encode_with(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_BYTES]);
    write(out);
    let payload = &out[start + HEADER_BYTES..];
    assert!(
        payload.len() <= MAX_PAYLOAD_BYTES,
        "a WAL record of {} bytes is over the {MAX_PAYLOAD_BYTES}-byte limit",
        payload.len()
    );
    let mut head = [0u8; 8];
    head[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    head[4..].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    let header_crc = crc32c::crc32c(&head).to_le_bytes();
    out[start..start + 8].copy_from_slice(&head);
    out[start + 8..start + HEADER_BYTES].copy_from_slice(&header_crc);
}

/// What lies at one offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Read<'a> {
    /// A whole, checked record; the next one starts at `next`.
    Record { payload: &'a [u8], next: usize },
    /// The end of the data, exactly.
    End,
    /// Anything else: a short header or payload, a bad checksum, an impossible length.
    Bad,
}

/// Reads the record starting at `at`.
pub fn read_at(buf: &[u8], at: usize) -> Read<'_> {
    if at == buf.len() {
        return Read::End;
    }
    let Some(head) = buf.get(at..at + HEADER_BYTES) else {
        return Read::Bad;
    };
    let stored_header_crc = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    if crc32c::crc32c(&head[..8]) != stored_header_crc {
        return Read::Bad;
    }
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
    let payload_crc = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
    if len > MAX_PAYLOAD_BYTES {
        return Read::Bad;
    }
    let start = at + HEADER_BYTES;
    let Some(payload) = buf.get(start..start + len) else {
        return Read::Bad;
    };
    if crc32c::crc32c(payload) != payload_crc {
        return Read::Bad;
    }
    Read::Record {
        payload,
        next: start + len,
    }
}

/// Whether a whole, checked record starts at any offset after `after`. Used only when a bad
/// record was found, to tell a torn tail (nothing valid follows) from damage in the middle
/// of data that an `fdatasync` already covered.
pub fn any_record_after(buf: &[u8], after: usize) -> Option<usize> {
    (after + 1..buf.len().saturating_sub(HEADER_BYTES - 1))
        .find(|&at| matches!(read_at(buf, at), Read::Record { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode_into(&mut out, p);
        }
        out
    }

    #[test]
    fn records_read_back_in_order() {
        let buf = framed(&[b"one", b"", b"three"]);
        let mut at = 0;
        let mut seen = Vec::new();
        while let Read::Record { payload, next } = read_at(&buf, at) {
            seen.push(payload.to_vec());
            at = next;
        }
        assert_eq!(read_at(&buf, at), Read::End);
        assert_eq!(seen, vec![b"one".to_vec(), vec![], b"three".to_vec()]);
    }

    #[test]
    fn every_cut_and_every_bit_flip_of_a_record_is_caught() {
        let buf = framed(&[b"a record with some bytes in it"]);
        for cut in 0..buf.len() {
            let read = read_at(&buf[..cut], 0);
            let expected = if cut == 0 { Read::End } else { Read::Bad };
            assert_eq!(read, expected, "cut at {cut}");
        }
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut damaged = buf.clone();
                damaged[byte] ^= 1 << bit;
                assert_eq!(read_at(&damaged, 0), Read::Bad, "flip {byte}:{bit}");
            }
        }
    }

    #[test]
    fn a_scan_finds_a_record_behind_damage() {
        let mut buf = framed(&[b"first", b"second"]);
        buf[3] ^= 0xff;
        assert_eq!(read_at(&buf, 0), Read::Bad);
        assert_eq!(any_record_after(&buf, 0), Some(HEADER_BYTES + 5));
        assert_eq!(any_record_after(&buf, HEADER_BYTES + 5), None);
        assert_eq!(any_record_after(&[0u8; 100], 0), None);
    }
}
