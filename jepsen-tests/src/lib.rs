//! The chaos harness: namespaces and links, the nemesis, clients, the recorded history and its checkers.
//!
//! The harness half (root, network namespaces, real processes), behind the `jepsen` binary:
//! - [`topology`]: the bridge and one namespace per node, nftables fault tables, cleanup of
//!   stale namespaces at start, on drop, on panic and on Ctrl-C;
//! - [`cluster`]: node, gateway and delay-proxy processes per namespace, admin `Status`;
//! - [`proxy`]: the TCP proxy that adds delay and jitter (this kernel has no `tc netem`);
//! - [`nemesis`]: the seeded fault schedule (partitions, loss, delay, pause, kill);
//! - [`workload`] and [`clients`] (over [`http`]): two clients per gateway recording every op;
//! - [`run`]: the phases of one run and its report; [`ci`]: the CI suite; [`cli`]: the CLI.
//!
//! The checker half (no root, no network, no clock other than the checker's own
//! time budget) lives in:
//! - [`history`]: what the clients observed, one record per operation, as `history.jsonl` and text;
//! - [`model`]: the sequential specification of one SKU and its orders;
//! - [`linearizability`]: a Porcupine-style WGL search generic over a sequential model; its
//!   `inventory` instance checks each SKU's history against [`model`];
//! - [`invariants`]: cheap whole-history checks that still answer when the search times out;
//! - [`report`]: per-run statistics and verdicts, and the `jepsen: N passed, N failed` line;
//! - [`atomicity`]: the multi-item check that every order answer shows all its items;
//! - [`deadlines`]: reservation deadlines and order stamps against the harness's wall clock;
//! - [`sale_window`]: when the model may, must or must not see an order refused
//!   `sale_not_active`, given the harness's wall clock;
//! - [`cas_register`] and [`jepsen_log`]: a compare-and-set register model and a reader of
//!   Jepsen's op log, so `jepsen check` can judge histories other systems recorded.
//!
//! The checker half depends on no other workspace crate on purpose: the history records
//! HTTP-level observations against the API contract, so a bug shared with the server's own
//! types cannot hide itself from the checker. The harness uses `cluster-config` (to write the
//! configs the binaries read) and `proto` (only the admin `Status` call).

pub mod atomicity;
pub mod campaign;
pub mod cas_register;
pub mod ci;
pub mod cli;
pub mod clients;
pub mod clock_tolerance;
pub mod cluster;
pub mod deadlines;
pub mod feed;
pub mod feed_check;
pub mod history;
pub mod http;
pub mod invariants;
pub mod jepsen_log;
pub mod linearizability;
pub mod model;
pub mod nemesis;
pub mod proxy;
pub mod report;
pub mod rng;
pub mod run;
pub mod sale_window;
pub mod topology;
pub mod workload;

pub use history::{
    classify, classify_transport, Completion, History, HistoryError, Input, Op, OpKind, Output,
    TransportError,
};
pub use invariants::{InvariantReport, NodeFinal, Violation};
pub use linearizability::{check, check_on_wall_clock, CheckError, LinearizabilityReport};
pub use report::{RunReport, Summary};

/// The answer of one checker.
///
/// `Unknown` (the search ran out of time or memory) is not a pass: a run whose checker could
/// not decide has shown nothing, and a harness that let it through would pass every run it
/// made too big to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Pass,
    Fail,
    Unknown,
}

impl Verdict {
    /// Only `Pass` passes; `Unknown` counts as a failure.
    pub fn is_pass(self) -> bool {
        self == Verdict::Pass
    }

    /// Combines verdicts of independent parts: any failure fails, then any unknown is unknown.
    pub fn combine(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::Fail, _) | (_, Verdict::Fail) => Verdict::Fail,
            (Verdict::Unknown, _) | (_, Verdict::Unknown) => Verdict::Unknown,
            _ => Verdict::Pass,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Unknown => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
