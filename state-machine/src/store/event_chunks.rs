//! Events on disk, many to a sled record. Every order adds an event, and a sled insert costs
//! far more than the bytes it carries, so one record per event doubled what a checkpoint
//! wrote per order. Event ids are dense and only ever appended or pruned from the front, so a
//! checkpoint touches few chunks: the one it left half full and those it filled.
//!
//! In memory (and in snapshots) each event stays one record keyed by its id; only sled's
//! `events` tree holds chunks. A chunk's key is `c` and the chunk number (big-endian), so it
//! can never be taken for an event key of the earlier layout (eight bytes, no prefix), which
//! `migrate_legacy` folds into chunks when a store opens.

use super::error::StoreError;
use super::event_seq::{self, EventSeq};
use super::keys;
use super::memory::Value;
use super::packed;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Events per chunk: large enough that an order costs a small fraction of an insert, small
/// enough that rewriting the half-full chunk at each checkpoint stays cheap.
pub(crate) const EVENTS_PER_CHUNK: u64 = 256;

const CHUNK_TAG: u8 = b'c';

pub(crate) fn chunk_key(chunk: u64) -> [u8; 9] {
    keys::tagged(CHUNK_TAG, chunk)
}

fn chunk_of_key(key: &[u8]) -> Option<u64> {
    keys::untagged(CHUNK_TAG, key)
}

/// `id (u64 BE) · len (u32 BE) · event` for each event, in id order, packed (`packed`).
pub(crate) fn encode_chunk<'a>(events: impl IntoIterator<Item = (u64, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, event) in events {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&(event.len() as u32).to_be_bytes());
        out.extend_from_slice(event);
    }
    packed::pack(out)
}

/// A chunk's stored bytes, unpacked.
pub(crate) fn unpack_chunk<'a>(key: &[u8], stored: &'a [u8]) -> Result<Cow<'a, [u8]>, StoreError> {
    packed::unpack(stored).map_err(|e| StoreError::Corrupt(format!("events: chunk {key:?}: {e}")))
}

/// The events of the chunk stored under `key`, checked: each id belongs to the chunk and
/// comes after the one before it.
pub(crate) fn decode_chunk<'a>(
    key: &[u8],
    bytes: &'a [u8],
) -> Result<Vec<(u64, &'a [u8])>, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("events: chunk {key:?}: {what}"));
    let chunk = chunk_of_key(key).ok_or_else(|| corrupt("bad key"))?;
    let mut events = Vec::new();
    let mut rest = bytes;
    let mut previous = None;
    while !rest.is_empty() {
        let (id, tail) = rest.split_at_checked(8).ok_or_else(|| corrupt("torn id"))?;
        let (len, tail) = tail
            .split_at_checked(4)
            .ok_or_else(|| corrupt("torn length"))?;
        let id = u64::from_be_bytes(id.try_into().expect("eight bytes"));
        let len = u32::from_be_bytes(len.try_into().expect("four bytes")) as usize;
        let (event, tail) = tail
            .split_at_checked(len)
            .ok_or_else(|| corrupt("torn event"))?;
        if id / EVENTS_PER_CHUNK != chunk || previous.is_some_and(|p| p >= id) {
            return Err(corrupt("event ids out of place"));
        }
        previous = Some(id);
        events.push((id, event));
        rest = tail;
    }
    Ok(events)
}

/// Writes a checkpoint's event changes (key: event id, `None`: pruned) into the chunks they
/// fall in, inside the checkpoint's transaction: each touched chunk is read, changed and
/// written back once.
pub(crate) fn write_changes(
    tree: &TransactionalTree,
    changes: &[(Vec<u8>, Option<Value>)],
) -> Result<(), ConflictableTransactionError<()>> {
    let mut by_chunk: BTreeMap<u64, Vec<(u64, &Option<Value>)>> = BTreeMap::new();
    for (key, value) in changes {
        let Some(id) = keys::event_id(key) else {
            return Err(ConflictableTransactionError::Abort(()));
        };
        by_chunk
            .entry(id / EVENTS_PER_CHUNK)
            .or_default()
            .push((id, value));
    }
    for (chunk, writes) in by_chunk {
        let key = chunk_key(chunk);
        let old = match tree.get(key)? {
            Some(stored) => Some(
                unpack_chunk(&key, &stored)
                    .map_err(|_| ConflictableTransactionError::Abort(()))?
                    .into_owned(),
            ),
            None => None,
        };
        let mut events: BTreeMap<u64, &[u8]> = match &old {
            Some(bytes) => decode_chunk(&key, bytes)
                .map_err(|_| ConflictableTransactionError::Abort(()))?
                .into_iter()
                .collect(),
            None => BTreeMap::new(),
        };
        for (id, value) in &writes {
            match value {
                Some(event) => events.insert(*id, event.as_ref()),
                None => events.remove(id),
            };
        }
        if events.is_empty() {
            tree.remove(&key[..])?;
        } else {
            tree.insert(&key[..], encode_chunk(events))?;
        }
    }
    Ok(())
}

/// Every event stored in `tree`, the newest `held` of them whole and the older ones as their
/// times only (`EventSeq`): a store reopened with a long feed never holds it all at once.
pub(crate) fn load(tree: &sled::Tree, held: usize) -> Result<EventSeq, StoreError> {
    let newest = match tree.last()? {
        Some((key, stored)) => decode_chunk(&key, &unpack_chunk(&key, &stored)?)?
            .last()
            .map(|(id, _)| *id),
        None => None,
    };
    let held_from = newest.map_or(0, |id| (id + 1).saturating_sub(held as u64));
    let mut events = EventSeq::default();
    for item in tree.iter() {
        let (key, stored) = item?;
        let bytes = unpack_chunk(&key, &stored)?;
        for (id, event) in decode_chunk(&key, &bytes)? {
            let written = if id < held_from {
                events.push_moved(id, event_seq::time_of(event)?)
            } else {
                events.write(id, Some(Value::from(event)))
            };
            written.map_err(|gap| StoreError::Corrupt(format!("events: {gap}")))?;
        }
    }
    Ok(events)
}

/// The stored chunks (packed, as sled holds them) that hold events `from .. to`. A caller
/// that must see them as of one moment takes them under the lock that keeps checkpoints out,
/// and decodes them after (`each_event`).
pub(crate) fn chunks_for(
    tree: &sled::Tree,
    from: u64,
    to: u64,
) -> Result<Vec<(sled::IVec, sled::IVec)>, StoreError> {
    if from >= to {
        return Ok(Vec::new());
    }
    let (first, last) = (
        chunk_key(from / EVENTS_PER_CHUNK),
        chunk_key((to - 1) / EVENTS_PER_CHUNK),
    );
    tree.range(first..=last)
        .map(|item| item.map_err(StoreError::from))
        .collect()
}

/// Calls `f` with each event `from .. to` of `chunks`, in id order. Each of them must be
/// there: these are events the state holds, so one missing is a broken store.
pub(crate) fn each_event(
    chunks: &[(sled::IVec, sled::IVec)],
    from: u64,
    to: u64,
    mut f: impl FnMut(u64, &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut next = from;
    for (key, stored) in chunks {
        let bytes = unpack_chunk(key, stored)?;
        for (id, event) in decode_chunk(key, &bytes)? {
            if id < next || id >= to {
                continue;
            }
            if id != next {
                break;
            }
            f(id, event)?;
            next += 1;
        }
    }
    if next < to {
        return Err(StoreError::Corrupt(format!(
            "events: event {next} is held on disk only, and sled has no such event"
        )));
    }
    Ok(())
}

/// Events `from .. to`, read from sled.
pub(crate) fn read(tree: &sled::Tree, from: u64, to: u64) -> Result<Vec<(u64, Value)>, StoreError> {
    let mut events = Vec::with_capacity(usize::try_from(to.saturating_sub(from)).unwrap_or(0));
    each_event(&chunks_for(tree, from, to)?, from, to, |id, event| {
        events.push((id, Value::from(event)));
        Ok(())
    })?;
    Ok(events)
}

/// Folds events stored one per record (the layout before chunks) into chunks, in one
/// atomic write. Nothing to do, and no write, when there are none.
pub(crate) fn migrate_legacy(tree: &sled::Tree) -> Result<(), StoreError> {
    // sled yields keys in order, each once: the sorted list `write_changes` takes.
    let mut legacy = Vec::new();
    for item in tree.iter() {
        let (key, value) = item?;
        if chunk_of_key(&key).is_none() {
            if keys::event_id(&key).is_none() {
                return Err(StoreError::Corrupt(format!("events: bad key {key:?}")));
            }
            legacy.push((key.to_vec(), Some(Value::from(value.as_ref()))));
        }
    }
    if legacy.is_empty() {
        return Ok(());
    }
    let result = tree.transaction(|tx| {
        for (key, _) in &legacy {
            tx.remove(key.as_slice())?;
        }
        write_changes(tx, &legacy)
    });
    result.map_err(|e| match e {
        sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
        sled::transaction::TransactionError::Abort(()) => {
            StoreError::Corrupt("events: migrating to chunks failed".into())
        }
    })?;
    tree.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_round_trips_and_rejects_damage() {
        let key = chunk_key(2);
        let events = [(512u64, &b"first"[..]), (513, b""), (767, b"last")];
        let bytes = encode_chunk(events);
        assert_eq!(decode_chunk(&key, &bytes).unwrap(), events);
        // Cut between two events, the rest is a shorter valid chunk; cut anywhere else, it
        // is refused, never read short.
        let boundaries = [8 + 4 + 5, 8 + 4 + 5 + 8 + 4];
        for cut in 1..bytes.len() {
            match boundaries.iter().position(|b| *b == cut) {
                Some(at) => assert_eq!(decode_chunk(&key, &bytes[..cut]).unwrap(), events[..=at]),
                None => assert!(decode_chunk(&key, &bytes[..cut]).is_err(), "cut at {cut}"),
            }
        }
        // An id outside the chunk, or out of order.
        assert!(decode_chunk(&chunk_key(3), &bytes).is_err());
        let swapped = encode_chunk([(513u64, &b"a"[..]), (512, b"b")]);
        assert!(decode_chunk(&key, &swapped).is_err());
        assert!(decode_chunk(b"\0\0\0\0\0\0\0\x01", &bytes).is_err());
    }
}
