//! How far apart the cluster's clock and the harness's may be, for every check that compares
//! them (deadlines, sale windows).

/// How far the cluster may be from the harness's wall clock before it is an anomaly: the
/// nodes keep a leader within `max_offset_ms` (500 ms by default) of its peers, a read may
/// show the clock as applied a moment before, and the harness itself reads its clock a
/// scheduling delay after the answer. A second covers all of these and is still far below
/// the faults this is for (the `clock-skew` fault moves a clock by 2 s or an hour).
pub const TOLERANCE_MS: u64 = 1_000;
