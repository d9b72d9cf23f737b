//! Records numbered by dense ids: the events. Apply gives each new event the next id and
//! pruning drops the oldest, so the ids held are always one unbroken run, and a record is
//! found by subtracting the first id. Held this way an event costs its value's pointer in a
//! packed sequence, where an ordered map also held a key of its own and, since every insert
//! lands at its right edge, left each node half full (heaptrack: map nodes were the largest
//! share of the working set).

#[derive(Clone)]
pub(crate) struct Numbered<V: Clone> {
    /// The id of `values[0]` (when empty, of no record: the next write sets it).
    first: u64,
    values: imbl::Vector<V>,
}

impl<V: Clone> Default for Numbered<V> {
    fn default() -> Self {
        Self {
            first: 0,
            values: imbl::Vector::new(),
        }
    }
}

/// A write that would break the run of ids.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Gap {
    pub id: u64,
    pub first: u64,
    pub len: usize,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "id {} does not continue ids {}..{}",
            self.id,
            self.first,
            self.end()
        )
    }
}

impl Gap {
    fn end(&self) -> u64 {
        self.first.saturating_add(self.len as u64)
    }
}

impl<V: Clone> Numbered<V> {
    pub fn get(&self, id: u64) -> Option<&V> {
        self.index(id).and_then(|i| self.values.get(i))
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// The record at position `i` (0: the oldest) and its id.
    pub fn at(&self, i: usize) -> Option<(u64, &V)> {
        self.values.get(i).map(|v| (self.first + i as u64, v))
    }

    /// Sets record `id` (`None`: drops it). A new record must follow the newest one (or
    /// start the run when there is none), and only the oldest can be dropped; dropping an id
    /// no longer held does nothing.
    pub fn write(&mut self, id: u64, value: Option<V>) -> Result<(), Gap> {
        let gap = Gap {
            id,
            first: self.first,
            len: self.values.len(),
        };
        match value {
            Some(value) => {
                if self.values.is_empty() {
                    self.first = id;
                }
                let end = self.first.saturating_add(self.values.len() as u64);
                match self.index(id) {
                    Some(i) => {
                        self.values.set(i, value);
                    }
                    None if id == end => self.values.push_back(value),
                    None => return Err(gap),
                }
            }
            None => match self.index(id) {
                None if id < self.first || self.values.is_empty() => {}
                Some(0) => {
                    self.values.pop_front();
                    self.first += 1;
                }
                _ => return Err(gap),
            },
        }
        Ok(())
    }

    fn index(&self, id: u64) -> Option<usize> {
        let i = usize::try_from(id.checked_sub(self.first)?).ok()?;
        (i < self.values.len()).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: &Numbered<u8>) -> Vec<(u64, u8)> {
        (0..n.len())
            .filter_map(|i| n.at(i).map(|(id, v)| (id, *v)))
            .collect()
    }

    #[test]
    fn appends_overwrites_and_drops_the_oldest() {
        let mut n = Numbered::default();
        for id in 5..9 {
            n.write(id, Some(id as u8)).unwrap();
        }
        assert_eq!(n.at(0).map(|(id, _)| id), Some(5));
        n.write(6, Some(60)).unwrap();
        n.write(5, None).unwrap();
        n.write(4, None).unwrap();
        assert_eq!(ids(&n), vec![(6, 60), (7, 7), (8, 8)]);
        assert_eq!(n.get(7), Some(&7));
        assert_eq!(n.get(5), None);
        assert_eq!(n.get(9), None);
    }

    #[test]
    fn refuses_gaps_and_drops_from_the_middle() {
        let mut n = Numbered::default();
        n.write(1, Some(1)).unwrap();
        n.write(2, Some(2)).unwrap();
        assert_eq!(
            n.write(4, Some(4)),
            Err(Gap {
                id: 4,
                first: 1,
                len: 2
            })
        );
        assert!(n.write(2, None).is_err());
        assert_eq!(ids(&n), vec![(1, 1), (2, 2)]);
    }

    #[test]
    fn a_drained_run_restarts_at_the_next_write() {
        let mut n = Numbered::default();
        n.write(1, Some(1)).unwrap();
        n.write(1, None).unwrap();
        // One apply can add and prune the same events: the drops of ids it never held
        // are no-ops, and the run restarts at the next id written.
        n.write(2, None).unwrap();
        n.write(3, Some(3)).unwrap();
        assert_eq!(ids(&n), vec![(3, 3)]);
    }
}
