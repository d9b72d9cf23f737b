//! Snapshot export and install in a versioned, checksummed byte stream.
//!
//! Layout: `INVSNAP\0`, version (u32 BE), then the body: one record per key of every state
//! tree in tree order and key order — tag (u8, 1 + the tree's position), key length (u32
//! BE), key, value length (u32 BE), value — then `0xFF`, the record count (u64 BE) and a
//! CRC-32 of everything before it (header and body, uncompressed). Versions 5 and 6 store the body
//! as one standard LZ4 frame, with its content checksum, followed by the frame's length (u64
//! BE); version 4 stores it as it is. Install reads both. The length is there because the
//! decoder takes a frame cut at its end mark for a whole one.
//!
//! A snapshot of orders and events shrinks about four-fold, so a build writes, and a
//! transfer sends, that much less: writing the plain stream at 64 MiB/s cost a tenth of both
//! cores in the kernel's writeback and a fifth to a third of the cluster's throughput while
//! a build ran (README, "Compressed snapshots").
//!
//! Export writes only the primary trees: the holds and the deadline and user indexes follow
//! from the orders, and install has always rebuilt them rather than store them, so their
//! records (two of an order's four: order, event, deadline, user entry) were written,
//! checksummed and read for nothing. Install still accepts them, as in every version-4 stream
//! before. Export streams from a copy of the working set taken between two applies; install
//! streams into a fresh sled generation, switches to it only after every record decoded and
//! the checksum matched, and then loads it as the working set.

use super::codec::decode;
use super::dirty::Dirty;
use super::error::StoreError;
use super::event_chunks;
use super::keys::{self, CLOCK_KEY, EVENTS_HEAD_KEY, MARKER_KEY};
use super::memory;
use super::runs;
use super::trees::{self, tree_name, Trees, NAMES};
use super::{decode_sku, Store};
use crate::events::{Event, SalesCounts};
use crate::model::{PatchRecord, RestockRecord};
use std::io::{BufReader, BufWriter, Read, Write};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"INVSNAP\0";
// 2: orders, SKUs and restock records carry the tag of the request that made them.
// 3: a `patches` tree, the tagged patches applied to each SKU.
// 4: `events` and `sales` trees, and the events head in `applied`.
// 5: the body in an LZ4 frame.
// 6: a SKU's record may carry its newest sales bucket after it (`sku_sales`). The body is
//    framed as in 5, and a stream of 5 or 4 reads as one whose SKUs carry none; a build that
//    reads only those would drop the buckets, so it must refuse a stream of 6.
pub const VERSION: u32 = 6;
/// The last version before SKU records carried a sales bucket; install still reads it.
const UNBUCKETED_VERSION: u32 = 5;
/// The newest version whose body is stored uncompressed; install still reads it.
const PLAIN_VERSION: u32 = 4;
const END_TAG: u8 = 0xFF;
/// Record size bounds: far above any real key or value (an order of 64 items is a few KiB),
/// low enough that a corrupt length cannot make install allocate gigabytes.
const MAX_KEY_LEN: usize = 64 * 1024;
const MAX_VALUE_LEN: usize = 4 * 1024 * 1024;
/// Records per sled batch while installing: bounds install's memory.
const INSTALL_BATCH: usize = 8_192;

/// What an export wrote or an install read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The format version of the stream.
    pub version: u32,
    /// The applied marker the snapshot carries (last applied log id and membership).
    pub marker: Option<Vec<u8>>,
    pub records: u64,
    /// The stream's length as stored or sent.
    pub bytes: u64,
    /// Its length uncompressed: what the state weighs, and what a build or an install reads
    /// and writes record by record.
    pub content_bytes: u64,
}

struct Crc<T> {
    inner: T,
    hasher: crc32fast::Hasher,
    bytes: u64,
}

impl<T> Crc<T> {
    /// Goes on from `header`, which was read or written outside it (uncompressed).
    fn after_header(inner: T, header: &[u8]) -> Self {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(header);
        Self {
            inner,
            hasher,
            bytes: header.len() as u64,
        }
    }
}

/// Counts the bytes that pass, for the stored length of a compressed stream.
struct Counted<T> {
    inner: T,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A stream's body after its header, as its version stores it.
enum Body<R: Read> {
    Plain(Counted<BufReader<R>>),
    Lz4(lz4_flex::frame::FrameDecoder<Counted<BufReader<R>>>),
}

impl<R: Read> Body<R> {
    /// Checks that the stream ends here: nothing more in the body and, after a frame, its
    /// length and then nothing.
    fn finish(&mut self) -> Result<(), StoreError> {
        let trailing = || StoreError::Snapshot("trailing bytes after checksum".into());
        let mut probe = [0u8; 1];
        let more = |n: std::io::Result<usize>| n.map_err(|e| unreadable(e, "the end"));
        if more(self.read(&mut probe))? != 0 {
            return Err(trailing());
        }
        if let Body::Lz4(frame) = self {
            let raw = frame.get_mut();
            let frame_len = raw.bytes - HEADER_LEN as u64;
            let mut stored = [0u8; 8];
            read_exact(raw, &mut stored, "frame length")?;
            if u64::from_be_bytes(stored) != frame_len {
                return Err(StoreError::Snapshot(
                    "the compressed body is not the length recorded after it (cut short?)".into(),
                ));
            }
            if more(raw.read(&mut probe))? != 0 {
                return Err(trailing());
            }
        }
        Ok(())
    }

    /// Bytes of the stream read so far, header included, as stored.
    fn stored_bytes(&self) -> u64 {
        match self {
            Body::Plain(raw) => raw.bytes,
            Body::Lz4(frame) => frame.get_ref().bytes,
        }
    }
}

impl<R: Read> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Body::Plain(raw) => raw.read(buf),
            Body::Lz4(frame) => frame.read(buf),
        }
    }
}

const HEADER_LEN: usize = 12;

fn header() -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(MAGIC);
    header[8..].copy_from_slice(&VERSION.to_be_bytes());
    header
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Crc<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

impl Store {
    /// Writes a point-in-time snapshot of the state to `out`. Apply waits only while the
    /// working set is copied (records are shared, not duplicated), not while it is written.
    pub fn export_snapshot<W: Write>(&self, out: W) -> Result<SnapshotInfo, StoreError> {
        // The events moved out of memory are read from sled as of the same moment: with
        // checkpoints kept out, none of them can be deleted before its chunk is taken.
        let (view, moved_chunks, moved) = {
            let _checkpointer = self.lock_checkpointer();
            let view = {
                let _writer = self.lock_writer();
                self.mem().view()
            };
            let seq = view.event_seq();
            let moved = seq.first_id().unwrap_or(0)..seq.held_from();
            let chunks = event_chunks::chunks_for(&self.disk().events, moved.start, moved.end)?;
            (view, chunks, moved)
        };
        let header = header();
        let mut stored = Counted {
            inner: BufWriter::new(out),
            bytes: 0,
        };
        stored.write_all(&header)?;
        // The frame's own checksum of its content comes after its end mark, so a copy cut
        // anywhere in the frame's last bytes does not read as whole.
        let frame = lz4_flex::frame::FrameInfo::new().content_checksum(true);
        let mut w = Crc::after_header(
            lz4_flex::frame::FrameEncoder::with_frame_info(frame, stored),
            &header,
        );
        let mut records: u64 = 0;
        let mut write_record = |w: &mut Crc<_>, tag: u8, key: &[u8], value: &[u8]| {
            w.write_all(&[tag])?;
            w.write_all(&(key.len() as u32).to_be_bytes())?;
            w.write_all(key)?;
            w.write_all(&(value.len() as u32).to_be_bytes())?;
            w.write_all(value)?;
            records += 1;
            Ok::<(), std::io::Error>(())
        };
        for (position, tree) in view.trees.iter().enumerate() {
            if !memory::is_persisted(position) {
                continue;
            }
            let tag = position as u8 + 1;
            if position == memory::EVENTS {
                event_chunks::each_event(&moved_chunks, moved.start, moved.end, |id, event| {
                    Ok(write_record(&mut w, tag, &keys::event(id), event)?)
                })?;
            }
            for (key, value) in tree.iter() {
                write_record(&mut w, tag, &key, value)?;
            }
        }
        w.write_all(&[END_TAG])?;
        w.write_all(&records.to_be_bytes())?;
        let crc = w.hasher.clone().finalize();
        w.inner.write_all(&crc.to_be_bytes())?;
        let mut stored = w.inner.finish().map_err(std::io::Error::other)?;
        let frame_len = stored.bytes - header.len() as u64;
        stored.write_all(&frame_len.to_be_bytes())?;
        stored.flush()?;
        Ok(SnapshotInfo {
            version: VERSION,
            marker: view.applied().get(MARKER_KEY).map(|v| v.to_vec()),
            records,
            bytes: stored.bytes,
            content_bytes: w.bytes + 4,
        })
    }

    /// Replaces the whole state with the snapshot read from `input`, atomically: on any
    /// error the current state stays as it was.
    pub fn install_snapshot<R: Read>(&self, input: R) -> Result<SnapshotInfo, StoreError> {
        // No checkpoint may write into the generation being replaced.
        let _checkpointer = self.lock_checkpointer();
        let _writer = self.lock_writer();
        let old = self.disk();
        let generation = old.generation + 1;
        for name in NAMES {
            self.db.drop_tree(tree_name(generation, name))?;
        }
        let fresh = Trees::open(&self.db, generation)?;
        let info = match read_into(&fresh, input) {
            Ok(info) => info,
            Err(e) => {
                drop(fresh);
                for name in NAMES {
                    self.db.drop_tree(tree_name(generation, name))?;
                }
                return Err(e);
            }
        };
        // The new generation must be durable before the pointer that makes it current.
        self.flush()?;
        self.db
            .open_tree(trees::META_TREE)?
            .insert(trees::GENERATION_KEY, &generation.to_be_bytes())?;
        self.flush()?;
        let (runs, mem) = super::load_working_set(&fresh, false, self.events_held)?;
        {
            // Both under the working set's lock: a reader of moved events holds it, and must
            // find them in the generation of the working set it reads.
            let mut current = self.mem_mut();
            *self
                .disk
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(fresh);
            *current = mem;
            // Every event of the snapshot is in the new generation.
            self.events_on_disk.store(
                super::events_end(&current).saturating_sub(1),
                std::sync::atomic::Ordering::Release,
            );
            self.move_events_out(&mut current, usize::MAX)?;
        }
        *self.lock_dirty() = Dirty::default();
        *self.lock_runs() = runs;
        drop(old);
        trees::drop_other_generations(&self.db, generation)?;
        Ok(info)
    }
}

fn read_exact<R: Read>(r: &mut R, buf: &mut [u8], what: &str) -> Result<(), StoreError> {
    r.read_exact(buf).map_err(|e| unreadable(e, what))
}

fn unreadable(e: std::io::Error, what: &str) -> StoreError {
    let why = if e.kind() == std::io::ErrorKind::UnexpectedEof {
        "truncated"
    } else {
        // A compressed body that does not decode.
        "damaged"
    };
    StoreError::Snapshot(format!("{why} at {what}: {e}"))
}

fn read_u32<R: Read>(r: &mut R, what: &str) -> Result<u32, StoreError> {
    let mut b = [0u8; 4];
    read_exact(r, &mut b, what)?;
    Ok(u32::from_be_bytes(b))
}

fn read_into<R: Read>(trees: &Trees, input: R) -> Result<SnapshotInfo, StoreError> {
    let mut writer = InstallWriter {
        targets: trees.in_order(),
        batch: sled::Batch::default(),
        pending: 0,
        batch_tree: 0,
        chunk: None,
        in_runs: Vec::new(),
    };
    let info = read_records(input, |tree, key, value| writer.record(tree, key, value))?;
    writer.finish()?;
    Ok(info)
}

/// A chunk's number and the events gathered for it: id and bytes.
type GatheredChunk = (u64, Vec<(u64, Vec<u8>)>);

/// Writes an install's records in sled batches, a tree at a time, with events gathered into
/// their chunks (the snapshot lists them one by one, in id order).
struct InstallWriter<'t> {
    targets: [&'t sled::Tree; NAMES.len()],
    batch: sled::Batch,
    pending: usize,
    batch_tree: usize,
    /// The chunk being gathered: its number and its events so far.
    chunk: Option<GatheredChunk>,
    /// The records of the current tree when it is stored in runs, written once all are read.
    in_runs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl InstallWriter<'_> {
    fn record(&mut self, tree: usize, key: &[u8], value: Vec<u8>) -> Result<(), StoreError> {
        if tree != self.batch_tree {
            self.end_chunk();
            self.end_runs();
            self.apply()?;
            self.batch_tree = tree;
        }
        // Indexes are checked like every record, but only the primary trees are stored:
        // loading the state rebuilds the rest from the orders.
        if memory::IN_RUNS.contains(&tree) {
            self.in_runs.push((key.to_vec(), value));
        } else if tree == memory::EVENTS {
            let id = keys::event_id(key)
                .ok_or_else(|| StoreError::Snapshot("events: bad key".into()))?;
            let chunk = id / event_chunks::EVENTS_PER_CHUNK;
            if self.chunk.as_ref().is_some_and(|(at, _)| *at != chunk) {
                self.end_chunk();
            }
            self.chunk
                .get_or_insert_with(|| (chunk, Vec::new()))
                .1
                .push((id, value));
        } else if memory::is_persisted(tree) {
            self.batch.insert(key, value);
            self.pending += 1;
        }
        if self.pending >= INSTALL_BATCH {
            self.apply()?;
        }
        Ok(())
    }

    fn end_runs(&mut self) {
        for (key, bytes) in runs::install_runs(&std::mem::take(&mut self.in_runs)) {
            self.batch.insert(&key[..], bytes);
            self.pending += 1;
        }
    }

    fn end_chunk(&mut self) {
        if let Some((chunk, events)) = self.chunk.take() {
            let bytes =
                event_chunks::encode_chunk(events.iter().map(|(id, e)| (*id, e.as_slice())));
            self.batch
                .insert(&event_chunks::chunk_key(chunk)[..], bytes);
            self.pending += 1;
        }
    }

    fn apply(&mut self) -> Result<(), StoreError> {
        if self.pending > 0 {
            self.targets[self.batch_tree].apply_batch(std::mem::take(&mut self.batch))?;
            self.pending = 0;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(), StoreError> {
        self.end_chunk();
        self.end_runs();
        self.apply()
    }
}

/// Reads a whole snapshot stream as install would, without a store: magic, version, every
/// record decoded as its tree's type and in key order, the record count and the CRC. For
/// checking a backup before it is needed.
pub fn verify_snapshot<R: Read>(input: R) -> Result<SnapshotInfo, StoreError> {
    read_records(input, |_, _, _| Ok(()))
}

/// Checks the stream and hands each record, with its tree's position in `NAMES`, to
/// `on_record`. Whatever `on_record` did must be discarded when this returns an error: the
/// count and the checksum are only known at the end.
fn read_records<R: Read>(
    input: R,
    mut on_record: impl FnMut(usize, &[u8], Vec<u8>) -> Result<(), StoreError>,
) -> Result<SnapshotInfo, StoreError> {
    let mut raw = Counted {
        inner: BufReader::new(input),
        bytes: 0,
    };
    let mut header = [0u8; HEADER_LEN];
    read_exact(&mut raw, &mut header[..8], "header")?;
    if header[..8] != MAGIC[..] {
        return Err(StoreError::Snapshot("not an inventory snapshot".into()));
    }
    read_exact(&mut raw, &mut header[8..], "version")?;
    let version = u32::from_be_bytes(header[8..].try_into().expect("four bytes"));
    let body = match version {
        VERSION | UNBUCKETED_VERSION => Body::Lz4(lz4_flex::frame::FrameDecoder::new(raw)),
        PLAIN_VERSION => Body::Plain(raw),
        _ => {
            return Err(StoreError::Snapshot(format!(
                "version {version} is not supported (this build reads {PLAIN_VERSION} to {VERSION})"
            )))
        }
    };
    let mut r = Crc::after_header(body, &header);
    let mut current_tag = 0u8;
    let mut last_key: Option<Vec<u8>> = None;
    let mut records: u64 = 0;
    let mut marker = None;
    loop {
        let mut tag = [0u8; 1];
        read_exact(&mut r, &mut tag, "record tag")?;
        let tag = tag[0];
        if tag == END_TAG {
            break;
        }
        if tag == 0 || tag as usize > NAMES.len() || tag < current_tag {
            return Err(StoreError::Snapshot(format!("unexpected record tag {tag}")));
        }
        if tag != current_tag {
            current_tag = tag;
            last_key = None;
        }
        let key_len = read_u32(&mut r, "key length")? as usize;
        if key_len > MAX_KEY_LEN {
            return Err(StoreError::Snapshot(format!("key of {key_len} bytes")));
        }
        let mut key = vec![0u8; key_len];
        read_exact(&mut r, &mut key, "key")?;
        let value_len = read_u32(&mut r, "value length")? as usize;
        if value_len > MAX_VALUE_LEN {
            return Err(StoreError::Snapshot(format!("value of {value_len} bytes")));
        }
        let mut value = vec![0u8; value_len];
        read_exact(&mut r, &mut value, "value")?;
        if last_key.as_ref().is_some_and(|last| *last >= key) {
            return Err(StoreError::Snapshot("keys out of order".into()));
        }
        let tree = tag as usize - 1;
        check_record(NAMES[tree], &key, &value)?;
        if NAMES[tree] == "applied" && key == MARKER_KEY {
            marker = Some(value.clone());
        }
        on_record(tree, &key, value)?;
        last_key = Some(key);
        records += 1;
    }
    let mut count = [0u8; 8];
    read_exact(&mut r, &mut count, "record count")?;
    if u64::from_be_bytes(count) != records {
        return Err(StoreError::Snapshot("record count does not match".into()));
    }
    let expected = r.hasher.clone().finalize();
    let mut crc = [0u8; 4];
    read_exact(&mut r.inner, &mut crc, "checksum")?;
    if u32::from_be_bytes(crc) != expected {
        return Err(StoreError::Snapshot("checksum mismatch".into()));
    }
    r.inner.finish()?;
    Ok(SnapshotInfo {
        version,
        marker,
        records,
        bytes: r.inner.stored_bytes(),
        // The checksum was read past the hasher; count it, as export does.
        content_bytes: r.bytes + 4,
    })
}

/// Decodes every record as its tree's type, so a snapshot that would not read back is
/// refused before it replaces anything.
fn check_record(tree: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
    let ok = match tree {
        "skus" => decode_sku(value)?.sku.as_str().as_bytes() == key,
        "orders" => {
            super::wire::decode_order(value)?
                .order_id
                .as_str()
                .as_bytes()
                == key
        }
        "holds" => decode::<u64>(tree, value)? > 0,
        "restocks" => decode::<RestockRecord>(tree, value)?.delta != 0,
        "deadlines" => value.is_empty() && key.len() > 8,
        "user_orders" => value.is_empty() && key.len() > 9,
        "applied" => {
            key == MARKER_KEY || ((key == CLOCK_KEY || key == EVENTS_HEAD_KEY) && value.len() == 8)
        }
        "events" => Some(decode::<Event>(tree, value)?.id) == keys::event_id(key),
        "sales" => {
            decode::<SalesCounts>(tree, value)?;
            keys::sales_start(key).is_some() && key.len() > 9
        }
        "patches" => key.starts_with(
            decode::<PatchRecord>(tree, value)?
                .sku_after
                .sku
                .as_str()
                .as_bytes(),
        ),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Snapshot(format!("bad record in {tree}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, Command, Item, Items, OrderId, Qty, SkuId, UserId};

    #[test]
    fn export_writes_the_primary_trees_only() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let store = Store::open(&db).unwrap();
        let sku = |name: &str| SkuId::new(name).unwrap();
        let mut commands = vec![Command::CreateSku {
            sku: sku("hot"),
            stock: 100,
            per_user_limit: Some(5),
            sale_window: None,
            request_tag: 1,
        }];
        commands.extend((0..10).map(|i| {
            Command::PlaceOrder {
                order_id: OrderId::new(format!("o{i}")).unwrap(),
                user_id: UserId::new(format!("u{}", i % 3)).unwrap(),
                items: Items::new(vec![Item {
                    sku: sku("hot"),
                    qty: Qty::new(1).unwrap(),
                }])
                .unwrap(),
                ttl_ms: 60_000,
                request_tag: i + 2,
            }
        }));
        // The later orders a minute on: the first minute's sales bucket then leaves the
        // SKU's record for the sales tree.
        let later = Batch {
            now_ms: 60_001,
            commands: commands.split_off(6),
        };
        let batch = Batch {
            now_ms: 1,
            commands,
        };
        store
            .apply(&[(1, &batch), (2, &later)], Some(b"m"))
            .unwrap();
        // The indexes an export leaves out are there to leave out.
        let mem = store.mem();
        assert!(mem.trees[memory::HOLDS].iter().next().is_some(), "holds");
        assert!(mem.indexes.reserved() > 0, "deadlines");
        assert!(mem.indexes.user_orders.len() > 0, "user orders");
        drop(mem);

        let mut bytes = Vec::new();
        store.export_snapshot(&mut bytes).unwrap();
        let mut trees = Vec::new();
        read_records(&bytes[..], |tree, _, _| {
            if trees.last() != Some(&NAMES[tree]) {
                trees.push(NAMES[tree]);
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(trees, ["skus", "orders", "applied", "events", "sales"]);
    }
}
