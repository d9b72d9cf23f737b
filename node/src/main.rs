//! The node binary: `flashstock-node --config FILE`, or `flashstock-node --check-config FILE`
//! to validate a config without starting.

use clap::{ArgGroup, Parser};
use cluster_config::logging::LogFormat;
use std::path::PathBuf;
use std::process::ExitCode;

// Under load a node allocates and frees per command and per message on several threads;
// glibc's malloc spent about a fifth of the machine's cycles on it (perf), mimalloc less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "flashstock-node",
    version,
    about = "A flashstock Raft node",
    after_help = "Examples:\n  flashstock-node --config cluster-config/samples/three-node/node1.toml\n  \
                  flashstock-node --check-config cluster-config/samples/three-node/node1.toml\n\n\
                  Exit codes of --check-config: 0 valid, 1 not (the message names the field).",
    group(ArgGroup::new("mode").required(true).args(["config", "check_config"]))
)]
struct Args {
    /// The node's TOML config.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate FILE as --config would, print the settings the node would use (defaults
    /// included) and exit without starting.
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    /// Logs on stderr as `text` or `json` (one object per line); `RUST_LOG` filters both.
    #[arg(long, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn main() -> anyhow::Result<ExitCode> {
    #[cfg(target_os = "linux")]
    disable_transparent_huge_pages();
    let args = Args::parse();
    if let Some(path) = args.check_config {
        return Ok(check_config(&path));
    }
    let Some(path) = args.config else {
        unreachable!("clap requires --config or --check-config");
    };
    serve(&path, args.log_format)?;
    Ok(ExitCode::SUCCESS)
}

/// mimalloc hands freed memory back to the kernel in small pieces and asks for huge pages;
/// touching such a piece again then faulted in and zeroed a whole 2 MiB page. Under order
/// batches that zeroing was up to half of a node's cycles (perf: `clear_page_erms` under
/// sled's checkpoint inserts), and the nodes did a third more work per order with it.
#[cfg(target_os = "linux")]
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        // Only slower, never wrong: say so and go on.
        eprintln!(
            "warning: could not turn transparent huge pages off: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match cluster_config::NodeConfig::load(path) {
        Ok(config) => {
            print!("{}", node::config_summary::summary(&config));
            println!("{}: valid", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(path: &std::path::Path, log_format: LogFormat) -> anyhow::Result<()> {
    cluster_config::logging::init(log_format, cluster_config::logging::NODE_DEFAULT_FILTER);
    let config = cluster_config::NodeConfig::load(path)?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads())
        .enable_all()
        .build()?
        .block_on(node::server::run(config, shutdown_signal()))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}
