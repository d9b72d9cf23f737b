//! `jepsen ci`: the short suite CI runs as root. Three-node runs of about a minute for
//! partitions, pauses, kills and a mix of everything, one five-node majorities-ring run, each
//! with a fresh seed printed first; then the deliberately broken node (built with the node's
//! `stale-reads` feature, which answers reads from local state without the read-index
//! barrier), run against a leader-isolating partition: that run MUST be reported as a failure,
//! so "caught" counts as a pass and "not caught" as a failure. The last line is
//! `jepsen: N passed, N failed`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::nemesis::{Fault, Schedule};
use crate::report::{CheckerResult, OpStats, RunReport, Summary};
use crate::rng::Rng;
use crate::run::{run, RunOptions};
use crate::workload::Workload;
use crate::Verdict;

#[derive(Clone, Debug)]
pub struct CiOptions {
    pub time_limit: Duration,
    /// The broken-node run's time limit.
    pub broken_time_limit: Duration,
    pub base_dir: PathBuf,
    pub node_bin: PathBuf,
    pub gateway_bin: PathBuf,
    pub self_bin: PathBuf,
    /// The workspace to build the broken node from.
    pub workspace: PathBuf,
    pub cargo: String,
    /// Where the broken node is built (kept apart from the normal target dir).
    pub broken_target_dir: PathBuf,
    /// Use this broken node binary instead of building one.
    pub broken_node_bin: Option<PathBuf>,
    pub check_budget: Duration,
}

struct Planned {
    label: &'static str,
    nodes: u32,
    workload: Workload,
    faults: &'static str,
}

const PLAN: [Planned; 5] = [
    Planned {
        label: "partitions",
        nodes: 3,
        workload: Workload::Register,
        faults: "partition",
    },
    Planned {
        label: "pauses",
        nodes: 3,
        workload: Workload::FlashSale,
        faults: "pause",
    },
    Planned {
        label: "kills",
        nodes: 3,
        workload: Workload::MultiItem,
        faults: "kill,power",
    },
    Planned {
        label: "mix",
        nodes: 3,
        workload: Workload::Retry,
        faults: "all",
    },
    Planned {
        label: "five-node-ring",
        nodes: 5,
        workload: Workload::Register,
        faults: "majorities-ring",
    },
];

/// The cargo invocation of the broken node: the same packages as the CI's release build
/// (`-p node -p gateway -p jepsen-tests`, so dependency features unify the same way and the
/// copied artifacts are reused), plus the feature.
pub const BROKEN_BUILD_ARGS: [&str; 11] = [
    "build",
    "--release",
    "-p",
    "node",
    "-p",
    "gateway",
    "-p",
    "jepsen-tests",
    "--features",
    "node/stale-reads",
    "--target-dir",
];

/// Starts building the stale-reads node in the background, at the lowest CPU priority so
/// the runs meanwhile keep the cores. The target dir starts as a copy of this binary's
/// profile dir (when it is one), so only the `node` crate is compiled again.
fn start_broken_build(
    options: &CiOptions,
    log: &std::path::Path,
) -> anyhow::Result<tokio::process::Child> {
    let target = &options.broken_target_dir;
    let release = target.join("release");
    let own_profile = options.self_bin.parent().map(std::path::Path::to_path_buf);
    if release.exists() {
        std::fs::remove_dir_all(&release)
            .with_context(|| format!("cannot clear {}", release.display()))?;
    }
    std::fs::create_dir_all(target)?;
    if let Some(profile) = own_profile.filter(|p| p.join(".fingerprint").is_dir()) {
        let copied = std::process::Command::new("cp")
            .arg("-a")
            .arg(&profile)
            .arg(&release)
            .status()
            .context("cannot run cp")?;
        if !copied.success() {
            bail!(
                "copying {} to {} failed",
                profile.display(),
                release.display()
            );
        }
    }
    println!(
        "building the broken node in the background (nice 19, log {}): {} {} {}",
        log.display(),
        options.cargo,
        BROKEN_BUILD_ARGS.join(" "),
        target.display()
    );
    let log_file = std::fs::File::create(log)?;
    let mut command = tokio::process::Command::new(&options.cargo);
    command
        .current_dir(&options.workspace)
        .args(BROKEN_BUILD_ARGS)
        .arg(target)
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true);
    // SAFETY: setpriority is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::setpriority(libc::PRIO_PROCESS as _, 0, 19);
            Ok(())
        });
    }
    command
        .spawn()
        .with_context(|| format!("cannot run {}", options.cargo))
}

/// Waits for the background build; returns the broken node's path.
async fn finish_broken_build(
    options: &CiOptions,
    build: anyhow::Result<tokio::process::Child>,
    log: &std::path::Path,
    started: Instant,
) -> anyhow::Result<PathBuf> {
    let status = build?.wait().await?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        for line in tail.iter().rev() {
            println!("  | {line}");
        }
        bail!(
            "building the stale-reads node failed ({status}); see {}",
            log.display()
        );
    }
    let bin = options
        .broken_target_dir
        .join("release")
        .join("flashstock-node");
    if !bin.is_file() {
        bail!("the build left no {}", bin.display());
    }
    println!(
        "broken node built: {} ({:.0}s after the build started)",
        bin.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(bin)
}

/// Runs the suite; the summary's last line is `jepsen: N passed, N failed`.
pub async fn ci(options: &CiOptions) -> Summary {
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut lines = Vec::new();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = options.base_dir.join(format!("ci-{stamp}"));
    println!(
        "jepsen ci: {} runs of {}s, then the broken node; run dirs under {}",
        PLAN.len(),
        options.time_limit.as_secs(),
        base.display()
    );

    if let Err(e) = std::fs::create_dir_all(&base) {
        println!("cannot create {}: {e}", base.display());
    }
    let build_log = base.join("broken-build.log");
    let build_started = Instant::now();
    let build = match &options.broken_node_bin {
        Some(_) => None,
        None => Some(start_broken_build(options, &build_log)),
    };

    let runs = PLAN.len() + 1;
    for (i, planned) in PLAN.iter().enumerate() {
        let seed = Rng::fresh_seed();
        println!(
            "\n=== run {}/{runs}: {} (seed {seed}) ===",
            i + 1,
            planned.label
        );
        let faults =
            Fault::parse_list(planned.faults, planned.nodes).expect("the plan's faults parse");
        let run_options = RunOptions {
            name: planned.label.to_owned(),
            nodes: planned.nodes,
            workload: planned.workload,
            faults,
            time_limit: options.time_limit,
            seed,
            run_dir: base.join(format!("{}-{}", i + 1, planned.label)),
            node_bin: options.node_bin.clone(),
            gateway_bin: options.gateway_bin.clone(),
            self_bin: options.self_bin.clone(),
            request_deadline: Duration::from_secs(2),
            check_budget: options.check_budget,
            min_ok_ops: RunOptions::default_min_ok(options.time_limit),
            schedule: Schedule::default(),
        };
        let outcome = run(&run_options).await;
        lines.push(format!(
            "{}  {:<16} {} nodes, {}, {}, seed {seed}, {}",
            if outcome.passed() { "PASS" } else { "FAIL" },
            planned.label,
            planned.nodes,
            planned.workload,
            planned.faults,
            outcome.run_dir.display()
        ));
        summary.runs.push(outcome.report);
    }

    // The broken node must be caught.
    let seed = Rng::fresh_seed();
    println!("\n=== run {runs}/{runs}: broken node, stale-reads (seed {seed}) ===");
    let label = "broken-node";
    let bin = match (build, &options.broken_node_bin) {
        (_, Some(bin)) => Ok(bin.clone()),
        (Some(build), None) => finish_broken_build(options, build, &build_log, build_started).await,
        (None, None) => Err(anyhow::anyhow!("no broken node to run")),
    };
    let report = match bin {
        Err(e) => RunReport::errored(label, &format!("{e:#}")),
        Ok(bin) => {
            let run_options = RunOptions {
                name: "stale-reads node under partition-leader".to_owned(),
                nodes: 3,
                workload: Workload::Register,
                faults: vec![Fault::PartitionLeader],
                time_limit: options.broken_time_limit,
                seed,
                run_dir: base.join(format!("{runs}-{label}")),
                node_bin: bin,
                gateway_bin: options.gateway_bin.clone(),
                self_bin: options.self_bin.clone(),
                request_deadline: Duration::from_secs(2),
                check_budget: options.check_budget,
                min_ok_ops: RunOptions::default_min_ok(options.broken_time_limit),
                // Long isolations: the new leader must win an election and take writes while
                // the old one still answers reads.
                schedule: Schedule {
                    initial: Duration::from_secs(2),
                    hold: (Duration::from_secs(5), Duration::from_secs(8)),
                    quiet: (Duration::from_secs(2), Duration::from_secs(3)),
                },
            };
            let outcome = run(&run_options).await;
            // Caught only if a wrong read explains a failure: a failure of another kind (a
            // product bug the correct build shares) would prove nothing about stale reads.
            let caught = outcome.report.error.is_none() && !outcome.read_anomalies.is_empty();
            let summary_text = if caught {
                format!(
                    "reported as a failure by: {}; {} read anomalies, e.g. {}",
                    outcome.failed_checks.join(", "),
                    outcome.read_anomalies.len(),
                    outcome.read_anomalies[0]
                )
            } else if let Some(error) = &outcome.report.error {
                format!("the run did not complete: {error}")
            } else if !outcome.failed_checks.is_empty() {
                format!(
                    "NOT caught as stale reads: only {} failed, with no anomaly a wrong read explains",
                    outcome.failed_checks.join(", ")
                )
            } else {
                "NOT caught: every checker passed a node that serves stale reads".to_owned()
            };
            let report = RunReport {
                name: label.to_owned(),
                stats: OpStats::default(),
                checks: vec![CheckerResult {
                    name: "broken build caught".to_owned(),
                    verdict: if caught { Verdict::Pass } else { Verdict::Fail },
                    summary: summary_text,
                    detail: String::new(),
                }],
                error: None,
            };
            println!(
                "broken node: {}",
                if caught {
                    "caught (expected)"
                } else {
                    "NOT caught"
                }
            );
            report
        }
    };
    let caught = report.passed();
    lines.push(format!(
        "{}  {:<16} 3 nodes, register, partition-leader, stale-reads node, seed {seed}: {}",
        if caught { "PASS" } else { "FAIL" },
        label,
        report.checks.first().map_or_else(
            || report.error.clone().unwrap_or_default(),
            |c| c.summary.clone()
        )
    ));
    summary.runs.push(report);

    println!(
        "\n=== jepsen ci summary ({:.0}s wall time) ===",
        started.elapsed().as_secs_f64()
    );
    for line in &lines {
        println!("{line}");
    }
    summary
}
