//! Builders shared by the state machine's integration tests.
#![allow(dead_code)]

use state_machine::{
    Batch, Command, Item, Items, OrderId, Outcome, PaymentRef, Qty, RequestId, SaleWindow, SkuId,
    Store, UserId,
};

pub fn temp_db() -> sled::Db {
    sled::Config::new()
        .temporary(true)
        .open()
        .expect("temporary sled db")
}

/// Opens the sled db in `dir` again after this process closed it. sled lets go of its file
/// lock from a background thread after the last handle drops, so a reopen right away can
/// find it still held for a moment: retry that case only, for up to five seconds.
pub fn reopen(dir: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("cannot reopen {}: {e}", dir.display()),
        }
    }
}

pub fn temp_store() -> Store {
    Store::open(&temp_db()).expect("open store")
}

pub fn sku(s: &str) -> SkuId {
    SkuId::new(s).unwrap()
}

pub fn oid(s: &str) -> OrderId {
    OrderId::new(s).unwrap()
}

pub fn uid(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

pub fn items(list: &[(&str, u64)]) -> Items {
    Items::new(
        list.iter()
            .map(|(s, q)| Item {
                sku: sku(s),
                qty: Qty::new(*q).unwrap(),
            })
            .collect(),
    )
    .unwrap()
}

pub fn create(s: &str, stock: u64) -> Command {
    Command::CreateSku {
        sku: sku(s),
        stock,
        per_user_limit: None,
        sale_window: None,
        request_tag: 0,
    }
}

pub fn create_with(s: &str, stock: u64, limit: Option<u64>, window: Option<(u64, u64)>) -> Command {
    Command::CreateSku {
        sku: sku(s),
        stock,
        per_user_limit: limit,
        sale_window: window.map(|(a, b)| SaleWindow::new(a, b).unwrap()),
        request_tag: 0,
    }
}

pub fn order(id: &str, user: &str, list: &[(&str, u64)], ttl_ms: u64) -> Command {
    Command::PlaceOrder {
        order_id: oid(id),
        user_id: uid(user),
        items: items(list),
        ttl_ms,
        request_tag: 0,
    }
}

/// `command` (a create, a restock, an order or a payment) stamped with a caller's request tag.
pub fn tagged(mut command: Command, tag: u64) -> Command {
    match &mut command {
        Command::CreateSku { request_tag, .. }
        | Command::Restock { request_tag, .. }
        | Command::Pay { request_tag, .. }
        | Command::PlaceOrder { request_tag, .. } => *request_tag = tag,
        other => panic!("{other:?} carries no request tag"),
    }
    command
}

pub fn pay(id: &str, reference: Option<&str>) -> Command {
    Command::Pay {
        order_id: oid(id),
        payment_ref: reference.map(|r| PaymentRef::new(r).unwrap()),
        request_tag: 0,
    }
}

pub fn cancel(id: &str) -> Command {
    Command::Cancel { order_id: oid(id) }
}

pub fn refund(id: &str, restock: bool) -> Command {
    Command::Refund {
        order_id: oid(id),
        restock,
    }
}

pub fn restock(s: &str, request_id: &str, delta: i64) -> Command {
    Command::Restock {
        sku: sku(s),
        request_id: RequestId::new(request_id).unwrap(),
        delta,
        request_tag: 0,
    }
}

/// Applies one command as its own log entry `index` at clock `now_ms`.
pub fn run(store: &Store, index: u64, now_ms: u64, command: Command) -> Outcome {
    let batch = Batch {
        now_ms,
        commands: vec![command],
    };
    let mut results = store.apply(&[(index, &batch)], None).expect("apply");
    results.remove(0).remove(0)
}

/// The whole state as a snapshot: equal bytes, equal state.
pub fn export(store: &Store) -> Vec<u8> {
    let mut bytes = Vec::new();
    store.export_snapshot(&mut bytes).unwrap();
    bytes
}

/// A snapshot as export stores it (versions 5 and 6: the body in an LZ4 frame, then the
/// frame's length) with its body uncompressed: the 12-byte header, the records, 0xFF, the
/// count and the CRC.
pub fn uncompressed(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let version = u32::from_be_bytes(bytes[8..12].try_into().unwrap());
    assert!(
        matches!(version, 5 | 6),
        "not a framed stream: version {version}"
    );
    let frame_end = bytes.len() - 8;
    let frame_len = u64::from_be_bytes(bytes[frame_end..].try_into().unwrap());
    assert_eq!(frame_len, (frame_end - 12) as u64);
    let mut out = bytes[..12].to_vec();
    lz4_flex::frame::FrameDecoder::new(&bytes[12..frame_end])
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The inverse of `uncompressed`: the body compressed again, as export stores it.
pub fn compressed(stream: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut frame = lz4_flex::frame::FrameEncoder::new(stream[..12].to_vec());
    frame.write_all(&stream[12..]).unwrap();
    let mut out = frame.finish().unwrap();
    let frame_len = (out.len() - 12) as u64;
    out.extend_from_slice(&frame_len.to_be_bytes());
    out
}

/// The same snapshot in version 4, as earlier releases wrote it: the body uncompressed, and
/// the CRC over the new header.
pub fn as_version_4(bytes: &[u8]) -> Vec<u8> {
    relabelled(&uncompressed(bytes), 4)
}

/// The same snapshot labelled version 5, as the release before SKU records carried sales
/// buckets wrote it: the body framed the same way, the CRC over the new header.
pub fn as_version_5(bytes: &[u8]) -> Vec<u8> {
    compressed(&relabelled(&uncompressed(bytes), 5))
}

/// An uncompressed stream with `version` in its header and its CRC made again.
fn relabelled(stream: &[u8], version: u32) -> Vec<u8> {
    let mut stream = stream.to_vec();
    stream[8..12].copy_from_slice(&version.to_be_bytes());
    stream.truncate(stream.len() - 4);
    let crc = crc32fast::hash(&stream);
    stream.extend_from_slice(&crc.to_be_bytes());
    stream
}

/// The records of one tree in a snapshot: after the 8-byte magic and 4-byte version, each
/// record is `tag · key length (u32 BE) · key · value length (u32 BE) · value`, then 0xFF.
pub fn snapshot_records(bytes: &[u8], tag: u8) -> Vec<(Vec<u8>, Vec<u8>)> {
    all_snapshot_records(bytes)
        .into_iter()
        .filter(|(record_tag, _, _)| *record_tag == tag)
        .map(|(_, key, value)| (key, value))
        .collect()
}

/// Every record of a snapshot, with its tag, in stream order.
pub fn all_snapshot_records(bytes: &[u8]) -> Vec<(u8, Vec<u8>, Vec<u8>)> {
    let bytes = &uncompressed(bytes)[..];
    let mut at = 12;
    let mut records = Vec::new();
    let take = |at: &mut usize, n: usize| {
        let part = bytes[*at..*at + n].to_vec();
        *at += n;
        part
    };
    while bytes[at] != 0xFF {
        let record_tag = take(&mut at, 1)[0];
        let key_len = u32::from_be_bytes(take(&mut at, 4).try_into().unwrap()) as usize;
        let key = take(&mut at, key_len);
        let value_len = u32::from_be_bytes(take(&mut at, 4).try_into().unwrap()) as usize;
        let value = take(&mut at, value_len);
        records.push((record_tag, key, value));
    }
    records
}

/// A framed snapshot stream of `version` holding `records` (tag, key, value), which must
/// come in tree order and key order.
pub fn snapshot_of_records(version: u32, records: &[(u8, Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut stream = b"INVSNAP\0".to_vec();
    stream.extend_from_slice(&version.to_be_bytes());
    for (tag, key, value) in records {
        stream.push(*tag);
        stream.extend_from_slice(&(key.len() as u32).to_be_bytes());
        stream.extend_from_slice(key);
        stream.extend_from_slice(&(value.len() as u32).to_be_bytes());
        stream.extend_from_slice(value);
    }
    stream.push(0xFF);
    stream.extend_from_slice(&(records.len() as u64).to_be_bytes());
    let crc = crc32fast::hash(&stream);
    stream.extend_from_slice(&crc.to_be_bytes());
    compressed(&stream)
}

/// Rewrites sled tree `tree` as releases before chunks and runs left it: one sled record per
/// record, keys and values as the snapshot `exported` lists them for `tag`. Returns how many.
pub fn rewrite_as_one_record_each(db: &sled::Db, tree: &str, exported: &[u8], tag: u8) -> usize {
    let tree = db.open_tree(tree).unwrap();
    tree.clear().unwrap();
    for (key, value) in snapshot_records(exported, tag) {
        tree.insert(key, value).unwrap();
    }
    db.flush().unwrap();
    tree.len()
}

/// Checkpoints run back to back on a thread of their own until `stop`, as the node's
/// checkpointer does while apply goes on.
pub struct BackgroundCheckpoints {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl BackgroundCheckpoints {
    pub fn start(store: std::sync::Arc<Store>) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                store.checkpoint().unwrap();
            }
        });
        Self { stop, thread }
    }

    /// Stops after the checkpoint under way, if any.
    pub fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap();
    }
}
