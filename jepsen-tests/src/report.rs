//! What a run prints: op counts and latency percentiles per op kind and completion type, each
//! checker's verdict, and, over all runs, the closing `jepsen: N passed, N failed` line.
//!
//! A run passes only if it ran without error, at least one checker looked at it, and every
//! checker passed; `Unknown` is a failure.

use std::collections::BTreeMap;
use std::fmt;

use crate::history::{fmt_duration_ns, Completion, History, OpKind};
use crate::invariants::InvariantReport;
use crate::linearizability::{CheckError, LinearizabilityReport};
use crate::Verdict;

/// Latency of a group of ops (invocation to completion; for `info`, until the client gave up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyStats {
    pub count: usize,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

impl LatencyStats {
    /// Nearest-rank percentiles; `None` for no samples.
    pub fn from_samples(mut samples: Vec<u64>) -> Option<LatencyStats> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |p: usize| -> u64 {
            // ceil(p/100 * n) as a 1-based rank.
            let r = (p * samples.len()).div_ceil(100).max(1);
            samples[r - 1]
        };
        Some(LatencyStats {
            count: samples.len(),
            p50_ns: rank(50),
            p99_ns: rank(99),
            max_ns: samples[samples.len() - 1],
        })
    }
}

/// Counts and latencies per (op kind, completion type).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpStats {
    pub groups: BTreeMap<(OpKind, Completion), LatencyStats>,
}

impl OpStats {
    pub fn of(history: &History) -> OpStats {
        let mut samples: BTreeMap<(OpKind, Completion), Vec<u64>> = BTreeMap::new();
        for op in history.ops() {
            samples
                .entry((op.kind(), op.completion))
                .or_default()
                .push(op.latency_ns());
        }
        OpStats {
            groups: samples
                .into_iter()
                .filter_map(|(key, s)| LatencyStats::from_samples(s).map(|stats| (key, stats)))
                .collect(),
        }
    }

    pub fn count(&self, completion: Completion) -> usize {
        self.groups
            .iter()
            .filter(|((_, c), _)| *c == completion)
            .map(|(_, s)| s.count)
            .sum()
    }
}

impl fmt::Display for OpStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  {:<12} {:<5} {:>7} {:>9} {:>9} {:>9}",
            "op", "type", "count", "p50", "p99", "max"
        )?;
        for ((kind, completion), s) in &self.groups {
            writeln!(
                f,
                "  {:<12} {:<5} {:>7} {:>9} {:>9} {:>9}",
                kind.as_str(),
                completion.as_str(),
                s.count,
                fmt_duration_ns(s.p50_ns),
                fmt_duration_ns(s.p99_ns),
                fmt_duration_ns(s.max_ns)
            )?;
        }
        Ok(())
    }
}

/// One checker's verdict with a one-line explanation and optional detail lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckerResult {
    pub name: String,
    pub verdict: Verdict,
    pub summary: String,
    pub detail: String,
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub name: String,
    pub stats: OpStats,
    pub checks: Vec<CheckerResult>,
    /// The run could not complete (setup failed, the history could not be loaded ...).
    pub error: Option<String>,
}

impl RunReport {
    pub fn new(name: &str, history: &History) -> RunReport {
        RunReport {
            name: name.to_owned(),
            stats: OpStats::of(history),
            checks: Vec::new(),
            error: None,
        }
    }

    /// A run that failed before it could be checked.
    pub fn errored(name: &str, error: &str) -> RunReport {
        RunReport {
            name: name.to_owned(),
            stats: OpStats::default(),
            checks: Vec::new(),
            error: Some(error.to_owned()),
        }
    }

    /// Adds the linearizability checker's result; a history it cannot check is a failure.
    pub fn add_linearizability(&mut self, result: &Result<LinearizabilityReport, CheckError>) {
        let check = match result {
            Ok(report) => {
                let verdict = report.verdict();
                let ops: usize = report.skus.iter().map(|s| s.ops).sum();
                let failing: Vec<&str> = report
                    .skus
                    .iter()
                    .filter(|s| !s.verdict.is_pass())
                    .map(|s| s.sku.as_str())
                    .collect();
                let skus: usize = report.skus.iter().map(|s| s.skus).sum();
                let groups = report.skus.len();
                let mut summary = if skus == groups {
                    format!("{skus} SKUs, {ops} ops")
                } else {
                    format!("{skus} SKUs in {groups} groups, {ops} ops")
                };
                if !failing.is_empty() {
                    summary.push_str(&format!("; not passing: {}", failing.join(", ")));
                }
                CheckerResult {
                    name: "linearizability".to_owned(),
                    verdict,
                    summary,
                    detail: if verdict.is_pass() {
                        String::new()
                    } else {
                        report.to_string()
                    },
                }
            }
            Err(error) => CheckerResult {
                name: "linearizability".to_owned(),
                verdict: Verdict::Fail,
                summary: format!("history cannot be checked: {error}"),
                detail: String::new(),
            },
        };
        self.checks.push(check);
    }

    /// Adds one result per invariant.
    pub fn add_invariants(&mut self, report: &InvariantReport) {
        for (invariant, violations) in &report.results {
            let verdict = if violations.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail
            };
            let summary = match violations.first() {
                None => String::new(),
                Some(first) => format!("{} violations; first: {}", violations.len(), first.text),
            };
            self.checks.push(CheckerResult {
                name: format!("invariant {}", invariant.name()),
                verdict,
                summary,
                detail: String::new(),
            });
        }
    }

    /// Passes only if it ran, was checked, and every check passed (`Unknown` fails).
    pub fn passed(&self) -> bool {
        self.error.is_none()
            && !self.checks.is_empty()
            && self.checks.iter().all(|c| c.verdict.is_pass())
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "run {}: {}",
            self.name,
            if self.passed() { "PASS" } else { "FAIL" }
        )?;
        if let Some(error) = &self.error {
            writeln!(f, "  error: {error}")?;
        }
        if !self.stats.groups.is_empty() {
            write!(f, "{}", self.stats)?;
        }
        if self.error.is_none() && self.checks.is_empty() {
            writeln!(f, "  no checker ran")?;
        }
        for check in &self.checks {
            write!(f, "  {}: {}", check.name, check.verdict)?;
            if !check.summary.is_empty() {
                write!(f, " ({})", check.summary)?;
            }
            writeln!(f)?;
            for line in check.detail.lines() {
                writeln!(f, "    {line}")?;
            }
        }
        Ok(())
    }
}

/// All runs; its text ends with `jepsen: N passed, N failed`.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub runs: Vec<RunReport>,
}

impl Summary {
    pub fn passed(&self) -> usize {
        self.runs.iter().filter(|r| r.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.runs.len() - self.passed()
    }

    /// Whether the process should exit 0: at least one run, none failed.
    pub fn all_passed(&self) -> bool {
        !self.runs.is_empty() && self.failed() == 0
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for run in &self.runs {
            writeln!(f, "{run}")?;
        }
        write!(
            f,
            "jepsen: {} passed, {} failed",
            self.passed(),
            self.failed()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Input, Op, Output, SkuView};
    use crate::invariants;

    #[test]
    fn percentiles_use_nearest_rank() {
        let s = LatencyStats::from_samples((1..=100).rev().collect()).unwrap();
        assert_eq!((s.count, s.p50_ns, s.p99_ns, s.max_ns), (100, 50, 99, 100));
        let one = LatencyStats::from_samples(vec![7]).unwrap();
        assert_eq!((one.p50_ns, one.p99_ns), (7, 7));
        assert!(LatencyStats::from_samples(Vec::new()).is_none());
    }

    fn tiny_history() -> History {
        let mut h = History::new();
        h.push(Op::ok(
            0,
            Input::create_sku("A", 1),
            0,
            2_000_000,
            201,
            None,
        ))
        .unwrap();
        h.push(Op::ok(
            1,
            Input::read_sku("A"),
            3_000_000,
            4_000_000,
            200,
            Some(Output::Sku(SkuView {
                total: 1,
                available: 1,
                reserved: 0,
                sold: 0,
                refunded: 0,
                revision: 1,
            })),
        ))
        .unwrap();
        h.push(Op::info(
            2,
            Input::order("o", "u", "A", 1),
            5_000_000,
            6_000_000_000,
        ))
        .unwrap();
        // Final reads, after the last write completed.
        h.push(Op::ok(
            3,
            Input::read_order("A", "o"),
            7_000_000_000,
            7_000_000_100,
            404,
            Some(Output::error("order_not_found")),
        ))
        .unwrap();
        h.push(Op::ok(
            3,
            Input::read_sku("A"),
            7_000_000_200,
            7_000_000_300,
            200,
            Some(Output::Sku(SkuView {
                total: 1,
                available: 1,
                reserved: 0,
                sold: 0,
                refunded: 0,
                revision: 1,
            })),
        ))
        .unwrap();
        h
    }

    #[test]
    fn summary_counts_runs_and_ends_with_the_jepsen_line() {
        let h = tiny_history();
        let mut good = RunReport::new("good", &h);
        good.add_linearizability(&crate::check(&h, std::time::Duration::from_secs(5)));
        good.add_invariants(&invariants::check_all(
            &h,
            &[invariants::NodeFinal {
                node: 1,
                last_applied: Some(3),
                digest: Some("d at 3".into()),
            }],
            2,
        ));
        assert!(good.passed(), "{good}");
        let stats = &good.stats;
        assert_eq!(stats.count(Completion::Ok), 4);
        assert_eq!(stats.count(Completion::Info), 1);

        let mut unknown = RunReport::new("unknown", &h);
        unknown.add_linearizability(&crate::check(&h, std::time::Duration::ZERO));
        assert!(!unknown.passed());

        let unchecked = RunReport::new("unchecked", &h);
        assert!(!unchecked.passed());

        let summary = Summary {
            runs: vec![
                good,
                unknown,
                unchecked,
                RunReport::errored("setup", "ip netns add failed"),
            ],
        };
        let text = summary.to_string();
        assert!(text.ends_with("\njepsen: 1 passed, 3 failed"), "{text}");
        assert!(text.contains("run good: PASS"), "{text}");
        assert!(text.contains("linearizability: UNKNOWN"), "{text}");
        assert!(text.contains("error: ip netns add failed"), "{text}");
        assert!(text.contains("read_sku     ok"), "{text}");
        assert!(!summary.all_passed());
    }
}
