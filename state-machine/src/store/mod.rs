//! The store: the whole state in memory in front of sled. Apply works on the in-memory
//! working set only; `checkpoint` copies everything changed since the last one, with the
//! applied marker, into sled in one atomic write and makes it durable. Also recovery on
//! open, snapshots, and the read helpers the node answers linearisable reads with (after
//! its own read-index check).
//!
//! One writer at a time (the apply path) holds `writer`; readers share the working set with
//! it. The store shares the node's `sled::Db` (sled wants one per process) and touches only
//! trees whose names start with `sm.`.

mod codec;
mod dirty;
pub(crate) mod error;
mod event_chunks;
mod event_seq;
mod feed;
mod keys;
mod memory;
mod numbered;
mod order_indexes;
mod packed;
mod refusal_reads;
mod run_counts;
mod runs;
mod sku_sales;
mod sled_files;
mod snapshot;
mod tree_key;
mod trees;
pub(crate) mod tx;
mod wire;

use crate::command::{Batch, Outcome, MAX_BATCH_COMMANDS};
use crate::engine;
pub use crate::engine::MAX_EXPIRE_PER_COMMAND;
use crate::events::Retention;
use crate::model::{Order, Sku};
use crate::validation::{OrderId, SkuId, UserId};
use codec::decode;
use dirty::Dirty;
pub use error::StoreError;
use keys::{CLOCK_KEY, MARKER_KEY};
use memory::{Changes, MemTrees};
use runs::{RunPlans, RunTrees};
use sled_files::SledFiles;
pub use snapshot::{verify_snapshot, SnapshotInfo, VERSION as SNAPSHOT_VERSION};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use trees::Trees;
use tx::Tx;

/// Largest page a list read returns.
pub const MAX_PAGE: usize = 1_000;

pub struct Store {
    db: sled::Db,
    /// sled's files, synced after each flush (see `sled_files`). `None` in tests that need no
    /// durability.
    files: Option<SledFiles>,
    /// sled's trees of the current generation: the last checkpoint.
    disk: RwLock<Arc<Trees>>,
    /// The whole state as applied so far.
    mem: RwLock<MemTrees>,
    /// What changed in `mem` since the last checkpoint.
    dirty: Mutex<Dirty>,
    /// The copies each run holds, for the trees stored in runs; the checkpointer's, under
    /// its lock.
    runs: Mutex<RunTrees>,
    writer: Mutex<()>,
    checkpointer: Mutex<()>,
    /// How long events are kept; part of apply, so equal on every replica.
    retention: Retention,
    /// How many of the newest events stay held in memory; older ones move out once sled has
    /// them (`event_seq`). Local to each node: what is held is not state.
    events_held: usize,
    /// Every event up to this id is in sled's current generation (written by a checkpoint,
    /// an install or an earlier run), so it may leave memory.
    events_on_disk: AtomicU64,
}

/// Events the digest reads at a time: its memory stays small whatever the feed holds.
const DIGEST_EVENTS_PER_READ: u64 = 65_536;

/// Newest events each node holds in memory by default: the feed's readers follow the head,
/// and a page of them is then never a read from sled. About 15 MB of a node's memory.
pub const DEFAULT_EVENTS_HELD: usize = 100_000;

/// Most events one apply moves out of memory: a backlog (after a restart or a long
/// checkpoint) drains over several applies instead of stalling one.
const MAX_MOVE_PER_APPLY: usize = 16_384;

/// Most events one apply prunes: a backlog (after a retention change) drains over several
/// applies instead of stalling one.
const MAX_PRUNE_PER_APPLY: usize = 10_000;

/// What a checkpoint wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// Records written or deleted.
    pub records: usize,
}

impl Store {
    /// Opens (or creates) the state in `db`, recovering exactly what the last committed
    /// apply or install wrote.
    pub fn open(db: &sled::Db) -> Result<Self, StoreError> {
        let meta = db.open_tree(trees::META_TREE)?;
        let generation = match meta.get(trees::GENERATION_KEY)? {
            Some(raw) => u64::from_be_bytes(
                raw.as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("sm.meta: generation".into()))?,
            ),
            None => 0,
        };
        trees::drop_other_generations(db, generation)?;
        let trees = Trees::open(db, generation)?;
        let (runs, mem) = load_working_set(&trees, true, DEFAULT_EVENTS_HELD)?;
        let on_disk = events_end(&mem).saturating_sub(1);
        let store = Self {
            db: db.clone(),
            files: None,
            disk: RwLock::new(Arc::new(trees)),
            mem: RwLock::new(mem),
            dirty: Mutex::new(Dirty::default()),
            runs: Mutex::new(runs),
            writer: Mutex::new(()),
            checkpointer: Mutex::new(()),
            retention: Retention::default(),
            events_held: DEFAULT_EVENTS_HELD,
            events_on_disk: AtomicU64::new(on_disk),
        };
        store.move_events_out(&mut store.mem_mut(), usize::MAX)?;
        Ok(store)
    }

    /// Holds only the newest `events` events in memory (at least one) instead of
    /// `DEFAULT_EVENTS_HELD`; the others are read from sled.
    pub fn with_events_held(mut self, events: usize) -> Result<Self, StoreError> {
        self.events_held = events.max(1);
        self.move_events_out(&mut self.mem_mut(), usize::MAX)?;
        Ok(self)
    }

    /// Events held in memory, and those only on disk.
    pub fn events_in_memory(&self) -> (usize, usize) {
        let mem = self.mem();
        let seq = mem.event_seq();
        (seq.held().len(), seq.moved_len())
    }

    /// Moves out of memory, at most `max`, the events older than the newest `events_held`
    /// that sled has.
    fn move_events_out(&self, mem: &mut MemTrees, max: usize) -> Result<(), StoreError> {
        let Some(newest_movable) = events_end(mem).checked_sub(self.events_held as u64 + 1) else {
            return Ok(());
        };
        let up_to = newest_movable.min(self.events_on_disk.load(Ordering::Acquire));
        mem.move_events_out(up_to, max)?;
        Ok(())
    }

    /// Keeps events for `retention` instead of the API's default. Every replica of a cluster
    /// must use the same one: pruning is part of apply. For tests of the retention itself.
    pub fn with_event_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    fn disk(&self) -> Arc<Trees> {
        self.disk
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn mem(&self) -> RwLockReadGuard<'_, MemTrees> {
        self.mem
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn mem_mut(&self) -> RwLockWriteGuard<'_, MemTrees> {
        self.mem
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_dirty(&self) -> MutexGuard<'_, Dirty> {
        self.dirty
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_runs(&self) -> MutexGuard<'_, RunTrees> {
        self.runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_checkpointer(&self) -> MutexGuard<'_, ()> {
        self.checkpointer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies log entries `(index, batch)` in order and records `marker` (the caller's
    /// encoding of the last applied log id and membership) in the same atomic write.
    /// Returns one outcome per command of each batch.
    pub fn apply(
        &self,
        entries: &[(u64, &Batch)],
        marker: Option<&[u8]>,
    ) -> Result<Vec<Vec<Outcome>>, StoreError> {
        if let Some((_, too_big)) = entries
            .iter()
            .find(|(_, b)| b.commands.len() > MAX_BATCH_COMMANDS)
        {
            return Err(StoreError::BatchTooLarge(too_big.commands.len()));
        }
        let _writer = self.lock_writer();
        let mut results = Vec::with_capacity(entries.len());
        let (changes, index_writes) = {
            let mem = self.mem();
            let commands = entries.iter().map(|(_, b)| b.commands.len()).sum();
            let mut tx = Tx::new(&mem, read_clock(&mem)?, commands);
            for (index, batch) in entries {
                tx.clock = tx.clock.max(batch.now_ms);
                let mut outcomes = Vec::with_capacity(batch.commands.len());
                for command in &batch.commands {
                    outcomes.push(engine::apply_command(&mut tx, *index, command)?);
                }
                results.push(outcomes);
            }
            tx.prune_events(self.retention, MAX_PRUNE_PER_APPLY)?;
            tx.commit(marker)?
        };
        let persisted = {
            let mut mem = self.mem_mut();
            let persisted = mem.apply(changes, index_writes)?;
            self.move_events_out(&mut mem, MAX_MOVE_PER_APPLY)?;
            persisted
        };
        self.lock_dirty().push(persisted);
        Ok(results)
    }

    /// Records a new marker with no commands (Raft's blank and membership entries).
    pub fn set_marker(&self, marker: &[u8]) -> Result<(), StoreError> {
        self.apply(&[], Some(marker)).map(|_| ())
    }

    /// Makes everything applied so far durable: writes every record changed since the last
    /// checkpoint, with the applied marker, to sled in one atomic transaction, then flushes
    /// and syncs it. Apply goes on meanwhile; it waits only for the swap of the dirty set.
    pub fn checkpoint(&self) -> Result<CheckpointInfo, StoreError> {
        let _checkpointer = self.lock_checkpointer();
        let cut = self.cut();
        self.write_cut(cut)
    }

    /// Takes what a checkpoint writes: the changes since the last one, and the trees stored in
    /// runs as they stood at that moment, which its clean-up compares stored copies with.
    /// Both under the writer's lock: an apply changes the working set before it hands its
    /// changes over, so between those two steps the trees would be ahead of the changes.
    fn cut(&self) -> Cut {
        let _writer = self.lock_writer();
        let pending = self.lock_dirty().take();
        let in_runs = self.mem().in_runs();
        Cut { pending, in_runs }
    }

    /// Writes a cut (`checkpoint`); the caller holds the checkpointer's lock.
    fn write_cut(&self, cut: Cut) -> Result<CheckpointInfo, StoreError> {
        let Cut { pending, in_runs } = cut;
        let changes = dirty::fold(pending);
        if memory::is_empty(&changes) {
            return Ok(CheckpointInfo { records: 0 });
        }
        let records = changes
            .iter()
            .enumerate()
            .filter(|(position, _)| memory::is_persisted(*position))
            .map(|(_, c)| c.len())
            .sum();
        let disk = self.disk();
        let mut runs = self.lock_runs();
        let planned = runs.plan(&disk, &changes, &in_runs);
        // Apply copies every node it changes while the trees at the cut live.
        drop(in_runs);
        let written = planned.and_then(|plans| {
            write_changes(&disk, &changes, &plans)?;
            // Committed to sled: the indexes must follow even if the flush fails.
            runs.committed(&changes, plans);
            self.flush()
        });
        drop(runs);
        if let Err(e) = written {
            // Put the changes back under anything applied since, so a later checkpoint
            // writes them.
            self.lock_dirty().put_back(changes);
            return Err(e);
        }
        // Events come in id order and every earlier one was written before: all up to the
        // newest written are in sled now.
        if let Some(newest) = changes[memory::EVENTS]
            .iter()
            .rev()
            .find_map(|(key, value)| value.as_ref().and(keys::event_id(key)))
        {
            self.events_on_disk.fetch_max(newest, Ordering::AcqRel);
        }
        self.lock_dirty().recycle(changes);
        Ok(CheckpointInfo { records })
    }

    /// Records in the working set, all trees together.
    pub fn records_in_memory(&self) -> usize {
        self.mem().records()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        // sled's flush ends in `sync_file_range` on Linux (no barrier against power loss) and
        // leaves its blob files unsynced: see `sled_files`.
        if let Some(files) = &self.files {
            files.sync()?;
        }
        Ok(())
    }

    /// Makes every checkpoint durable: after sled's own flush, sync its blob files and its
    /// data file (in the directory sled was opened on), and now what sled left unsynced.
    pub fn sync_on_flush(mut self, sled_dir: &std::path::Path) -> Result<Self, StoreError> {
        self.files = Some(SledFiles::open(sled_dir)?);
        Ok(self)
    }

    /// A digest of the whole state and the marker it belongs to, from one point in time.
    /// Replicas that applied the same log prefix have equal digests; the chaos suite compares
    /// them, so a divergence the counters happen not to show is still caught. It walks every
    /// record: a test and operations tool, not for a hot path.
    pub fn digest(&self) -> Result<(Option<Vec<u8>>, u64), StoreError> {
        let mem = self.mem();
        let mut hash = Fnv64::default();
        let mut record = |position: usize, key: &[u8], value: &[u8]| {
            hash.write(&(position as u64).to_be_bytes());
            hash.write(&(key.len() as u64).to_be_bytes());
            hash.write(key);
            hash.write(&(value.len() as u64).to_be_bytes());
            hash.write(value);
        };
        for (position, tree) in mem.trees.iter().enumerate() {
            if position == memory::EVENTS {
                // Held or moved to sled alike: what a node holds in memory is not state.
                let end = events_end(&mem);
                let mut from = mem.event_seq().first_id().unwrap_or(end);
                while from < end {
                    let to = end.min(from.saturating_add(DIGEST_EVENTS_PER_READ));
                    for (id, value) in self.event_values(&mem, from, to)? {
                        record(position, &keys::event(id), &value);
                    }
                    from = to;
                }
                continue;
            }
            for (key, value) in tree.iter() {
                // The marker is the caller's own encoding of where the state stands; it is
                // returned beside the digest rather than folded into it.
                if position == memory::APPLIED && *key == *MARKER_KEY {
                    continue;
                }
                record(position, &key, value);
            }
        }
        let marker = mem.applied().get(MARKER_KEY).map(|v| v.to_vec());
        Ok((marker, hash.0))
    }

    /// The marker written with the last apply or install.
    pub fn marker(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.mem().applied().get(MARKER_KEY).map(|v| v.to_vec()))
    }

    /// The marker the last checkpoint (or install) wrote to sled: where a restart resumes.
    pub fn checkpointed_marker(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.disk().applied.get(MARKER_KEY)?.map(|v| v.to_vec()))
    }

    /// The state machine's clock: the largest `now_ms` applied so far.
    pub fn clock(&self) -> Result<u64, StoreError> {
        read_clock(&self.mem())
    }

    /// The earliest deadline of a reserved order, if any: the leader's ticker proposes
    /// `Expire` once its clock passes it.
    pub fn earliest_deadline(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.mem().indexes.earliest_deadline())
    }

    /// Units `user` holds of `sku` in reserved or paid orders. Apply counts them only for a
    /// SKU with a per-user limit (`Tx::recount_holds`); for any other they are summed here
    /// from the user's orders.
    pub fn held(&self, sku: &SkuId, user: &UserId) -> Result<u64, StoreError> {
        let mem = self.mem();
        let limited = match mem.skus().get(sku.as_str().as_bytes()) {
            Some(bytes) => decode_sku(bytes)?.per_user_limit.is_some(),
            None => false,
        };
        if limited {
            return match mem.holds().get(&keys::hold(sku, user)) {
                Some(bytes) => decode("holds", bytes),
                None => Ok(0),
            };
        }
        let mut held: u64 = 0;
        for order in users_orders(&mem, user) {
            let order = order?;
            for item in order.held_items().iter().filter(|i| i.sku == *sku) {
                held = held.saturating_add(item.qty.get());
            }
        }
        Ok(held)
    }

    pub fn get_sku(&self, sku: &SkuId) -> Result<Option<Sku>, StoreError> {
        match self.mem().skus().get(sku.as_str().as_bytes()) {
            Some(bytes) => Ok(Some(decode_sku(bytes)?)),
            None => Ok(None),
        }
    }

    pub fn get_order(&self, order_id: &OrderId) -> Result<Option<Order>, StoreError> {
        let mem = self.mem();
        match mem.orders().get(order_id.as_str().as_bytes()) {
            Some(bytes) => Ok(Some(wire::decode_order(bytes)?.as_of(read_clock(&mem)?))),
            None => Ok(None),
        }
    }

    /// SKUs in byte order after `after` (exclusive), at most `limit` (capped at
    /// `MAX_PAGE`); `next` is the page's last SKU when more follow.
    pub fn list_skus(
        &self,
        after: Option<&SkuId>,
        limit: usize,
    ) -> Result<(Vec<Sku>, Option<SkuId>), StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        // One read of the working set: the page is one point in time.
        let mem = self.mem();
        let start = match after {
            Some(after) => std::ops::Bound::Excluded(after.as_str().as_bytes()),
            None => std::ops::Bound::Unbounded,
        };
        let mut page = Vec::with_capacity(limit.min(64));
        let mut more = false;
        for (_, bytes) in mem.skus().range((start, std::ops::Bound::Unbounded)) {
            if page.len() == limit {
                more = true;
                break;
            }
            page.push(decode_sku(bytes)?);
        }
        let next = if more {
            page.last().map(|s: &Sku| s.sku.clone())
        } else {
            None
        };
        Ok((page, next))
    }

    /// A user's orders, newest `created_ms` first, ties by order id ascending.
    pub fn list_user_orders(&self, user: &UserId, limit: usize) -> Result<Vec<Order>, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let mem = self.mem();
        let clock = read_clock(&mem)?;
        users_orders(&mem, user)
            .take(limit)
            .map(|order| Ok(order?.as_of(clock)))
            .collect()
    }
}

/// `user`'s orders, newest `created_ms` first, ties by id ascending. The index lists the
/// ids under the user's hash, which another user's may share: only the user's own are kept.
fn users_orders<'a>(
    mem: &'a MemTrees,
    user: &'a UserId,
) -> impl Iterator<Item = Result<Order, StoreError>> + 'a {
    mem.indexes
        .user_orders
        .newest_first(user.as_str())
        .map(|id| {
            let bytes = mem
                .orders()
                .get(id.as_bytes())
                .ok_or_else(|| StoreError::Corrupt(format!("user_orders: {id} missing")))?;
            wire::decode_order(bytes)
        })
        .filter(|order| !matches!(order, Ok(order) if order.user_id != *user))
}

/// The id the next event will take.
fn events_end(mem: &MemTrees) -> u64 {
    let seq = mem.event_seq();
    seq.held_from() + seq.held().len() as u64
}

/// What a checkpoint writes, taken at one moment (`Store::cut`).
struct Cut {
    pending: dirty::Pending,
    in_runs: memory::InRuns,
}

/// Reads a generation's trees into memory, with the counts of those stored in runs; first
/// folds the layouts of earlier releases into the current ones if `migrate` (only a store
/// written by an earlier release can hold them: an install writes the current layout).
fn load_working_set(
    trees: &Trees,
    migrate: bool,
    events_held: usize,
) -> Result<(RunTrees, MemTrees), StoreError> {
    if migrate {
        event_chunks::migrate_legacy(&trees.events)?;
    }
    let (runs, preloaded) = RunTrees::open(trees, migrate)?;
    let events = event_chunks::load(&trees.events, events_held)?;
    Ok((runs, MemTrees::load(trees, preloaded, events)?))
}

/// Writes a checkpoint's changes to sled's trees in one transaction. The trees come from
/// `in_order`, the same list as `NAMES` and the changes, so none can be left out.
fn write_changes(disk: &Trees, changes: &Changes, plans: &RunPlans) -> Result<(), StoreError> {
    use sled::transaction::{ConflictableTransactionError, TransactionError};
    use sled::Transactional;
    let trees = disk.in_order();
    let result: Result<(), TransactionError<()>> = trees[..].transaction(|views| {
        for (position, (tree, writes)) in views.iter().zip(changes).enumerate() {
            if !memory::is_persisted(position) {
                continue;
            }
            if position == memory::EVENTS {
                event_chunks::write_changes(tree, writes)?;
                continue;
            }
            if let Some((_, runs)) = plans.iter().find(|(p, _)| *p == position) {
                for key in &runs.removes {
                    tree.remove(&key[..])?;
                }
                for (key, bytes) in &runs.inserts {
                    tree.insert(&key[..], bytes.as_slice())?;
                }
                continue;
            }
            for (key, value) in writes {
                match value {
                    Some(v) => tree.insert(key.as_slice(), v.as_ref())?,
                    None => tree.remove(key.as_slice())?,
                };
            }
        }
        Ok::<(), ConflictableTransactionError<()>>(())
    });
    match result {
        Ok(()) => Ok(()),
        Err(TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
        Err(TransactionError::Abort(())) => Err(StoreError::Corrupt("transaction aborted".into())),
    }
}

fn read_clock(mem: &MemTrees) -> Result<u64, StoreError> {
    match mem.applied().get(CLOCK_KEY) {
        Some(raw) => {
            Ok(u64::from_be_bytes(raw.as_ref().try_into().map_err(
                |_| StoreError::Corrupt("applied: clock".into()),
            )?))
        }
        None => Ok(0),
    }
}

/// Decodes a SKU and checks its balance where it is read, pairing the check on write.
fn decode_sku(bytes: &[u8]) -> Result<Sku, StoreError> {
    let sku = sku_sales::decode_sku(bytes)?;
    if !sku.is_balanced() {
        return Err(StoreError::Invariant(format!(
            "sku {} read unbalanced",
            sku.sku
        )));
    }
    Ok(sku)
}

/// FNV-1a, 64 bits: stable across processes and builds, which std's hashers do not promise.
struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, Command, Item, Items, Qty};

    /// SKU `A`, which every order of these tests buys.
    fn create_a(stock: u64) -> Command {
        Command::CreateSku {
            sku: SkuId::new("A").unwrap(),
            stock,
            per_user_limit: None,
            sale_window: None,
            request_tag: 1,
        }
    }

    fn place(order: &str, user: &str, units: u64) -> Command {
        Command::PlaceOrder {
            order_id: OrderId::new(order).unwrap(),
            user_id: UserId::new(user).unwrap(),
            items: Items::new(vec![Item {
                sku: SkuId::new("A").unwrap(),
                qty: Qty::new(units).unwrap(),
            }])
            .unwrap(),
            ttl_ms: 60_000,
            request_tag: 0,
        }
    }

    /// The user index may list another user's order under a user (their ids hashing alike):
    /// the user's list and holdings read only the user's own.
    #[test]
    fn a_users_reads_skip_orders_of_a_user_hashing_alike() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let store = Store::open(&db).unwrap();
        let commands = vec![
            create_a(100),
            place("mine", "u1", 2),
            place("theirs", "u2", 3),
        ];
        store
            .apply(
                &[(
                    1,
                    &Batch {
                        now_ms: 10,
                        commands,
                    },
                )],
                None,
            )
            .unwrap();
        // What a collision of the two users' hashes looks like to a reader.
        store
            .mem_mut()
            .indexes
            .user_orders
            .insert("u1", 20, "theirs".into());
        let (u1, u2) = (UserId::new("u1").unwrap(), UserId::new("u2").unwrap());
        let listed: Vec<String> = store
            .list_user_orders(&u1, 10)
            .unwrap()
            .into_iter()
            .map(|order| order.order_id.into_string())
            .collect();
        assert_eq!(listed, ["mine"]);
        assert_eq!(store.list_user_orders(&u1, 1).unwrap().len(), 1);
        let sku = SkuId::new("A").unwrap();
        assert_eq!(store.held(&sku, &u1).unwrap(), 2);
        assert_eq!(store.held(&sku, &u2).unwrap(), 3);
    }

    fn order_command(kind: &str, order: &str) -> Command {
        let order_id = OrderId::new(order).unwrap();
        match kind {
            "place" => place(order, "u", 1),
            "pay" => Command::Pay {
                order_id,
                payment_ref: None,
                request_tag: 0,
            },
            "refund" => Command::Refund {
                order_id,
                restock: false,
            },
            other => unreachable!("{other}"),
        }
    }

    /// Applies each of `orders` as `kind`, 1,000 to an entry, from log index `index`, each
    /// entry's marker its index; returns the next index.
    fn apply_each(store: &Store, mut index: u64, kind: &str, orders: &[String]) -> u64 {
        for part in orders.chunks(1_000) {
            let batch = Batch {
                now_ms: 1_000 + index,
                commands: part.iter().map(|id| order_command(kind, id)).collect(),
            };
            store
                .apply(&[(index, &batch)], Some(&index.to_be_bytes()))
                .unwrap();
            index += 1;
        }
        index
    }

    fn export(store: &Store) -> Vec<u8> {
        let mut bytes = Vec::new();
        store.export_snapshot(&mut bytes).unwrap();
        bytes
    }

    /// A clean-up tells a stored copy live by the working set as of its checkpoint's cut,
    /// not as it stands when the checkpoint gets to it: an order whose only copy sits in a
    /// run being cleaned, and that changes after the cut, must keep that copy, or a crash
    /// before the next checkpoint loses it.
    #[test]
    fn a_record_changed_after_the_cut_keeps_its_copy_from_a_cleaned_run() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = (0..5_000).map(|i| format!("o{i:04}")).collect();
        let expected = {
            let db = sled::open(dir.path()).unwrap();
            let store = Store::open(&db).unwrap();
            let setup = Batch {
                now_ms: 1,
                commands: vec![create_a(100_000)],
            };
            store
                .apply(&[(1, &setup)], Some(&1u64.to_be_bytes()))
                .unwrap();
            let mut index = 2;
            for part in ids.chunks(1_000) {
                index = apply_each(&store, index, "place", part);
                store.checkpoint().unwrap();
            }
            // Every order but o0000 paid: its only copy stays in the oldest run.
            for part in ids[1..].chunks(1_000) {
                index = apply_each(&store, index, "pay", part);
                store.checkpoint().unwrap();
            }
            // Enough superseded copies that this checkpoint cleans the oldest runs.
            index = apply_each(&store, index, "refund", &ids[1..]);
            let at_cut = export(&store);
            let cut = store.cut();
            apply_each(&store, index, "pay", &ids[..1]);
            store.write_cut(cut).unwrap();
            let oldest_run = db.open_tree("sm.0.orders").unwrap().get([0u8; 9]).unwrap();
            assert!(oldest_run.is_none(), "the oldest run was cleaned");
            // Dropped with the payment never checkpointed: what a crash leaves.
            at_cut
        };
        let db = sled::open(dir.path()).unwrap();
        let store = Store::open(&db).unwrap();
        assert_eq!(export(&store), expected);
    }
}
