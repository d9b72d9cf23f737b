//! The events in memory: the newest held whole, the older ones only as their times. The feed
//! keeps at least a day of events, which under load is hundreds of millions; held whole they
//! were about a quarter of a node's memory per order. Once a checkpoint has written an event
//! to sled, apply may move it out of memory, keeping its time (pruning by age reads it) and
//! its place in the run of ids. Reads of moved events go to sled (`event_chunks::read`).
//!
//! The moved events are always the oldest: ids `first .. held.first`, then the held ones up
//! to the newest. Apply appends at the newest end and prunes at the oldest, so the ids stay
//! one unbroken run as in `Numbered`.

use super::codec::{decode_prefix, Value};
use super::error::StoreError;
use super::numbered::{Gap, Numbered};
use crate::events::EventKind;
use serde::Deserialize;

#[derive(Clone, Default)]
pub(crate) struct EventSeq {
    /// The id of the oldest moved event (when none is moved, of no record).
    moved_first: u64,
    /// The times of the moved events, oldest first.
    moved: imbl::Vector<u64>,
    held: Numbered<Value>,
}

/// An event as `EventSeq` has it.
pub(crate) enum Slot<'a> {
    Held(&'a Value),
    /// Only on disk; its time.
    Moved(u64),
}

/// The fields an event's encoding starts with (`Event`'s order), enough for its time.
#[derive(Deserialize)]
struct Head {
    _id: u64,
    _kind: EventKind,
    time_ms: u64,
}

/// The time of an encoded event, decoding only the fields before it.
pub(crate) fn time_of(event: &[u8]) -> Result<u64, StoreError> {
    decode_prefix::<Head>("events", event).map(|head| head.time_ms)
}

impl EventSeq {
    /// The events held in memory (the newest).
    pub fn held(&self) -> &Numbered<Value> {
        &self.held
    }

    /// The oldest event's id, moved or held.
    pub fn first_id(&self) -> Option<u64> {
        if !self.moved.is_empty() {
            Some(self.moved_first)
        } else {
            self.held.at(0).map(|(id, _)| id)
        }
    }

    /// The oldest held event's id, or where the next one will be.
    pub fn held_from(&self) -> u64 {
        match self.held.at(0) {
            Some((id, _)) => id,
            None => self.moved_end(),
        }
    }

    fn moved_end(&self) -> u64 {
        self.moved_first + self.moved.len() as u64
    }

    pub fn moved_len(&self) -> usize {
        self.moved.len()
    }

    /// Every event, oldest first.
    pub fn slots(&self) -> impl Iterator<Item = (u64, Slot<'_>)> + '_ {
        let moved = self
            .moved
            .iter()
            .enumerate()
            .map(|(i, time)| (self.moved_first + i as u64, Slot::Moved(*time)));
        let held = (0..self.held.len())
            .filter_map(|i| self.held.at(i).map(|(id, value)| (id, Slot::Held(value))));
        moved.chain(held)
    }

    /// As `Numbered::write`: appends at the newest end, drops at the oldest. A moved event
    /// is never rewritten (apply only appends new ones).
    pub fn write(&mut self, id: u64, value: Option<Value>) -> Result<(), Gap> {
        if self.moved.is_empty() {
            return self.held.write(id, value);
        }
        let gap = Gap {
            id,
            first: self.moved_first,
            len: self.moved.len() + self.held.len(),
        };
        match value {
            Some(value) if self.held.len() == 0 => {
                if id != self.moved_end() {
                    return Err(gap);
                }
                self.held.write(id, Some(value))
            }
            Some(value) if id >= self.held_from() => self.held.write(id, Some(value)),
            Some(_) => Err(gap),
            None if id < self.moved_first => Ok(()),
            None if id == self.moved_first => {
                self.moved.pop_front();
                self.moved_first += 1;
                Ok(())
            }
            None => Err(gap),
        }
    }

    /// Adds a moved event after the newest one, while loading a store whose older events
    /// stay on disk (before any is held).
    pub fn push_moved(&mut self, id: u64, time_ms: u64) -> Result<(), Gap> {
        let next = self.moved_end();
        if self.held.len() > 0 || (!self.moved.is_empty() && id != next) {
            return Err(Gap {
                id,
                first: self.moved_first,
                len: self.moved.len() + self.held.len(),
            });
        }
        if self.moved.is_empty() {
            self.moved_first = id;
        }
        self.moved.push_back(time_ms);
        Ok(())
    }

    /// Moves held events, oldest first, out of memory: those with ids up to `up_to`, at most
    /// `max` of them. Returns how many moved.
    pub fn move_out(&mut self, up_to: u64, max: usize) -> Result<usize, StoreError> {
        let mut moved = 0;
        while moved < max {
            let Some((id, value)) = self.held.at(0) else {
                break;
            };
            if id > up_to {
                break;
            }
            let time = time_of(value)?;
            if self.moved.is_empty() {
                self.moved_first = id;
            }
            self.moved.push_back(time);
            self.held
                .write(id, None)
                .map_err(|gap| StoreError::Corrupt(format!("events: {gap}")))?;
            moved += 1;
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec::encode;

    fn event(id: u64, time_ms: u64) -> Value {
        // An event's encoding begins with its id, kind and time; the rest is not read here.
        let mut bytes = encode(&(id, EventKind::OrderReserved, time_ms));
        bytes.extend_from_slice(b"rest of the event");
        Value::from(bytes)
    }

    fn listed(seq: &EventSeq) -> Vec<(u64, Option<u64>)> {
        seq.slots()
            .map(|(id, slot)| match slot {
                Slot::Held(value) => (id, Some(time_of(value).unwrap())),
                Slot::Moved(_) => (id, None),
            })
            .collect()
    }

    #[test]
    fn moves_the_oldest_out_and_keeps_one_run_of_ids() {
        let mut seq = EventSeq::default();
        for id in 1..=5 {
            seq.write(id, Some(event(id, id * 10))).unwrap();
        }
        assert_eq!(seq.move_out(3, 2).unwrap(), 2);
        assert_eq!(seq.move_out(3, 10).unwrap(), 1);
        assert_eq!(seq.move_out(3, 10).unwrap(), 0);
        assert_eq!(
            listed(&seq),
            vec![
                (1, None),
                (2, None),
                (3, None),
                (4, Some(40)),
                (5, Some(50))
            ]
        );
        let times: Vec<_> = seq
            .slots()
            .filter_map(|(id, s)| match s {
                Slot::Moved(t) => Some((id, t)),
                Slot::Held(_) => None,
            })
            .collect();
        assert_eq!(times, vec![(1, 10), (2, 20), (3, 30)]);
        assert_eq!((seq.first_id(), seq.held_from()), (Some(1), 4));

        // Appends continue the run; a gap or a rewrite of a moved event is refused.
        assert!(seq.write(7, Some(event(7, 70))).is_err());
        assert!(seq.write(2, Some(event(2, 20))).is_err());
        seq.write(6, Some(event(6, 60))).unwrap();

        // Pruning drops the oldest moved ones first, then held ones.
        assert!(seq.write(2, None).is_err());
        seq.write(1, None).unwrap();
        seq.write(1, None).unwrap();
        seq.write(2, None).unwrap();
        seq.write(3, None).unwrap();
        assert_eq!(seq.moved_len(), 0);
        seq.write(4, None).unwrap();
        assert_eq!(listed(&seq), vec![(5, Some(50)), (6, Some(60))]);
    }

    #[test]
    fn with_every_event_moved_the_next_must_follow_the_newest() {
        let mut seq = EventSeq::default();
        for id in 1..=3 {
            seq.write(id, Some(event(id, id))).unwrap();
        }
        seq.move_out(u64::MAX, usize::MAX).unwrap();
        assert_eq!(seq.held().len(), 0);
        assert_eq!(seq.held_from(), 4);
        assert!(seq.write(5, Some(event(5, 5))).is_err());
        seq.write(4, Some(event(4, 4))).unwrap();
        assert_eq!(seq.first_id(), Some(1));
        assert_eq!(listed(&seq).len(), 4);
    }
}
