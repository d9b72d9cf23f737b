//! The log's records as they sit in the write-ahead log: postcard inside `wal::frame`.

use crate::types::{Entry, LogId};
use crate::wal::frame;
use serde::{Deserialize, Serialize};

/// A record as written: borrowed, so an entry is encoded straight from openraft's value.
#[derive(Serialize)]
pub(super) enum RecordRef<'a> {
    Entry(&'a Entry),
    Truncate { from: u64 },
    Purge(&'a LogId),
    Committed(Option<&'a LogId>),
}

/// The same records as read back (the variants must stay in the same order).
#[derive(Deserialize)]
pub(super) enum Record {
    Entry(Entry),
    Truncate { from: u64 },
    Purge(LogId),
    Committed(Option<LogId>),
}

pub(super) fn encode_record(out: &mut Vec<u8>, record: &RecordRef<'_>) {
    frame::encode_with(out, |buf| {
        let taken = std::mem::take(buf);
        *buf = postcard::to_extend(record, taken).expect("postcard encoding into memory");
    });
}

/// Entry `expected` from the framed record at `at` of `buf`, or why that is not what is there.
pub(super) fn decode_entry(buf: &[u8], at: usize, expected: LogId) -> Result<Entry, String> {
    let frame::Read::Record { payload, .. } = frame::read_at(buf, at) else {
        return Err("the record fails its checksum".into());
    };
    match postcard::from_bytes(payload).map_err(|e| e.to_string())? {
        Record::Entry(entry) if entry.log_id == expected => Ok(entry),
        Record::Entry(entry) => Err(format!(
            "the record holds entry {}, not {expected}",
            entry.log_id
        )),
        _ => Err(format!("the record is not entry {expected}")),
    }
}
