//! `jepsen ci`: the short suite CI runs as root. Three-node runs of about a minute for
//! partitions, pauses, kills and a mix of everything, one five-node majorities-ring run (the
//! `sale-window` workload), each with a fresh seed printed first; then two deliberately
//! broken nodes, built in the background meanwhile: the node's `stale-reads` feature (reads
//! from local state without the read-index barrier) run against a leader-isolating
//! partition, and its
//! `wall-clock-deadlines` feature (a node whose clock is off still leads and stamps deadlines
//! with its own wall clock) run with the leader restarted an hour ahead. Each of those runs
//! MUST be reported as a failure by the anomalies its bug explains, so "caught" counts as a
//! pass and "not caught" as a failure. The last line is `jepsen: N passed, N failed`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::sync::oneshot;

use crate::nemesis::{Fault, Schedule};
use crate::report::{CheckerResult, OpStats, RunReport, Summary};
use crate::rng::Rng;
use crate::run::{run, RunOptions, RunOutcome};
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
    /// Where the broken nodes are built (kept apart from the normal target dir).
    pub broken_target_dir: PathBuf,
    /// Use this stale-reads node binary instead of building one.
    pub broken_node_bin: Option<PathBuf>,
    /// Use this wall-clock-deadlines node binary instead of building one.
    pub wall_clock_node_bin: Option<PathBuf>,
    pub check_budget: Duration,
}

impl CiOptions {
    fn prebuilt(&self, broken: Broken) -> Option<&PathBuf> {
        match broken {
            Broken::StaleReads => self.broken_node_bin.as_ref(),
            Broken::WallClockDeadlines => self.wall_clock_node_bin.as_ref(),
        }
    }
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
        // `partitions` already runs `register`; the ring's flapping leaders are a good
        // test of sale windows judged on a clock each new leader stamps.
        workload: Workload::SaleWindow,
        faults: "majorities-ring",
    },
];

/// A deliberately broken node the suite must catch: the node's feature that breaks it, and
/// the run that must report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// `stale-reads`: reads from any node's local state, without the read-index barrier.
    StaleReads,
    /// `wall-clock-deadlines`: a node whose clock is off still leads, and stamps proposals
    /// (the deadlines) with its own wall clock.
    WallClockDeadlines,
}

impl Broken {
    pub const ALL: [Broken; 2] = [Broken::StaleReads, Broken::WallClockDeadlines];

    pub fn feature(self) -> &'static str {
        match self {
            Broken::StaleReads => "stale-reads",
            Broken::WallClockDeadlines => "wall-clock-deadlines",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Broken::StaleReads => "broken-node",
            Broken::WallClockDeadlines => "broken-clock",
        }
    }

    /// The run's plan, as the summary line shows it.
    fn plan(self) -> &'static str {
        match self {
            Broken::StaleReads => "3 nodes, register, partition-leader, stale-reads node",
            Broken::WallClockDeadlines => {
                "3 nodes, register, clock-skew-leader +1h, wall-clock-deadlines node"
            }
        }
    }

    fn run_options(
        self,
        options: &CiOptions,
        seed: u64,
        run_dir: PathBuf,
        bin: PathBuf,
    ) -> RunOptions {
        let (name, faults, schedule) = match self {
            Broken::StaleReads => (
                "stale-reads node under partition-leader",
                vec![Fault::PartitionLeader],
                // Long isolations: the new leader must win an election and take writes while
                // the old one still answers reads.
                Schedule {
                    initial: Duration::from_secs(2),
                    hold: (Duration::from_secs(5), Duration::from_secs(8)),
                    quiet: (Duration::from_secs(2), Duration::from_secs(3)),
                    ..Schedule::default()
                },
            ),
            Broken::WallClockDeadlines => (
                "wall-clock-deadlines node under clock-skew-leader +1h",
                vec![Fault::ClockSkewLeader],
                // The leader restarted an hour ahead, several times: one proposal it stamps
                // moves the cluster clock, and the harness must notice.
                Schedule {
                    initial: Duration::from_secs(3),
                    hold: (Duration::from_secs(4), Duration::from_secs(6)),
                    quiet: (Duration::from_secs(2), Duration::from_secs(3)),
                    clock_skews_ms: &[3_600_000],
                },
            ),
        };
        RunOptions {
            name: name.to_owned(),
            nodes: 3,
            workload: Workload::Register,
            faults,
            time_limit: options.broken_time_limit,
            seed,
            run_dir,
            node_bin: bin,
            gateway_bin: options.gateway_bin.clone(),
            self_bin: options.self_bin.clone(),
            request_deadline: Duration::from_secs(2),
            check_budget: options.check_budget,
            min_ok_ops: RunOptions::default_min_ok(options.broken_time_limit),
            schedule,
        }
    }

    /// The anomalies that only this bug explains. Caught only if there are some: a failure
    /// of another kind (a product bug the correct build shares) would prove nothing.
    fn anomalies(self, outcome: &RunOutcome) -> (&'static str, &[String]) {
        match self {
            Broken::StaleReads => ("read", &outcome.read_anomalies),
            Broken::WallClockDeadlines => ("deadline", &outcome.deadline_anomalies),
        }
    }
}

/// The cargo invocation of a broken node, before `<feature> --target-dir <dir>`: the same
/// packages as the CI's release build (`-p node -p gateway -p jepsen-tests`, so dependency
/// features unify the same way and the copied artifacts are reused).
pub const BROKEN_BUILD_ARGS: [&str; 9] = [
    "build",
    "--release",
    "-p",
    "node",
    "-p",
    "gateway",
    "-p",
    "jepsen-tests",
    "--features",
];

/// Per broken node still to build: where its result arrives.
type PendingBuilds = Vec<(Broken, oneshot::Receiver<anyhow::Result<PathBuf>>)>;

/// Starts building the broken nodes in the background, one after the other in one target
/// dir, at the lowest CPU priority so the runs meanwhile keep the cores. The target dir
/// starts as a copy of this binary's profile dir (when it is one), so each build compiles
/// only the `node` crate again; each binary is copied to `release/flashstock-node-<feature>`
/// before the next build replaces `release/flashstock-node`.
fn start_broken_builds(options: &CiOptions, wanted: &[Broken], logs: &Path) -> PendingBuilds {
    let mut pending = Vec::new();
    let mut senders = Vec::new();
    for &broken in wanted {
        let (tx, rx) = oneshot::channel();
        pending.push((broken, rx));
        senders.push((broken, tx));
    }
    if senders.is_empty() {
        return pending;
    }
    let options = options.clone();
    let logs = logs.to_path_buf();
    tokio::spawn(async move {
        if let Err(e) = prepare_broken_target(&options) {
            for (_, tx) in senders {
                let _ = tx.send(Err(anyhow::anyhow!("{e:#}")));
            }
            return;
        }
        for (broken, tx) in senders {
            let log = logs.join(format!("broken-build-{}.log", broken.feature()));
            let _ = tx.send(build_broken(&options, broken, &log).await);
        }
    });
    pending
}

fn prepare_broken_target(options: &CiOptions) -> anyhow::Result<()> {
    let target = &options.broken_target_dir;
    let release = target.join("release");
    let own_profile = options.self_bin.parent().map(Path::to_path_buf);
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
    Ok(())
}

/// Builds one broken node; returns its path.
async fn build_broken(options: &CiOptions, broken: Broken, log: &Path) -> anyhow::Result<PathBuf> {
    let started = Instant::now();
    let target = &options.broken_target_dir;
    let feature = format!("node/{}", broken.feature());
    println!(
        "building the {} node in the background (nice 19, log {}): {} {} {feature} --target-dir {}",
        broken.feature(),
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
        .arg(&feature)
        .arg("--target-dir")
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
    let status = command
        .spawn()
        .with_context(|| format!("cannot run {}", options.cargo))?
        .wait()
        .await?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        for line in tail.iter().rev() {
            println!("  | {line}");
        }
        bail!(
            "building the {} node failed ({status}); see {}",
            broken.feature(),
            log.display()
        );
    }
    let built = target.join("release").join("flashstock-node");
    let bin = target
        .join("release")
        .join(format!("flashstock-node-{}", broken.feature()));
    std::fs::copy(&built, &bin)
        .with_context(|| format!("cannot copy {} to {}", built.display(), bin.display()))?;
    println!(
        "{} node built: {} ({:.0}s after its build started)",
        broken.feature(),
        bin.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(bin)
}

/// Runs one broken node; the report passes only if the run caught it.
async fn run_broken(
    options: &CiOptions,
    broken: Broken,
    bin: anyhow::Result<PathBuf>,
    seed: u64,
    run_dir: PathBuf,
) -> RunReport {
    let label = broken.label();
    let bin = match bin {
        Ok(bin) => bin,
        Err(e) => return RunReport::errored(label, &format!("{e:#}")),
    };
    let outcome = run(&broken.run_options(options, seed, run_dir, bin)).await;
    let (kind, anomalies) = broken.anomalies(&outcome);
    let caught = outcome.report.error.is_none() && !anomalies.is_empty();
    let summary_text = if caught {
        format!(
            "reported as a failure by: {}; {} {kind} anomalies, e.g. {}",
            outcome.failed_checks.join(", "),
            anomalies.len(),
            anomalies[0]
        )
    } else if let Some(error) = &outcome.report.error {
        format!("the run did not complete: {error}")
    } else if !outcome.failed_checks.is_empty() {
        format!(
            "NOT caught as {}: only {} failed, with no {kind} anomaly it explains",
            broken.feature(),
            outcome.failed_checks.join(", ")
        )
    } else {
        format!(
            "NOT caught: every checker passed a {} node",
            broken.feature()
        )
    };
    println!(
        "{} node: {}",
        broken.feature(),
        if caught {
            "caught (expected)"
        } else {
            "NOT caught"
        }
    );
    RunReport {
        name: label.to_owned(),
        stats: OpStats::default(),
        checks: vec![CheckerResult {
            name: "broken build caught".to_owned(),
            verdict: if caught { Verdict::Pass } else { Verdict::Fail },
            summary: summary_text,
            detail: String::new(),
        }],
        error: None,
    }
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
        "jepsen ci: {} runs of {}s, then the broken nodes; run dirs under {}",
        PLAN.len(),
        options.time_limit.as_secs(),
        base.display()
    );

    if let Err(e) = std::fs::create_dir_all(&base) {
        println!("cannot create {}: {e}", base.display());
    }
    let to_build: Vec<Broken> = Broken::ALL
        .into_iter()
        .filter(|b| options.prebuilt(*b).is_none())
        .collect();
    let mut pending = start_broken_builds(options, &to_build, &base);

    let runs = PLAN.len() + Broken::ALL.len();
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

    // The broken nodes must be caught.
    for (k, broken) in Broken::ALL.into_iter().enumerate() {
        let number = PLAN.len() + 1 + k;
        let seed = Rng::fresh_seed();
        println!(
            "\n=== run {number}/{runs}: broken node, {} (seed {seed}) ===",
            broken.feature()
        );
        let bin = match options.prebuilt(broken) {
            Some(bin) => Ok(bin.clone()),
            None => match pending.iter_mut().find(|(b, _)| *b == broken) {
                Some((_, rx)) => (&mut *rx)
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the background build stopped"))),
                None => Err(anyhow::anyhow!("no {} node to run", broken.feature())),
            },
        };
        let run_dir = base.join(format!("{number}-{}", broken.label()));
        let report = run_broken(options, broken, bin, seed, run_dir).await;
        lines.push(format!(
            "{}  {:<16} {}, seed {seed}: {}",
            if report.passed() { "PASS" } else { "FAIL" },
            broken.label(),
            broken.plan(),
            report.checks.first().map_or_else(
                || report.error.clone().unwrap_or_default(),
                |c| c.summary.clone()
            )
        ));
        summary.runs.push(report);
    }

    println!(
        "\n=== jepsen ci summary ({:.0}s wall time) ===",
        started.elapsed().as_secs_f64()
    );
    for line in &lines {
        println!("{line}");
    }
    summary
}
