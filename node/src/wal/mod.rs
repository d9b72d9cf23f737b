//! A write-ahead log of framed, checksummed records in segment files filled front to back
//! (over zeros laid down beforehand, `spare`), written by one IO thread that shares each `fdatasync` among everything queued meanwhile. It knows
//! bytes and log indexes, not what the records mean (that is `log_store`'s business).

pub mod frame;
pub mod segments;
pub mod spare;
pub mod writer;

pub use segments::{recover, Place, RecoverError, SegmentInfo};
pub use writer::{lose_unsynced, start, Done, Options, Placed, Request, Writer, FDATASYNCS};
