//! When a node snapshots. openraft 0.9 can only count entries, whatever they carry and
//! however large the state has grown, so its own policy is off (`SnapshotPolicy::Never`) and
//! this task decides, by two rules:
//! - **by count**: `raft.snapshot_logs_since_last` entries were applied since the last
//!   snapshot, and that snapshot is smaller than `raft.snapshot_log_mib_since_last` MiB.
//!   A small state snapshots often: it is cheap to write.
//! - **by size**: the log since the last snapshot holds more than
//!   `raft.snapshot_log_mib_since_last` MiB and more bytes than that snapshot. An entry may
//!   carry thousands of orders, so a count alone would let the log on disk grow to
//!   gigabytes.
//!
//! A snapshot's size here is its content uncompressed (`current.json` records it), not its
//! file, which compression makes about four times smaller: what a build costs is reading and
//! encoding every record of the state, and measured by the file the rules would build four
//! times as often.
//!
//! Every snapshot encodes the whole state. Past the size floor, a snapshot is only rebuilt
//! once the log since the last one has outgrown it, so the bytes snapshots encode stay below
//! the bytes of log they let go: an 8-minute soak had rebuilt a gigabyte state every 20,000
//! entries, and each such minute served a quarter fewer orders.
//!
//! **Staggered.** Both rules read only the log, which every replica holds alike, so with the
//! same thresholds all voters built their snapshot at the same index: three exports of a few
//! hundred megabytes at once saturated the disk and both cores, and orders waited up to 1.7 s
//! at 15,000 orders/s offered. So each voter scales the thresholds by its place among the
//! voters (`Place`): the first by 1, the later ones by up to 1.5 (`STAGGER_PERMILLE`), and
//! the builds follow each other while the others keep a quorum serving.

use crate::log_store::LogSizes;
use crate::state_machine_store::current_snapshot_bytes;
use crate::types::Raft;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the rules are checked: each check reads two counters and a lock-guarded sum.
const TICK: Duration = Duration::from_millis(100);
/// A request that brought no new snapshot (its build failed) is repeated after this long.
const ASK_AGAIN: Duration = Duration::from_secs(60);

/// How far apart the voters' thresholds lie, in thousandths: a voter's are raised by this
/// share of its rank over the number of voters. Three voters snapshot by count at 20,000,
/// 23,333 and 26,667 entries: several seconds of log apart at full load, where one build
/// takes two or three.
const STAGGER_PERMILLE: u64 = 500;

/// The configured thresholds.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub entries: u64,
    pub floor_bytes: u64,
}

/// This node's place among the voters, by id: `rank` of `voters`. A learner, or a node that
/// is not a member, counts as after the last voter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    rank: u64,
    voters: u64,
}

impl Place {
    fn of(id: u64, voters: impl Iterator<Item = u64>) -> Self {
        let (mut rank, mut count, mut member) = (0, 0, false);
        for voter in voters {
            count += 1;
            rank += u64::from(voter < id);
            member |= voter == id;
        }
        Place {
            rank: if member { rank } else { count },
            voters: count.max(1),
        }
    }

    /// Scales a threshold for this place: by 1 for the first voter, by 1.5 after the last.
    fn scale(&self, threshold: u64) -> u64 {
        let whole = 1_000 * u128::from(self.voters);
        let raised = whole + u128::from(STAGGER_PERMILLE * self.rank.min(self.voters));
        u64::try_from(u128::from(threshold) * raised / whole).unwrap_or(u64::MAX)
    }
}

/// The log since the last snapshot, and that snapshot.
#[derive(Debug, Clone, Copy)]
struct Since {
    entries: u64,
    log_bytes: u64,
    /// Bytes of the current snapshot uncompressed; 0 when there is none.
    snapshot_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Count,
    Size,
}

impl Rules {
    /// The thresholds as this node applies them, at its place among the voters. The size rule
    /// compares the log with the snapshot scaled alike.
    fn staggered(&self, place: Place) -> Staggered {
        Staggered {
            rules: Rules {
                entries: place.scale(self.entries),
                floor_bytes: place.scale(self.floor_bytes),
            },
            place,
        }
    }
}

/// The rules at one place among the voters.
#[derive(Debug, Clone, Copy)]
struct Staggered {
    rules: Rules,
    place: Place,
}

impl Staggered {
    /// Whether the rules could fire without knowing the snapshot's size: when not, the
    /// snapshot's record need not be read.
    fn may_fire(&self, entries: u64, log_bytes: u64) -> bool {
        entries >= self.rules.entries || log_bytes > self.rules.floor_bytes
    }

    fn due(&self, since: Since) -> Option<Reason> {
        let rules = &self.rules;
        if since.log_bytes > rules.floor_bytes
            && since.log_bytes > self.place.scale(since.snapshot_bytes)
        {
            Some(Reason::Size)
        } else if since.entries >= rules.entries && since.snapshot_bytes < rules.floor_bytes {
            Some(Reason::Count)
        } else {
            None
        }
    }
}

pub fn start(raft: Raft, log: LogSizes, snapshots: PathBuf, rules: Rules) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The snapshot index a request was made after, and when: one request per snapshot.
        let mut asked: Option<(u64, Instant)> = None;
        // The current snapshot's index and size: a snapshot never changes, so its size
        // is read once per snapshot.
        let mut sized: Option<(u64, u64)> = None;
        loop {
            tick.tick().await;
            let (since, applied, place) = {
                let metrics = raft.metrics();
                let m = metrics.borrow();
                (
                    m.snapshot.map_or(0, |s| s.index),
                    m.last_applied.map_or(0, |l| l.index),
                    Place::of(m.id, m.membership_config.membership().voter_ids()),
                )
            };
            let rules = rules.staggered(place);
            if asked.is_some_and(|(after, at)| after == since && at.elapsed() < ASK_AGAIN) {
                continue;
            }
            let entries = applied.saturating_sub(since);
            let log_bytes = log.bytes_after(since);
            if !rules.may_fire(entries, log_bytes) {
                continue;
            }
            let snapshot_bytes = match sized {
                Some((index, bytes)) if index == since => bytes,
                _ => {
                    let dir = snapshots.clone();
                    let bytes = tokio::task::spawn_blocking(move || current_snapshot_bytes(&dir))
                        .await
                        .ok()
                        .flatten()
                        .unwrap_or(0);
                    sized = Some((since, bytes));
                    bytes
                }
            };
            let Some(reason) = rules.due(Since {
                entries,
                log_bytes,
                snapshot_bytes,
            }) else {
                continue;
            };
            tracing::info!(
                ?reason,
                rank = place.rank,
                voters = place.voters,
                entries,
                log_bytes,
                snapshot_bytes,
                since,
                "building a snapshot"
            );
            // openraft ignores the request while a build runs; that build's snapshot then
            // moves `since`, and the log after it is measured again.
            if let Err(e) = raft.trigger().snapshot().await {
                tracing::warn!(error = %e, "cannot trigger a snapshot");
                return;
            }
            asked = Some((since, Instant::now()));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        entries: 20_000,
        floor_bytes: 256 << 20,
    };

    /// The first of three voters, whose thresholds are the configured ones.
    const FIRST_PLACE: Place = Place { rank: 0, voters: 3 };
    static FIRST: std::sync::LazyLock<Staggered> =
        std::sync::LazyLock::new(|| RULES.staggered(FIRST_PLACE));

    fn since(entries: u64, log_mib: u64, snapshot_mib: u64) -> Since {
        Since {
            entries,
            log_bytes: log_mib << 20,
            snapshot_bytes: snapshot_mib << 20,
        }
    }

    #[test]
    fn a_small_state_snapshots_by_count() {
        assert_eq!(FIRST.due(since(20_000, 1, 0)), Some(Reason::Count));
        assert_eq!(FIRST.due(since(20_000, 1, 255)), Some(Reason::Count));
        assert_eq!(FIRST.due(since(19_999, 1, 255)), None);
    }

    #[test]
    fn a_large_state_waits_until_the_log_outgrows_it() {
        assert_eq!(FIRST.due(since(1_000_000, 300, 256)), Some(Reason::Size));
        assert_eq!(FIRST.due(since(1_000_000, 900, 1_000)), None);
        assert_eq!(
            FIRST.due(since(1_000_000, 1_001, 1_000)),
            Some(Reason::Size)
        );
    }

    #[test]
    fn a_large_log_snapshots_by_size_whatever_its_entries() {
        assert_eq!(FIRST.due(since(10, 257, 0)), Some(Reason::Size));
        assert_eq!(FIRST.due(since(10, 256, 0)), None);
        assert_eq!(FIRST.due(since(10, 257, 300)), None);
    }

    /// Skipping the snapshot's size when no rule may fire never skips a due snapshot.
    #[test]
    fn the_snapshot_is_looked_at_whenever_a_rule_may_fire() {
        for entries in [0, 19_999, 20_000, 1_000_000] {
            for log_mib in [0, 255, 256, 257, 5_000] {
                for snapshot_mib in [0, 255, 256, 257, 4_000] {
                    let s = since(entries, log_mib, snapshot_mib);
                    if !FIRST.may_fire(s.entries, s.log_bytes) {
                        assert_eq!(FIRST.due(s), None, "{s:?}");
                    }
                }
            }
        }
        assert!(!FIRST.may_fire(19_999, 256 << 20));
        assert!(FIRST.may_fire(20_000, 0));
        assert!(FIRST.may_fire(0, (256 << 20) + 1));
    }

    #[test]
    fn a_place_is_the_rank_of_the_id_among_the_voters() {
        let voters = || [9, 1, 5].into_iter();
        assert_eq!(Place::of(1, voters()), Place { rank: 0, voters: 3 });
        assert_eq!(Place::of(5, voters()), Place { rank: 1, voters: 3 });
        assert_eq!(Place::of(9, voters()), Place { rank: 2, voters: 3 });
        // A learner or a removed node: after every voter.
        assert_eq!(Place::of(4, voters()), Place { rank: 3, voters: 3 });
        assert_eq!(
            Place::of(4, std::iter::empty()),
            Place { rank: 0, voters: 1 }
        );
    }

    #[test]
    fn places_scale_the_thresholds_apart() {
        let scaled: Vec<u64> = (0..=3)
            .map(|rank| Place { rank, voters: 3 }.scale(30_000))
            .collect();
        assert_eq!(scaled, [30_000, 35_000, 40_000, 45_000]);
        let last = Place { rank: 2, voters: 3 };
        assert_eq!(last.scale(u64::MAX), u64::MAX);
    }

    /// Three voters with the same log build their first snapshot thousands of entries apart,
    /// never at the same index.
    #[test]
    fn each_voter_snapshots_by_count_at_its_own_index() {
        let first_due_at = |id: u64| {
            let rules = RULES.staggered(Place::of(id, [1, 2, 3].into_iter()));
            (0..100_000u64)
                .find(|&entries| rules.due(since(entries, 1, 0)).is_some())
                .unwrap()
        };
        assert_eq!(
            [first_due_at(1), first_due_at(2), first_due_at(3)],
            [20_000, 23_333, 26_666]
        );
    }

    #[test]
    fn each_voter_waits_for_its_own_multiple_of_the_snapshot_by_size() {
        let second = RULES.staggered(Place { rank: 1, voters: 3 });
        assert_eq!(
            FIRST.due(since(1_000_000, 1_001, 1_000)),
            Some(Reason::Size)
        );
        assert_eq!(second.due(since(1_000_000, 1_001, 1_000)), None);
        assert_eq!(second.due(since(1_000_000, 1_166, 1_000)), None);
        assert_eq!(
            second.due(since(1_000_000, 1_167, 1_000)),
            Some(Reason::Size)
        );
        // The floor is scaled too: a log of 257 MiB is not yet past the second's.
        assert_eq!(second.due(since(10, 257, 0)), None);
        assert_eq!(second.due(since(10, 299, 0)), Some(Reason::Size));
    }
}
