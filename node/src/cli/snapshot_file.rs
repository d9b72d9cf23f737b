//! `invctl snapshot verify FILE`: reads a snapshot file the way a node installs one (magic,
//! version, every record, record count, CRC), without a node or a network, so a backup is
//! known to be usable before it is needed.

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize)]
pub struct Verified {
    pub file: PathBuf,
    pub version: u32,
    pub records: u64,
    /// The file's length.
    pub bytes: u64,
    /// The stream's length uncompressed (version 5 stores its body compressed).
    pub content_bytes: u64,
    /// The last log index the snapshot covers, from its applied marker.
    pub last_applied_index: Option<u64>,
    /// The applied marker as the node wrote it (last log id and membership).
    pub marker: Option<Value>,
}

pub fn verify(path: &Path) -> anyhow::Result<Verified> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let info = state_machine::verify_snapshot(file)
        .with_context(|| format!("{} is not a usable snapshot", path.display()))?;
    let marker: Option<Value> = match &info.marker {
        Some(bytes) => Some(
            serde_json::from_slice(bytes)
                .with_context(|| format!("{}: the applied marker is not JSON", path.display()))?,
        ),
        None => None,
    };
    Ok(Verified {
        file: path.to_path_buf(),
        version: info.version,
        records: info.records,
        bytes: info.bytes,
        content_bytes: info.content_bytes,
        last_applied_index: marker
            .as_ref()
            .and_then(|m| m.pointer("/last/index"))
            .and_then(Value::as_u64),
        marker,
    })
}

pub fn print(v: &Verified) {
    println!(
        "{}: valid (format version {}, {} records, {} bytes, {} uncompressed, last applied log index {})",
        v.file.display(),
        v.version,
        v.records,
        v.bytes,
        v.content_bytes,
        v.last_applied_index
            .map_or("none".to_string(), |i| i.to_string())
    );
}
