//! Time as a node may use it.
//!
//! - The **wall clock**: the machine's, plus the test-only skew of `[clock] test_offset_ms`.
//!   It enters the cluster only through the `now_ms` a leader stamps on a proposal.
//! - The **cluster clock**: the state machine's `clock` as this node last applied it,
//!   advanced by the time elapsed since on the monotonic clock. The leader's expiry ticker
//!   runs on it, and proposals are stamped with no less than it, so a leader whose wall
//!   clock lags neither freezes reservations nor holds the cluster's time back.
//! - The **verdict** of the clock monitor (`clock_monitor`): whether this node's wall clock
//!   agrees with enough of its peers' to lead. Proposals and reads wait for a good one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// DELIBERATELY BROKEN with the `wall-clock-deadlines` feature (jepsen-tests' proof that the
/// chaos suite catches a clock bug): the clock monitor's verdict is ignored, so a node whose
/// clock is off leads, and its proposals (the deadlines the expiry ticker and the state
/// machine judge) carry its own wall clock. Never enable it outside that test.
pub const WALL_CLOCK_DEADLINES: bool = cfg!(feature = "wall-clock-deadlines");

#[derive(Clone)]
pub struct Clocks(Arc<Inner>);

struct Inner {
    test_offset_ms: i64,
    max_offset_ms: u64,
    /// The state machine's clock as last applied here, and when, on the monotonic clock.
    stamped: Mutex<Option<(u64, Instant)>>,
    /// Fast path of `verdict.fit`, read by every proposal and read.
    fit: AtomicBool,
    verdict: Mutex<Verdict>,
}

/// What the clock monitor last concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether this node may lead: propose, and answer reads.
    pub fit: bool,
    /// The median offset of this node's wall clock from its peers' (positive: ahead), when
    /// any peer was measured.
    pub offset_ms: Option<i64>,
    /// Why the node may not lead; empty while it may.
    pub problem: String,
    /// Unfit because its clock disagrees with its peers (not merely unmeasured): it must not
    /// campaign, and as leader it stops its heartbeats so that the others elect a new one.
    pub too_far: bool,
}

impl Verdict {
    pub fn not_yet() -> Self {
        Verdict {
            fit: false,
            offset_ms: None,
            problem: "the clock offset to the peers is not measured yet".into(),
            too_far: false,
        }
    }
}

/// One measurement of a peer: how far this node's wall clock is ahead of the peer's, and
/// half the round trip it was measured over (the offset is only known within that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset {
    pub ahead_ms: i64,
    pub uncertainty_ms: u64,
}

impl Offset {
    /// From a call sent at `sent_ms` and answered at `received_ms` (both on this node's wall
    /// clock) with the peer's wall clock `peer_ms`: the peer read its clock about halfway.
    pub fn measure(sent_ms: u64, peer_ms: u64, received_ms: u64) -> Offset {
        let midpoint = (sent_ms as i128 + received_ms as i128) / 2;
        Offset {
            ahead_ms: (midpoint - peer_ms as i128) as i64,
            uncertainty_ms: received_ms.saturating_sub(sent_ms).div_ceil(2),
        }
    }

    /// Whether this offset is further than `max_ms` even at the most favourable end of its
    /// uncertainty.
    fn too_far(&self, max_ms: u64) -> bool {
        self.ahead_ms
            .unsigned_abs()
            .saturating_sub(self.uncertainty_ms)
            > max_ms
    }
}

/// Judges this node's clock from fresh measurements of `peers` peers (voters other than
/// itself). It may lead when at least half of its peers agree with it within `max_ms`: with
/// itself that is a majority, so the one node whose clock is off is the one kept out, never
/// the healthy majority. It is too far off only when more than half of its peers disagree:
/// a healthy node that has measured only the bad one cannot tell which of the two is off,
/// and must not give up campaigning for it. A node without peers has no one to disagree
/// with.
pub fn judge(max_ms: u64, peers: usize, measured: &[Offset]) -> Verdict {
    let offset_ms = median(measured);
    let agreeing = measured.iter().filter(|o| !o.too_far(max_ms)).count();
    if agreeing * 2 >= peers {
        return Verdict {
            fit: true,
            offset_ms,
            problem: String::new(),
            too_far: false,
        };
    }
    let disagreeing = measured.len() - agreeing;
    let too_far = disagreeing * 2 > peers;
    let problem = if too_far {
        format!(
            "this node's clock is {} ms from its peers' (median), more than max_offset_ms {max_ms}; \
             it does not lead until it agrees with at least half of its {peers} peers",
            offset_ms.unwrap_or_default()
        )
    } else {
        format!(
            "the clock agrees within max_offset_ms {max_ms} with {agreeing} of {peers} peers \
             ({} measured); at least half are needed",
            measured.len()
        )
    };
    Verdict {
        fit: false,
        offset_ms,
        problem,
        too_far,
    }
}

fn median(measured: &[Offset]) -> Option<i64> {
    let mut ahead: Vec<i64> = measured.iter().map(|o| o.ahead_ms).collect();
    ahead.sort_unstable();
    ahead.get(ahead.len() / 2).copied()
}

impl Clocks {
    pub fn new(settings: &cluster_config::ClockSettings) -> Self {
        if settings.test_offset_ms != 0 {
            tracing::warn!(
                test_offset_ms = settings.test_offset_ms,
                "test mode: this node's wall clock is skewed"
            );
        }
        Clocks(Arc::new(Inner {
            test_offset_ms: settings.test_offset_ms,
            max_offset_ms: settings.max_offset_ms,
            stamped: Mutex::new(None),
            fit: AtomicBool::new(false),
            verdict: Mutex::new(Verdict::not_yet()),
        }))
    }

    pub fn max_offset_ms(&self) -> u64 {
        self.0.max_offset_ms
    }

    /// Milliseconds since the Unix epoch by this node's wall clock (test skew included).
    pub fn wall_ms(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        real.saturating_add_signed(self.0.test_offset_ms)
    }

    /// Records the state machine's clock after an apply.
    pub fn note_applied(&self, clock_ms: u64) {
        let mut stamped = lock(&self.0.stamped);
        if stamped.is_none_or(|(last, _)| clock_ms > last) {
            *stamped = Some((clock_ms, Instant::now()));
        }
    }

    /// The cluster clock: the applied clock plus the monotonic time since it was applied
    /// here. Never ahead of the true cluster time (this node applied after the stamp).
    pub fn cluster_ms(&self) -> Option<u64> {
        lock(&self.0.stamped)
            .map(|(clock, at)| clock.saturating_add(at.elapsed().as_millis() as u64))
    }

    /// What a proposal is stamped with: the wall clock, but never behind the cluster clock.
    pub fn proposal_ms(&self) -> u64 {
        let wall = self.wall_ms();
        if WALL_CLOCK_DEADLINES {
            return wall;
        }
        self.cluster_ms().map_or(wall, |cluster| cluster.max(wall))
    }

    /// Whether this node may propose and answer reads now.
    pub fn fit_to_lead(&self) -> bool {
        WALL_CLOCK_DEADLINES || self.0.fit.load(Ordering::Acquire)
    }

    pub fn verdict(&self) -> Verdict {
        lock(&self.0.verdict).clone()
    }

    /// Stores a new verdict; returns the previous one.
    pub fn set_verdict(&self, verdict: Verdict) -> Verdict {
        self.0.fit.store(verdict.fit, Ordering::Release);
        std::mem::replace(&mut *lock(&self.0.verdict), verdict)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ahead_ms: i64) -> Offset {
        Offset {
            ahead_ms,
            uncertainty_ms: 1,
        }
    }

    #[test]
    fn the_one_node_off_is_unfit_and_the_others_stay_fit() {
        // Three nodes, the first an hour ahead: it sees both peers an hour behind it...
        let off = judge(500, 2, &[at(3_600_000), at(3_600_000)]);
        assert!(!off.fit && off.too_far);
        assert_eq!(off.offset_ms, Some(3_600_000));
        assert!(off.problem.contains("3600000 ms"), "{}", off.problem);
        // ...while each healthy node agrees with the other healthy one.
        let healthy = judge(500, 2, &[at(-3_600_000), at(20)]);
        assert!(healthy.fit, "{healthy:?}");
        assert!(healthy.problem.is_empty());
    }

    #[test]
    fn behind_counts_like_ahead_and_uncertainty_gives_the_benefit_of_the_doubt() {
        assert!(!judge(500, 2, &[at(-2_000), at(-2_000)]).fit);
        let wide = Offset {
            ahead_ms: 700,
            uncertainty_ms: 300,
        };
        assert!(judge(500, 1, &[wide]).fit);
        assert!(!judge(500, 1, &[at(700)]).fit);
    }

    #[test]
    fn a_healthy_node_that_measured_only_the_bad_one_is_undecided_not_too_far() {
        let v = judge(500, 2, &[at(-3_600_000)]);
        assert!(!v.fit && !v.too_far, "{v:?}");
        // The bad node with one peer measured cannot be sure either; with both it is.
        assert!(!judge(500, 2, &[at(3_600_000)]).too_far);
        assert!(judge(500, 2, &[at(3_600_000), at(3_600_000)]).too_far);
        // Five nodes: three of four peers disagreeing is a majority of them.
        assert!(!judge(500, 4, &[at(9_000), at(9_000), at(0)]).too_far);
        assert!(judge(500, 4, &[at(9_000), at(9_000), at(9_000)]).too_far);
    }

    #[test]
    fn too_few_measurements_are_not_enough() {
        let v = judge(500, 4, &[at(0)]);
        assert!(!v.fit && !v.too_far);
        assert!(v.problem.contains("with 1 of 4 peers"), "{}", v.problem);
        assert!(judge(500, 4, &[at(0), at(10)]).fit);
        assert!(judge(500, 0, &[]).fit);
    }

    #[test]
    fn an_offset_is_measured_from_the_midpoint_of_the_call() {
        let o = Offset::measure(1_000, 900, 1_020);
        assert_eq!(
            o,
            Offset {
                ahead_ms: 110,
                uncertainty_ms: 10
            }
        );
    }

    #[test]
    fn the_cluster_clock_runs_on_from_the_last_applied_clock() {
        let clocks = Clocks::new(&cluster_config::ClockSettings::default());
        assert_eq!(clocks.cluster_ms(), None);
        clocks.note_applied(5_000);
        clocks.note_applied(4_000);
        let now = clocks.cluster_ms().unwrap();
        assert!((5_000..5_500).contains(&now), "{now}");
        // A wall clock far ahead of an old applied clock wins; a lagging one never does.
        assert!(clocks.proposal_ms() >= clocks.wall_ms().min(now));
        assert!(clocks.proposal_ms() >= now);
    }

    #[test]
    fn the_test_skew_moves_the_wall_clock() {
        let skewed = Clocks::new(&cluster_config::ClockSettings {
            test_offset_ms: 3_600_000,
            ..Default::default()
        });
        let plain = Clocks::new(&cluster_config::ClockSettings::default());
        let gap = skewed.wall_ms() as i64 - plain.wall_ms() as i64;
        assert!((3_599_000..3_601_000).contains(&gap), "{gap}");
    }
}
