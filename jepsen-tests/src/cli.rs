//! The `jepsen` command line: one run (the default), `jepsen ci`, `jepsen check` (a recorded
//! history against a model, no cluster), and the hidden `jepsen proxy` the harness starts
//! inside namespaces.
//!
//! Exit codes: 0 every run passed; 1 some run failed; 2 usage error; 77 skipped because this
//! machine cannot run the harness (not root, no network namespaces, no nftables). CI must treat
//! 77 as a failure: it runs as root, so a skip there means the harness did not run.
//! `jepsen check`: 0 linearizable, 1 not linearizable, 2 usage error or unreadable history,
//! 3 undecided (the budget ran out), which is not a pass either.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ci::{ci, CiOptions};
use crate::nemesis::{Fault, Schedule};
use crate::report::Summary;
use crate::rng::Rng;
use crate::run::{run, RunOptions};
use crate::workload::Workload;
use crate::Verdict;

/// Exit code of a skipped run (the automake convention for "skipped").
pub const EXIT_SKIPPED: u8 = 77;
/// Exit code of `jepsen check` when the budget ran out: distinct from both answers, and from
/// the usage error a script might retry differently.
pub const EXIT_UNKNOWN: u8 = 3;

#[derive(Parser)]
#[command(
    name = "jepsen",
    version,
    about = "Chaos harness for the inventory cluster: real processes in network namespaces, \
             partitions, loss, delay, pauses and kills, a recorded history, and a \
             linearizability checker.",
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  \
        jepsen --nodes 3 --workload register --faults partition --time-limit 60\n  \
        jepsen --nodes 5 --workload flash-sale --faults all --time-limit 600 --seed 42\n  \
        jepsen ci\n  \
        jepsen campaign --runs 100 --time-limit 30 --seed 7\n  \
        jepsen check --model cas-register --format jepsen-log jepsen.log\n\n\
        Exit codes: 0 passed, 1 failed, 2 usage, 77 skipped (not root / no namespaces); \
        see `jepsen check --help` for its own."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// The CI suite: partitions, pauses, kills, a mix, a five-node ring, and the broken nodes.
    Ci(CiArgs),
    /// Many seeded runs, each with a workload, fault mix and cluster size drawn from --seed;
    /// one table at the end (runs, operations, anomalies by kind, seeds of failures).
    Campaign(CampaignArgs),
    /// Checks a recorded history for linearizability against a model (no cluster, no root).
    #[command(
        after_help = "Prints `linearizable` (exit 0), `not-linearizable` and where \
        (exit 1), or `unknown: <why>` when the search ran out of budget (exit 3, never a \
        pass). Exit 2: usage error, or a history that cannot be read (the line is named).\n\n\
        A Jepsen log's op lines look like `INFO  jepsen.util - 3\\t:invoke\\t:cas\\t[3 4]`; \
        `:fail` ops did not happen, `:info` ones (and ops never completed) may have, at any \
        later time; `:nemesis` and other lines are ignored."
    )]
    Check(CheckArgs),
    /// (internal) the delay proxy run inside a namespace.
    #[command(hide = true)]
    Proxy {
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(long)]
        upstream: std::net::SocketAddr,
    },
}

#[derive(Args)]
struct Binaries {
    /// The node binary [default: `flashstock-node` next to this binary].
    #[arg(long, value_name = "PATH")]
    node_bin: Option<PathBuf>,
    /// The gateway binary [default: `flashstock-gateway` next to this binary].
    #[arg(long, value_name = "PATH")]
    gateway_bin: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// Cluster size.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(3..=5))]
    nodes: u32,
    /// register, flash-sale, retry, multi-item, short-ttl or sale-window.
    #[arg(long, default_value = "register")]
    workload: String,
    /// Comma-separated: families partition, pause, kill, power, loss, delay, membership, clock,
    /// all;
    /// or single faults partition-one, partition-leader, partition-halves, partition-bridge,
    /// majorities-ring, pause-one, pause-leader, kill-one, kill-leader, kill-majority,
    /// kill-all, kill-lose-unsynced (power: every node killed, and each restart loses the
    /// Raft log's bytes written after its last fdatasync), member-remove-one,
    /// member-remove-leader (out of the membership under load, back as learner then voter),
    /// member-replace (out of the membership, data dir wiped, back empty as a joiner),
    /// clock-skew, clock-skew-leader (restarted with its clock ±1 h or ±2 s off, then
    /// without).
    #[arg(long, default_value = "partition")]
    faults: String,
    /// Seconds of clients and faults.
    #[arg(long, default_value_t = 60)]
    time_limit: u64,
    /// Seed of the fault schedule and the workload [default: random, printed first].
    #[arg(long)]
    seed: Option<u64>,
    /// Where to put history, logs and report [default: $TMPDIR/jepsen/<time>-<nodes>n-<workload>-s<seed>].
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
    #[command(flatten)]
    binaries: Binaries,
    /// Time budget of the linearizability search, seconds (exhausted = failure).
    #[arg(long, default_value_t = 60)]
    check_budget: u64,
    /// Minimum ok ops for a run to count [default: 10 per second of --time-limit, at least 50].
    #[arg(long)]
    min_ok: Option<usize>,
    /// The gateways' request deadline, ms (the client timeout is one second more).
    #[arg(long, default_value_t = 2000)]
    request_deadline_ms: u64,
}

#[derive(Args)]
struct CiArgs {
    /// Seconds per run.
    #[arg(long, default_value_t = 60)]
    time_limit: u64,
    /// Seconds of each broken-node run.
    #[arg(long, default_value_t = 30)]
    broken_time_limit: u64,
    /// Parent of the suite's run dirs [default: $TMPDIR/jepsen].
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
    #[command(flatten)]
    binaries: Binaries,
    /// The workspace the broken node is built from [default: the one this binary was built in].
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// Target dir of the broken nodes' builds [default: `stale-reads/` beside this binary's
    /// profile dir, e.g. target/stale-reads].
    #[arg(long, value_name = "DIR")]
    broken_target_dir: Option<PathBuf>,
    /// Use this stale-reads node instead of building one.
    #[arg(long, value_name = "PATH")]
    broken_node_bin: Option<PathBuf>,
    /// Use this wall-clock-deadlines node instead of building one.
    #[arg(long, value_name = "PATH")]
    wall_clock_node_bin: Option<PathBuf>,
    /// Time budget of each linearizability search, seconds.
    #[arg(long, default_value_t = 45)]
    check_budget: u64,
}

#[derive(Args)]
struct CampaignArgs {
    /// How many runs.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// The campaign's seed: it draws every run's seed, workload, faults and size
    /// [default: random, printed first].
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds per run.
    #[arg(long, default_value_t = 30)]
    time_limit: u64,
    /// Parent of the runs' dirs [default: $TMPDIR/jepsen/campaign-<time>-s<seed>].
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
    #[command(flatten)]
    binaries: Binaries,
    /// Time budget of each linearizability search, seconds.
    #[arg(long, default_value_t = 45)]
    check_budget: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum CheckModel {
    /// One compare-and-set register: read, write, cas [old new]; nil initially.
    CasRegister,
}

#[derive(Clone, Copy, ValueEnum)]
enum HistoryFormat {
    /// The `jepsen.util` op lines of a Jepsen run's log (jepsen.log).
    JepsenLog,
}

#[derive(Args)]
struct CheckArgs {
    /// The sequential specification the history is checked against.
    #[arg(long, value_enum)]
    model: CheckModel,
    /// How FILE is written.
    #[arg(long, value_enum, default_value = "jepsen-log")]
    format: HistoryFormat,
    /// Time budget of the linearizability search, seconds (exhausted = unknown, exit 3).
    #[arg(long, default_value_t = 60)]
    check_budget: u64,
    /// The history (`-` reads standard input).
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

fn check_history(args: &CheckArgs) -> ExitCode {
    let text = if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text)
    } else {
        std::fs::read_to_string(&args.file)
    };
    let text = match text {
        Ok(text) => text,
        Err(e) => {
            eprintln!("jepsen check: {}: {e}", args.file.display());
            return ExitCode::from(2);
        }
    };
    let calls = match (args.model, args.format) {
        (CheckModel::CasRegister, HistoryFormat::JepsenLog) => {
            crate::jepsen_log::parse(&text).and_then(|ops| crate::cas_register::from_log(&ops))
        }
    };
    let calls = match calls {
        Ok(calls) => calls,
        Err(e) => {
            eprintln!("jepsen check: {}: {e}", args.file.display());
            return ExitCode::from(2);
        }
    };
    let report = crate::cas_register::check(&calls, Duration::from_secs(args.check_budget));
    print!("{report}");
    match report.verdict() {
        Verdict::Pass => ExitCode::SUCCESS,
        Verdict::Fail => ExitCode::from(1),
        Verdict::Unknown => ExitCode::from(EXIT_UNKNOWN),
    }
}

fn self_bin() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("jepsen"))
}

/// The workspace's binary `name` beside this one, where the launcher looks for siblings. Not
/// built when missing: the harness runs as root, outside cargo.
fn beside_self(name: &str) -> PathBuf {
    cluster_config::launch::binary::profile_dir()
        .map_or_else(|_| PathBuf::from(name), |dir| dir.join(name))
}

impl Binaries {
    fn resolve(&self) -> (PathBuf, PathBuf) {
        (
            self.node_bin
                .clone()
                .unwrap_or_else(|| beside_self("flashstock-node")),
            self.gateway_bin
                .clone()
                .unwrap_or_else(|| beside_self("flashstock-gateway")),
        )
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn default_base() -> PathBuf {
    std::env::temp_dir().join("jepsen")
}

/// Prints the closing summary and maps it to the exit code.
fn finish(summary: &Summary) -> ExitCode {
    println!(
        "jepsen: {} passed, {} failed",
        summary.passed(),
        summary.failed()
    );
    if summary.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn skip_if_unsupported() -> Option<ExitCode> {
    match crate::topology::preflight() {
        Ok(()) => None,
        Err(reason) => {
            println!("jepsen: SKIPPED: {reason}");
            println!(
                "jepsen: this is not a pass; run as root on Linux with iproute2 and nftables \
                 (exit code {EXIT_SKIPPED})"
            );
            Some(ExitCode::from(EXIT_SKIPPED))
        }
    }
}

async fn single_run(args: RunArgs) -> ExitCode {
    let seed = args.seed.unwrap_or_else(Rng::fresh_seed);
    let Some(workload) = Workload::parse(&args.workload) else {
        eprintln!(
            "jepsen: unknown workload {:?}; use register, flash-sale, retry, multi-item, short-ttl or sale-window",
            args.workload
        );
        return ExitCode::from(2);
    };
    let faults = match Fault::parse_list(&args.faults, args.nodes) {
        Ok(faults) => faults,
        Err(e) => {
            eprintln!("jepsen: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(code) = skip_if_unsupported() {
        return code;
    }
    let (node_bin, gateway_bin) = args.binaries.resolve();
    let time_limit = Duration::from_secs(args.time_limit);
    let run_dir = args.run_dir.unwrap_or_else(|| {
        default_base().join(format!(
            "{}-{}n-{}-s{seed}",
            unix_secs(),
            args.nodes,
            workload.name()
        ))
    });
    let options = RunOptions {
        name: format!("{}n-{}-{}", args.nodes, workload.name(), args.faults),
        nodes: args.nodes,
        workload,
        faults,
        time_limit,
        seed,
        run_dir,
        node_bin,
        gateway_bin,
        self_bin: self_bin(),
        request_deadline: Duration::from_millis(args.request_deadline_ms),
        check_budget: Duration::from_secs(args.check_budget),
        min_ok_ops: args
            .min_ok
            .unwrap_or_else(|| RunOptions::default_min_ok(time_limit)),
        schedule: Schedule::default(),
    };
    let outcome = run(&options).await;
    finish(&Summary {
        runs: vec![outcome.report],
    })
}

async fn ci_run(args: CiArgs) -> ExitCode {
    if let Some(code) = skip_if_unsupported() {
        return code;
    }
    let (node_bin, gateway_bin) = args.binaries.resolve();
    let workspace = args.workspace.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
    });
    let broken_target_dir = args.broken_target_dir.unwrap_or_else(|| {
        // target/release/jepsen -> target/stale-reads
        let exe = self_bin();
        exe.parent()
            .and_then(|release| release.parent())
            .map_or_else(
                || PathBuf::from("target-stale-reads"),
                |t| t.join("stale-reads"),
            )
    });
    let options = CiOptions {
        time_limit: Duration::from_secs(args.time_limit),
        broken_time_limit: Duration::from_secs(args.broken_time_limit),
        base_dir: args.run_dir.unwrap_or_else(default_base),
        node_bin,
        gateway_bin,
        self_bin: self_bin(),
        workspace,
        cargo: std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()),
        broken_target_dir,
        broken_node_bin: args.broken_node_bin,
        wall_clock_node_bin: args.wall_clock_node_bin,
        check_budget: Duration::from_secs(args.check_budget),
    };
    let summary = ci(&options).await;
    finish(&summary)
}

async fn campaign_run(args: CampaignArgs) -> ExitCode {
    if let Some(code) = skip_if_unsupported() {
        return code;
    }
    let seed = args.seed.unwrap_or_else(Rng::fresh_seed);
    let (node_bin, gateway_bin) = args.binaries.resolve();
    let options = crate::campaign::CampaignOptions {
        runs: args.runs,
        seed,
        time_limit: Duration::from_secs(args.time_limit),
        base_dir: args
            .run_dir
            .unwrap_or_else(|| default_base().join(format!("campaign-{}-s{seed}", unix_secs()))),
        node_bin,
        gateway_bin,
        self_bin: self_bin(),
        check_budget: Duration::from_secs(args.check_budget),
    };
    let summary = crate::campaign::campaign(&options).await;
    finish(&summary)
}

/// The whole program; `src/bin/jepsen.rs` only calls this.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Cmd::Check(args)) = &cli.command {
        return check_history(args);
    }
    // One thread for the harness: children are spawned from it, so their PR_SET_PDEATHSIG
    // (which follows the spawning thread) lasts as long as the harness; the checkers run on
    // a blocking thread so Ctrl-C is still handled.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("jepsen: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Some(Cmd::Proxy { listen, upstream }) => {
                match crate::proxy::serve(listen, upstream).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("proxy: {e:#}");
                        ExitCode::from(1)
                    }
                }
            }
            Some(Cmd::Ci(args)) => {
                crate::topology::install_cleanup_handlers();
                ci_run(args).await
            }
            Some(Cmd::Campaign(args)) => {
                crate::topology::install_cleanup_handlers();
                campaign_run(args).await
            }
            Some(Cmd::Check(args)) => check_history(&args),
            None => {
                crate::topology::install_cleanup_handlers();
                single_run(cli.run).await
            }
        }
    })
}
