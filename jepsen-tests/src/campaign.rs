//! `jepsen campaign`: many seeded runs, each with a workload, a fault mix and a cluster size
//! drawn from the campaign's seed, then one table: runs, operations, anomalies by kind, and
//! the seeds that failed (each re-runs alone with `jepsen --seed`). The last line is
//! `jepsen: N passed, N failed`, like `jepsen ci`.
//!
//! The same `--seed` draws the same plan, so a campaign's failures can be replayed run by run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::history::Completion;
use crate::nemesis::{Fault, Schedule};
use crate::report::Summary;
use crate::rng::Rng;
use crate::run::{run, RunOptions};
use crate::workload::Workload;

/// Fault mixes a run draws from: each family alone, and the pairs that hurt most together.
pub const FAULT_MIXES: [&str; 14] = [
    "partition",
    "pause",
    "kill",
    "power",
    "loss",
    "delay",
    "membership",
    "clock",
    "membership,kill",
    "clock,partition",
    "partition,kill",
    "pause,kill",
    "partition,loss,delay",
    "all",
];

#[derive(Clone, Debug)]
pub struct CampaignOptions {
    pub runs: u32,
    pub seed: u64,
    pub time_limit: Duration,
    pub base_dir: PathBuf,
    pub node_bin: PathBuf,
    pub gateway_bin: PathBuf,
    pub self_bin: PathBuf,
    pub check_budget: Duration,
}

/// One run of the plan: what the campaign's seed chose for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRun {
    pub seed: u64,
    pub nodes: u32,
    pub workload: Workload,
    pub faults: &'static str,
}

/// The campaign's runs, drawn from its seed alone: one in five runs on five nodes.
pub fn plan(runs: u32, seed: u64) -> Vec<PlannedRun> {
    let mut rng = Rng::fork(seed, 0xCA3B);
    (0..runs)
        .map(|_| PlannedRun {
            seed: rng.next_u64() % 1_000_000_000_000,
            nodes: if rng.percent(20) { 5 } else { 3 },
            workload: *rng.pick(&Workload::ALL),
            faults: FAULT_MIXES[rng.below(FAULT_MIXES.len() as u64) as usize],
        })
        .collect()
}

/// What one finished run adds to the table.
struct Row {
    planned: PlannedRun,
    passed: bool,
    ok: usize,
    info: usize,
    fail: usize,
    /// The checks that failed (`run error` when the run could not complete): the kinds.
    anomalies: Vec<String>,
    /// Why the run could not complete.
    error: Option<String>,
}

pub async fn campaign(options: &CampaignOptions) -> Summary {
    let started = Instant::now();
    let planned = plan(options.runs, options.seed);
    println!(
        "jepsen campaign: {} runs of {}s, seed {}; run dirs under {}",
        planned.len(),
        options.time_limit.as_secs(),
        options.seed,
        options.base_dir.display()
    );
    let mut summary = Summary::default();
    let mut rows = Vec::new();
    for (i, p) in planned.into_iter().enumerate() {
        let label = format!("{}n-{}-{}", p.nodes, p.workload.name(), p.faults);
        println!(
            "\n=== run {}/{}: {label} (seed {}) ===",
            i + 1,
            options.runs,
            p.seed
        );
        let faults = Fault::parse_list(p.faults, p.nodes).expect("the mixes parse");
        let outcome = run(&RunOptions {
            name: label.clone(),
            nodes: p.nodes,
            workload: p.workload,
            faults,
            time_limit: options.time_limit,
            seed: p.seed,
            run_dir: options
                .base_dir
                .join(format!("{:03}-{label}-s{}", i + 1, p.seed)),
            node_bin: options.node_bin.clone(),
            gateway_bin: options.gateway_bin.clone(),
            self_bin: options.self_bin.clone(),
            request_deadline: Duration::from_secs(2),
            check_budget: options.check_budget,
            min_ok_ops: RunOptions::default_min_ok(options.time_limit),
            schedule: Schedule::default(),
        })
        .await;
        let count = |c| outcome.report.stats.count(c);
        let mut anomalies = outcome.failed_checks.clone();
        if outcome.report.error.is_some() {
            anomalies.push("run error".to_owned());
        }
        if !outcome.passed() && anomalies.is_empty() {
            // Unknown verdicts (an exhausted search budget) fail a run without a failed check.
            anomalies.push("inconclusive".to_owned());
        }
        rows.push(Row {
            planned: p,
            passed: outcome.passed(),
            ok: count(Completion::Ok),
            info: count(Completion::Info),
            fail: count(Completion::Fail),
            anomalies,
            error: outcome.report.error.clone(),
        });
        summary.runs.push(outcome.report);
    }
    print_table(&rows, started.elapsed());
    summary
}

fn print_table(rows: &[Row], elapsed: Duration) {
    println!(
        "\n=== jepsen campaign summary ({:.0}s wall time) ===",
        elapsed.as_secs_f64()
    );
    println!(
        "{:>4}  {:<4}  {:>13}  {:>5}  {:<10}  {:<20}  {:>7}  {:>6}  {:>6}  anomalies",
        "run", "", "seed", "nodes", "workload", "faults", "ok", "info", "fail"
    );
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        println!(
            "{:>4}  {:<4}  {:>13}  {:>5}  {:<10}  {:<20}  {:>7}  {:>6}  {:>6}  {}",
            i + 1,
            if row.passed { "PASS" } else { "FAIL" },
            row.planned.seed,
            row.planned.nodes,
            row.planned.workload.name(),
            row.planned.faults,
            row.ok,
            row.info,
            row.fail,
            match (&row.error, row.anomalies.is_empty()) {
                (Some(error), _) => format!("run error: {error}"),
                (None, true) => "-".to_owned(),
                (None, false) => row.anomalies.join("; "),
            }
        );
        for kind in &row.anomalies {
            *by_kind.entry(kind.as_str()).or_default() += 1;
        }
    }
    let ops: usize = rows.iter().map(|r| r.ok + r.info + r.fail).sum();
    println!(
        "\nruns: {}, operations: {ops} ({} ok, {} info, {} fail)",
        rows.len(),
        rows.iter().map(|r| r.ok).sum::<usize>(),
        rows.iter().map(|r| r.info).sum::<usize>(),
        rows.iter().map(|r| r.fail).sum::<usize>(),
    );
    if by_kind.is_empty() {
        println!("anomalies: none");
    } else {
        println!("anomalies by kind:");
        for (kind, n) in &by_kind {
            println!("  {n:>4}  {kind}");
        }
    }
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| !r.passed)
        .map(|r| {
            format!(
                "{} (--nodes {} --workload {} --faults {})",
                r.planned.seed,
                r.planned.nodes,
                r.planned.workload.name(),
                r.planned.faults
            )
        })
        .collect();
    if !failed.is_empty() {
        println!("seeds of failed runs, each replayable alone with `jepsen --seed`:");
        for seed in failed {
            println!("  {seed}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_names_its_plan() {
        assert_eq!(plan(50, 7), plan(50, 7));
        assert_ne!(plan(50, 7), plan(50, 8));
    }

    #[test]
    fn a_long_plan_covers_every_workload_mix_and_size() {
        let runs = plan(200, 1);
        for w in Workload::ALL {
            assert!(runs.iter().any(|r| r.workload == w), "{w:?} never drawn");
        }
        for mix in FAULT_MIXES {
            assert!(runs.iter().any(|r| r.faults == mix), "{mix} never drawn");
        }
        let five = runs.iter().filter(|r| r.nodes == 5).count();
        assert!((20..=60).contains(&five), "{five} five-node runs of 200");
    }

    #[test]
    fn every_mix_parses_for_both_sizes() {
        for mix in FAULT_MIXES {
            for nodes in [3, 5] {
                Fault::parse_list(mix, nodes).unwrap_or_else(|e| panic!("{mix}: {e}"));
            }
        }
    }
}
